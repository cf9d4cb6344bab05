package ceremony

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"custos/printer"
	"custos/shares"
)

// SplitOutcome is what a finished split ceremony leaves.
type SplitOutcome struct {
	Record     *SetRecord
	Dir        string
	Transcript string
	Resumed    bool // an interrupted run was finished without the secret
}

// Split runs the split ceremony of a plan, asking the room for what the
// plan leaves out: air-gap check, master key, check value for the
// witnesses, each custodian's card and paper written and read back, every
// quorum proven, the key destroyed, set.json and the transcript written.
// It returns a *StoppedError when it does not finish.
func Split(ctx context.Context, plan *Plan, opt Options) (*SplitOutcome, error) {
	r := newRun(ctx, "split", opt)
	out, err := r.split(plan)
	if err != nil {
		return nil, r.stop(err)
	}
	if err := r.finish(); err != nil {
		return nil, err
	}
	lines := []string{fmt.Sprintf("Set %s (%q) is split %d of %d.", out.Record.SetID.Short(), out.Record.Label,
		out.Record.Threshold, out.Record.Count)}
	lines = append(lines, keyLeftWords(plan.Key)...)
	lines = append(lines, "Set record: "+filepath.Join(out.Dir, RecordFile),
		"Transcript: "+out.Transcript+" (print it; everyone present signs it)")
	r.Prompter.Show(Screen{Title: "The split is complete", Lines: lines})
	return out, nil
}

// keyLeftWords says where the master key still exists once the split is
// done: only in the shares when custos generated it; also in its source
// file when it was read from one, which custos does not delete.
func keyLeftWords(k KeySource) []string {
	if k.Generate {
		return []string{"The master key no longer exists anywhere but in the shares."}
	}
	return []string{
		"The master key was read from " + k.File + ", and that file STILL EXISTS.",
		"Destroy it as your organisation's procedure says: custos does not delete it.",
		"Until it is destroyed, the key exists outside the shares.",
	}
}

// splitState is the split in progress.
type splitState struct {
	plan     *Plan
	prev     *Journal       // an abandoned attempt, or nil
	replace  []shares.SetID // sets of abandoned attempts, overwritable
	secret   []byte
	dealt    *shares.Dealt
	record   *SetRecord
	readBack []*shares.Share
	airgap   *AirGap
}

func (r *crun) split(plan *Plan) (*SplitOutcome, error) {
	plan, err := AskPlan(r.Prompter, plan)
	if err != nil {
		return nil, err
	}
	st := &splitState{plan: plan}
	if err := os.MkdirAll(plan.OutDir, 0o755); err != nil {
		return nil, fmt.Errorf("creating output directory: %w", err)
	}
	r.state = st.describe
	done, err := r.openSplitJournal(st)
	if err != nil || done {
		return r.finishSplit(st, err)
	}
	if err := r.splitSteps(st); err != nil {
		return nil, err
	}
	return r.finishSplit(st, nil)
}

// openSplitJournal finds an earlier attempt in the output directory. It
// returns true when that attempt got every share out, so only the record
// and transcript remain.
func (r *crun) openSplitJournal(st *splitState) (bool, error) {
	path := JournalFile(st.plan.OutDir, "split")
	prev, err := OpenJournal(path)
	if err != nil {
		return false, err
	}
	switch {
	case prev == nil:
		if err := refuseExisting(filepath.Join(st.plan.OutDir, RecordFile)); err != nil {
			return false, err
		}
		r.j = NewJournal(path, "split", 1, r.now())
		return false, r.j.Save()
	case prev.Done:
		return false, fmt.Errorf("a split already finished in %s (set %s); choose another output directory", st.plan.OutDir, prev.SetID)
	case prev.Record != nil:
		r.j, r.setID, st.record = prev, prev.Record.SetID, prev.Record
		r.Prompter.Show(Screen{Title: "Finishing an interrupted split", Lines: []string{
			fmt.Sprintf("An earlier run got every share of set %s out and proven, then stopped.", prev.SetID),
			"Nothing is written to any card or paper again: only the set record and",
			"the transcript remain to be written.",
		}})
		return true, nil
	}
	return false, r.abandon(st, prev, path)
}

// abandon explains that an interrupted split must start again from the key
// source, removes that attempt's paper and lets its card shares be
// replaced.
func (r *crun) abandon(st *splitState, prev *Journal, path string) error {
	r.Prompter.Show(Screen{Title: "Starting an interrupted split again", Alarm: true,
		Lines: abandonWords(prev, st.plan.Key)})
	if err := r.confirm("Start the split again with a new set?"); err != nil {
		return err
	}
	for _, c := range prev.Custodians {
		for _, f := range c.Paper {
			if err := removeIfThere(filepath.Join(st.plan.OutDir, f)); err != nil {
				return err
			}
		}
	}
	st.prev = prev
	for _, id := range append(prev.abandonedSets(), prev.SetID) {
		var s shares.SetID
		if s.UnmarshalText([]byte(id)) == nil {
			st.replace = append(st.replace, s)
		}
	}
	r.j = NewJournal(path, "split", prev.Attempt+1, r.now())
	r.j.Abandoned = append(prev.abandonedSets(), prev.SetID)
	return r.j.Save()
}

// abandonWords tells the room what an interrupted split left and what
// this run does about it.
func abandonWords(prev *Journal, key KeySource) []string {
	var left []string
	for _, c := range prev.Custodians {
		if c.Card != 0 && c.CardState != "" {
			left = append(left, fmt.Sprintf("  - %s's card %d holds a share of the abandoned set: it will be overwritten", c.Name, c.Card))
		}
		for _, f := range c.Paper {
			left = append(left, fmt.Sprintf("  - %s: paper file %s will be deleted (shred any printout of it)", c.Name, f))
		}
	}
	if prev.SetID == "" {
		lines := []string{fmt.Sprintf("An earlier run of this split stopped during: %s,", stepWords(prevStop(prev))),
			"before any master key or share was made. This run starts from the beginning:",
			"  " + keyWords(key)}
		if len(left) == 0 {
			return append(lines, "The earlier run left nothing behind: no card or paper was written.")
		}
		return append(append(lines, "What the earlier run left:"), left...)
	}
	lines := []string{
		fmt.Sprintf("An earlier run of this split (set %s) stopped during: %s,", prev.SetID, stepWords(prevStop(prev))),
		"before every share was out. Its master key only ever lived in memory, so",
		"that set can never be finished. This run starts again from the key source:",
		"  " + keyWords(key),
		"and makes a new set.",
	}
	if len(left) == 0 {
		return append(lines, "No card or paper share of the abandoned set was written yet.")
	}
	return append(append(lines, "What the earlier run left:"), left...)
}

func prevStop(j *Journal) string {
	if j.Stopped != nil {
		return j.Stopped.Name
	}
	return "an unrecorded step (the process was killed)"
}

func keyWords(k KeySource) string {
	if k.Generate {
		return "a NEW AES-256 key is generated; the earlier one is gone for good"
	}
	return "the key is read from " + k.File
}

func removeIfThere(path string) error {
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("removing %s: %w", path, err)
	}
	return nil
}

// splitSteps runs the split proper, up to the destroyed secret.
func (r *crun) splitSteps(st *splitState) error {
	steps := []func(*splitState) error{r.stepAirGap, r.stepKey, r.stepCheckValue,
		r.stepCustodians, r.stepQuorums, r.stepDestroy}
	for _, step := range steps {
		if err := step(st); err != nil {
			return err
		}
	}
	return nil
}

func (r *crun) stepAirGap(st *splitState) error {
	if err := r.begin("air-gap", Screen{Title: "Step: air-gap check", Lines: []string{
		"custos checks that this computer has no network connection."}}); err != nil {
		return err
	}
	ag, err := CheckAirGap(r.Interfaces, r.AllowNetwork)
	if err != nil {
		var up *NetworkUpError
		if errors.As(err, &up) {
			r.audit(AuditEntry{Event: EventAirGap, Outcome: OutcomeRefused, Detail: AuditText(err.Error(), MaxDetail)})
			return fmt.Errorf("%w; unplug the network (or pass --allow-network, which is recorded)", err)
		}
		return err
	}
	st.airgap = ag
	if ag.Allowed {
		r.Prompter.Show(Screen{Title: "NETWORK IS UP", Alarm: true, Lines: []string{
			ag.String(), "This is recorded in the audit log and the transcript."}})
	}
	r.audit(AuditEntry{Event: EventAirGap, Detail: AuditText(ag.String(), MaxDetail)})
	return r.done("air-gap", ag.String())
}

func (r *crun) stepKey(st *splitState) error {
	if err := r.begin("key", Screen{Title: "Step: the master key", Lines: []string{
		keyWords(st.plan.Key) + ".",
		"It stays in this computer's memory only until every share is proven."}}); err != nil {
		return err
	}
	if err := r.confirm("Ready to make the master key?"); err != nil {
		return err
	}
	secret, kind, err := readKey(st.plan.Key)
	if err != nil {
		return err
	}
	st.secret = secret
	r.hold(func() { clear(secret) })
	d, err := shares.Split(secret, shares.Policy{Threshold: st.plan.Threshold,
		Count: len(st.plan.Custodians), Custodians: st.plan.names(), Label: st.plan.Label, Kind: kind})
	if err != nil {
		return fmt.Errorf("splitting the key: %w", err)
	}
	st.dealt, st.record = d, NewRecord(d)
	r.hold(d.Wipe)
	r.setID = d.SetID()
	r.j.SetID = d.SetID().String()
	return r.done("key", fmt.Sprintf("%s key, set %s", st.record.Algorithm, d.SetID()))
}

// readKey generates an AES-256 key or reads the key file.
func readKey(k KeySource) ([]byte, shares.Kind, error) {
	if k.Generate {
		b := make([]byte, 32)
		if _, err := io.ReadFull(rand.Reader, b); err != nil {
			return nil, 0, fmt.Errorf("generating the key: %w", err)
		}
		return b, shares.KindAES, nil
	}
	f, err := os.Open(k.File)
	if err != nil {
		return nil, 0, fmt.Errorf("reading key file: %w", err)
	}
	defer f.Close()
	b := make([]byte, shares.InlineLimit+1)
	n, err := io.ReadFull(f, b)
	if err != nil && err != io.ErrUnexpectedEOF {
		clear(b)
		return nil, 0, fmt.Errorf("reading key file %s: %w", k.File, err)
	}
	if n > shares.InlineLimit || n == 0 {
		clear(b)
		// TODO: large secrets need the sealed file of SplitFiles; the
		// ceremony handles master keys, which are small.
		return nil, 0, fmt.Errorf("key file %s: a ceremony splits keys of 1 to %d bytes", k.File, shares.InlineLimit)
	}
	return b[:n], k.Kind, nil
}

func (pl *Plan) names() []string {
	var n []string
	for _, c := range pl.Custodians {
		n = append(n, c.Name)
	}
	return n
}

func (r *crun) stepCheckValue(st *splitState) error {
	lines := []string{"This is the key's check value. It identifies the key without revealing it.",
		"Every witness writes it down now; every recovery must show the same.", ""}
	for _, c := range st.record.Checks {
		lines = append(lines, "    "+c.String())
	}
	if len(st.plan.Witnesses) > 0 {
		lines = append(lines, "", "Witnesses: "+strings.Join(st.plan.Witnesses, ", "))
	}
	if err := r.begin("check-value", Screen{Title: "Step: write down the check value", Lines: lines}); err != nil {
		return err
	}
	if err := r.confirm("Have the witnesses written down the check value?"); err != nil {
		return err
	}
	return r.done("check-value", checksText(st.record.Checks))
}

func checksText(c []shares.CheckValue) string {
	var s []string
	for _, v := range c {
		s = append(s, v.String())
	}
	return strings.Join(s, ", ")
}

// stepCustodians gives each custodian their share in turn.
func (r *crun) stepCustodians(st *splitState) error {
	for i, c := range st.plan.Custodians {
		s := st.dealt.Shares[i]
		if c.Card {
			if err := r.stepCard(st, c, s); err != nil {
				return err
			}
		}
		if c.Paper {
			if err := r.stepPaper(st, c, s); err != nil {
				return err
			}
		}
	}
	return nil
}

func (r *crun) stepCard(st *splitState, c PlanCustodian, s *shares.Share) error {
	step := fmt.Sprintf("card %d", s.Index)
	if err := r.begin(step, Screen{Title: fmt.Sprintf("Step: %s's card (share %d of %d)", c.Name, s.Index, s.Count), Lines: []string{
		fmt.Sprintf("%s, please put your card %d in the reader.", c.Name, c.Serial),
		"custos writes your share to it and reads it back; you will type your PIN.",
		"Only you should look at the keyboard while you type it."}}); err != nil {
		return err
	}
	if err := r.confirm(fmt.Sprintf("Is %s's card %d in the reader?", c.Name, c.Serial)); err != nil {
		return err
	}
	jc := r.j.Custodian(s.Index, c.Name)
	jc.Card, jc.CardState = c.Serial, "writing"
	if err := r.j.Save(); err != nil {
		return err
	}
	got, ref, err := r.storeOnCard(c, s, st.dealt, st.replace)
	if err != nil {
		return fmt.Errorf("writing share %d to %s's card %d: %w", s.Index, c.Name, c.Serial, worded{cardWords(err), err})
	}
	jc.CardState = "written"
	cust := st.record.Custodian(s.Index)
	cust.Media, cust.Card = append(cust.Media, "card"), ref
	st.readBack = append(st.readBack, got)
	r.audit(AuditEntry{Event: EventShareStored, Share: s.Index, Custodian: c.Name,
		Card: c.Serial, Slot: ref.Slot, Media: "card"})
	r.Prompter.Show(Screen{Title: fmt.Sprintf("%s's card is done", c.Name), Lines: []string{
		fmt.Sprintf("Share %d was written to card %d (slot %s) and read back: identical.", s.Index, c.Serial, ref.Slot),
		fmt.Sprintf("%s may take the card out of the reader.", c.Name)}})
	return r.done(step, fmt.Sprintf("share %d on card %d slot %s, read back", s.Index, c.Serial, ref.Slot))
}

func (r *crun) stepPaper(st *splitState, c PlanCustodian, s *shares.Share) error {
	step := fmt.Sprintf("paper %d", s.Index)
	if err := r.begin(step, Screen{Title: fmt.Sprintf("Step: %s's paper share (share %d of %d)", c.Name, s.Index, s.Count), Lines: []string{
		"custos writes the share page (PDF) and its typed form, then reads both back."}}); err != nil {
		return err
	}
	base := ShareFileBase(s.Index, s.Custodian)
	jc := r.j.Custodian(s.Index, c.Name)
	jc.Paper = []string{base + ".pdf", base + ".txt"}
	if err := r.j.Save(); err != nil { // before writing: a rerun removes them
		return err
	}
	var said []string
	rep := Reporter{Info: collect(&said), Warn: collect(&said)}
	req := SplitRequest{Paper: st.plan.paper(), OutDir: st.plan.OutDir}
	got, files, err := writePaper(r.ctx, req, s, st.dealt, &outputs{keep: true}, rep)
	if err != nil {
		return fmt.Errorf("printing share %d for %s: %w", s.Index, c.Name, err)
	}
	cust := st.record.Custodian(s.Index)
	cust.Media, cust.Files = append(cust.Media, "paper"), files
	st.readBack = append(st.readBack, got...)
	r.audit(AuditEntry{Event: EventShareWritten, Share: s.Index, Custodian: c.Name,
		Media: "paper", Source: files[0]})
	r.Prompter.Show(Screen{Title: fmt.Sprintf("%s's paper share is ready", c.Name), Lines: append(said,
		fmt.Sprintf("Print %s now and hand it to %s; then delete the file.", files[0], c.Name))})
	return r.done(step, "share written to "+strings.Join(files, ", ")+" and read back")
}

func collect(lines *[]string) func(string, ...any) {
	return func(f string, a ...any) { *lines = append(*lines, fmt.Sprintf(f, a...)) }
}

func (pl *Plan) paper() printer.Paper {
	if pl.Paper == 0 {
		return printer.A4
	}
	return pl.Paper
}

func (r *crun) stepQuorums(st *splitState) error {
	if err := r.begin("quorums", Screen{Title: "Step: proving every quorum", Lines: []string{
		fmt.Sprintf("custos rebuilds the key from every group of %d shares, as read back from", st.plan.Threshold),
		"the cards and papers, and checks each gives the same key."}}); err != nil {
		return err
	}
	var said []string
	if err := proveQuorums(st.dealt, st.readBack, st.secret, st.plan.OutDir, Reporter{Info: collect(&said)}); err != nil {
		return err
	}
	r.audit(AuditEntry{Event: EventQuorumProven, Checks: st.record.Checks, Detail: AuditText(strings.Join(said, "; "), MaxDetail)})
	r.Prompter.Show(Screen{Title: "Every quorum rebuilds the key", Lines: said})
	return r.done("quorums", strings.Join(said, "; "))
}

func (r *crun) stepDestroy(st *splitState) error {
	if err := r.begin("destroy", Screen{}); err != nil {
		return err
	}
	r.forget()
	st.secret, st.dealt = nil, nil
	r.j.Record = st.record
	r.audit(AuditEntry{Event: EventSecretErased, Detail: "master key and dealer key erased from memory"})
	lines := []string{"The master key and the dealer's signing key are erased from memory."}
	if st.plan.Key.Generate {
		lines = append(lines, "From now on only a quorum of custodians can rebuild the key.")
	} else {
		lines = append(lines, "The source file "+st.plan.Key.File+" still holds the key: custos does not delete it.")
	}
	r.Prompter.Show(Screen{Title: "Step: the master key is erased from memory", Lines: lines})
	return r.done("destroy", "master key and dealer key erased from memory")
}

// finishSplit writes set.json and the transcript, from the journal when an
// earlier run got every share out.
func (r *crun) finishSplit(st *splitState, err error) (*SplitOutcome, error) {
	if err != nil {
		return nil, err
	}
	rec := st.record
	dir := st.plan.OutDir
	if !r.j.Has("record") {
		if err := r.begin("record", Screen{Title: "Step: the set record", Lines: []string{
			"custos writes set.json: the public record of this set (no secret in it)."}}); err != nil {
			return nil, err
		}
		if err := writeRecordOnce(filepath.Join(dir, RecordFile), rec); err != nil {
			return nil, err
		}
		r.audit(AuditEntry{Event: EventRecordWritten, Source: RecordFile, Checks: rec.Checks})
		if err := r.done("record", RecordFile); err != nil {
			return nil, err
		}
	}
	if err := r.begin("transcript", Screen{}); err != nil {
		return nil, err
	}
	path, err := r.writeTranscript(dir, st, rec)
	if err != nil {
		return nil, err
	}
	if err := r.done("transcript", filepath.Base(path)); err != nil {
		return nil, err
	}
	return &SplitOutcome{Record: rec, Dir: dir, Transcript: path, Resumed: st.prev == nil && st.dealt == nil}, nil
}

// writeRecordOnce creates set.json, or accepts one an interrupted run
// already wrote for the same set.
func writeRecordOnce(path string, rec *SetRecord) error {
	err := rec.Create(path)
	var exists *ExistsError
	if !errors.As(err, &exists) {
		return err
	}
	old, rerr := ReadRecord(path)
	if rerr != nil || old.SetID != rec.SetID {
		return err
	}
	return rec.Save(path)
}

// describe says where every custodian's share stands, for a stop.
func (st *splitState) describe() []string {
	if st.record == nil {
		return []string{"no share was made yet; no card or file was touched"}
	}
	var out []string
	if st.dealt == nil && st.secret == nil {
		out = append(out, "every share is out and proven; running the split again only writes the record and transcript")
	}
	for _, c := range st.record.Custodians {
		out = append(out, st.custodianState(c))
	}
	return out
}

func (st *splitState) custodianState(c Custodian) string {
	var parts []string
	if c.Card != nil {
		parts = append(parts, fmt.Sprintf("card %d holds share %d, verified", c.Card.Serial, c.Index))
	}
	if len(c.Files) > 0 {
		parts = append(parts, "paper "+strings.Join(c.Files, ", ")+" written and verified")
	}
	if len(parts) == 0 {
		parts = append(parts, "nothing written yet")
	}
	return fmt.Sprintf("%s (share %d): %s", c.Name, c.Index, strings.Join(parts, "; "))
}
