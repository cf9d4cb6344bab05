package main

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"text/tabwriter"

	"custos/ceremony"
	"custos/hsm"
	"custos/shares"

	"golang.org/x/term"
)

// The hsm commands: list the tokens of a PKCS#11 module and the keys custos
// restored into one, and prove a key on a token against its check values.

const hsmListUsage = `usage: custos hsm list [--all] URI

Shows the initialised tokens the PKCS#11 URI matches. When it matches one,
logs in and shows the keys custos restored there, with check values the
token computes now; --all shows every secret and private key.

    $ custos hsm list 'pkcs11:?module-path=/usr/lib/softhsm/libsofthsm2.so'
    $ custos hsm list 'pkcs11:token=vault-a?module-path=/usr/lib/softhsm/libsofthsm2.so'
`

const hsmVerifyUsage = `usage: custos hsm verify URI --set set.json
       custos hsm verify URI [--kcv HEX] [--ecb HEX] [--hmac HEX]
                         [--spki-sha256 HEX]

Proves inside the token that a key has the set record's check values (or
the ones given): the annual drill's last step. With --set, the key is the
one "custos recover --hsm" imported, found by its CKA_ID: the set ID, or
the URI's id=; object= in the URI also asks for that label. For a bundle
every key it holds is proven, each found by the CKA_ID derived from the
set ID and its name (object= is then the prefix of their labels).

    $ custos hsm verify 'pkcs11:token=vault-a?module-path=/usr/lib/softhsm/libsofthsm2.so' --set set.json
    $ custos hsm verify 'pkcs11:token=vault-a;object=master?module-path=/usr/lib/softhsm/libsofthsm2.so' --kcv 1A2B3C
`

func cmdHSMList(args []string) error {
	fs := newFlags("hsm list")
	all := fs.Bool("all", false, "")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usagef("hsm list takes one PKCS#11 URI\n%s", strings.TrimSuffix(hsmListUsage, "\n"))
	}
	u, err := hsmParseURI(pos[0])
	if err != nil {
		return err
	}
	ctx, stop := hsmSignals()
	defer stop()
	return hsmList(ctx, os.Stdout, u, *all)
}

// hsmSignals catches Ctrl-C and SIGTERM for the length of an hsm command,
// so that an interrupt ends it through its deferred Close, and C_Finalize,
// rather than killing the process inside the module.
func hsmSignals() (context.Context, context.CancelFunc) {
	return signal.NotifyContext(context.Background(), os.Interrupt,
		syscall.SIGTERM)
}

func hsmList(ctx context.Context, w io.Writer, u *hsm.URI, all bool) error {
	tokens, err := hsm.Tokens(u)
	if err != nil {
		return hsmHints(err)
	}
	switch len(tokens) {
	case 0:
		return hsmHints(&hsm.TokenError{Module: u.ModulePath,
			Err: hsm.ErrTokenNotFound})
	case 1:
	default:
		for _, t := range tokens {
			fmt.Fprintln(w, hsmTokenLine(t))
		}
		info("%d tokens match; name one with token= or serial= to see "+
			"its keys", len(tokens))
		return nil
	}

	fmt.Fprintln(w, hsmTokenLine(tokens[0]))
	s, err := hsm.Open(u, hsmPrompt(ctx))
	if err != nil {
		return hsmHints(err)
	}
	defer s.Close()
	objs, err := s.List(all)
	if err != nil {
		return hsmHints(err)
	}
	hsmPrintObjects(w, objs)
	return s.Close()
}

func hsmTokenLine(t hsm.TokenInfo) string {
	return fmt.Sprintf("%v  %s %s, firmware %s", t, t.Manufacturer, t.Model,
		t.Firmware)
}

func hsmPrintObjects(w io.Writer, objs []hsm.Object) {
	if len(objs) == 0 {
		fmt.Fprintln(w, "  no keys restored by custos on this token")
		return
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "  LABEL\tID\tKIND\tCHECK VALUES\tRESTORED")
	for _, o := range objs {
		when := "-"
		if o.Custos {
			when = o.Imported.Format("2006-01-02 15:04 UTC")
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\n", o.Label,
			hex.EncodeToString(o.ID), o.Kind, hsmCheckText(o.Check), when)
		for _, n := range o.Notes {
			fmt.Fprintf(tw, "  \t\t\t(%s)\t\n", n)
		}
	}
	tw.Flush()
}

// hsmCheckText shows check values as custodians read them on paper.
func hsmCheckText(c hsm.Check) string {
	var parts []string
	add := func(name string, v []byte) {
		if len(v) > 0 {
			parts = append(parts, name+" "+strings.ToUpper(hex.EncodeToString(v)))
		}
	}
	add("KCV", c.KCV)
	add("ECB", c.ECB)
	add("HMAC", c.HMAC)
	if len(c.SPKISHA256) > 0 {
		parts = append(parts, "SPKI-SHA256 "+hex.EncodeToString(c.SPKISHA256))
	}
	if len(parts) == 0 {
		return "-"
	}
	return strings.Join(parts, "  ")
}

func cmdHSMVerify(args []string) error {
	fs := newFlags("hsm verify")
	var flags [4]string
	names := []string{"kcv", "ecb", "hmac", "spki-sha256"}
	for i, n := range names {
		fs.StringVar(&flags[i], n, "", "")
	}
	setPath := fs.String("set", "", "")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usagef("hsm verify takes one PKCS#11 URI\n%s", strings.TrimSuffix(hsmVerifyUsage, "\n"))
	}
	var vals [4][]byte
	for i, f := range flags {
		if vals[i], err = hsmHex(names[i], f); err != nil {
			return err
		}
	}
	want := hsm.Check{KCV: vals[0], ECB: vals[1], HMAC: vals[2],
		SPKISHA256: vals[3]}
	u, err := hsmParseURI(pos[0])
	if err != nil {
		return err
	}

	var targets []verifyTarget
	switch {
	case *setPath != "" && !want.IsZero():
		return usagef("give either --set or check values, not both")
	case *setPath != "":
		if targets, err = recordTargets(*setPath, u); err != nil {
			return err
		}
	case want.IsZero():
		return usagef("give the set record (--set set.json) or the check " +
			"values to prove: --kcv, --ecb, --hmac or --spki-sha256")
	case u.Object == "" && len(u.ID) == 0:
		return usagef("name the key in the URI with object=LABEL or id=…")
	default:
		targets = []verifyTarget{{ref: hsm.ObjectRef{Label: u.Object, ID: u.ID},
			want: want}}
	}
	ctx, stop := hsmSignals()
	defer stop()
	return hsmVerify(ctx, os.Stdout, u, targets, *setPath != "")
}

// verifyTarget is one key to prove and the check values it must have.
type verifyTarget struct {
	ref  hsm.ObjectRef
	want hsm.Check
}

// recordTargets takes the keys to prove from a set record, named as
// "custos recover --hsm" named them: by CKA_ID (the set ID, or for a
// bundle one derived from it and each entry's name), and by label too
// when the URI gives object= (for a bundle, the prefix of the labels).
func recordTargets(path string, u *hsm.URI) ([]verifyTarget, error) {
	record, err := readRecord(path)
	if err != nil {
		return nil, err
	}
	if record.Kind == shares.KindBundle {
		if err := checkManifest(record); err != nil {
			return nil, err
		}
		if _, err := ceremony.HSMBundlePrefix(u); err != nil {
			return nil, usagef("%v", err)
		}
	}
	keys, skipped, err := ceremony.PlanHSMKeys(u, record)
	if err != nil {
		return nil, errorf("set %s has no key an HSM holds: %w", record.SetID.Short(), err)
	}
	for _, sk := range skipped {
		warning("not in the HSM, not checked: %s", sk)
	}
	var out []verifyTarget
	for _, k := range keys {
		ref := hsm.ObjectRef{ID: k.ID}
		if u.Object != "" {
			ref.Label = k.Label
		}
		out = append(out, verifyTarget{ref: ref, want: k.Expect})
	}
	return out, nil
}

// hsmVerify proves each key against its expected check values, on one
// session. fromRecord says the values came from a set record, for the
// advice on a mismatch.
func hsmVerify(ctx context.Context, w io.Writer, u *hsm.URI,
	targets []verifyTarget, fromRecord bool) error {

	s, err := hsm.Open(u, hsmPrompt(ctx))
	if err != nil {
		return hsmHints(err)
	}
	defer s.Close()
	failed := 0
	for _, t := range targets {
		proof, err := s.VerifyObject(t.ref, t.want)
		if err != nil && len(targets) == 1 {
			return verifyHints(err, fromRecord)
		}
		if err != nil {
			failed++
			warning("%v", err)
			continue
		}
		fmt.Fprintf(w, "%s on %v: proven inside the token (%s): %s\n",
			proof.Object, s.Info(), strings.Join(proof.Proven, ", "),
			hsmCheckText(proof.Got))
		for _, sk := range proof.Skipped {
			warning("not checked: %s", sk)
		}
	}
	if failed > 0 {
		return withHint(errorf("%d of %d keys of the set did not prove "+
			"on %v (listed above)", failed, len(targets), s.Info()),
			"custos hsm list --all URI shows the keys on the token")
	}
	return s.Close()
}

// verifyHints adds advice to a failed proof; a mismatch means different
// things with and without a set record.
func verifyHints(err error, fromRecord bool) error {
	if errors.Is(err, hsm.ErrCheckMismatch) && !fromRecord {
		return withHint(err, "the key on the token does not have the "+
			"check values given; check them, and the object= or id= in "+
			"the URI")
	}
	return hsmHints(err)
}

func hsmParseURI(s string) (*hsm.URI, error) {
	u, err := hsm.ParseURI(s)
	switch {
	case errors.Is(err, hsm.ErrPINInURI):
		return nil, withHint(err, "write the PIN to a file only you can "+
			"read and add pin-source=file:/path/to/pin")
	case err != nil:
		return nil, usagef("%v", err)
	case u.ModulePath == "":
		return nil, withHint(usagef("the URI names no PKCS#11 module"),
			"add ?module-path=/usr/lib/softhsm/libsofthsm2.so (or your "+
				"HSM's module) to the URI")
	}
	if src, ok := strings.CutPrefix(u.PINSource, "file:"); ok {
		if err := checkSecretFile(strings.TrimPrefix(src, "//")); err != nil {
			return nil, err
		}
	}
	return u, nil
}

// hsmPrompt asks for a token's user PIN on the terminal. An interrupt
// while it waits restores the terminal and fails the login, so the
// session and the module are still closed.
func hsmPrompt(ctx context.Context) hsm.PINPrompt {
	return func(t hsm.TokenInfo) ([]byte, error) {
		if t.PINFinalTry {
			warning("%v has ONE PIN try left: a wrong PIN locks it", t)
		} else if t.PINCountLow {
			warning("wrong PINs were entered on %v before", t)
		}
		tty, err := os.OpenFile("/dev/tty", os.O_RDWR, 0)
		if err != nil {
			return nil, withHint(errorf("no terminal to ask for the PIN"),
				"add pin-source=file:/path/to/pin (mode 0600) to the URI")
		}
		fd := int(tty.Fd())
		state, err := term.GetState(fd)
		if err != nil {
			tty.Close()
			return nil, errorf("reading terminal state: %w", err)
		}
		fmt.Fprintf(tty, "user PIN of %v: ", t)

		type result struct {
			pin []byte
			err error
		}
		got := make(chan result, 1)
		go func() {
			pin, err := term.ReadPassword(fd)
			got <- result{pin, err}
		}()
		select {
		case r := <-got:
			fmt.Fprintln(tty)
			tty.Close()
			if r.err != nil {
				return nil, errorf("reading from the terminal: %w", r.err)
			}
			return r.pin, nil
		case <-ctx.Done():
			// The reader stays blocked on the terminal; the process is
			// about to end. TODO: cancel the read itself.
			term.Restore(fd, state)
			fmt.Fprintln(tty)
			return nil, errorf("interrupted")
		}
	}
}

// hsmHints adds advice for the errors a person can act on.
func hsmHints(err error) error {
	var te *hsm.TokenError
	for _, h := range hsmAdvice {
		if errors.Is(err, h.err) {
			return withHint(err, h.hint)
		}
	}
	if errors.As(err, &te) && errors.Is(err, hsm.ErrTokenNotFound) {
		return withHint(err, fmt.Sprintf("custos hsm list "+
			"'pkcs11:?module-path=%s' shows the tokens there", te.Module))
	}
	return err
}

// hsmAdvice pairs the errors a person can act on with what to do.
var hsmAdvice = []struct {
	err  error
	hint string
}{
	{hsm.ErrTokenAmbiguous, "add serial=… to the URI to pick one"},
	{hsm.ErrModule, "module-path= in the URI must be the HSM's PKCS#11 " +
		"library (SoftHSM's is /usr/lib/softhsm/libsofthsm2.so)"},
	{hsm.ErrPINLocked,
		"the token's security officer must unblock the user PIN"},
	{hsm.ErrPINIncorrect,
		"check the PIN and try again; tokens lock after a few wrong PINs"},
	{hsm.ErrMechanismMissing, "this HSM cannot do the import as asked; " +
		"try the other import path or another HSM"},
	{hsm.ErrObjectExists, "nothing was changed; the key's label (object=) " +
		"or its CKA_ID (id=, by default the set ID) is taken: give the one " +
		"that clashes anew in the URI, or remove the old key with the " +
		"token's own tools first; a bundle's keys take their IDs from the " +
		"set, so restore it into another token"},
	{hsm.ErrCheckMismatch,
		"the key on the token is not the one the set record describes"},
	{hsm.ErrObjectNotFound,
		"custos hsm list --all URI shows the keys on the token"},
}

// hsmHex reads a hex check value given on the command line.
func hsmHex(name, v string) ([]byte, error) {
	if v == "" {
		return nil, nil
	}
	b, err := hex.DecodeString(strings.ReplaceAll(v, " ", ""))
	if err != nil {
		return nil, usagef("--%s %q is not hex", name, v)
	}
	return b, nil
}
