package hsm

import (
	"crypto"
	"crypto/aes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"errors"
	"fmt"
	"strings"
)

// Kind is the kind of secret a Key carries.
type Kind int

// The kinds custos restores. AES and HMAC keys are secret keys; the others
// are private keys imported with their public key object.
const (
	KindAES128 Kind = iota + 1
	KindAES192
	KindAES256
	KindHMAC // a generic secret used with HMAC, any length
	KindRSA  // 2048 to 4096 bits
	KindECP256
	KindECP384
	KindEd25519
)

var kindNames = map[Kind]string{
	KindAES128: "aes-128", KindAES192: "aes-192", KindAES256: "aes-256",
	KindHMAC: "hmac", KindRSA: "rsa", KindECP256: "ec-p256",
	KindECP384: "ec-p384", KindEd25519: "ed25519",
}

func (k Kind) String() string {
	if s, ok := kindNames[k]; ok {
		return s
	}
	return fmt.Sprintf("kind(%d)", int(k))
}

// ParseKind reads the names Kind.String gives.
func ParseKind(s string) (Kind, error) {
	for k, name := range kindNames {
		if strings.EqualFold(s, name) {
			return k, nil
		}
	}
	return 0, fmt.Errorf("unknown key kind %q", s)
}

// IsSecret reports whether the kind is a secret (symmetric) key.
func (k Kind) IsSecret() bool {
	return k == KindAES128 || k == KindAES192 || k == KindAES256 ||
		k == KindHMAC
}

// IsAES reports whether the kind is an AES key.
func (k Kind) IsAES() bool {
	return k == KindAES128 || k == KindAES192 || k == KindAES256
}

// Check holds the check values of one key, as the set record has them.
// Check values are public: they are printed on paper.
type Check struct {
	KCV        []byte // AES: AES-CMAC(key, 16 zero bytes), first 3 bytes
	ECB        []byte // AES: AES-ECB(key, 16 zero bytes), first 3 bytes
	HMAC       []byte // HMAC: HMAC-SHA256(key, 32 zero bytes), first 3 bytes
	SPKISHA256 []byte // private keys: SHA-256 of the public key's SPKI DER
}

// IsZero reports whether the check holds no value at all.
func (c Check) IsZero() bool {
	return len(c.KCV) == 0 && len(c.ECB) == 0 && len(c.HMAC) == 0 &&
		len(c.SPKISHA256) == 0
}

// checkLen is the length of the KCV, ECB and HMAC check values.
const checkLen = 3

// Check methods, as Proof and CheckError name them.
const (
	methodECB       = "aes-ecb"
	methodCMAC      = "aes-cmac"
	methodHMAC      = "hmac-sha256"
	methodSPKI      = "spki-sha256"
	methodSignature = "signature"
)

// Conflict says what an import does when the token already holds an
// object with the key's label or ID.
type Conflict int

const (
	// Refuse fails the import and leaves the token as it was.
	Refuse Conflict = iota
	// Replace imports the key, proves it, then destroys the objects that
	// held its label or ID. If the import fails they are kept.
	Replace
	// KeepBoth imports the key beside the objects already there.
	KeepBoth
)

// Key is one key to restore into a token.
type Key struct {
	Label string // CKA_LABEL; required
	ID    []byte // CKA_ID; if empty, a random 16-byte ID is chosen
	Kind  Kind

	Secret  []byte        // AES and HMAC keys
	Private crypto.Signer // *rsa.PrivateKey, *ecdsa.PrivateKey, ed25519.PrivateKey

	// Expect holds the check values from the set record. The import
	// computes them inside the token and fails on any difference.
	Expect Check

	// Usage overrides DefaultUsage(Kind) when not nil.
	Usage *Usage

	// OnConflict says what to do when the label or ID is taken.
	OnConflict Conflict
}

// name describes the key for messages.
func (k *Key) name() string { return objectName(k.Label, k.ID) }

// validate checks that the key carries what its kind needs, before any
// token is touched.
func (k *Key) validate() error {
	if k.Label == "" {
		return errors.New("key has no label")
	}
	if err := k.validateMaterial(); err != nil {
		return fmt.Errorf("%s: %w", k.name(), err)
	}
	if err := k.validateExpect(); err != nil {
		return fmt.Errorf("%s: %w", k.name(), err)
	}
	return nil
}

func (k *Key) validateMaterial() error {
	want := map[Kind]int{KindAES128: 16, KindAES192: 24, KindAES256: 32}
	switch {
	case k.Kind.IsSecret() && k.Private != nil,
		!k.Kind.IsSecret() && len(k.Secret) > 0:
		return fmt.Errorf("%v key carries the wrong kind of material",
			k.Kind)
	case k.Kind.IsAES() && len(k.Secret) != want[k.Kind]:
		return fmt.Errorf("%v key is %d bytes, not %d", k.Kind,
			len(k.Secret), want[k.Kind])
	case k.Kind == KindHMAC && len(k.Secret) == 0:
		return errors.New("hmac key is empty")
	case k.Kind.IsSecret():
		return nil
	}
	kind, err := privateKind(k.Private)
	if err != nil {
		return err
	}
	if kind != k.Kind {
		return fmt.Errorf("key is marked %v but holds %v", k.Kind, kind)
	}
	return nil
}

func (k *Key) validateExpect() error {
	e := k.Expect
	bad := func(name string, v []byte, lo, hi int) error {
		if len(v) != 0 && (len(v) < lo || len(v) > hi) {
			return fmt.Errorf("expected %s check value has %d bytes, "+
				"not %d to %d", name, len(v), lo, hi)
		}
		return nil
	}
	if err := errors.Join(bad("kcv", e.KCV, checkLen, 16),
		bad("ecb", e.ECB, checkLen, 16), bad("hmac", e.HMAC, checkLen, 32),
		bad("spki-sha256", e.SPKISHA256, 32, 32)); err != nil {
		return err
	}

	switch {
	case k.Kind.IsAES() && len(e.KCV) == 0 && len(e.ECB) == 0:
		return errors.New("no expected kcv or ecb check value")
	case k.Kind == KindHMAC && len(e.HMAC) == 0:
		return errors.New("no expected hmac check value")
	case !k.Kind.IsSecret() && len(e.SPKISHA256) == 0:
		return errors.New("no expected spki-sha256 check value")
	}
	return nil
}

// privateKind tells the kind of a private key and checks its size.
func privateKind(s crypto.Signer) (Kind, error) {
	switch p := s.(type) {
	case *rsa.PrivateKey:
		bits := p.N.BitLen()
		if bits < 2048 || bits > 4096 {
			return 0, fmt.Errorf("rsa key has %d bits, not 2048 to 4096",
				bits)
		}
		if len(p.Primes) != 2 {
			return 0, errors.New("multi-prime rsa keys are not supported")
		}
		return KindRSA, nil
	case *ecdsa.PrivateKey:
		switch p.Curve {
		case elliptic.P256():
			return KindECP256, nil
		case elliptic.P384():
			return KindECP384, nil
		}
		return 0, fmt.Errorf("ec curve %s is not supported",
			p.Curve.Params().Name)
	case ed25519.PrivateKey:
		if len(p) != ed25519.PrivateKeySize {
			return 0, errors.New("ed25519 key has the wrong length")
		}
		return KindEd25519, nil
	case nil:
		return 0, errors.New("no private key")
	}
	return 0, fmt.Errorf("private key type %T is not supported", s)
}

// ComputeCheck computes a key's check values outside any token, from its
// material. The ceremony compares these with the set record after a
// rebuild; the import computes the same values inside the token.
func ComputeCheck(k Key) (Check, error) {
	switch {
	case k.Kind.IsAES():
		return aesCheck(k.Secret)
	case k.Kind == KindHMAC:
		m := hmac.New(sha256.New, k.Secret)
		m.Write(make([]byte, 32))
		return Check{HMAC: m.Sum(nil)[:checkLen]}, nil
	}
	if k.Private == nil {
		return Check{}, fmt.Errorf("%s: no key material", k.name())
	}
	sum, err := spkiHash(k.Private.Public())
	if err != nil {
		return Check{}, fmt.Errorf("%s: %w", k.name(), err)
	}
	return Check{SPKISHA256: sum}, nil
}

func aesCheck(key []byte) (Check, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return Check{}, fmt.Errorf("computing aes check value: %w", err)
	}
	var ecb [16]byte
	block.Encrypt(ecb[:], ecb[:])
	mac, err := aesCMAC(key, make([]byte, 16))
	if err != nil {
		return Check{}, fmt.Errorf("computing aes check value: %w", err)
	}
	return Check{KCV: mac[:checkLen], ECB: ecb[:checkLen]}, nil
}

// spkiHash is SHA-256 of the DER SubjectPublicKeyInfo of pub.
func spkiHash(pub crypto.PublicKey) ([]byte, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, fmt.Errorf("encoding public key: %w", err)
	}
	sum := sha256.Sum256(der)
	return sum[:], nil
}
