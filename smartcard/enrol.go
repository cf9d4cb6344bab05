package smartcard

import (
	"bytes"
	"crypto/ecdh"
	"crypto/ed25519"
	"crypto/sha256"
	"crypto/x509"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/go-piv/piv-go/v2/piv"
)

// PINPrompt asks a custodian for their card's PIN. custos calls it only
// after showing how many tries are left, and never tries a PIN on its own.
type PINPrompt interface {
	// PIN returns the PIN of card; retries is the number of tries left.
	// The caller clears the returned slice after use.
	PIN(card CardID, retries int) ([]byte, error)
	// ConfirmLastTry asks whether to spend the card's last PIN try: a
	// wrong PIN then blocks the card. false stops before the try.
	ConfirmLastTry(card CardID) (bool, error)
}

// PINRetrier is a PINPrompt that can ask again after a wrong PIN, as a
// person at a terminal can and a PIN file cannot. A prompt without it
// gets one try per PIN custos needs.
type PINRetrier interface {
	// RetryPIN is told that the PIN just given was wrong (wrong says how
	// many tries are left); true asks for it again, showing the tries
	// left and confirming the last try as always.
	RetryPIN(wrong *PINError) bool
}

// Overwrite is consent to destroy what a slot holds. It names what will be
// lost: custos refuses to overwrite anything not named.
type Overwrite struct {
	// SetID names the custos set whose share in the slot may be lost.
	SetID *[16]byte
	// Foreign allows destroying a key or certificate custos did not write.
	Foreign bool
}

// EnrolOptions says how to prepare a card for a custodian.
type EnrolOptions struct {
	// Custodian is the name recorded in the slot.
	Custodian string

	// NewPIN and NewPUK replace a factory PIN and PUK. They are used only
	// when the card itself reports the factory value is still set (GET
	// METADATA); only then does custos present the factory value, as the
	// old value of the change. Without them such a card is refused with
	// DefaultCredentialsError. 6 to 8 characters.
	NewPIN, NewPUK []byte

	// Prompt asks for the card's PIN when it is not the factory one.
	Prompt PINPrompt

	// ManagementKey is the card's management key, needed only when it is
	// neither the factory key (custos then replaces it with a random key
	// kept on the card behind the PIN) nor stored on the card behind the
	// PIN already.
	ManagementKey []byte

	// Slot is the retired slot to use; zero picks the first empty one.
	Slot Slot
	// Overwrite allows Slot to be one that is not empty.
	Overwrite Overwrite

	// Algorithm is piv.AlgorithmEC256 or piv.AlgorithmX25519; zero picks
	// X25519 on firmware 5.7 and later, P-256 before.
	Algorithm piv.Algorithm
	// Touch is the slot key's touch policy; zero means never.
	Touch piv.TouchPolicy

	// Roots verify the attestation; nil means Yubico's attestation CAs.
	Roots *x509.CertPool
}

// Enrolment is the result of Enrol: the slot key and the proof that the
// card generated it.
type Enrolment struct {
	Card      CardID
	Slot      Slot
	PublicKey *ecdh.PublicKey

	// Attestation is what the attestation certificate says; the two DER
	// certificates below are the chain to record: the slot's attestation,
	// signed by the card's device certificate, signed by the vendor CA.
	Attestation     *piv.Attestation
	AttestationCert []byte
	DeviceCert      []byte
}

// AttestationError reports a slot key the card could not prove it made.
// Kept says Enrol left the new key in the slot, marked as custos's but
// unverified: the slot takes no share, and the next enrolment reuses it.
type AttestationError struct {
	Card   CardID
	Slot   Slot
	Reason string
	Kept   bool
}

func (e *AttestationError) Error() string {
	msg := fmt.Sprintf("attestation of slot %v of %v failed: %s", e.Slot,
		e.Card, e.Reason)
	if e.Kept {
		msg += fmt.Sprintf("; slot %v keeps the new key, marked unverified "+
			"and holding no share: it takes no share, and the next "+
			"enrolment reuses it", e.Slot)
	}
	return msg
}

// ErrManagementKeyUnknown reports a card whose management key custos does
// not know: not the factory key, not stored behind the PIN, not given.
var ErrManagementKeyUnknown = errors.New("management key unknown: store it " +
	"behind the PIN (ykman piv access change-management-key --protect) or pass it")

// Enrol prepares the card for a custodian: it replaces factory credentials
// (with NewPIN, NewPUK and a random management key kept behind the PIN),
// generates the custodian key on the card in a retired slot (PIN once,
// touch as asked), verifies the key's attestation chain, and only then
// marks the slot enrolled.
//
// When the attestation does not verify, Enrol returns the Enrolment with
// an AttestationError (Kept set): the slot keeps the key, marked as
// custos's but unverified, so that it takes no share and the next Enrol
// reuses it instead of another slot. The credentials changed before stay
// changed.
func (c *Card) Enrol(o EnrolOptions) (*Enrolment, error) {
	if err := c.checkEnrolOptions(&o); err != nil {
		return nil, err
	}
	pin, err := c.credentials(o)
	if err != nil {
		return nil, err
	}
	clear(pin)

	slot, err := c.chooseSlot(o.Slot, o.Overwrite)
	if err != nil {
		return nil, err
	}
	pub, err := c.generate(slot, o.Algorithm, o.Touch)
	if err != nil {
		return nil, err
	}

	e := &Enrolment{Card: c.id, Slot: slot, PublicKey: pub}
	digest, aerr := c.attest(e, o.Touch, o.Roots)
	var ae *AttestationError
	if aerr != nil && !errors.As(aerr, &ae) {
		return nil, aerr // the card failed; nothing more can be written
	}
	if err := c.writeMarker(slot, pub, o.Custodian, digest); err != nil {
		if ae != nil {
			return e, ae
		}
		return nil, fmt.Errorf("marking slot %v: %w", slot, err)
	}
	if ae != nil {
		ae.Kept = true
		return e, ae
	}
	return e, nil
}

func (c *Card) checkEnrolOptions(o *EnrolOptions) error {
	if !validText(o.Custodian) {
		return fmt.Errorf("custodian name longer than %d bytes or not UTF-8", maxText)
	}
	if o.Slot != 0 && (o.Slot < FirstSlot || o.Slot > LastSlot) {
		return fmt.Errorf("slot %v is not a retired slot (82 to 95)", o.Slot)
	}
	if o.Algorithm == 0 {
		o.Algorithm = piv.AlgorithmEC256
		if atLeast(c.version, 5, 7) {
			o.Algorithm = piv.AlgorithmX25519
		}
	}
	if o.Algorithm != piv.AlgorithmEC256 && o.Algorithm != piv.AlgorithmX25519 {
		return errors.New("slot key algorithm must be P-256 or X25519")
	}
	if o.Touch == 0 {
		o.Touch = piv.TouchPolicyNever
	}
	if !c.creds.Known {
		// TODO: firmware before 5.3 cannot say whether its PIN is the
		// factory one without trying it; custos refuses such cards.
		return &CardError{Card: c.id, Msg: "the card cannot report whether " +
			"its PIN is the factory one (firmware before 5.3)"}
	}
	def := &DefaultCredentialsError{Card: c.id,
		PIN: c.creds.PINDefault && o.NewPIN == nil,
		PUK: c.creds.PUKDefault && o.NewPUK == nil}
	if def.PIN || def.PUK {
		return def
	}
	for _, p := range []struct {
		name, factory string
		v             []byte
		isDefault     bool
	}{
		{"PIN", piv.DefaultPIN, o.NewPIN, c.creds.PINDefault},
		{"PUK", piv.DefaultPUK, o.NewPUK, c.creds.PUKDefault},
	} {
		if p.isDefault && (len(p.v) < 6 || len(p.v) > 8 || string(p.v) == p.factory) {
			return fmt.Errorf("new %s for %v must be 6 to 8 characters and not "+
				"the factory value", p.name, c.id)
		}
	}
	return nil
}

// credentials replaces factory credentials and learns the management key.
// It returns the PIN, which the caller clears.
func (c *Card) credentials(o EnrolOptions) ([]byte, error) {
	if c.creds.PINRetries == 0 {
		return nil, &PINBlockedError{Card: c.id}
	}
	var pin []byte
	if c.creds.PINDefault {
		if err := c.yk.SetPIN(piv.DefaultPIN, string(o.NewPIN)); err != nil {
			return nil, c.fail("changing the factory PIN", err)
		}
		c.creds.PINDefault = false
		pin = append([]byte(nil), o.NewPIN...)
		if err := c.yk.VerifyPIN(string(pin)); err != nil {
			return nil, c.fail("verifying the new PIN", err)
		}
		c.verified = true
	} else {
		var err error
		if pin, err = c.askPIN(o.Prompt); err != nil {
			return nil, err
		}
	}

	if c.creds.PUKDefault {
		if err := c.yk.SetPUK(piv.DefaultPUK, string(o.NewPUK)); err != nil {
			clear(pin)
			return nil, c.fail("changing the factory PUK", err)
		}
		c.creds.PUKDefault = false
	}
	if err := c.learnKey(pin, o.ManagementKey); err != nil {
		clear(pin)
		return nil, err
	}
	return pin, nil
}

// learnKey sets c.mgmt: a fresh random key replacing the factory one, the
// key stored behind the PIN, or the key given.
func (c *Card) learnKey(pin, given []byte) error {
	if c.creds.KeyDefault {
		key := make([]byte, 24) // AES-192 on 5.4 and later, 3DES before
		if _, err := randReader.Read(key); err != nil {
			return err
		}
		// Store the new key behind the PIN first: if the card is pulled
		// between the two writes it still has the factory key, and the
		// next enrolment starts over.
		md := &piv.Metadata{ManagementKey: &key}
		if err := c.yk.SetMetadata(piv.DefaultManagementKey, md); err != nil {
			return c.fail("storing the management key", err)
		}
		if err := c.yk.SetManagementKey(piv.DefaultManagementKey, key); err != nil {
			return c.fail("changing the factory management key", err)
		}
		c.creds.KeyDefault = false
		c.mgmt = key
		return nil
	}
	md, err := c.yk.Metadata(string(pin))
	if err != nil {
		return c.fail("reading the stored management key", err)
	}
	switch {
	case md.ManagementKey != nil:
		c.mgmt = append([]byte(nil), *md.ManagementKey...)
	case given != nil:
		c.mgmt = append([]byte(nil), given...)
	default:
		return fmt.Errorf("%v: %w", c.id, ErrManagementKeyUnknown)
	}
	return nil
}

// askPIN shows the tries left, asks for the PIN and verifies it. After a
// wrong PIN it asks again while the prompt wants to (PINRetrier).
func (c *Card) askPIN(prompt PINPrompt) ([]byte, error) {
	for {
		pin, err := c.tryPIN(prompt)
		var wrong *PINError
		if r, ok := prompt.(PINRetrier); ok && errors.As(err, &wrong) &&
			r.RetryPIN(wrong) {
			continue
		}
		return pin, err
	}
}

// tryPIN is one try of askPIN.
func (c *Card) tryPIN(prompt PINPrompt) ([]byte, error) {
	if prompt == nil {
		return nil, fmt.Errorf("%v: a PIN is needed and no prompt was given", c.id)
	}
	retries, err := c.pinRetries()
	if err != nil {
		if e, ok := pinFailure(c.id, err); ok {
			return nil, e
		}
		return nil, c.fail("reading PIN tries left", err)
	}
	if retries == 0 {
		return nil, &PINBlockedError{Card: c.id}
	}
	if retries == 1 {
		ok, err := prompt.ConfirmLastTry(c.id)
		if err != nil {
			return nil, fmt.Errorf("asking for the PIN of %v: %w", c.id, err)
		}
		if !ok {
			return nil, fmt.Errorf("%v: %w", c.id, ErrLastTryDeclined)
		}
	}

	pin, err := prompt.PIN(c.id, retries)
	if err != nil {
		return nil, fmt.Errorf("asking for the PIN of %v: %w", c.id, err)
	}
	if len(pin) < 1 || len(pin) > 8 {
		clear(pin)
		return nil, fmt.Errorf("the PIN of %v has 1 to 8 characters; "+
			"no try was used", c.id)
	}
	// TODO: piv-go takes the PIN as a string, an immutable copy custos
	// cannot clear; it lives until the garbage collector reuses it.
	if err := c.yk.VerifyPIN(string(pin)); err != nil {
		clear(pin)
		// A refused VERIFY ends the card's PIN verified state.
		c.verified = false
		if e, ok := pinFailure(c.id, err); ok {
			return nil, e
		}
		return nil, c.fail("verifying the PIN", err)
	}
	c.verified = true
	return pin, nil
}

// pinRetries returns the PIN tries left. A card whose PIN was verified on
// this connection does not say (piv-go then gets 9000 to its empty VERIFY);
// its counter is then full, and a wrong PIN is still counted.
func (c *Card) pinRetries() (int, error) {
	if c.verified && c.creds.PINTotal > 0 {
		return c.creds.PINTotal, nil
	}
	return c.yk.Retries()
}

// unlock makes sure c.mgmt is known, asking for the PIN if needed.
func (c *Card) unlock(prompt PINPrompt) error {
	if c.mgmt != nil {
		return nil
	}
	if c.creds.Known && (c.creds.KeyDefault || c.creds.PINDefault) {
		return &DefaultCredentialsError{Card: c.id, PIN: c.creds.PINDefault,
			Key: c.creds.KeyDefault}
	}
	pin, err := c.askPIN(prompt)
	if err != nil {
		return err
	}
	defer clear(pin)
	return c.learnKey(pin, nil)
}

// chooseSlot returns the slot to enrol: the one asked for, if it is empty,
// a custos slot with no share, or its loss was agreed; else a custos slot
// whose key was never verified (so that a failed enrolment does not use
// up a slot each time), else the first empty retired slot.
func (c *Card) chooseSlot(want Slot, ow Overwrite) (Slot, error) {
	if want != 0 {
		si, err := c.slotInfo(want)
		if err != nil {
			return 0, err
		}
		return want, c.mayOverwrite(si, ow)
	}
	empty := Slot(0)
	for s := FirstSlot; s <= LastSlot; s++ {
		si, err := c.slotInfo(s)
		if err != nil {
			return 0, err
		}
		switch {
		case si == nil && empty == 0:
			empty = s
		case si != nil && si.unverified():
			return s, nil
		}
	}
	if empty == 0 {
		return 0, &CardFullError{Card: c.id}
	}
	return empty, nil
}

// mayOverwrite says whether a slot described by si may be destroyed.
func (c *Card) mayOverwrite(si *SlotInfo, ow Overwrite) error {
	switch {
	case si == nil:
		return nil
	case si.Foreign || si.Err != nil:
		if ow.Foreign {
			return nil
		}
		return &SlotOccupiedError{Card: c.id, Slot: si.Slot, Foreign: true}
	case si.Kind == KindEnrolled:
		return nil
	case ow.SetID != nil && *ow.SetID == si.SetID:
		return nil
	}
	return &SlotOccupiedError{Card: c.id, Slot: si.Slot, SetID: si.SetID, Index: si.Index}
}

// generate makes the custodian key in slot s.
func (c *Card) generate(s Slot, alg piv.Algorithm, touch piv.TouchPolicy) (*ecdh.PublicKey, error) {
	ps, _ := s.piv()
	pub, err := c.yk.GenerateKey(c.mgmt, ps, piv.Key{
		Algorithm: alg, PINPolicy: piv.PINPolicyOnce, TouchPolicy: touch})
	if err != nil {
		return nil, c.fail(fmt.Sprintf("generating a key in slot %v", s), err)
	}
	return toECDH(pub)
}

// writeMarker labels slot s as a custos slot without a share. The marker is
// signed by a throwaway key: it only tells custos the slot is its own, and
// proves nothing. attested is the digest of the attestation certificate
// that vouched for the key, nil if none did.
func (c *Card) writeMarker(s Slot, pub *ecdh.PublicKey, custodian string, attested []byte) error {
	dpub, dpriv, err := ed25519.GenerateKey(randReader)
	if err != nil {
		return err
	}
	r := &record{Kind: KindEnrolled, Custodian: custodian, Dealer: dpub,
		Serial: c.id.Serial, Slot: s, Key: pub, Attested: attested}
	der, err := buildCert(randReader, r, dpriv, time.Now())
	if err != nil {
		return err
	}
	return c.writeCert(s, der)
}

// attest verifies the slot key's attestation chain against roots and fills
// it into e. It returns the digest of the attestation certificate that
// signed it, for the slot's marker. A chain or content that does not check
// out is an AttestationError; other errors are the card's.
func (c *Card) attest(e *Enrolment, touch piv.TouchPolicy, roots *x509.CertPool) ([]byte, error) {
	slotCert, devCert, err := c.readAttestation(e.Slot)
	if err != nil {
		return nil, err
	}
	e.AttestationCert, e.DeviceCert = slotCert.Raw, devCert.Raw
	a, err := c.checkAttestation(e.Slot, e.PublicKey, slotCert, devCert, roots, touch)
	if err != nil {
		return nil, err
	}
	e.Attestation = a
	d := sha256.Sum256(devCert.Raw)
	return d[:], nil
}

// reattest asks the card to attest the key in slot s again, and checks
// the answer speaks of key: against roots when given, else against the
// attestation certificate whose digest the slot's certificate recorded
// when the key was verified at enrolment. It returns the digest of the
// attestation certificate.
func (c *Card) reattest(s Slot, key *ecdh.PublicKey, recorded []byte, roots *x509.CertPool) ([]byte, error) {
	slotCert, devCert, err := c.readAttestation(s)
	if err != nil {
		return nil, err
	}
	d := sha256.Sum256(devCert.Raw)
	if roots == nil {
		if !bytes.Equal(d[:], recorded) {
			return nil, &AttestationError{Card: c.id, Slot: s, Reason: "the " +
				"card's attestation certificate is not the one that vouched " +
				"for the slot at enrolment"}
		}
		roots = x509.NewCertPool()
		roots.AddCert(devCert)
	}
	if _, err := c.checkAttestation(s, key, slotCert, devCert, roots, 0); err != nil {
		return nil, err
	}
	return d[:], nil
}

// readAttestation asks the card for its attestation of slot s and for the
// attestation certificate (slot F9) that signs it.
func (c *Card) readAttestation(s Slot) (slotCert, devCert *x509.Certificate, err error) {
	ps, _ := s.piv()
	if slotCert, err = c.yk.Attest(ps); err != nil {
		return nil, nil, c.fail("reading the slot attestation", err)
	}
	if devCert, err = c.yk.AttestationCertificate(); err != nil {
		return nil, nil, c.fail("reading the attestation certificate", err)
	}
	return slotCert, devCert, nil
}

// checkAttestation verifies the chain from slotCert through devCert to
// roots (nil: Yubico's CAs) and that it attests key, in slot s of this
// card, with PIN policy once and the touch policy asked for (zero: any).
func (c *Card) checkAttestation(s Slot, key *ecdh.PublicKey, slotCert, devCert *x509.Certificate,
	roots *x509.CertPool, touch piv.TouchPolicy) (*piv.Attestation, error) {
	fail := func(why string) error {
		return &AttestationError{Card: c.id, Slot: s, Reason: why}
	}
	v := piv.Verifier{Roots: roots}
	a, err := v.Verify(devCert, slotCert)
	if err != nil {
		return nil, fail("the chain does not verify: " + chainReason(err))
	}
	pub, err := x509.ParsePKIXPublicKey(slotCert.RawSubjectPublicKeyInfo)
	if err != nil {
		return nil, fail("unreadable key")
	}
	got, err := toECDH(pub)
	switch {
	case err != nil || !sameKey(got, key):
		return nil, fail("it attests another key")
	case a.Serial != c.id.Serial:
		return nil, fail(fmt.Sprintf("it names card %d", a.Serial))
	case a.Slot.Key != uint32(s):
		return nil, fail("it names another slot")
	case a.PINPolicy != piv.PINPolicyOnce || (touch != 0 && a.TouchPolicy != touch):
		return nil, fail("its PIN or touch policy is not the one asked for")
	}
	return a, nil
}

// chainReason puts piv-go's verification failure in words, without its
// "error verifying attestation certificate" prefix.
func chainReason(err error) string {
	msg := err.Error()
	if _, rest, ok := strings.Cut(msg, "certificate: "); ok {
		msg = rest
	}
	if strings.Contains(msg, "unknown authority") {
		return "its certificate is signed by an attestation CA that is " +
			"not among the trusted roots"
	}
	return msg
}
