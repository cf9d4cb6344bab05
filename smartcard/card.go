package smartcard

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/x509"
	"errors"
	"fmt"
	"time"

	"github.com/go-piv/piv-go/v2/piv"
)

// Slot is a PIV retired key management slot, 82 to 95 (hex), the slots
// custos keeps custodian keys and shares in.
type Slot uint8

// The retired slots custos uses, first to last.
const (
	FirstSlot Slot = 0x82
	LastSlot  Slot = 0x95
)

// String returns the slot in hex, as PIV tools name it ("82").
func (s Slot) String() string { return fmt.Sprintf("%02X", uint8(s)) }

func (s Slot) piv() (piv.Slot, bool) { return piv.RetiredKeyManagementSlot(uint32(s)) }

// MaxObjectSize is the largest certificate object, in bytes of the PIV
// data object (certificate plus its 9-byte PIV wrapping), that a YubiKey 5
// stores in one slot.
const MaxObjectSize = 3052

// BusyWait bounds how long Open and List wait for a card that another
// program holds.
var BusyWait = 10 * time.Second

// pollEvery is how often custos looks again at a busy or absent card.
const pollEvery = 200 * time.Millisecond

// Card is an open connection to one custodian card. While it is open no
// other program can use the card. A Card is not safe for concurrent use.
type Card struct {
	id      CardID
	yk      *piv.YubiKey
	version [3]byte
	creds   Credentials
	mgmt    []byte // the management key, once learned; cleared on Close

	// verified is set once the PIN was verified on this connection. The
	// card keeps that state until reset (custos resets it on Close), and
	// meanwhile answers an empty VERIFY as if no try had ever failed.
	verified bool
}

// CardInfo describes a card in a reader, as List and Card.Info see it.
type CardInfo struct {
	Card        CardID
	Version     string // firmware, "5.7.1"
	Credentials Credentials
	Slots       []SlotInfo // non-empty retired slots
	Busy        bool       // held by another program; nothing else is known
	Err         error      // the card could not be read
}

// SlotInfo is what a slot's certificate says, read without the PIN.
type SlotInfo struct {
	Slot    Slot
	Foreign bool // a key or certificate custos did not write
	Kind    Kind // for custos slots

	SetID     [16]byte
	Index     int
	Custodian string
	Label     string
	Dealer    ed25519.PublicKey
	Written   time.Time

	// Attested says the key's attestation chain was verified when the
	// slot was enrolled (see Enrol). A custos slot without it takes no
	// share.
	Attested bool
	// AttestationSHA256 is the SHA-256 of the attestation certificate that
	// vouched for the slot key at enrolment, for the set record.
	AttestationSHA256 []byte

	// SignatureValid says whether the dealer signature verifies with the
	// dealer key the certificate carries. It proves integrity, not origin:
	// compare Dealer with the set record for that.
	SignatureValid bool
	// Err is set when the certificate is custos's but malformed.
	Err error
}

// List describes the card in every reader: serial, firmware, credentials
// state and the slots custos can read without a PIN. A busy card is listed
// with Busy set rather than waited for.
func List(ctx context.Context) ([]CardInfo, error) {
	raw, err := rawEstablish()
	if err != nil {
		return nil, fmt.Errorf("connecting to the smart card service: %w", err)
	}
	defer raw.release()
	readers, err := raw.readers()
	if err != nil {
		return nil, fmt.Errorf("listing readers: %w", err)
	}

	var out []CardInfo
	for _, reader := range readers {
		if err := ctx.Err(); err != nil {
			return out, err
		}
		info, ok := listReader(raw, reader)
		if ok {
			out = append(out, info)
		}
	}
	return out, nil
}

func listReader(raw *rawContext, reader string) (CardInfo, bool) {
	p, err := probeReader(raw, reader)
	var pe *pcscError
	switch {
	case errors.As(err, &pe) && pe.busy():
		return CardInfo{Card: CardID{Reader: reader}, Busy: true}, true
	case errors.As(err, &pe) && pe.absent():
		return CardInfo{}, false
	case err != nil:
		return CardInfo{Card: CardID{Reader: reader}, Err: err}, true
	}

	c, err := openReader(reader, p)
	if err != nil {
		return CardInfo{Card: CardID{Serial: p.serial, Reader: reader}, Err: err}, true
	}
	defer c.Close()
	info, err := c.Info()
	if err != nil {
		info.Err = err
	}
	return *info, true
}

// Open finds the card with this serial number in any reader and opens it.
// It never picks a card by reader position. When some reader's card is
// held by another program, Open waits up to BusyWait (or ctx) for it before
// returning CardBusyError; a card in no reader is CardAbsentError.
func Open(ctx context.Context, serial uint32) (*Card, error) {
	return openWait(ctx, serial, BusyWait, false)
}

// openWait looks for the card until found or wait has passed. With
// absentToo it also waits for a card that is in no reader (a pulled card
// being put back).
func openWait(ctx context.Context, serial uint32, wait time.Duration, absentToo bool) (*Card, error) {
	start := time.Now()
	ctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	for {
		c, busy, err := tryOpen(serial)
		if err != nil || c != nil {
			return c, err
		}
		if len(busy) == 0 && !absentToo {
			return nil, &CardAbsentError{Card: CardID{Serial: serial}}
		}
		select {
		case <-ctx.Done():
			if len(busy) == 0 {
				return nil, &CardAbsentError{Card: CardID{Serial: serial}}
			}
			return nil, &CardBusyError{Card: CardID{Serial: serial},
				Readers: busy, Waited: time.Since(start)}
		case <-time.After(pollEvery):
		}
	}
}

// tryOpen looks once at every reader. It returns the card, or the readers
// whose card was busy.
func tryOpen(serial uint32) (*Card, []string, error) {
	raw, err := rawEstablish()
	if err != nil {
		return nil, nil, fmt.Errorf("connecting to the smart card service: %w", err)
	}
	readers, err := raw.readers()
	if err != nil {
		raw.release()
		return nil, nil, fmt.Errorf("listing readers: %w", err)
	}

	var busy []string
	for _, reader := range readers {
		p, err := probeReader(raw, reader)
		var pe *pcscError
		if errors.As(err, &pe) && pe.busy() {
			busy = append(busy, reader)
			continue
		}
		if err != nil || p.serial != serial {
			continue
		}
		raw.release()
		c, err := openReader(reader, p)
		if err != nil {
			// Another program took the card between the probe and now.
			return nil, []string{reader}, nil
		}
		return c, nil, nil
	}
	raw.release()
	return nil, busy, nil
}

// openReader opens the card a probe found and checks it is still that card.
func openReader(reader string, p *probe) (*Card, error) {
	id := CardID{Serial: p.serial, Reader: reader}
	yk, err := piv.Open(reader)
	if err != nil {
		// TODO: piv-go v2.6.0 leaks its exclusive connection when SELECT
		// fails in Open (a card pulled at that moment), so the reader then
		// looks busy to this process until the card is pulled again.
		// custos reports that state as a removed card, which asks for the
		// one action that clears it.
		err = readerState(id, err)
		var busy *CardBusyError
		if errors.As(err, &busy) {
			err = &CardAbsentError{Card: id, Removed: true}
		}
		return nil, err
	}
	serial, err := yk.Serial()
	if err != nil || serial != p.serial {
		yk.Close()
		return nil, &CardAbsentError{Card: id, Removed: true}
	}
	return &Card{id: id, yk: yk, version: p.version, creds: p.creds}, nil
}

// ID names the card.
func (c *Card) ID() CardID { return c.id }

// Close forgets the management key, releases the card and resets it, so
// that neither the PIN verification nor the management key authentication
// outlives custos's use of the card (piv-go alone leaves both in place for
// the next program).
func (c *Card) Close() error {
	clear(c.mgmt)
	c.mgmt = nil
	if c.yk == nil {
		return nil
	}
	err := c.yk.Close()
	c.yk = nil
	resetReader(c.id.Reader)
	return err
}

// Info reads the card's state and slots, without the PIN.
func (c *Card) Info() (*CardInfo, error) {
	info := &CardInfo{
		Card:        c.id,
		Version:     fmt.Sprintf("%d.%d.%d", c.version[0], c.version[1], c.version[2]),
		Credentials: c.creds,
	}
	if r, err := c.pinRetries(); err == nil {
		info.Credentials.PINRetries = r
	}
	for s := FirstSlot; s <= LastSlot; s++ {
		si, err := c.slotInfo(s)
		if err != nil {
			return info, err
		}
		if si != nil {
			info.Slots = append(info.Slots, *si)
		}
	}
	return info, nil
}

// Shares lists the custos shares on the card, from the certificates alone.
func (c *Card) Shares() ([]SlotInfo, error) {
	info, err := c.Info()
	if err != nil {
		return nil, err
	}
	var out []SlotInfo
	for _, s := range info.Slots {
		if !s.Foreign && s.Kind == KindShare {
			out = append(out, s)
		}
	}
	return out, nil
}

// slotInfo describes one slot; nil when it holds neither key nor
// certificate.
func (c *Card) slotInfo(s Slot) (*SlotInfo, error) {
	der, err := c.readCert(s)
	if err != nil {
		return nil, err
	}
	if der == nil {
		has, err := c.hasKey(s)
		if err != nil || !has {
			return nil, err
		}
		return &SlotInfo{Slot: s, Foreign: true}, nil
	}
	r, err := parseRecord(der)
	if errors.Is(err, errNotCustos) {
		return &SlotInfo{Slot: s, Foreign: true}, nil
	}
	if err != nil {
		return &SlotInfo{Slot: s, Err: err}, nil
	}
	return &SlotInfo{
		Slot: s, Kind: r.Kind, SetID: r.SetID, Index: r.Index,
		Custodian: r.Custodian, Label: r.Label, Dealer: r.Dealer,
		Written: r.NotBefore, SignatureValid: r.SigOK,
		Attested: r.Attested != nil, AttestationSHA256: r.Attested,
	}, nil
}

// unverified reports a custos slot with no share whose key's attestation
// was never verified: Enrol reuses it.
func (si *SlotInfo) unverified() bool {
	return !si.Foreign && si.Err == nil && si.Kind == KindEnrolled && !si.Attested
}

// readCert returns the DER certificate in slot s, or nil if there is none.
func (c *Card) readCert(s Slot) ([]byte, error) {
	ps, _ := s.piv()
	cert, err := c.yk.Certificate(ps)
	if errors.Is(err, piv.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		// piv-go fails to parse a certificate object that holds no
		// X.509 certificate; that is a slot custos did not write.
		if statusWord(err) == 0 && c.alive() {
			return []byte{}, nil
		}
		return nil, c.fail("reading certificate", err)
	}
	return cert.Raw, nil
}

// hasKey reports whether slot s holds a private key.
func (c *Card) hasKey(s Slot) (bool, error) {
	ps, _ := s.piv()
	_, err := c.yk.KeyInfo(ps)
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, piv.ErrNotFound):
		return false, nil
	}
	return false, c.fail("reading key metadata", err)
}

// alive reports whether the connection still works, with a cheap command.
func (c *Card) alive() bool {
	_, err := c.yk.Serial()
	return err == nil
}

// fail turns an error from piv-go into one of this package's errors. A
// refusal by the card keeps its status word; a failure without one is a
// transport failure, and fail asks the resource manager what happened:
// the card was pulled (CardAbsentError), taken by another program
// (CardBusyError), or reset (custos reconnects).
func (c *Card) fail(step string, err error) error {
	if err == nil {
		return nil
	}
	if statusWord(err) != 0 || typed(err) {
		return cardErr(c.id, step, err)
	}
	if _, ok := pinFailure(c.id, err); ok {
		return cardErr(c.id, step, err)
	}
	return fmt.Errorf("%s: %w", step, c.diagnose(err))
}

// diagnose closes the connection and looks at the reader again.
func (c *Card) diagnose(cause error) error {
	if c.yk != nil {
		c.yk.Close()
		c.yk = nil
	}
	raw, err := rawEstablish()
	if err != nil {
		return &CardError{Card: c.id, Err: cause}
	}
	p, err := probeReader(raw, c.id.Reader)
	raw.release()
	var pe *pcscError
	switch {
	case errors.As(err, &pe) && pe.absent():
		return &CardAbsentError{Card: c.id, Removed: true}
	case errors.As(err, &pe) && pe.busy():
		return &CardBusyError{Card: c.id}
	case err != nil:
		return &CardError{Card: c.id, Err: fmt.Errorf("%w (probe: %v)", cause, err)}
	case p.serial != c.id.Serial:
		return &CardAbsentError{Card: c.id, Removed: true}
	}
	if err := c.reopen(p); err != nil {
		return err
	}
	return &CardError{Card: c.id, Err: cause}
}

// readerState explains a failure to talk to the card in id.Reader by
// asking the resource manager: pulled, taken by another program, or else a
// card error.
func readerState(id CardID, cause error) error {
	raw, err := rawEstablish()
	if err != nil {
		return &CardError{Card: id, Err: cause}
	}
	defer raw.release()
	p, err := probeReader(raw, id.Reader)
	var pe *pcscError
	switch {
	case errors.As(err, &pe) && pe.absent():
		return &CardAbsentError{Card: id, Removed: true}
	case errors.As(err, &pe) && pe.busy():
		return &CardBusyError{Card: id}
	case err == nil && p.serial != id.Serial:
		return &CardAbsentError{Card: id, Removed: true}
	}
	return &CardError{Card: id, Err: cause}
}

// reopen connects again to the same card after a reset or reinsertion.
func (c *Card) reopen(p *probe) error {
	n, err := openReader(c.id.Reader, p)
	if err != nil {
		return err
	}
	c.yk, c.version, c.creds = n.yk, n.version, n.creds
	return nil
}

// comeBack waits up to wait for the card to be in a reader again (it may
// be another reader) and reconnects.
func (c *Card) comeBack(ctx context.Context, wait time.Duration) error {
	if c.yk != nil {
		c.yk.Close()
		c.yk = nil
	}
	n, err := openWait(ctx, c.id.Serial, wait, true)
	if err != nil {
		return err
	}
	c.id, c.yk, c.version, c.creds = n.id, n.yk, n.version, n.creds
	return nil
}

// slotKey returns the public key the card holds in slot s, from its
// metadata (firmware 5.3 and later) or its attestation.
func (c *Card) slotKey(s Slot) (any, error) {
	ps, _ := s.piv()
	if atLeast(c.version, 5, 3) {
		ki, err := c.yk.KeyInfo(ps)
		if err != nil {
			return nil, c.fail("reading key metadata", err)
		}
		return ki.PublicKey, nil
	}
	cert, err := c.yk.Attest(ps)
	if err != nil {
		return nil, c.fail("reading key attestation", err)
	}
	if cert.PublicKey != nil {
		return cert.PublicKey, nil
	}
	return x509.ParsePKIXPublicKey(cert.RawSubjectPublicKeyInfo)
}

// objectSize is the size of the PIV certificate object holding der:
// 70 len cert 71 01 00 fe 00.
func objectSize(der []byte) int {
	return 1 + lenSize(len(der)) + len(der) + 3 + 2
}

func lenSize(n int) int {
	switch {
	case n < 0x80:
		return 1
	case n < 0x100:
		return 2
	}
	return 3
}

// writeCert stores der in slot s and reads it back.
func (c *Card) writeCert(s Slot, der []byte) error {
	if n := objectSize(der); n > MaxObjectSize {
		return &ObjectTooLargeError{Card: c.id, Slot: s, Size: n, Max: MaxObjectSize}
	}
	ps, _ := s.piv()
	err := c.yk.SetCertificate(c.mgmt, ps, &x509.Certificate{Raw: der})
	if err != nil {
		return c.fail("writing certificate", err)
	}
	got, err := c.readCert(s)
	if err != nil {
		return fmt.Errorf("reading back certificate: %w", err)
	}
	if !bytes.Equal(got, der) {
		return &CardError{Card: c.id, Msg: "the certificate read back differs from the one written"}
	}
	return nil
}
