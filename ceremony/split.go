package ceremony

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"unicode"

	"custos/printer"
	"custos/shares"
)

// Reporter receives what a flow tells the people in the room. Messages
// never carry a secret.
type Reporter struct {
	Info func(format string, a ...any)
	Warn func(format string, a ...any)
}

func (r Reporter) info(format string, a ...any) {
	if r.Info != nil {
		r.Info(format, a...)
	}
}

func (r Reporter) warn(format string, a ...any) {
	if r.Warn != nil {
		r.Warn(format, a...)
	}
}

// SplitRequest is a split to files: paper PDFs, text shares, set.json and,
// for a large secret, the sealed file.
type SplitRequest struct {
	Policy  shares.Policy
	Paper   printer.Paper
	OutDir  string
	Secret  io.Reader // read once; never kept beyond the split
	NoPaper bool      // write no PDF or text share (cards only)
	// Cards stores shares on custodians' cards; nil when there are none.
	Cards CardWriter
}

// CardWriter stores one custodian's share on their card and reads it back.
// The split ceremony supplies it; SplitFiles only calls it.
type CardWriter interface {
	// Custodians returns the indexes that get a card.
	Custodians() []int
	// Prepare checks every card before anything is written; an error
	// stops the split there.
	Prepare(ctx context.Context) error
	// Store writes the share to the custodian's card, reads it back and
	// returns what was read and where it is.
	Store(ctx context.Context, s *shares.Share, d *shares.Dealt) (*shares.Share, *CardRef, error)
	// Discard destroys a share Store wrote, or left on the card when it
	// failed, when the split fails after it: a card must not keep a share
	// of a set that was never completed.
	Discard(ctx context.Context, s *shares.Share) error
}

// SplitResult says what a split wrote.
type SplitResult struct {
	Record *SetRecord
	Files  []string
}

// Paths of a split's outputs.
const (
	RecordFile = "set.json"
	SealedFile = "secret.sealed"
)

// ShareFileBase returns "share-<i>-<name>" with the name made safe for any
// file system: letters and digits of any script are kept, the rest become
// dashes.
func ShareFileBase(index int, name string) string {
	var b strings.Builder
	for _, r := range name {
		switch {
		case unicode.IsLetter(r) || unicode.IsDigit(r):
			b.WriteRune(r)
		case b.Len() > 0 && !strings.HasSuffix(b.String(), "-"):
			b.WriteByte('-')
		}
	}
	safe := strings.Trim(b.String(), "-")
	if safe == "" {
		return fmt.Sprintf("share-%d", index)
	}
	return fmt.Sprintf("share-%d-%s", index, safe)
}

// SplitFiles runs a split to files, then reads every medium back and
// rebuilds the secret from every quorum before it reports success. On any
// failure every file it created is removed.
func SplitFiles(ctx context.Context, req SplitRequest, rep Reporter) (res *SplitResult, err error) {
	if err := req.Policy.Validate(); err != nil {
		return nil, err
	}
	if _, serr := os.Stat(req.OutDir); os.IsNotExist(serr) {
		if err := os.MkdirAll(req.OutDir, 0o700); err != nil {
			return nil, fmt.Errorf("creating output directory: %w", err)
		}
		defer func() {
			if err != nil {
				os.Remove(req.OutDir) // only if empty: what we made, we take back
			}
		}()
	}
	names := req.Policy.Custodians
	planned := []string{filepath.Join(req.OutDir, RecordFile), filepath.Join(req.OutDir, SealedFile)}
	for i := 1; i <= req.Policy.Count; i++ {
		name := ""
		if len(names) >= i {
			name = names[i-1]
		}
		base := filepath.Join(req.OutDir, ShareFileBase(i, name))
		planned = append(planned, base+".pdf", base+".txt")
	}
	if err := refuseExisting(planned...); err != nil {
		return nil, err
	}
	if req.Cards != nil {
		if err := req.Cards.Prepare(ctx); err != nil {
			return nil, err
		}
	}

	out := &outputs{}
	defer out.cleanup()
	var stored []*shares.Share
	defer func() {
		if !out.keep && len(stored) > 0 {
			err = discardCards(ctx, req.Cards, stored, err, rep)
		}
	}()
	req.Secret = ctxReader{ctx, req.Secret}
	d, secret, err := dealSecret(req, out, rep)
	if err != nil {
		return nil, err
	}
	defer d.Wipe()
	defer clear(secret)
	if d.Manifest != nil {
		reportManifest(d.Manifest, rep)
	}

	rec := NewRecord(d)
	if d.Shares[0].External() {
		rec.Sealed = &SealedRecord{File: SealedFile, Size: d.Shares[0].SealedSize, Digest: d.Shares[0].SealedDigest}
	}
	if err := checkPrintable(req, d); err != nil {
		return nil, err
	}
	readBack, err := writeMedia(ctx, req, d, rec, out, &stored, rep)
	if err != nil {
		return nil, err
	}
	if err := proveQuorums(d, readBack, secret, req.OutDir, rep); err != nil {
		return nil, err
	}

	path := filepath.Join(req.OutDir, RecordFile)
	if err := rec.Create(path); err != nil {
		return nil, err
	}
	out.add(path)
	out.keep = true
	return &SplitResult{Record: rec, Files: out.created}, nil
}

// ctxReader stops reading the secret once ctx is done (Ctrl-C).
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, fmt.Errorf("interrupted: %w", err)
	}
	return c.r.Read(p)
}

// dealSecret reads the secret and splits it: inline when it fits, else
// sealed to OutDir/secret.sealed. It returns the secret only when inline,
// for the final proof.
func dealSecret(req SplitRequest, out *outputs, rep Reporter) (*shares.Dealt, []byte, error) {
	head := make([]byte, shares.InlineLimit+1)
	n, err := io.ReadFull(req.Secret, head)
	if err != nil && err != io.EOF && err != io.ErrUnexpectedEOF {
		clear(head)
		return nil, nil, fmt.Errorf("reading the secret: %w", err)
	}
	head = head[:n]
	if n <= shares.InlineLimit {
		d, err := shares.Split(head, req.Policy)
		if err != nil {
			clear(head)
			return nil, nil, err
		}
		return d, head, nil
	}

	path := filepath.Join(req.OutDir, SealedFile)
	rep.info("the secret is larger than %d bytes: sealing it to %s", shares.InlineLimit, path)
	f, err := createNew(path, 0o600)
	if err != nil {
		clear(head)
		return nil, nil, err
	}
	out.add(path)
	d, err := shares.SplitSealed(io.MultiReader(bytes.NewReader(head), req.Secret), f, req.Policy)
	clear(head)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, nil, err
	}
	return d, nil, nil
}

// manifestShown is how many bundle entries a split lists by name; the rest
// are counted, and all are in set.json.
const manifestShown = 20

// reportManifest says what a bundle holds, so that the room sees what went
// in before anyone signs for it.
func reportManifest(m *shares.Manifest, rep Reporter) {
	kinds := map[string]int{}
	var order []string
	for _, e := range m.Entries {
		if kinds[e.Algorithm] == 0 {
			order = append(order, e.Algorithm)
		}
		kinds[e.Algorithm]++
	}
	var counts []string
	for _, a := range order {
		counts = append(counts, fmt.Sprintf("%d %s", kinds[a], a))
	}
	files := "files"
	if len(m.Entries) == 1 {
		files = "file"
	}
	rep.info("the bundle holds %d %s: %s", len(m.Entries), files, strings.Join(counts, ", "))
	for i, e := range m.Entries {
		if i == manifestShown {
			rep.info("  … and %d more, every one listed in %s", len(m.Entries)-manifestShown, RecordFile)
			break
		}
		check := ""
		if len(e.Checks) > 0 {
			check = "  " + e.Checks[0].String()
		}
		rep.info("  %s  %s, %d bytes%s", e.Name, e.Algorithm, e.Size, check)
	}
}

// writeMedia writes each custodian's paper and card and returns the shares
// as read back from every medium.
func writeMedia(ctx context.Context, req SplitRequest, d *shares.Dealt, rec *SetRecord, out *outputs, stored *[]*shares.Share, rep Reporter) ([]*shares.Share, error) {
	var readBack []*shares.Share
	onCard := map[int]bool{}
	if req.Cards != nil {
		for _, i := range req.Cards.Custodians() {
			onCard[i] = true
		}
	}
	for _, s := range d.Shares {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("interrupted before share %d: %w", s.Index, err)
		}
		c := rec.Custodian(s.Index)
		if onCard[s.Index] {
			got, ref, err := req.Cards.Store(ctx, s, d)
			if err != nil {
				if leftOnCard(err) {
					*stored = append(*stored, s)
				}
				return nil, fmt.Errorf("storing share %d on %s's card: %w", s.Index, custodianWords(s), err)
			}
			*stored = append(*stored, s)
			c.Media, c.Card = append(c.Media, "card"), ref
			readBack = append(readBack, got)
		}
		if req.NoPaper && onCard[s.Index] {
			continue
		}
		got, files, err := writePaper(ctx, req, s, d, out, rep)
		if err != nil {
			return nil, err
		}
		c.Media, c.Files = append(c.Media, "paper"), files
		readBack = append(readBack, got...)
	}
	return readBack, nil
}

// discardCards destroys the shares a failed split stored on cards, after
// saying why, and says what state each card is left in. It returns the
// split's error cause as a SplitCardsError that tells the same.
func discardCards(ctx context.Context, cards CardWriter, stored []*shares.Share, cause error, rep Reporter) error {
	rep.warn("the split is stopped: %v", cause)
	out := &SplitCardsError{Err: cause}
	for _, s := range stored {
		err := cards.Discard(ctx, s)
		if err == nil {
			out.Destroyed = append(out.Destroyed, s.Index)
			rep.info("share %d destroyed on %s's card: its slot is free for the next split", s.Index, custodianWords(s))
			continue
		}
		var de *DiscardError
		if !errors.As(err, &de) {
			de = &DiscardError{Index: s.Index, Custodian: s.Custodian, SetID: s.SetID, Err: err}
		}
		out.Left = append(out.Left, de)
		rep.warn("share %d is STILL on %s's card: %v", s.Index, custodianWords(s), err)
	}
	return out
}

// checkPrintable renders every share page before any card or file is
// written, so that a name the printer refuses stops the split at once.
func checkPrintable(req SplitRequest, d *shares.Dealt) error {
	if req.NoPaper {
		return nil
	}
	for _, s := range d.Shares {
		if err := printer.WriteSharePDF(io.Discard, SharePage(s, d.Checks, req.Paper)); err != nil {
			return fmt.Errorf("printing share %d for %s: %w", s.Index, displayName(s), err)
		}
	}
	return nil
}

// writePaper writes one share's PDF and text file and reads both back.
func writePaper(ctx context.Context, req SplitRequest, s *shares.Share, d *shares.Dealt, out *outputs, rep Reporter) ([]*shares.Share, []string, error) {
	base := filepath.Join(req.OutDir, ShareFileBase(s.Index, s.Custodian))
	var pdf bytes.Buffer
	if err := printer.WriteSharePDF(&pdf, SharePage(s, d.Checks, req.Paper)); err != nil {
		return nil, nil, fmt.Errorf("printing share %d: %w", s.Index, err)
	}
	files := []string{base + ".pdf", base + ".txt"}
	// Share pages are as secret as the shares: readable by their owner only.
	if err := writeNew(files[0], pdf.Bytes(), 0o600); err != nil {
		return nil, nil, err
	}
	out.add(files[0])
	if err := writeNew(files[1], []byte(s.Text()), 0o600); err != nil {
		return nil, nil, err
	}
	out.add(files[1])
	rep.info("wrote share %d for %s: %s, %s", s.Index, displayName(s), filepath.Base(files[0]), filepath.Base(files[1]))

	fromText, err := readTextShare(files[1])
	if err != nil {
		return nil, nil, fmt.Errorf("reading back %s: %w", files[1], err)
	}
	fromPaper, how, err := readBackPDF(ctx, files[0], s)
	if err != nil {
		return nil, nil, fmt.Errorf("reading back %s: %w", files[0], err)
	}
	if how != "" {
		rep.warn("%s", how)
	}
	for _, got := range []*shares.Share{fromText, fromPaper} {
		if got.Fingerprint() != s.Fingerprint() {
			return nil, nil, fmt.Errorf("share %d read back from %s differs from the share written", s.Index, got.Source)
		}
	}
	rep.info("read back share %d from its page and its text file: identical", s.Index)
	rel := []string{filepath.Base(files[0]), filepath.Base(files[1])}
	return []*shares.Share{fromText, fromPaper}, rel, nil
}

func displayName(s *shares.Share) string {
	if s.Custodian == "" {
		return fmt.Sprintf("Custodian %d (no name given)", s.Index)
	}
	return s.Custodian
}

// SharePage lays out a share for the printer.
func SharePage(s *shares.Share, checks []shares.CheckValue, paper printer.Paper) printer.SharePage {
	var cv []string
	for _, c := range checks {
		cv = append(cv, c.String())
	}
	return printer.SharePage{
		Paper:             paper,
		Custodian:         displayName(s),
		Index:             s.Index,
		Threshold:         s.Threshold,
		Count:             s.Count,
		Label:             s.Label,
		SetID:             s.SetID.String(),
		Kind:              s.Algorithm,
		CheckValues:       cv,
		DealerFingerprint: s.DealerFingerprint(),
		Created:           s.Created,
		TextLines:         s.TextLines(),
		QRPayloads:        s.QRPayloads(),
	}
}

func readTextShare(path string) (*shares.Share, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return shares.ParseText(string(b), filepath.Base(path))
}

// proveQuorums combines every k-subset of the read-back shares (bounded,
// see maxProofs) and checks that each rebuilds the secret.
func proveQuorums(d *shares.Dealt, readBack []*shares.Share, secret []byte, dir string, rep Reporter) error {
	byIndex := map[int]*shares.Share{}
	for _, s := range readBack {
		byIndex[s.Index] = s
	}
	if len(byIndex) != len(d.Shares) {
		return fmt.Errorf("only %d of %d shares were read back", len(byIndex), len(d.Shares))
	}
	pool := make([]*shares.Share, 0, len(byIndex))
	for _, s := range d.Shares {
		pool = append(pool, byIndex[s.Index])
	}
	k := d.Shares[0].Threshold

	subsets, all := quorumSubsets(len(pool), k, maxProofs)
	for i, idx := range subsets {
		// Every quorum's data key is checked against the commitment every
		// share carries; the plaintext is compared for inline secrets, and
		// a sealed file is opened in full once, since every quorum that
		// passes the commitment holds the same data key.
		sealed := ""
		if secret == nil && i == 0 {
			sealed = filepath.Join(dir, SealedFile)
		}
		if err := proveOne(pick(pool, idx), secret, sealed); err != nil {
			return fmt.Errorf("quorum %s does not rebuild the secret: %w", indexList(pool, idx), err)
		}
	}
	if all {
		rep.info("every one of the %d possible quorums of %d rebuilds the secret", len(subsets), k)
	} else {
		rep.info("%d quorums of %d rebuild the secret, every share in several (all %s would be too many to try)", len(subsets), k, binomialString(len(pool), k))
	}
	return nil
}

// maxProofs bounds how many quorums a split proves.
const maxProofs = 5000

func proveOne(q []*shares.Share, secret []byte, sealedPath string) error {
	quorum, err := shares.Combine(q, nil)
	if err != nil {
		return err
	}
	defer quorum.Wipe()
	if secret == nil {
		if sealedPath == "" {
			return nil
		}
		f, err := os.Open(sealedPath)
		if err != nil {
			return err
		}
		defer f.Close()
		_, err = quorum.OpenSealed(f, io.Discard, nil)
		return err
	}
	got, err := quorum.Open(nil)
	if err != nil {
		return err
	}
	defer got.Wipe()
	if !bytes.Equal(got.Bytes, secret) {
		return errors.New("rebuilt bytes differ from the secret")
	}
	return nil
}

func pick(s []*shares.Share, idx []int) []*shares.Share {
	out := make([]*shares.Share, len(idx))
	for i, j := range idx {
		out[i] = s[j]
	}
	return out
}

func indexList(pool []*shares.Share, idx []int) string {
	var s []string
	for _, i := range idx {
		s = append(s, fmt.Sprint(pool[i].Index))
	}
	return "{" + strings.Join(s, ",") + "}"
}
