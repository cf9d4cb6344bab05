package main

import (
	"context"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"custos/smartcard/virtual"
)

const cardServeVirtualUsage = `Usage:
    custos card serve-virtual --state FILE [--reader-port N] [--export-ca FILE]

Runs a virtual YubiKey-compatible PIV card for rehearsals and drills, until
interrupted. The card is inserted into a vsmartcard vpcd reader of the local
pcscd, where custos (and yubico-piv-tool, OpenSC, ...) see it as a card.

The card lives in the state file: created fresh (random serial, PIN 123456,
PUK 12345678, default management key) when it does not exist, and rewritten
after every change. It holds the card's private keys in the clear: it is a
rehearsal card, not a secure element. Never use one for real custody.

Options:
    --state FILE        The card's state file (mode 0600).
    --reader-port N     The vpcd reader's TCP port on 127.0.0.1 (default
                        35963, "Virtual PCD 00 00"; 35964 is "... 00 01").
    --export-ca FILE    Write the card's attestation root certificate (PEM)
                        to FILE, a new file, to check its attestations.

Examples:
    $ custos card serve-virtual --state ana.card
    $ custos card serve-virtual --state bo.card --reader-port 35964
`

// cmdCardServeVirtual runs "custos card serve-virtual".
func cmdCardServeVirtual(args []string) error {
	fs := flag.NewFlagSet("card serve-virtual", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	statePath := fs.String("state", "", "")
	port := fs.Int("reader-port", 35963, "")
	exportCA := fs.String("export-ca", "", "")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprint(os.Stdout, cardServeVirtualUsage)
			return nil
		}
		return usagef("card serve-virtual: %v", err)
	}
	switch {
	case fs.NArg() > 0:
		return usagef("card serve-virtual takes no arguments, got %q", fs.Arg(0))
	case *statePath == "":
		return usagef("card serve-virtual needs --state FILE, the card's state file")
	case *port < 1 || *port > 65535:
		return usagef("--reader-port %d is not a TCP port", *port)
	}
	if *exportCA != "" {
		if _, err := os.Lstat(*exportCA); err == nil {
			return withHint(errorf("--export-ca %s already exists", *exportCA),
				"choose a new file name; custos never overwrites one")
		}
	}

	card, err := virtual.Open(*statePath)
	if err != nil {
		return err
	}
	if *exportCA != "" {
		if err := writeCA(*exportCA, card); err != nil {
			return err
		}
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	major, minor, patch := card.Version()
	warning("%s holds this rehearsal card's private keys in the clear; "+
		"it is not a secure element", *statePath)
	info("virtual card %d (firmware %d.%d.%d) serving vpcd reader at "+
		"127.0.0.1:%d; press Ctrl-C to pull it",
		card.Serial(), major, minor, patch, *port)
	return serveVirtual(ctx, card, fmt.Sprintf("127.0.0.1:%d", *port))
}

// serveVirtual keeps the card in its reader until ctx is done, dialling
// again when vpcd is not there yet or hangs up (pcscd restarted).
func serveVirtual(ctx context.Context, card *virtual.Card, addr string) error {
	lastMsg := ""
	for {
		started := time.Now()
		err := card.Serve(ctx, addr)
		if ctx.Err() != nil {
			info("virtual card %d pulled", card.Serial())
			return nil
		}
		msg := "reader at " + addr + " is not there; waiting for pcscd with vpcd"
		if errors.Is(err, virtual.ErrHungUp) {
			msg = "reader at " + addr + " hung up; reinserting when it is back"
		}
		if msg != lastMsg || time.Since(started) > time.Second {
			info("%s", msg)
			lastMsg = msg
		}
		select {
		case <-ctx.Done():
			info("virtual card %d pulled", card.Serial())
			return nil
		case <-time.After(time.Second):
		}
	}
}

// writeCA writes the card's attestation root to a new file.
func writeCA(path string, card *virtual.Card) error {
	ca := card.AttestationCA()
	if ca == nil {
		return errorf("reading attestation root of card %d: no certificate", card.Serial())
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return fmt.Errorf("writing attestation root: %w", err)
	}
	err = pem.Encode(f, &pem.Block{Type: "CERTIFICATE", Bytes: ca.Raw})
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("writing attestation root %s: %w", path, err)
	}
	return nil
}
