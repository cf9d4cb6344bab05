package smartcard

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// PC/SC return codes custos acts on (pcsclite.h, winerror.h).
const (
	pcscUnknownReader     = 0x80100009
	pcscCommError         = 0x80100013
	pcscNotTransacted     = 0x80100016
	pcscCommDataLost      = 0x8010002F
	pcscSharingViolation  = 0x8010000B
	pcscNoSmartcard       = 0x8010000C
	pcscReaderUnavailable = 0x80100017
	pcscNoService         = 0x8010001D
	pcscServiceStopped    = 0x8010001E
	pcscNoReaders         = 0x8010002E
	pcscUnresponsive      = 0x80100066
	pcscUnpowered         = 0x80100067
	pcscReset             = 0x80100068
	pcscRemoved           = 0x80100069
)

var errShortResponse = errors.New("card response shorter than a status word")

// pcscError is a PC/SC resource manager return code.
type pcscError struct{ code uint32 }

func rcError(rc int64) error {
	if rc == 0 {
		return nil
	}
	return &pcscError{code: uint32(rc)}
}

func (e *pcscError) Error() string {
	switch {
	case e.busy():
		return "card in use by another program"
	case e.absent():
		return "no card in the reader"
	case e.code == pcscNoService || e.code == pcscServiceStopped:
		return "the smart card service (pcscd) is not running"
	case e.code == pcscReset:
		return "the card was reset by another program"
	}
	return fmt.Sprintf("smart card service error 0x%08x", e.code)
}

func (e *pcscError) busy() bool { return e.code == pcscSharingViolation }

// absent reports a card that is gone or does not answer. A card pulled a
// moment ago may still be listed by pcscd, which then fails the transfer
// (not transacted, communication error) until it polls the reader.
func (e *pcscError) absent() bool {
	switch e.code {
	case pcscNoSmartcard, pcscRemoved, pcscUnpowered, pcscUnresponsive,
		pcscUnknownReader, pcscReaderUnavailable, pcscNotTransacted,
		pcscCommError, pcscCommDataLost:
		return true
	}
	return false
}

// Credentials is what a card says about its PIN, PUK and management key,
// read with Yubico's GET METADATA without presenting any of them.
type Credentials struct {
	// Known is false when the card cannot say (firmware before 5.3, or a
	// platform where custos cannot send the command).
	Known bool

	PINDefault, PUKDefault, KeyDefault bool
	PINRetries, PUKRetries             int // tries left
	PINTotal                           int // tries after a correct PIN
}

// probe is what custos learns from a card before piv-go opens it.
type probe struct {
	serial  uint32
	version [3]byte
	creds   Credentials
}

// Yubico PIV extension instructions and references (Yubico "PIV
// extensions": GET VERSION fd, GET SERIAL f8, GET METADATA f7).
var (
	apduSelectPIV = []byte{0x00, 0xa4, 0x04, 0x00, 0x05,
		0xa0, 0x00, 0x00, 0x03, 0x08}
	apduVersion = []byte{0x00, 0xfd, 0x00, 0x00, 0x00}
	apduSerial  = []byte{0x00, 0xf8, 0x00, 0x00, 0x00}
)

func apduMetadata(ref byte) []byte { return []byte{0x00, 0xf7, 0x00, ref, 0x00} }

const (
	refPIN = 0x80
	refPUK = 0x81
	refKey = 0x9b
)

// errNotPIV reports a card that does not answer as a PIV card.
var errNotPIV = errors.New("the card has no PIV application")

// probeReader connects to the card in reader and asks it who it is.
func probeReader(ctx *rawContext, reader string) (*probe, error) {
	conn, err := ctx.connect(reader)
	if err != nil {
		return nil, err
	}
	defer conn.close()
	return probeCard(conn.transmit)
}

// resetReader resets the card in reader, so that no PIN verification or
// management key authentication survives, and probes it.
func resetReader(reader string) (*probe, error) {
	ctx, err := rawEstablish()
	if err != nil {
		return nil, err
	}
	defer ctx.release()
	conn, err := ctx.connect(reader)
	if err != nil {
		return nil, err
	}
	p, err := probeCard(conn.transmit)
	if err != nil {
		// A card that does not answer is not reset: asking vpcd to
		// reset a card that is gone leaves its reader unusable.
		conn.close()
		return nil, err
	}
	conn.closeReset()
	return p, nil
}

// probeCard runs SELECT, GET VERSION, GET SERIAL and, on firmware 5.3 and
// later, GET METADATA for the PIN, PUK and management key.
func probeCard(tx func([]byte) ([]byte, uint16, error)) (*probe, error) {
	if _, sw, err := tx(apduSelectPIV); err != nil {
		return nil, err
	} else if sw != 0x9000 {
		return nil, errNotPIV
	}

	v, sw, err := tx(apduVersion)
	if err != nil {
		return nil, err
	}
	if sw != 0x9000 || len(v) != 3 {
		return nil, errNotPIV
	}
	p := &probe{version: [3]byte{v[0], v[1], v[2]}}

	s, sw, err := tx(apduSerial)
	if err != nil {
		return nil, err
	}
	if sw != 0x9000 || len(s) != 4 {
		// TODO: YubiKey 4 and NEO give their serial only through the OTP
		// applet; custos requires firmware 5 to find cards by serial.
		return nil, fmt.Errorf("reading serial: %w", errNotPIV)
	}
	p.serial = binary.BigEndian.Uint32(s)

	if !atLeast(p.version, 5, 3) {
		return p, nil
	}
	p.creds, err = readCredentials(tx)
	return p, err
}

func readCredentials(tx func([]byte) ([]byte, uint16, error)) (Credentials, error) {
	c := Credentials{Known: true}
	for _, ref := range []byte{refPIN, refPUK, refKey} {
		resp, sw, err := tx(apduMetadata(ref))
		if err != nil {
			return Credentials{}, err
		}
		if sw != 0x9000 {
			return Credentials{}, nil
		}
		m, err := parseMetadata(resp)
		if err != nil {
			return Credentials{}, fmt.Errorf("reading metadata: %w", err)
		}
		switch ref {
		case refPIN:
			c.PINDefault, c.PINRetries, c.PINTotal = m.isDefault, m.retries, m.total
		case refPUK:
			c.PUKDefault, c.PUKRetries = m.isDefault, m.retries
		case refKey:
			c.KeyDefault = m.isDefault
		}
	}
	return c, nil
}

// metadata holds the GET METADATA fields custos reads: tag 05 "default
// value" (01 when the factory value is set) and tag 06 retries (total,
// remaining).
type metadata struct {
	isDefault  bool
	hasDefault bool
	retries    int
	total      int
}

func parseMetadata(b []byte) (metadata, error) {
	var m metadata
	for len(b) > 0 {
		tag, val, rest, err := nextTLV(b)
		if err != nil {
			return m, err
		}
		b = rest
		switch tag {
		case 0x05:
			if len(val) != 1 {
				return m, errors.New("bad default-value field")
			}
			m.isDefault, m.hasDefault = val[0] == 1, true
		case 0x06:
			if len(val) != 2 {
				return m, errors.New("bad retries field")
			}
			m.total, m.retries = int(val[0]), int(val[1])
		}
	}
	if !m.hasDefault {
		return m, errors.New("no default-value field")
	}
	return m, nil
}

// nextTLV splits one BER-TLV with a one-byte tag off b.
func nextTLV(b []byte) (tag byte, val, rest []byte, err error) {
	if len(b) < 2 {
		return 0, nil, nil, errors.New("truncated TLV")
	}
	tag, n, b := b[0], int(b[1]), b[2:]
	switch {
	case n == 0x81 && len(b) >= 1:
		n, b = int(b[0]), b[1:]
	case n == 0x82 && len(b) >= 2:
		n, b = int(b[0])<<8|int(b[1]), b[2:]
	case n >= 0x80:
		return 0, nil, nil, errors.New("bad TLV length")
	}
	if n > len(b) {
		return 0, nil, nil, errors.New("truncated TLV")
	}
	return tag, b[:n], b[n:], nil
}

func atLeast(v [3]byte, major, minor byte) bool {
	if v[0] != major {
		return v[0] > major
	}
	return v[1] >= minor
}
