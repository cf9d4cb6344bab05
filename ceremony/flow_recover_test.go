package ceremony

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// splitForTest runs a paper split and returns the plan and key.
func splitForTest(t *testing.T) (*Plan, []byte) {
	t.Helper()
	pl, key := paperPlan(t)
	if _, err := Split(context.Background(), pl, Options{Prompter: &Script{Answers: splitAnswers}, Interfaces: offline}); err != nil {
		t.Fatal(err)
	}
	return pl, key
}

// A recovery goes on past a foreign share and a wrong file, names them,
// then rebuilds from two good shares into a new 0600 file.
func TestRecoverToFile(t *testing.T) {
	pl, key := splitForTest(t)
	other, _ := splitForTest(t)
	out := filepath.Join(t.TempDir(), "restored.key")
	bo, err := os.ReadFile(filepath.Join(pl.OutDir, "share-2-Bo.txt"))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(bo)), "\n")
	answers := []Answer{
		{"Share 1 of the 2", "typed share file"},
		{"Path of the typed", filepath.Join(other.OutDir, "share-1-Ana.txt")},
		{"Share 1 of the 2", "typed share file"},
		{"Path of the typed", filepath.Join(pl.OutDir, "set.json")},
		{"Share 1 of the 2", "typed share file"},
		{"Path of the typed", filepath.Join(pl.OutDir, "share-1-Ana.txt")},
		{"Share 2 of the 2", "line by line"},
	}
	for i, l := range lines {
		answers = append(answers, Answer{"Share line " + itoa(i+1), l})
	}
	answers = append(answers, Answer{"Share line", ""}, Answer{"Place the key", "yes"})
	sc := &Script{Answers: answers}
	audit := openTestAudit(t, filepath.Join(t.TempDir(), "audit.log"))
	res, err := Recover(context.Background(), RecoveryPlan{Record: filepath.Join(pl.OutDir, RecordFile), Target: "file:" + out},
		Options{Prompter: sc, Interfaces: offline, Audit: audit})
	if err != nil {
		t.Fatalf("%v\n%s", err, sc.Transcript())
	}
	got, err := os.ReadFile(out)
	if err != nil || !bytes.Equal(got, key) {
		t.Fatalf("restored %x, %v", got, err)
	}
	if fi, _ := os.Stat(out); fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v", fi.Mode())
	}
	tr := sc.Transcript()
	for _, want := range []string{"belongs to set", "1 of 2 collected", "2 of 2 collected", "Ana's share is valid", "matches the check value"} {
		if !strings.Contains(tr, want) {
			t.Errorf("screens lack %q:\n%s", want, tr)
		}
	}
	if len(res.Collected) != 2 || res.Placed == "" {
		t.Errorf("outcome %+v", res)
	}
	if _, err := VerifyLog(audit.Path()); err != nil {
		t.Error(err)
	}
}

func itoa(i int) string { return strconv.Itoa(i) + " " }

// A drill rebuilds, places nothing, and records itself in set.json; a
// per-custodian drill records the custodian.
func TestDrills(t *testing.T) {
	pl, _ := splitForTest(t)
	rec := filepath.Join(pl.OutDir, RecordFile)
	sc := &Script{Answers: []Answer{
		{"Share 1", "typed share file"}, {"Path", filepath.Join(pl.OutDir, "share-3-Chen.txt")},
		{"Share 2", "typed share file"}, {"Path", filepath.Join(pl.OutDir, "share-2-Bo.txt")},
	}}
	if _, err := Drill(context.Background(), rec, Options{Prompter: sc, Interfaces: offline}); err != nil {
		t.Fatalf("%v\n%s", err, sc.Transcript())
	}
	r, err := ReadRecord(rec)
	if err != nil || r.LastDrill == nil || r.Custodian(3).LastDrill == nil || r.Custodian(1).LastDrill != nil {
		t.Fatalf("record after drill: %+v %v", r, err)
	}

	// Bo offers Chen's share: refused; then his own.
	wrong := &Script{Answers: []Answer{{"Which custodian", "Bo"}, {"How is the share", "typed share file"},
		{"Path", filepath.Join(pl.OutDir, "share-3-Chen.txt")}}}
	if _, err := DrillCustodian(context.Background(), rec, Options{Prompter: wrong}); err == nil || !strings.Contains(err.Error(), "not Bo's share 2") {
		t.Fatalf("got %v", err)
	}
	sc2 := &Script{Answers: []Answer{{"Which custodian", "Ana"}, {"How is the share", "typed share file"},
		{"Path", filepath.Join(pl.OutDir, "share-1-Ana.txt")}}}
	if _, err := DrillCustodian(context.Background(), rec, Options{Prompter: sc2}); err != nil {
		t.Fatal(err)
	}
	r, _ = ReadRecord(rec)
	if r.Custodian(1).LastDrill == nil {
		t.Error("Ana's drill not recorded")
	}
}
