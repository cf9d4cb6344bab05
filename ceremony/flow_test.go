package ceremony

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"custos/printer"
)

// offline is an air-gapped machine: loopback only.
func offline() ([]NetInterface, error) {
	return []NetInterface{{Name: "lo", Up: true, Loopback: true}}, nil
}

func online() ([]NetInterface, error) {
	return []NetInterface{{Name: "lo", Up: true, Loopback: true}, {Name: "eth0", Up: true}}, nil
}

// paperPlan is a 2-of-3 paper split of a key file outside the output dir.
func paperPlan(t *testing.T) (*Plan, []byte) {
	t.Helper()
	key := bytes.Repeat([]byte{0x5a, 0xc3, 0x17, 0x88}, 8)
	kf := filepath.Join(t.TempDir(), "master.key")
	if err := os.WriteFile(kf, key, 0o600); err != nil {
		t.Fatal(err)
	}
	return &Plan{Label: "test master", Threshold: 2, Paper: printer.A4,
		Key: KeySource{File: kf}, OutDir: filepath.Join(t.TempDir(), "out"),
		Witnesses: []string{"Dana"},
		Custodians: []PlanCustodian{{Name: "Ana", Paper: true}, {Name: "Bo", Paper: true},
			{Name: "Chen", Paper: true}}}, key
}

func openTestAudit(t *testing.T, path string) *AuditLog {
	t.Helper()
	l, err := OpenAudit(path, AuditOptions{Actor: "test"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

// splitAnswers are the confirmations of a paper split.
var splitAnswers = []Answer{
	{"Ready to make the master key", "yes"},
	{"witnesses written down", "yes"},
}

// noSecretIn fails when key appears in any file under dir.
func noSecretIn(t *testing.T, dir string, key []byte) {
	t.Helper()
	filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			t.Error(err)
		}
		if bytes.Contains(b, key) {
			t.Errorf("%s holds the master key", path)
		}
		return nil
	})
}

func TestSplitPaper(t *testing.T) {
	pl, key := paperPlan(t)
	sc := &Script{Answers: splitAnswers}
	audit := openTestAudit(t, filepath.Join(t.TempDir(), "audit.log"))
	out, err := Split(context.Background(), pl, Options{Prompter: sc, Interfaces: offline, Audit: audit})
	if err != nil {
		t.Fatalf("%v\n%s", err, sc.Transcript())
	}
	if sc.Left() != 0 {
		t.Errorf("%d answers unused", sc.Left())
	}
	rec, err := ReadRecord(filepath.Join(pl.OutDir, RecordFile))
	if err != nil {
		t.Fatal(err)
	}
	if rec.SetID != out.Record.SetID || rec.Threshold != 2 || rec.Count != 3 {
		t.Errorf("record %+v", rec)
	}
	for _, c := range rec.Custodians {
		if len(c.Files) != 2 || c.Media[0] != "paper" {
			t.Errorf("custodian %+v", c)
		}
	}
	if filepath.Ext(out.Transcript) != ".pdf" {
		t.Errorf("transcript %s is not a PDF", out.Transcript)
	}
	pdf := pdfText(t, out.Transcript)
	tr, err := os.ReadFile(strings.TrimSuffix(out.Transcript, ".pdf") + ".txt")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"Dana, witness", "Ana, custodian", "audit.log ended with entry"} {
		if !strings.Contains(pdf, want) {
			t.Errorf("PDF transcript lacks %q:\n%s", want, pdf)
		}
	}
	for _, want := range []string{rec.SetID.String(), "any 2 of 3", "Dana", "Audit log audit.log"} {
		if !strings.Contains(string(tr), want) {
			t.Errorf("transcript lacks %q:\n%s", want, tr)
		}
	}
	entries, _, err := ReadAudit(audit.Path())
	if err != nil {
		t.Fatal(err)
	}
	inLog, inPDF := false, false
	for _, e := range entries {
		inLog = inLog || strings.Contains(string(tr), e.Hash)
		h := strings.ToUpper(e.Hash)
		inPDF = inPDF || strings.Contains(pdf, h[:8]+" "+h[8:16]) && strings.Contains(pdf, h[56:]) &&
			strings.Contains(pdf, fmt.Sprintf("ended with entry %d,", e.Seq))
	}
	if !inLog || !inPDF {
		t.Errorf("the transcript's audit head is no entry of the log (text %v, PDF %v)", inLog, inPDF)
	}
	j, err := OpenJournal(JournalFile(pl.OutDir, "split"))
	if err != nil || j == nil || !j.Done {
		t.Fatalf("journal %+v, %v", j, err)
	}
	if _, err := VerifyLog(audit.Path()); err != nil {
		t.Error(err)
	}
	noSecretIn(t, pl.OutDir, key)
	for _, want := range []string{"check value", "Every quorum rebuilds the key", "master key is erased from memory", "STILL EXISTS"} {
		if !strings.Contains(sc.Transcript(), want) {
			t.Errorf("screens lack %q", want)
		}
	}
}

// pdfText extracts a PDF's text with poppler's pdftotext.
func pdfText(t *testing.T, path string) string {
	t.Helper()
	tool, err := exec.LookPath("pdftotext")
	needPart(t, "pdftotext (poppler-utils)", err)
	out, err := exec.Command(tool, "-layout", path, "-").Output()
	if err != nil {
		t.Fatalf("pdftotext %s: %v", path, err)
	}
	return string(out)
}

// A machine on the network is refused before any key exists, and the
// refusal is in the audit log; --allow-network goes on and says so.
func TestSplitRefusesNetwork(t *testing.T) {
	pl, _ := paperPlan(t)
	sc := &Script{}
	audit := openTestAudit(t, filepath.Join(t.TempDir(), "audit.log"))
	_, err := Split(context.Background(), pl, Options{Prompter: sc, Interfaces: online, Audit: audit})
	var up *NetworkUpError
	var stop *StoppedError
	if !errors.As(err, &up) || !errors.As(err, &stop) || stop.Step != "air-gap" {
		t.Fatalf("got %v", err)
	}
	if _, err := os.Stat(filepath.Join(pl.OutDir, RecordFile)); err == nil {
		t.Error("set.json written")
	}

	pl2, _ := paperPlan(t)
	sc2 := &Script{Answers: splitAnswers}
	out, err := Split(context.Background(), pl2, Options{Prompter: sc2, Interfaces: online, AllowNetwork: true, Audit: audit})
	if err != nil {
		t.Fatal(err)
	}
	tr, _ := os.ReadFile(strings.TrimSuffix(out.Transcript, ".pdf") + ".txt")
	if !strings.Contains(string(tr), "NOT air-gapped") || !strings.Contains(sc2.Transcript(), "NETWORK IS UP") {
		t.Errorf("allowed network not recorded:\n%s", tr)
	}
}

// The split ends by saying where the key still is: only in the shares
// when custos generated it; also in its source file, which custos does
// not delete, when it was read from one (TestSplitPaper).
func TestSplitSaysWhereTheKeyIs(t *testing.T) {
	pl, _ := paperPlan(t)
	kf := pl.Key.File
	pl.Key = KeySource{Generate: true}
	sc := &Script{Answers: splitAnswers}
	out, err := Split(context.Background(), pl, Options{Prompter: sc, Interfaces: offline})
	if err != nil {
		t.Fatalf("%v\n%s", err, sc.Transcript())
	}
	tr := sc.Transcript()
	if !strings.Contains(tr, "no longer exists anywhere but in the shares") || strings.Contains(tr, "STILL EXISTS") {
		t.Errorf("generated key:\n%s", tr)
	}
	if txt, _ := os.ReadFile(strings.TrimSuffix(out.Transcript, ".pdf") + ".txt"); !strings.Contains(string(txt), "generated inside custos") {
		t.Errorf("transcript:\n%s", txt)
	}

	pl2, _ := paperPlan(t)
	sc2 := &Script{Answers: splitAnswers}
	out2, err := Split(context.Background(), pl2, Options{Prompter: sc2, Interfaces: offline})
	if err != nil {
		t.Fatal(err)
	}
	tr = sc2.Transcript()
	if strings.Contains(tr, "no longer exists anywhere") || !strings.Contains(tr, pl2.Key.File+", and that file STILL EXISTS") ||
		!strings.Contains(tr, "custos does not delete it") {
		t.Errorf("key read from %s:\n%s", kf, tr)
	}
	if txt, _ := os.ReadFile(strings.TrimSuffix(out2.Transcript, ".pdf") + ".txt"); !strings.Contains(string(txt), "custos did not delete that file") {
		t.Errorf("transcript:\n%s", txt)
	}
}

// A split stopped before any key was made is started again without
// empty set numbers or an empty list of what it left.
func TestSplitRestartBeforeAnyKey(t *testing.T) {
	pl, _ := paperPlan(t)
	sc := &Script{Answers: []Answer{{"Ready to make the master key", "no"}}}
	if _, err := Split(context.Background(), pl, Options{Prompter: sc, Interfaces: offline}); !errors.Is(err, ErrDeclined) {
		t.Fatalf("got %v", err)
	}
	sc2 := &Script{Answers: append([]Answer{{"Start the split again", "yes"}}, splitAnswers...)}
	if _, err := Split(context.Background(), pl, Options{Prompter: sc2, Interfaces: offline}); err != nil {
		t.Fatalf("%v\n%s", err, sc2.Transcript())
	}
	tr := sc2.Transcript()
	for _, bad := range []string{"(set )", "during: .", "What the earlier run left:\n   Step"} {
		if strings.Contains(tr, bad) {
			t.Errorf("the restart screen shows %q:\n%s", bad, tr)
		}
	}
	for _, want := range []string{"stopped during: making or reading the master key", "before any master key or share was made",
		"left nothing behind"} {
		if !strings.Contains(tr, want) {
			t.Errorf("the restart screen lacks %q:\n%s", want, tr)
		}
	}
}

// A ceremony that stops before its first step says so in words, and
// input that ends is not called an interruption.
func TestStopWords(t *testing.T) {
	sc := &Script{}
	_, err := Recover(context.Background(), RecoveryPlan{Record: filepath.Join(t.TempDir(), "set.json"), Target: "file:/x"},
		Options{Prompter: sc, Interfaces: offline})
	if err == nil || !strings.Contains(sc.Transcript(), "stopped during: getting ready, before the first step.") {
		t.Errorf("got %v\n%s", err, sc.Transcript())
	}

	pl, _ := splitForTest(t)
	sc = &Script{Answers: []Answer{{"Share 1 of the 2", "end of input"}}}
	_, err = Drill(context.Background(), filepath.Join(pl.OutDir, RecordFile), Options{Prompter: sc, Interfaces: offline})
	var stop *StoppedError
	if !errors.As(err, &stop) || !errors.Is(err, ErrInputEnded) || !errors.Is(err, ErrInterrupted) {
		t.Fatalf("got %v", err)
	}
	if tr := sc.Transcript(); !strings.Contains(tr, "Why: the input ended") || strings.Contains(tr, "Ctrl-C") {
		t.Errorf("screens:\n%s", tr)
	}
}
