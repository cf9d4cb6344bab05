package shares

import (
	"bytes"
	"crypto/rand"
	"io"
	"os"
	"path/filepath"
	"testing"
)

// fuzzSeeds returns shares made fresh, plus any files under
// testdata/fuzzseed, so the fuzzers start from real encodings.
func fuzzSeeds(f *testing.F) []*Share {
	d, err := Split([]byte("fuzz seed secret"), Policy{Threshold: 2, Count: 3, Label: "seed"})
	if err != nil {
		f.Fatal(err)
	}
	big := make([]byte, 3000)
	rand.Read(big)
	d2, err := Split(big, Policy{Threshold: 3, Count: 5, Custodians: []string{"a", "b", "c", "d", "é"}})
	if err != nil {
		f.Fatal(err)
	}
	return append(d.Shares, d2.Shares[0])
}

func addSeedFiles(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("testdata", "fuzzseed", "*"))
	if len(files) == 0 {
		f.Fatal("no seed files in testdata/fuzzseed")
	}
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range fuzzSeeds(f) {
		f.Add(s.Marshal())
	}
	addSeedFiles(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := Parse(b, "fuzz")
		if err != nil {
			return
		}
		// Whatever parses must encode back to the same bytes.
		if !bytes.Equal(s.Marshal(), b) {
			t.Fatal("Parse accepted bytes that do not re-encode identically")
		}
	})
}

func FuzzParseText(f *testing.F) {
	for _, s := range fuzzSeeds(f) {
		f.Add([]byte(s.Text()))
		for _, p := range s.QRPayloads() {
			f.Add([]byte(p))
		}
	}
	addSeedFiles(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := ParseText(string(b), "fuzz")
		if err != nil {
			return
		}
		if _, err := ParseText(s.Text(), "again"); err != nil {
			t.Fatalf("a share that parsed does not parse from its own text: %v", err)
		}
		var p Parts
		p.Add(string(b), "fuzz")
		p.Shares()
	})
}

func FuzzOpenSealed(f *testing.F) {
	var sealed bytes.Buffer
	d, err := SplitSealed(bytes.NewReader(make([]byte, ChunkSize+10)), &sealed, Policy{Threshold: 2, Count: 2})
	if err != nil {
		f.Fatal(err)
	}
	q, err := Combine(d.Shares, nil)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(sealed.Bytes())
	f.Add(sealed.Bytes()[:100])
	f.Fuzz(func(t *testing.T, b []byte) {
		_, err := q.OpenSealed(bytes.NewReader(b), io.Discard, nil)
		if err == nil && !bytes.Equal(b, sealed.Bytes()) {
			t.Fatal("OpenSealed accepted a file other than the sealed one")
		}
		VerifySealed(bytes.NewReader(b), d.Shares[0])
	})
}

func FuzzReadManifest(f *testing.F) {
	f.Add(makeBundle(f, 3, 100))
	f.Add([]byte("not a tar"))
	key := make([]byte, 32)
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := ReadManifest(bytes.NewReader(b), key)
		if err == nil && len(m.Entries) == 0 {
			t.Fatal("ReadManifest accepted a bundle with no entries")
		}
	})
}
