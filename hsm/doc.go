// Package hsm restores recovered keys into a hardware security module over
// PKCS#11 and proves, inside the module, that each is the right key.
//
// # The model
//
// A recovery ends with the master key inside an HSM: a token object that is
// sensitive and not extractable, and a check value computed by the token
// that equals the one in the set record. The key never touches disk on the
// way.
//
// A target is named by a PKCS#11 URI (RFC 7512), for example
//
//	pkcs11:token=vault-a;object=master-2026?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-source=file:/run/pin
//
// The module is loaded from module-path and initialised once per process
// however many sessions use it; the last Session.Close finalises it. The
// token is found by its label, serial, manufacturer or model, never by
// slot number: slot numbers change (SoftHSM moves a token as soon as it is
// initialised). Zero matches and several matches are errors, and
// uninitialised slots are never candidates. The user PIN comes from the
// pin-source file or from a PINPrompt (the CLI reads the terminal);
// pin-value in a URI is refused.
//
// # Importing
//
// Session.Import takes a bundle of keys, each with the check values the set
// record expects, and one of two paths:
//
//   - PathCreate puts the key material in a C_CreateObject template.
//   - PathUnwrap is for HSMs that, like those in FIPS mode, refuse plain
//     key material. The token must unwrap what comes in, and the key that
//     unwraps must be one we know outside. An AES key the token generates
//     is no use: we cannot see it. So a fresh AES-256 transport key is made
//     outside, encrypted with RSA-OAEP under an RSA key pair the token holds
//     (generated for the import as session objects, or a named pair an
//     administrator provisioned), and unwrapped inside as a session key
//     that may only unwrap. Each key is then wrapped outside with AES Key
//     Wrap with Padding (RFC 5649, written here from the RFC) under the
//     transport key and unwrapped inside with CKM_AES_KEY_WRAP_PAD: raw
//     bytes for secret keys, PKCS#8 for private keys. RSA-OAEP alone would
//     not do: it cannot carry a private key, and one RSA operation per key
//     is slow for a bundle of thousands. The two steps are what the
//     composite CKM_RSA_AES_KEY_WRAP does, which SoftHSM lacks. The
//     transport key lives for one import and is cleared after.
//
// Before changing anything the import checks the mechanisms it will need
// (C_GetMechanismInfo) and names every one the token lacks, and refuses
// labels or IDs already on the token unless the key says Replace or
// KeepBoth.
//
// Secret keys are created with CKA_TOKEN, CKA_PRIVATE and CKA_SENSITIVE
// true, CKA_EXTRACTABLE false and every usage attribute written out, since
// tokens default the missing ones (SoftHSM to true); see DefaultUsage.
// Private keys come with their public key object, same label and ID.
//
// # Proof
//
// Each key is proven inside the token as soon as it exists:
//
//   - AES: CKM_AES_ECB encrypts a zero block (the ECB check value HSMs
//     show) and CKM_AES_CMAC signs one (the X9.24 KCV), where the key's
//     usage and the token allow; at least one must be computed, and every
//     one computed must match.
//   - HMAC secrets: CKM_SHA256_HMAC over 32 zero bytes.
//   - Private keys: the token signs a random challenge, verified outside
//     with the expected public key, and the public key object's SPKI is
//     hashed (SHA-256) and compared.
//
// An import is all or nothing. On any failure, a mismatch included, every
// object it created is destroyed before the error returns; if that fails
// too, a RollbackError lists what is left. A bundle of 10,000 keys is
// imported in one session, its conflicts checked in one pass over the
// token, each key proven, and rolled back whole on a failure part-way.
//
// A successful import leaves a private data object (CKA_APPLICATION
// "custos") recording labels, IDs, kinds and check values, which List uses
// to tell custos keys from others. Session.VerifyObject proves a key
// already on the token against the set record's check values.
//
// # Memory
//
// Key material is copied as little as possible and the copies this package
// makes are cleared after use, best effort: Go may have moved or copied
// them, and miekg/pkcs11 copies templates and PINs into C memory it frees
// without clearing. The unwrap path passes only wrapped bytes to the
// module.
//
// BUG(custos): SoftHSM 2.6 cannot unwrap Ed25519 keys (CKR_FUNCTION_FAILED
// on PKCS#8 input); use PathCreate for them on SoftHSM.
//
// BUG(custos): SoftHSM 2.6 records neither CKA_VALUE_LEN nor
// CKA_CHECK_VALUE for an unwrapped AES key, so List shows such keys as
// "aes" and computes their check values instead of reading them.
//
// BUG(custos): SoftHSM 2.6 refuses RSA-OAEP with SHA-256
// (CKR_ARGUMENTS_BAD); the transport step uses SHA-1 unless told otherwise.
// OAEP with SHA-1 is still sound for key transport.
package hsm
