package main

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"custos/ceremony"
	"custos/printer"
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
