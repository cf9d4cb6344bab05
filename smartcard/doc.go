// Package smartcard keeps custodians' shares on PIV smart cards (YubiKey 5
// and compatible), through pcscd and github.com/go-piv/piv-go/v2.
//
// # The model
//
// A custodian card holds, for each share, a key pair generated on the card
// in one of the twenty PIV retired key management slots (82 to 95): X25519
// on firmware 5.7 and later, P-256 before, PIN policy "once", touch policy
// as the ceremony asks. The share is sealed to the slot's public key
// (ephemeral ECDH, HKDF-SHA256 binding card serial, slot, set ID, index and
// both public keys, then AES-256-GCM; see seal.go), and the sealed share is
// written into the same slot's certificate object as an X.509 certificate:
// its subject key is the slot key, it is signed by the set's Ed25519 dealer
// key, and custos extensions under OIDArc carry the set ID, share index,
// custodian, label, dealer public key, card binding and sealed share.
// Reading a share back needs the card and its PIN: the card does the ECDH.
// The share is never on the card in the clear.
//
// Anyone can list what a card holds (Card.Info, List) from the
// certificates alone, without the PIN.
//
// # Lifecycle
//
//	c, err := smartcard.Open(ctx, serial)   // by serial, never by reader
//	e, err := c.Enrol(smartcard.EnrolOptions{Custodian: "Ana", NewPIN: pin, NewPUK: puk})
//	err = c.Store(smartcard.StoreRequest{Slot: e.Slot, SetID: id, Index: 1,
//		Share: encoded, Dealer: dealerKey})
//	got, err := c.Load(id, prompt)           // PIN asked through prompt
//	err = c.Wipe(id, prompt)                 // destroys the slot key
//	c.Close()                                // resets the card's login state
//
// Every PIN goes through a PINPrompt, which is shown the tries left and
// must confirm the last one. A prompt that is also a PINRetrier (a person
// at a terminal) is asked again after a wrong PIN; any other (a PIN file)
// gets one try, so a wrong file never uses up a card's tries.
//
// Enrol refuses a card that still has its factory PIN or PUK unless the
// caller gives new ones. custos learns that from the card's own metadata
// (Yubico GET METADATA, "default value" flag), never by trying a PIN; it
// presents the factory value only to change it, only when the card says it
// is set. A factory management key is replaced by a random one, kept on
// the card in the PIN-protected data object, so the custodian has one
// secret: the PIN. (ykman keeps its "protected" key in the same object but
// also sets a flag in its admin data object, which custos does not write;
// ykman may still ask for the management key.)
//
// A slot is marked as custos's by a certificate of kind KindEnrolled as
// soon as its key exists; the marker records that the key's attestation
// chain verified (against Yubico's CAs, or the roots the caller gives: a
// virtual card's own CA is never trusted implicitly). A slot whose
// attestation did not verify keeps its key under a marker without that
// record: it takes no share (UnattestedError), and the next Enrol reuses
// it. Store has the card attest the slot key again before it seals a
// share to it. custos never overwrites a slot it did not mark, or a share,
// unless the caller names what will be lost (Overwrite,
// StoreRequest.Replace, Reset's list of sets).
//
// # Failures a ceremony acts on
//
// Every error names the card (serial and reader). The typed ones are
// CardAbsentError, CardBusyError (another program holds the card; Open
// waits BusyWait first), PINError (wrong PIN, tries left), PINBlockedError,
// ErrLastTryDeclined, DefaultCredentialsError, SlotOccupiedError,
// CardFullError, ObjectTooLargeError, NotCustosError, InvalidShareError
// (dealer signature, key binding or sealing broken), AttestationError,
// UnattestedError,
// InterruptedError and CardError for the rest. None of them prints a
// status word; CardError keeps it in a field for logs.
//
// A card pulled during Store leaves either its previous content or the new
// share, never a part: the card replaces an object only when its whole
// chained PUT DATA arrived. Store then waits (StoreRequest.ReinsertWait)
// for the card to come back, reads the slot, and returns InterruptedError
// saying which.
//
// # Limits
//
// Cards must report their serial in the PIV applet (firmware 5) and, to be
// enrolled, their credentials metadata (firmware 5.3). A certificate object
// holds at most MaxObjectSize bytes, so a share with a large inline secret
// does not fit: keep large secrets in the set's separate sealed file.
// piv-go takes PINs as Go strings, which cannot be cleared from memory.
// The raw PC/SC calls (pcsc_unix.go) need cgo and pcsc-lite; on other
// platforms Open and List fail.
package smartcard
