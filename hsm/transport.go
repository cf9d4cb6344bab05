package hsm

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"errors"
	"fmt"

	"github.com/miekg/pkcs11"
)

// transport is the AES key that carries wrapped keys into the token, held
// twice: inside as a session object allowed only to unwrap, outside as
// bytes cleared when the import ends.
type transport struct {
	rsaPub, rsaPriv pkcs11.ObjectHandle // generated session pair, or 0
	aes             pkcs11.ObjectHandle
	key             []byte
}

// newTransport brings a fresh AES-256 transport key into the token. The
// token holds an RSA key pair that may unwrap (generated now as session
// objects, or named by Options.TransportLabel); the key is made here,
// encrypted with RSA-OAEP under the public half and unwrapped inside.
func (s *Session) newTransport(opts Options) (*transport, error) {
	t := &transport{}
	pub, priv, err := s.transportRSA(opts, t)
	if err != nil {
		s.closeTransport(t)
		return nil, err
	}

	t.key = make([]byte, 32)
	if _, err := rand.Read(t.key); err != nil {
		s.closeTransport(t)
		return nil, fmt.Errorf("making transport key: %w", err)
	}
	hash := opts.OAEPHash
	if hash == 0 {
		hash = crypto.SHA1
	}
	ct, err := rsa.EncryptOAEP(hash.New(), rand.Reader, pub, t.key, nil)
	if err != nil {
		s.closeTransport(t)
		return nil, fmt.Errorf("encrypting transport key: %w", err)
	}

	t.aes, err = s.unwrapTransport(priv, ct, hash)
	if err != nil {
		s.closeTransport(t)
		return nil, err
	}
	return t, nil
}

// transportRSA finds or generates the RSA pair and returns its public
// key and the handle of its private key.
func (s *Session) transportRSA(opts Options,
	t *transport) (*rsa.PublicKey, pkcs11.ObjectHandle, error) {

	if opts.TransportLabel != "" {
		return s.namedTransport(opts.TransportLabel)
	}
	bits := opts.TransportBits
	if bits == 0 {
		bits = 3072
	}
	var pubT, privT attrs
	pubT.add(pkcs11.CKA_TOKEN, false)
	pubT.add(pkcs11.CKA_MODULUS_BITS, bits)
	pubT.add(pkcs11.CKA_PUBLIC_EXPONENT, []byte{1, 0, 1})
	pubT.add(pkcs11.CKA_ENCRYPT, false)
	pubT.add(pkcs11.CKA_WRAP, true)
	pubT.add(pkcs11.CKA_VERIFY, false)
	privT.add(pkcs11.CKA_TOKEN, false)
	privT.add(pkcs11.CKA_PRIVATE, true)
	privT.add(pkcs11.CKA_SENSITIVE, true)
	privT.add(pkcs11.CKA_EXTRACTABLE, false)
	privT.add(pkcs11.CKA_UNWRAP, true)
	privT.add(pkcs11.CKA_DECRYPT, false)
	privT.add(pkcs11.CKA_SIGN, false)

	m := []*pkcs11.Mechanism{
		pkcs11.NewMechanism(pkcs11.CKM_RSA_PKCS_KEY_PAIR_GEN, nil)}
	pubH, privH, err := s.p.GenerateKeyPair(s.sh, m, pubT, privT)
	if err != nil {
		return nil, 0, fmt.Errorf("generating transport key pair on %v: %w",
			s.info, err)
	}
	t.rsaPub, t.rsaPriv = pubH, privH
	pub, err := s.publicKey(pubH, KindRSA)
	if err != nil {
		return nil, 0, fmt.Errorf("reading transport public key on %v: %w",
			s.info, err)
	}
	return pub.(*rsa.PublicKey), privH, nil
}

// namedTransport finds the one RSA private key with the label that may
// unwrap, and its public key (from a public key object with the same
// label, or from the private key object's own modulus).
func (s *Session) namedTransport(label string) (*rsa.PublicKey,
	pkcs11.ObjectHandle, error) {

	privs, err := s.find(
		pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_PRIVATE_KEY),
		pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_RSA),
		pkcs11.NewAttribute(pkcs11.CKA_LABEL, label),
		pkcs11.NewAttribute(pkcs11.CKA_UNWRAP, true))
	if err != nil {
		return nil, 0, err
	}
	if len(privs) != 1 {
		return nil, 0, fmt.Errorf("%v: %d rsa private keys labelled %q "+
			"may unwrap; the transport key needs exactly one: %w", s.info,
			len(privs), label, ErrObjectNotFound)
	}

	from := privs[0]
	pubs, err := s.find(
		pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_PUBLIC_KEY),
		pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_RSA),
		pkcs11.NewAttribute(pkcs11.CKA_LABEL, label))
	if err != nil {
		return nil, 0, err
	}
	if len(pubs) == 1 {
		from = pubs[0]
	}
	pub, err := s.publicKey(from, KindRSA)
	if err != nil {
		return nil, 0, fmt.Errorf("reading transport key %q on %v: %w",
			label, s.info, err)
	}
	return pub.(*rsa.PublicKey), privs[0], nil
}

// unwrapTransport has the token unwrap the transport key as a session
// AES key that may only unwrap.
func (s *Session) unwrapTransport(priv pkcs11.ObjectHandle, ct []byte,
	hash crypto.Hash) (pkcs11.ObjectHandle, error) {

	params, name, err := oaepParams(hash)
	if err != nil {
		return 0, err
	}
	var t attrs
	t.add(pkcs11.CKA_CLASS, pkcs11.CKO_SECRET_KEY)
	t.add(pkcs11.CKA_KEY_TYPE, pkcs11.CKK_AES)
	t.add(pkcs11.CKA_TOKEN, false)
	t.add(pkcs11.CKA_PRIVATE, true)
	t.add(pkcs11.CKA_SENSITIVE, true)
	t.add(pkcs11.CKA_EXTRACTABLE, false)
	t.add(pkcs11.CKA_UNWRAP, true)
	for _, a := range []uint{pkcs11.CKA_WRAP, pkcs11.CKA_ENCRYPT,
		pkcs11.CKA_DECRYPT, pkcs11.CKA_SIGN, pkcs11.CKA_VERIFY,
		pkcs11.CKA_DERIVE} {
		t.add(a, false)
	}

	m := []*pkcs11.Mechanism{
		pkcs11.NewMechanism(pkcs11.CKM_RSA_PKCS_OAEP, params)}
	h, err := s.p.UnwrapKey(s.sh, m, priv, ct, t)
	switch {
	case err == nil:
		return h, nil
	case isRV(err, pkcs11.CKR_ARGUMENTS_BAD),
		isRV(err, pkcs11.CKR_MECHANISM_PARAM_INVALID),
		isRV(err, pkcs11.CKR_MECHANISM_INVALID):
		// SoftHSM answers CKR_ARGUMENTS_BAD to OAEP with SHA-256.
		return 0, &MechanismError{Token: s.info.String(),
			Missing: []string{name + " (unwrap): " + err.Error()}}
	}
	return 0, fmt.Errorf("unwrapping transport key on %v: %w", s.info, err)
}

func oaepParams(hash crypto.Hash) (*pkcs11.OAEPParams, string, error) {
	switch hash {
	case crypto.SHA1:
		return pkcs11.NewOAEPParams(pkcs11.CKM_SHA_1, pkcs11.CKG_MGF1_SHA1,
			pkcs11.CKZ_DATA_SPECIFIED, nil), "CKM_RSA_PKCS_OAEP with SHA-1", nil
	case crypto.SHA256:
		return pkcs11.NewOAEPParams(pkcs11.CKM_SHA256,
				pkcs11.CKG_MGF1_SHA256, pkcs11.CKZ_DATA_SPECIFIED, nil),
			"CKM_RSA_PKCS_OAEP with SHA-256", nil
	}
	return nil, "", fmt.Errorf("oaep hash %v is not supported: use "+
		"SHA-1 or SHA-256", hash)
}

// closeTransport destroys the session objects and clears the key.
func (s *Session) closeTransport(t *transport) {
	clear(t.key)
	for _, h := range []pkcs11.ObjectHandle{t.aes, t.rsaPriv, t.rsaPub} {
		if h != 0 {
			// Session objects vanish with the session anyway.
			s.p.DestroyObject(s.sh, h)
		}
	}
}

// unwrap wraps the key's material under the transport key (RFC 5649)
// and has the token unwrap it with the template t.
func (r *importRun) unwrap(k *Key, t attrs) (pkcs11.ObjectHandle, error) {
	material, err := wrapMaterial(k)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", k.name(), err)
	}
	wrapped, err := kwpWrap(r.transport.key, material)
	clear(material)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", k.name(), err)
	}

	m := []*pkcs11.Mechanism{
		pkcs11.NewMechanism(pkcs11.CKM_AES_KEY_WRAP_PAD, nil)}
	h, err := r.s.p.UnwrapKey(r.s.sh, m, r.transport.aes, wrapped, t)
	if err != nil {
		return 0, fmt.Errorf("unwrapping %s on %v: %w", k.name(), r.s.info,
			unwrapHint(k.Kind, err))
	}
	r.created = append(r.created, created{h, k.name()})
	return h, nil
}

// unwrapHint explains a known refusal.
func unwrapHint(kind Kind, err error) error {
	if kind == KindEd25519 && isRV(err, pkcs11.CKR_FUNCTION_FAILED) {
		return fmt.Errorf("%w (some tokens, SoftHSM 2.6 among them, "+
			"cannot unwrap Ed25519 keys; use the create path)", err)
	}
	return err
}

// wrapMaterial is what gets wrapped: the raw value of a secret key, the
// PKCS#8 encoding of a private key. The caller clears it.
func wrapMaterial(k *Key) ([]byte, error) {
	if k.Kind.IsSecret() {
		return append([]byte(nil), k.Secret...), nil
	}
	der, err := x509.MarshalPKCS8PrivateKey(k.Private)
	if err != nil {
		return nil, fmt.Errorf("encoding private key: %w", err)
	}
	if len(der) == 0 {
		return nil, errors.New("encoding private key: empty")
	}
	return der, nil
}
