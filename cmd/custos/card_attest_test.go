package main

import (
	"crypto/rand"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"custos/smartcard/virtual/virtualtest"
)

// TestCardAttestationFlow walks the rehearsal path a tester found broken
// (.ci/with-pcscd go test ./cmd/custos/ -run TestCardAttestationFlow): a
// virtual card enrolled without its CA must say how to fix it, keep no
// usable slot, and take no share from split; with --roots the same slot is
// reused, and split checks attestation when it enrols another slot.
func TestCardAttestationFlow(t *testing.T) {
	ins := virtualtest.Start(t, 2)
	f := newCardFiles(t)
	file, dir := f.write, f.dir
	pin, puk := f.pin, f.puk
	roots := f.roots("ca.pem", ins[0])
	key := make([]byte, 32)
	rand.Read(key)
	keyFile := file("master.key", key)
	serial := fmt.Sprint(ins[0].Serial)
	status := func() string {
		t.Helper()
		var out strings.Builder
		saved := cardOut
		cardOut = &out
		defer func() { cardOut = saved }()
		if err := cmdCardStatus([]string{"--serial", serial}); err != nil {
			t.Fatal(err)
		}
		return out.String()
	}
	expect := func(code int, msg string, wantCode int, wants ...string) {
		t.Helper()
		if code != wantCode {
			t.Fatalf("exit %d, want %d\n%s", code, wantCode, msg)
		}
		for _, w := range wants {
			if !strings.Contains(msg, w) {
				t.Errorf("output lacks %q:\n%s", w, msg)
			}
		}
	}

	// A factory card with only --pin-file: refused before anything changes,
	// naming the flags that give new credentials.
	code, msg := runCLI(t, "card", "enrol", "--serial", serial, "--custodian", "Ana", "--pin-file", pin)
	expect(code, msg, 1, "still has the factory PIN", "--new-pin-file FILE and --new-puk-file FILE")

	// Without --roots the virtual card's CA is not trusted.
	code, msg = runCLI(t, "card", "enrol", "--serial", serial, "--custodian", "Ana",
		"--new-pin-file", pin, "--new-puk-file", puk)
	expect(code, msg, 1, "attestation of slot 82", "keeps the new key, marked unverified",
		"--export-ca CA.pem and give --roots CA.pem", "PIN and PUK are now the new ones")
	if st := status(); !strings.Contains(st, "slot 82: key made for \"Ana\", ATTESTATION NOT VERIFIED") {
		t.Fatalf("status after a failed enrolment:\n%s", st)
	}

	// split must not put a share in that slot.
	out := filepath.Join(dir, "set0")
	code, msg = runCLI(t, "split", "--threshold", "2", "--shares", "2", "--name", "Ana", "--name", "Bo",
		"--card", "Ana="+serial, "--pin-file", pin, "--out", out, keyFile)
	expect(code, msg, 1, "never verified: enrolling it again", "attestation of slot 82")
	if st := status(); strings.Contains(st, "share") && !strings.Contains(st, "no share") {
		t.Fatalf("a split without a verified slot stored a share:\n%s", st)
	}

	// With the CA the enrolment reuses slot 82.
	code, msg = runCLI(t, "card", "enrol", "--serial", serial, "--custodian", "Ana",
		"--pin-file", pin, "--roots", roots)
	expect(code, msg, 0, "slot 82 enrolled for \"Ana\"")
	if st := status(); strings.Contains(st, "slot 83") {
		t.Fatalf("enrolment used another slot:\n%s", st)
	}

	// The card is enrolled for Ana; split refuses it for Zed unless told
	// the card is Zed's now, and then warns.
	out = filepath.Join(dir, "set1")
	code, msg = runCLI(t, "split", "--threshold", "2", "--shares", "2", "--name", "Zed", "--name", "Bo",
		"--card", "Zed="+serial, "--pin-file", pin, "--roots", roots, "--out", out, keyFile)
	expect(code, msg, 1, fmt.Sprintf("card %s was enrolled for Ana, not Zed: swapped cards?", serial))
	code, msg = runCLI(t, "split", "--threshold", "2", "--shares", "2", "--name", "Zed", "--name", "Bo",
		"--card", "Zed="+serial, "--reassign-card", serial, "--pin-file", pin, "--roots", roots, "--out", out, keyFile)
	expect(code, msg, 0, "slot 82 was enrolled for Ana; it is given to Zed", "share 1 written to slot 82")

	// The slot now holds a share: split enrols another, and checks it.
	code, msg = runCLI(t, "split", "--threshold", "2", "--shares", "2", "--name", "Zed", "--name", "Bo",
		"--card", "Zed="+serial, "--pin-file", pin, "--out", filepath.Join(dir, "set2"), keyFile)
	expect(code, msg, 1, "attestation of slot 83", "--roots CA.pem")
	if st := status(); !strings.Contains(st, "slot 83: key made for \"Zed\", ATTESTATION NOT VERIFIED") {
		t.Fatalf("status after split's failed enrolment:\n%s", st)
	}
	code, msg = runCLI(t, "split", "--threshold", "2", "--shares", "2", "--name", "Zed", "--name", "Bo",
		"--card", "Zed="+serial, "--pin-file", pin, "--roots", roots, "--out", filepath.Join(dir, "set3"), keyFile)
	expect(code, msg, 0, "enrolling it again", "share 1 written to slot 83")
	if st := status(); strings.Contains(st, "slot 84") {
		t.Fatalf("split's retry used another slot:\n%s", st)
	}

	// The same card twice in a recovery is a usage error.
	code, msg = runCLI(t, "recover", "--card", serial, "--card", serial, "--pin-file", pin,
		"--out", filepath.Join(dir, "k0"))
	expect(code, msg, 2, "given twice")

	// Wrong PINs: one warning per card with its hint, never an error line
	// for a card the recovery goes on without; the last try is not spent
	// from a file.
	bad := file("badpin", []byte("00000000\n"))
	set1 := filepath.Join(out, "set.json")
	for _, left := range []string{"2 tries left", "1 try left"} {
		code, msg = runCLI(t, "recover", "--set", set1, "--card", serial, "--pin-file", bad,
			"--out", filepath.Join(dir, "k1"), filepath.Join(out, "share-2-Bo.txt"))
		expect(code, msg, 1, "warning: not using card "+serial+": wrong PIN", left, "hint: try again with the right PIN")
		if strings.Count(msg, "wrong PIN") != 1 || strings.Contains(msg, "error: wrong PIN") {
			t.Errorf("the card's failure is not said exactly once:\n%s", msg)
		}
	}
	code, msg = runCLI(t, "recover", "--set", set1, "--card", serial, "--pin-file", pin,
		"--out", filepath.Join(dir, "k2"), filepath.Join(out, "share-2-Bo.txt"))
	expect(code, msg, 1, "a PIN file never spends a card's last PIN try",
		"at a terminal without --pin-file and type yes")
	if _, err := os.Stat(filepath.Join(dir, "k2")); err == nil {
		t.Fatal("a refused recovery left an output file")
	}
}
