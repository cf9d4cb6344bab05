// Package virtual is a software YubiKey-compatible PIV card, for
// rehearsing key ceremonies and for tests that need real card traffic
// through the real pcscd without hardware.
//
// # The model
//
// A Card is the state of one card (serial, firmware version, PIN, PUK,
// management key, retry counters, keys with their PIN and touch
// policies, data objects, attestation key) and a command handler:
// Transmit takes one command APDU and returns the response APDU, as the
// card's chip would. The card speaks the PIV card application of NIST SP
// 800-73-4 and the Yubico extensions that piv-go, yubico-piv-tool and
// OpenSC use:
//
//   - SELECT, GET DATA and PUT DATA (objects up to 3052 bytes, larger
//     ones refused with 6A84), VERIFY, CHANGE REFERENCE DATA and RESET
//     RETRY COUNTER for PIN and PUK, GENERAL AUTHENTICATE (management key
//     mutual and one-way authentication, ECDSA and Ed25519 signing, ECDH
//     and X25519 key agreement) and GENERATE ASYMMETRIC KEY PAIR (P-256,
//     P-384, and from firmware 5.7 Ed25519 and X25519);
//   - Yubico's GET VERSION, GET SERIAL, GET METADATA (from 5.3), SET
//     MANAGEMENT KEY (AES from 5.4), SET PIN RETRIES, IMPORT KEY, ATTEST
//     and RESET (only once PIN and PUK are both blocked);
//   - command chaining (CLA 10) and response chaining (61xx with GET
//     RESPONSE), short and extended APDUs;
//   - just enough of the YubiKey management applet to read the device
//     information (serial, version, form factor).
//
// The security status (PIN verified, management key authenticated) is
// lost on power-off, reset and any SELECT, as on a YubiKey. A chained
// command is acted on only when its last part arrives, so a card pulled
// in the middle of a long PUT DATA keeps the object it had.
//
// A fresh card (New, or Open of a new file) is a fresh YubiKey 5 with
// firmware 5.7.1: a random eight-digit serial, PIN 123456, PUK 12345678,
// three tries each, and the well-known default management key (AES-192;
// Triple-DES on cards made WithVersion before 5.7).
//
// # Attestation
//
// A YubiKey's attestation key in slot f9 is certified by Yubico. A
// virtual card's is certified by a root CA of its own, made with the
// card and returned by AttestationCA: pass it to piv.Verifier as a root.
// Its attestation certificates carry Yubico's extensions (firmware,
// serial, policies, form factor), so piv.Verify reads them the same way,
// but they never chain to Yubico.
//
// # State files
//
// Open keeps the card in a JSON state file, rewritten atomically (a new
// file in the same directory, fsync, rename) after every command that
// changes the card, with mode 0600. The file opens with a notice saying
// what it is: a rehearsal card whose private keys, PIN and PUK are in the
// clear. It is not a secure element; anyone who can read the file owns
// the card.
//
// # Readers
//
// Serve inserts the card into a reader of pcscd through vsmartcard's
// vpcd driver: the card dials vpcd on a loopback TCP port and serves it
// until the context ends or vpcd hangs up. Package virtualtest does this
// for tests; "custos card serve-virtual" does it for rehearsals.
//
// # Limits
//
// Touch policies are recorded and reported, but a virtual card has no
// button: touch is always satisfied. RSA keys, biometric (match) PIN
// policies, secure messaging and the YubiKey's other applets (OTP, FIDO,
// OpenPGP) are not implemented; the card answers them as a card lacking
// them would (6A80, 6A88, 6D00, 6A82).
package virtual
