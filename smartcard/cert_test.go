package smartcard

import (
	"bytes"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func testRecord(t testing.TB, curve ecdh.Curve) (*record, ed25519.PrivateKey) {
	t.Helper()
	k, err := curve.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	dpub, dpriv, _ := ed25519.GenerateKey(rand.Reader)
	return &record{
		Kind: KindShare, SetID: [16]byte{0x7f, 0x2c, 1, 2, 3}, Index: 3,
		Custodian: "Chén Ŵ", Label: "backup master key", Dealer: dpub,
		Serial: 12345678, Slot: 0x84, Sealed: bytes.Repeat([]byte{0xaa}, 300),
		Key: k.PublicKey(),
	}, dpriv
}

func TestCertRoundTrip(t *testing.T) {
	for _, curve := range []ecdh.Curve{ecdh.P256(), ecdh.X25519()} {
		want, dealer := testRecord(t, curve)
		now := time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC)
		der, err := buildCert(rand.Reader, want, dealer, now)
		if err != nil {
			t.Fatalf("%v: build: %v", curve, err)
		}
		got, err := parseRecord(der)
		if err != nil {
			t.Fatalf("%v: parse: %v", curve, err)
		}
		if !got.SigOK {
			t.Errorf("%v: dealer signature does not verify", curve)
		}
		if !sameKey(got.Key, want.Key) {
			t.Errorf("%v: subject key differs", curve)
		}
		if !got.NotBefore.Equal(now) {
			t.Errorf("%v: not before %v, want %v", curve, got.NotBefore, now)
		}
		got.Key, got.SigOK, got.NotBefore = want.Key, false, time.Time{}
		if !recordsEqual(got, want) {
			t.Errorf("%v: parsed %+v\nwant %+v", curve, got, want)
		}
	}
}

func recordsEqual(a, b *record) bool {
	return a.Kind == b.Kind && a.SetID == b.SetID && a.Index == b.Index &&
		a.Custodian == b.Custodian && a.Label == b.Label &&
		bytes.Equal(a.Dealer, b.Dealer) && a.Serial == b.Serial &&
		a.Slot == b.Slot && bytes.Equal(a.Sealed, b.Sealed)
}

func TestCertEnrolledMarker(t *testing.T) {
	r, dealer := testRecord(t, ecdh.X25519())
	r.Kind, r.SetID, r.Index, r.Sealed, r.Label = KindEnrolled, [16]byte{}, 0, nil, ""
	der, err := buildCert(rand.Reader, r, dealer, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	got, err := parseRecord(der)
	if err != nil {
		t.Fatal(err)
	}
	if got.Kind != KindEnrolled || got.Custodian != r.Custodian || got.Sealed != nil ||
		got.Attested != nil {
		t.Fatalf("parsed %+v", got)
	}

	// The attestation record round-trips, and only a SHA-256 fits.
	r.Attested = bytes.Repeat([]byte{0x5a}, 32)
	if der, err = buildCert(rand.Reader, r, dealer, time.Now()); err != nil {
		t.Fatal(err)
	}
	if got, err = parseRecord(der); err != nil || !bytes.Equal(got.Attested, r.Attested) {
		t.Fatalf("attested marker parsed as %+v (%v)", got, err)
	}
	r.Attested = r.Attested[:20]
	if _, err := buildCert(rand.Reader, r, dealer, time.Now()); err == nil {
		t.Fatal("built a marker with a 20-byte attestation digest")
	}
}

// TestCertTamper flips every byte of the signed part in turn: each change
// must either make the certificate unparseable or fail the signature.
func TestCertTamper(t *testing.T) {
	r, dealer := testRecord(t, ecdh.P256())
	r.Sealed = []byte{1, 2, 3}
	der, err := buildCert(rand.Reader, r, dealer, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	start := bytes.Index(der, cert.RawTBSCertificate)
	for i := start; i < start+len(cert.RawTBSCertificate); i++ {
		b := bytes.Clone(der)
		b[i] ^= 0x01
		got, err := parseRecord(b)
		if err == nil && got.SigOK {
			t.Fatalf("byte %d flipped: still verifies", i)
		}
	}
}

func TestCertForeign(t *testing.T) {
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1),
		Subject:  pkix.Name{CommonName: "someone's VPN key"},
		NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, k.Public(), k)
	if err != nil {
		t.Fatal(err)
	}
	for name, b := range map[string][]byte{"x509": der, "garbage": []byte("hello"), "empty": {}} {
		if _, err := parseRecord(b); !errors.Is(err, errNotCustos) {
			t.Errorf("%s: err = %v, want errNotCustos", name, err)
		}
	}
}

func TestCertRefusesBadRecords(t *testing.T) {
	cases := map[string]func(*record){
		"index 0":        func(r *record) { r.Index = 0 },
		"index 256":      func(r *record) { r.Index = 256 },
		"long custodian": func(r *record) { r.Custodian = strings.Repeat("x", maxText+1) },
		"bad utf-8":      func(r *record) { r.Label = "\xff" },
		"no sealed":      func(r *record) { r.Sealed = nil },
		"no dealer":      func(r *record) { r.Dealer = nil },
		"no key":         func(r *record) { r.Key = nil },
		"unknown kind":   func(r *record) { r.Kind = 9 },
	}
	for name, mutate := range cases {
		r, dealer := testRecord(t, ecdh.P256())
		mutate(r)
		if _, err := buildCert(rand.Reader, r, dealer, time.Now()); err == nil {
			t.Errorf("%s: built", name)
		}
	}
}

// TestCertOpenSSL has OpenSSL, an independent X.509 implementation, parse
// the hand-built certificate and verify its Ed25519 signature against a
// dealer CA certificate made with crypto/x509.
func TestCertOpenSSL(t *testing.T) {
	needTool(t, "openssl")
	for _, curve := range []ecdh.Curve{ecdh.P256(), ecdh.X25519()} {
		r, dealer := testRecord(t, curve)
		der, err := buildCert(rand.Reader, r, dealer, time.Now().Add(-time.Minute))
		if err != nil {
			t.Fatal(err)
		}
		ca := &x509.Certificate{SerialNumber: big.NewInt(1),
			Subject:   pkix.Name{CommonName: "custos dealer 7F2C0102"},
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
			IsCA: true, BasicConstraintsValid: true,
			KeyUsage: x509.KeyUsageCertSign}
		caDER, err := x509.CreateCertificate(rand.Reader, ca, ca, dealer.Public(), dealer)
		if err != nil {
			t.Fatal(err)
		}
		dir := t.TempDir()
		write := func(name string, der []byte) string {
			p := filepath.Join(dir, name)
			b := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
			if err := os.WriteFile(p, b, 0o600); err != nil {
				t.Fatal(err)
			}
			return p
		}
		share, dealerPEM := write("share.pem", der), write("dealer.pem", caDER)

		out, err := exec.Command("openssl", "x509", "-in", share, "-noout", "-text").CombinedOutput()
		if err != nil {
			t.Fatalf("%v: openssl x509: %v\n%s", curve, err, out)
		}
		for _, want := range []string{"1.3.6.1.4.1.32473.2672.1.1", "custos share 7F2C0102 #3", "ED25519"} {
			if !strings.Contains(string(out), want) {
				t.Errorf("%v: openssl text lacks %q:\n%s", curve, want, out)
			}
		}
		out, err = exec.Command("openssl", "verify", "-no-CApath", "-no-CAstore",
			"-CAfile", dealerPEM, share).CombinedOutput()
		if err != nil || !strings.Contains(string(out), "OK") {
			t.Fatalf("%v: openssl verify: %v\n%s", curve, err, out)
		}
	}
}
