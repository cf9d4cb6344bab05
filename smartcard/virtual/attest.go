package virtual

import (
	"crypto"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"fmt"
	"math/big"
	"time"
)

// Yubico's attestation extensions, which piv.Verify reads.
var (
	oidFirmware   = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 41482, 3, 3}
	oidSerial     = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 41482, 3, 7}
	oidPolicy     = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 41482, 3, 8}
	oidFormFactor = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 41482, 3, 9}

	oidEd25519 = asn1.ObjectIdentifier{1, 3, 101, 112}
	oidX25519  = asn1.ObjectIdentifier{1, 3, 101, 110}
)

// formFactorUSBAKeychain is what the card claims to be.
const formFactorUSBAKeychain = 0x01

// farFuture is the end of validity of attestation certificates, as
// RFC 5280 section 4.1.2.5 spells "no well-defined expiration".
var farFuture = time.Date(9999, 12, 31, 23, 59, 59, 0, time.UTC)

// newAttestation makes the card's attestation root CA, the attestation
// key in slot f9 and its certificate in object 5FFF01, signed by the
// root. A YubiKey's f9 certificate chains to Yubico; a virtual card's
// chains to its own root, which AttestationCA returns.
func (s *state) newAttestation() error {
	rootKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	now := time.Now().Add(-time.Hour).UTC().Truncate(time.Second)
	root := &x509.Certificate{
		SerialNumber: randomCertSerial(),
		Subject: pkix.Name{CommonName: fmt.Sprintf(
			"custos virtual PIV attestation root %d", s.Serial)},
		NotBefore:             now,
		NotAfter:              farFuture,
		KeyUsage:              x509.KeyUsageCertSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLen:            1,
	}
	rootDER, err := x509.CreateCertificate(rand.Reader, root, root, rootKey.Public(), rootKey)
	if err != nil {
		return err
	}
	root, err = x509.ParseCertificate(rootDER)
	if err != nil {
		return err
	}

	priv, err := generatePrivate(algP256)
	if err != nil {
		return err
	}
	f9 := &slotKey{Alg: algP256, Private: priv, PINPolicy: pinNever,
		TouchPolicy: touchNever, Origin: originGenerated}
	ops, err := f9.signer()
	if err != nil {
		return err
	}
	tmpl := &x509.Certificate{
		SerialNumber: randomCertSerial(),
		Subject: pkix.Name{CommonName: fmt.Sprintf(
			"custos virtual PIV attestation %d", s.Serial)},
		NotBefore:             now,
		NotAfter:              farFuture,
		KeyUsage:              x509.KeyUsageCertSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, root,
		ops.(ecKey).k.Public(), rootKey)
	if err != nil {
		return err
	}

	rootPriv, err := rootKey.Bytes()
	if err != nil {
		return err
	}
	s.AttestationRoot = attestationRoot{Private: rootPriv, Cert: rootDER}
	s.Keys[slotName(slotAttestation)] = f9
	s.Objects[objectName(objAttestation)] = certObject(der)
	return nil
}

// certObject is the content of a certificate data object: the DER
// certificate (70), CertInfo 00 for uncompressed (71) and an empty error
// detection code (FE), as SP 800-73-4 part 1 table 12 lays out.
func certObject(der []byte) []byte {
	out := tlvBytes(0x70, der)
	out = appendTLV(out, 0x71, []byte{0x00})
	return appendTLV(out, 0xfe, nil)
}

func randomCertSerial() *big.Int {
	n, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 64))
	return n.Add(n, big.NewInt(1))
}

// AttestationCA returns the root certificate of the card's attestation
// chain, the virtual stand-in for Yubico's PIV root: pass it as a root to
// piv.Verifier to check attestations of this card.
func (c *Card) AttestationCA() *x509.Certificate {
	c.mu.Lock()
	defer c.mu.Unlock()
	cert, err := x509.ParseCertificate(c.st.AttestationRoot.Cert)
	if err != nil {
		return nil
	}
	return cert
}

// attest handles the Yubico ATTEST command: a certificate for the key in
// slot P1, signed by the attestation key in slot f9 and issued by the
// certificate in object 5FFF01. Only keys generated on the card can be
// attested.
func (c *Card) attest(cmd command) response {
	slot := cmd.p1
	if cmd.p2 != 0x00 || !isKeySlot(slot) || slot == slotAttestation {
		return status(swIncorrectP1P2)
	}
	k, found := c.st.Keys[slotName(slot)]
	if !found || k.Origin != originGenerated {
		return status(swIncorrectData)
	}
	der, err := c.attestationCert(slot, k)
	if err != nil {
		return status(swNoPreciseDiagnostic)
	}
	return ok(der)
}

// attestationCert builds the certificate ATTEST returns.
func (c *Card) attestationCert(slot byte, k *slotKey) ([]byte, error) {
	issuer, signer, err := c.attestationIssuer()
	if err != nil {
		return nil, err
	}
	ops, err := k.signer()
	if err != nil {
		return nil, err
	}
	serial, err := asn1.Marshal(int64(c.st.Serial))
	if err != nil {
		return nil, err
	}

	v := c.st.Version
	tmpl := &x509.Certificate{
		SerialNumber: randomCertSerial(),
		Subject: pkix.Name{CommonName: fmt.Sprintf(
			"YubiKey PIV Attestation %02x", slot)},
		NotBefore: issuer.NotBefore,
		NotAfter:  issuer.NotAfter,
		ExtraExtensions: []pkix.Extension{
			{Id: oidFirmware, Value: []byte{v[0], v[1], v[2]}},
			{Id: oidSerial, Value: serial},
			{Id: oidPolicy, Value: []byte{k.PINPolicy, k.TouchPolicy}},
			{Id: oidFormFactor, Value: []byte{formFactorUSBAKeychain}},
		},
	}

	switch o := ops.(type) {
	case ecKey:
		return x509.CreateCertificate(rand.Reader, tmpl, issuer, o.k.Public(), signer)
	case edKey:
		return x509.CreateCertificate(rand.Reader, tmpl, issuer, o.k.Public(), signer)
	case xKey:
		return x25519Certificate(tmpl, issuer, o.k.PublicKey(), signer)
	}
	return nil, errors.New("unsupported key")
}

// attestationIssuer returns the f9 certificate and key.
func (c *Card) attestationIssuer() (*x509.Certificate, crypto.Signer, error) {
	content := c.st.Objects[objectName(objAttestation)]
	ts, err := parseTLVs(content)
	if err != nil {
		return nil, nil, err
	}
	der, found := find(ts, 0x70)
	if !found {
		return nil, nil, errors.New("no attestation certificate")
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, nil, err
	}
	k, found := c.st.Keys[slotName(slotAttestation)]
	if !found {
		return nil, nil, errors.New("no attestation key")
	}
	ops, err := k.signer()
	if err != nil {
		return nil, nil, err
	}
	switch o := ops.(type) {
	case ecKey:
		return cert, o.k, nil
	case edKey:
		return cert, o.k, nil
	}
	return nil, nil, errors.New("attestation key cannot sign")
}

// x25519Certificate issues a certificate for an X25519 key, which
// crypto/x509 does not issue. It issues the certificate for a stand-in
// Ed25519 key of the same size, swaps the algorithm identifier in the
// to-be-signed part (both OIDs encode in three bytes) and signs again.
func x25519Certificate(tmpl, issuer *x509.Certificate, pub *ecdh.PublicKey,
	signer crypto.Signer) ([]byte, error) {
	stand := ed25519.PublicKey(pub.Bytes())
	der, err := x509.CreateCertificate(rand.Reader, tmpl, issuer, stand, signer)
	if err != nil {
		return nil, err
	}

	var cert struct {
		TBS    asn1.RawValue
		SigAlg asn1.RawValue
		Sig    asn1.BitString
	}
	if _, err := asn1.Unmarshal(der, &cert); err != nil {
		return nil, err
	}
	edOID, _ := asn1.Marshal(oidEd25519)
	xOID, _ := asn1.Marshal(oidX25519)
	spki := append(append([]byte{0x30, byte(len(edOID))}, edOID...), 0x03, 0x21, 0x00)
	spki = append(spki, stand...)
	at := indexOnce(cert.TBS.FullBytes, spki)
	if at < 0 {
		return nil, errors.New("subject key not found in certificate")
	}
	tbs := append([]byte(nil), cert.TBS.FullBytes...)
	copy(tbs[at+2:], xOID)

	sig, err := signTBS(der, tbs, signer)
	if err != nil {
		return nil, err
	}
	cert.TBS = asn1.RawValue{FullBytes: tbs}
	cert.Sig = asn1.BitString{Bytes: sig, BitLength: 8 * len(sig)}
	return asn1.Marshal(cert)
}

// signTBS signs tbs with the algorithm crypto/x509 chose for the
// certificate der.
func signTBS(der, tbs []byte, signer crypto.Signer) ([]byte, error) {
	parsed, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	var h crypto.Hash
	switch parsed.SignatureAlgorithm {
	case x509.ECDSAWithSHA256:
		h = crypto.SHA256
	case x509.ECDSAWithSHA384:
		h = crypto.SHA384
	case x509.PureEd25519:
		return signer.Sign(rand.Reader, tbs, crypto.Hash(0))
	default:
		return nil, fmt.Errorf("unexpected signature algorithm %v", parsed.SignatureAlgorithm)
	}
	d := h.New()
	d.Write(tbs)
	return signer.Sign(rand.Reader, d.Sum(nil), h)
}

// indexOnce returns the offset of sub in b if it occurs exactly once.
func indexOnce(b, sub []byte) int {
	at := -1
	for i := 0; i+len(sub) <= len(b); i++ {
		if string(b[i:i+len(sub)]) == string(sub) {
			if at >= 0 {
				return -1
			}
			at = i
		}
	}
	return at
}
