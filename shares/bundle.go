package shares

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"path"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"
)

// A bundle escrows many named keys as one secret: a tar archive whose
// regular files are the keys. Its bytes come back exactly. Each entry's kind
// comes from its content or its name:
//
//   - a PEM or DER private key is a private key, whatever its name;
//   - a name ending in ".aes" is an AES key (16, 24 or 32 bytes);
//   - a name ending in ".hmac" is an HMAC secret;
//   - anything else is raw bytes.
//
// The manifest lists every entry with its kind and check values; its digest
// is the bundle's check value.

// MaxEntryInMemory bounds the entries read whole to find their kind; larger
// entries are raw and streamed through their fingerprint.
const MaxEntryInMemory = 64 << 10

// Entry is one key of a bundle.
type Entry struct {
	Name      string       `json:"name"`
	Kind      Kind         `json:"kind"`
	Algorithm string       `json:"algorithm"`
	Size      int64        `json:"size"`
	Checks    []CheckValue `json:"checks"`
}

// Manifest lists a bundle's entries, in archive order.
type Manifest struct {
	Entries []Entry `json:"entries"`
}

// Check returns the bundle's check value: SHA-256 over the manifest.
func (m *Manifest) Check() CheckValue {
	h := sha256.New()
	h.Write([]byte("custos bundle manifest v1\x00"))
	for _, e := range m.Entries {
		writeField(h, []byte(e.Name))
		h.Write([]byte{byte(e.Kind)})
		writeField(h, []byte(e.Algorithm))
		h.Write(binary.BigEndian.AppendUint64(nil, uint64(e.Size)))
		h.Write([]byte{byte(len(e.Checks))})
		for _, c := range e.Checks {
			h.Write([]byte{byte(c.Method)})
			writeField(h, c.Value)
		}
	}
	return CheckValue{CheckManifest, h.Sum(nil)}
}

func writeField(w io.Writer, b []byte) {
	w.Write(binary.BigEndian.AppendUint32(nil, uint32(len(b))))
	w.Write(b)
}

// ReadManifest reads a bundle archive and computes each entry's check
// values. Memory stays flat: large entries are streamed. checkKey keys the
// fingerprints of raw entries.
func ReadManifest(r io.Reader, checkKey []byte) (*Manifest, error) {
	tr := tar.NewReader(r)
	m := &Manifest{}
	names := newBundleNames()
	bufs := newStreamBufs()
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("reading bundle archive: %w", err)
		}
		if err := checkMember(hdr); err != nil {
			return nil, err
		}
		if err := names.add(hdr); err != nil {
			return nil, err
		}
		if hdr.Typeflag != tar.TypeReg {
			continue // a directory, or tar's own metadata
		}
		e, err := readEntry(hdr, tr, checkKey, bufs)
		if err != nil {
			return nil, fmt.Errorf("bundle entry %q: %w", hdr.Name, err)
		}
		m.Entries = append(m.Entries, e)
	}
	if len(m.Entries) == 0 {
		return nil, errors.New("the bundle archive holds no files")
	}
	return m, nil
}

// checkMember refuses what a bundle cannot escrow faithfully. A link or a
// device carries no key: a bundle that held one would come back without
// the key the archive pointed to, and nobody would know until too late.
// Names must unpack inside the directory they are unpacked in, and be
// printable on the set record and the transcript.
func checkMember(hdr *tar.Header) error {
	name := hdr.Name
	switch hdr.Typeflag {
	case tar.TypeReg, tar.TypeDir, tar.TypeXGlobalHeader:
	case tar.TypeSymlink:
		return fmt.Errorf("bundle entry %q is a symbolic link to %q, not a key: custos escrows what files hold, not links; make the archive with tar --dereference (tar chf) so that the key itself goes in", name, hdr.Linkname)
	case tar.TypeLink:
		return fmt.Errorf("bundle entry %q is a hard link to %q: make the archive with tar --hard-dereference so that every name holds its own copy", name, hdr.Linkname)
	case tar.TypeChar, tar.TypeBlock, tar.TypeFifo:
		return fmt.Errorf("bundle entry %q is a device or a pipe, not a file: leave it out of the archive", name)
	default:
		return fmt.Errorf("bundle entry %q is of tar type %q, which custos does not escrow: only regular files and directories", name, hdr.Typeflag)
	}
	if hdr.Typeflag == tar.TypeXGlobalHeader {
		return nil
	}
	switch {
	case name == "":
		return errors.New("a bundle entry has no name")
	case !utf8.ValidString(name):
		return fmt.Errorf("bundle entry %q: its name is not UTF-8 text", name)
	case strings.ContainsFunc(name, unicode.IsControl):
		return fmt.Errorf("bundle entry %q: its name holds a control character (a line break, an escape …)", name)
	case path.IsAbs(name) || strings.HasPrefix(name, `\`):
		return fmt.Errorf("bundle entry %q: its name is absolute; make the archive from relative paths (tar -C DIR cf …)", name)
	case slices.Contains(strings.Split(strings.ReplaceAll(name, `\`, "/"), "/"), ".."):
		return fmt.Errorf("bundle entry %q: its name climbs out of the archive with \"..\"", name)
	}
	return nil
}

// bundleNames keeps the names of a bundle's members as they would land on
// disk, to refuse two members that would land on the same place: the same
// file twice, one name under two spellings or in two cases (a disk that
// ignores case keeps one), or a file where another member needs a
// directory.
type bundleNames struct {
	files map[string]string // cleaned, lower case -> name in the archive
	dirs  map[string]string // cleaned, lower case -> a member that needs it
}

func newBundleNames() *bundleNames {
	return &bundleNames{files: map[string]string{}, dirs: map[string]string{}}
}

func (b *bundleNames) add(hdr *tar.Header) error {
	name := hdr.Name
	isDir := hdr.Typeflag == tar.TypeDir
	switch {
	case hdr.Typeflag == tar.TypeXGlobalHeader:
		return nil
	case !isDir && strings.HasSuffix(name, "/"):
		return fmt.Errorf("bundle entry %q is a file whose name ends in \"/\": it cannot be unpacked", name)
	}
	clean := path.Clean(name)
	if clean == "." {
		if isDir {
			return nil
		}
		return fmt.Errorf("bundle entry %q names no file", name)
	}
	key := strings.ToLower(clean)
	if first, ok := b.files[key]; ok {
		switch {
		case first == name && !isDir:
			return fmt.Errorf("bundle entry %q appears twice", name)
		case isDir:
			return fmt.Errorf("bundle entries %q and %q would be both a file and a directory when the bundle is unpacked", first, name)
		case path.Clean(first) == clean:
			return fmt.Errorf("bundle entries %q and %q are the same file: one would overwrite the other when the bundle is unpacked", first, name)
		}
		return fmt.Errorf("bundle entries %q and %q differ only in case: on a disk that ignores case one would overwrite the other", first, name)
	}
	if first, ok := b.dirs[key]; ok && !isDir {
		return fmt.Errorf("bundle entries %q and %q would be both a file and a directory when the bundle is unpacked", name, first)
	}
	for dir := path.Dir(clean); dir != "." && dir != "/"; dir = path.Dir(dir) {
		dkey := strings.ToLower(dir)
		if file, ok := b.files[dkey]; ok {
			return fmt.Errorf("bundle entries %q and %q would be both a file and a directory when the bundle is unpacked", file, name)
		}
		if _, ok := b.dirs[dkey]; !ok {
			b.dirs[dkey] = name
		}
	}
	if isDir {
		if _, ok := b.dirs[key]; !ok {
			b.dirs[key] = name
		}
	} else {
		b.files[key] = name
	}
	return nil
}

func readEntry(hdr *tar.Header, r io.Reader, checkKey []byte, bufs *streamBufs) (Entry, error) {
	e := Entry{Name: hdr.Name, Size: hdr.Size}
	if hdr.Size > MaxEntryInMemory {
		m := newStreamMAC(checkKey, hdr.Name, bufs)
		if _, err := io.Copy(m, r); err != nil {
			return e, err
		}
		e.Kind, e.Algorithm = KindRaw, "raw"
		e.Checks = []CheckValue{m.Sum()}
		return e, nil
	}
	b, err := io.ReadAll(r)
	if err != nil {
		return e, err
	}
	defer clear(b)
	kind := entryKind(hdr.Name, b)
	det, err := Describe(b, kind)
	if err != nil {
		return e, err
	}
	e.Kind, e.Algorithm = det.Kind, det.Algorithm
	e.Checks, err = CheckValues(b, kind, checkKey)
	return e, err
}

func entryKind(name string, b []byte) Kind {
	lower := strings.ToLower(name)
	switch {
	case looksLikeKey(b) && Detect(b).Kind == KindPrivateKey:
		return KindPrivateKey
	case strings.HasSuffix(lower, ".aes"):
		return KindAES
	case strings.HasSuffix(lower, ".hmac"):
		return KindHMAC
	}
	return KindRaw
}

// BundleKey is one key read out of a bundle, for restoring it.
type BundleKey struct {
	Entry
	Bytes []byte
}

// ReadBundleKeys calls f for each regular file of a bundle archive with its
// bytes, which are cleared after f returns. Entries larger than
// MaxEntryInMemory are skipped: they are not keys an HSM takes.
func ReadBundleKeys(r io.Reader, f func(BundleKey) error) error {
	tr := tar.NewReader(r)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("reading bundle archive: %w", err)
		}
		if hdr.Typeflag != tar.TypeReg || hdr.Size > MaxEntryInMemory {
			continue
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			return fmt.Errorf("reading bundle entry %q: %w", hdr.Name, err)
		}
		kind := entryKind(hdr.Name, b)
		det, derr := Describe(b, kind)
		if derr != nil {
			clear(b)
			return fmt.Errorf("bundle entry %q: %w", hdr.Name, derr)
		}
		err = f(BundleKey{Entry{Name: hdr.Name, Kind: kind, Algorithm: det.Algorithm, Size: hdr.Size}, b})
		clear(b)
		if err != nil {
			return err
		}
	}
}

// looksLikeKey is a cheap test that spares random key bytes the ASN.1
// parsers: private keys are PEM text or a DER SEQUENCE.
func looksLikeKey(b []byte) bool {
	return len(b) > 32 && (b[0] == 0x30 || bytes.Contains(b[:min(len(b), 200)], []byte("-----BEGIN")))
}

func bytesReader(b []byte) io.Reader { return bytes.NewReader(b) }
