package ceremony

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"custos/shares"
)

var statusNow = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func daysAgo(n int) *time.Time {
	t := statusNow.Add(-time.Duration(n) * 24 * time.Hour)
	return &t
}

// saveRecord splits a fresh key 2 of 3 and saves its record at path after
// change.
func saveRecord(t *testing.T, path, label string, change func(*SetRecord)) *SetRecord {
	t.Helper()
	d, err := shares.Split(make([]byte, 32), shares.Policy{Threshold: 2,
		Count: 3, Kind: shares.KindAES, Label: label,
		Custodians: []string{"Ana", "Bo", "Chen"},
		Created:    statusNow.Add(-500 * 24 * time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	rec := NewRecord(d)
	d.Wipe()
	rec.Custodians[0].Media = []string{"paper", "card"}
	rec.Custodians[0].Card = &CardRef{Serial: 12345678, Slot: "82"}
	rec.Custodians[1].Media = []string{"paper"}
	rec.Custodians[2].Media = []string{"card"}
	rec.Custodians[2].Card = &CardRef{Serial: 87654321}
	if change != nil {
		change(rec)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := rec.Save(path); err != nil {
		t.Fatal(err)
	}
	return rec
}

func findSet(t *testing.T, rep *StatusReport, label string) SetStatus {
	t.Helper()
	for _, s := range rep.Sets {
		if s.Record.Label == label {
			return s
		}
	}
	t.Fatalf("set %q not in the report", label)
	return SetStatus{}
}

func TestInventory(t *testing.T) {
	root := t.TempDir()
	saveRecord(t, filepath.Join(root, "fresh", "set.json"), "fresh", nil)
	saveRecord(t, filepath.Join(root, "2025", "mixed", "set.json"), "mixed",
		func(r *SetRecord) {
			r.LastDrill = daysAgo(100)
			r.Custodians[0].LastDrill = daysAgo(100)
			r.Custodians[1].LastDrill = daysAgo(400)
		})
	saveRecord(t, filepath.Join(root, "old", "set.json"), "old",
		func(r *SetRecord) {
			r.LastDrill = daysAgo(400)
			for i := range r.Custodians {
				r.Custodians[i].LastDrill = daysAgo(400)
			}
		})
	saveRecord(t, filepath.Join(root, "future", "set.json"), "future",
		func(r *SetRecord) {
			r.LastDrill = daysAgo(-30)
			for i := range r.Custodians {
				r.Custodians[i].LastDrill = daysAgo(10)
			}
		})
	// Not records: a hidden directory and a file with another name.
	saveRecord(t, filepath.Join(root, ".git", "set.json"), "hidden", nil)
	saveRecord(t, filepath.Join(root, "old", "set.json.bak"), "backup", nil)
	os.MkdirAll(filepath.Join(root, "broken"), 0o755)
	os.WriteFile(filepath.Join(root, "broken", "set.json"), []byte("{"), 0o644)

	rep, err := Inventory(root, StatusOptions{Now: statusNow})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Sets) != 4 {
		t.Fatalf("%d sets, want 4", len(rep.Sets))
	}
	if len(rep.Unreadable) != 1 ||
		!strings.Contains(rep.Unreadable[0].Error(), filepath.Join("broken", "set.json")) {
		t.Errorf("unreadable: %v", rep.Unreadable)
	}

	fresh := findSet(t, rep, "fresh")
	if len(fresh.Warnings) != 1 ||
		!strings.Contains(fresh.Warnings[0], "never drilled, neither the whole set nor any custodian") {
		t.Errorf("fresh: %q", fresh.Warnings)
	}

	mixed := findSet(t, rep, "mixed")
	wantWarnings(t, mixed, "custodian 2 (Bo) was last drilled on 2025-01-25, 400 days ago (more than 365)",
		"custodian 3 (Chen) has never been drilled")
	if mixed.Current() != 1 || mixed.Drill.Overdue || days(mixed.Drill.Age) != 100 {
		t.Errorf("mixed: current %d, drill %+v", mixed.Current(), mixed.Drill)
	}

	old := findSet(t, rep, "old")
	wantWarnings(t, old, "the whole set was last drilled on 2025-01-25, 400 days ago",
		"custodian 1 (Ana) was last drilled", "custodian 2 (Bo) was last drilled",
		"custodian 3 (Chen) was last drilled")

	future := findSet(t, rep, "future")
	wantWarnings(t, future, "dated 2026-03-31, after today")

	// A shorter maximum age makes the 100-day drill overdue.
	rep, err = Inventory(root, StatusOptions{Now: statusNow,
		MaxDrillAge: 90 * 24 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	mixed = findSet(t, rep, "mixed")
	if !mixed.Drill.Overdue || !strings.Contains(strings.Join(mixed.Warnings, "\n"),
		"100 days ago (more than 90)") {
		t.Errorf("with 90 days: %q", mixed.Warnings)
	}
}

// wantWarnings checks that s has exactly the warnings containing want,
// each naming the set.
func wantWarnings(t *testing.T, s SetStatus, want ...string) {
	t.Helper()
	if len(s.Warnings) != len(want) {
		t.Errorf("%s: %d warnings %q, want %d", s.Record.Label,
			len(s.Warnings), s.Warnings, len(want))
		return
	}
	for i, w := range want {
		if !strings.Contains(s.Warnings[i], w) ||
			!strings.HasPrefix(s.Warnings[i], "set "+s.Record.SetID.Short()) {
			t.Errorf("%s: warning %q, want one about %q", s.Record.Label,
				s.Warnings[i], w)
		}
	}
}

func TestInventoryCopies(t *testing.T) {
	root := t.TempDir()
	rec := saveRecord(t, filepath.Join(root, "a", "set.json"), "copied",
		func(r *SetRecord) {
			r.LastDrill = daysAgo(1)
			for i := range r.Custodians {
				r.Custodians[i].LastDrill = daysAgo(1)
			}
		})
	os.MkdirAll(filepath.Join(root, "b"), 0o755)
	if err := rec.Save(filepath.Join(root, "b", "set.json")); err != nil {
		t.Fatal(err)
	}
	rep, err := Inventory(root, StatusOptions{Now: statusNow})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range rep.Sets {
		wantWarnings(t, s, "is recorded in 2 files")
	}
}

func TestInventoryRoots(t *testing.T) {
	root := t.TempDir()
	if _, err := Inventory(root, StatusOptions{}); !errors.Is(err, ErrNoRecords) {
		t.Errorf("empty directory: %v", err)
	}
	if _, err := Inventory(filepath.Join(root, "nope"), StatusOptions{}); err == nil ||
		!strings.Contains(err.Error(), "nope") {
		t.Errorf("missing directory: %v", err)
	}
	path := filepath.Join(root, "x", "set.json")
	saveRecord(t, path, "single", nil)
	rep, err := Inventory(path, StatusOptions{})
	if err != nil || len(rep.Sets) != 1 || rep.Sets[0].Path != path {
		t.Errorf("a record as root: %v %+v", err, rep)
	}
}

func TestCustodianWhere(t *testing.T) {
	rec := saveRecord(t, filepath.Join(t.TempDir(), "set.json"), "w", nil)
	for i, want := range []string{"paper, card 12345678 slot 82", "paper",
		"card 87654321"} {
		if got := rec.Custodians[i].Where(); got != want {
			t.Errorf("custodian %d: %q, want %q", i+1, got, want)
		}
	}
	if got := (&Custodian{}).Where(); got != "(no medium recorded)" {
		t.Errorf("no media: %q", got)
	}
}

// writeDrillLog writes an audit log of the given entries.
func writeDrillLog(t *testing.T, path string, entries ...AuditEntry) {
	t.Helper()
	l, err := OpenAudit(path, AuditOptions{Actor: "test"})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	for _, e := range entries {
		if e.Outcome == "" {
			e.Outcome = OutcomeOK
		}
		if _, err := l.Append(e); err != nil {
			t.Fatal(err)
		}
	}
}

// TestInventoryDrillsInAuditLog checks every drill set.json records
// against the audit log beside it: drills the log shows count, drills
// added by hand are named and do not.
func TestInventoryDrillsInAuditLog(t *testing.T) {
	root := t.TempDir()
	setDrill, bosDrill := *daysAgo(30), *daysAgo(10)
	drilled := func(r *SetRecord) {
		r.LastDrill = &setDrill
		r.Custodians[0].LastDrill = &setDrill
		r.Custodians[1].LastDrill = &bosDrill
		r.Custodians[2].LastDrill = &setDrill
	}
	path := filepath.Join(root, "p", RecordFile)
	rec := saveRecord(t, path, "payments", drilled)
	id := rec.SetID
	after := func(t time.Time, s int) time.Time { return t.Add(time.Duration(s) * time.Second) }
	// A set drill Ana and Chen gave their shares to, then Bo's own drill;
	// Bo's share offered at a drill of another set does not count.
	logPath := filepath.Join(root, "p", DefaultAuditFile)
	writeDrillLog(t, logPath,
		AuditEntry{Event: EventShareOffered, SetID: id, Share: 1, Time: after(setDrill, -60)},
		AuditEntry{Event: EventShareOffered, SetID: shares.SetID{9}, Share: 2, Time: after(setDrill, -50)},
		AuditEntry{Event: EventShareOffered, SetID: id, Share: 3, Time: after(setDrill, -40)},
		AuditEntry{Event: EventDrillRecorded, SetID: id, Time: after(setDrill, 1)},
		AuditEntry{Event: EventCeremonyFinished, Time: after(setDrill, 2)},
		AuditEntry{Event: EventDrillRecorded, SetID: id, Share: 2, Custodian: "Bo", Time: after(bosDrill, 1)},
	)

	rep, err := Inventory(root, StatusOptions{Now: statusNow})
	if err != nil {
		t.Fatal(err)
	}
	s := findSet(t, rep, "payments")
	wantWarnings(t, s)
	if s.AuditLog != logPath || s.Current() != 3 || s.Drill.Unlogged {
		t.Errorf("true drills: log %q, %d current, %+v", s.AuditLog, s.Current(), s.Drill)
	}

	// Edited by hand: Bo's drill moved, the set drill moved, and Chen's
	// copied from the set drill Chen did not give a share to.
	saveRecord(t, filepath.Join(root, "q", RecordFile), "edited", nil)
	edited := *rec
	fake := *daysAgo(5)
	edited.LastDrill = &fake
	edited.Custodians = append([]Custodian(nil), rec.Custodians...)
	edited.Custodians[1].LastDrill = &fake
	if err := edited.Save(path); err != nil {
		t.Fatal(err)
	}
	rep, err = Inventory(filepath.Join(root, "p"), StatusOptions{Now: statusNow})
	if err != nil {
		t.Fatal(err)
	}
	s = findSet(t, rep, "payments")
	wantWarnings(t, s, "says the whole set was drilled on "+day(fake)+", but the audit log "+logPath+" shows no such drill",
		"says custodian 2 (Bo) drilled on "+day(fake)+", but the audit log")
	if !s.Drill.Unlogged || !s.Custodians[1].Drill.Unlogged || s.Custodians[0].Drill.Unlogged || s.Current() != 2 {
		t.Errorf("edited drills: set %+v, custodians %+v", s.Drill, s.Custodians)
	}

	// Chen claims the set drill of another set's log entry: not shown.
	edited.Custodians[2].LastDrill = &bosDrill
	if err := edited.Save(path); err != nil {
		t.Fatal(err)
	}
	rep, err = Inventory(path, StatusOptions{Now: statusNow})
	if err != nil {
		t.Fatal(err)
	}
	if s = findSet(t, rep, "payments"); !s.Custodians[2].Drill.Unlogged {
		t.Errorf("Chen's borrowed drill counted: %+v", s.Custodians[2].Drill)
	}
}

// TestInventoryAuditOption: --audit names one log for every set; a log
// that cannot be read stops the report; a broken one is named.
func TestInventoryAuditOption(t *testing.T) {
	root := t.TempDir()
	when := *daysAgo(3)
	path := filepath.Join(root, "p", RecordFile)
	rec := saveRecord(t, path, "p", func(r *SetRecord) { r.Custodians[0].LastDrill = &when })
	elsewhere := filepath.Join(root, "logs", "audit.jsonl")
	os.MkdirAll(filepath.Dir(elsewhere), 0o755)
	writeDrillLog(t, elsewhere, AuditEntry{Event: EventDrillRecorded, SetID: rec.SetID, Share: 1, Time: when})

	// Without the option no log is found: the drill is as set.json says.
	rep, err := Inventory(root, StatusOptions{Now: statusNow})
	if err != nil {
		t.Fatal(err)
	}
	if s := findSet(t, rep, "p"); s.AuditLog != "" || s.Custodians[0].Drill.Unlogged {
		t.Errorf("no log: %q %+v", s.AuditLog, s.Custodians[0].Drill)
	}
	rep, err = Inventory(root, StatusOptions{Now: statusNow, Audit: elsewhere})
	if err != nil {
		t.Fatal(err)
	}
	if s := findSet(t, rep, "p"); s.AuditLog != elsewhere || s.Custodians[0].Drill.Unlogged {
		t.Errorf("--audit: %q %+v", s.AuditLog, s.Custodians[0].Drill)
	}
	if _, err := Inventory(root, StatusOptions{Audit: filepath.Join(root, "nope.log")}); err == nil ||
		!strings.Contains(err.Error(), "nope.log") {
		t.Errorf("a missing --audit log: %v", err)
	}

	// A log cut in its only drill entry: the drill is not counted, and
	// the break is named.
	b, _ := os.ReadFile(elsewhere)
	os.WriteFile(elsewhere, b[:len(b)-20], 0o644)
	rep, err = Inventory(root, StatusOptions{Now: statusNow, Audit: elsewhere})
	if err != nil {
		t.Fatal(err)
	}
	s := findSet(t, rep, "p")
	if !s.Custodians[0].Drill.Unlogged || !strings.Contains(strings.Join(s.Warnings, "\n"), "audit log "+elsewhere+" is broken") {
		t.Errorf("broken log: %q %+v", s.Warnings, s.Custodians[0].Drill)
	}
}

// TestInventoryRecordSignature: an altered record, and one whose
// signature was removed, are listed as unreadable by name.
func TestInventoryRecordSignature(t *testing.T) {
	root := t.TempDir()
	altered := filepath.Join(root, "a", RecordFile)
	saveRecord(t, altered, "altered", func(r *SetRecord) { r.Threshold = 1 })
	unsigned := filepath.Join(root, "u", RecordFile)
	saveRecord(t, unsigned, "unsigned", func(r *SetRecord) { r.Signature = nil })
	rep, err := Inventory(root, StatusOptions{Now: statusNow})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Unreadable) != 2 {
		t.Fatalf("unreadable: %v", rep.Unreadable)
	}
	for i, want := range []string{altered, unsigned} {
		var ae *RecordAlteredError
		if !errors.As(rep.Unreadable[i], &ae) || ae.Path != want {
			t.Errorf("unreadable %d: %v, want %s", i, rep.Unreadable[i], want)
		}
	}
	if !strings.Contains(rep.Unreadable[1].Error(), "no dealer signature") {
		t.Errorf("unsigned: %v", rep.Unreadable[1])
	}
}
