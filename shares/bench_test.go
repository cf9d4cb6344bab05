package shares

import (
	"archive/tar"
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"fmt"
	"io"
	"testing"

	"github.com/hashicorp/vault/shamir"
)

// The benchmarks put custos beside its baselines on the same payloads:
// shamir.Split/Combine used raw, and plain AES-256-GCM.

const bundleSize = 64 << 20

func BenchmarkSplitKey32(b *testing.B) {
	key := make([]byte, 32)
	for b.Loop() {
		if _, err := Split(key, Policy{Threshold: 3, Count: 5, Kind: KindAES}); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkCombineKey32(b *testing.B) {
	d, _ := Split(make([]byte, 32), Policy{Threshold: 3, Count: 5, Kind: KindAES})
	for b.Loop() {
		q, err := Combine(d.Shares[:3], nil)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := q.Open(nil); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkShamirRawKey32(b *testing.B) {
	key := make([]byte, 32)
	for b.Loop() {
		parts, _ := shamir.Split(key, 5, 3)
		if _, err := shamir.Combine(parts[:3]); err != nil {
			b.Fatal(err)
		}
	}
}

// bundlePayload is a 64 MiB tar: 1,000 AES keys and raw blobs of 256 KiB.
func bundlePayload(b *testing.B) []byte {
	b.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	add := func(name string, n int) {
		tw.WriteHeader(&tar.Header{Name: name, Mode: 0600, Size: int64(n), Typeflag: tar.TypeReg})
		tw.Write(randBytes(b, n))
	}
	for i := 0; i < 1000; i++ {
		add(fmt.Sprintf("keys/%04d.aes", i), 32)
	}
	for i := 0; buf.Len() < bundleSize-(256<<10)-2048; i++ {
		add(fmt.Sprintf("blobs/%04d.bin", i), 256<<10)
	}
	tw.Close()
	return buf.Bytes()
}

func BenchmarkSplitSealedBundle64MiB(b *testing.B) {
	payload := bundlePayload(b)
	b.SetBytes(int64(len(payload)))
	for b.Loop() {
		if _, err := SplitSealed(bytes.NewReader(payload), io.Discard, Policy{Threshold: 3, Count: 5, Kind: KindBundle}); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkCombineSealedBundle64MiB(b *testing.B) {
	payload := bundlePayload(b)
	var sealed bytes.Buffer
	d, err := SplitSealed(bytes.NewReader(payload), &sealed, Policy{Threshold: 3, Count: 5, Kind: KindBundle})
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(payload)))
	for b.Loop() {
		q, err := Combine(d.Shares[:3], nil)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := q.OpenSealed(bytes.NewReader(sealed.Bytes()), io.Discard, nil); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkAESGCM64MiB is the baseline: one AES-256-GCM seal of 64 KiB
// chunks over the same payload, nothing else.
func BenchmarkAESGCM64MiB(b *testing.B) {
	payload := bundlePayload(b)
	block, _ := aes.NewCipher(make([]byte, 32))
	aead, _ := cipher.NewGCM(block)
	out := make([]byte, 0, ChunkSize+16)
	nonce := make([]byte, 12)
	b.SetBytes(int64(len(payload)))
	for b.Loop() {
		for i := 0; i < len(payload); i += ChunkSize {
			out = aead.Seal(out[:0], nonce, payload[i:min(i+ChunkSize, len(payload))], nil)
		}
	}
}

// BenchmarkShamirRaw64MiB splits the whole payload with shamir directly,
// which is what sealing under a data key avoids.
func BenchmarkShamirRaw64MiB(b *testing.B) {
	payload := bundlePayload(b)
	b.SetBytes(int64(len(payload)))
	for b.Loop() {
		parts, err := shamir.Split(payload, 5, 3)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := shamir.Combine(parts[:3]); err != nil {
			b.Fatal(err)
		}
	}
}

// zeroReader is an endless source of zero bytes: a large secret that costs
// nothing to make.
type zeroReader struct{}

func (zeroReader) Read(p []byte) (int, error) { clear(p); return len(p), nil }

// BenchmarkSplitSealedStream1GiB seals 1 GiB from a stream. Its B/op is the
// memory a split needs whatever the size: it must stay flat (a few chunk
// buffers), not grow with the secret.
func BenchmarkSplitSealedStream1GiB(b *testing.B) {
	const size = 1 << 30
	b.SetBytes(size)
	for b.Loop() {
		_, err := SplitSealed(io.LimitReader(zeroReader{}, size), io.Discard, Policy{Threshold: 2, Count: 3})
		if err != nil {
			b.Fatal(err)
		}
	}
}
