package ceremony

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"custos/scan"
	"custos/shares"
)

// Offered is one share offered at a recovery, or the reason it could not be
// read. Reading goes on past a bad share so that every culprit is named at
// once and the others can still make a quorum.
type Offered struct {
	Share  *shares.Share
	Source string
	Err    error
}

// ReadShareFiles reads shares from typed text files and from scans or
// photos of share pages. QR codes of one share may be spread over several
// images, in any order. Every file that cannot be read is returned with
// its error, by name.
func ReadShareFiles(paths []string) []Offered {
	var out []Offered
	var parts shares.Parts
	for _, path := range paths {
		source := filepath.Base(path)
		b, err := readShareFile(path)
		if err != nil {
			out = append(out, Offered{Source: source, Err: err})
			continue
		}
		if !isImage(b) {
			s, err := shares.ParseText(string(b), source)
			out = append(out, Offered{Share: s, Source: source, Err: err})
			continue
		}
		payloads, err := scan.DecodeFile(path)
		if err != nil {
			out = append(out, Offered{Source: source, Err: err})
			continue
		}
		for _, p := range payloads {
			if err := parts.Add(p, source); err != nil {
				out = append(out, Offered{Source: source, Err: err})
			}
		}
	}
	got, err := parts.Shares()
	for _, s := range got {
		out = append(out, Offered{Share: s, Source: s.Source})
	}
	if err != nil {
		for _, e := range unjoin(err) {
			source := ""
			if pe, ok := e.(*shares.PartsError); ok {
				source, e = pe.Source, errors.New(pe.Reason)
			}
			out = append(out, Offered{Source: source, Err: e})
		}
	}
	return out
}

// maxShareFile bounds what is read as one share: the largest text share
// is under 20 KB, and scans are decoded with their own limits.
const maxShareFile = 64 << 20

// readShareFile reads a share file and refuses, by name and with what to
// do, the files people are likely to offer by mistake.
func readShareFile(path string) ([]byte, error) {
	fi, err := os.Stat(path)
	switch {
	case err != nil:
		return nil, fmt.Errorf("cannot read %s: %w", path, unwrapPath(err))
	case fi.IsDir():
		return nil, fmt.Errorf("%s is a directory, not a share file", path)
	case fi.Size() > maxShareFile:
		return nil, fmt.Errorf("%s is %d MB, too large for a share or a scan of one", path, fi.Size()>>20)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("cannot read %s: %w", path, unwrapPath(err))
	}
	switch {
	case isImage(b):
		return b, nil // a PNG header alone has more zero bytes than text may
	case shares.IsSealedFile(b):
		return nil, fmt.Errorf("%s is the sealed file that holds the secret itself, not a share; give it with --sealed, and the shares as well", path)
	case bytes.HasPrefix(b, []byte("%PDF")):
		return nil, fmt.Errorf("%s is the printed PDF; give the share's .txt file, or a PNG or JPEG scan of the page", path)
	case bytes.HasPrefix(b, []byte{0xff, 0xfe}) || bytes.HasPrefix(b, []byte{0xfe, 0xff}) || bytes.Count(b[:min(len(b), 64)], []byte{0}) > 8:
		return nil, fmt.Errorf("%s is saved as UTF-16 or binary; save the typed share as plain text (UTF-8), or give a PNG or JPEG scan", path)
	case isOtherImage(b):
		return nil, fmt.Errorf("%s is an image custos does not read; convert it to PNG or JPEG", path)
	}
	return bytes.TrimPrefix(b, []byte("\xef\xbb\xbf")), nil
}

// unwrapPath drops the path an *fs.PathError repeats.
func unwrapPath(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

func isOtherImage(b []byte) bool {
	for _, magic := range [][]byte{[]byte("II*\x00"), []byte("MM\x00*"), []byte("GIF8"), []byte("BM")} {
		if bytes.HasPrefix(b, magic) {
			return true
		}
	}
	return len(b) > 12 && string(b[:4]) == "RIFF" && string(b[8:12]) == "WEBP"
}

func unjoin(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}

func isImage(b []byte) bool {
	return bytes.HasPrefix(b, []byte("\x89PNG\r\n\x1a\n")) || bytes.HasPrefix(b, []byte{0xff, 0xd8, 0xff})
}

// NotEnoughError says too few usable shares were offered. The shares not
// used were already reported one by one, so its message is short.
type NotEnoughError struct{ *shares.QuorumError }

func (e *NotEnoughError) Error() string {
	return fmt.Sprintf("need %d shares of set %s, have %d usable", e.Need, e.SetID.Short(), e.Have)
}

func (e *NotEnoughError) Unwrap() error { return e.QuorumError }

// Recovery is a rebuilt secret, proven against its check values.
type Recovery struct {
	Quorum *shares.Quorum
	Secret *shares.Secret      // inline secrets; nil for sealed files
	Checks []shares.CheckValue // as recomputed from the rebuilt secret

	sealed string         // the sealed file opened, for WriteSealed
	expect *shares.Expect // what it was proven against
}

// WriteSealed decrypts the sealed file of a rebuilt sealed secret into w
// once more, proven as Rebuild proved it (every chunk, the digest the
// shares bind, the check values). It is for a target that is written only
// after the room has seen the proof. On an error what reached w must be
// discarded.
func (r *Recovery) WriteSealed(w io.Writer) error {
	if r.sealed == "" {
		return errors.New("writing the sealed secret: this secret has no sealed file")
	}
	f, err := os.Open(r.sealed)
	if err != nil {
		return fmt.Errorf("opening sealed file: %w", err)
	}
	defer f.Close()
	if _, err := r.Quorum.OpenSealed(f, w, r.expect); err != nil {
		return fmt.Errorf("%s: %w", r.sealed, err)
	}
	return nil
}

// CheckSealed checks, without any key, that path is the sealed file the
// set record names: its set, size and digest. A recovery calls it before
// any custodian is asked for a share.
func CheckSealed(path string, rec *SetRecord) error {
	if rec.Sealed == nil {
		return fmt.Errorf("set %s's record names no sealed file: its secret rides inside the shares", rec.SetID.Short())
	}
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("sealed file %s does not exist: set %s's secret is sealed in %s, which every share binds",
			path, rec.SetID.Short(), rec.Sealed.File)
	}
	if err != nil {
		return fmt.Errorf("opening sealed file: %w", err)
	}
	defer f.Close()
	if fi, err := f.Stat(); err == nil && fi.IsDir() {
		return fmt.Errorf("sealed file %s is a directory", path)
	}
	bound := &shares.Share{SetID: rec.SetID, SealedSize: rec.Sealed.Size, SealedDigest: rec.Sealed.Digest}
	if err := shares.VerifySealed(f, bound); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}

// Wipe clears the rebuilt data key and secret.
func (r *Recovery) Wipe() {
	r.Quorum.Wipe()
	if r.Secret != nil {
		r.Secret.Wipe()
	}
}

// RecoverRequest says what to rebuild and where the result goes.
type RecoverRequest struct {
	Offered []Offered
	Record  *SetRecord // optional; pins the set and its check values
	// Sealed is the sealed file of a large secret.
	Sealed string
	// Out receives a sealed secret as it is decrypted; inline secrets are
	// returned in Recovery.Secret for the caller to place.
	Out io.Writer
	// VerifyFirst opens the whole sealed file once before writing any of
	// it to Out: for an Out that cannot be taken back, like a pipe, where
	// a damaged file must not deliver the start of the secret.
	VerifyFirst bool
}

// Rebuild combines the offered shares, names every share it could not use,
// and proves the secret. For a sealed secret it streams the plaintext to
// req.Out; on an error that output must be discarded.
func Rebuild(ctx context.Context, req RecoverRequest, rep Reporter) (*Recovery, error) {
	var good []*shares.Share
	for _, o := range req.Offered {
		if o.Err != nil && o.Source == "" {
			rep.warn("not using %v", o.Err)
			continue
		}
		if o.Err != nil {
			rep.warn("not using %s: %v", o.Source, o.Err)
			continue
		}
		good = append(good, o.Share)
	}
	if len(good) == 0 {
		return nil, errors.New("none of the offered shares could be read")
	}
	var expect *shares.Expect
	if req.Record != nil {
		expect = req.Record.Expect()
	}
	q, err := shares.Combine(good, expect)
	var short *shares.QuorumError
	if errors.As(err, &short) {
		for _, r := range short.Rejected {
			rep.warn("not using %s: %s", r.Share, r.Reason)
		}
		return nil, &NotEnoughError{short}
	}
	if err != nil {
		return nil, err
	}
	for _, r := range q.Rejected {
		rep.warn("not using %s: %s", r.Share, r.Reason)
	}
	rep.info("%d shares of set %s (%q) agree; %d are needed", len(q.Shares), q.SetID.Short(), q.Set.Label, q.Set.Threshold)

	rec := &Recovery{Quorum: q}
	if !q.Set.External() {
		rec.Secret, err = q.Open(expect)
		if err != nil {
			q.Wipe()
			return nil, err
		}
		rec.Checks = rec.Secret.Checks
		return rec, nil
	}
	if err := openSealed(req, q, expect, rec); err != nil {
		q.Wipe()
		return nil, err
	}
	rec.sealed, rec.expect = req.Sealed, expect
	return rec, nil
}

func reopen(f *os.File) error {
	_, err := f.Seek(0, io.SeekStart)
	return err
}

func openSealed(req RecoverRequest, q *shares.Quorum, expect *shares.Expect, rec *Recovery) error {
	if req.Sealed == "" {
		return fmt.Errorf("set %s's secret is in a separate sealed file (%s); name it with --sealed", q.SetID.Short(), SealedFile)
	}
	// TODO: a sealed file on a pipe cannot be read twice; VerifyFirst
	// needs a regular file, which os.Open of a FIFO is not.
	f, err := os.Open(req.Sealed)
	if err != nil {
		return fmt.Errorf("opening sealed file: %w", err)
	}
	defer f.Close()
	if err := shares.VerifySealed(f, q.Set); err != nil {
		return fmt.Errorf("%s: %w", req.Sealed, err)
	}
	if req.VerifyFirst {
		if err := reopen(f); err != nil {
			return err
		}
		if _, err := q.OpenSealed(f, io.Discard, expect); err != nil {
			return fmt.Errorf("%s: %w", req.Sealed, err)
		}
	}
	if err := reopen(f); err != nil {
		return err
	}
	rec.Checks, err = q.OpenSealed(f, req.Out, expect)
	if err != nil {
		return fmt.Errorf("%s: %w", req.Sealed, err)
	}
	return nil
}
