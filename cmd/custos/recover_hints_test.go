package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"custos/smartcard/virtual/virtualtest"
)

// TestRecoverCardHints: a card that cannot be read ends a recovery with a
// hint pointing at that card, not with "bring more custodians' shares".
// One virtual card holds shares of two sets; without --set custos cannot
// choose, and with the other set's record it holds none of that set.
func TestRecoverCardHints(t *testing.T) {
	c := virtualtest.Start(t, 1)[0]
	f := newCardFiles(t)
	write, dir := f.write, f.dir
	pin, puk := f.pin, f.puk
	roots := f.roots("ca.pem", c)
	serial := fmt.Sprint(c.Serial)
	for _, name := range []string{"Ana", "Dana"} {
		if code, msg := runCLI(t, "card", "enrol", "--serial", serial, "--custodian", name,
			"--new-pin-file", pin, "--new-puk-file", puk, "--pin-file", pin, "--roots", roots); code != 0 {
			t.Fatalf("enrol %s: %d\n%s", name, code, msg)
		}
	}
	for _, set := range []struct{ out, holder string }{{"a", "Ana"}, {"b", "Dana"}} {
		key := write(set.out+".key", make([]byte, 32))
		if code, msg := runCLI(t, "split", "--threshold", "2", "--shares", "2", "--name", set.holder, "--name", "Bo",
			"--card", set.holder+"="+serial, "--pin-file", pin, "--roots", roots,
			"--out", filepath.Join(dir, set.out), key); code != 0 {
			t.Fatalf("split %s onto the card: %d\n%s", set.out, code, msg)
		}
	}

	// A third set, on paper only: the card holds none of its shares.
	key := write("c.key", make([]byte, 32))
	if code, msg := runCLI(t, "split", "--threshold", "2", "--shares", "2", "--out", filepath.Join(dir, "c"), key); code != 0 {
		t.Fatalf("split c: %d\n%s", code, msg)
	}

	for name, args := range map[string][]string{
		"no set record": {},
		"other set":     {"--set", filepath.Join(dir, "c", "set.json")},
	} {
		out := filepath.Join(dir, "rebuilt-"+strings.ReplaceAll(name, " ", "-"))
		argv := append([]string{"recover", "--card", serial, "--pin-file", pin, "--out", out}, args...)
		code, msg := runCLI(t, argv...)
		t.Logf("%s:\n%s", name, msg)
		if code != 1 || !strings.Contains(msg, "not using card "+serial) ||
			!strings.Contains(msg, "hint: 1 card given could not be read (see above): fix what the warning says") {
			t.Errorf("%s: exit %d\n%s", name, code, msg)
		}
		if strings.Contains(msg, "hint: bring more custodians' shares") {
			t.Errorf("%s: the hint asks for more custodians:\n%s", name, msg)
		}
		if _, err := os.Stat(out); err == nil {
			t.Errorf("%s: a refused recovery left %s", name, out)
		}
	}
}

// A PIN file belongs to one card: recover refuses to try one file on
// several cards before any card is touched, and takes SERIAL=FILE.
func TestRecoverPINFilePerCard(t *testing.T) {
	dir := t.TempDir()
	pin := filepath.Join(dir, "ana.pin")
	if err := os.WriteFile(pin, []byte("123456\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	code, msg := runCLI(t, "recover", "--card", "17778437", "--card", "48318542", "--pin-file", pin, "--out", filepath.Join(dir, "k"))
	if code != 2 || !strings.Contains(msg, "a PIN file belongs to one card") || !strings.Contains(msg, "--pin-file 17778437=") {
		t.Fatalf("one PIN file for two cards: exit %d\n%s", code, msg)
	}
	code, msg = runCLI(t, "recover", "--card", "17778437", "--pin-file", "48318542="+pin, "--out", filepath.Join(dir, "k"))
	if code != 2 || !strings.Contains(msg, "48318542") {
		t.Fatalf("a PIN file for a card not given: exit %d\n%s", code, msg)
	}
	code, msg = runCLI(t, "recover", "--pin-file", pin, filepath.Join(dir, "share.txt"))
	if code != 2 || !strings.Contains(msg, "there are none") {
		t.Fatalf("a PIN file without a card: exit %d\n%s", code, msg)
	}
}
