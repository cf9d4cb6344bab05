package main

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"custos/smartcard/virtual"
	"custos/smartcard/virtual/virtualtest"

	"github.com/go-piv/piv-go/v2/piv"
)

// captureStderr sends the CLI's messages to a buffer for one test.
func captureStderr(t *testing.T) *bytes.Buffer {
	t.Helper()
	var buf bytes.Buffer
	old := stderr
	stderr = &buf
	t.Cleanup(func() { stderr = old })
	return &buf
}

func TestServeVirtualUsage(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		args []string
		want string
	}{
		{nil, "needs --state FILE"},
		{[]string{"--state"}, "flag needs an argument"},
		{[]string{"--state", filepath.Join(dir, "a"), "extra"}, `no arguments, got "extra"`},
		{[]string{"--state", filepath.Join(dir, "a"), "--reader-port", "0"}, "not a TCP port"},
		{[]string{"--state", filepath.Join(dir, "a"), "--reader-port", "70000"}, "not a TCP port"},
		{[]string{"--pin", "123456"}, "flag provided but not defined"},
	} {
		err := cmdCardServeVirtual(tc.args)
		if exitCode(err) != 2 || !strings.Contains(fmt.Sprint(err), tc.want) {
			t.Errorf("%q: got %v (exit %d), want usage error %q", tc.args, err, exitCode(err), tc.want)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "a")); !os.IsNotExist(err) {
		t.Error("a refused command created the state file")
	}
}

// A state file others can read is refused, naming the file and the fix.
func TestServeVirtualRefusesReadableState(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ana.card")
	if _, err := virtual.Open(path); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, 0o640); err != nil {
		t.Fatal(err)
	}
	err := cmdCardServeVirtual([]string{"--state", path})
	if exitCode(err) != 1 || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "chmod 600") {
		t.Fatalf("got %v (exit %d)", err, exitCode(err))
	}
}

// serve-virtual puts the card from the state file into the reader, where
// piv-go finds it, and pulls it when interrupted.
func TestServeVirtual(t *testing.T) {
	r := virtualtest.Reserve(t)
	out := captureStderr(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "bo.card")
	card, err := virtual.Open(path)
	if err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- serveVirtual(ctx, card, fmt.Sprintf("127.0.0.1:%d", r.Port)) }()
	virtualtest.WaitCard(t, r.Name, true)

	yk, err := piv.Open(r.Name)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	serial, err := yk.Serial()
	yk.Close()
	if err != nil || serial != card.Serial() {
		t.Errorf("serial %d, %v; card %d", serial, err, card.Serial())
	}

	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	virtualtest.WaitCard(t, r.Name, false)
	if !strings.Contains(out.String(), fmt.Sprintf("virtual card %d pulled", card.Serial())) {
		t.Errorf("messages: %q", out.String())
	}
}

func TestServeVirtualExportCA(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "chen.card")
	card, err := virtual.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	caPath := filepath.Join(dir, "ca.pem")
	if err := writeCA(caPath, card); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(caPath)
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(b)
	if block == nil {
		t.Fatal("no PEM block")
	}
	ca, err := x509.ParseCertificate(block.Bytes)
	if err != nil || !ca.Equal(card.AttestationCA()) {
		t.Fatalf("exported %v, %v", ca, err)
	}
	// An existing file is never overwritten.
	if err := writeCA(caPath, card); err == nil {
		t.Fatal("overwrote an existing file")
	}
}
