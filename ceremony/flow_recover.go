package ceremony

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"custos/hsm"
	"custos/shares"
)

// RecoveryPlan says which set to rebuild and where the key goes.
type RecoveryPlan struct {
	Record string // path of the set's set.json
	// Target is "file:PATH" or a pkcs11: URI; empty for a drill.
	Target string
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
		return NewHSMTarget(s)
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

// Recover runs the recovery ceremony: shares are collected one custodian
// at a time, the key is rebuilt and compared with set.json, and placed in
// the target with its proof.
func Recover(ctx context.Context, rp RecoveryPlan, opt Options) (*RecoveryOutcome, error) {
	if rp.Target == "" {
		return nil, errors.New("a recovery needs a target (file:PATH or a pkcs11: URI); a drill needs none")
	}
	return recoverRun(ctx, rp, opt, "recover")
}

// Drill runs the recovery ceremony without placing the key anywhere: the
// shares are collected, the key rebuilt and proven, then discarded. The
// drill is recorded in set.json and the audit log.
func Drill(ctx context.Context, recordPath string, opt Options) (*RecoveryOutcome, error) {
	return recoverRun(ctx, RecoveryPlan{Record: recordPath}, opt, "drill")
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
	good      []*shares.Share
	collected []string
	indexes   []int // of the shares collected
	outcome   *RecoveryOutcome
}

func (r *crun) recover(rp RecoveryPlan) (*RecoveryOutcome, error) {
	st := &recoverState{rp: rp}
	rec, err := ReadRecord(rp.Record)
	if err != nil {
		return nil, err
	}
	st.record, r.setID = rec, rec.SetID
	st.outcome = &RecoveryOutcome{Record: rec}
	if rp.Target != "" {
		if st.target, err = ParseTarget(rp.Target); err != nil {
			return nil, err
		}
		if h, ok := st.target.(*HSMTarget); ok && h.Prompt == nil {
			h.Prompt = r.hsmPIN
		}
	}
	r.state = st.describe
	placed, err := r.openRecoverJournal(st)
	if err != nil || placed {
		return st.outcome, err
	}
	steps := []func(*recoverState) error{r.recoverAirGap, r.stepCollect, r.stepRebuild, r.recoverTranscript}
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
	lines := []string{fmt.Sprintf("An earlier %s of set %s stopped during: %s.", r.name, prev.SetID, stepWords(prevStop(prev))),
		"Shares are never kept on disk, so every custodian gives theirs again."}
	if prev.Has("exporting") && st.target != nil {
		lines = append(lines, "The key it was writing to "+st.target.String()+" is removed first.")
		if err := st.target.Undo(); err != nil {
			return err
		}
	}
	r.Prompter.Show(Screen{Title: "Starting an interrupted " + r.name + " again", Alarm: true, Lines: lines})
	return nil
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

func (r *crun) reject(err error) {
	r.audit(AuditEntry{Event: EventShareRejected, Outcome: OutcomeRefused, Detail: AuditText(err.Error(), MaxDetail)})
	r.Prompter.Show(Screen{Title: "That share cannot be used", Alarm: true, Lines: []string{
		"What is wrong: " + cardWords(err),
		"The ceremony goes on: the next custodian may come forward."}})
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
	return LoadCardShare(card, st.record.SetID, pinAsker{r.Prompter, c.Name}, st.record.DealerKey)
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

func (r *crun) shareTyped() (*shares.Share, error) {
	var lines []string
	for n := 1; ; n++ {
		l, err := r.Prompter.Input(fmt.Sprintf("Share line %d (an empty line ends the share)", n), nil)
		if err != nil {
			return nil, err
		}
		if strings.TrimSpace(l) == "" {
			break
		}
		lines = append(lines, l)
	}
	return shares.ParseText(strings.Join(lines, "\n"), "typed share")
}

// stepRebuild rebuilds the key, proves it against set.json and places it
// (or, in a drill, discards it).
func (r *crun) stepRebuild(st *recoverState) error {
	if err := r.begin("rebuild", Screen{Title: "Step: rebuilding the key", Lines: []string{
		"custos combines the shares and compares the key's check value with set.json."}}); err != nil {
		return err
	}
	var offered []Offered
	for _, s := range st.good {
		offered = append(offered, Offered{Share: s, Source: s.Source})
	}
	var said []string
	rb, err := Rebuild(r.ctx, RecoverRequest{Offered: offered, Record: st.record}, Reporter{Info: collect(&said), Warn: collect(&said)})
	if err != nil {
		return fmt.Errorf("rebuilding the key: %w", err)
	}
	r.hold(rb.Wipe)
	st.outcome.Checks, st.outcome.Collected = rb.Checks, st.collected
	r.audit(AuditEntry{Event: EventCheckCompared, Checks: rb.Checks, Detail: "matches set.json"})
	r.Prompter.Show(Screen{Title: "The key is rebuilt and proven", Lines: []string{
		"Check value: " + checksText(rb.Checks),
		"It matches the check value in set.json (and on the witnesses' notes)."}})
	if err := r.done("rebuild", checksText(rb.Checks)); err != nil {
		return err
	}
	if st.target == nil {
		return r.endDrill(st)
	}
	return r.export(st, rb)
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
	proof, err := st.target.Place(r.ctx, rb.Secret.Bytes, st.record)
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

// describe says where a recovery stands, for a stop.
func (st *recoverState) describe() []string {
	out := []string{fmt.Sprintf("%d of %d shares had been collected; they were erased from memory", len(st.good), st.record.Threshold)}
	if st.target != nil {
		if st.outcome.Placed != "" {
			out = append(out, "the key was placed: "+st.outcome.Placed)
		} else {
			out = append(out, "the key was not placed in "+st.target.String())
		}
	}
	return append(out, "no card was changed; the set record is unchanged")
}
