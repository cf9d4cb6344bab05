package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"custos/ceremony"
	"custos/printer"
	"custos/shares"
)

const splitUsage = `usage: custos split --threshold K --shares N [--name NAME]... [--label L]
                    [--kind raw|aes|hmac|private-key|bundle] [--paper a4|letter]
                    [--card NAME=SERIAL]... [--roots CA.pem]
                    [--pin-file [SERIAL=]F]... [--reassign-card SERIAL]...
                    [--no-paper] --out DIR KEYFILE

Splits KEYFILE ("-" for standard input) into N shares, any K of which
rebuild it. Writes one PDF and one text file per share and set.json, the
public record signed by the split's dealer key, into DIR. Every page is
read back and every K-subset is combined before split succeeds; on any
failure every file it made is removed.

    --name NAME        The custodian of each share, in order (one per share).
    --label L          What the secret is, printed on every share; also the
                       key's label in an HSM after "recover --hsm".
    --kind KIND        What the secret is; detected when left out. A bundle
                       is a tar archive of many named keys.
    --card NAME=SERIAL Also store NAME's share on their enrolled card. Every
                       card is checked before anything is written.
    --pin-file SERIAL=F
                       The PIN of card SERIAL: the first line of F (mode
                       0600). With a single --card, --pin-file F. A card
                       without one is asked at the terminal, and again
                       after a wrong PIN.
    --reassign-card SERIAL
                       Use card SERIAL although it was enrolled for another
                       custodian (renamed, or handed over); without this a
                       card carrying only other custodians' names is
                       refused as possibly swapped.
    --no-paper         Cards only: needs a --card for every custodian.

    $ custos split --threshold 2 --shares 3 --name Ana --name Bo --name Chen \
          --label "backup master key" --kind aes --out shares/ master.key
    $ custos split --threshold 2 --shares 2 --name Ana --name Bo \
          --card Ana=17778437 --card Bo=48318542 \
          --pin-file 17778437=ana.pin --out shares/ master.key
`

func cmdSplit(args []string) error {
	fs := newFlags("split")
	k := fs.Int("threshold", 0, "")
	n := fs.Int("shares", 0, "")
	var names listFlag
	fs.Var(&names, "name", "")
	label := fs.String("label", "", "")
	kindName := fs.String("kind", "", "")
	paperName := fs.String("paper", "a4", "")
	out := fs.String("out", "", "")
	var cf cardFlags
	cf.register(fs)
	noPaper := fs.Bool("no-paper", false, "")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}

	switch {
	case len(pos) != 1:
		return usagef("split takes one KEYFILE (or - for standard input), got %d", len(pos))
	case *k == 0 || *n == 0:
		return usagef("split needs --threshold K and --shares N")
	case *out == "":
		return usagef("split needs --out DIR for the share files")
	case len(names) != 0 && len(names) != *n:
		return usagef("%d --name flags for %d shares: give one name per share, in order, or none", len(names), *n)
	case *noPaper && len(cf.specs) != *n:
		return usagef("--no-paper needs a --card for every custodian; otherwise a share would exist nowhere")
	}
	paper, err := printer.ParsePaper(*paperName)
	if err != nil {
		return usagef("%v", err)
	}
	var kind shares.Kind
	if *kindName != "" {
		if kind, err = shares.ParseKind(*kindName); err != nil {
			return usagef("%v", err)
		}
	}
	cards, err := cf.writer(names)
	if err != nil {
		return err
	}

	secret, closeSecret, err := openSecretInput(pos[0])
	if err != nil {
		return err
	}
	defer closeSecret()

	leftBehind.watchDir(*out) // a second Ctrl-C lists what is left there
	req := ceremony.SplitRequest{
		Policy: shares.Policy{Threshold: *k, Count: *n, Custodians: names, Label: *label, Kind: kind},
		Paper:  paper, OutDir: *out, Secret: secret, NoPaper: *noPaper, Cards: cards,
	}
	if err := req.Policy.Validate(); err != nil {
		return usagef("%v", err)
	}
	res, err := ceremony.SplitFiles(interrupted, req, reporter())
	if err != nil {
		return splitHints(err, len(cf.specs) > 0)
	}
	printSplitSummary(res.Record, *out, kind == 0)
	return nil
}

// splitHints says what a failed split left behind; cards are mentioned
// only when the split was given some.
func splitHints(err error, cards bool) error {
	var exists *ceremony.ExistsError
	switch {
	case errors.As(err, &exists):
		return withHint(err, "choose an empty --out directory; nothing was written")
	case cards:
		return splitCardHints(err)
	}
	return withHint(err, "every file this split created has been removed")
}

// openSecretInput opens the key file, or standard input for "-".
func openSecretInput(name string) (io.Reader, func(), error) {
	if name == "-" {
		return os.Stdin, func() {}, nil
	}
	f, err := os.Open(name)
	if err != nil {
		return nil, nil, errorf("opening key file: %w", err)
	}
	return f, func() { f.Close() }, nil
}

func reporter() ceremony.Reporter {
	return ceremony.Reporter{Info: info, Warn: warning}
}

func printSplitSummary(r *ceremony.SetRecord, dir string, detected bool) {
	if detected {
		info("the secret looks like %s; recorded as kind %s (use --kind to say otherwise)", describeAlg(r.Algorithm), r.Kind)
	}
	info("split set %s (%q) into %d shares; any %d rebuild it", r.SetID, r.Label, r.Count, r.Threshold)
	for _, c := range r.Checks {
		info("check value %s", c)
	}
	info("dealer key fingerprint %s", r.DealerFP)
	info("public record: %s", filepath.Join(dir, ceremony.RecordFile))
}

func describeAlg(alg string) string {
	if alg == "raw" {
		return "raw bytes"
	}
	return "a " + alg + " private key"
}

// printChecks shows check values so witnesses can compare them.
func printChecks(prefix string, checks []shares.CheckValue) {
	for _, c := range checks {
		info("%s%s", prefix, c)
	}
}

var _ = fmt.Sprint
