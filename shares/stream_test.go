package shares

import (
	"archive/tar"
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
)

func sealedRoundTrip(t *testing.T, secret []byte, kind Kind) ([]byte, *Dealt) {
	t.Helper()
	var sealed bytes.Buffer
	p := policy(2, 3)
	p.Kind = kind
	d, err := SplitSealed(bytes.NewReader(secret), &sealed, p)
	if err != nil {
		t.Fatalf("SplitSealed: %v", err)
	}
	if err := VerifySealed(bytes.NewReader(sealed.Bytes()), d.Shares[0]); err != nil {
		t.Fatalf("VerifySealed: %v", err)
	}
	q, err := Combine([]*Share{d.Shares[2], d.Shares[0]}, nil)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	checks, err := q.OpenSealed(bytes.NewReader(sealed.Bytes()), &out, nil)
	if err != nil {
		t.Fatalf("OpenSealed: %v", err)
	}
	if !bytes.Equal(out.Bytes(), secret) {
		t.Fatalf("rebuilt %d bytes, want the %d sealed", out.Len(), len(secret))
	}
	if !EqualChecks(checks, d.Checks) {
		t.Fatal("check values differ after a sealed round trip")
	}
	return sealed.Bytes(), d
}

func TestSealedSizes(t *testing.T) {
	for _, n := range []int{1, 100, ChunkSize - 1, ChunkSize, ChunkSize + 1, 3*ChunkSize + 17} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			sealedRoundTrip(t, randBytes(t, n), KindRaw)
		})
	}
}

func TestSealedTampering(t *testing.T) {
	secret := randBytes(t, 2*ChunkSize+5)
	sealed, d := sealedRoundTrip(t, secret, KindRaw)
	other, _ := sealedRoundTrip(t, secret, KindRaw)
	hdr := len(sealedHeader(d.SetID()))
	chunk := ChunkSize + tagSize
	swapped := bytes.Clone(sealed)
	copy(swapped[hdr:], sealed[hdr+chunk:hdr+2*chunk])
	copy(swapped[hdr+chunk:], sealed[hdr:hdr+chunk])

	tests := []struct {
		name string
		b    []byte
		want string
	}{
		{"flipped byte", flip(sealed, hdr+100), "chunk 0 does not open"},
		{"cut short", sealed[:hdr+chunk], "does not open"},
		{"chunks swapped", swapped, "chunk 0 does not open"},
		{"another set", other, "belongs to set"},
		{"not sealed", []byte("hello"), "not a custos sealed file"},
	}
	q, err := Combine(d.Shares[:2], nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := q.OpenSealed(bytes.NewReader(tt.b), io.Discard, nil)
			var se *SealedError
			if !errors.As(err, &se) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("OpenSealed = %v, want %q", err, tt.want)
			}
			if tt.name != "flipped byte" && tt.name != "chunks swapped" {
				if err := VerifySealed(bytes.NewReader(tt.b), d.Shares[0]); err == nil {
					t.Fatal("VerifySealed accepted it")
				}
			}
		})
	}
}

// makeBundle writes a tar of AES keys, an HMAC secret, a private key and a
// raw blob, with the keys generated here.
func makeBundle(t testing.TB, aesKeys int, blob int) []byte {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	add := func(name string, b []byte) {
		tw.WriteHeader(&tar.Header{Name: name, Mode: 0600, Size: int64(len(b)), Typeflag: tar.TypeReg})
		tw.Write(b)
	}
	for i := 0; i < aesKeys; i++ {
		add(fmt.Sprintf("keys/k%05d.aes", i), randBytes(t, 32))
	}
	add("mac.hmac", randBytes(t, 32))
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, _ := x509.MarshalPKCS8PrivateKey(ec)
	add("signing.pem", pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
	if blob > 0 {
		add("blob.bin", randBytes(t, blob))
	}
	tw.Close()
	return buf.Bytes()
}

func TestBundleInlineAndSealed(t *testing.T) {
	small := makeBundle(t, 1, 0)
	if len(small) > InlineLimit {
		t.Fatalf("small bundle is %d bytes", len(small))
	}
	d := mustSplit(t, small, Policy{Threshold: 2, Count: 3, Kind: KindBundle})
	if d.Manifest == nil || len(d.Manifest.Entries) != 3 {
		t.Fatalf("manifest %+v", d.Manifest)
	}
	kinds := map[string]Kind{}
	for _, e := range d.Manifest.Entries {
		kinds[e.Name] = e.Kind
	}
	if kinds["keys/k00000.aes"] != KindAES || kinds["mac.hmac"] != KindHMAC || kinds["signing.pem"] != KindPrivateKey {
		t.Fatalf("entry kinds %v", kinds)
	}
	got := recoverInline(t, d.Shares[1:])
	if !bytes.Equal(got.Bytes, small) {
		t.Fatal("inline bundle did not come back exactly")
	}

	big := makeBundle(t, 2000, 3*ChunkSize)
	_, bd := sealedRoundTrip(t, big, KindBundle)
	if len(bd.Manifest.Entries) != 2003 {
		t.Fatalf("sealed bundle manifest has %d entries", len(bd.Manifest.Entries))
	}
	count := 0
	err := ReadBundleKeys(bytes.NewReader(big), func(k BundleKey) error {
		count++
		return nil
	})
	if err != nil || count != 2002 {
		t.Fatalf("ReadBundleKeys saw %d keys (the blob is skipped): %v", count, err)
	}
}

func TestBundleRefusesBadArchives(t *testing.T) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	tw.WriteHeader(&tar.Header{Name: "short.aes", Size: 5, Typeflag: tar.TypeReg})
	tw.Write([]byte("12345"))
	tw.Close()
	_, err := Split(buf.Bytes(), Policy{Threshold: 2, Count: 2, Kind: KindBundle})
	if err == nil || !strings.Contains(err.Error(), `"short.aes"`) {
		t.Fatalf("Split of a bundle with a 5-byte AES key = %v", err)
	}
	_, err = SplitSealed(strings.NewReader("not a tar archive at all"), io.Discard, Policy{Threshold: 2, Count: 2, Kind: KindBundle})
	if err == nil {
		t.Fatal("SplitSealed accepted a bundle that is not an archive")
	}
}
