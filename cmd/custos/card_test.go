package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"custos/shares"
	"custos/smartcard"
	"custos/smartcard/virtual/virtualtest"
)

// TestCardCommands runs the card commands against a virtual card in a
// pcscd reader (.ci/with-pcscd go test ./cmd/custos/ -run TestCardCommands).
func TestCardCommands(t *testing.T) {
	ins := virtualtest.Start(t, 1)[0]
	dir := t.TempDir()
	file := func(name, content string, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil { // whatever the umask
			t.Fatal(err)
		}
		return p
	}
	pin := file("pin", "24681012\n", 0o600)
	puk := file("puk", "97531864\n", 0o600)
	loose := file("loose", "24681012\n", 0o644)
	roots := file("ca.pem", string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE",
		Bytes: ins.Card.AttestationCA().Raw})), 0o644)
	serial := fmt.Sprint(ins.Serial)
	var out bytes.Buffer
	cardOut = &out
	defer func() { cardOut = os.Stdout }()

	if err := cmdCardEnrol([]string{"--serial", serial, "--custodian", "Ana",
		"--new-pin-file", loose, "--new-puk-file", puk, "--roots", roots}); err == nil ||
		!strings.Contains(err.Error(), "readable by others") {
		t.Fatalf("enrol with a loose PIN file: %v", err)
	}
	if err := cmdCardStatus([]string{"--serial", serial}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "PIN: FACTORY DEFAULT, 3 tries left") {
		t.Fatalf("status of a factory card:\n%s", out.String())
	}

	att := filepath.Join(dir, "att.pem")
	if err := cmdCardEnrol([]string{"--serial", serial, "--custodian", "Ana",
		"--new-pin-file", pin, "--new-puk-file", puk, "--roots", roots,
		"--attestation-out", att}); err != nil {
		t.Fatalf("enrol: %v", err)
	}
	if b, err := os.ReadFile(att); err != nil || bytes.Count(b, []byte("BEGIN CERTIFICATE")) != 2 {
		t.Fatalf("attestation file: %v", err)
	}

	// Store a share with the library, as split will.
	c, err := smartcard.Open(context.Background(), ins.Serial)
	if err != nil {
		t.Fatal(err)
	}
	var set shares.SetID
	rand.Read(set[:])
	_, dealer, _ := ed25519.GenerateKey(rand.Reader)
	p, _ := newPINPrompt(pin)
	err = c.Store(smartcard.StoreRequest{Slot: smartcard.FirstSlot, SetID: set, Index: 2,
		Label: "test key", Share: []byte("share"), Dealer: dealer, Prompt: p})
	c.Close()
	if err != nil {
		t.Fatal(err)
	}

	out.Reset()
	if err := cmdCardStatus([]string{"--serial", serial}); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"PIN: changed, 3 tries left", "management key: changed",
		"slot 82: share 2 of set " + set.String() + ` for "Ana" (test key)`, "dealer signature valid"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("status lacks %q:\n%s", want, out.String())
		}
	}
	out.Reset()
	if err := cmdCardList(nil); err != nil || !strings.Contains(out.String(), serial+" ") ||
		!strings.Contains(out.String(), "1 custos share") {
		t.Fatalf("list: %v\n%s", err, out.String())
	}

	var other shares.SetID
	if err := cmdCardWipe([]string{"--serial", serial, "--set", other.String(), "--pin-file", pin}); err == nil {
		t.Fatal("wiped a set the card does not hold")
	}
	if err := cmdCardWipe([]string{"--serial", serial, "--set", set.String(), "--pin-file", pin}); err != nil {
		t.Fatalf("wipe: %v", err)
	}
	out.Reset()
	cmdCardStatus([]string{"--serial", serial})
	if !strings.Contains(out.String(), `slot 82: enrolled for "Ana", no share`) {
		t.Fatalf("status after wipe:\n%s", out.String())
	}

	err = cmdCardWipe([]string{"--serial", serial, "--reset"})
	if !errors.Is(err, smartcard.ErrPINNotBlocked) {
		t.Fatalf("reset with a working PIN: %v", err)
	}
	if err := cmdCardStatus([]string{"--serial", "99"}); err == nil || !strings.Contains(err.Error(), "card 99 is not in any reader") {
		t.Fatalf("status of an absent card: %v", err)
	}
}
