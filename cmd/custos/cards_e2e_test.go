package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"custos/smartcard"
	"custos/smartcard/virtual/virtualtest"
)

// runCLI runs custos in-process and returns its exit status and messages.
func runCLI(t *testing.T, args ...string) (int, string) {
	t.Helper()
	var buf bytes.Buffer
	saved := stderr
	stderr = &buf
	defer func() { stderr = saved }()
	code := run(args)
	return code, buf.String()
}

// TestSplitRecoverOnCards is the card job end to end through pcscd: three
// virtual cards are enrolled, a key is split 2-of-3 onto cards and paper,
// and rebuilt from two cards, and from a card and a paper share.
func TestSplitRecoverOnCards(t *testing.T) {
	cards := virtualtest.Start(t, 3)
	dir := t.TempDir()
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	pin := write("pin", []byte("13572468\n"))
	puk := write("puk", []byte("86427531\n"))
	key := make([]byte, 32)
	rand.Read(key)
	keyFile := write("master.key", key)

	names := []string{"Ana", "Bo", "Chen"}
	var serials []string
	for i, c := range cards {
		serial := fmt.Sprint(c.Serial)
		serials = append(serials, serial)
		roots := write(fmt.Sprintf("ca%d.pem", i), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Card.AttestationCA().Raw}))
		if code, msg := runCLI(t, "card", "enrol", "--serial", serial, "--custodian", names[i],
			"--new-pin-file", pin, "--new-puk-file", puk, "--roots", roots); code != 0 {
			t.Fatalf("card enrol %s: %d\n%s", serial, code, msg)
		}
	}

	out := filepath.Join(dir, "set")
	code, msg := runCLI(t, "split", "--threshold", "2", "--shares", "3", "--name", "Ana", "--name", "Bo", "--name", "Chen",
		"--kind", "aes", "--card", "Ana="+serials[0], "--card", "Bo="+serials[1], "--card", "Chen="+serials[2],
		"--pin-file", pin, "--out", out, keyFile)
	if code != 0 {
		t.Fatalf("split onto cards: %d\n%s", code, msg)
	}
	for _, want := range []string{"share 1 written to slot", "every one of the 3 possible quorums"} {
		if !strings.Contains(msg, want) {
			t.Errorf("split output lacks %q:\n%s", want, msg)
		}
	}
	record, err := os.ReadFile(filepath.Join(out, "set.json"))
	if err != nil || !strings.Contains(string(record), `"serial": `+serials[1]) {
		t.Fatalf("set.json does not record Bo's card %s: %v\n%s", serials[1], err, record)
	}
	if strings.Count(string(record), `"attestation_sha256": "`) != 3 {
		t.Fatalf("set.json does not record the three cards' attestations:\n%s", record)
	}

	t.Run("two cards", func(t *testing.T) {
		rebuilt := filepath.Join(t.TempDir(), "k")
		code, msg := runCLI(t, "recover", "--set", filepath.Join(out, "set.json"), "--card", serials[0], "--card", serials[2],
			"--pin-file", pin, "--out", rebuilt)
		assertRebuilt(t, code, msg, rebuilt, key)
	})
	t.Run("card and paper", func(t *testing.T) {
		rebuilt := filepath.Join(t.TempDir(), "k")
		code, msg := runCLI(t, "recover", "--card", serials[1], "--pin-file", pin, "--out", rebuilt,
			filepath.Join(out, "share-1-Ana.txt"))
		assertRebuilt(t, code, msg, rebuilt, key)
	})
	t.Run("wrong PIN names the card", func(t *testing.T) {
		bad := write("badpin", []byte("00000000\n"))
		rebuilt := filepath.Join(t.TempDir(), "k")
		code, msg := runCLI(t, "recover", "--set", filepath.Join(out, "set.json"), "--card", serials[2], "--pin-file", bad,
			"--out", rebuilt, filepath.Join(out, "share-1-Ana.txt"))
		if code != 1 || !strings.Contains(msg, serials[2]) || !strings.Contains(msg, "need 2 shares") {
			t.Fatalf("recover with a wrong PIN: exit %d\n%s", code, msg)
		}
		if _, err := os.Stat(rebuilt); err == nil {
			t.Fatal("a refused recovery left an output file")
		}
		// The wrong try cost one; the right PIN still works and resets it.
		rebuilt = filepath.Join(t.TempDir(), "k")
		code, msg = runCLI(t, "recover", "--card", serials[2], "--pin-file", pin, "--out", rebuilt,
			filepath.Join(out, "share-1-Ana.txt"))
		assertRebuilt(t, code, msg, rebuilt, key)
	})
}

func assertRebuilt(t *testing.T, code int, msg, path string, want []byte) {
	t.Helper()
	if code != 0 {
		t.Fatalf("recover: exit %d\n%s", code, msg)
	}
	got, err := os.ReadFile(path)
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("rebuilt key differs from the one split (%v)\n%s", err, msg)
	}
}

// TestFailedSplitLeavesNoCardShare checks that a split that cannot print a
// custodian's page fails before any card is written, and that a split
// failing after a card was written destroys that share again.
func TestFailedSplitLeavesNoCardShare(t *testing.T) {
	c := virtualtest.Start(t, 1)[0]
	dir := t.TempDir()
	pin := filepath.Join(dir, "pin")
	os.WriteFile(pin, []byte("13572468\n"), 0o600)
	puk := filepath.Join(dir, "puk")
	os.WriteFile(puk, []byte("86427531\n"), 0o600)
	roots := filepath.Join(dir, "ca.pem")
	os.WriteFile(roots, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Card.AttestationCA().Raw}), 0o600)
	key := filepath.Join(dir, "k")
	os.WriteFile(key, make([]byte, 32), 0o600)
	serial := fmt.Sprint(c.Serial)
	if code, msg := runCLI(t, "card", "enrol", "--serial", serial, "--custodian", "Ana",
		"--new-pin-file", pin, "--new-puk-file", puk, "--roots", roots); code != 0 {
		t.Fatalf("enrol: %s", msg)
	}

	// The second custodian's name is in a script the printer refuses, so
	// the split fails after Ana's card holds her share.
	out := filepath.Join(dir, "out")
	code, msg := runCLI(t, "split", "--threshold", "2", "--shares", "2", "--name", "Ana", "--name", "عليّ",
		"--card", "Ana="+serial, "--pin-file", pin, "--out", out, key)
	if code != 1 {
		t.Fatalf("split with an unprintable name: exit %d\n%s", code, msg)
	}
	if !strings.Contains(msg, "printing share 2 for") {
		t.Fatalf("split did not name the unprintable share before writing:\n%s", msg)
	}
	if entries, _ := os.ReadDir(out); len(entries) != 0 {
		t.Fatalf("a failed split left %d files in %s", len(entries), out)
	}
	assertNoShare(t, c.Serial)

	// Bo's card is not in any reader: the split fails after Ana's card
	// holds her share, and destroys it again.
	code, msg = runCLI(t, "split", "--threshold", "2", "--shares", "2", "--name", "Ana", "--name", "Bo",
		"--card", "Ana="+serial, "--card", "Bo=99999999", "--pin-file", pin, "--out", out, key)
	if code != 1 || !strings.Contains(msg, "share 1 destroyed on Ana's card") || !strings.Contains(msg, "99999999") {
		t.Fatalf("split with Bo's card absent: exit %d\n%s", code, msg)
	}
	if entries, _ := os.ReadDir(out); len(entries) != 0 {
		t.Fatalf("a failed split left %d files in %s", len(entries), out)
	}
	assertNoShare(t, c.Serial)
}

func assertNoShare(t *testing.T, serial uint32) {
	t.Helper()
	card, err := smartcard.Open(context.Background(), serial)
	if err != nil {
		t.Fatal(err)
	}
	defer card.Close()
	held, err := card.Shares()
	if err != nil || len(held) != 0 {
		t.Fatalf("card %d holds %d shares after a failed split (%v)", serial, len(held), err)
	}
}
