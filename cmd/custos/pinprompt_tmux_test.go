package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"custos/shares"
)

// pinTerm is custos built and run in a private tmux terminal by a bash
// that survives Ctrl-C, prints custos's exit status, then reads a line
// so that a test can check the terminal echoes again.
type pinTerm struct {
	*tmuxTerm
	dir string
	bin string
}

func newPinTerm(t *testing.T) *pinTerm {
	_, err := exec.LookPath("tmux")
	needReal(t, "tmux", err)
	dir := t.TempDir()
	bin := filepath.Join(dir, "custos")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("building custos: %v\n%s", err, out)
	}
	script := "trap ':' INT\n\"$@\"\necho EXIT=$?\nread -r x\necho GOT=$x\nsleep 60\n"
	if err := os.WriteFile(filepath.Join(dir, "run.sh"), []byte(script), 0o700); err != nil {
		t.Fatal(err)
	}
	return &pinTerm{tmuxTerm: &tmuxTerm{t: t, sock: filepath.Join(dir, "tmux.sock")}, dir: dir, bin: bin}
}

// start runs custos with args in the terminal.
func (p *pinTerm) start(args ...string) {
	cmd := "bash " + filepath.Join(p.dir, "run.sh") + " " + p.bin + " " + strings.Join(args, " ")
	p.tmux("new-session", "-d", "-s", "k2", "-x", "200", "-y", "60", cmd)
	p.t.Cleanup(func() { exec.Command("tmux", "-S", p.sock, "kill-server").Run() })
}

// answer types pin at every new prompt containing ask until the screen
// shows until, and returns that screen.
func (p *pinTerm) answer(ask, pin, until string) string {
	p.t.Helper()
	seen := 0
	deadline := time.Now().Add(60 * time.Second)
	for {
		s := p.screen()
		if strings.Contains(s, until) {
			return s
		}
		if n := strings.Count(s, ask); n > seen {
			seen = n
			p.text(pin)
			p.keys("Enter")
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("the terminal never showed %q:\n%s", until, s)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// echoes checks that the terminal echoes what is typed after custos ends.
func (p *pinTerm) echoes() {
	p.t.Helper()
	p.text("typed-after")
	p.keys("Enter")
	if s := p.waitFor("GOT=typed-after"); !strings.Contains(s, "typed-after\nGOT=typed-after") {
		p.t.Fatalf("the terminal does not echo after custos ended:\n%s", s)
	}
}

// startCardSplit starts a 2-of-2 split onto Ana's and Bo's enrolled
// cards in the terminal, with Ana's PIN from her file when anaFile is
// set, and returns the terminal, the cards and the output directory.
func startCardSplit(t *testing.T, anaFile bool) (*pinTerm, *custodianCards, string) {
	p := newPinTerm(t)
	cc := enrolCustodians(t, "Ana", "Bo")
	ana, bo := cc.serials[0], cc.serials[1]
	out := filepath.Join(cc.dir, "out")
	args := []string{"split", "--threshold", "2", "--shares", "2", "--name", "Ana", "--name", "Bo",
		"--card", "Ana=" + ana, "--card", "Bo=" + bo, "--roots", cc.roots, "--no-paper", "--out", out}
	if anaFile {
		args = append(args, "--pin-file", ana+"="+cc.pinFile[0])
	}
	p.start(append(args, cc.key(t))...)
	return p, cc, out
}

// A PIN typed at the last-try question of a split is not shown: with one
// try left custos says so first, reads the yes without echo, and gives up
// on anything else without repeating it. The last try stays unspent.
func TestSplitLastTryHiddenTmux(t *testing.T) {
	p, cc, _ := startCardSplit(t, true)
	bo := cc.serials[1]

	p.answer("Bo, PIN of card "+bo, "00000000", "1 try left: it is the last")
	s := p.waitFor("typing is hidden")
	if strings.Contains(s, "type it again") && strings.LastIndex(s, "type it again") > strings.Index(s, "1 try left") {
		t.Fatalf("with one try left custos invites the PIN before the yes:\n%s", s)
	}
	p.text(cc.pins[1])
	p.keys("Enter")
	s = p.waitFor("EXIT=")
	if strings.Contains(s, cc.pins[1]) {
		t.Fatalf("the PIN typed at the last-try question shows:\n%s", s)
	}
	if !strings.Contains(s, "EXIT=1") || !strings.Contains(s, "last PIN try not confirmed") {
		t.Fatalf("the split did not give up at the last try:\n%s", s)
	}
	p.echoes()
	if st := cc.info(t, 1); st.Credentials.PINRetries != 1 {
		t.Fatalf("Bo's card has %d tries left, want the last one unspent", st.Credentials.PINRetries)
	}
	assertNoShare(t, cc.cards[0].Serial)
}

// Ctrl-C at a card's PIN prompt during a split ends the prompt at once:
// the split cleans up (Ana's share destroyed with her PIN file, the output
// removed) and the terminal echoes again.
func TestSplitInterruptAtPINTmux(t *testing.T) {
	p, cc, out := startCardSplit(t, true)
	bo := cc.serials[1]

	p.waitFor("Bo, PIN of card " + bo)
	p.keys("C-c")
	s := p.waitFor("EXIT=")
	if !regexp.MustCompile(`Bo, PIN of card [^\n]*left\):\n`).MatchString(s) {
		t.Fatalf("the interrupted prompt's line was not ended:\n%s", s)
	}
	if !strings.Contains(s, "EXIT=1") || !strings.Contains(s, "destroyed again") {
		t.Fatalf("Ctrl-C at the PIN prompt did not stop and clean up the split:\n%s", s)
	}
	p.echoes()
	assertNoShare(t, cc.cards[0].Serial)
	if _, err := os.Stat(out); err == nil {
		t.Fatalf("the interrupted split left %s", out)
	}
}

// A second Ctrl-C, at the PIN prompt of the clean-up, quits at once and
// first prints the exact command that destroys the share still on Ana's
// card; that command works.
func TestSplitQuitAtOnceTmux(t *testing.T) {
	p, cc, _ := startCardSplit(t, false)
	ana, bo := cc.serials[0], cc.serials[1]

	p.answer("Ana, PIN of card "+ana, cc.pins[0], "Bo, PIN of card "+bo)
	p.keys("C-c")
	p.waitFor("must be destroyed again")
	p.waitFor("is needed\nAna, PIN of card " + ana)
	time.Sleep(300 * time.Millisecond)
	p.keys("C-c")
	s := p.waitFor("EXIT=")
	if !strings.Contains(s, "EXIT=130") {
		t.Fatalf("a second Ctrl-C did not quit at once:\n%s", s)
	}
	m := regexp.MustCompile(`custos card wipe --serial (\d+) --set ([0-9A-F]{32})\n`).FindStringSubmatch(s)
	if m == nil || m[1] != ana {
		t.Fatalf("no wipe command for Ana's card %s:\n%s", ana, s)
	}
	p.echoes()

	var id shares.SetID
	if err := id.UnmarshalText([]byte(m[2])); err != nil {
		t.Fatal(err)
	}
	if code, msg := runCLI(t, "card", "wipe", "--serial", ana, "--set", m[2],
		"--pin-file", cc.pinFile[0]); code != 0 {
		t.Fatalf("the printed wipe command failed: %d\n%s", code, msg)
	}
	assertNoShare(t, cc.cards[0].Serial)
}
