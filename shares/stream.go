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
	"sync"
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

// IsSealedFile reports whether b starts like a sealed file, so that one
// offered where a share is expected can be named for what it is.
func IsSealedFile(b []byte) bool { return bytes.HasPrefix(b, []byte(sealedMagic)) }

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
	sealer := newSealer(dataKey, proto.SetID, sealed, checker.pipe)
	if _, err = io.Copy(sealer, r); err != nil && sealer.err == nil {
		err = fmt.Errorf("reading secret: %w", err)
	}
	if err == nil {
		err = sealer.Close()
	}
	checks, cerr := checker.finish()
	if err == nil {
		err = cerr
	}
	digest, size, n := sealer.digest, sealer.size, sealer.plain
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

// streamChecker computes check values of the chunks handed to it: a keyed
// fingerprint for raw secrets, a manifest for bundles. It works on its own
// goroutine, so that on a machine with two cores checking runs beside
// sealing or opening instead of after it.
type streamChecker struct {
	pipe     *chunkPipe
	done     chan error
	checks   []CheckValue
	manifest *Manifest
}

func newStreamChecker(kind Kind, checkKey []byte) *streamChecker {
	c := &streamChecker{pipe: newChunkPipe(4, ChunkSize+1), done: make(chan error, 1)}
	go func() {
		var err error
		if kind == KindBundle {
			c.manifest, err = ReadManifest(c.pipe, checkKey)
			if err == nil {
				c.checks = []CheckValue{c.manifest.Check()}
			}
		} else {
			// A raw secret's chunks fall on the fingerprint's chunk
			// boundaries; each is held until the next shows it was not
			// the last.
			m := newStreamMAC(checkKey, "", newStreamBufs())
			for b := c.pipe.next(); b != nil; b = c.pipe.next() {
				m.Write(b)
			}
			c.checks = []CheckValue{m.Sum()}
		}
		c.pipe.drain() // let the sealer finish on a bad archive
		c.done <- err
	}()
	return c
}

// finish waits for the check values of everything handed over.
func (c *streamChecker) finish() ([]CheckValue, error) {
	c.pipe.close()
	err := <-c.done
	c.pipe.clear()
	if err != nil {
		return nil, err
	}
	return c.checks, nil
}

// chunkPipe hands chunks of a secret from the goroutine that seals or opens
// them to the one that checks them, without copying. A chunk is either in
// one of the pipe's buffers, which the producer takes with get, fills and
// sends, and the checker gives back; or lent: a piece of the caller's own
// slice, which the producer must not return to its caller before the
// checker is done with it (waitLent). Both sides only read a chunk once it
// is sent, so sealing and checking can read it at once. The buffers are
// cleared once, when all is done.
type chunkPipe struct {
	full   chan pipeChunk
	free   chan []byte
	bufs   [][]byte
	lent   sync.WaitGroup
	cur    []byte    // what is left to Read of chunk
	chunk  pipeChunk // being read; given back by next
	active bool
}

type pipeChunk struct {
	b    []byte
	lent bool
}

func newChunkPipe(n, size int) *chunkPipe {
	p := &chunkPipe{full: make(chan pipeChunk, n), free: make(chan []byte, n)}
	for i := 0; i < n; i++ {
		b := make([]byte, size)
		p.bufs = append(p.bufs, b)
		p.free <- b
	}
	return p
}

// get returns a free buffer for the producer to fill.
func (p *chunkPipe) get() []byte { return <-p.free }

// send hands a filled buffer, or the start of one, to the checker. The
// producer must not write to it again before it comes back from get.
func (p *chunkPipe) send(b []byte) { p.full <- pipeChunk{b: b} }

// lend hands the checker a chunk that is not one of the pipe's buffers.
func (p *chunkPipe) lend(b []byte) {
	p.lent.Add(1)
	p.full <- pipeChunk{b: b, lent: true}
}

// waitLent returns once the checker is done with every lent chunk.
func (p *chunkPipe) waitLent() { p.lent.Wait() }

func (p *chunkPipe) close() { close(p.full) }

// next returns the next chunk, giving back the one before; nil at the end.
func (p *chunkPipe) next() []byte {
	if p.active {
		if p.chunk.lent {
			p.lent.Done()
		} else {
			p.free <- p.chunk.b[:cap(p.chunk.b)]
		}
		p.chunk, p.active = pipeChunk{}, false
	}
	c, ok := <-p.full
	if !ok {
		return nil
	}
	p.chunk, p.active = c, true
	if c.b == nil {
		return []byte{}
	}
	return c.b
}

func (p *chunkPipe) Read(b []byte) (int, error) {
	for len(p.cur) == 0 {
		p.cur = p.next()
		if p.cur == nil {
			return 0, io.EOF
		}
	}
	n := copy(b, p.cur)
	p.cur = p.cur[n:]
	return n, nil
}

// drain gives back every chunk still to come.
func (p *chunkPipe) drain() {
	for p.next() != nil {
	}
	p.cur = nil
}

// clear wipes every buffer; only once both sides are done.
func (p *chunkPipe) clear() {
	for _, b := range p.bufs {
		clear(b)
	}
}

// chunker cuts a stream written to it into chunks of size bytes and
// passes each to emit, saying whether it is the last: it holds a full chunk
// back until more data, or Close, comes. The whole chunks of a large write
// are passed in place, without a copy. Others are gathered in a buffer from
// take, which is taken again after each emit, so emit may keep the one it
// was given.
type chunker struct {
	size int
	take func() []byte
	emit func(chunk []byte, last, inPlace bool) error
	buf  []byte
	err  error
}

func (c *chunker) Write(b []byte) (int, error) {
	n := len(b)
	for len(b) > 0 && c.err == nil {
		if c.buf == nil {
			c.buf = c.take()[:0]
		}
		if len(c.buf) == c.size {
			c.err = c.emit(c.buf, false, false)
			c.buf = c.take()[:0]
			continue
		}
		if len(c.buf) == 0 && len(b) > c.size {
			c.err = c.emit(b[:c.size], false, true)
			b = b[c.size:]
			continue
		}
		k := min(len(b), c.size-len(c.buf))
		c.buf = append(c.buf, b[:k]...)
		b = b[k:]
	}
	if c.err != nil {
		return n - len(b), c.err
	}
	return n, nil
}

// Close emits the last chunk, which is empty only if nothing was written.
func (c *chunker) Close() error {
	if c.err != nil {
		return c.err
	}
	if c.buf == nil {
		c.buf = c.take()[:0]
	}
	c.err = c.emit(c.buf, true, false)
	c.buf = nil
	if c.err == nil {
		c.err = errors.New("chunker closed")
		return nil
	}
	return c.err
}

// sealedFile is what sealing and opening a sealed file share: the chunk
// cipher, the header every chunk's tag binds, where plaintext goes (w when
// opening, the sealed file when sealing; pipe, to the checker) and the
// file's digest as it is built: header, every chunk's tag, then size.
type sealedFile struct {
	chunker
	aead cipher.AEAD
	hdr  []byte
	w    io.Writer
	pipe *chunkPipe
	h    hash.Hash
	n    uint64 // chunks done
	size uint64 // bytes of the sealed file so far
}

func newSealedFile(dataKey []byte, id SetID, w io.Writer, pipe *chunkPipe) sealedFile {
	key := subKey(dataKey, id, "sealed file")
	defer clear(key)
	f := sealedFile{aead: newGCM(key), hdr: sealedHeader(id), w: w, pipe: pipe, h: sha256.New()}
	f.h.Write(f.hdr)
	f.size = uint64(len(f.hdr))
	return f
}

// tagged adds a chunk of the sealed file, whose tag ends it, to the digest.
func (f *sealedFile) tagged(chunk []byte) {
	f.h.Write(chunk[len(chunk)-tagSize:])
	f.n++
	f.size += uint64(len(chunk))
}

// sum finishes the digest every share binds.
func (f *sealedFile) sum() []byte {
	f.h.Write(binary.BigEndian.AppendUint64(nil, f.size))
	return f.h.Sum(nil)
}

// sealer seals a secret written to it into a sealed file, and hands every
// plaintext chunk to the checker's pipe. digest, size and plain are set by
// Close.
type sealer struct {
	sealedFile
	out    []byte
	digest []byte
	plain  uint64
}

func newSealer(dataKey []byte, id SetID, w io.Writer, pipe *chunkPipe) *sealer {
	s := &sealer{sealedFile: newSealedFile(dataKey, id, w, pipe), out: make([]byte, 0, ChunkSize+tagSize)}
	s.chunker = chunker{size: ChunkSize, take: pipe.get, emit: s.seal}
	if _, err := w.Write(s.hdr); err != nil {
		s.err = fmt.Errorf("writing sealed file: %w", err)
	}
	return s
}

// Write seals what it can of b; it returns once the checker is done with
// every piece of b it was lent.
func (s *sealer) Write(b []byte) (int, error) {
	n, err := s.chunker.Write(b)
	s.pipe.waitLent()
	return n, err
}

func (s *sealer) seal(chunk []byte, last, inPlace bool) error {
	if inPlace {
		s.pipe.lend(chunk)
	} else {
		s.pipe.send(chunk)
	}
	s.out = s.aead.Seal(s.out[:0], chunkNonce(s.n, last), chunk, s.hdr)
	if _, err := s.w.Write(s.out); err != nil {
		return fmt.Errorf("writing sealed file: %w", err)
	}
	s.tagged(s.out)
	s.plain += uint64(len(chunk))
	return nil
}

// Close seals the last chunk and computes the digest.
func (s *sealer) Close() error {
	err := s.chunker.Close()
	clear(s.out[:cap(s.out)])
	if err != nil {
		return err
	}
	s.digest = s.sum()
	return nil
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
	err := openStream(q.dataKey, s, r, w, checker.pipe)
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

// openStream opens the sealed file r into w, handing every plaintext chunk
// to pipe.
func openStream(dataKey []byte, s *Share, r io.Reader, w io.Writer, pipe *chunkPipe) error {
	o := &opener{newSealedFile(dataKey, s.SetID, w, pipe)}
	got := make([]byte, len(o.hdr))
	if _, err := io.ReadFull(r, got); err != nil || !bytes.Equal(got, o.hdr) {
		return sealedHeaderError(got)
	}
	buf := make([]byte, ChunkSize+tagSize)
	o.chunker = chunker{size: ChunkSize + tagSize, take: func() []byte { return buf }, emit: o.open}
	if _, err := io.Copy(o, r); err != nil {
		if o.err == nil {
			return fmt.Errorf("reading sealed file: %w", err)
		}
		return err
	}
	if err := o.Close(); err != nil {
		return err
	}
	if digest := o.sum(); o.size != s.SealedSize || !hmac.Equal(digest, s.SealedDigest) {
		return &SealedError{"its digest differs from the one every share binds: it was altered or replaced"}
	}
	return nil
}

// opener opens a sealed file written to it, after its header, into w, and
// hands every plaintext chunk to the checker's pipe.
type opener struct{ sealedFile }

func (o *opener) open(chunk []byte, last, _ bool) error {
	if len(chunk) < tagSize {
		return &SealedError{"the file is cut short"}
	}
	dst := o.pipe.get()
	plain, err := o.aead.Open(dst[:0], chunkNonce(o.n, last), chunk, o.hdr)
	if err != nil {
		o.pipe.send(dst[:0])
		return &SealedError{fmt.Sprintf("chunk %d does not open: the file was altered, cut short or reordered", o.n)}
	}
	o.pipe.send(plain)
	o.tagged(chunk)
	if _, err := o.w.Write(plain); err != nil {
		return fmt.Errorf("writing recovered secret: %w", err)
	}
	return nil
}

// streamMAC computes CheckKeyedStream over data written to it. name keys
// each bundle entry apart, so equal blobs under two names differ.
//
// Each 64 KiB chunk is authenticated with GMAC (AES-GCM with the chunk as
// associated data and nothing to encrypt) under a key of its own for the
// entry, with the chunk's number as nonce, so no nonce repeats under a key.
// The tags are folded by HMAC-SHA256 under the check key, with the size.
// GMAC costs half an AES-GCM seal, which is what lets a large split run at
// more than half the AES-GCM rate.
type streamMAC struct {
	aead cipher.AEAD
	fold hash.Hash
	buf  []byte
	tag  []byte
	n    uint64
	size uint64
}

// streamBufs are the chunk buffer and tag a streamMAC works in, kept across
// bundle entries.
type streamBufs struct{ buf, tag []byte }

func newStreamBufs() *streamBufs {
	return &streamBufs{make([]byte, 0, ChunkSize+1), make([]byte, 0, tagSize)}
}

func newStreamMAC(checkKey []byte, name string, bufs *streamBufs) *streamMAC {
	kdf := hmac.New(sha256.New, checkKey)
	kdf.Write([]byte("custos stream fingerprint v2\x00" + name))
	key := kdf.Sum(nil)
	defer clear(key)
	return &streamMAC{
		aead: newGCM(key),
		fold: hmac.New(sha256.New, checkKey),
		buf:  bufs.buf[:0],
		tag:  bufs.tag[:0],
	}
}

func (m *streamMAC) Write(b []byte) (int, error) {
	n := len(b)
	for len(b) > 0 {
		if len(m.buf) == ChunkSize {
			m.flush()
		}
		if len(m.buf) == 0 && len(b) > ChunkSize {
			// A whole chunk that is not the last: authenticate it in
			// place, without copying it.
			m.chunk(b[:ChunkSize], false)
			b = b[ChunkSize:]
			continue
		}
		k := min(len(b), ChunkSize-len(m.buf))
		m.buf = append(m.buf, b[:k]...)
		b = b[k:]
	}
	return n, nil
}

// ReadFrom reads straight into the chunk buffer, which spares io.Copy a
// copy through a buffer of its own. It reads one byte past a chunk before
// authenticating it, to know that chunk is not the last.
func (m *streamMAC) ReadFrom(r io.Reader) (int64, error) {
	var total int64
	for {
		m.spill()
		k, err := r.Read(m.buf[len(m.buf) : ChunkSize+1])
		m.buf = m.buf[:len(m.buf)+k]
		total += int64(k)
		if err != nil {
			m.spill()
			if err == io.EOF {
				err = nil
			}
			return total, err
		}
	}
}

// flush authenticates a full buffer that more data follows. The buffer is
// cleared by Sum, not here, where it is about to be written over.
func (m *streamMAC) flush() {
	m.chunk(m.buf, false)
	m.buf = m.buf[:0]
}

// spill authenticates the first chunk of a buffer that holds more than one,
// and keeps the byte past it.
func (m *streamMAC) spill() {
	if len(m.buf) > ChunkSize {
		m.chunk(m.buf[:ChunkSize], false)
		m.buf[0] = m.buf[ChunkSize]
		m.buf = m.buf[:1]
	}
}

func (m *streamMAC) chunk(b []byte, last bool) {
	m.tag = m.aead.Seal(m.tag[:0], chunkNonce(m.n, last), nil, b)
	m.fold.Write(m.tag)
	m.size += uint64(len(b))
	m.n++
}

// Sum finishes the fingerprint.
func (m *streamMAC) Sum() CheckValue {
	m.chunk(m.buf, true)
	clear(m.buf[:cap(m.buf)])
	m.buf = m.buf[:0]
	m.fold.Write(binary.BigEndian.AppendUint64(nil, m.size))
	return CheckValue{CheckKeyedStream, m.fold.Sum(nil)[:8]}
}
