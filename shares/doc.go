// Package shares is the custos escrow format: it splits a secret into
// threshold shares, encodes them for cards, paper and QR codes, checks each
// share alone and against the others, and rebuilds the secret.
//
// A split seals the secret with AES-256-GCM under a random 256-bit data key
// and splits only the data key with Shamir's scheme over GF(256)
// (github.com/hashicorp/vault/shamir). Secrets up to InlineLimit bytes ride
// sealed inside every share, so any quorum of paper is self-contained;
// larger ones are sealed to a separate file whose digest every share binds.
//
// Every share is self-describing (format version, set ID, label, k, n,
// index, creation time, kind, check values) and signed by a dealer Ed25519
// key made for that split alone. A corrupt, forged or foreign share is
// therefore refused on its own, by name, before any combine; and a rebuilt
// data key is checked against a commitment every share carries, so a wrong
// combination fails loudly instead of yielding a wrong key that looks right.
//
// The package does no I/O of its own beyond the readers and writers it is
// given.
package shares
