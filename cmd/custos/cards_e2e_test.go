package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"custos/smartcard"
	"custos/smartcard/virtual/virtualtest"
)

// runCLI runs custos in-process and returns its exit status and messages.
// cardFiles is a temporary directory of the files card tests give custos:
// the custodian's PIN and PUK, attestation roots, keys.
type cardFiles struct {
	t        *testing.T
	dir      string
	pin, puk string
}

func newCardFiles(t *testing.T) *cardFiles {
	f := &cardFiles{t: t, dir: t.TempDir()}
	f.pin = f.write("pin", []byte("13572468\n"))
	f.puk = f.write("puk", []byte("86427531\n"))
	return f
}

// write writes a file of mode 0600 and returns its path.
func (f *cardFiles) write(name string, b []byte) string {
	f.t.Helper()
	p := filepath.Join(f.dir, name)
	if err := os.WriteFile(p, b, 0o600); err != nil {
		f.t.Fatal(err)
	}
	return p
}

// roots writes the attestation CA of a virtual card, for --roots.
func (f *cardFiles) roots(name string, c virtualtest.Inserted) string {
	return f.write(name, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Card.AttestationCA().Raw}))
}

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
	f := newCardFiles(t)
	write, dir := f.write, f.dir
	pin, puk := f.pin, f.puk
	key := make([]byte, 32)
	rand.Read(key)
	keyFile := write("master.key", key)

	names := []string{"Ana", "Bo", "Chen"}
	var serials []string
	for i, c := range cards {
		serial := fmt.Sprint(c.Serial)
		serials = append(serials, serial)
		roots := f.roots(fmt.Sprintf("ca%d.pem", i), c)
		if code, msg := runCLI(t, "card", "enrol", "--serial", serial, "--custodian", names[i],
			"--new-pin-file", pin, "--new-puk-file", puk, "--roots", roots); code != 0 {
			t.Fatalf("card enrol %s: %d\n%s", serial, code, msg)
		}
	}

	out := filepath.Join(dir, "set")
	code, msg := runCLI(t, "split", "--threshold", "2", "--shares", "3", "--name", "Ana", "--name", "Bo", "--name", "Chen",
		"--kind", "aes", "--card", "Ana="+serials[0], "--card", "Bo="+serials[1], "--card", "Chen="+serials[2],
		"--pin-file", serials[0]+"="+pin, "--pin-file", serials[1]+"="+pin, "--pin-file", serials[2]+"="+pin,
		"--out", out, keyFile)
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
			"--pin-file", serials[0]+"="+pin, "--pin-file", serials[2]+"="+pin, "--out", rebuilt)
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
// whose other card is missing fails before writing Ana's.
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
	if !strings.Contains(msg, "printing share 2 for") || !strings.Contains(msg, "no share was written to a card") {
		t.Fatalf("split did not name the unprintable share before writing:\n%s", msg)
	}
	if entries, _ := os.ReadDir(out); len(entries) != 0 {
		t.Fatalf("a failed split left %d files in %s", len(entries), out)
	}
	assertNoShare(t, c.Serial)

	// Bo's card is not in any reader: the split stops before it writes
	// anything, Ana's card included.
	code, msg = runCLI(t, "split", "--threshold", "2", "--shares", "2", "--name", "Ana", "--name", "Bo",
		"--card", "Ana="+serial, "--card", "Bo=99999999", "--pin-file", serial+"="+pin,
		"--pin-file", "99999999="+pin, "--out", out, key)
	if code != 1 || !strings.Contains(msg, "checking Bo's card before the split: card 99999999 is not in any reader") ||
		!strings.Contains(msg, "hint: nothing was written to any card or file") ||
		strings.Contains(msg, "written to slot") || strings.Contains(msg, "destroyed") {
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

// scriptedTTY is a person at custos's terminal: answer gives the reply to
// each prompt, by its words, and every prompt is kept.
type scriptedTTY struct {
	t       *testing.T
	answer  func(prompt string) string
	prompts []string
	none    bool // there is no terminal
}

func (s *scriptedTTY) secret(prompt string) ([]byte, error) {
	s.prompts = append(s.prompts, prompt)
	a := s.answer(prompt)
	if a == "" {
		s.t.Errorf("unexpected terminal prompt %q", prompt)
		return nil, errors.New("no scripted answer")
	}
	return []byte(a), nil
}

func (s *scriptedTTY) line(prompt string) (string, error) {
	b, err := s.secret(prompt)
	return string(b) + "\n", err
}

func (s *scriptedTTY) present() bool { return !s.none }

// useTTY makes s custos's terminal for the rest of the test.
func useTTY(t *testing.T, answer func(prompt string) string) *scriptedTTY {
	s := &scriptedTTY{t: t, answer: answer}
	saved := terminal
	terminal = s
	t.Cleanup(func() { terminal = saved })
	return s
}

// said returns what custos has printed so far in runCLI.
func said() string { return stderr.(*bytes.Buffer).String() }

// custodianCards are virtual cards enrolled for custodians, each with its
// own PIN in a file.
type custodianCards struct {
	cards   []virtualtest.Inserted
	serials []string
	pins    []string // the PINs
	pinFile []string // files holding them
	roots   string   // every card's attestation CA
	dir     string
}

// enrolCustodians inserts a virtual card per name and enrols it for that
// name with its own PIN; an empty name leaves the card factory-fresh.
func enrolCustodians(t *testing.T, names ...string) *custodianCards {
	t.Helper()
	cc := &custodianCards{cards: virtualtest.Start(t, len(names)), dir: t.TempDir()}
	var cas []byte
	for _, c := range cc.cards {
		cas = append(cas, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Card.AttestationCA().Raw})...)
	}
	cc.roots = cc.write("ca.pem", cas)
	puk := cc.write("puk", []byte("86427531\n"))
	for i, c := range cc.cards {
		serial := fmt.Sprint(c.Serial)
		pin := fmt.Sprintf("135724%02d", i)
		cc.serials = append(cc.serials, serial)
		cc.pins = append(cc.pins, pin)
		cc.pinFile = append(cc.pinFile, cc.write(fmt.Sprintf("pin%d", i), []byte(pin+"\n")))
		if names[i] == "" {
			continue
		}
		if code, msg := runCLI(t, "card", "enrol", "--serial", serial, "--custodian", names[i],
			"--new-pin-file", cc.pinFile[i], "--new-puk-file", puk, "--roots", cc.roots); code != 0 {
			t.Fatalf("card enrol %s for %s: %d\n%s", serial, names[i], code, msg)
		}
	}
	return cc
}

func (cc *custodianCards) write(name string, b []byte) string {
	p := filepath.Join(cc.dir, name)
	if err := os.WriteFile(p, b, 0o600); err != nil {
		panic(err)
	}
	return p
}

// info reads card i's state.
func (cc *custodianCards) info(t *testing.T, i int) *smartcard.CardInfo {
	t.Helper()
	card, err := smartcard.Open(context.Background(), cc.cards[i].Serial)
	if err != nil {
		t.Fatal(err)
	}
	defer card.Close()
	st, err := card.Info()
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// key writes a fresh 32-byte key file.
func (cc *custodianCards) key(t *testing.T) string {
	k := make([]byte, 32)
	rand.Read(k)
	return cc.write(fmt.Sprintf("key%d", mrand.Int()), k)
}

// A PIN file belongs to one card: a plain --pin-file with two cards is
// refused before any card is touched; per card, each gets its own. A card
// without a PIN file is asked at the terminal, again after a wrong PIN,
// and the last try only after a typed yes.
func TestSplitCardPINs(t *testing.T) {
	cc := enrolCustodians(t, "Ana", "Bo")
	ana, bo := cc.serials[0], cc.serials[1]
	split := func(out string, args ...string) (int, string) {
		t.Helper()
		argv := append([]string{"split", "--threshold", "2", "--shares", "2", "--name", "Ana", "--name", "Bo",
			"--card", "Ana=" + ana, "--card", "Bo=" + bo, "--roots", cc.roots, "--no-paper",
			"--out", filepath.Join(cc.dir, out)}, args...)
		return runCLI(t, append(argv, cc.key(t))...)
	}

	code, msg := split("s1", "--pin-file", cc.pinFile[0])
	if code != 2 || !strings.Contains(msg, "a PIN file belongs to one card") ||
		!strings.Contains(msg, "--pin-file "+ana+"="+cc.pinFile[0]) {
		t.Fatalf("plain --pin-file with two cards: exit %d\n%s", code, msg)
	}
	for i := range cc.cards {
		if st := cc.info(t, i); st.Credentials.PINRetries != 3 || len(st.Slots) != 1 {
			t.Fatalf("card %s after a refused split: %d tries, slots %+v", cc.serials[i],
				st.Credentials.PINRetries, st.Slots)
		}
	}
	if _, err := os.Stat(filepath.Join(cc.dir, "s1")); err == nil {
		t.Fatal("a refused split left its output directory")
	}
	code, msg = split("s1", "--pin-file", "12345="+cc.pinFile[0])
	if code != 2 || !strings.Contains(msg, "--pin-file 12345: no --card has serial 12345") {
		t.Fatalf("--pin-file for another card: exit %d\n%s", code, msg)
	}
	tty := useTTY(t, func(string) string { return "" })
	tty.none = true
	code, msg = split("s1", "--pin-file", ana+"="+cc.pinFile[0])
	if code != 1 || !strings.Contains(msg, "no terminal to ask the PIN of Bo's card "+bo) ||
		!strings.Contains(msg, "--pin-file "+bo+"=FILE") {
		t.Fatalf("no PIN source for Bo's card: exit %d\n%s", code, msg)
	}

	code, msg = split("s2", "--pin-file", ana+"="+cc.pinFile[0], "--pin-file", bo+"="+cc.pinFile[1])
	if code != 0 {
		t.Fatalf("split with a PIN file per card: exit %d\n%s", code, msg)
	}

	// Bo types his PIN: wrong twice, then yes to the last try, then right.
	wrong := 0
	tty = useTTY(t, func(prompt string) string {
		switch {
		case strings.HasPrefix(prompt, "Bo, PIN of card "+bo) && wrong < 2:
			wrong++
			return "00000000"
		case strings.HasPrefix(prompt, "Bo, PIN of card "+bo):
			return cc.pins[1]
		case strings.HasPrefix(prompt, "type yes"):
			return "yes"
		}
		return ""
	})
	code, msg = split("s3", "--pin-file", ana+"="+cc.pinFile[0])
	if code != 0 {
		t.Fatalf("split with Bo's PIN mistyped twice: exit %d\n%s", code, msg)
	}
	for _, want := range []string{
		"warning: wrong PIN for card " + bo + " (in ", ": 2 tries left; type it again",
		": 1 try left\n", "warning: card " + bo + " (in ", "1 try left: it is the last",
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("split output lacks %q:\n%s", want, msg)
		}
	}
	// With one try left nothing invites the PIN before the yes is read.
	if strings.Contains(msg, "1 try left; type it again") {
		t.Errorf("the last-try warning invites the PIN:\n%s", msg)
	}
	if got := strings.Join(tty.prompts, "|"); !strings.Contains(got, "(3 tries left): |Bo, PIN of card "+bo) ||
		!strings.Contains(got, "(2 tries left): |type yes to spend it, anything else gives up (typing is hidden): |Bo, PIN of card "+bo) ||
		!strings.Contains(got, "(1 try left)") {
		t.Errorf("terminal prompts: %s", got)
	}
	if st := cc.info(t, 1); st.Credentials.PINRetries != 3 {
		t.Errorf("Bo's card has %d tries after the right PIN", st.Credentials.PINRetries)
	}
}

// Bo's card is pulled at his PIN prompt, after Ana's share was stored.
// custos says why before it asks for Ana's PIN again; she mistypes it and
// is asked again; her share is destroyed and the hints say only that.
// Three such splits leave Ana's card as it was: one enrolled slot, which
// recover without --set reads as holding no share.
func TestSplitCardPulled(t *testing.T) {
	cc := enrolCustodians(t, "Ana", "Bo")
	ana, bo := cc.serials[0], cc.serials[1]
	for attempt := 1; attempt <= 3; attempt++ {
		var atDiscard string
		mistyped := false
		useTTY(t, func(prompt string) string {
			switch {
			case strings.HasPrefix(prompt, "Bo, PIN of card "+bo):
				cc.cards[1].Pull()
				return cc.pins[1]
			case strings.HasPrefix(prompt, "Ana, PIN of card "+ana) && strings.Contains(said(), "destroyed again") && !mistyped:
				atDiscard, mistyped = said(), true
				return "00000000"
			case strings.HasPrefix(prompt, "Ana, PIN of card "+ana):
				return cc.pins[0]
			}
			return ""
		})
		code, msg := runCLI(t, "split", "--threshold", "2", "--shares", "2", "--name", "Ana", "--name", "Bo",
			"--card", "Ana="+ana, "--card", "Bo="+bo, "--out", filepath.Join(cc.dir, fmt.Sprint("p", attempt)), cc.key(t))
		cc.cards[1].Reinsert()
		if attempt == 1 {
			t.Logf("split output:\n%s", msg)
		}
		if code != 1 || !mistyped {
			t.Fatalf("attempt %d: split with Bo's card pulled: exit %d\n%s", attempt, code, msg)
		}
		lines := strings.Split(strings.TrimSpace(atDiscard), "\n")
		if len(lines) < 2 || !strings.HasPrefix(lines[len(lines)-2], "custos: warning: the split is stopped: "+
			"storing share 2 on Bo's card: ") || !strings.Contains(lines[len(lines)-2], "card "+bo+" (in ") ||
			!strings.Contains(lines[len(lines)-2], "was removed") ||
			!strings.HasPrefix(lines[len(lines)-1], "custos: Ana's share 1 is on card "+ana+" and must be destroyed again") {
			t.Fatalf("attempt %d: before Ana's PIN, custos said:\n%s", attempt, atDiscard)
		}
		for _, want := range []string{
			"warning: wrong PIN for card " + ana, "share 1 destroyed on Ana's card",
			"hint: 1 share this split wrote to cards was destroyed again (see above)",
			"hint: every file this split created has been removed",
		} {
			if !strings.Contains(msg, want) {
				t.Errorf("attempt %d: output lacks %q:\n%s", attempt, want, msg)
			}
		}
		if strings.Contains(msg, "wiped again") || strings.Contains(msg, "STILL") {
			t.Errorf("attempt %d: the hints say what did not happen:\n%s", attempt, msg)
		}
		st := cc.info(t, 0)
		if len(st.Slots) != 1 || st.Slots[0].Kind != smartcard.KindEnrolled || st.Slots[0].Custodian != "Ana" {
			t.Fatalf("attempt %d: Ana's card after the failed split: %+v", attempt, st.Slots)
		}
	}
	code, msg := runCLI(t, "recover", "--card", ana, "--pin-file", cc.pinFile[0],
		"--out", filepath.Join(cc.dir, "rebuilt"))
	if code != 1 || !strings.Contains(msg, "card "+ana+" (in ") || !strings.Contains(msg, "holds no custos share") {
		t.Errorf("recover from Ana's card after three failed splits: exit %d\n%s", code, msg)
	}
}

// Cards given to each other's custodians are refused before anything is
// written, naming both; --reassign-card says they are theirs now.
func TestSplitSwappedCards(t *testing.T) {
	cc := enrolCustodians(t, "Ana", "Bo")
	ana, bo := cc.serials[0], cc.serials[1]
	split := func(out string, args ...string) (int, string) {
		argv := append([]string{"split", "--threshold", "2", "--shares", "2", "--name", "Ana", "--name", "Bo",
			"--card", "Ana=" + bo, "--card", "Bo=" + ana, "--pin-file", ana + "=" + cc.pinFile[0],
			"--pin-file", bo + "=" + cc.pinFile[1], "--out", filepath.Join(cc.dir, out)}, args...)
		return runCLI(t, append(argv, cc.key(t))...)
	}
	code, msg := split("s1")
	t.Logf("split output:\n%s", msg)
	if code != 1 || !strings.Contains(msg, "error: checking Ana's card before the split: card "+bo+
		" was enrolled for Bo, not Ana: swapped cards?") ||
		!strings.Contains(msg, "--reassign-card "+bo) || !strings.Contains(msg, "nothing was written") {
		t.Fatalf("split with swapped cards: exit %d\n%s", code, msg)
	}
	for i, name := range []string{"Ana", "Bo"} {
		st := cc.info(t, i)
		if len(st.Slots) != 1 || st.Slots[0].Kind != smartcard.KindEnrolled || st.Slots[0].Custodian != name ||
			st.Credentials.PINRetries != 3 {
			t.Fatalf("%s's card after a refused split: %d tries, %+v", name, st.Credentials.PINRetries, st.Slots)
		}
	}
	if code, msg := split("s1", "--reassign-card", bo); code != 1 ||
		!strings.Contains(msg, "card "+ana+" was enrolled for Ana, not Bo") {
		t.Fatalf("split with one swapped card reassigned: exit %d\n%s", code, msg)
	}
	if code, msg := split("s1", "--reassign-card", "77"); code != 2 ||
		!strings.Contains(msg, "--reassign-card 77: no --card has serial 77") {
		t.Fatalf("--reassign-card of no card: exit %d\n%s", code, msg)
	}

	code, msg = split("s2", "--reassign-card", bo, "--reassign-card", ana)
	if code != 0 || !strings.Contains(msg, "slot 82 was enrolled for Bo; it is given to Ana, so the share is recorded for Ana") {
		t.Fatalf("split with both cards reassigned: exit %d\n%s", code, msg)
	}
	if !strings.Contains(splitUsage, "--reassign-card SERIAL") {
		t.Error("split --help does not document --reassign-card")
	}
}

// A split without names stores custodian 1's share on a card enrolled for
// Ana, which keeps her name, and enrols a fresh card with no name; its
// messages name custodians by number, never by an empty name.
func TestSplitCardsWithoutNames(t *testing.T) {
	cc := enrolCustodians(t, "Ana", "")
	ana, fresh := cc.serials[0], cc.serials[1]
	bad := cc.write("bad", []byte("00000000\n"))
	for range 2 {
		runCLI(t, "card", "enrol", "--serial", ana, "--custodian", "Ana", "--pin-file", bad)
	}
	if st := cc.info(t, 0); st.Credentials.PINRetries != 1 {
		t.Fatalf("Ana's card has %d tries, want 1", st.Credentials.PINRetries)
	}
	useTTY(t, func(prompt string) string {
		switch {
		case strings.HasPrefix(prompt, "new PIN"):
			return cc.pins[1]
		case strings.HasPrefix(prompt, "new PUK"):
			return "86427531"
		case strings.HasPrefix(prompt, "custodian 1, PIN of card "+ana):
			return cc.pins[0]
		case strings.HasPrefix(prompt, "custodian 2, PIN of card "+fresh):
			return cc.pins[1]
		case strings.HasPrefix(prompt, "type yes"):
			return "yes"
		}
		return ""
	})
	split := func(out string, args ...string) (int, string) {
		argv := append([]string{"split", "--threshold", "2", "--shares", "2", "--card", "1=" + ana,
			"--card", "2=" + fresh, "--roots", cc.roots, "--out", filepath.Join(cc.dir, out)}, args...)
		return runCLI(t, append(argv, cc.key(t))...)
	}

	// From a PIN file, Ana's last try is not spent: the split stops at her
	// card, before it is written.
	code, msg := split("s1", "--pin-file", ana+"="+cc.pinFile[0])
	if code != 1 || !strings.Contains(msg, "error: storing share 1 on custodian 1's card: ") ||
		!strings.Contains(msg, "slot 82 is enrolled for Ana: share 1 goes there, and the card keeps that name") ||
		!strings.Contains(msg, "hint: every file this split created has been removed; no share was written to a card") {
		t.Fatalf("split without names, last try from a file: exit %d\n%s", code, msg)
	}
	for _, bad := range []string{`for ""`, `not ""`, " 's card", "Custodian 1 (no name given)"} {
		if strings.Contains(msg, bad) {
			t.Errorf("output says %q:\n%s", bad, msg)
		}
	}

	code, msg = split("s2")
	if code != 0 || !strings.Contains(msg, "slot 82 enrolled with no custodian name") {
		t.Fatalf("split without names at the terminal: exit %d\n%s", code, msg)
	}
	if strings.Contains(msg, `for ""`) || strings.Contains(msg, `not ""`) {
		t.Errorf("output names an empty custodian:\n%s", msg)
	}
	st := cc.info(t, 0)
	if len(st.Slots) != 1 || st.Slots[0].Kind != smartcard.KindShare || st.Slots[0].Custodian != "Ana" {
		t.Errorf("Ana's card after the split: %+v", st.Slots)
	}
}
