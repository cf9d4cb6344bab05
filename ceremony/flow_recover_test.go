package ceremony

import (
	"bytes"
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"custos/smartcard/virtual/virtualtest"
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

	// Bo offers Chen's share: refused, and the drill goes on; the room
	// then stops it.
	wrong := &Script{Answers: []Answer{{"Which custodian", "Bo"}, {"How is the share", "typed share file"},
		{"Path", filepath.Join(pl.OutDir, "share-3-Chen.txt")}, {"Which custodian", "nobody else"}}}
	if _, err := DrillCustodian(context.Background(), rec, Options{Prompter: wrong}); !errors.Is(err, errNoDrill) ||
		!strings.Contains(wrong.Transcript(), "not Bo's share 2") {
		t.Fatalf("got %v\n%s", err, wrong.Transcript())
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

// mistype changes the first character of a typed share line's data.
func mistype(line string) string {
	i := strings.Index(line, ": ") + 2
	c := byte('A')
	if line[i] == 'A' {
		c = 'B'
	}
	return line[:i] + string(c) + line[i+1:]
}

// A typo in a typed share is found on its line, and only that line is
// typed again; the prompt says that what is typed shows.
func TestTypedShareRetypesOneLine(t *testing.T) {
	pl, _ := splitForTest(t)
	bo, err := os.ReadFile(filepath.Join(pl.OutDir, "share-2-Bo.txt"))
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for _, l := range strings.Split(string(bo), "\n") {
		if l != "" && !strings.HasPrefix(l, "#") {
			lines = append(lines, l)
		}
	}
	answers := []Answer{{"Share 1 of the 2", "typed share file"}, {"Path", filepath.Join(pl.OutDir, "share-1-Ana.txt")},
		{"Share 2 of the 2", "line by line"}}
	for i, l := range lines {
		if i == 2 {
			// Mistyped, refused at once, and typed again.
			answers = append(answers, Answer{"Share line 3 ", mistype(l)})
		}
		answers = append(answers, Answer{"Share line " + itoa(i+1), l})
	}
	answers = append(answers, Answer{"Share line", ""})
	sc := &Script{Answers: answers}
	if _, err := Drill(context.Background(), filepath.Join(pl.OutDir, RecordFile), Options{Prompter: sc, Interfaces: offline}); err != nil {
		t.Fatalf("%v\n%s", err, sc.Transcript())
	}
	tr := sc.Transcript()
	for _, want := range []string{"Line 3 is wrong", "the line check does not match", "shown as you type",
		"IS SHOWN on the screen", "Bo's share is valid"} {
		if !strings.Contains(tr, want) {
			t.Errorf("screens lack %q:\n%s", want, tr)
		}
	}
	if n := strings.Count(tr, "?? Share line 3 "); n != 2 {
		t.Errorf("line 3 was asked %d times, want twice", n)
	}
	if n := strings.Count(tr, "?? Share line 4 "); n != 1 {
		t.Errorf("line 4 was asked %d times, want once", n)
	}

	// A share cut short is found once it is in: a line missing at the end
	// is asked for, and giving up on it sets the share aside; the drill
	// goes on.
	answers = answers[:3]
	for i, l := range lines[:len(lines)-1] {
		answers = append(answers, Answer{"Share line " + itoa(i+1), l})
	}
	answers = append(answers, Answer{"Share line", ""}, Answer{"again", ""}, Answer{"Share 2 of the 2", "no more"})
	sc = &Script{Answers: answers}
	_, err = Drill(context.Background(), filepath.Join(pl.OutDir, RecordFile), Options{Prompter: sc, Interfaces: offline})
	if err == nil || !strings.Contains(sc.Transcript(), "That share cannot be used") {
		t.Fatalf("got %v\n%s", err, sc.Transcript())
	}
}

// A custodian drill goes on after a wrong share: the room names the
// custodian again and the right share is proven.
func TestCustodianDrillCarriesOn(t *testing.T) {
	pl, _ := splitForTest(t)
	rec := filepath.Join(pl.OutDir, RecordFile)
	sc := &Script{Answers: []Answer{
		{"Which custodian", "Bo"}, {"How is the share", "typed share file"}, {"Path", filepath.Join(pl.OutDir, "share-3-Chen.txt")},
		{"Which custodian", "Bo"}, {"How is the share", "typed share file"}, {"Path", filepath.Join(pl.OutDir, "set.json")},
		{"Which custodian", "Bo"}, {"How is the share", "typed share file"}, {"Path", filepath.Join(pl.OutDir, "share-2-Bo.txt")},
	}}
	res, err := DrillCustodian(context.Background(), rec, Options{Prompter: sc})
	if err != nil {
		t.Fatalf("%v\n%s", err, sc.Transcript())
	}
	tr := sc.Transcript()
	if res.Index != 2 || strings.Count(tr, "That share cannot be used") != 2 || !strings.Contains(tr, "not Bo's share 2") ||
		!strings.Contains(tr, "The drill goes on") {
		t.Errorf("drill %+v:\n%s", res, tr)
	}
	r, err := ReadRecord(rec)
	if err != nil || r.Custodian(2).LastDrill == nil || r.Custodian(3).LastDrill != nil {
		t.Errorf("record after the drill: %+v, %v", r, err)
	}
}

// A wrong card PIN is headed as a wrong PIN with the tries left, not as
// an unusable share; the custodian tries again and the drill goes on.
func TestWrongCardPINHeading(t *testing.T) {
	cards := virtualtest.Start(t, 1)
	roots := x509.NewCertPool()
	roots.AddCert(cards[0].Card.AttestationCA())
	pl, _ := paperPlan(t)
	pl.Custodians[0] = PlanCustodian{Name: "Ana", Card: true, Serial: cards[0].Serial}
	pin := "4711" + randomHex(t)[:4]
	sc := &Script{Answers: splitAnswers, Fallback: cardAnswers(pin, "90817263")}
	if _, err := Split(context.Background(), pl, Options{Prompter: sc, Interfaces: offline, Roots: roots}); err != nil {
		t.Fatalf("%v\n%s", err, sc.Transcript())
	}
	pinQ := fmt.Sprintf("type the PIN of card %d", cards[0].Serial)
	dr := &Script{Answers: []Answer{
		{"Share 1 of the 2", "custodian's card"}, {"Whose card", "Ana"}, {pinQ, "000000"},
		{"Share 1 of the 2", "custodian's card"}, {"Whose card", "Ana"}, {pinQ, pin},
		{"Share 2 of the 2", "typed share file"}, {"Path", filepath.Join(pl.OutDir, "share-3-Chen.txt")},
	}}
	if _, err := Drill(context.Background(), filepath.Join(pl.OutDir, RecordFile), Options{Prompter: dr, Interfaces: offline}); err != nil {
		t.Fatalf("%v\n%s", err, dr.Transcript())
	}
	tr := dr.Transcript()
	want := fmt.Sprintf("== Wrong PIN: card %d has 2 tries left", cards[0].Serial)
	if !strings.Contains(tr, want) || strings.Contains(tr, "That share cannot be used") ||
		!strings.Contains(tr, "Ana's share is valid") {
		t.Errorf("screens:\n%s", tr)
	}
	if strings.Contains(tr, pin) {
		t.Error("the PIN shows on a screen")
	}
}

// A drill on a record whose signature was removed is refused before
// anyone is called; the signed one is drilled.
func TestDrillRefusesUnsignedRecord(t *testing.T) {
	pl, _ := splitForTest(t)
	path := filepath.Join(pl.OutDir, RecordFile)
	answers := []Answer{
		{"Share 1", "typed share file"}, {"Path", filepath.Join(pl.OutDir, "share-3-Chen.txt")},
		{"Share 2", "typed share file"}, {"Path", filepath.Join(pl.OutDir, "share-2-Bo.txt")},
	}
	sc := &Script{Answers: answers}
	if _, err := Drill(context.Background(), path, Options{Prompter: sc, Interfaces: offline}); err != nil {
		t.Fatalf("%v\n%s", err, sc.Transcript())
	}
	rec, err := ReadRecord(path)
	if err != nil {
		t.Fatal(err)
	}
	writeJSON(t, path, rec, func(m map[string]any) { delete(m, "signature") })
	sc = &Script{Answers: answers}
	_, err = Drill(context.Background(), path, Options{Prompter: sc, Interfaces: offline})
	var ae *RecordAlteredError
	if !errors.As(err, &ae) || strings.Contains(sc.Transcript(), "Share 1") {
		t.Fatalf("a record without its signature: %v\n%s", err, sc.Transcript())
	}
}
