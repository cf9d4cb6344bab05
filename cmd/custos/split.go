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
	var cardSpecs listFlag
	fs.Var(&cardSpecs, "card", "")
	noPaper := fs.Bool("no-paper", false, "")
	pinFile := fs.String("pin-file", "", "")
	rootsFile := fs.String("roots", "", "")
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
	case *noPaper && len(cardSpecs) != *n:
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
	cards, err := parseCardSpecs(cardSpecs, names, *pinFile, *rootsFile)
	if err != nil {
		return err
	}

	secret, closeSecret, err := openSecretInput(pos[0])
	if err != nil {
		return err
	}
	defer closeSecret()

	req := ceremony.SplitRequest{
		Policy: shares.Policy{Threshold: *k, Count: *n, Custodians: names, Label: *label, Kind: kind},
		Paper:  paper, OutDir: *out, Secret: secret, NoPaper: *noPaper, Cards: cards,
	}
	if err := req.Policy.Validate(); err != nil {
		return usagef("%v", err)
	}
	res, err := ceremony.SplitFiles(interrupted, req, reporter())
	if err != nil {
		return splitHints(err)
	}
	printSplitSummary(res.Record, *out, kind == 0)
	return nil
}

func splitHints(err error) error {
	var exists *ceremony.ExistsError
	if errors.As(err, &exists) {
		return withHint(err, "choose an empty --out directory; nothing was written")
	}
	return withHint(err, "every file this split created has been removed; any card it wrote was wiped again (see above)")
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
