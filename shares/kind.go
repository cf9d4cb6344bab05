package shares

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
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"
)

// Kind says what a secret is, which decides its check value and how a
// recovery may restore it (an HSM takes an AES key, not a PDF).
type Kind uint8

const (
	KindRaw        Kind = 1 // bytes custos knows nothing about
	KindAES        Kind = 2 // an AES-128, AES-192 or AES-256 key
	KindHMAC       Kind = 3 // a generic HMAC secret
	KindPrivateKey Kind = 4 // a PEM or DER private key: RSA, EC P-256/P-384, Ed25519
	KindBundle     Kind = 5 // a tar archive of many named keys
)

var kindNames = map[Kind]string{
	KindRaw:        "raw",
	KindAES:        "aes",
	KindHMAC:       "hmac",
	KindPrivateKey: "private-key",
	KindBundle:     "bundle",
}

// String returns the name used on the command line and in set records.
func (k Kind) String() string {
	if s, ok := kindNames[k]; ok {
		return s
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

// ParseKind is the inverse of Kind.String.
func ParseKind(s string) (Kind, error) {
	for k, name := range kindNames {
		if strings.EqualFold(s, name) {
			return k, nil
		}
	}
	return 0, fmt.Errorf("unknown secret kind %q (want raw, aes, hmac, private-key or bundle)", s)
}

// MarshalText lets a Kind appear by name in JSON.
func (k Kind) MarshalText() ([]byte, error) { return []byte(k.String()), nil }

// UnmarshalText parses a Kind by name.
func (k *Kind) UnmarshalText(b []byte) error {
	v, err := ParseKind(string(b))
	*k = v
	return err
}

// CheckMethod names how a check value was computed, so that nobody compares a
// KCV with a fingerprint.
type CheckMethod uint8

const (
	// CheckKCV is the X9.24 key check value of an AES key: the first three
	// bytes of AES-CMAC of a zero block.
	CheckKCV CheckMethod = 1
	// CheckECB is the first three bytes of the key's AES-ECB encryption of a
	// zero block: the value most HSM consoles show.
	CheckECB CheckMethod = 2
	// CheckSPKI is SHA-256 of the DER SubjectPublicKeyInfo of a private key's
	// public half.
	CheckSPKI CheckMethod = 3
	// CheckKeyed is the first eight bytes of HMAC-SHA256 under a key derived
	// from the set's data key. Only a quorum can compute it, so it says
	// nothing about a short secret to someone who holds the record alone.
	CheckKeyed CheckMethod = 4
	// CheckHMAC is the first three bytes of HMAC-SHA256 of 32 zero bytes
	// under the HMAC secret itself, which an HSM can compute in place.
	CheckHMAC CheckMethod = 5
	// CheckManifest is SHA-256 of a bundle's manifest: the names, kinds and
	// check values of every entry.
	CheckManifest CheckMethod = 6
	// CheckKeyedStream is the keyed fingerprint of raw data too large to
	// hold: a GMAC tag of each 64 KiB chunk under a key derived from the
	// data key, folded by HMAC-SHA256; the first eight bytes. GMAC runs at
	// twice the AES-GCM rate where SHA-256 runs at half of it.
	CheckKeyedStream CheckMethod = 7
)

var checkNames = map[CheckMethod]string{
	CheckKCV:         "kcv-aes-cmac",
	CheckECB:         "aes-ecb-zero",
	CheckSPKI:        "spki-sha256",
	CheckKeyed:       "keyed-hmac-sha256",
	CheckHMAC:        "hmac-sha256-zero",
	CheckManifest:    "manifest-sha256",
	CheckKeyedStream: "keyed-gmac-stream",
}

var checkTitles = map[CheckMethod]string{
	CheckKCV:         "KCV (AES-CMAC, X9.24)",
	CheckECB:         "AES-ECB of zero block",
	CheckSPKI:        "Public key SHA-256",
	CheckKeyed:       "Keyed fingerprint",
	CheckHMAC:        "HMAC-SHA256 of zeros",
	CheckManifest:    "Bundle manifest SHA-256",
	CheckKeyedStream: "Keyed fingerprint (stream)",
}

// String returns the method's stable name.
func (m CheckMethod) String() string {
	if s, ok := checkNames[m]; ok {
		return s
	}
	return fmt.Sprintf("check(%d)", uint8(m))
}

// Title returns the method's name as printed for people.
func (m CheckMethod) Title() string {
	if s, ok := checkTitles[m]; ok {
		return s
	}
	return m.String()
}

// MarshalText lets a CheckMethod appear by name in JSON.
func (m CheckMethod) MarshalText() ([]byte, error) { return []byte(m.String()), nil }

// UnmarshalText parses a CheckMethod by name.
func (m *CheckMethod) UnmarshalText(b []byte) error {
	for k, name := range checkNames {
		if string(b) == name {
			*m = k
			return nil
		}
	}
	return fmt.Errorf("unknown check method %q", b)
}

// CheckValue is one labelled check value of a secret.
type CheckValue struct {
	Method CheckMethod `json:"method"`
	Value  HexBytes    `json:"value"`
}

// String formats the value for people: "KCV (AES-CMAC, X9.24): 1A2B3C".
func (c CheckValue) String() string {
	return c.Method.Title() + ": " + groupHex(c.Value)
}

// HexBytes marshals as uppercase hex in JSON.
type HexBytes []byte

func (h HexBytes) MarshalText() ([]byte, error) {
	return []byte(strings.ToUpper(hex.EncodeToString(h))), nil
}

func (h *HexBytes) UnmarshalText(b []byte) error {
	v, err := hex.DecodeString(string(b))
	*h = v
	return err
}

func groupHex(b []byte) string {
	s := strings.ToUpper(hex.EncodeToString(b))
	if len(s) <= 8 {
		return s
	}
	var out strings.Builder
	for i := 0; i < len(s); i += 4 {
		if i > 0 {
			out.WriteByte(' ')
		}
		out.WriteString(s[i:min(i+4, len(s))])
	}
	return out.String()
}

// EqualChecks reports whether two lists hold the same check values, and
// neither is empty. Order does not matter; methods present in only one list
// are ignored, but at least one method must be compared.
func EqualChecks(a, b []CheckValue) bool {
	compared := 0
	for _, x := range a {
		for _, y := range b {
			if x.Method != y.Method {
				continue
			}
			if !hmac.Equal(x.Value, y.Value) {
				return false
			}
			compared++
		}
	}
	return compared > 0
}

// Detected is what custos learned about a secret by looking at it.
type Detected struct {
	Kind Kind
	// Algorithm is a short description for people and HSMs: "AES-256",
	// "RSA-3072", "EC P-384", "Ed25519", "HMAC", "raw", "bundle".
	Algorithm string
}

// Detect guesses the kind of a secret: PEM or DER private keys are
// recognised, and anything else is raw bytes. It never guesses AES or HMAC
// from length alone; those are asked for explicitly.
func Detect(secret []byte) Detected {
	if _, alg, err := parsePrivateKey(secret); err == nil {
		return Detected{Kind: KindPrivateKey, Algorithm: alg}
	}
	return Detected{Kind: KindRaw, Algorithm: "raw"}
}

// DetectStrict is Detect for a secret whose kind nobody named: PEM text
// that is not a private key custos can use (a public key, a certificate,
// an encrypted key, an unsupported curve) is refused, since escrowing it
// as raw bytes is almost surely the wrong file.
func DetectStrict(secret []byte) (Detected, error) {
	_, alg, err := parsePrivateKey(secret)
	if err == nil {
		return Detected{Kind: KindPrivateKey, Algorithm: alg}, nil
	}
	blk, _ := pem.Decode(secret)
	if blk == nil {
		return Detected{Kind: KindRaw, Algorithm: "raw"}, nil
	}
	if !strings.Contains(blk.Type, "PRIVATE KEY") {
		return Detected{}, fmt.Errorf("this is a PEM %s, not a private key: escrow the private key, or say --kind raw to escrow these bytes as they are", blk.Type)
	}
	return Detected{}, fmt.Errorf("this PEM private key cannot be used: %v; say --kind raw to escrow the bytes as they are", err)
}

// Describe checks that secret is a valid secret of kind k and describes it.
func Describe(secret []byte, k Kind) (Detected, error) {
	switch k {
	case KindRaw:
		return Detected{k, "raw"}, nil
	case KindAES:
		switch len(secret) {
		case 16, 24, 32:
			return Detected{k, fmt.Sprintf("AES-%d", len(secret)*8)}, nil
		}
		return Detected{}, fmt.Errorf("an AES key is 16, 24 or 32 bytes, this secret is %d bytes", len(secret))
	case KindHMAC:
		if len(secret) < 16 {
			return Detected{}, fmt.Errorf("an HMAC secret should be at least 16 bytes, this one is %d", len(secret))
		}
		return Detected{k, "HMAC"}, nil
	case KindPrivateKey:
		_, alg, err := parsePrivateKey(secret)
		if err != nil {
			return Detected{}, err
		}
		return Detected{k, alg}, nil
	case KindBundle:
		return Detected{k, "bundle"}, nil
	}
	return Detected{}, fmt.Errorf("unknown secret kind %d", k)
}

// ParsePrivateKey parses a PEM or DER private key as custos accepts it:
// PKCS #8, PKCS #1 (RSA) or SEC 1 (EC), and returns it with a description.
func ParsePrivateKey(b []byte) (any, string, error) { return parsePrivateKey(b) }

func parsePrivateKey(b []byte) (any, string, error) {
	der := b
	if blk, _ := pem.Decode(b); blk != nil {
		if strings.Contains(blk.Type, "ENCRYPTED") || blk.Headers["Proc-Type"] != "" {
			return nil, "", errors.New("the private key is encrypted; escrow it decrypted, custos seals it")
		}
		der = blk.Bytes
	}
	var key any
	var err error
	if key, err = x509.ParsePKCS8PrivateKey(der); err != nil {
		if k1, err1 := x509.ParsePKCS1PrivateKey(der); err1 == nil {
			key, err = k1, nil
		} else if ke, errE := x509.ParseECPrivateKey(der); errE == nil {
			key, err = ke, nil
		}
	}
	if err != nil {
		return nil, "", errors.New("not a PEM or DER private key")
	}
	switch k := key.(type) {
	case *rsa.PrivateKey:
		return k, fmt.Sprintf("RSA-%d", k.N.BitLen()), nil
	case *ecdsa.PrivateKey:
		switch k.Curve {
		case elliptic.P256():
			return k, "EC P-256", nil
		case elliptic.P384():
			return k, "EC P-384", nil
		}
		return nil, "", fmt.Errorf("EC curve %s is not supported (want P-256 or P-384)", k.Curve.Params().Name)
	case ed25519.PrivateKey:
		return k, "Ed25519", nil
	}
	return nil, "", fmt.Errorf("private key type %T is not supported", key)
}

// CheckValues computes the check values of a secret of kind k. The keyed
// fingerprint of raw secrets needs checkKey, derived from the data key;
// other kinds ignore it. Bundles are handled by the bundle code.
func CheckValues(secret []byte, k Kind, checkKey []byte) ([]CheckValue, error) {
	switch k {
	case KindAES:
		block, err := aes.NewCipher(secret)
		if err != nil {
			return nil, fmt.Errorf("computing check value: %w", err)
		}
		ecb := make([]byte, 16)
		block.Encrypt(ecb, ecb)
		cmac, err := aesCMAC(secret, make([]byte, 16))
		if err != nil {
			return nil, err
		}
		return []CheckValue{{CheckKCV, cmac[:3]}, {CheckECB, ecb[:3]}}, nil
	case KindHMAC:
		m := hmac.New(sha256.New, secret)
		m.Write(make([]byte, 32))
		return []CheckValue{{CheckHMAC, m.Sum(nil)[:3]}}, nil
	case KindPrivateKey:
		sum, err := SPKIFingerprint(secret)
		if err != nil {
			return nil, err
		}
		return []CheckValue{{CheckSPKI, sum}}, nil
	case KindRaw:
		if len(checkKey) == 0 {
			return nil, errors.New("keyed fingerprint needs the check key")
		}
		m := hmac.New(sha256.New, checkKey)
		m.Write(secret)
		return []CheckValue{{CheckKeyed, m.Sum(nil)[:8]}}, nil
	}
	return nil, fmt.Errorf("no check value for kind %s", k)
}

// SPKIFingerprint returns SHA-256 of the DER public key of a private key.
func SPKIFingerprint(privateKey []byte) ([]byte, error) {
	key, _, err := parsePrivateKey(privateKey)
	if err != nil {
		return nil, err
	}
	signer, ok := key.(crypto.Signer)
	if !ok {
		return nil, errors.New("private key has no public half")
	}
	return PublicKeyFingerprint(signer.Public())
}

// PublicKeyFingerprint returns SHA-256 of the DER SubjectPublicKeyInfo of pub.
func PublicKeyFingerprint(pub any) ([]byte, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, fmt.Errorf("encoding public key: %w", err)
	}
	sum := sha256.Sum256(der)
	return sum[:], nil
}
