package shares

import (
	"archive/tar"
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/binary"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"testing/iotest"
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

// referenceStreamMAC computes CheckKeyedStream from its definition, one
// chunk at a time, with nothing shared with streamMAC but the helpers that
// build nonces.
func referenceStreamMAC(checkKey []byte, name string, data []byte) []byte {
	kdf := hmac.New(sha256.New, checkKey)
	kdf.Write([]byte("custos stream fingerprint v2\x00" + name))
	block, _ := aes.NewCipher(kdf.Sum(nil))
	gcm, _ := cipher.NewGCM(block)
	fold := hmac.New(sha256.New, checkKey)
	size := uint64(len(data))
	n := uint64(0)
	for {
		last := len(data) <= ChunkSize
		c := data[:min(len(data), ChunkSize)]
		nonce := make([]byte, 12)
		binary.BigEndian.PutUint64(nonce[4:], n)
		if last {
			nonce[0] = 1
		}
		fold.Write(gcm.Seal(nil, nonce, nil, c))
		if last {
			break
		}
		data, n = data[ChunkSize:], n+1
	}
	fold.Write(binary.BigEndian.AppendUint64(nil, size))
	return fold.Sum(nil)[:8]
}

func TestStreamMACFeeding(t *testing.T) {
	key := randBytes(t, 32)
	for _, size := range []int{0, 1, ChunkSize - 1, ChunkSize, ChunkSize + 1, 2 * ChunkSize, 3*ChunkSize + 7} {
		data := randBytes(t, size+1)[:size]
		want := referenceStreamMAC(key, "blobs/a.bin", data)
		feeds := map[string]func(m *streamMAC){
			"one write": func(m *streamMAC) { m.Write(data) },
			"odd writes": func(m *streamMAC) {
				for b := data; len(b) > 0; {
					k := min(len(b), 1000)
					m.Write(b[:k])
					b = b[k:]
				}
			},
			"read from": func(m *streamMAC) { m.ReadFrom(iotest.HalfReader(bytes.NewReader(data))) },
			"io.Copy":   func(m *streamMAC) { io.Copy(m, bytes.NewReader(data)) },
		}
		for how, feed := range feeds {
			m := newStreamMAC(key, "blobs/a.bin", newStreamBufs())
			feed(m)
			got := m.Sum()
			if got.Method != CheckKeyedStream || !bytes.Equal(got.Value, want) {
				t.Errorf("%d bytes, %s: got %x, want %x", size, how, got.Value, want)
			}
		}
	}
	data := randBytes(t, 2*ChunkSize)
	a := newStreamMAC(key, "a", newStreamBufs())
	a.Write(data)
	b := newStreamMAC(key, "b", newStreamBufs())
	b.Write(data)
	if bytes.Equal(a.Sum().Value, b.Sum().Value) {
		t.Error("two entry names give the same fingerprint of the same bytes")
	}
}

// The sealer and opener take whole chunks of a large write in place and
// gather small writes in a buffer. Both must cut the same chunks: every way
// of feeding the secret, and the sealed file, must give the same result.
func TestSealedFeeding(t *testing.T) {
	feeds := map[string]func([]byte) io.Reader{
		"one write":    func(b []byte) io.Reader { return bytes.NewReader(b) },
		"half reads":   func(b []byte) io.Reader { return iotest.HalfReader(bytes.NewReader(b)) },
		"odd reads":    func(b []byte) io.Reader { return &oddReader{b: b} },
		"data and EOF": func(b []byte) io.Reader { return iotest.DataErrReader(bytes.NewReader(b)) },
	}
	secrets := map[string][]byte{
		"chunk":       randBytes(t, ChunkSize),
		"chunk+1":     randBytes(t, ChunkSize+1),
		"3 chunks+17": randBytes(t, 3*ChunkSize+17),
		"bundle":      makeBundle(t, 20, 5*ChunkSize+3),
	}
	for sname, secret := range secrets {
		kind := KindRaw
		if sname == "bundle" {
			kind = KindBundle
		}
		for in, feedIn := range feeds {
			var sealed bytes.Buffer
			p := policy(2, 3)
			p.Kind = kind
			d, err := SplitSealed(feedIn(secret), &sealed, p)
			if err != nil {
				t.Fatalf("%s, sealed from %s: %v", sname, in, err)
			}
			q, err := Combine(d.Shares[:2], nil)
			if err != nil {
				t.Fatal(err)
			}
			for out, feedOut := range feeds {
				var got bytes.Buffer
				checks, err := q.OpenSealed(feedOut(sealed.Bytes()), &got, nil)
				if err != nil {
					t.Fatalf("%s, sealed from %s, opened from %s: %v", sname, in, out, err)
				}
				if !bytes.Equal(got.Bytes(), secret) || !EqualChecks(checks, d.Checks) {
					t.Fatalf("%s, sealed from %s, opened from %s: the secret or its check values differ", sname, in, out)
				}
			}
		}
	}
}

// oddReader returns its bytes in pieces of 1, 7, 4093, 65537, ... bytes.
type oddReader struct {
	b []byte
	i int
}

func (r *oddReader) Read(p []byte) (int, error) {
	if len(r.b) == 0 {
		return 0, io.EOF
	}
	sizes := []int{1, 7, 4093, ChunkSize + 1, 3 * ChunkSize}
	n := copy(p[:min(len(p), sizes[r.i%len(sizes)])], r.b)
	r.b, r.i = r.b[n:], r.i+1
	return n, nil
}

type failAfter struct {
	n   int
	err error
}

func (f *failAfter) Read(p []byte) (int, error) {
	if f.n <= 0 {
		return 0, f.err
	}
	k := min(len(p), f.n)
	f.n -= k
	return k, nil
}

func (f *failAfter) Write(p []byte) (int, error) {
	if f.n < len(p) {
		return 0, f.err
	}
	f.n -= len(p)
	return len(p), nil
}

func TestSealedStreamErrors(t *testing.T) {
	boom := errors.New("device gone")
	for _, kind := range []Kind{KindRaw, KindBundle} {
		p := policy(2, 3)
		p.Kind = kind
		_, err := SplitSealed(&failAfter{n: 3*ChunkSize + 5, err: boom}, io.Discard, p)
		if !errors.Is(err, boom) || !strings.Contains(err.Error(), "reading secret") {
			t.Errorf("%s: reader fails: SplitSealed = %v", kind, err)
		}
		_, err = SplitSealed(bytes.NewReader(makeBundle(t, 3, 4*ChunkSize)), &failAfter{n: 2 * ChunkSize, err: boom}, p)
		if !errors.Is(err, boom) || !strings.Contains(err.Error(), "writing sealed file") {
			t.Errorf("%s: writer fails: SplitSealed = %v", kind, err)
		}
	}
	secret := randBytes(t, 4*ChunkSize)
	sealed, d := sealedRoundTrip(t, secret, KindRaw)
	q, err := Combine(d.Shares[:2], nil)
	if err != nil {
		t.Fatal(err)
	}
	_, err = q.OpenSealed(bytes.NewReader(sealed), &failAfter{n: ChunkSize, err: boom}, nil)
	if !errors.Is(err, boom) || !strings.Contains(err.Error(), "writing recovered secret") {
		t.Errorf("writer fails: OpenSealed = %v", err)
	}
	_, err = q.OpenSealed(io.MultiReader(bytes.NewReader(sealed[:2*ChunkSize]), &failAfter{err: boom}), io.Discard, nil)
	if !errors.Is(err, boom) || !strings.Contains(err.Error(), "reading sealed file") {
		t.Errorf("reader fails: OpenSealed = %v", err)
	}
}

// slashLater stands in a member's name for a "/" that archive/tar will not
// write at the end of a file's name, and rawName puts it there.
const slashLater = "\x01"

// rawName replaces old with new (of the same length) in the name of the
// archive's headers, and fixes their checksums.
func rawName(t *testing.T, b []byte, old, new string) {
	for off := 0; off+512 <= len(b); off += 512 {
		h := b[off : off+512]
		if !bytes.HasPrefix(h[257:], []byte("ustar")) {
			continue // file data
		}
		name := h[:100]
		i := bytes.Index(name, []byte(old))
		if i < 0 || bytes.IndexByte(name, 0) < i {
			continue
		}
		copy(name[i:], new)
		copy(h[148:156], "        ")
		sum := 0
		for _, c := range h {
			sum += int(c)
		}
		copy(h[148:156], fmt.Sprintf("%06o\x00 ", sum))
	}
}

// A bundle must hold every key it seems to: links, devices and names that
// unpack elsewhere are refused by name, whether the bundle rides inline or
// is sealed to a file.
func TestBundleRefusesWhatItCannotKeep(t *testing.T) {
	key := randBytes(t, 32)
	reg := func(name string) *tar.Header {
		return &tar.Header{Name: name, Mode: 0600, Size: 32, Typeflag: tar.TypeReg}
	}
	tests := []struct {
		name    string
		members []*tar.Header
		want    string
	}{
		{"symlink", []*tar.Header{{Name: "live/privkey.pem", Linkname: "../archive/privkey1.pem", Typeflag: tar.TypeSymlink}},
			`"live/privkey.pem" is a symbolic link to "../archive/privkey1.pem"`},
		{"hard link", []*tar.Header{reg("k/a.aes"), {Name: "k/h.aes", Linkname: "k/a.aes", Typeflag: tar.TypeLink}},
			`"k/h.aes" is a hard link to "k/a.aes"`},
		{"fifo", []*tar.Header{{Name: "k/pipe", Typeflag: tar.TypeFifo}}, `"k/pipe" is a device or a pipe`},
		{"char device", []*tar.Header{{Name: "k/tty", Typeflag: tar.TypeChar}}, `"k/tty" is a device or a pipe`},
		{"parent", []*tar.Header{reg("../../evil.aes")}, `"../../evil.aes": its name climbs out`},
		{"inner parent", []*tar.Header{reg("k/../../evil.aes")}, `climbs out`},
		{"absolute", []*tar.Header{reg("/abs/blob")}, `"/abs/blob": its name is absolute`},
		{"newline", []*tar.Header{reg("k/a\nb.aes")}, `control character`},
		{"escape", []*tar.Header{reg("k/\x1b[31m.aes")}, `control character`},
		{"same file twice", []*tar.Header{reg("./k/a.aes"), reg("k/a.aes")}, `"./k/a.aes" and "k/a.aes" are the same file`},
		{"file, then a file inside it", []*tar.Header{reg("k/a.aes"), reg("k/a.aes/b.hmac")},
			`"k/a.aes" and "k/a.aes/b.hmac" would be both a file and a directory`},
		{"file inside, then the file", []*tar.Header{reg("k/a.aes/b.hmac"), reg("k/a.aes")},
			`"k/a.aes" and "k/a.aes/b.hmac" would be both a file and a directory`},
		{"file, then a directory of its name", []*tar.Header{reg("k/a.aes"), {Name: "k/a.aes/", Mode: 0700, Typeflag: tar.TypeDir}},
			`would be both a file and a directory`},
		{"dot", []*tar.Header{reg(".")}, `"." names no file`},
		{"file ending in slash", []*tar.Header{reg("k/b.aes" + slashLater)}, `ends in "/"`},
		{"case", []*tar.Header{reg("k/A.aes"), reg("k/a.aes")}, `"k/A.aes" and "k/a.aes" differ only in case`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			tw := tar.NewWriter(&buf)
			tw.WriteHeader(&tar.Header{Name: "k/", Mode: 0700, Typeflag: tar.TypeDir})
			for _, h := range tt.members {
				if err := tw.WriteHeader(h); err != nil {
					t.Fatal(err)
				}
				if h.Size > 0 {
					tw.Write(key)
				}
			}
			// Padding past the inline limit, so that the sealed path is
			// tried too.
			tw.WriteHeader(&tar.Header{Name: "pad.bin", Mode: 0600, Size: 8192, Typeflag: tar.TypeReg})
			tw.Write(make([]byte, 8192))
			tw.Close()
			rawName(t, buf.Bytes(), slashLater, "/")
			p := Policy{Threshold: 2, Count: 2, Kind: KindBundle}
			if _, err := ReadManifest(bytes.NewReader(buf.Bytes()), key); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("ReadManifest = %v, want %q", err, tt.want)
			}
			if _, err := SplitSealed(bytes.NewReader(buf.Bytes()), io.Discard, p); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("SplitSealed = %v, want %q", err, tt.want)
			}
		})
	}
	// Directories and "./" names are fine.
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	tw.WriteHeader(&tar.Header{Name: "./k/", Mode: 0700, Typeflag: tar.TypeDir})
	tw.WriteHeader(reg("./k/a.aes"))
	tw.Write(key)
	tw.Close()
	m, err := ReadManifest(bytes.NewReader(buf.Bytes()), key)
	if err != nil || len(m.Entries) != 1 || m.Entries[0].Name != "./k/a.aes" || m.Entries[0].Kind != KindAES {
		t.Fatalf("a plain archive made with tar cf x.tar ./k: %v %+v", err, m)
	}
}
