package hsm

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/subtle"
	"encoding/asn1"
	"encoding/binary"
	"errors"
	"fmt"
	"math/big"

	"github.com/miekg/pkcs11"
)

// Proof says what was proven inside the token about one key.
type Proof struct {
	// Object names the key object proven, as messages do: its class,
	// label and ID. VerifyObject sets it from the object it found.
	Object string
	// Got holds the check values the token computed.
	Got Check
	// Proven lists the methods whose value matched: aes-ecb, aes-cmac,
	// hmac-sha256, spki-sha256, signature.
	Proven []string
	// Skipped lists expected values the token could not compute, and why.
	Skipped []string
}

// abilities says what the token lets us do with one key object.
type abilities struct {
	encrypt bool // CKA_ENCRYPT and CKM_AES_ECB
	cmac    bool // CKA_SIGN and CKM_AES_CMAC
	hmac    bool // CKA_SIGN and CKM_SHA256_HMAC
}

// proveSecret computes the check values of a secret key inside the token
// and compares them with want. Every value that can be computed must
// match, and at least one must be computed.
func (s *Session) proveSecret(name string, kind Kind, h pkcs11.ObjectHandle,
	want Check, can abilities) (Proof, error) {

	var pr Proof
	if !kind.IsAES() {
		return s.proveHMAC(name, h, want, can)
	}

	if len(want.ECB) > 0 {
		ok, ecb := s.ecbSource(h, can)
		if err := s.checkOne(&pr, name, methodECB, want.ECB, ok,
			ecb); err != nil {
			return pr, err
		}
	}
	if len(want.KCV) > 0 {
		if err := s.checkOne(&pr, name, methodCMAC, want.KCV, can.cmac,
			func() ([]byte, error) { return s.cmac(h) }); err != nil {
			return pr, err
		}
	}
	if len(pr.Proven) == 0 {
		return pr, fmt.Errorf("%v: %s: no check value could be computed "+
			"inside the token (%v)", s.info, name, pr.Skipped)
	}
	return pr, nil
}

func (s *Session) proveHMAC(name string, h pkcs11.ObjectHandle,
	want Check, can abilities) (Proof, error) {

	var pr Proof
	if err := s.checkOne(&pr, name, methodHMAC, want.HMAC, can.hmac,
		func() ([]byte, error) { return s.hmac(h) }); err != nil {
		return pr, err
	}
	if len(pr.Proven) == 0 {
		return pr, fmt.Errorf("%v: %s: hmac check value could not be "+
			"computed inside the token (%v)", s.info, name, pr.Skipped)
	}
	return pr, nil
}

// checkOne computes one check value if allowed, records it in pr and
// compares it with want.
func (s *Session) checkOne(pr *Proof, name, method string, want []byte,
	allowed bool, compute func() ([]byte, error)) error {

	if !allowed {
		pr.Skipped = append(pr.Skipped, method+": key or token does not "+
			"allow it")
		return nil
	}
	got, err := compute()
	if err != nil {
		return fmt.Errorf("computing %s check value of %s on %v: %w",
			method, name, s.info, err)
	}
	got = got[:min(len(got), len(want))]
	switch method {
	case methodECB:
		pr.Got.ECB = got
	case methodCMAC:
		pr.Got.KCV = got
	case methodHMAC:
		pr.Got.HMAC = got
	}
	if subtle.ConstantTimeCompare(got, want) != 1 {
		return &CheckError{Token: s.info.String(), Object: name,
			Method: method, Want: want, Got: got}
	}
	pr.Proven = append(pr.Proven, method)
	return nil
}

// ecbSource says how to get the ECB check value of a key: encrypting a
// zero block if the key may encrypt, else the token's CKA_CHECK_VALUE,
// which PKCS#11 3.0 defines as the same value, computed by the token when
// the key was made (SoftHSM does for created keys, not unwrapped ones).
func (s *Session) ecbSource(h pkcs11.ObjectHandle,
	can abilities) (bool, func() ([]byte, error)) {

	if can.encrypt {
		return true, func() ([]byte, error) { return s.ecb(h) }
	}
	v, ok := s.attr(h, pkcs11.CKA_CHECK_VALUE)
	if !ok || len(v) < checkLen {
		return false, nil
	}
	return true, func() ([]byte, error) { return v, nil }
}

// ecb encrypts one zero block with the key in ECB mode.
func (s *Session) ecb(h pkcs11.ObjectHandle) ([]byte, error) {
	m := []*pkcs11.Mechanism{pkcs11.NewMechanism(pkcs11.CKM_AES_ECB, nil)}
	if err := s.p.EncryptInit(s.sh, m, h); err != nil {
		return nil, err
	}
	return s.p.Encrypt(s.sh, make([]byte, 16))
}

// cmac computes AES-CMAC of one zero block with the key.
func (s *Session) cmac(h pkcs11.ObjectHandle) ([]byte, error) {
	return s.sign(h, pkcs11.CKM_AES_CMAC, make([]byte, 16))
}

// hmac computes HMAC-SHA256 of 32 zero bytes with the key.
func (s *Session) hmac(h pkcs11.ObjectHandle) ([]byte, error) {
	return s.sign(h, pkcs11.CKM_SHA256_HMAC, make([]byte, 32))
}

func (s *Session) sign(h pkcs11.ObjectHandle, mech uint,
	msg []byte) ([]byte, error) {

	m := []*pkcs11.Mechanism{pkcs11.NewMechanism(mech, nil)}
	if err := s.p.SignInit(s.sh, m, h); err != nil {
		return nil, err
	}
	return s.p.Sign(s.sh, msg)
}

// provePrivate proves a private key object inside the token: it signs a
// random challenge there and verifies the signature outside with pub,
// then hashes the public key object's SPKI and compares it with want.
func (s *Session) provePrivate(name string, kind Kind, priv,
	pubObj pkcs11.ObjectHandle, pub crypto.PublicKey,
	want Check) (Proof, error) {

	var pr Proof
	known := pub != nil
	if !known {
		// Verifying a key already on the token: trust its public key
		// object only once its hash matches the expected one.
		p, err := s.checkSPKI(&pr, name, kind, pubObj, want)
		if err != nil {
			return pr, err
		}
		pub = p
	}
	if err := s.checkSignature(name, kind, priv, pub); err != nil {
		return pr, err
	}
	pr.Proven = append(pr.Proven, methodSignature)
	if known {
		if _, err := s.checkSPKI(&pr, name, kind, pubObj, want); err != nil {
			return pr, err
		}
	}
	return pr, nil
}

// checkSPKI hashes the SPKI of a public key object, compares the hash
// with want and returns the public key.
func (s *Session) checkSPKI(pr *Proof, name string, kind Kind,
	pubObj pkcs11.ObjectHandle, want Check) (crypto.PublicKey, error) {

	pub, err := s.publicKey(pubObj, kind)
	if err != nil {
		return nil, fmt.Errorf("reading public key of %s on %v: %w", name,
			s.info, err)
	}
	sum, err := spkiHash(pub)
	if err != nil {
		return nil, fmt.Errorf("hashing public key of %s: %w", name, err)
	}
	pr.Got.SPKISHA256 = sum
	if subtle.ConstantTimeCompare(sum, want.SPKISHA256) != 1 {
		return nil, &CheckError{Token: s.info.String(), Object: name,
			Method: methodSPKI, Want: want.SPKISHA256, Got: sum}
	}
	pr.Proven = append(pr.Proven, methodSPKI)
	return pub, nil
}

// checkSignature signs a fresh random challenge inside the token and
// verifies it with pub.
func (s *Session) checkSignature(name string, kind Kind,
	priv pkcs11.ObjectHandle, pub crypto.PublicKey) error {

	challenge := make([]byte, 32)
	if _, err := rand.Read(challenge); err != nil {
		return fmt.Errorf("making challenge: %w", err)
	}
	msg := challenge
	if kind == KindECP256 || kind == KindECP384 {
		msg = ecDigest(kind, challenge)
	}
	sig, err := s.sign(priv, signMech(kind), msg)
	if err != nil {
		return fmt.Errorf("signing challenge with %s on %v: %w", name,
			s.info, err)
	}
	if !verifySignature(kind, pub, challenge, sig) {
		return &CheckError{Token: s.info.String(), Object: name,
			Method: methodSignature}
	}
	return nil
}

func ecDigest(kind Kind, msg []byte) []byte {
	if kind == KindECP384 {
		sum := sha512.Sum384(msg)
		return sum[:]
	}
	sum := sha256.Sum256(msg)
	return sum[:]
}

// verifySignature checks a signature the token made over challenge.
func verifySignature(kind Kind, pub crypto.PublicKey, challenge,
	sig []byte) bool {

	switch p := pub.(type) {
	case *rsa.PublicKey:
		sum := sha256.Sum256(challenge)
		return kind == KindRSA &&
			rsa.VerifyPKCS1v15(p, crypto.SHA256, sum[:], sig) == nil
	case *ecdsa.PublicKey:
		// CKM_ECDSA returns r and s, each as long as the curve order.
		n := (p.Curve.Params().BitSize + 7) / 8
		if len(sig) != 2*n {
			return false
		}
		r := new(big.Int).SetBytes(sig[:n])
		sv := new(big.Int).SetBytes(sig[n:])
		return ecdsa.Verify(p, ecDigest(kind, challenge), r, sv)
	case ed25519.PublicKey:
		return kind == KindEd25519 && ed25519.Verify(p, challenge, sig)
	}
	return false
}

// publicKey reads a public key object (or an RSA private key object,
// which also carries the modulus) back into a Go public key.
func (s *Session) publicKey(h pkcs11.ObjectHandle,
	kind Kind) (crypto.PublicKey, error) {

	if kind == KindRSA {
		a, err := s.attrs(h, pkcs11.CKA_MODULUS, pkcs11.CKA_PUBLIC_EXPONENT)
		if err != nil {
			return nil, err
		}
		e := new(big.Int).SetBytes(a[1])
		if !e.IsInt64() || e.Int64() > 1<<31-1 {
			return nil, errors.New("rsa public exponent out of range")
		}
		return &rsa.PublicKey{N: new(big.Int).SetBytes(a[0]),
			E: int(e.Int64())}, nil
	}

	a, err := s.attrs(h, pkcs11.CKA_EC_PARAMS, pkcs11.CKA_EC_POINT)
	if err != nil {
		return nil, err
	}
	point := unwrapOctetString(a[1])
	switch kind {
	case KindEd25519:
		if len(point) != ed25519.PublicKeySize {
			return nil, errors.New("ed25519 point has the wrong length")
		}
		return ed25519.PublicKey(point), nil
	case KindECP256:
		return ecdsa.ParseUncompressedPublicKey(elliptic.P256(), point)
	case KindECP384:
		return ecdsa.ParseUncompressedPublicKey(elliptic.P384(), point)
	}
	return nil, fmt.Errorf("%v has no public key", kind)
}

// unwrapOctetString takes the content of a DER OCTET STRING, the form
// CKA_EC_POINT should have; some tokens give the raw point instead.
func unwrapOctetString(b []byte) []byte {
	var inner []byte
	rest, err := asn1.Unmarshal(b, &inner)
	if err != nil || len(rest) != 0 {
		return b
	}
	return inner
}

// attrs reads attributes that must all exist.
func (s *Session) attrs(h pkcs11.ObjectHandle,
	types ...uint) ([][]byte, error) {

	tmpl := make([]*pkcs11.Attribute, len(types))
	for i, t := range types {
		tmpl[i] = pkcs11.NewAttribute(t, nil)
	}
	got, err := s.p.GetAttributeValue(s.sh, h, tmpl)
	if err != nil {
		return nil, err
	}
	out := make([][]byte, len(types))
	for i, a := range got {
		out[i] = a.Value
	}
	return out, nil
}

// attr reads one attribute that may be absent: nil, false when it is.
func (s *Session) attr(h pkcs11.ObjectHandle, typ uint) ([]byte, bool) {
	v, err := s.attrs(h, typ)
	if err != nil {
		return nil, false
	}
	return v[0], true
}

// attrBool reads a boolean attribute; absent reads as false.
func (s *Session) attrBool(h pkcs11.ObjectHandle, typ uint) bool {
	v, ok := s.attr(h, typ)
	return ok && len(v) == 1 && v[0] != 0
}

// attrUint reads a CK_ULONG attribute.
func (s *Session) attrUint(h pkcs11.ObjectHandle, typ uint) (uint, bool) {
	v, ok := s.attr(h, typ)
	if !ok {
		return 0, false
	}
	return bytesToUint(v), len(v) == 4 || len(v) == 8
}

// bytesToUint decodes a CK_ULONG in the platform's byte order.
func bytesToUint(v []byte) uint {
	switch len(v) {
	case 8:
		return uint(binary.NativeEndian.Uint64(v))
	case 4:
		return uint(binary.NativeEndian.Uint32(v))
	}
	return 0
}
