package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"golang.org/x/term"

	"custos/ceremony"
	"custos/hsm"
	"custos/shares"
)

const recoverUsage = `usage: custos recover [--set set.json] [--sealed FILE] [--out FILE]
                      [--card SERIAL]... [--pin-file [SERIAL=]F]...
                      [--hsm URI [--hsm-path create|unwrap]] SHARE...

Rebuilds the secret from K or more shares: typed or printed .txt files,
.png/.jpg scans or photos of share pages, and custodian cards (--card, with
the custodian's PIN). The secret goes to --out FILE (created new, mode
0600), to standard output when that is not a terminal, or into an HSM.

    --set set.json    Pin the recovery to this set record: shares of other
                      sets are refused by name, and the check value must
                      match the record's. Needed for --hsm.
    --sealed FILE     A large secret's sealed file (secret.sealed), which
                      every share binds by digest.
    --hsm URI         Import the key into the PKCS#11 token the URI names,
                      sensitive and non-extractable, and prove it there
                      against the record's check values. The URI must name
                      the module (module-path=) and should read the token's
                      PIN from a file of mode 0600 (pin-source=file:...);
                      pin-value= is refused. The key's label is the URI's
                      object=, else the set's label, else custos-SETID; its
                      CKA_ID is the URI's id=, else the set ID. For a bundle
                      every HSM key of the archive is imported under its
                      name, object= is put before each name as a prefix,
                      and id= is refused. The token, the PIN and the label
                      are checked before any share is combined; a label or
                      ID already on the token is refused, never replaced.
    --hsm-path unwrap Bring the key in wrapped (C_UnwrapKey), for HSMs in
                      FIPS mode; the default, create, uses C_CreateObject.

    $ custos recover --out master.key shares/share-1-Ana.txt scan-of-bo.jpg
    $ custos recover --set shares/set.json --card 12345678 --card 23456789 > master.key
    $ custos recover --set shares/set.json \
          --hsm 'pkcs11:token=vault;object=master?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-source=file:/run/hsm.pin' \
          shares/share-1-Ana.txt shares/share-2-Bo.txt
`

func cmdRecover(args []string) error {
	fs := newFlags("recover")
	out := fs.String("out", "", "")
	sealed := fs.String("sealed", "", "")
	setPath := fs.String("set", "", "")
	var cardSerials listFlag
	fs.Var(&cardSerials, "card", "")
	hsmURI := fs.String("hsm", "", "")
	hsmPath := fs.String("hsm-path", "create", "")
	var pinFiles listFlag // FILE for one card, or SERIAL=FILE for each
	fs.Var(&pinFiles, "pin-file", "")
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
	if *hsmURI != "" && *setPath == "" {
		return withHint(usagef("--hsm needs the set record (--set set.json)"),
			"the import is proven against the check values the set record holds")
	}
	path := hsm.PathCreate
	switch *hsmPath {
	case "create":
	case "unwrap":
		path = hsm.PathUnwrap
	default:
		return usagef("--hsm-path %q: use create (C_CreateObject) or unwrap (wrapped import, for HSMs in FIPS mode)", *hsmPath)
	}
	if *sealed != "" {
		if err := checkSealedPath(*sealed); err != nil {
			return err
		}
	}

	// The output is checked before any card PIN is asked: a name taken or
	// a missing directory is found while nothing has been spent.
	if *out != "" {
		if err := checkNewOutput(*out); err != nil {
			return err
		}
	}

	var record *ceremony.SetRecord
	if *setPath != "" {
		if record, err = readRecord(*setPath); err != nil {
			return err
		}
	}
	// A sealed secret's file is the one the record names, beside it,
	// unless --sealed names another; either is checked now, without the
	// key, before anyone gives a share.
	if record != nil && record.Sealed != nil {
		if *sealed == "" {
			*sealed = filepath.Join(filepath.Dir(*setPath), filepath.Base(record.Sealed.File))
			info("the secret is sealed in %s, the file set.json names", *sealed)
		}
		if err := ceremony.CheckSealed(*sealed, record); err != nil {
			return withHint(err, "give this set's sealed file with --sealed FILE")
		}
	}
	// The target is checked before any card PIN is asked and before any
	// share is combined: a token that cannot take the key is found while
	// nothing has been rebuilt.
	var target *hsmTarget
	if *hsmURI != "" {
		if target, err = openHSMTarget(*hsmURI, record, hsm.Options{Path: path}); err != nil {
			return err
		}
		defer target.close()
	}

	in := &recoveryInput{record: record, sealed: *sealed}
	in.offered = ceremony.ReadShareFiles(pos)
	cardShares, err := readCardShares(cardSerials, pinFiles, record)
	if err != nil {
		return err
	}
	in.offered = append(in.offered, cardShares...)
	in.unreadCards = len(cardSerials) - len(cardShares)

	if target != nil {
		return recoverToHSM(target, in)
	}
	return recoverToFile(in, *out)
}

// recoveryInput is what a recovery was given.
type recoveryInput struct {
	offered     []ceremony.Offered
	record      *ceremony.SetRecord // nil without --set
	sealed      string
	unreadCards int // cards given with --card that could not be read
}

// readable counts the offered shares that were read.
func (in *recoveryInput) readable() int {
	n := 0
	for _, o := range in.offered {
		if o.Share != nil && o.Err == nil {
			n++
		}
	}
	return n
}

// readRecord reads a set record for a command, refusing one altered since
// the split and warning about one nothing vouches for.
func readRecord(path string) (*ceremony.SetRecord, error) {
	r, err := ceremony.ReadRecord(path)
	var altered *ceremony.RecordAlteredError
	if errors.As(err, &altered) {
		return nil, withHint(err, "use an unaltered copy of the set record "+
			"(the one kept with the ceremony papers), and find out who "+
			"changed this one; its check values are on the paper transcript")
	}
	if err != nil {
		return nil, err
	}
	return r, nil
}

// recoverToFile rebuilds the secret into a new file (O_EXCL, 0600) or onto
// standard output. A file is removed again on any failure.
func recoverToFile(in *recoveryInput, out string) error {
	record, sealed := in.record, in.sealed
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
		return recoverHints(err, in)
	}

	rec, err := ceremony.Rebuild(interrupted, ceremony.RecoverRequest{
		Offered: in.offered, Record: record, Sealed: sealed, Out: w,
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
			return recoverHints(err, in)
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

// checkNewOutput refuses an output path that exists or whose directory
// does not; the file itself is created later with O_EXCL, which still
// refuses one that appears in between.
func checkNewOutput(out string) error {
	if _, err := os.Lstat(out); err == nil {
		return outputHint(&ceremony.ExistsError{Path: out}, out)
	}
	if fi, err := os.Stat(filepath.Dir(out)); err != nil || !fi.IsDir() {
		return outputHint(fs.ErrNotExist, out)
	}
	return nil
}

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

// recoverHints says what to do about a recovery that failed before
// anything was written.
func recoverHints(err error, in *recoveryInput) error {
	var q *shares.QuorumError
	var cm *shares.CheckMismatchError
	var se *shares.SealedError
	switch {
	case errors.As(err, &q):
		return withHint(err, quorumHint(q, in))
	case in.unreadCards > 0 && in.readable() == 0:
		return withHint(err, cardsHint(in))
	case errors.As(err, &cm):
		return withHint(err, "the rebuilt key is NOT the recorded key; do not use it. Nothing was written")
	case errors.As(err, &se):
		return withHint(err, sealedHint+"; nothing was written")
	}
	return err
}

// checkSealedPath refuses a --sealed file that cannot be opened, before
// any share is read.
func checkSealedPath(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return withHint(errorf("sealed file %s: %w", path, unwrapPathError(err)), sealedHint)
	}
	return f.Close()
}

// unwrapPathError drops the path an *fs.PathError repeats.
func unwrapPathError(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// sealedHint is what to do when the sealed file of a large secret is
// refused: the shares alone cannot rebuild it.
const sealedHint = "give --sealed the secret.sealed the split wrote beside this set's set.json, or a backup copy of it"

// quorumHint tells too few shares from shares of the wrong set: a
// recovery pinned to one set record refuses another set's shares, and
// bringing more custodians would not help.
func quorumHint(q *shares.QuorumError, in *recoveryInput) string {
	n := 0
	for _, o := range in.offered {
		if o.Share != nil && o.Share.SetID != q.SetID {
			n++
		}
	}
	switch {
	case n == 0 && in.unreadCards > 0:
		return cardsHint(in)
	case n == 0:
		return "bring more custodians' shares; nothing was written"
	case q.Have == 0 && in.record != nil:
		return fmt.Sprintf("the shares belong to another set than the set record (set %s): wrong set record? "+
			"give their set's set.json with --set, or bring shares of set %s; nothing was written",
			q.SetID.Short(), q.SetID.Short())
	}
	return fmt.Sprintf("%s of another set (listed above); bring more custodians' shares of set %s; nothing was written",
		nounCount(n, "offered share is", "offered shares are"), q.SetID.Short())
}

// cardsHint points at the cards that could not be read, whose warnings
// above say why, before asking for more custodians.
func cardsHint(in *recoveryInput) string {
	return fmt.Sprintf("%s given could not be read (see above): fix what the warning says (the PIN, "+
		"the card, or a set record of another set with --set), or bring more custodians' shares; nothing was written",
		nounCount(in.unreadCards, "card", "cards"))
}
