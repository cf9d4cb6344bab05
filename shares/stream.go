package shares

import (
	"bytes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"io"
)

// A sealed file carries a secret too large to ride in every share. It is a
// header, then the secret in chunks of ChunkSize bytes, each sealed with
// AES-256-GCM under a key derived from the data key. A chunk's nonce is its
// number and a flag marking the last chunk, so chunks cannot be reordered,
// dropped or cut off without failing to open.
//
// Every share binds the file by its digest: SHA-256 over the header and
// every chunk's tag, and its size. The tags authenticate the ciphertext
// under the data key, so the digest pins the whole file while costing one
// hash of 16 bytes a chunk, and can be checked before any combine, without
// the key.

// ChunkSize is the plaintext size of every chunk but the last.
const ChunkSize = 64 << 10

const sealedMagic = "CUSTOS SEALED v1\n"

const tagSize = 16

func sealedHeader(id SetID) []byte {
	h := append([]byte(sealedMagic), id[:]...)
	return binary.BigEndian.AppendUint32(h, ChunkSize)
}

func chunkNonce(n uint64, last bool) []byte {
	nonce := make([]byte, 12)
	binary.BigEndian.PutUint64(nonce[4:], n)
	if last {
		nonce[0] = 1
	}
	return nonce
}

// SplitSealed seals a secret of any size from r into sealed and splits its
// data key like Split. Memory stays flat. For bundles, the manifest is
// computed as the bytes stream past.
func SplitSealed(r io.Reader, sealed io.Writer, p Policy) (*Dealt, error) {
	if err := p.check(); err != nil {
		return nil, err
	}
	kind := p.Kind
	if kind == 0 {
		kind = KindRaw
	}
	if kind != KindRaw && kind != KindBundle {
		return nil, fmt.Errorf("a %s secret is small; it rides inside the shares", kind)
	}
	d, proto, dataKey, err := deal(p, Detected{Kind: kind, Algorithm: kind.String()})
	if err != nil {
		return nil, err
	}
	defer clear(dataKey)
	proto.Commit = commitment(dataKey, proto.SetID)
	ck := checkKey(dataKey, proto.SetID)
	defer clear(ck)

	checker := newStreamChecker(kind, ck)
	digest, size, n, err := sealStream(dataKey, proto.SetID, io.TeeReader(r, checker), sealed)
	checks, cerr := checker.finish()
	if err == nil {
		err = cerr
	}
	if err == nil && n == 0 {
		err = errors.New("the secret is empty")
	}
	if err != nil {
		return nil, err
	}
	proto.SealedDigest, proto.SealedSize, proto.Checks = digest, size, checks
	d.Manifest = checker.manifest
	return d, d.finish(proto, dataKey, p)
}

// streamChecker computes check values of bytes written to it: a keyed
// fingerprint for raw secrets, a manifest for bundles. It works on its own
// goroutine, fed through a short queue of buffers, so that on a machine
// with two cores checking runs beside sealing instead of after it.
type streamChecker struct {
	q        *chunkQueue
	done     chan error
	checks   []CheckValue
	manifest *Manifest
}

func newStreamChecker(kind Kind, checkKey []byte) *streamChecker {
	c := &streamChecker{q: newChunkQueue(4, ChunkSize), done: make(chan error, 1)}
	go func() {
		var err error
		if kind == KindBundle {
			c.manifest, err = ReadManifest(c.q, checkKey)
			if err == nil {
				c.checks = []CheckValue{c.manifest.Check()}
			}
		} else {
			m := newStreamMAC(checkKey, "", newStreamBufs())
			_, err = io.Copy(m, c.q)
			c.checks = []CheckValue{m.Sum()}
		}
		c.q.drain() // let the writer finish on a bad archive
		c.done <- err
	}()
	return c
}

func (c *streamChecker) Write(b []byte) (int, error) { return c.q.Write(b) }

func (c *streamChecker) finish() ([]CheckValue, error) {
	c.q.close()
	if err := <-c.done; err != nil {
		return nil, err
	}
	return c.checks, nil
}

// chunkQueue is a pipe with a few buffers of slack: Write copies and
// returns at once while a buffer is free, and Read hands out the copies in
// order. The copies are cleared when the reader is done with them.
type chunkQueue struct {
	full    chan []byte
	free    chan []byte
	cur     []byte // being read
	curBuf  []byte
	closed  bool
	drained bool
}

func newChunkQueue(n, size int) *chunkQueue {
	q := &chunkQueue{full: make(chan []byte, n), free: make(chan []byte, n)}
	for i := 0; i < n; i++ {
		q.free <- make([]byte, 0, size)
	}
	return q
}

func (q *chunkQueue) Write(b []byte) (int, error) {
	n := len(b)
	for len(b) > 0 {
		buf := <-q.free
		m := min(len(b), cap(buf))
		buf = append(buf[:0], b[:m]...)
		q.full <- buf
		b = b[m:]
	}
	return n, nil
}

func (q *chunkQueue) close() { close(q.full) }

func (q *chunkQueue) Read(p []byte) (int, error) {
	for len(q.cur) == 0 {
		if q.curBuf != nil {
			clear(q.curBuf[:cap(q.curBuf)])
			q.free <- q.curBuf[:0]
			q.curBuf = nil
		}
		buf, ok := <-q.full
		if !ok {
			return 0, io.EOF
		}
		q.cur, q.curBuf = buf, buf
	}
	n := copy(p, q.cur)
	q.cur = q.cur[n:]
	return n, nil
}

func (q *chunkQueue) drain() {
	for {
		if _, err := q.Read(make([]byte, ChunkSize)); err != nil {
			return
		}
		q.cur = nil
	}
}

func sealStream(dataKey []byte, id SetID, r io.Reader, w io.Writer) (digest []byte, size, plain uint64, err error) {
	key := subKey(dataKey, id, "sealed file")
	defer clear(key)
	aead := newGCM(key)
	hdr := sealedHeader(id)
	h := sha256.New()
	h.Write(hdr)
	if _, err := w.Write(hdr); err != nil {
		return nil, 0, 0, fmt.Errorf("writing sealed file: %w", err)
	}
	size = uint64(len(hdr))

	buf := make([]byte, ChunkSize+1) // one byte more tells whether this chunk is the last
	out := make([]byte, 0, ChunkSize+tagSize)
	have := 0
	for n := uint64(0); ; n++ {
		m, rerr := io.ReadFull(r, buf[have:])
		have += m
		if rerr != nil && rerr != io.EOF && rerr != io.ErrUnexpectedEOF {
			return nil, 0, 0, fmt.Errorf("reading secret: %w", rerr)
		}
		last := have <= ChunkSize
		chunk := buf[:min(have, ChunkSize)]
		out = aead.Seal(out[:0], chunkNonce(n, last), chunk, hdr)
		h.Write(out[len(out)-tagSize:])
		if _, err := w.Write(out); err != nil {
			return nil, 0, 0, fmt.Errorf("writing sealed file: %w", err)
		}
		size += uint64(len(out))
		plain += uint64(len(chunk))
		if last {
			clear(buf)
			break
		}
		buf[0] = buf[ChunkSize]
		have = 1
	}
	h.Write(binary.BigEndian.AppendUint64(nil, size))
	return h.Sum(nil), size, plain, nil
}

// SealedError says a sealed file is not the one the shares bind.
type SealedError struct{ Reason string }

func (e *SealedError) Error() string { return "sealed file: " + e.Reason }

// VerifySealed checks, without any key, that r is the sealed file the
// share binds: its set, its size and its digest.
func VerifySealed(r io.Reader, s *Share) error {
	if !s.External() {
		return &SealedError{"this set has no sealed file: its secret rides inside the shares"}
	}
	hdr := sealedHeader(s.SetID)
	got := make([]byte, len(hdr))
	if _, err := io.ReadFull(r, got); err != nil || !bytes.Equal(got, hdr) {
		return sealedHeaderError(got)
	}
	h := sha256.New()
	h.Write(hdr)
	size := uint64(len(hdr))
	buf := make([]byte, ChunkSize+tagSize)
	for {
		m, err := io.ReadFull(r, buf)
		if m > 0 {
			if m < tagSize {
				return &SealedError{"the file is cut short"}
			}
			h.Write(buf[m-tagSize : m])
			size += uint64(m)
		}
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			break
		}
		if err != nil {
			return fmt.Errorf("reading sealed file: %w", err)
		}
	}
	h.Write(binary.BigEndian.AppendUint64(nil, size))
	if size != s.SealedSize {
		return &SealedError{fmt.Sprintf("it is %d bytes, the shares expect %d: it is cut short, grown, or another file", size, s.SealedSize)}
	}
	if !hmac.Equal(h.Sum(nil), s.SealedDigest) {
		return &SealedError{"its digest differs from the one every share binds: it was altered or replaced"}
	}
	return nil
}

func sealedHeaderError(got []byte) error {
	if bytes.HasPrefix(got, []byte(sealedMagic)) {
		var other SetID
		copy(other[:], got[len(sealedMagic):])
		return &SealedError{fmt.Sprintf("it belongs to set %s, not this one", other.Short())}
	}
	return &SealedError{"not a custos sealed file"}
}

// OpenSealed decrypts the sealed file r into w and proves it: the digest the
// shares bind, every chunk's tag, and the secret's check values. On any
// error, what was written to w must be discarded.
func (q *Quorum) OpenSealed(r io.Reader, w io.Writer, expect *Expect) ([]CheckValue, error) {
	if q.dataKey == nil {
		return nil, errors.New("the quorum has not been combined")
	}
	s := q.Set
	if !s.External() {
		return nil, &SealedError{"this set has no sealed file: its secret rides inside the shares"}
	}
	ck := checkKey(q.dataKey, q.SetID)
	defer clear(ck)
	checker := newStreamChecker(s.Kind, ck)
	err := openStream(q.dataKey, s, r, io.MultiWriter(w, checker))
	checks, cerr := checker.finish()
	if err != nil {
		return nil, err
	}
	if cerr != nil {
		return nil, fmt.Errorf("computing check value of the rebuilt secret: %w", cerr)
	}
	if err := q.compare(checks); err != nil {
		return nil, err
	}
	return checks, CompareExpected(expect, checks)
}

func openStream(dataKey []byte, s *Share, r io.Reader, w io.Writer) error {
	key := subKey(dataKey, s.SetID, "sealed file")
	defer clear(key)
	aead := newGCM(key)
	hdr := sealedHeader(s.SetID)
	got := make([]byte, len(hdr))
	if _, err := io.ReadFull(r, got); err != nil || !bytes.Equal(got, hdr) {
		return sealedHeaderError(got)
	}
	h := sha256.New()
	h.Write(hdr)
	size := uint64(len(hdr))

	buf := make([]byte, ChunkSize+tagSize+1)
	plain := make([]byte, 0, ChunkSize)
	have := 0
	for n := uint64(0); ; n++ {
		m, err := io.ReadFull(r, buf[have:])
		have += m
		if err != nil && err != io.EOF && err != io.ErrUnexpectedEOF {
			return fmt.Errorf("reading sealed file: %w", err)
		}
		last := have <= ChunkSize+tagSize
		chunk := buf[:min(have, ChunkSize+tagSize)]
		if len(chunk) < tagSize {
			return &SealedError{"the file is cut short"}
		}
		plain, err = aead.Open(plain[:0], chunkNonce(n, last), chunk, hdr)
		if err != nil {
			return &SealedError{fmt.Sprintf("chunk %d does not open: the file was altered, cut short or reordered", n)}
		}
		h.Write(chunk[len(chunk)-tagSize:])
		size += uint64(len(chunk))
		if _, err := w.Write(plain); err != nil {
			clear(plain)
			return fmt.Errorf("writing recovered secret: %w", err)
		}
		if last {
			break
		}
		buf[0] = buf[ChunkSize+tagSize]
		have = 1
	}
	clear(plain[:cap(plain)])
	h.Write(binary.BigEndian.AppendUint64(nil, size))
	if size != s.SealedSize || !hmac.Equal(h.Sum(nil), s.SealedDigest) {
		return &SealedError{"its digest differs from the one every share binds: it was altered or replaced"}
	}
	return nil
}

// streamMAC computes CheckKeyedStream over data written to it. name keys
// each bundle entry apart, so equal blobs under two names differ.
type streamMAC struct {
	aead cipher.AEAD
	fold hash.Hash
	buf  []byte
	out  []byte
	n    uint64
	size uint64
}

// streamBufs are the two chunk buffers a streamMAC works in, kept across
// bundle entries.
type streamBufs struct{ buf, out []byte }

func newStreamBufs() *streamBufs {
	return &streamBufs{make([]byte, 0, ChunkSize), make([]byte, 0, ChunkSize+tagSize)}
}

func newStreamMAC(checkKey []byte, name string, bufs *streamBufs) *streamMAC {
	kdf := hmac.New(sha256.New, checkKey)
	kdf.Write([]byte("custos stream fingerprint v1\x00" + name))
	key := kdf.Sum(nil)
	defer clear(key)
	return &streamMAC{
		aead: newGCM(key),
		fold: hmac.New(sha256.New, checkKey),
		buf:  bufs.buf[:0],
		out:  bufs.out[:0],
	}
}

func (m *streamMAC) Write(b []byte) (int, error) {
	n := len(b)
	for len(b) > 0 {
		if len(m.buf) == ChunkSize {
			m.chunk(false)
		}
		k := min(len(b), ChunkSize-len(m.buf))
		m.buf = append(m.buf, b[:k]...)
		b = b[k:]
	}
	return n, nil
}

func (m *streamMAC) chunk(last bool) {
	m.out = m.aead.Seal(m.out[:0], chunkNonce(m.n, last), m.buf, nil)
	m.fold.Write(m.out[len(m.out)-tagSize:])
	m.size += uint64(len(m.buf))
	m.n++
	clear(m.buf)
	m.buf = m.buf[:0]
}

// Sum finishes the fingerprint.
func (m *streamMAC) Sum() CheckValue {
	m.chunk(true)
	clear(m.out[:cap(m.out)])
	m.fold.Write(binary.BigEndian.AppendUint64(nil, m.size))
	return CheckValue{CheckKeyedStream, m.fold.Sum(nil)[:8]}
}
