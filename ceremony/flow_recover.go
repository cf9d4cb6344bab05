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
	"strconv"
	"strings"
	"syscall"

	"custos/hsm"
	"custos/shares"
	"custos/smartcard"
)

// RecoveryPlan says which set to rebuild and where the key goes.
type RecoveryPlan struct {
	Record string // path of the set's set.json
	// Target is "file:PATH" or a pkcs11: URI; empty for a drill.
	Target string
	// Sealed is the sealed file of a set whose secret is too large to
	// ride inside the shares; empty means the file set.json names, in
	// set.json's directory.
	Sealed string
}

// RecoveryOutcome is what a finished recovery or drill did.
type RecoveryOutcome struct {
	Record    *SetRecord
	Collected []string // whose shares were used, in words
	Checks    []shares.CheckValue
	Placed    string // where the key went, with its proof; empty for a drill
	// Transcript is the PDF transcript written beside the set record.
	Transcript string
}

// Target is where a recovered key is placed: a new file, or an HSM.
type Target interface {
	// String names the target for the screen and the audit log.
	String() string
	// Check makes sure, before any custodian is called, that the key of
	// the set rec describes can be placed there.
	Check(ctx context.Context, rec *SetRecord) error
	// Place puts the key there and returns the proof that it is right.
	Place(ctx context.Context, key []byte, rec *SetRecord) (proof string, err error)
	// Undo removes what an interrupted Place may have left.
	Undo() error
}

// ParseTarget reads a target as plans and flags write it.
func ParseTarget(s string) (Target, error) {
	if p, ok := strings.CutPrefix(s, "file:"); ok && p != "" {
		return &FileTarget{Path: p}, nil
	}
	if strings.HasPrefix(s, "pkcs11:") {
		h, err := NewHSMTarget(s)
		if err != nil {
			return nil, err
		}
		return h, nil
	}
	return nil, fmt.Errorf("target %q: write file:PATH or a pkcs11: URI", s)
}

// FileTarget writes the key to a new file of mode 0600.
type FileTarget struct{ Path string }

func (f *FileTarget) String() string { return "file " + f.Path }

// Place creates the file (never replacing one), writes the key, and reads
// it back.
func (f *FileTarget) Place(ctx context.Context, key []byte, rec *SetRecord) (string, error) {
	if err := writeSecretFile(f.Path, key); err != nil {
		return "", err
	}
	back, err := os.ReadFile(f.Path)
	defer clear(back)
	if err != nil || !bytes.Equal(back, key) {
		os.Remove(f.Path)
		return "", fmt.Errorf("reading back %s: the file does not hold the key (%v)", f.Path, err)
	}
	return fmt.Sprintf("written to %s (new file, mode 0600) and read back identical", f.Path), nil
}

// Undo removes a file an interrupted Place left.
func (f *FileTarget) Undo() error { return removeIfThere(f.Path) }

// Check refuses a target file that exists already, and one whose
// directory is missing, is no directory, or cannot be written to.
func (f *FileTarget) Check(ctx context.Context, rec *SetRecord) error {
	if err := refuseExisting(f.Path); err != nil {
		return fmt.Errorf("target %w; name a new file", err)
	}
	dir := filepath.Dir(f.Path)
	fi, err := os.Stat(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("target file %s: its directory %s does not exist; create it first", f.Path, dir)
	case err != nil:
		return fmt.Errorf("checking target directory: %w", err)
	case !fi.IsDir():
		return fmt.Errorf("target file %s: %s is not a directory", f.Path, dir)
	}
	if err := syscall.Access(dir, accessWrite|accessSearch); err != nil {
		return fmt.Errorf("target file %s: cannot write to directory %s: %w", f.Path, dir, err)
	}
	return nil
}

// Modes of access(2): W_OK and X_OK, which package syscall does not name.
const (
	accessWrite  = 0x2
	accessSearch = 0x1
)

// PlaceStream creates the file (never replacing one) and lets write fill
// it, for a secret that is decrypted as it is written: a sealed one. On
// any failure, or when ctx ends, the file is removed.
func (f *FileTarget) PlaceStream(ctx context.Context, write func(io.Writer) error) (string, error) {
	fh, err := CreateSecretFile(f.Path)
	if err != nil {
		return "", fmt.Errorf("creating key file: %w", err)
	}
	cw := &countingWriter{ctx: ctx, w: fh}
	err = write(cw)
	if err == nil {
		err = fh.Sync()
	}
	if cerr := fh.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = sizeIs(f.Path, cw.n)
	}
	if err != nil {
		os.Remove(f.Path)
		return "", fmt.Errorf("writing key file %s: %w", f.Path, err)
	}
	return fmt.Sprintf("written to %s (new file, mode 0600, %d bytes) as it was decrypted, every part proven again on the way",
		f.Path, cw.n), nil
}

// countingWriter counts what it passes on and stops when ctx ends.
type countingWriter struct {
	ctx context.Context
	w   io.Writer
	n   int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	if c.ctx.Err() != nil {
		return 0, ErrInterrupted
	}
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// sizeIs checks that a file written holds n bytes.
func sizeIs(path string, n int64) error {
	fi, err := os.Stat(path)
	if err != nil {
		return err
	}
	if fi.Size() != n {
		return fmt.Errorf("the file holds %d bytes, %d were written", fi.Size(), n)
	}
	return nil
}

func writeSecretFile(path string, key []byte) error {
	fh, err := CreateSecretFile(path)
	if err != nil {
		return fmt.Errorf("creating key file: %w", err)
	}
	if _, err = fh.Write(key); err == nil {
		err = fh.Sync()
	}
	if cerr := fh.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(path)
		return fmt.Errorf("writing key file %s: %w", path, err)
	}
	return nil
}

// Recover runs the recovery ceremony. Before any custodian is called, the
// sealed file of a large secret (rp.Sealed, else the one set.json names)
// and the target are checked: see Target.Check. Then shares are collected
// one custodian at a time, the key is rebuilt and compared with set.json,
// and placed in the target with its proof: a sealed secret streamed into
// a new file, a bundle's keys into an HSM.
func Recover(ctx context.Context, rp RecoveryPlan, opt Options) (*RecoveryOutcome, error) {
	if rp.Target == "" {
		return nil, errors.New("a recovery needs a target (file:PATH or a pkcs11: URI); a drill needs none")
	}
	return recoverRun(ctx, rp, opt, "recover")
}

// Drill runs the recovery ceremony without placing the key anywhere: the
// shares are collected, the key rebuilt and proven, then discarded. The
// drill is recorded in set.json and the audit log. A sealed secret is
// read from the sealed file set.json names, beside it.
func Drill(ctx context.Context, recordPath string, opt Options) (*RecoveryOutcome, error) {
	return DrillWith(ctx, RecoveryPlan{Record: recordPath}, opt)
}

// DrillWith is Drill with a plan, to name the sealed file. A sealed
// secret is decrypted and proven, and nothing of it is written.
func DrillWith(ctx context.Context, rp RecoveryPlan, opt Options) (*RecoveryOutcome, error) {
	if rp.Target != "" {
		return nil, errors.New("a drill places the key nowhere; run a recovery to place it in " + rp.Target)
	}
	return recoverRun(ctx, rp, opt, "drill")
}

func recoverRun(ctx context.Context, rp RecoveryPlan, opt Options, name string) (*RecoveryOutcome, error) {
	r := newRun(ctx, name, opt)
	out, err := r.recover(rp)
	if err != nil {
		return nil, r.stop(err)
	}
	if err := r.finish(); err != nil {
		return nil, err
	}
	return out, nil
}

// recoverState is a recovery in progress.
type recoverState struct {
	rp        RecoveryPlan
	record    *SetRecord
	target    Target
	sealed    string // the sealed file of a large secret, checked
	good      []*shares.Share
	collected []string
	indexes   []int // of the shares collected
	outcome   *RecoveryOutcome
	// bundle collects the keys of a bundle bound for an HSM.
	bundle *BundleKeys
}

func (r *crun) recover(rp RecoveryPlan) (*RecoveryOutcome, error) {
	st := &recoverState{rp: rp}
	rec, err := ReadRecord(rp.Record)
	if err != nil {
		return nil, err
	}
	st.record, r.setID = rec, rec.SetID
	st.outcome = &RecoveryOutcome{Record: rec}
	r.state = st.describe
	if rp.Target != "" {
		tg, err := ParseTarget(rp.Target)
		if err != nil {
			return nil, err
		}
		st.target = tg
		if h, ok := st.target.(*HSMTarget); ok {
			if h.Prompt == nil {
				h.Prompt = r.hsmPIN
			}
			r.hold(h.Forget)
		}
	}
	placed, err := r.openRecoverJournal(st)
	if err != nil || placed {
		return st.outcome, err
	}
	steps := []func(*recoverState) error{r.recoverAirGap, r.stepPreflight, r.stepCollect, r.stepRebuild, r.recoverTranscript}
	for _, step := range steps {
		if err := step(st); err != nil {
			return nil, err
		}
	}
	return st.outcome, nil
}

// recoverTranscript writes the transcript of a recovery or drill beside
// the set record, naming the custodians who gave their shares.
func (r *crun) recoverTranscript(st *recoverState) error {
	if err := r.begin("transcript", Screen{}); err != nil {
		return err
	}
	r.present = map[int]bool{}
	for _, i := range st.indexes {
		r.present[i] = true
	}
	path, err := r.writeTranscript(filepath.Dir(st.rp.Record), nil, st.record)
	if err != nil {
		return err
	}
	st.outcome.Transcript = path
	r.Prompter.Show(Screen{Title: "The transcript", Lines: []string{
		"Transcript: " + path + " (print it; everyone present signs it)"}})
	return r.done("transcript", filepath.Base(path))
}

func (r *crun) recoverAirGap(st *recoverState) error {
	return r.stepAirGap(&splitState{})
}

// openRecoverJournal continues an interrupted recovery. It returns true
// when the earlier run already placed the key, so nothing is left to do.
func (r *crun) openRecoverJournal(st *recoverState) (bool, error) {
	path := JournalFile(filepath.Dir(st.rp.Record), r.name)
	prev, err := OpenJournal(path)
	if err != nil {
		return false, err
	}
	attempt := 1
	if prev != nil && !prev.Done {
		attempt = prev.Attempt + 1
		if prev.Exported != "" {
			r.j = prev
			r.Prompter.Show(Screen{Title: "Finishing an interrupted recovery", Lines: []string{
				"An earlier run already placed the key: " + prev.Exported,
				"It is not placed again. Nothing else remains to be done."}})
			st.outcome.Placed = prev.Exported
			return true, nil
		}
		if err := r.undoPartial(st, prev); err != nil {
			return false, err
		}
	}
	r.j = NewJournal(path, r.name, attempt, r.now())
	r.j.SetID = st.record.SetID.String()
	return false, r.j.Save()
}

func (r *crun) undoPartial(st *recoverState, prev *Journal) error {
	lines := []string{fmt.Sprintf("An earlier %s of set %s stopped during: %s.", r.name, prev.SetID, stepWords(prevStop(prev)))}
	if len(prev.Custodians) == 0 {
		lines = append(lines, "No custodian had given a share yet; this run starts from the beginning.")
	} else {
		lines = append(lines, "Shares are never kept on disk, so every custodian gives theirs again.")
	}
	if prev.Has("exporting") && st.target != nil {
		lines = append(lines, "The key it was writing to "+st.target.String()+" is removed first.")
		if err := st.target.Undo(); err != nil {
			return err
		}
	}
	r.Prompter.Show(Screen{Title: "Starting an interrupted " + r.name + " again", Alarm: true, Lines: lines})
	return nil
}

// stepPreflight checks, before any custodian is called, everything that
// could otherwise refuse the key once every share is in: the sealed file
// of a large secret, and the target.
func (r *crun) stepPreflight(st *recoverState) error {
	sealed, serr := sealedPath(st.rp, st.record)
	st.sealed = sealed
	var lines []string
	switch {
	case sealed != "":
		lines = append(lines, "The secret is in the sealed file "+sealed+": custos checks its set, size and chunk tags against what every share binds.",
			"(Its encrypted contents can only be proven with the key, once the shares are in.)")
	case serr != nil:
		lines = append(lines, "custos checks the sealed file named for the secret.")
	}
	if st.target != nil {
		lines = append(lines, "The key goes to "+st.target.String()+": custos checks it can be placed there.")
	}
	if len(lines) == 0 {
		return nil
	}
	if err := r.begin("preflight", Screen{Title: "Step: checking before anyone is called",
		Lines: append(lines, "No custodian is asked for anything until this is done.")}); err != nil {
		return err
	}
	if serr != nil {
		return serr
	}
	if sealed != "" {
		if err := CheckSealed(sealed, st.record); err != nil {
			return err
		}
	}
	if err := r.checkTarget(st); err != nil {
		return err
	}
	r.Prompter.Show(Screen{Title: "Ready for the custodians", Lines: []string{
		"Everything needed besides the shares is in order."}})
	var done []string
	if sealed != "" {
		done = append(done, "sealed file "+filepath.Base(sealed)+" is the set's")
	}
	if st.target != nil {
		done = append(done, auditName(st.target)+" ready")
	}
	return r.done("preflight", strings.Join(done, "; "))
}

// sealedPath names the sealed file of the set, checked against the plan:
// the one given, else the one set.json names beside it.
func sealedPath(rp RecoveryPlan, rec *SetRecord) (string, error) {
	switch {
	case rec.Sealed == nil && rp.Sealed != "":
		return "", fmt.Errorf("sealed file %s was given, but set %s has none: its secret rides inside the shares; leave out --sealed",
			rp.Sealed, rec.SetID.Short())
	case rec.Sealed == nil:
		return "", nil
	case rp.Sealed != "":
		return rp.Sealed, nil
	}
	return filepath.Join(filepath.Dir(rp.Record), filepath.Base(rec.Sealed.File)), nil
}

// checkTarget checks the target; a wrong HSM PIN typed by the room may be
// typed again while the token allows.
func (r *crun) checkTarget(st *recoverState) error {
	if st.target == nil {
		return nil
	}
	for {
		err := st.target.Check(r.ctx, st.record)
		var pe *hsm.PINError
		h, typed := st.target.(*HSMTarget)
		if !errors.As(err, &pe) || !errors.Is(err, hsm.ErrPINIncorrect) || !typed || h.URI.PINSource != "" {
			return err
		}
		r.Prompter.Show(Screen{Title: "Wrong HSM PIN", Alarm: true, Lines: []string{
			fmt.Sprintf("%v refused the PIN: %v.", h, err),
			"Tokens lock after a few wrong PINs."}})
		if err := r.confirm(fmt.Sprintf("Type the PIN of %v again?", h)); err != nil {
			return err
		}
	}
}

// stepCollect gathers shares until a quorum is in, or the room stops.
func (r *crun) stepCollect(st *recoverState) error {
	rec := st.record
	if err := r.begin("collect", Screen{Title: "Step: collecting shares", Lines: []string{
		fmt.Sprintf("Set %s (%q) needs any %d of its %d shares.", rec.SetID.Short(), rec.Label, rec.Threshold, rec.Count),
		"Custodians come forward one at a time. After each, custos says whose share",
		"it was and whether it is valid. A bad share is set aside; others can replace it."}}); err != nil {
		return err
	}
	for len(st.good) < rec.Threshold {
		if err := r.ctx.Err(); err != nil {
			return ErrInterrupted
		}
		s, err := r.offerOne(st)
		if errors.Is(err, errNoMore) {
			return fmt.Errorf("only %d of the %d shares needed were collected", len(st.good), rec.Threshold)
		}
		if err != nil {
			return err
		}
		if s != nil {
			r.accept(st, s)
		}
	}
	r.hold(func() { st.good = nil })
	return r.done("collect", strings.Join(st.collected, ", "))
}

var errNoMore = errors.New("no more shares")

// offerOne asks how the next share comes and reads it. A share that cannot
// be used is reported and nil returned, so collection goes on.
func (r *crun) offerOne(st *recoverState) (*shares.Share, error) {
	choices := []string{"from a custodian's card (PIN needed)", "from a scan or photo of a paper share (image file)",
		"from a typed share file (text file)", "typed or pasted here, line by line", "no more custodians are here: stop"}
	q := fmt.Sprintf("Share %d of the %d needed: how is it given?", len(st.good)+1, st.record.Threshold)
	if r.name == "custodian-drill" {
		q = "How is the share given?"
		choices[len(choices)-1] = "the share is not here: stop the drill"
	}
	i, err := r.Prompter.Select(q, choices)
	if err != nil {
		return nil, err
	}
	var s *shares.Share
	switch i {
	case 0:
		s, err = r.shareFromCard(st)
	case 1, 2:
		s, err = r.shareFromFile(i == 1)
	case 3:
		s, err = r.shareTyped()
	default:
		return nil, errNoMore
	}
	if errors.Is(err, ErrInterrupted) || errors.Is(err, ErrDeclined) || errors.Is(err, ErrScript) {
		return nil, err
	}
	if err == nil {
		err = checkOffered(st, s)
	}
	if err != nil {
		r.reject(err)
		return nil, nil
	}
	return s, nil
}

// reject reports a share that cannot be used, headed by what went
// wrong, and says that the ceremony goes on.
func (r *crun) reject(err error) {
	r.audit(AuditEntry{Event: EventShareRejected, Outcome: OutcomeRefused, Detail: AuditText(err.Error(), MaxDetail)})
	title, next := "That share cannot be used", "The ceremony goes on: the next custodian may come forward."
	var pin *smartcard.PINError
	var blocked *smartcard.PINBlockedError
	switch {
	case errors.As(err, &pin):
		title = fmt.Sprintf("Wrong PIN: card %d has %d %s left", pin.Card.Serial, pin.Retries,
			plural(pin.Retries, "try", "tries"))
		next = "Nothing was read from the card. Its custodian may try again (choose the card once more), " +
			"or the next custodian may come forward."
	case errors.As(err, &blocked):
		title = fmt.Sprintf("Card %d's PIN is blocked", blocked.Card.Serial)
	}
	if r.name == "custodian-drill" {
		next = "The drill goes on: the share may be offered again, or another custodian may drill."
	}
	r.Prompter.Show(Screen{Title: title, Alarm: true, Lines: []string{"What is wrong: " + cardWords(err), next}})
}

// checkOffered refuses a share of another set, another dealer, or one
// already given.
func checkOffered(st *recoverState, s *shares.Share) error {
	rec := st.record
	switch {
	case s.SetID != rec.SetID:
		return fmt.Errorf("%s belongs to set %s, not to set %s", s.Name(), s.SetID.Short(), rec.SetID.Short())
	case !bytes.Equal(s.DealerKey, rec.DealerKey):
		return fmt.Errorf("%s is signed by dealer %s, not by this set's %s", s.Name(), s.DealerFingerprint(), rec.DealerFP)
	}
	for _, g := range st.good {
		if g.Index == s.Index {
			return fmt.Errorf("share %d (%s) was already given", s.Index, s.Custodian)
		}
	}
	if _, err := shares.Check(append(append([]*shares.Share(nil), st.good...), s), rec.Expect()); err != nil {
		return fmt.Errorf("%s: %w", s.Name(), err)
	}
	return nil
}

func (r *crun) accept(st *recoverState, s *shares.Share) {
	st.good = append(st.good, s)
	st.indexes = append(st.indexes, s.Index)
	who := fmt.Sprintf("share %d (%s, from %s)", s.Index, s.Custodian, s.Source)
	st.collected = append(st.collected, who)
	r.j.Custodian(s.Index, s.Custodian).CardState = "collected"
	r.j.Save()
	r.audit(AuditEntry{Event: EventShareOffered, Share: s.Index, Custodian: s.Custodian, Source: s.Source})
	r.Prompter.Show(Screen{Title: fmt.Sprintf("%s's share is valid", s.Custodian), Lines: []string{
		fmt.Sprintf("That was %s: it is valid and belongs to this set.", who),
		fmt.Sprintf("%d of %d collected.", len(st.good), st.record.Threshold)}})
}

func (r *crun) shareFromCard(st *recoverState) (*shares.Share, error) {
	var names []string
	var who []Custodian
	for _, c := range st.record.Custodians {
		if c.Card != nil {
			names = append(names, fmt.Sprintf("%s (card %d)", c.Name, c.Card.Serial))
			who = append(who, c)
		}
	}
	if len(who) == 0 {
		return nil, errors.New("no custodian of this set holds a card")
	}
	i, err := r.Prompter.Select("Whose card is it?", names)
	if err != nil {
		return nil, err
	}
	c := who[i]
	r.Prompter.Show(Screen{Title: fmt.Sprintf("%s's card", c.Name), Lines: []string{
		fmt.Sprintf("%s, please put card %d in the reader; you will type your PIN.", c.Name, c.Card.Serial)}})
	card, err := r.openCard(c.Name, c.Card.Serial)
	if err != nil {
		return nil, err
	}
	defer card.Close()
	if err := checkCardHolder(card, st.record.SetID, c); err != nil {
		return nil, err
	}
	return LoadCardShare(card, st.record.SetID, pinAsker{r.Prompter, c.Name}, st.record.DealerKey)
}

// checkCardHolder refuses, before any PIN is asked, a card whose share of
// the set is another custodian's: set.json does not sign where each share
// is kept, so an edited card serial, or swapped cards, must not cost a
// custodian's PIN tries on someone else's card.
func checkCardHolder(card *smartcard.Card, setID shares.SetID, c Custodian) error {
	info, err := card.Info()
	if err != nil {
		return err
	}
	for _, sl := range info.Slots {
		if sl.Foreign || sl.SetID != setID || sl.Index == 0 || sl.Index == c.Index {
			continue
		}
		holder := sl.Custodian
		if holder == "" {
			holder = fmt.Sprintf("custodian %d", sl.Index)
		}
		return fmt.Errorf("card %d holds %s's share %d of this set, not %s's share %d: the cards were swapped, or set.json names the wrong card; no PIN was asked",
			info.Card.Serial, holder, sl.Index, c.Name, c.Index)
	}
	return nil
}

func (r *crun) shareFromFile(image bool) (*shares.Share, error) {
	q := "Path of the typed share file?"
	if image {
		q = "Path of the scan or photo (PNG or JPEG)?"
	}
	path, err := r.Prompter.Input(q, notEmpty)
	if err != nil {
		return nil, err
	}
	var errs []string
	for _, o := range ReadShareFiles([]string{path}) {
		if o.Err == nil {
			return o.Share, nil
		}
		errs = append(errs, o.Err.Error())
	}
	if len(errs) == 0 {
		return nil, fmt.Errorf("%s holds no share", path)
	}
	return nil, errors.New(strings.Join(errs, "; "))
}

// shareTyped reads a share typed line by line. What is typed shows on
// the screen, as the prompt says: the custodian must see it, and one
// share alone reveals nothing. A line the share's checks find mistyped
// is asked for again, alone: each line is checked as soon as it is typed,
// and the whole share once it is in (a missing line, a wrong length).
func (r *crun) shareTyped() (*shares.Share, error) {
	r.Prompter.Show(Screen{Title: "Typing a share", Lines: []string{
		"Type the numbered lines of the share as printed, number included (001: ABCDE …).",
		"What you type IS SHOWN on the screen, so you can see it; one share alone reveals nothing.",
		"Spaces and letter case do not matter. An empty line ends the share."}})
	var lines []string
	for n := 1; ; n++ {
		l, err := r.Prompter.Input(fmt.Sprintf("Share line %d (shown as you type; an empty line ends the share)", n), nil)
		if err != nil {
			return nil, err
		}
		if strings.TrimSpace(l) == "" {
			break
		}
		if _, err := shares.CheckTextLine(l); err != nil {
			var te *shares.TextError
			if !errors.As(err, &te) {
				return nil, err
			}
			title := "That line is wrong"
			if te.Line > 0 {
				title = fmt.Sprintf("Line %d is wrong", te.Line)
			}
			r.Prompter.Show(Screen{Title: title, Alarm: true, Lines: []string{
				"What is wrong: " + te.Reason + ".",
				"Type the same line again; the lines before it are kept."}})
			n--
			continue
		}
		lines = append(lines, l)
	}
	for {
		s, err := shares.ParseText(strings.Join(lines, "\n"), "typed share")
		var te *shares.TextError
		if err == nil || !errors.As(err, &te) || te.Line < 1 {
			return s, err
		}
		r.Prompter.Show(Screen{Title: fmt.Sprintf("Line %d of the typed share is wrong", te.Line), Alarm: true, Lines: []string{
			"What is wrong: " + te.Reason + ".",
			fmt.Sprintf("Only line %d is typed again; the other lines are kept.", te.Line)}})
		l, ierr := r.Prompter.Input(fmt.Sprintf("Share line %d again (shown as you type; an empty line gives up this share)", te.Line), nil)
		if ierr != nil {
			return nil, ierr
		}
		if strings.TrimSpace(l) == "" {
			return nil, err
		}
		lines = retype(lines, te.Line, l)
	}
}

// retype puts line in place of every typed line numbered n, or adds it
// when none is.
func retype(lines []string, n int, line string) []string {
	var out []string
	placed := false
	for _, l := range lines {
		if typedLineNumber(l) != n {
			out = append(out, l)
		} else if !placed {
			out, placed = append(out, line), true
		}
	}
	if !placed {
		out = append(out, line)
	}
	return out
}

// typedLineNumber reads the number a typed share line starts with
// ("007:"), or 0.
func typedLineNumber(l string) int {
	num, _, ok := strings.Cut(strings.TrimSpace(l), ":")
	num = strings.TrimSpace(num)
	if !ok || len(num) != 3 {
		return 0
	}
	n, err := strconv.Atoi(num)
	if err != nil {
		return 0
	}
	return n
}

// stepRebuild rebuilds the key, proves it against set.json and places it
// (or, in a drill, discards it). A sealed secret is decrypted and proven
// here without being written anywhere; a bundle bound for an HSM has its
// keys collected, each proven against the manifest.
func (r *crun) stepRebuild(st *recoverState) error {
	if err := r.begin("rebuild", Screen{Title: "Step: rebuilding the key", Lines: []string{
		"custos combines the shares and compares the key's check value with set.json."}}); err != nil {
		return err
	}
	var offered []Offered
	for _, s := range st.good {
		offered = append(offered, Offered{Share: s, Source: s.Source})
	}
	if h, ok := st.target.(*HSMTarget); ok && st.record.Kind == shares.KindBundle {
		b, err := h.bundleKeys(st.record)
		if err != nil {
			return err
		}
		st.bundle = b
		r.hold(st.bundle.Wipe)
	}
	rb, err := r.rebuild(st, offered)
	if err != nil {
		return fmt.Errorf("rebuilding the key: %w", err)
	}
	st.outcome.Checks, st.outcome.Collected = rb.Checks, st.collected
	r.audit(AuditEntry{Event: EventCheckCompared, Checks: rb.Checks, Detail: "matches set.json"})
	lines := []string{"Check value: " + checksText(rb.Checks),
		"It matches the check value in set.json (and on the witnesses' notes)."}
	if st.sealed != "" {
		lines = append(lines, "The sealed file was decrypted and proven in memory; nothing of it was written.")
	}
	if st.bundle != nil {
		lines = append(lines, bundleWords(st.bundle)...)
	}
	r.Prompter.Show(Screen{Title: "The key is rebuilt and proven", Lines: lines})
	if err := r.done("rebuild", checksText(rb.Checks)); err != nil {
		return err
	}
	if st.target == nil {
		return r.endDrill(st)
	}
	return r.export(st, rb)
}

// rebuild combines the shares and proves the secret: an inline one in
// memory, a sealed one streamed through (into the bundle's key collector
// when its keys go to an HSM, else nowhere).
func (r *crun) rebuild(st *recoverState, offered []Offered) (*Recovery, error) {
	var out io.Writer = io.Discard
	if st.bundle != nil && st.sealed != "" {
		out = st.bundle
	}
	var said []string
	rb, err := Rebuild(r.ctx, RecoverRequest{Offered: offered, Record: st.record, Sealed: st.sealed, Out: out},
		Reporter{Info: collect(&said), Warn: collect(&said)})
	if st.bundle != nil && st.sealed != "" {
		if derr := st.bundle.Done(); err == nil {
			err = derr
		}
	}
	if err != nil {
		return nil, err
	}
	r.hold(rb.Wipe)
	if st.bundle != nil && rb.Secret != nil {
		if err := st.bundle.Read(bytes.NewReader(rb.Secret.Bytes)); err != nil {
			return nil, fmt.Errorf("reading the bundle's keys: %w", err)
		}
	}
	if st.bundle != nil && len(st.bundle.Keys) == 0 {
		return nil, fmt.Errorf("set %s's bundle holds no key an HSM takes", st.record.SetID.Short())
	}
	return rb, nil
}

// bundleWords says which of a bundle's entries go to the HSM.
func bundleWords(b *BundleKeys) []string {
	lines := []string{fmt.Sprintf("The bundle holds %d keys for the HSM, each proven against its manifest entry.", len(b.Keys))}
	for _, s := range b.Skipped {
		lines = append(lines, "Not for the HSM (recover the bundle to a file for it): "+s)
	}
	return lines
}

func (r *crun) export(st *recoverState, rb *Recovery) error {
	if err := r.begin("export", Screen{Title: "Step: placing the key", Lines: []string{
		"The key goes to " + st.target.String() + "."}}); err != nil {
		return err
	}
	if err := r.confirm("Place the key in " + st.target.String() + "?"); err != nil {
		return err
	}
	if err := r.done("exporting", auditName(st.target)); err != nil {
		return err
	}
	proof, err := r.place(st, rb)
	if err != nil {
		return err
	}
	r.forget()
	st.outcome.Placed = proof
	r.j.Exported = proof
	r.audit(AuditEntry{Event: EventKeyExported, Checks: st.outcome.Checks, Source: auditName(st.target), Detail: "placed and proven"})
	r.Prompter.Show(Screen{Title: "The key is in place", Lines: []string{proof,
		"The copy in this computer's memory is erased."}})
	return r.done("export", auditName(st.target)+": placed and proven")
}

// place puts the rebuilt secret in the target: a bundle's keys into an
// HSM, a sealed secret streamed into a new file, else the key itself.
func (r *crun) place(st *recoverState, rb *Recovery) (string, error) {
	switch t := st.target.(type) {
	case *HSMTarget:
		if st.bundle != nil {
			return t.PlaceKeys(r.ctx, st.bundle.Keys)
		}
	case *FileTarget:
		if rb.Secret == nil {
			return t.PlaceStream(r.ctx, rb.WriteSealed)
		}
	}
	if rb.Secret == nil {
		return "", fmt.Errorf("%v cannot take a sealed secret", st.target)
	}
	return st.target.Place(r.ctx, rb.Secret.Bytes, st.record)
}

// hsmPIN asks the room for a token's user PIN, saying when one more
// wrong PIN locks it.
func (r *crun) hsmPIN(t hsm.TokenInfo) ([]byte, error) {
	if t.PINFinalTry {
		r.Prompter.Show(Screen{Title: "Last HSM PIN try", Alarm: true, Lines: []string{
			fmt.Sprintf("%v has ONE PIN try left: a wrong PIN now locks it.", t)}})
	}
	return r.Prompter.Secret(fmt.Sprintf("Type the user PIN of %v (it is not shown)", t))
}

// auditName names a target in the audit log without its directory, which
// may hold long machine-made names the log takes for key material.
func auditName(t Target) string {
	if f, ok := t.(*FileTarget); ok {
		return "file " + filepath.Base(f.Path)
	}
	return t.String()
}

// endDrill discards the key and records the drill in set.json.
func (r *crun) endDrill(st *recoverState) error {
	if err := r.begin("discard", Screen{}); err != nil {
		return err
	}
	r.forget()
	now := r.now()
	st.record.LastDrill = &now
	for _, i := range st.indexes {
		if c := st.record.Custodian(i); c != nil {
			c.LastDrill = &now
		}
	}
	if err := st.record.Save(st.rp.Record); err != nil {
		return err
	}
	r.audit(AuditEntry{Event: EventDrillRecorded, Checks: st.outcome.Checks, Detail: AuditText("set drill: "+strings.Join(st.collected, ", "), MaxDetail)})
	r.Prompter.Show(Screen{Title: "Drill complete", Lines: []string{
		"The rebuilt key was erased; nothing was placed anywhere.",
		"The drill is recorded in set.json and the audit log."}})
	return r.done("discard", "key discarded; drill recorded")
}

// describe says where a recovery stands, for a stop. The shares in
// memory are erased before it is called, so it counts what was collected
// by index.
func (st *recoverState) describe() []string {
	n := len(st.indexes)
	what := fmt.Sprintf("%d of the %d shares needed had been collected", n, st.record.Threshold)
	if n > 0 {
		what += "; they were erased from memory"
	}
	out := []string{what}
	if st.target != nil {
		if st.outcome.Placed != "" {
			out = append(out, "the key was placed: "+st.outcome.Placed)
		} else {
			out = append(out, "the key was not placed in "+st.target.String())
		}
	}
	return append(out, "no card was changed; the set record is unchanged")
}
