package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"custos/ceremony"
	"custos/printer"
	"custos/shares"
)

// An unattended drill: --answers gives the room's replies (the same
// question twice takes the next line), --audit-syslog copies every audit
// entry to a local syslog socket, and the log names the answers file as
// the actor.
func TestCeremonyDrillAnswersSyslog(t *testing.T) {
	dir, err := os.MkdirTemp("", "k2")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	pl := &ceremony.Plan{Label: "drill master", Threshold: 2, Paper: printer.A4,
		Key: ceremony.KeySource{Generate: true}, OutDir: filepath.Join(dir, "set"),
		Custodians: []ceremony.PlanCustodian{{Name: "Ana", Paper: true}, {Name: "Bo", Paper: true}, {Name: "Chen", Paper: true}}}
	sc := &ceremony.Script{Answers: []ceremony.Answer{{Ask: "Ready", Reply: "yes"}, {Ask: "witnesses", Reply: "yes"}}}
	if _, err := ceremony.Split(context.Background(), pl, ceremony.Options{Prompter: sc, AllowNetwork: true}); err != nil {
		t.Fatalf("%v\n%s", err, sc.Transcript())
	}

	sock := filepath.Join(dir, "log")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	var mu sync.Mutex
	var got []string
	go func() {
		buf := make([]byte, 8192)
		for {
			n, err := conn.Read(buf)
			if err != nil {
				return
			}
			mu.Lock()
			got = append(got, string(buf[:n]))
			mu.Unlock()
		}
	}()

	answers := filepath.Join(dir, "drill.answers")
	body := "# the room\nhow is it given? = typed share file\n" +
		"Path of the typed share file? = " + filepath.Join(pl.OutDir, "share-3-Chen.txt") + "\n" +
		"Path of the typed share file? = " + filepath.Join(pl.OutDir, "share-1-Ana.txt") + "\n"
	if err := os.WriteFile(answers, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	rec := filepath.Join(pl.OutDir, ceremony.RecordFile)
	if code := run([]string{"ceremony", "drill", "--set", rec, "--answers", answers,
		"--allow-network", "--audit-syslog=" + sock}); code != 0 {
		t.Fatalf("ceremony drill exited %d", code)
	}

	r, err := ceremony.ReadRecord(rec)
	if err != nil || r.LastDrill == nil || r.Custodian(1).LastDrill == nil || r.Custodian(2).LastDrill != nil {
		t.Fatalf("drill not recorded for Ana and Chen only: %+v, %v", r, err)
	}
	entries, _, err := ceremony.ReadAudit(filepath.Join(pl.OutDir, "audit.log"))
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) == 0 || !strings.Contains(entries[0].Actor, "drill.answers") {
		t.Errorf("the audit log does not name the answers file as actor: %+v", entries[0])
	}
	setID := strings.ReplaceAll(r.SetID.String(), " ", "")
	deadline := time.Now().Add(5 * time.Second)
	for {
		mu.Lock()
		n, all := len(got), strings.Join(got, "\n")
		mu.Unlock()
		if n >= len(entries) && strings.Contains(all, setID) && strings.Contains(all, "drill.recorded") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("syslog got %d messages for %d audit entries:\n%s", n, len(entries), all)
		}
		time.Sleep(50 * time.Millisecond)
	}

	// An answers file that does not answer a question stops the ceremony.
	os.WriteFile(answers+"2", []byte("nothing = here\n"), 0o600)
	if code := run([]string{"ceremony", "drill", "--set", rec, "--answers", answers + "2", "--allow-network"}); code != 1 {
		t.Errorf("an unanswered question: exit %d, want 1", code)
	}
}

// withStdio runs f with standard input read from a file holding input and
// standard output and custos's stderr captured, as when the ceremony runs
// under a pipe, not on a terminal.
func withStdio(t *testing.T, input string, f func() int) (code int, out, errOut string) {
	t.Helper()
	dir := t.TempDir()
	in := filepath.Join(dir, "in")
	if err := os.WriteFile(in, []byte(input), 0o600); err != nil {
		t.Fatal(err)
	}
	fin, err := os.Open(in)
	if err != nil {
		t.Fatal(err)
	}
	defer fin.Close()
	fout, err := os.Create(filepath.Join(dir, "out"))
	if err != nil {
		t.Fatal(err)
	}
	defer fout.Close()
	var eb bytes.Buffer
	oldIn, oldOut, oldErr := os.Stdin, os.Stdout, stderr
	os.Stdin, os.Stdout, stderr = fin, fout, &eb
	defer func() { os.Stdin, os.Stdout, stderr = oldIn, oldOut, oldErr }()
	code = f()
	b, err := os.ReadFile(fout.Name())
	if err != nil {
		t.Fatal(err)
	}
	return code, string(b), eb.String()
}

// sealedSet splits a secret over the inline limit as custos split does:
// the shares bind secret.sealed beside set.json.
func sealedSet(t *testing.T) (dir string, secret []byte) {
	t.Helper()
	secret = make([]byte, shares.InlineLimit*2+7)
	rand.Read(secret)
	dir = filepath.Join(t.TempDir(), "set")
	_, err := ceremony.SplitFiles(context.Background(), ceremony.SplitRequest{
		Policy: shares.Policy{Threshold: 2, Count: 3, Custodians: []string{"Ana", "Bo", "Chen"}, Label: "big"},
		Paper:  printer.A4, OutDir: dir, Secret: bytes.NewReader(secret)}, ceremony.Reporter{})
	if err != nil {
		t.Fatal(err)
	}
	return dir, secret
}

// ceremony recover and drill take --sealed, and by default use the sealed
// file set.json names; a wrong one is refused before anyone is asked.
func TestCeremonySealed(t *testing.T) {
	dir, secret := sealedSet(t)
	rec := filepath.Join(dir, ceremony.RecordFile)
	answers := filepath.Join(t.TempDir(), "recover.answers")
	body := "how is it given? = typed share file\n" +
		"Path of the typed share file? = " + filepath.Join(dir, "share-1-Ana.txt") + "\n" +
		"Path of the typed share file? = " + filepath.Join(dir, "share-2-Bo.txt") + "\n" +
		"Place the key = yes\n"
	if err := os.WriteFile(answers, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "big.bin")
	code, _, errOut := withStdio(t, "", func() int {
		return run([]string{"ceremony", "recover", "--set", rec, "--target", "file:" + out, "--answers", answers, "--allow-network"})
	})
	if got, _ := os.ReadFile(out); code != 0 || !bytes.Equal(got, secret) {
		t.Fatalf("ceremony recover exited %d, restored %d bytes:\n%s", code, len(got), errOut)
	}

	moved := filepath.Join(t.TempDir(), "moved.sealed")
	if err := os.Rename(filepath.Join(dir, ceremony.SealedFile), moved); err != nil {
		t.Fatal(err)
	}
	code, screens, errOut := withStdio(t, "", func() int {
		return run([]string{"ceremony", "drill", "--set", rec, "--answers", answers, "--allow-network"})
	})
	if code != 1 || !strings.Contains(errOut, filepath.Join(dir, ceremony.SealedFile)) || strings.Contains(screens, "how is it given") {
		t.Fatalf("drill without its sealed file: exit %d\n%s\n%s", code, errOut, screens)
	}
	code, _, errOut = withStdio(t, "", func() int {
		return run([]string{"ceremony", "drill", "--set", rec, "--sealed", moved, "--answers", answers, "--allow-network"})
	})
	if code != 0 {
		t.Fatalf("drill --sealed: exit %d\n%s", code, errOut)
	}
	code, _, _ = withStdio(t, "", func() int {
		return run([]string{"ceremony", "drill", "--set", rec, "--sealed", moved, "--custodian"})
	})
	if code != 2 {
		t.Errorf("drill --custodian --sealed: exit %d, want 2", code)
	}
}

// Off a terminal the ceremony asks in plain numbered lines, with no
// cursor codes, and input that ends is reported as such, not as Ctrl-C.
func TestCeremonyPlainInput(t *testing.T) {
	dir, _ := sealedSet(t)
	rec := filepath.Join(dir, ceremony.RecordFile)
	input := "3\n" + filepath.Join(dir, "share-1-Ana.txt") + "\n3\n" + filepath.Join(dir, "share-3-Chen.txt") + "\n"
	code, out, errOut := withStdio(t, input, func() int {
		return run([]string{"ceremony", "drill", "--set", rec, "--allow-network"})
	})
	if code != 0 {
		t.Fatalf("exit %d\n%s\n%s", code, errOut, out)
	}
	if strings.Contains(out, "\x1b") {
		t.Errorf("cursor codes in output that is not a terminal:\n%q", out)
	}
	if !strings.Contains(out, "  3) from a typed share file") || !strings.Contains(out, "Drill complete") {
		t.Errorf("output:\n%s", out)
	}

	code, out, errOut = withStdio(t, "3\n"+filepath.Join(dir, "share-1-Ana.txt")+"\n", func() int {
		return run([]string{"ceremony", "drill", "--set", rec, "--allow-network"})
	})
	if code != 1 || !strings.Contains(out, "Why: the input ended") || strings.Contains(out+errOut, "Ctrl-C") ||
		!strings.Contains(errOut, "the input ended") {
		t.Errorf("input that ends: exit %d\n%s\n%s", code, errOut, out)
	}
}
