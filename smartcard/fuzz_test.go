package smartcard

import (
	"bytes"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"flag"
	"math/big"
	"os"
	"path/filepath"
	"testing"
	"time"
)

var writeFixtures = flag.Bool("write-fixtures", false, "rewrite testdata/*.der")

// fixtures are certificates committed in testdata: the seeds of the fuzz
// target and a check that the format does not drift unnoticed.
var fixtures = []struct {
	file  string
	kind  Kind
	index int
}{
	{"share-p256.der", KindShare, 3},
	{"share-x25519.der", KindShare, 3},
	{"enrolled-x25519.der", KindEnrolled, 0},
	{"foreign-p256.der", 0, 0},
}

func TestFixtures(t *testing.T) {
	if *writeFixtures {
		writeFixtureFiles(t)
	}
	for _, f := range fixtures {
		der, err := os.ReadFile(filepath.Join("testdata", f.file))
		if err != nil {
			t.Fatal(err)
		}
		r, err := parseRecord(der)
		if f.kind == 0 {
			if err != errNotCustos {
				t.Errorf("%s: err = %v, want errNotCustos", f.file, err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("%s: %v", f.file, err)
		}
		if r.Kind != f.kind || r.Index != f.index || !r.SigOK || r.Custodian != "Chén Ŵ" ||
			r.Serial != 12345678 || r.Slot != 0x84 {
			t.Errorf("%s: parsed %+v", f.file, r)
		}
	}
}

func writeFixtureFiles(t *testing.T) {
	out := map[string][]byte{}
	for _, c := range []struct {
		file  string
		curve ecdh.Curve
		kind  Kind
	}{
		{"share-p256.der", ecdh.P256(), KindShare},
		{"share-x25519.der", ecdh.X25519(), KindShare},
		{"enrolled-x25519.der", ecdh.X25519(), KindEnrolled},
	} {
		r, dealer := testRecord(t, c.curve)
		if c.kind == KindEnrolled {
			r.Kind, r.SetID, r.Index, r.Sealed, r.Label = KindEnrolled, [16]byte{}, 0, nil, ""
		}
		der, err := buildCert(rand.Reader, r, dealer, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		out[c.file] = der
	}
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1),
		Subject: pkix.Name{CommonName: "foreign"}, NotAfter: time.Now().AddDate(10, 0, 0)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, k.Public(), k)
	if err != nil {
		t.Fatal(err)
	}
	out["foreign-p256.der"] = der
	for name, der := range out {
		if err := os.WriteFile(filepath.Join("testdata", name), der, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// FuzzParseRecord feeds arbitrary bytes to the certificate parser: it must
// never panic, and whatever it accepts must satisfy the format's rules and
// survive being written and read again.
func FuzzParseRecord(f *testing.F) {
	for _, fx := range fixtures {
		der, err := os.ReadFile(filepath.Join("testdata", fx.file))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(der)
	}
	f.Fuzz(func(t *testing.T, der []byte) {
		r, err := parseRecord(der)
		if err != nil {
			return
		}
		if r.Key == nil || len(r.Dealer) != 32 || len(r.Custodian) > maxText || len(r.Label) > maxText {
			t.Fatalf("accepted a bad record: %+v", r)
		}
		switch r.Kind {
		case KindEnrolled:
		case KindShare:
			if r.Index < 1 || r.Index > 255 || len(r.Sealed) == 0 {
				t.Fatalf("accepted a bad share: %+v", r)
			}
		default:
			t.Fatalf("accepted kind %d", r.Kind)
		}
		if err := r.check(); err != nil {
			t.Fatalf("accepted a record check refuses: %v", err)
		}
		_, dealer := testRecord(t, ecdh.P256())
		again, err := buildCert(rand.Reader, r, dealer, time.Now())
		if err != nil {
			t.Fatalf("rebuilding: %v", err)
		}
		r2, err := parseRecord(again)
		if err != nil || !recordsEqual(r, r2) || !bytes.Equal(r.Key.Bytes(), r2.Key.Bytes()) {
			t.Fatalf("rebuilt record differs: %v", err)
		}
	})
}
