package smartcard

import (
	"bytes"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/sha256"
	"crypto/x509"
	"encoding/asn1"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
	"unicode/utf8"

	"golang.org/x/crypto/cryptobyte"
	casn1 "golang.org/x/crypto/cryptobyte/asn1"
)

// OIDArc is the object identifier arc under which custos names its
// certificate extensions:
//
//	arc.1  format      SEQUENCE { version INTEGER (1), kind ENUMERATED
//	                   { enrolled (1), share (2) } }
//	arc.2  set ID      OCTET STRING (16)
//	arc.3  index       INTEGER (1..255)
//	arc.4  custodian   UTF8String
//	arc.5  label       UTF8String
//	arc.6  dealer key  OCTET STRING (32, Ed25519 public key)
//	arc.7  card        SEQUENCE { serial INTEGER, slot INTEGER }
//	arc.8  sealed      OCTET STRING (see seal.go)
//	arc.9  attested    OCTET STRING (32): SHA-256 of the card's attestation
//	                   (F9) certificate that signed the slot key's
//	                   attestation when custos verified it
//
// A certificate without arc.9 marks a key custos made but whose
// attestation it never verified (or which was enrolled before custos
// recorded it): such a slot takes no share until it is enrolled again.
//
// All are non-critical, so other PIV tools still read the certificate.
//
// TODO: the arc sits under 1.3.6.1.4.1.32473, the IANA enterprise number
// reserved for documentation (RFC 5612), until custos has a Private
// Enterprise Number of its own. Moving it makes cards written before
// unreadable unless parseRecord accepts both arcs.
var OIDArc = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 32473, 2672, 1}

func oid(n int) asn1.ObjectIdentifier {
	return append(append(asn1.ObjectIdentifier{}, OIDArc...), n)
}

var (
	oidFormat    = oid(1)
	oidSetID     = oid(2)
	oidIndex     = oid(3)
	oidCustodian = oid(4)
	oidLabel     = oid(5)
	oidDealer    = oid(6)
	oidCard      = oid(7)
	oidSealed    = oid(8)
	oidAttested  = oid(9)

	oidEd25519 = asn1.ObjectIdentifier{1, 3, 101, 112}
	oidCN      = asn1.ObjectIdentifier{2, 5, 4, 3}
)

const formatVersion = 1

// Kind says what a custos certificate marks its slot as.
type Kind int

// Kinds of custos slot.
const (
	// KindEnrolled is a slot whose key custos generated for a custodian
	// and which holds no share yet (or whose share was wiped).
	KindEnrolled Kind = 1
	// KindShare is a slot holding a sealed share.
	KindShare Kind = 2
)

func (k Kind) String() string {
	switch k {
	case KindEnrolled:
		return "enrolled, no share"
	case KindShare:
		return "share"
	}
	return fmt.Sprintf("kind(%d)", int(k))
}

// record is the content of a custos certificate.
type record struct {
	Kind      Kind
	SetID     [16]byte // zero for KindEnrolled
	Index     int      // zero for KindEnrolled
	Custodian string
	Label     string
	Dealer    ed25519.PublicKey
	Serial    uint32
	Slot      Slot
	Sealed    []byte // nil for KindEnrolled
	// Attested is the SHA-256 of the attestation certificate (slot F9)
	// that vouched for the slot key when its chain was verified; nil when
	// it never was.
	Attested []byte

	Key       *ecdh.PublicKey // the certificate's subject key: the slot key
	SigOK     bool            // the dealer signature verifies
	NotBefore time.Time
}

// maxText bounds custodian names and labels, in bytes.
const maxText = 200

// errNotCustos is returned by parseRecord for a certificate without the
// custos format extension.
var errNotCustos = errors.New("not a custos certificate")

// buildCert writes r as an X.509 certificate over r.Key, signed by dealer.
// The certificate is assembled by hand because crypto/x509 cannot issue a
// certificate for an X25519 subject key.
func buildCert(rnd io.Reader, r *record, dealer ed25519.PrivateKey, now time.Time) ([]byte, error) {
	if err := r.check(); err != nil {
		return nil, err
	}
	spki, err := x509.MarshalPKIXPublicKey(r.Key)
	if err != nil {
		return nil, fmt.Errorf("encoding slot key: %w", err)
	}
	serial := make([]byte, 16)
	if _, err := io.ReadFull(rnd, serial); err != nil {
		return nil, err
	}
	serial[0] = serial[0]&0x7f | 0x40 // positive, minimal

	var b cryptobyte.Builder
	b.AddASN1(casn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddASN1(casn1.Tag(0).Constructed().ContextSpecific(),
			func(b *cryptobyte.Builder) { b.AddASN1Int64(2) })
		b.AddASN1(casn1.INTEGER, func(b *cryptobyte.Builder) { b.AddBytes(serial) })
		addAlgorithm(b)
		addName(b, "custos dealer "+r.setName())
		b.AddASN1(casn1.SEQUENCE, func(b *cryptobyte.Builder) {
			b.AddASN1UTCTime(now.UTC().Truncate(time.Second))
			b.AddASN1GeneralizedTime(time.Date(9999, 12, 31, 23, 59, 59, 0, time.UTC))
		})
		addName(b, r.subject())
		b.AddBytes(spki)
		b.AddASN1(casn1.Tag(3).Constructed().ContextSpecific(),
			func(b *cryptobyte.Builder) {
				b.AddASN1(casn1.SEQUENCE, func(b *cryptobyte.Builder) {
					r.addExtensions(b)
				})
			})
	})
	tbs, err := b.Bytes()
	if err != nil {
		return nil, fmt.Errorf("encoding certificate: %w", err)
	}

	sig := ed25519.Sign(dealer, tbs)
	var c cryptobyte.Builder
	c.AddASN1(casn1.SEQUENCE, func(c *cryptobyte.Builder) {
		c.AddBytes(tbs)
		addAlgorithm(c)
		c.AddASN1BitString(sig)
	})
	return c.Bytes()
}

func (r *record) check() error {
	switch {
	case r.Kind != KindEnrolled && r.Kind != KindShare:
		return fmt.Errorf("unknown record kind %d", r.Kind)
	case r.Kind == KindShare && (r.Index < 1 || r.Index > 255):
		return fmt.Errorf("share index %d out of range 1..255", r.Index)
	case r.Kind == KindShare && len(r.Sealed) == 0:
		return errors.New("no sealed share")
	case !validText(r.Custodian) || !validText(r.Label):
		return fmt.Errorf("custodian name or label longer than %d bytes or "+
			"not UTF-8", maxText)
	case len(r.Dealer) != ed25519.PublicKeySize:
		return errors.New("no dealer key")
	case r.Key == nil:
		return errors.New("no slot key")
	case r.Attested != nil && len(r.Attested) != sha256.Size:
		return errors.New("attestation digest is not SHA-256")
	}
	return nil
}

func validText(s string) bool { return len(s) <= maxText && utf8.ValidString(s) }

func (r *record) setName() string {
	if r.Kind == KindEnrolled {
		return "enrolment"
	}
	return strings.ToUpper(hex.EncodeToString(r.SetID[:4]))
}

func (r *record) subject() string {
	if r.Kind == KindEnrolled {
		return "custos enrolled slot"
	}
	return fmt.Sprintf("custos share %s #%d", r.setName(), r.Index)
}

func addAlgorithm(b *cryptobyte.Builder) {
	b.AddASN1(casn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddASN1ObjectIdentifier(oidEd25519)
	})
}

func addName(b *cryptobyte.Builder, cn string) {
	b.AddASN1(casn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddASN1(casn1.SET, func(b *cryptobyte.Builder) {
			b.AddASN1(casn1.SEQUENCE, func(b *cryptobyte.Builder) {
				b.AddASN1ObjectIdentifier(oidCN)
				b.AddASN1(casn1.UTF8String, func(b *cryptobyte.Builder) {
					b.AddBytes([]byte(cn))
				})
			})
		})
	})
}

func (r *record) addExtensions(b *cryptobyte.Builder) {
	ext := func(id asn1.ObjectIdentifier, value func(*cryptobyte.Builder)) {
		b.AddASN1(casn1.SEQUENCE, func(b *cryptobyte.Builder) {
			b.AddASN1ObjectIdentifier(id)
			b.AddASN1(casn1.OCTET_STRING, value)
		})
	}
	octets := func(v []byte) func(*cryptobyte.Builder) {
		return func(b *cryptobyte.Builder) { b.AddASN1OctetString(v) }
	}
	text := func(s string) func(*cryptobyte.Builder) {
		return func(b *cryptobyte.Builder) {
			b.AddASN1(casn1.UTF8String, func(b *cryptobyte.Builder) {
				b.AddBytes([]byte(s))
			})
		}
	}

	ext(oidFormat, func(b *cryptobyte.Builder) {
		b.AddASN1(casn1.SEQUENCE, func(b *cryptobyte.Builder) {
			b.AddASN1Int64(formatVersion)
			b.AddASN1Enum(int64(r.Kind))
		})
	})
	if r.Kind == KindShare {
		ext(oidSetID, octets(r.SetID[:]))
		ext(oidIndex, func(b *cryptobyte.Builder) { b.AddASN1Int64(int64(r.Index)) })
	}
	ext(oidCustodian, text(r.Custodian))
	if r.Label != "" {
		ext(oidLabel, text(r.Label))
	}
	ext(oidDealer, octets(r.Dealer))
	ext(oidCard, func(b *cryptobyte.Builder) {
		b.AddASN1(casn1.SEQUENCE, func(b *cryptobyte.Builder) {
			b.AddASN1Uint64(uint64(r.Serial))
			b.AddASN1Int64(int64(r.Slot))
		})
	})
	if r.Kind == KindShare {
		ext(oidSealed, octets(r.Sealed))
	}
	if r.Attested != nil {
		ext(oidAttested, octets(r.Attested))
	}
}

// parseRecord reads a custos certificate. It returns errNotCustos for any
// certificate without the custos format extension, and an error for a
// custos certificate that is malformed. It checks the dealer signature with
// the key the certificate carries and reports the result in SigOK; the
// caller compares that key with the set record.
func parseRecord(der []byte) (*record, error) {
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, errNotCustos
	}
	r := &record{NotBefore: cert.NotBefore}
	seen := map[int]bool{}
	for _, e := range cert.Extensions {
		if !hasArc(e.Id) {
			continue
		}
		n := e.Id[len(e.Id)-1]
		if seen[n] {
			return nil, fmt.Errorf("custos extension %d repeated", n)
		}
		seen[n] = true
		if err := r.setField(n, e.Value); err != nil {
			return nil, fmt.Errorf("custos extension %d: %w", n, err)
		}
	}
	if !seen[1] {
		return nil, errNotCustos
	}
	if err := r.complete(seen); err != nil {
		return nil, err
	}

	pub, err := x509.ParsePKIXPublicKey(cert.RawSubjectPublicKeyInfo)
	if err != nil {
		return nil, fmt.Errorf("parsing slot key: %w", err)
	}
	if r.Key, err = toECDH(pub); err != nil {
		return nil, err
	}
	r.SigOK = cert.SignatureAlgorithm == x509.PureEd25519 &&
		ed25519.Verify(r.Dealer, cert.RawTBSCertificate, cert.Signature)
	return r, nil
}

func hasArc(id asn1.ObjectIdentifier) bool {
	return len(id) == len(OIDArc)+1 && id[:len(OIDArc)].Equal(OIDArc)
}

func (r *record) setField(n int, v []byte) error {
	s := cryptobyte.String(v)
	var ok bool
	switch n {
	case 1:
		var seq cryptobyte.String
		var version int64
		var kind int
		ok = s.ReadASN1(&seq, casn1.SEQUENCE) && seq.ReadASN1Integer(&version) &&
			seq.ReadASN1Enum(&kind) && seq.Empty()
		if ok && version != formatVersion {
			return fmt.Errorf("format version %d not supported", version)
		}
		r.Kind = Kind(kind)
	case 2:
		var id []byte
		ok = s.ReadASN1Bytes(&id, casn1.OCTET_STRING) && len(id) == 16
		copy(r.SetID[:], id)
	case 3:
		var i int64
		ok = s.ReadASN1Integer(&i) && i >= 1 && i <= 255
		r.Index = int(i)
	case 4:
		ok = readText(&s, &r.Custodian)
	case 5:
		ok = readText(&s, &r.Label)
	case 6:
		var k []byte
		ok = s.ReadASN1Bytes(&k, casn1.OCTET_STRING) && len(k) == ed25519.PublicKeySize
		r.Dealer = ed25519.PublicKey(k)
	case 7:
		var seq cryptobyte.String
		var serial uint64
		var slot int64
		ok = s.ReadASN1(&seq, casn1.SEQUENCE) && seq.ReadASN1Integer(&serial) &&
			seq.ReadASN1Integer(&slot) && seq.Empty() && serial <= 0xffffffff &&
			slot >= 0 && slot <= 0xff
		r.Serial, r.Slot = uint32(serial), Slot(slot)
	case 8:
		ok = s.ReadASN1Bytes(&r.Sealed, casn1.OCTET_STRING) && len(r.Sealed) > 0
	case 9:
		ok = s.ReadASN1Bytes(&r.Attested, casn1.OCTET_STRING) &&
			len(r.Attested) == sha256.Size
	default:
		return nil // a later minor version; ignored
	}
	if !ok || !s.Empty() {
		return errors.New("malformed")
	}
	return nil
}

func readText(s *cryptobyte.String, out *string) bool {
	var b []byte
	if !s.ReadASN1Bytes(&b, casn1.UTF8String) || len(b) > maxText || !utf8.Valid(b) {
		return false
	}
	*out = string(b)
	return true
}

// complete checks that the extensions a kind needs are all there.
func (r *record) complete(seen map[int]bool) error {
	need := []int{4, 6, 7}
	switch r.Kind {
	case KindEnrolled:
	case KindShare:
		need = append(need, 2, 3, 8)
	default:
		return fmt.Errorf("unknown custos record kind %d", r.Kind)
	}
	for _, n := range need {
		if !seen[n] {
			return fmt.Errorf("custos extension %d missing", n)
		}
	}
	return nil
}

func toECDH(pub any) (*ecdh.PublicKey, error) {
	switch k := pub.(type) {
	case *ecdh.PublicKey:
		if k.Curve() == ecdh.X25519() || k.Curve() == ecdh.P256() {
			return k, nil
		}
	case *ecdsa.PublicKey:
		e, err := k.ECDH()
		if err == nil && e.Curve() == ecdh.P256() {
			return e, nil
		}
	}
	return nil, fmt.Errorf("unsupported slot key type %T", pub)
}

// sameKey reports whether a and b are the same public key.
func sameKey(a, b *ecdh.PublicKey) bool {
	return a != nil && b != nil && a.Curve() == b.Curve() &&
		bytes.Equal(a.Bytes(), b.Bytes())
}
