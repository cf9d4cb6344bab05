package hsm

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"encoding/asn1"
	"errors"
	"fmt"
	"math/big"

	"github.com/miekg/pkcs11"
)

// PKCS#11 3.0 values miekg/pkcs11 v1.1.2 does not name.
const (
	ckkECEdwards = 0x40
	ckmEdDSA     = 0x1057
)

// DER object identifiers of the curves, as CKA_EC_PARAMS holds them.
var (
	oidP256    = []byte{0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07}
	oidP384    = []byte{0x06, 0x05, 0x2b, 0x81, 0x04, 0x00, 0x22}
	oidEd25519 = []byte{0x06, 0x03, 0x2b, 0x65, 0x70}
)

// Usage is the set of operations a key may do on the token. Every flag is
// written into the template, true or false, because tokens default the
// ones left out (SoftHSM defaults them all to true).
//
// For a key pair, Sign, Decrypt, Unwrap and Derive go on the private key
// object, Verify, Encrypt and Wrap on the public one.
type Usage struct {
	Encrypt, Decrypt bool
	Wrap, Unwrap     bool
	Sign, Verify     bool
	Derive           bool
}

// DefaultUsage is the usage a kind gets unless the key says otherwise.
//
// AES keys may encrypt, decrypt, wrap and unwrap: a restored master key is
// a data or key-encryption key. They may also sign and verify (CMAC), which
// is what lets the token compute the X9.24 KCV; turn Sign off and only the
// ECB check value is proven. HMAC secrets only sign and verify. Private
// keys only sign, their public keys only verify: the proof signs a
// challenge, and nothing else is assumed. Derive is never on by default.
func DefaultUsage(k Kind) Usage {
	if k.IsAES() {
		return Usage{Encrypt: true, Decrypt: true, Wrap: true,
			Unwrap: true, Sign: true, Verify: true}
	}
	return Usage{Sign: true, Verify: true}
}

// usage is the key's effective usage.
func (k *Key) usage() Usage {
	if k.Usage != nil {
		return *k.Usage
	}
	return DefaultUsage(k.Kind)
}

// validateUsage refuses usages the token could not prove or that make no
// sense for the kind.
func (k *Key) validateUsage() error {
	u := k.usage()
	switch {
	case k.Kind.IsAES():
		ecb := u.Encrypt && len(k.Expect.ECB) > 0
		cmac := u.Sign && len(k.Expect.KCV) > 0
		if !ecb && !cmac {
			return errors.New("usage leaves no way to prove the key " +
				"inside the token: allow encrypt (ecb check) or sign " +
				"(cmac check)")
		}
	case !u.Sign:
		return errors.New("usage must allow sign: the proof inside the " +
			"token signs with the key")
	case k.Kind == KindHMAC && (u.Encrypt || u.Decrypt || u.Wrap ||
		u.Unwrap):
		return errors.New("hmac keys only sign, verify and derive")
	case k.Kind != KindRSA && !k.Kind.IsSecret() &&
		(u.Encrypt || u.Decrypt || u.Wrap || u.Unwrap):
		return fmt.Errorf("%v keys cannot encrypt or wrap", k.Kind)
	}
	return nil
}

type attrs []*pkcs11.Attribute

func (a *attrs) add(typ uint, v any) {
	*a = append(*a, pkcs11.NewAttribute(typ, v))
}

// keyType is the CKK_ value of a kind.
func keyType(k Kind) uint {
	switch {
	case k.IsAES():
		return pkcs11.CKK_AES
	case k == KindHMAC:
		return pkcs11.CKK_GENERIC_SECRET
	case k == KindRSA:
		return pkcs11.CKK_RSA
	case k == KindEd25519:
		return ckkECEdwards
	}
	return pkcs11.CKK_EC
}

// common starts a template for a key object on the token.
func common(class uint, k *Key, private bool) attrs {
	var t attrs
	t.add(pkcs11.CKA_CLASS, class)
	t.add(pkcs11.CKA_KEY_TYPE, keyType(k.Kind))
	t.add(pkcs11.CKA_TOKEN, true)
	t.add(pkcs11.CKA_PRIVATE, private)
	t.add(pkcs11.CKA_LABEL, k.Label)
	t.add(pkcs11.CKA_ID, k.ID)
	return t
}

// secretTemplate is the template of a secret key, without its value. It
// has no CKA_VALUE_LEN: the token takes the length from the value, and
// SoftHSM refuses the attribute when unwrapping.
func secretTemplate(k *Key) attrs {
	u := k.usage()
	t := common(pkcs11.CKO_SECRET_KEY, k, true)
	t.add(pkcs11.CKA_SENSITIVE, true)
	t.add(pkcs11.CKA_EXTRACTABLE, false)
	t.add(pkcs11.CKA_ENCRYPT, u.Encrypt)
	t.add(pkcs11.CKA_DECRYPT, u.Decrypt)
	t.add(pkcs11.CKA_WRAP, u.Wrap)
	t.add(pkcs11.CKA_UNWRAP, u.Unwrap)
	t.add(pkcs11.CKA_SIGN, u.Sign)
	t.add(pkcs11.CKA_VERIFY, u.Verify)
	t.add(pkcs11.CKA_DERIVE, u.Derive)
	return t
}

// privateTemplate is the template of a private key, without its values.
func privateTemplate(k *Key) attrs {
	u := k.usage()
	t := common(pkcs11.CKO_PRIVATE_KEY, k, true)
	t.add(pkcs11.CKA_SENSITIVE, true)
	t.add(pkcs11.CKA_EXTRACTABLE, false)
	t.add(pkcs11.CKA_SIGN, u.Sign)
	t.add(pkcs11.CKA_SIGN_RECOVER, false)
	t.add(pkcs11.CKA_DECRYPT, u.Decrypt)
	t.add(pkcs11.CKA_UNWRAP, u.Unwrap)
	t.add(pkcs11.CKA_DERIVE, u.Derive)
	return t
}

// publicTemplate is the full template of the public key beside a private
// key: public values are not secret, so it is always created plainly.
func publicTemplate(k *Key) (attrs, error) {
	u := k.usage()
	t := common(pkcs11.CKO_PUBLIC_KEY, k, false)
	t.add(pkcs11.CKA_VERIFY, u.Verify)
	t.add(pkcs11.CKA_VERIFY_RECOVER, false)
	t.add(pkcs11.CKA_ENCRYPT, u.Encrypt)
	t.add(pkcs11.CKA_WRAP, u.Wrap)
	t.add(pkcs11.CKA_DERIVE, false)

	switch p := k.Private.(type) {
	case *rsa.PrivateKey:
		t.add(pkcs11.CKA_MODULUS, p.N.Bytes())
		t.add(pkcs11.CKA_PUBLIC_EXPONENT, big.NewInt(int64(p.E)).Bytes())
	case *ecdsa.PrivateKey:
		pt, err := p.PublicKey.Bytes()
		if err != nil {
			return nil, fmt.Errorf("encoding ec public key: %w", err)
		}
		t.add(pkcs11.CKA_EC_PARAMS, curveOID(k.Kind))
		t.add(pkcs11.CKA_EC_POINT, octetString(pt))
	case ed25519.PrivateKey:
		t.add(pkcs11.CKA_EC_PARAMS, oidEd25519)
		t.add(pkcs11.CKA_EC_POINT,
			octetString(p.Public().(ed25519.PublicKey)))
	}
	return t, nil
}

func curveOID(k Kind) []byte {
	if k == KindECP384 {
		return oidP384
	}
	return oidP256
}

// octetString DER-encodes p as an OCTET STRING, the form CKA_EC_POINT
// takes (PKCS#11 3.0 section 2.3.3; SoftHSM insists on it for Ed25519).
func octetString(p []byte) []byte {
	der, _ := asn1.Marshal(p) // cannot fail for a byte slice
	return der
}

// secretValues appends the key material to t for C_CreateObject. The
// returned slices hold secrets; the caller clears them after the call.
func secretValues(k *Key, t attrs) (attrs, [][]byte, error) {
	if k.Kind.IsSecret() {
		v := append([]byte(nil), k.Secret...)
		t.add(pkcs11.CKA_VALUE, v)
		return t, [][]byte{v}, nil
	}

	switch p := k.Private.(type) {
	case *rsa.PrivateKey:
		return rsaValues(p, t)
	case *ecdsa.PrivateKey:
		d, err := p.Bytes()
		if err != nil {
			return nil, nil, fmt.Errorf("encoding ec private key: %w", err)
		}
		t.add(pkcs11.CKA_EC_PARAMS, curveOID(k.Kind))
		t.add(pkcs11.CKA_VALUE, d)
		return t, [][]byte{d}, nil
	case ed25519.PrivateKey:
		seed := append([]byte(nil), p.Seed()...)
		t.add(pkcs11.CKA_EC_PARAMS, oidEd25519)
		t.add(pkcs11.CKA_VALUE, seed)
		return t, [][]byte{seed}, nil
	}
	return nil, nil, fmt.Errorf("private key type %T is not supported",
		k.Private)
}

func rsaValues(p *rsa.PrivateKey, t attrs) (attrs, [][]byte, error) {
	if p.Precomputed.Dp == nil {
		p.Precompute()
	}
	if p.Precomputed.Dp == nil || len(p.Primes) != 2 {
		return nil, nil, errors.New("rsa key lacks its CRT values")
	}
	secret := [][]byte{
		p.D.Bytes(), p.Primes[0].Bytes(), p.Primes[1].Bytes(),
		p.Precomputed.Dp.Bytes(), p.Precomputed.Dq.Bytes(),
		p.Precomputed.Qinv.Bytes(),
	}
	t.add(pkcs11.CKA_MODULUS, p.N.Bytes())
	t.add(pkcs11.CKA_PUBLIC_EXPONENT, big.NewInt(int64(p.E)).Bytes())
	for i, typ := range []uint{pkcs11.CKA_PRIVATE_EXPONENT,
		pkcs11.CKA_PRIME_1, pkcs11.CKA_PRIME_2, pkcs11.CKA_EXPONENT_1,
		pkcs11.CKA_EXPONENT_2, pkcs11.CKA_COEFFICIENT} {
		t.add(typ, secret[i])
	}
	return t, secret, nil
}

// clearAll zeroes secret buffers, best effort.
func clearAll(bufs [][]byte) {
	for _, b := range bufs {
		clear(b)
	}
}
