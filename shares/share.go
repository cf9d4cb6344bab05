package shares

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"
)

// Version is the share format version this package writes and reads.
const Version = 1

// magic starts every binary share.
var magic = []byte("CSTS")

// sigContext is prefixed to the signed bytes so that a dealer signature can
// never be mistaken for a signature over anything else.
const sigContext = "custos share signature v1\x00"

const (
	maxText      = 200 // bytes in a label or a custodian name
	keyShareSize = 33  // a 32-byte data key share and its x coordinate
	commitSize   = 16  // the data key commitment
)

// Payload modes: the sealed secret either rides in every share or lives in
// a separate sealed file whose digest every share binds.
const (
	payloadInline   = 1
	payloadExternal = 2
)

// SetID names one split. It is random, 128 bits.
type SetID [16]byte

// String returns the ID as uppercase hex in groups of four.
func (id SetID) String() string { return groupHex(id[:]) }

// Short returns the first eight hex digits, enough for people to tell sets
// apart at a glance.
func (id SetID) Short() string { return strings.ToUpper(hex.EncodeToString(id[:4])) }

// MarshalText encodes the ID as plain hex for JSON.
func (id SetID) MarshalText() ([]byte, error) {
	return []byte(strings.ToUpper(hex.EncodeToString(id[:]))), nil
}

// UnmarshalText parses hex, with or without spaces.
func (id *SetID) UnmarshalText(b []byte) error {
	s := strings.ReplaceAll(string(b), " ", "")
	v, err := hex.DecodeString(s)
	if err != nil || len(v) != len(id) {
		return fmt.Errorf("set ID %q is not 32 hex digits", b)
	}
	copy(id[:], v)
	return nil
}

// Share is one custodian's part of a split secret, as carried on paper or a
// card. Every field but Source is covered by the dealer's signature.
type Share struct {
	Version   int
	SetID     SetID
	Created   time.Time // to the second, UTC
	Threshold int       // k
	Count     int       // n
	Index     int       // 1..n, this custodian's number in the set
	Kind      Kind
	Algorithm string // "AES-256", "RSA-3072", …
	Label     string
	Custodian string
	Checks    []CheckValue
	// Commit is derived from the data key; a rebuilt data key that does not
	// give it back is wrong, whatever the payload.
	Commit []byte

	// Inline holds the sealed secret when it rides in the share.
	Inline []byte
	// SealedDigest and SealedSize bind the separate sealed file when the
	// secret is too large to ride inline.
	SealedDigest []byte
	SealedSize   uint64

	// KeyShare is this custodian's Shamir share of the data key: 32 bytes
	// and the x coordinate, as github.com/hashicorp/vault/shamir lays it out.
	KeyShare  []byte
	DealerKey ed25519.PublicKey
	Signature []byte

	// Source says where the share came from ("bo.png", "card 12345678"). It
	// is not encoded; callers set it so errors can name the share.
	Source string
}

// X returns the x coordinate of the key share, never 0 in a valid share.
func (s *Share) X() byte {
	if len(s.KeyShare) != keyShareSize {
		return 0
	}
	return s.KeyShare[keyShareSize-1]
}

// External reports whether the secret lives in a separate sealed file.
func (s *Share) External() bool { return s.Inline == nil }

// Name describes the share for messages: "share 3 (Chen, bo.png)".
func (s *Share) Name() string {
	var parts []string
	if s.Custodian != "" {
		parts = append(parts, s.Custodian)
	}
	if s.Source != "" {
		parts = append(parts, s.Source)
	}
	if len(parts) == 0 {
		return fmt.Sprintf("share %d", s.Index)
	}
	return fmt.Sprintf("share %d (%s)", s.Index, strings.Join(parts, ", "))
}

// DealerFingerprint returns the short fingerprint of the dealer key printed
// on paper: the first 8 bytes of its SHA-256, in hex groups.
func (s *Share) DealerFingerprint() string { return DealerFingerprint(s.DealerKey) }

// DealerFingerprint formats the fingerprint of a dealer public key.
func DealerFingerprint(pub ed25519.PublicKey) string {
	sum := sha256.Sum256(pub)
	return groupHex(sum[:8])
}

// appendSetHeader appends the fields every share of a set has in common.
// They are the associated data of the sealed secret, so a share's header
// cannot be altered without the secret failing to open.
func (s *Share) appendSetHeader(b []byte) []byte {
	b = append(b, magic...)
	b = append(b, byte(s.Version))
	b = append(b, s.SetID[:]...)
	b = binary.BigEndian.AppendUint64(b, uint64(s.Created.Unix()))
	b = append(b, byte(s.Threshold), byte(s.Count), byte(s.Kind))
	b = appendString(b, s.Algorithm)
	b = appendString(b, s.Label)
	b = append(b, byte(len(s.Checks)))
	for _, c := range s.Checks {
		b = append(b, byte(c.Method), byte(len(c.Value)))
		b = append(b, c.Value...)
	}
	b = append(b, s.Commit...)
	if s.Inline == nil {
		b = append(b, payloadExternal)
		b = append(b, s.SealedDigest...)
		b = binary.BigEndian.AppendUint64(b, s.SealedSize)
	} else {
		b = append(b, payloadInline)
	}
	b = append(b, s.DealerKey...)
	return b
}

// aad is the associated data for sealing the secret: the set header.
func (s *Share) aad() []byte { return s.appendSetHeader([]byte("custos sealed secret v1\x00")) }

// signedBytes returns the encoding of everything but the signature.
func (s *Share) signedBytes() []byte {
	b := s.appendSetHeader(nil)
	b = append(b, byte(s.Index))
	b = appendString(b, s.Custodian)
	b = binary.BigEndian.AppendUint16(b, uint16(len(s.Inline)))
	b = append(b, s.Inline...)
	b = append(b, s.KeyShare...)
	return b
}

// Marshal returns the binary encoding of a signed share.
func (s *Share) Marshal() []byte {
	return append(s.signedBytes(), s.Signature...)
}

func (s *Share) sign(dealer ed25519.PrivateKey) {
	s.Signature = ed25519.Sign(dealer, append([]byte(sigContext), s.signedBytes()...))
}

// Fingerprint is SHA-256 of the share's encoding; two scans of one paper
// have the same fingerprint.
func (s *Share) Fingerprint() [32]byte { return sha256.Sum256(s.Marshal()) }

func appendString(b []byte, s string) []byte {
	b = append(b, byte(len(s)))
	return append(b, s...)
}

// ParseError says what is wrong with one share's bytes.
type ParseError struct {
	Source string // where the share came from, if known
	Reason string
}

func (e *ParseError) Error() string {
	if e.Source != "" {
		return fmt.Sprintf("share %s: %s", e.Source, e.Reason)
	}
	return "share: " + e.Reason
}

// ErrBadSignature is wrapped by errors for shares whose dealer signature
// does not verify: altered or forged.
var ErrBadSignature = errors.New("dealer signature does not verify")

// Parse decodes a binary share and checks it alone: structure, field
// ranges and the dealer's signature. source names the share in errors.
func Parse(b []byte, source string) (*Share, error) {
	s, err := parse(b)
	if err != nil {
		return nil, &ParseError{Source: source, Reason: err.Error()}
	}
	s.Source = source
	return s, nil
}

func parse(b []byte) (*Share, error) {
	r := &reader{b: b}
	if !bytes.Equal(r.next(len(magic)), magic) {
		return nil, errors.New("not a custos share (bad magic)")
	}
	s := &Share{}
	s.Version = int(r.byte())
	if r.err == nil && s.Version != Version {
		return nil, fmt.Errorf("format version %d is not supported (this custos reads version %d)", s.Version, Version)
	}
	copy(s.SetID[:], r.next(16))
	s.Created = time.Unix(int64(r.uint64()), 0).UTC()
	s.Threshold, s.Count, s.Kind = int(r.byte()), int(r.byte()), Kind(r.byte())
	s.Algorithm = r.string()
	s.Label = r.string()
	nchecks := int(r.byte())
	for i := 0; i < nchecks && r.err == nil; i++ {
		m := CheckMethod(r.byte())
		v := r.next(int(r.byte()))
		s.Checks = append(s.Checks, CheckValue{m, bytes.Clone(v)})
	}
	s.Commit = bytes.Clone(r.next(commitSize))
	switch mode := r.byte(); mode {
	case payloadInline:
	case payloadExternal:
		s.SealedDigest = bytes.Clone(r.next(32))
		s.SealedSize = r.uint64()
	default:
		if r.err == nil {
			return nil, fmt.Errorf("unknown payload mode %d", mode)
		}
	}
	s.DealerKey = ed25519.PublicKey(bytes.Clone(r.next(ed25519.PublicKeySize)))
	s.Index = int(r.byte())
	s.Custodian = r.string()
	inline := r.next(int(r.uint16()))
	if s.SealedDigest == nil {
		s.Inline = bytes.Clone(inline)
	} else if len(inline) != 0 && r.err == nil {
		return nil, errors.New("share has both an inline and an external secret")
	}
	s.KeyShare = bytes.Clone(r.next(keyShareSize))
	s.Signature = bytes.Clone(r.next(ed25519.SignatureSize))
	if r.err != nil {
		return nil, errors.New("truncated: the share ends early")
	}
	if len(r.b) != 0 {
		return nil, fmt.Errorf("%d unexpected bytes after the signature", len(r.b))
	}
	if err := s.validate(); err != nil {
		return nil, err
	}
	if !ed25519.Verify(s.DealerKey, append([]byte(sigContext), s.signedBytes()...), s.Signature) {
		return nil, fmt.Errorf("%w: the share was altered or forged", ErrBadSignature)
	}
	return s, nil
}

// validate checks field ranges that a signature alone does not make sane.
func (s *Share) validate() error {
	switch {
	case s.Threshold < 2:
		return fmt.Errorf("threshold %d is below 2", s.Threshold)
	case s.Count < s.Threshold:
		return fmt.Errorf("count %d is below threshold %d", s.Count, s.Threshold)
	case s.Index == 0:
		return errors.New("index 0 is not a valid share index")
	case s.Index > s.Count:
		return fmt.Errorf("index %d is beyond the set's %d shares", s.Index, s.Count)
	case s.X() == 0:
		return errors.New("key share has x coordinate 0")
	case kindNames[s.Kind] == "":
		return fmt.Errorf("unknown secret kind %d", s.Kind)
	case len(s.Checks) == 0:
		return errors.New("share has no check value")
	case !utf8.ValidString(s.Label) || !utf8.ValidString(s.Custodian):
		return errors.New("label or custodian name is not valid UTF-8")
	case s.Inline == nil && len(s.SealedDigest) != 32:
		return errors.New("share has no secret")
	case s.Inline != nil && len(s.Inline) < 12+16:
		return errors.New("the sealed secret is too short")
	}
	return nil
}

// reader reads the binary share format; the first short read sets err and
// every later read returns zeros.
type reader struct {
	b   []byte
	err error
}

func (r *reader) next(n int) []byte {
	if r.err != nil || n > len(r.b) {
		r.err = errors.New("short")
		return make([]byte, n)
	}
	v := r.b[:n]
	r.b = r.b[n:]
	return v
}

func (r *reader) byte() byte     { return r.next(1)[0] }
func (r *reader) uint16() uint16 { return binary.BigEndian.Uint16(r.next(2)) }
func (r *reader) uint64() uint64 { return binary.BigEndian.Uint64(r.next(8)) }
func (r *reader) string() string { return string(r.next(int(r.byte()))) }
