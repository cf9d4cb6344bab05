package ceremony

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"

	"custos/printer"
)

// TestHelperCeremony is not a test: the kill tests run the test binary
// again with CUSTOS_TEST_CEREMONY set, and it runs one ceremony with the
// kill hook from CUSTOS_CEREMONY_KILL_AT, answering yes to every question.
func TestHelperCeremony(t *testing.T) {
	which := os.Getenv("CUSTOS_TEST_CEREMONY")
	if which == "" {
		t.Skip("helper process only")
	}
	dir, keyFile := os.Getenv("CUSTOS_TEST_DIR"), os.Getenv("CUSTOS_TEST_KEY")
	audit, err := OpenAudit(filepath.Join(dir, "audit.log"), AuditOptions{Actor: "helper"})
	if err != nil {
		t.Fatal(err)
	}
	defer audit.Close()
	sc := &Script{Fallback: func(q string) (string, bool) { return "yes", true }}
	opt := Options{Prompter: sc, Interfaces: offline, Audit: audit, KillAt: KillAtFromEnv()}
	switch which {
	case "split":
		pl := &Plan{Label: "kill test", Threshold: 2, Paper: printer.A4, Key: KeySource{File: keyFile},
			OutDir: filepath.Join(dir, "out"), Custodians: []PlanCustodian{{Name: "Ana", Paper: true},
				{Name: "Bo", Paper: true}, {Name: "Chen", Paper: true}}}
		_, err = Split(context.Background(), pl, opt)
	case "recover":
		share := func(f string) string { return filepath.Join(dir, "out", f) }
		sc.Answers = []Answer{{"Share 1", "typed share file"}, {"Path", share("share-1-Ana.txt")},
			{"Share 2", "typed share file"}, {"Path", share("share-3-Chen.txt")}}
		_, err = Recover(context.Background(), RecoveryPlan{Record: share(RecordFile),
			Target: "file:" + filepath.Join(dir, "restored.key")}, opt)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(3)
	}
}

// runHelper runs one ceremony in a child process killed at step killAt
// (0: never) and says whether it was killed.
func runHelper(t *testing.T, which, dir, keyFile string, killAt int) bool {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperCeremony$", "-test.count=1")
	cmd.Env = append(os.Environ(), "CUSTOS_TEST_CEREMONY="+which, "CUSTOS_TEST_DIR="+dir,
		"CUSTOS_TEST_KEY="+keyFile, fmt.Sprintf("%s=%d", KillAtEnv, killAt))
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() && ws.Signal() == syscall.SIGKILL {
			return true
		}
	}
	if err != nil {
		t.Fatalf("%s (kill at %d): %v\n%s", which, killAt, err, out)
	}
	return false
}

func killSetup(t *testing.T) (dir, keyFile string, key []byte) {
	dir = t.TempDir()
	key = bytes.Repeat([]byte{0x9d, 0x41, 0xe2, 0x07}, 8)
	keyFile = filepath.Join(t.TempDir(), "master.key")
	if err := os.WriteFile(keyFile, key, 0o600); err != nil {
		t.Fatal(err)
	}
	return dir, keyFile, key
}

// checkAfterKill: the audit log verifies and no file holds the key.
func checkAfterKill(t *testing.T, dir string, key []byte, step int) {
	t.Helper()
	if _, err := VerifyLog(filepath.Join(dir, "audit.log")); err != nil {
		t.Errorf("killed at step %d: audit log: %v", step, err)
	}
	noSecretIn(t, dir, key)
}

// Killing the split at every step leaves a valid audit log and no key on
// disk, and a rerun finishes with a set whose shares rebuild the key.
func TestSplitKilledAtEveryStep(t *testing.T) {
	if testing.Short() {
		t.Skip("runs many child processes")
	}
	for step := 1; ; step++ {
		dir, keyFile, key := killSetup(t)
		if !runHelper(t, "split", dir, keyFile, step) {
			if step < 8 {
				t.Fatalf("split finished at step %d; the hook missed steps", step)
			}
			break
		}
		checkAfterKill(t, dir, key, step)
		if runHelper(t, "split", dir, keyFile, 0) {
			t.Fatal("rerun killed")
		}
		checkAfterKill(t, dir, key, step)
		rebuildsKey(t, filepath.Join(dir, "out"), key, step)
	}
}

// rebuildsKey checks the finished set: its record, journal and that two
// of its text shares give the key back.
func rebuildsKey(t *testing.T, out string, key []byte, step int) {
	t.Helper()
	rec, err := ReadRecord(filepath.Join(out, RecordFile))
	if err != nil {
		t.Fatalf("step %d: %v", step, err)
	}
	j, err := OpenJournal(JournalFile(out, "split"))
	if err != nil || !j.Done || j.SetID != rec.SetID.String() {
		t.Fatalf("step %d: journal %+v %v", step, j, err)
	}
	offered := ReadShareFiles([]string{filepath.Join(out, "share-1-Ana.txt"), filepath.Join(out, "share-2-Bo.txt")})
	rb, err := Rebuild(context.Background(), RecoverRequest{Offered: offered, Record: rec}, Reporter{})
	if err != nil {
		t.Fatalf("step %d: rebuilding the finished set: %v", step, err)
	}
	defer rb.Wipe()
	if !bytes.Equal(rb.Secret.Bytes, key) {
		t.Fatalf("step %d: the finished set rebuilds another key", step)
	}
}

// Killing the recovery at every step leaves a valid log, no key on disk
// but in a finished target, and the rerun places the key once.
func TestRecoverKilledAtEveryStep(t *testing.T) {
	if testing.Short() {
		t.Skip("runs many child processes")
	}
	dir, keyFile, key := killSetup(t)
	if runHelper(t, "split", dir, keyFile, 0) {
		t.Fatal("split killed")
	}
	restored := filepath.Join(dir, "restored.key")
	for step := 1; ; step++ {
		os.Remove(restored)
		os.Remove(JournalFile(filepath.Join(dir, "out"), "recover"))
		killed := runHelper(t, "recover", dir, keyFile, step)
		if !killed {
			if step < 4 {
				t.Fatalf("recovery finished at step %d; the hook missed steps", step)
			}
			break
		}
		if j, _ := OpenJournal(JournalFile(filepath.Join(dir, "out"), "recover")); j == nil || j.Exported == "" {
			os.Rename(restored, restored+".done") // keep it out of the scan only if unfinished
			if _, err := os.Stat(restored + ".done"); err == nil {
				t.Errorf("step %d: a key file exists though the journal says it was not placed", step)
				os.Remove(restored + ".done")
			}
		}
		checkAfterKillExcept(t, dir, key, step, restored)
		if runHelper(t, "recover", dir, keyFile, 0) {
			t.Fatal("rerun killed")
		}
		got, err := os.ReadFile(restored)
		if err != nil || !bytes.Equal(got, key) {
			t.Fatalf("step %d: rerun left %x, %v", step, got, err)
		}
	}
}

func checkAfterKillExcept(t *testing.T, dir string, key []byte, step int, except string) {
	t.Helper()
	if _, err := VerifyLog(filepath.Join(dir, "audit.log")); err != nil {
		t.Errorf("killed at step %d: audit log: %v", step, err)
	}
	b, _ := os.ReadFile(except)
	os.Remove(except)
	noSecretIn(t, dir, key)
	if b != nil {
		os.WriteFile(except, b, 0o600)
	}
}
