package smartcard

import (
	"bytes"
	"context"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/x509"
	"errors"
	"fmt"
	"math/big"
	"time"

	"github.com/go-piv/piv-go/v2/piv"
)

// StoreRequest is one sealed share to write into an enrolled slot.
type StoreRequest struct {
	Slot      Slot // an enrolled slot (Enrolment.Slot)
	SetID     [16]byte
	Index     int    // 1..255
	Custodian string // empty keeps the name recorded at enrolment
	Label     string
	Share     []byte             // the encoded share, opaque to this package
	Dealer    ed25519.PrivateKey // the set's dealer key; signs the certificate

	// Replace names the set whose share in the slot may be overwritten.
	Replace *[16]byte
	// Roots verify the card's fresh attestation of the slot key before
	// the share is sealed to it. nil checks it against the attestation
	// certificate recorded when the slot was enrolled, whose chain was
	// verified then.
	Roots *x509.CertPool
	// Prompt asks for the PIN when the management key is not yet known in
	// this session (it is after Enrol).
	Prompt PINPrompt

	// ReinsertWait bounds the wait for a card pulled during the write to
	// come back; zero means one minute. OnPulled, if set, is called when
	// the card went away, so the ceremony can ask for it back.
	ReinsertWait time.Duration
	OnPulled     func(CardID)
}

// Store seals the share to the slot key and writes it, signed by the
// dealer, as the slot's certificate; then reads it back and compares. It
// refuses a slot whose key's attestation was never verified
// (UnattestedError), and first has the card attest the key again (see
// StoreRequest.Roots).
//
// If the card is pulled or the connection drops during the write, Store
// waits for the card to come back, reads the slot and returns
// InterruptedError saying whether it holds its old content or the new
// share (verified); the card is never left holding part of a share.
func (c *Card) Store(req StoreRequest) error {
	if err := checkStore(&req); err != nil {
		return fmt.Errorf("%v: %w", c.id, err)
	}
	old, rec, err := c.storeTarget(req)
	if err != nil {
		return err
	}
	if req.Custodian == "" {
		req.Custodian = rec.Custodian
	}

	der, err := c.shareCert(req, rec)
	if err != nil {
		return err
	}
	if n := objectSize(der); n > MaxObjectSize {
		return &ObjectTooLargeError{Card: c.id, Slot: req.Slot, Size: n, Max: MaxObjectSize}
	}
	if err := c.unlock(req.Prompt); err != nil {
		return err
	}

	ps, _ := req.Slot.piv()
	err = c.yk.SetCertificate(c.mgmt, ps, &x509.Certificate{Raw: der})
	if err != nil && !c.alive() {
		return c.afterInterruption(req, old, der)
	}
	got, rerr := c.readCert(req.Slot)
	var absent *CardAbsentError
	switch {
	case errors.As(rerr, &absent):
		return c.afterInterruption(req, old, der)
	case rerr != nil:
		return fmt.Errorf("reading back certificate: %w", rerr)
	case bytes.Equal(got, der):
		return nil
	case statusWord(err) == 0x6a84:
		return &ObjectTooLargeError{Card: c.id, Slot: req.Slot, Size: objectSize(der)}
	case err != nil:
		return cardErr(c.id, fmt.Sprintf("writing slot %v", req.Slot), err)
	}
	return &CardError{Card: c.id, Msg: "the certificate read back differs from the one written"}
}

func checkStore(req *StoreRequest) error {
	switch {
	case req.Slot < FirstSlot || req.Slot > LastSlot:
		return fmt.Errorf("slot %v is not a retired slot (82 to 95)", req.Slot)
	case len(req.Share) == 0:
		return errors.New("no share to store")
	case len(req.Dealer) != ed25519.PrivateKeySize:
		return errors.New("no dealer key")
	case req.Index < 1 || req.Index > 255:
		return fmt.Errorf("share index %d out of range 1..255", req.Index)
	case !validText(req.Custodian) || !validText(req.Label):
		return fmt.Errorf("custodian name or label longer than %d bytes or "+
			"not UTF-8", maxText)
	}
	if req.ReinsertWait == 0 {
		req.ReinsertWait = time.Minute
	}
	return nil
}

// storeTarget checks the slot may take the share: it is a custos slot,
// enrolled or holding a share whose loss was agreed, its certificate's key
// is the key the card holds there, and the card attests that key. It
// returns the slot's certificate.
func (c *Card) storeTarget(req StoreRequest) ([]byte, *record, error) {
	old, err := c.readCert(req.Slot)
	if err != nil {
		return nil, nil, err
	}
	if old == nil {
		return nil, nil, &NotCustosError{Card: c.id, Slot: req.Slot}
	}
	rec, err := parseRecord(old)
	if errors.Is(err, errNotCustos) {
		return nil, nil, &SlotOccupiedError{Card: c.id, Slot: req.Slot, Foreign: true}
	}
	if err != nil {
		return nil, nil, &InvalidShareError{Card: c.id, Slot: req.Slot, Reason: err.Error()}
	}
	if rec.Kind == KindShare && (req.Replace == nil || *req.Replace != rec.SetID) {
		return nil, nil, &SlotOccupiedError{Card: c.id, Slot: req.Slot,
			SetID: rec.SetID, Index: rec.Index}
	}
	if err := c.checkKey(req.Slot, rec); err != nil {
		return nil, nil, err
	}
	if rec.Attested == nil {
		return nil, nil, &UnattestedError{Card: c.id, Slot: req.Slot}
	}
	if _, err := c.reattest(req.Slot, rec.Key, rec.Attested, req.Roots); err != nil {
		return nil, nil, err
	}
	return old, rec, nil
}

// checkKey makes sure the certificate in slot s speaks of the key the card
// holds there, for this card and slot.
func (c *Card) checkKey(s Slot, rec *record) error {
	pub, err := c.slotKey(s)
	if err != nil {
		return err
	}
	key, err := toECDH(pub)
	bad := func(why string) error {
		return &InvalidShareError{Card: c.id, Slot: s, Reason: why}
	}
	switch {
	case err != nil || !sameKey(key, rec.Key):
		return bad("the certificate is not for the key in the slot")
	case rec.Serial != c.id.Serial || rec.Slot != s:
		return bad(fmt.Sprintf("the certificate was written for slot %v "+
			"of card %d", rec.Slot, rec.Serial))
	}
	return nil
}

// shareCert seals the share to the key of the slot's certificate rec and
// builds the certificate that replaces it.
func (c *Card) shareCert(req StoreRequest, rec *record) ([]byte, error) {
	key := rec.Key
	sc := sealContext{Serial: c.id.Serial, Slot: req.Slot, SetID: req.SetID, Index: req.Index}
	sealed, err := seal(randReader, key, sc, req.Share)
	if err != nil {
		return nil, fmt.Errorf("sealing share for %v: %w", c.id, err)
	}
	r := &record{
		Kind: KindShare, SetID: req.SetID, Index: req.Index,
		Custodian: req.Custodian, Label: req.Label,
		Dealer: req.Dealer.Public().(ed25519.PublicKey),
		Serial: c.id.Serial, Slot: req.Slot, Sealed: sealed, Key: key,
		Attested: rec.Attested,
	}
	der, err := buildCert(randReader, r, req.Dealer, time.Now())
	if err != nil {
		return nil, fmt.Errorf("building certificate for %v: %w", c.id, err)
	}
	return der, nil
}

// afterInterruption waits for the card to come back and says what the slot
// holds.
func (c *Card) afterInterruption(req StoreRequest, old, der []byte) error {
	ie := &InterruptedError{Card: c.id, Slot: req.Slot}
	if req.OnPulled != nil {
		req.OnPulled(c.id)
	}
	if err := c.comeBack(context.Background(), req.ReinsertWait); err != nil {
		ie.Err = err
		return ie
	}
	ie.Card = c.id
	got, err := c.readCert(req.Slot)
	switch {
	case err != nil:
		ie.Err = err
	case bytes.Equal(got, der):
		ie.Now = ContentNew
	case bytes.Equal(got, old):
		ie.Now = ContentOld
	}
	return ie
}

// Loaded is a share read back from a card with its PIN.
type Loaded struct {
	Card      CardID
	Slot      Slot
	SetID     [16]byte
	Index     int
	Custodian string
	Label     string
	// Dealer is the key that signed the certificate; the caller compares
	// it with the set record before trusting the share.
	Dealer ed25519.PublicKey
	// Share is the encoded share; the caller clears it after use.
	Share []byte
}

// InvalidShareError reports a custos certificate that cannot be trusted:
// its dealer signature does not verify, it is not for the key in its slot
// or for this card, or its sealed share does not open.
type InvalidShareError struct {
	Card   CardID
	Slot   Slot
	Reason string
}

func (e *InvalidShareError) Error() string {
	return fmt.Sprintf("share in slot %v of %v is invalid: %s", e.Slot, e.Card, e.Reason)
}

// Load finds the share of set setID on the card, checks its certificate,
// asks for the PIN (showing the tries left) and opens the share with the
// card's key.
func (c *Card) Load(setID [16]byte, prompt PINPrompt) (*Loaded, error) {
	slot, rec, err := c.findSet(setID)
	if err != nil {
		return nil, err
	}
	if !rec.SigOK {
		return nil, &InvalidShareError{Card: c.id, Slot: slot, Reason: "dealer signature invalid"}
	}
	if err := c.checkKey(slot, rec); err != nil {
		return nil, err
	}

	pin, err := c.askPIN(prompt)
	if err != nil {
		return nil, err
	}
	clear(pin)

	sc := sealContext{Serial: c.id.Serial, Slot: slot, SetID: rec.SetID, Index: rec.Index}
	share, err := unseal(rec.Sealed, rec.Key, sc, c.agreeWith(slot, rec.Key))
	if errors.Is(err, errSealed) {
		return nil, &InvalidShareError{Card: c.id, Slot: slot,
			Reason: "the sealed share does not open with the card's key"}
	}
	if err != nil {
		return nil, err
	}
	return &Loaded{
		Card: c.id, Slot: slot, SetID: rec.SetID, Index: rec.Index,
		Custodian: rec.Custodian, Label: rec.Label, Dealer: rec.Dealer,
		Share: share,
	}, nil
}

// findSet returns the slot holding a share of setID.
func (c *Card) findSet(setID [16]byte) (Slot, *record, error) {
	for s := FirstSlot; s <= LastSlot; s++ {
		der, err := c.readCert(s)
		if err != nil {
			return 0, nil, err
		}
		if len(der) == 0 {
			continue
		}
		rec, err := parseRecord(der)
		if err == nil && rec.Kind == KindShare && rec.SetID == setID {
			return s, rec, nil
		}
	}
	return 0, nil, &NotCustosError{Card: c.id, SetID: &setID}
}

// agreeWith returns the ECDH the card does with the key in slot s, after
// the PIN was verified (PIN policy once).
func (c *Card) agreeWith(s Slot, key *ecdh.PublicKey) func(*ecdh.PublicKey) ([]byte, error) {
	return func(peer *ecdh.PublicKey) ([]byte, error) {
		ps, _ := s.piv()
		auth := piv.KeyAuth{PINPolicy: piv.PINPolicyOnce}
		var pub any = key
		if key.Curve() == ecdh.P256() {
			pub = ecdsaPublic(key)
		}
		k, err := c.yk.PrivateKey(ps, pub, auth)
		if err != nil {
			return nil, c.fail("opening the slot key", err)
		}
		var z []byte
		switch k := k.(type) {
		case *piv.ECDSAPrivateKey:
			z, err = k.ECDH(peer)
		case *piv.X25519PrivateKey:
			z, err = k.ECDH(peer)
		default:
			return nil, fmt.Errorf("%v: slot %v key cannot agree keys", c.id, s)
		}
		if err != nil {
			return nil, c.fail("opening the share on the card", err)
		}
		return z, nil
	}
}

// ecdsaPublic converts a P-256 ECDH key to the form piv-go wants.
func ecdsaPublic(k *ecdh.PublicKey) *ecdsa.PublicKey {
	b := k.Bytes() // 04 ‖ X ‖ Y
	return &ecdsa.PublicKey{Curve: elliptic.P256(),
		X: new(big.Int).SetBytes(b[1:33]), Y: new(big.Int).SetBytes(b[33:])}
}

// Wipe destroys the share of set setID on the card: it replaces the slot's
// key with a new one, so the sealed share can never be opened again, even
// from a copy, and overwrites the certificate with an enrolment marker. The
// slot stays the custodian's, ready for another share, when the card
// attests the new key with the attestation certificate that vouched for
// the old one; otherwise it is marked unverified, to be enrolled again.
func (c *Card) Wipe(setID [16]byte, prompt PINPrompt) error {
	slot, rec, err := c.findSet(setID)
	if err != nil {
		return err
	}
	ps, _ := slot.piv()
	ki, err := c.yk.KeyInfo(ps)
	if err != nil {
		return c.fail("reading key metadata", err)
	}
	if err := c.unlock(prompt); err != nil {
		return err
	}

	pub, err := c.generate(slot, ki.Algorithm, ki.TouchPolicy)
	if err != nil {
		return err
	}
	var attested []byte
	if rec.Attested != nil {
		// A failure only leaves the slot unverified: the share is gone
		// either way, which is what Wipe is for.
		attested, _ = c.reattest(slot, pub, rec.Attested, nil)
	}
	if err := c.writeMarker(slot, pub, rec.Custodian, attested); err != nil {
		return fmt.Errorf("marking slot %v after wiping: %w", slot, err)
	}
	return nil
}

// ErrPINNotBlocked refuses a full reset of a card whose PIN still works.
var ErrPINNotBlocked = errors.New("the PIN is not blocked; wipe shares " +
	"one by one with the PIN instead")

// Reset returns a card whose PIN is blocked to its factory state, losing
// every key and certificate on it. lose must name every custos set with a
// share on the card, and foreign must be true if the card holds keys or
// certificates custos did not write. It blocks the PUK if it still works.
func (c *Card) Reset(lose [][16]byte, foreign bool) error {
	if r, err := c.yk.Retries(); err != nil {
		return c.fail("reading PIN tries left", err)
	} else if r > 0 {
		return fmt.Errorf("%v: %w", c.id, ErrPINNotBlocked)
	}
	info, err := c.Info()
	if err != nil {
		return err
	}
	for _, s := range info.Slots {
		if err := c.mayOverwrite(&s, Overwrite{Foreign: foreign, SetID: named(lose, s.SetID)}); err != nil {
			return err
		}
	}

	if err := c.yk.Reset(); err != nil {
		return c.fail("resetting the PIV application", err)
	}
	clear(c.mgmt)
	c.mgmt = nil
	c.creds = Credentials{Known: c.creds.Known, PINDefault: true, PUKDefault: true,
		KeyDefault: true, PINRetries: 3, PUKRetries: 3}
	return nil
}

func named(list [][16]byte, id [16]byte) *[16]byte {
	for _, l := range list {
		if l == id {
			return &id
		}
	}
	return nil
}
