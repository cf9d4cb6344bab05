package virtual_test

// End-to-end tests: virtual cards inserted into vpcd readers of a real
// pcscd, driven by piv-go exactly as custos drives YubiKeys. Run them with
//
//	.ci/with-pcscd go test ./smartcard/virtual/...

import (
	"bytes"
	"crypto"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"math/big"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"custos/smartcard/virtual"
	"custos/smartcard/virtual/virtualtest"

	"github.com/go-piv/piv-go/v2/piv"
)

// open connects piv-go to an inserted card and closes it at cleanup.
func open(t *testing.T, in virtualtest.Inserted) *piv.YubiKey {
	t.Helper()
	yk, err := piv.Open(in.Reader)
	if err != nil {
		t.Fatalf("opening %q: %v", in.Reader, err)
	}
	t.Cleanup(func() { yk.Close() })
	return yk
}

func TestVersionAndSerial(t *testing.T) {
	ins := virtualtest.Start(t, 2)
	readers, err := piv.Cards()
	if err != nil {
		t.Fatal(err)
	}
	for _, in := range ins {
		if !slices.Contains(readers, in.Reader) {
			t.Fatalf("piv.Cards() = %q lacks %q", readers, in.Reader)
		}
		yk := open(t, in)
		if v := yk.Version(); v != (piv.Version{Major: 5, Minor: 7, Patch: 1}) {
			t.Errorf("version %v, want 5.7.1", v)
		}
		serial, err := yk.Serial()
		if err != nil {
			t.Fatal(err)
		}
		if serial != in.Serial || serial != in.Card.Serial() {
			t.Errorf("serial %d, card says %d", serial, in.Serial)
		}
		ff, err := yk.FormFactor()
		if err != nil || ff != piv.FormfactorUSBAKeychain {
			t.Errorf("form factor %v, %v", ff, err)
		}
	}
	if ins[0].Serial == ins[1].Serial {
		t.Error("two fresh cards share a serial")
	}
}

var keyCases = []struct {
	name string
	alg  piv.Algorithm
	slot piv.Slot
	pin  piv.PINPolicy
}{
	{"P-256", piv.AlgorithmEC256, piv.SlotAuthentication, piv.PINPolicyOnce},
	{"P-384", piv.AlgorithmEC384, piv.SlotSignature, piv.PINPolicyAlways},
	{"Ed25519", piv.AlgorithmEd25519, piv.SlotCardAuthentication, piv.PINPolicyNever},
	{"X25519", piv.AlgorithmX25519, retired(0x82), piv.PINPolicyOnce},
	{"P-256 retired", piv.AlgorithmEC256, retired(0x95), piv.PINPolicyOnce},
}

func retired(key uint32) piv.Slot {
	s, _ := piv.RetiredKeyManagementSlot(key)
	return s
}

func TestKeysSignAndAgree(t *testing.T) {
	in := virtualtest.Start(t, 1)[0]
	yk := open(t, in)
	for _, kc := range keyCases {
		t.Run(kc.name, func(t *testing.T) {
			pub, err := yk.GenerateKey(piv.DefaultManagementKey, kc.slot, piv.Key{
				Algorithm: kc.alg, PINPolicy: kc.pin, TouchPolicy: piv.TouchPolicyCached})
			if err != nil {
				t.Fatal(err)
			}
			info, err := yk.KeyInfo(kc.slot)
			if err != nil {
				t.Fatal(err)
			}
			if info.Algorithm != kc.alg || info.PINPolicy != kc.pin ||
				info.TouchPolicy != piv.TouchPolicyCached || info.Origin != piv.OriginGenerated {
				t.Errorf("key info %+v", info)
			}
			if !pub.(interface{ Equal(crypto.PublicKey) bool }).Equal(info.PublicKey) {
				t.Error("key info shows another public key")
			}

			priv, err := yk.PrivateKey(kc.slot, pub, piv.KeyAuth{PIN: piv.DefaultPIN})
			if err != nil {
				t.Fatal(err)
			}
			for range 2 { // twice: PIN-always needs the PIN each time
				checkPrivate(t, pub, priv)
			}
		})
	}
}

// checkPrivate signs or agrees with priv and checks against pub.
func checkPrivate(t *testing.T, pub crypto.PublicKey, priv crypto.PrivateKey) {
	t.Helper()
	msg := []byte("custos rehearsal")
	switch p := pub.(type) {
	case *ecdsa.PublicKey:
		h := crypto.SHA256
		if p.Curve == elliptic.P384() {
			h = crypto.SHA384
		}
		d := h.New()
		d.Write(msg)
		digest := d.Sum(nil)
		sig, err := priv.(crypto.Signer).Sign(rand.Reader, digest, h)
		if err != nil {
			t.Fatal(err)
		}
		if !ecdsa.VerifyASN1(p, digest, sig) {
			t.Fatal("ecdsa signature does not verify")
		}
		peer, _ := ecdsa.GenerateKey(p.Curve, rand.Reader)
		got, err := priv.(*piv.ECDSAPrivateKey).SharedKey(&peer.PublicKey)
		if err != nil {
			t.Fatal(err)
		}
		pe, _ := peer.ECDH()
		cardPub, _ := p.ECDH()
		want, _ := pe.ECDH(cardPub)
		if !bytes.Equal(got, want) {
			t.Fatal("ecdh shared secrets differ")
		}
	case ed25519.PublicKey:
		sig, err := priv.(crypto.Signer).Sign(rand.Reader, msg, crypto.Hash(0))
		if err != nil {
			t.Fatal(err)
		}
		if !ed25519.Verify(p, msg, sig) {
			t.Fatal("ed25519 signature does not verify")
		}
	case *ecdh.PublicKey:
		peer, _ := ecdh.X25519().GenerateKey(rand.Reader)
		got, err := priv.(*piv.X25519PrivateKey).ECDH(peer.PublicKey())
		if err != nil {
			t.Fatal(err)
		}
		want, _ := peer.ECDH(p)
		if !bytes.Equal(got, want) {
			t.Fatal("x25519 shared secrets differ")
		}
	default:
		t.Fatalf("unexpected key %T", pub)
	}
}

// selfSigned makes a certificate for pub, padded with an extension of
// extra bytes to make it long.
func selfSigned(t *testing.T, pub crypto.PublicKey, cn string, extra int) *x509.Certificate {
	t.Helper()
	signer, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: cn},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
	}
	if extra > 0 {
		pad := make([]byte, extra)
		rand.Read(pad)
		tmpl.ExtraExtensions = []pkix.Extension{{Id: []int{1, 3, 6, 1, 4, 1, 99999, 1}, Value: pad}}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, pub, signer)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return cert
}

func TestCertificates(t *testing.T) {
	in := virtualtest.Start(t, 1)[0]
	yk := open(t, in)
	slot := retired(0x83)
	pub, err := yk.GenerateKey(piv.DefaultManagementKey, slot, piv.Key{
		Algorithm: piv.AlgorithmEC256, PINPolicy: piv.PINPolicyOnce, TouchPolicy: piv.TouchPolicyNever})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := yk.Certificate(slot); !errors.Is(err, piv.ErrNotFound) {
		t.Fatalf("empty slot: got %v, want ErrNotFound", err)
	}
	// A short certificate, then one needing command and response chaining.
	for _, extra := range []int{0, 2600} {
		cert := selfSigned(t, pub, fmt.Sprintf("custos %d", extra), extra)
		if err := yk.SetCertificate(piv.DefaultManagementKey, slot, cert); err != nil {
			t.Fatalf("storing %d-byte certificate: %v", len(cert.Raw), err)
		}
		got, err := yk.Certificate(slot)
		if err != nil {
			t.Fatal(err)
		}
		if !got.Equal(cert) {
			t.Fatalf("read back another %d-byte certificate", len(cert.Raw))
		}
	}
	// Past the YubiKey object limit the card refuses, keeping the old one.
	big := selfSigned(t, pub, "too big", 3100)
	err = yk.SetCertificate(piv.DefaultManagementKey, slot, big)
	if err == nil || !strings.Contains(err.Error(), "6a84") {
		t.Fatalf("storing a %d-byte certificate: got %v, want 6a84", len(big.Raw), err)
	}
	if got, err := yk.Certificate(slot); err != nil || got.Subject.CommonName != "custos 2600" {
		t.Fatalf("after refused write: %v, %v", got, err)
	}
}

func TestPINBlockedThenUnblocked(t *testing.T) {
	in := virtualtest.Start(t, 1)[0]
	yk := open(t, in)
	if n, err := yk.Retries(); err != nil || n != 3 {
		t.Fatalf("retries %d, %v", n, err)
	}
	for want := 2; want >= 0; want-- {
		var ae piv.AuthErr
		if err := yk.VerifyPIN("999999"); !errors.As(err, &ae) || ae.Retries != want {
			t.Fatalf("wrong PIN: got %v, want %d retries left", err, want)
		}
	}
	if err := yk.VerifyPIN(piv.DefaultPIN); err == nil || !strings.Contains(err.Error(), "6983") {
		t.Fatalf("right PIN on a blocked card: got %v, want 6983", err)
	}
	if n, err := yk.Retries(); err != nil || n != 0 {
		t.Fatalf("retries %d, %v", n, err)
	}
	var ae piv.AuthErr
	if err := yk.Unblock("87654321", "246810"); !errors.As(err, &ae) || ae.Retries != 2 {
		t.Fatalf("wrong PUK: %v", err)
	}
	if err := yk.Unblock(piv.DefaultPUK, "246810"); err != nil {
		t.Fatal(err)
	}
	if err := yk.VerifyPIN("246810"); err != nil {
		t.Fatal(err)
	}
	if err := yk.SetPIN("246810", "135790"); err != nil {
		t.Fatal(err)
	}
	if err := yk.SetPUK(piv.DefaultPUK, "11223344"); err != nil {
		t.Fatal(err)
	}
	if err := yk.VerifyPIN("135790"); err != nil {
		t.Fatal(err)
	}
	if err := yk.SetRetries(piv.DefaultManagementKey, "135790", 5, 4); err != nil {
		t.Fatal(err)
	}
	// SET PIN RETRIES restores the default PIN, as on a YubiKey.
	if n, err := yk.Retries(); err != nil || n != 5 {
		t.Fatalf("retries %d, %v after SetRetries", n, err)
	}
	if err := yk.VerifyPIN(piv.DefaultPIN); err != nil {
		t.Fatal(err)
	}
}

func TestManagementKeyChange(t *testing.T) {
	newKey := bytes.Repeat([]byte{0x5c}, 24)
	for _, tc := range []struct {
		name    string
		version []byte
	}{
		{"AES-192 on 5.7", []byte{5, 7, 1}},
		{"3DES auth then AES-192 on 5.4", []byte{5, 4, 3}},
		{"3DES on 5.2", []byte{5, 2, 7}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := tc.version
			in := virtualtest.Start(t, 1, virtualtest.WithCardOptions(virtual.WithVersion(v[0], v[1], v[2])))[0]
			yk := open(t, in)
			if err := yk.SetManagementKey(piv.DefaultManagementKey, newKey); err != nil {
				t.Fatal(err)
			}
			key := piv.Key{Algorithm: piv.AlgorithmEC256, PINPolicy: piv.PINPolicyOnce, TouchPolicy: piv.TouchPolicyNever}
			if _, err := yk.GenerateKey(piv.DefaultManagementKey, piv.SlotAuthentication, key); err == nil {
				t.Fatal("old management key still works")
			}
			if _, err := yk.GenerateKey(newKey, piv.SlotAuthentication, key); err != nil {
				t.Fatalf("new management key: %v", err)
			}
		})
	}
}

func TestAttestation(t *testing.T) {
	in := virtualtest.Start(t, 1)[0]
	yk := open(t, in)
	roots := x509.NewCertPool()
	roots.AddCert(in.Card.AttestationCA())
	verifier := piv.Verifier{Roots: roots}

	f9, err := yk.AttestationCertificate()
	if err != nil {
		t.Fatal(err)
	}
	for _, kc := range keyCases {
		t.Run(kc.name, func(t *testing.T) {
			pub, err := yk.GenerateKey(piv.DefaultManagementKey, kc.slot, piv.Key{
				Algorithm: kc.alg, PINPolicy: kc.pin, TouchPolicy: piv.TouchPolicyAlways})
			if err != nil {
				t.Fatal(err)
			}
			cert, err := yk.Attest(kc.slot)
			if err != nil {
				t.Fatal(err)
			}
			a, err := verifier.Verify(f9, cert)
			if err != nil {
				t.Fatal(err)
			}
			want := piv.Attestation{Version: piv.Version{Major: 5, Minor: 7, Patch: 1},
				Serial: in.Serial, Formfactor: piv.FormfactorUSBAKeychain,
				PINPolicy: kc.pin, TouchPolicy: piv.TouchPolicyAlways, Slot: kc.slot}
			if *a != want {
				t.Errorf("attestation %+v, want %+v", *a, want)
			}
			// crypto/x509 leaves PublicKey nil for X25519; the SPKI parser
			// knows it.
			certPub, err := x509.ParsePKIXPublicKey(cert.RawSubjectPublicKeyInfo)
			if err != nil {
				t.Fatal(err)
			}
			if !pub.(interface{ Equal(crypto.PublicKey) bool }).Equal(certPub) {
				t.Error("attested key differs from generated key")
			}
			// A virtual card must never pass for a Yubico one.
			if _, err := piv.Verify(f9, cert); err == nil {
				t.Error("virtual attestation verified against Yubico's roots")
			}
		})
	}

	// Another card's root does not vouch for this card.
	other := virtualtest.Start(t, 1)[0]
	pool := x509.NewCertPool()
	pool.AddCert(other.Card.AttestationCA())
	cert, err := yk.Attest(piv.SlotAuthentication)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := (&piv.Verifier{Roots: pool}).Verify(f9, cert); err == nil {
		t.Error("attestation verified with another card's root")
	}
	if _, err := yk.Attest(retired(0x90)); !errors.Is(err, piv.ErrNotFound) {
		t.Errorf("attesting an empty slot: %v, want ErrNotFound", err)
	}
}

func TestReset(t *testing.T) {
	in := virtualtest.Start(t, 1)[0]
	yk := open(t, in)
	slot := retired(0x84)
	pub, err := yk.GenerateKey(piv.DefaultManagementKey, slot, piv.Key{
		Algorithm: piv.AlgorithmEC256, PINPolicy: piv.PINPolicyOnce, TouchPolicy: piv.TouchPolicyNever})
	if err != nil {
		t.Fatal(err)
	}
	if err := yk.SetCertificate(piv.DefaultManagementKey, slot, selfSigned(t, pub, "gone", 0)); err != nil {
		t.Fatal(err)
	}
	if err := yk.SetPIN(piv.DefaultPIN, "777777"); err != nil {
		t.Fatal(err)
	}
	if err := yk.Reset(); err != nil {
		t.Fatal(err)
	}
	if _, err := yk.KeyInfo(slot); !errors.Is(err, piv.ErrNotFound) {
		t.Errorf("key after reset: %v", err)
	}
	if _, err := yk.Certificate(slot); !errors.Is(err, piv.ErrNotFound) {
		t.Errorf("certificate after reset: %v", err)
	}
	if err := yk.VerifyPIN(piv.DefaultPIN); err != nil {
		t.Errorf("default PIN after reset: %v", err)
	}
	if _, err := yk.AttestationCertificate(); err != nil {
		t.Errorf("attestation certificate after reset: %v", err)
	}
}

// piv-go's PIN-protected metadata lives in object 5FC109, readable only
// with the PIN.
func TestProtectedMetadata(t *testing.T) {
	in := virtualtest.Start(t, 1)[0]
	yk := open(t, in)
	m, err := yk.Metadata(piv.DefaultPIN)
	if err != nil || m.ManagementKey != nil {
		t.Fatalf("fresh card metadata %+v, %v", m, err)
	}
	key := bytes.Repeat([]byte{0x77}, 24)
	if err := yk.SetMetadata(piv.DefaultManagementKey, &piv.Metadata{ManagementKey: &key}); err != nil {
		t.Fatal(err)
	}
	m, err = yk.Metadata(piv.DefaultPIN)
	if err != nil || m.ManagementKey == nil || !bytes.Equal(*m.ManagementKey, key) {
		t.Fatalf("metadata %+v, %v", m, err)
	}
	if _, err := yk.Metadata("000000"); err == nil {
		t.Fatal("metadata read with a wrong PIN")
	}
}

// SELECT (here of the management applet, by FormFactor) drops the PIN.
func TestSelectDropsPIN(t *testing.T) {
	in := virtualtest.Start(t, 1)[0]
	yk := open(t, in)
	if err := yk.VerifyPIN(piv.DefaultPIN); err != nil {
		t.Fatal(err)
	}
	if n, err := yk.Retries(); err == nil || n != 0 {
		// Retries uses an empty VERIFY: 9000 (no error) when verified.
		t.Fatalf("retries after verify: %d, %v", n, err)
	}
	if _, err := yk.FormFactor(); err != nil {
		t.Fatal(err)
	}
	if n, err := yk.Retries(); err != nil || n != 3 {
		t.Fatalf("after reselect: retries %d, %v; want PIN no longer verified", n, err)
	}
}

func TestPullAndReinsert(t *testing.T) {
	in := virtualtest.Start(t, 1)[0]
	yk := open(t, in)
	if err := yk.VerifyPIN(piv.DefaultPIN); err != nil {
		t.Fatal(err)
	}
	in.Pull()
	if _, err := yk.Serial(); err == nil {
		t.Fatal("card answered after being pulled")
	}
	yk.Close()
	if yk, err := piv.Open(in.Reader); err == nil {
		yk.Close()
		t.Fatal("opened a pulled card")
	}

	in.Reinsert()
	yk = open(t, in)
	if s, err := yk.Serial(); err != nil || s != in.Serial {
		t.Fatalf("serial %d, %v after reinsert", s, err)
	}
	if n, err := yk.Retries(); err != nil || n != 3 {
		t.Fatalf("retries %d, %v: PIN should be unverified after power loss", n, err)
	}
}

// A card pulled in the middle of a chained PUT DATA keeps the old object:
// an object is replaced only once its whole write arrived.
func TestPulledMidWriteKeepsOldObject(t *testing.T) {
	dir := t.TempDir()
	card, err := virtual.Open(filepath.Join(dir, "dana.card"))
	if err != nil {
		t.Fatal(err)
	}
	in := virtualtest.Insert(t, card)[0]
	slot := retired(0x86)

	yk := open(t, in)
	pub, err := yk.GenerateKey(piv.DefaultManagementKey, slot, piv.Key{
		Algorithm: piv.AlgorithmEC256, PINPolicy: piv.PINPolicyOnce, TouchPolicy: piv.TouchPolicyNever})
	if err != nil {
		t.Fatal(err)
	}
	old := selfSigned(t, pub, "old", 0)
	if err := yk.SetCertificate(piv.DefaultManagementKey, slot, old); err != nil {
		t.Fatal(err)
	}
	next := selfSigned(t, pub, "new", 2000) // three PUT DATA chunks

	// Count the APDUs of a whole write: management key authentication
	// (GET METADATA and two GENERAL AUTHENTICATE), then the chunks.
	before := in.Commands()
	if err := yk.SetCertificate(piv.DefaultManagementKey, slot, old); err != nil {
		t.Fatal(err)
	}
	total := in.Commands() - before
	yk.Close()
	if total < 5 {
		t.Fatalf("a write took only %d commands; want chained PUT DATA", total)
	}

	for cut := 0; cut < total; cut++ {
		yk := open(t, in)
		in.PullAfter(cut)
		if err := yk.SetCertificate(piv.DefaultManagementKey, slot, next); err == nil {
			t.Fatalf("cut after %d of %d commands: write succeeded", cut, total)
		}
		yk.Close()
		in.Reinsert()

		yk = open(t, in)
		got, err := yk.Certificate(slot)
		if err != nil {
			t.Fatalf("cut after %d of %d: %v", cut, total, err)
		}
		if !got.Equal(old) {
			t.Fatalf("cut after %d of %d commands: card holds %q, want the old certificate", cut, total, got.Subject.CommonName)
		}
		yk.Close()
	}

	// The state file agrees: a new process loading it sees the old object.
	reloaded, err := virtual.Open(filepath.Join(dir, "dana.card"))
	if err != nil {
		t.Fatal(err)
	}
	in.Pull()
	in2 := virtualtest.Insert(t, reloaded)[0]
	yk = open(t, in2)
	if got, err := yk.Certificate(slot); err != nil || !got.Equal(old) {
		t.Fatalf("reloaded card: %v, %v", got, err)
	}
	// And an uncut write replaces it.
	if err := yk.SetCertificate(piv.DefaultManagementKey, slot, next); err != nil {
		t.Fatal(err)
	}
	if got, err := yk.Certificate(slot); err != nil || !got.Equal(next) {
		t.Fatalf("after full write: %v, %v", got, err)
	}
}

// A card kept in a state file keeps its keys between ceremonies.
func TestStateFileAcrossRestarts(t *testing.T) {
	path := filepath.Join(t.TempDir(), "eve.card")
	first, err := virtual.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	in := virtualtest.Insert(t, first)[0]
	yk := open(t, in)
	slot := retired(0x87)
	pub, err := yk.GenerateKey(piv.DefaultManagementKey, slot, piv.Key{
		Algorithm: piv.AlgorithmX25519, PINPolicy: piv.PINPolicyOnce, TouchPolicy: piv.TouchPolicyNever})
	if err != nil {
		t.Fatal(err)
	}
	if err := yk.SetPIN(piv.DefaultPIN, "864200"); err != nil {
		t.Fatal(err)
	}
	yk.Close()
	in.Pull()

	second, err := virtual.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	in = virtualtest.Insert(t, second)[0]
	yk = open(t, in)
	if s, _ := yk.Serial(); s != first.Serial() {
		t.Fatalf("serial %d after restart, want %d", s, first.Serial())
	}
	priv, err := yk.PrivateKey(slot, pub, piv.KeyAuth{PIN: "864200"})
	if err != nil {
		t.Fatal(err)
	}
	checkPrivate(t, pub, priv)
}
