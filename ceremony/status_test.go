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
	d.Wipe()
	rec := NewRecord(d)
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
