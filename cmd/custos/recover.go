package main

import (
	"bytes"
	"errors"
	"io"
	"io/fs"
	"os"

	"golang.org/x/term"

	"custos/ceremony"
	"custos/hsm"
	"custos/shares"
)

func cmdRecover(args []string) error {
	fs := newFlags("recover")
	out := fs.String("out", "", "")
	sealed := fs.String("sealed", "", "")
	setPath := fs.String("set", "", "")
	var cardSerials listFlag
	fs.Var(&cardSerials, "card", "")
	hsmURI := fs.String("hsm", "", "")
	hsmPath := fs.String("hsm-path", "create", "")
	pinFile := fs.String("pin-file", "", "")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(pos) == 0 && len(cardSerials) == 0 {
		return usagef("recover needs shares: .txt files, .png/.jpg scans, or --card SERIAL")
	}
	if *out == "-" {
		return usagef("--out - would make a file named \"-\"; leave out --out to write to standard output")
	}
	toStdout := *out == "" && *hsmURI == ""
	if toStdout && term.IsTerminal(int(os.Stdout.Fd())) {
		return withHint(usagef("refusing to write the secret to a terminal"),
			"use --out FILE, --hsm URI, or redirect standard output to a file")
	}
	if *out != "" && *hsmURI != "" {
		return usagef("choose one target: --out FILE or --hsm URI")
	}
	path := hsm.PathCreate
	switch *hsmPath {
	case "create":
	case "unwrap":
		path = hsm.PathUnwrap
	default:
		return usagef("--hsm-path %q: use create (C_CreateObject) or unwrap (wrapped import, for HSMs in FIPS mode)", *hsmPath)
	}

	var record *ceremony.SetRecord
	if *setPath != "" {
		if record, err = ceremony.ReadRecord(*setPath); err != nil {
			return err
		}
	}
	offered := ceremony.ReadShareFiles(pos)
	cardShares, err := readCardShares(cardSerials, *pinFile, record)
	if err != nil {
		return err
	}
	offered = append(offered, cardShares...)

	if *hsmURI != "" {
		return recoverToHSM(*hsmURI, offered, record, *sealed, path)
	}
	return recoverToFile(offered, record, *sealed, *out)
}

// recoverToFile rebuilds the secret into a new file (O_EXCL, 0600) or onto
// standard output. A file is removed again on any failure.
func recoverToFile(offered []ceremony.Offered, record *ceremony.SetRecord, sealed, out string) error {
	var w io.Writer = os.Stdout
	var f *os.File
	if out != "" {
		var err error
		if f, err = ceremony.CreateSecretFile(out); err != nil {
			return outputHint(err, out)
		}
		w = f
	}
	fail := func(err error) error {
		if f != nil {
			f.Close()
			os.Remove(out)
		}
		return recoverHints(err)
	}

	rec, err := ceremony.Rebuild(interrupted, ceremony.RecoverRequest{
		Offered: offered, Record: record, Sealed: sealed, Out: w,
		VerifyFirst: f == nil, // standard output cannot be taken back
	}, reporter())
	if err != nil {
		return fail(err)
	}
	defer rec.Wipe()
	if rec.Secret != nil {
		if _, err := w.Write(rec.Secret.Bytes); err != nil {
			return fail(errorf("writing the secret: %w", err))
		}
	}
	if f != nil {
		if err := f.Sync(); err != nil {
			return fail(err)
		}
		if err := f.Close(); err != nil {
			f = nil
			os.Remove(out)
			return recoverHints(err)
		}
	}
	printChecks("rebuilt secret's check value: ", rec.Checks)
	if sealed != "" && rec.Quorum.Set.Inline != nil {
		warning("--sealed %s was not used: this set's secret rides inside the shares", sealed)
	}
	if record != nil {
		info("check value matches the set record %s", record.SetID.Short())
	} else {
		info("check value matches the one every share carries; compare it with the paper record")
	}
	if out != "" {
		info("wrote the secret to %s (mode 0600)", out)
	}
	return nil
}

func bytesReader(b []byte) io.Reader { return bytes.NewReader(b) }

// outputHint explains why the output file could not be created.
func outputHint(err error, out string) error {
	var exists *ceremony.ExistsError
	switch {
	case errors.As(err, &exists):
		return withHint(err, "custos never overwrites a file; choose a new name")
	case errors.Is(err, fs.ErrNotExist):
		return withHint(errorf("cannot create %s: its directory does not exist", out), "create the directory first, or choose another path")
	case errors.Is(err, fs.ErrPermission):
		return withHint(errorf("cannot create %s: permission denied", out), "choose a directory you can write to")
	}
	return errorf("cannot create %s: %w", out, err)
}

func recoverHints(err error) error {
	var q *shares.QuorumError
	var cm *shares.CheckMismatchError
	switch {
	case errors.As(err, &q):
		return withHint(err, "bring more custodians' shares; nothing was written")
	case errors.As(err, &cm):
		return withHint(err, "the rebuilt key is NOT the recorded key; do not use it. Nothing was written")
	}
	return err
}
