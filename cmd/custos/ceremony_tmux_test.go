package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"custos/ceremony"
	"custos/printer"
	"custos/shares"
)

// needReal skips a test when a real part is missing, or fails it when the
// run promised real parts (CUSTOS_INTEGRATION=1).
func needReal(t *testing.T, what string, err error) {
	t.Helper()
	if err == nil {
		return
	}
	if os.Getenv("CUSTOS_INTEGRATION") == "1" {
		t.Fatalf("%s is required with CUSTOS_INTEGRATION=1: %v", what, err)
	}
	t.Skipf("%s is missing: %v", what, err)
}

// tmuxTerm is a terminal in a private tmux server.
type tmuxTerm struct {
	t    *testing.T
	sock string
}

func (m *tmuxTerm) tmux(args ...string) string {
	m.t.Helper()
	out, err := exec.Command("tmux", append([]string{"-S", m.sock}, args...)...).CombinedOutput()
	if err != nil {
		m.t.Fatalf("tmux %v: %v\n%s", args, err, out)
	}
	return string(out)
}

func (m *tmuxTerm) screen() string { return m.tmux("capture-pane", "-p", "-t", "k2", "-S", "-200") }

// waitFor waits until the screen shows want, and returns the screen.
func (m *tmuxTerm) waitFor(want string) string {
	m.t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		s := m.screen()
		if strings.Contains(s, want) {
			return s
		}
		if time.Now().After(deadline) {
			m.t.Fatalf("the terminal never showed %q:\n%s", want, s)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (m *tmuxTerm) keys(k ...string) { m.tmux(append([]string{"send-keys", "-t", "k2"}, k...)...) }
func (m *tmuxTerm) text(s string)    { m.tmux("send-keys", "-t", "k2", "-l", s) }

// The recovery ceremony on a real terminal: the HSM's PIN typed first at a
// masked prompt, then a custodian's choices with the arrow keys and typed
// paths. The PIN never shows on the screen, and the key lands in the
// SoftHSM token without the PIN being asked again.
func TestCeremonyRecoverTmux(t *testing.T) {
	_, err := exec.LookPath("tmux")
	needReal(t, "tmux", err)
	_, err = exec.LookPath("softhsm2-util")
	needReal(t, "softhsm2-util", err)
	const module = "/usr/lib/softhsm/libsofthsm2.so"
	_, err = os.Stat(module)
	needReal(t, "SoftHSM", err)

	dir := t.TempDir()
	bin := filepath.Join(dir, "custos")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("building custos: %v\n%s", err, out)
	}

	// A paper split of an AES key, made in-process.
	kf := filepath.Join(dir, "master.key")
	if err := os.WriteFile(kf, bytes.Repeat([]byte{0x6b}, 32), 0o600); err != nil {
		t.Fatal(err)
	}
	pl := &ceremony.Plan{Label: "tmux master", Threshold: 2, Paper: printer.A4,
		Key: ceremony.KeySource{File: kf, Kind: shares.KindAES}, OutDir: filepath.Join(dir, "set"),
		Custodians: []ceremony.PlanCustodian{{Name: "Ana", Paper: true}, {Name: "Bo", Paper: true}, {Name: "Chen", Paper: true}}}
	sc := &ceremony.Script{Answers: []ceremony.Answer{{Ask: "Ready", Reply: "yes"}, {Ask: "witnesses", Reply: "yes"}}}
	if _, err := ceremony.Split(context.Background(), pl, ceremony.Options{Prompter: sc, AllowNetwork: true}); err != nil {
		t.Fatalf("%v\n%s", err, sc.Transcript())
	}

	// A SoftHSM token with a random test PIN, and no pin-source in the URI.
	conf := filepath.Join(dir, "softhsm2.conf")
	os.Mkdir(filepath.Join(dir, "tokens"), 0o700)
	os.WriteFile(conf, []byte("directories.tokendir = "+filepath.Join(dir, "tokens")+"\nobjectstore.backend = file\n"), 0o600)
	b := make([]byte, 4)
	rand.Read(b)
	pin := hex.EncodeToString(b)
	init := exec.Command("softhsm2-util", "--init-token", "--free", "--label", "tmux-vault", "--so-pin", pin+"so", "--pin", pin)
	init.Env = append(os.Environ(), "SOFTHSM2_CONF="+conf)
	if out, err := init.CombinedOutput(); err != nil {
		t.Fatalf("softhsm2-util: %v\n%s", err, out)
	}
	uri := "pkcs11:token=tmux-vault;object=tmux-master?module-path=" + module

	m := &tmuxTerm{t: t, sock: filepath.Join(dir, "tmux.sock")}
	cmd := fmt.Sprintf("env SOFTHSM2_CONF=%s %s ceremony recover --set %s --target '%s' --allow-network; echo EXIT=$?; sleep 60",
		conf, bin, filepath.Join(pl.OutDir, ceremony.RecordFile), uri)
	m.tmux("new-session", "-d", "-s", "k2", "-x", "160", "-y", "60", cmd)
	t.Cleanup(func() { exec.Command("tmux", "-S", m.sock, "kill-server").Run() })

	// The token's PIN is asked first, before any custodian comes forward.
	m.waitFor("Type the user PIN of token")
	m.text(pin)
	s := m.waitFor(strings.Repeat("*", len(pin)))
	if strings.Contains(s, pin) {
		t.Fatalf("the PIN shows on the screen:\n%s", s)
	}
	m.keys("Enter")

	for _, who := range []string{"1-Ana", "2-Bo"} {
		m.waitFor("needed: how is it given?")
		m.keys("Down", "Down", "Enter") // "from a typed share file"
		m.waitFor("Path of the typed share file?")
		m.text(filepath.Join(pl.OutDir, "share-"+who+".txt"))
		m.keys("Enter")
		m.waitFor(who[2:] + "'s share is valid")
	}
	m.waitFor("Place the key in HSM token tmux-vault")
	m.text("y")
	m.keys("Enter")
	s = m.waitFor("EXIT=")
	if !strings.Contains(s, "EXIT=0") || !strings.Contains(s, "The key is in place") ||
		!strings.Contains(s, "computed inside the token") {
		t.Fatalf("the recovery did not finish:\n%s", s)
	}
	if strings.Contains(s, pin) {
		t.Fatalf("the PIN shows on the screen:\n%s", s)
	}
}
