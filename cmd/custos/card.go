package main

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-piv/piv-go/v2/piv"
	"golang.org/x/sys/unix"

	"custos/ceremony"
	"custos/shares"
	"custos/smartcard"
)

const cardUsage = `Usage:
    custos card list
    custos card status --serial SERIAL
    custos card enrol --serial SERIAL --custodian NAME [--slot 82..95]
                      [--alg auto|p256|x25519] [--touch never|always|cached]
                      [--pin-file F] [--new-pin-file F] [--new-puk-file F]
                      [--roots CA.pem] [--attestation-out FILE]
                      [--replace SETID] [--replace-foreign]
    custos card wipe --serial SERIAL --set SETID [--pin-file F]
    custos card wipe --serial SERIAL --reset [--lose SETID]... [--lose-foreign]

Cards are found by serial number, never by reader. PINs are read from the
terminal, or from a file given with --pin-file (mode 0600 or stricter; the
first line is the PIN). At the terminal a wrong PIN is asked again, with
the tries left; a PIN file is tried once, and never spends a card's last
PIN try: run at a terminal and answer yes for that.

enrol sets a factory card's PIN and PUK (asked twice at the terminal, or
read from --new-pin-file and --new-puk-file), makes the custodian's key on
the card and verifies the card's attestation of it before marking the slot
enrolled. --pin-file is for a card whose PIN is already set. Attestation is
checked against Yubico's CAs unless --roots names others. A rehearsal card
from "custos card serve-virtual" is vouched for by its own CA, which custos
never trusts implicitly: export it with serve-virtual --export-ca and give
it to enrol (and split) with --roots. A slot whose attestation failed takes
no share; enrolling again reuses it.

Examples:
    $ custos card list
    $ custos card enrol --serial 12345678 --custodian Ana
    $ custos card status --serial 12345678
    $ custos card wipe --serial 12345678 --set 7F2C0102...

  Rehearsal with a virtual card (two terminals):
    $ custos card serve-virtual --state ana.card --export-ca ana-ca.pem
    $ custos card enrol --serial 12345678 --custodian Ana --roots ana-ca.pem
`

// cardOut is where card commands print their listings; tests replace it.
var cardOut io.Writer = os.Stdout

// cardContext bounds how long card commands wait for a busy card.
func cardContext() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), smartcard.BusyWait)
}

func cmdCardList(args []string) error {
	fs := newFlags("card list")
	if pos, err := parseFlags(fs, args); err != nil {
		return err
	} else if len(pos) > 0 {
		return usagef("card list takes no arguments")
	}
	ctx, cancel := cardContext()
	defer cancel()
	cards, err := smartcard.List(ctx)
	if err != nil {
		return cardHints(err)
	}
	if len(cards) == 0 {
		info("no card in any reader")
		return nil
	}
	for _, c := range cards {
		switch {
		case c.Busy:
			fmt.Fprintf(cardOut, "%-10s %s: in use by another program\n", "?", c.Card.Reader)
		case c.Err != nil:
			fmt.Fprintf(cardOut, "%-10s %s: unreadable: %v\n", serialText(c.Card.Serial), c.Card.Reader, c.Err)
		default:
			fmt.Fprintf(cardOut, "%-10d %s: firmware %s, %s\n", c.Card.Serial, c.Card.Reader,
				c.Version, shareCount(c.Slots))
		}
	}
	return nil
}

func serialText(s uint32) string {
	if s == 0 {
		return "?"
	}
	return strconv.FormatUint(uint64(s), 10)
}

func shareCount(slots []smartcard.SlotInfo) string {
	n := 0
	for _, s := range slots {
		if !s.Foreign && s.Kind == smartcard.KindShare {
			n++
		}
	}
	switch n {
	case 0:
		return "no custos share"
	case 1:
		return "1 custos share"
	}
	return fmt.Sprintf("%d custos shares", n)
}

func cmdCardStatus(args []string) error {
	fs := newFlags("card status")
	serial := fs.String("serial", "", "")
	if pos, err := parseFlags(fs, args); err != nil {
		return err
	} else if len(pos) > 0 {
		return usagef("card status takes no arguments; give the card with --serial")
	}
	card, err := openCard(*serial)
	if err != nil {
		return err
	}
	defer card.Close()
	st, err := card.Info()
	if err != nil {
		return cardHints(err)
	}
	printStatus(cardOut, st)
	return nil
}

func printStatus(w io.Writer, st *smartcard.CardInfo) {
	fmt.Fprintf(w, "card %d in %s, firmware %s\n", st.Card.Serial, st.Card.Reader, st.Version)
	cr := st.Credentials
	if cr.Known {
		fmt.Fprintf(w, "  PIN: %s, %d tries left\n", factory(cr.PINDefault), cr.PINRetries)
		fmt.Fprintf(w, "  PUK: %s, %d tries left\n", factory(cr.PUKDefault), cr.PUKRetries)
		fmt.Fprintf(w, "  management key: %s\n", factory(cr.KeyDefault))
	} else {
		fmt.Fprintf(w, "  PIN: %d tries left (the card cannot say whether it is the factory PIN)\n", cr.PINRetries)
	}
	if len(st.Slots) == 0 {
		fmt.Fprintln(w, "  no key in any retired slot")
	}
	for _, s := range st.Slots {
		fmt.Fprintf(w, "  slot %v: %s\n", s.Slot, slotText(s))
	}
}

func factory(isDefault bool) string {
	if isDefault {
		return "FACTORY DEFAULT"
	}
	return "changed"
}

func slotText(s smartcard.SlotInfo) string {
	switch {
	case s.Foreign:
		return "a key or certificate custos did not write"
	case s.Err != nil:
		return "custos certificate, unreadable: " + s.Err.Error()
	case s.Kind == smartcard.KindEnrolled && !s.Attested:
		return fmt.Sprintf("key made for %q, ATTESTATION NOT VERIFIED: takes no "+
			"share until enrolled again", s.Custodian)
	case s.Kind == smartcard.KindEnrolled:
		return fmt.Sprintf("enrolled for %q, no share", s.Custodian)
	}
	sig := "dealer signature valid"
	if !s.SignatureValid {
		sig = "DEALER SIGNATURE INVALID"
	}
	text := fmt.Sprintf("share %d of set %s for %q", s.Index, shares.SetID(s.SetID), s.Custodian)
	if s.Label != "" {
		text += fmt.Sprintf(" (%s)", s.Label)
	}
	return fmt.Sprintf("%s, dealer %s, %s", text, shares.DealerFingerprint(s.Dealer), sig)
}

func cmdCardEnrol(args []string) error {
	fs := newFlags("card enrol")
	serial := fs.String("serial", "", "")
	custodian := fs.String("custodian", "", "")
	slot := fs.String("slot", "", "")
	alg := fs.String("alg", "auto", "")
	touch := fs.String("touch", "never", "")
	pinFile := fs.String("pin-file", "", "")
	newPINFile := fs.String("new-pin-file", "", "")
	newPUKFile := fs.String("new-puk-file", "", "")
	rootsFile := fs.String("roots", "", "")
	attOut := fs.String("attestation-out", "", "")
	replace := fs.String("replace", "", "")
	replaceForeign := fs.Bool("replace-foreign", false, "")
	if pos, err := parseFlags(fs, args); err != nil {
		return err
	} else if len(pos) > 0 {
		return usagef("card enrol takes no arguments; give the card with --serial")
	}

	o := smartcard.EnrolOptions{Custodian: *custodian}
	if err := enrolFlags(&o, *slot, *alg, *touch, *replace, *replaceForeign); err != nil {
		return err
	}
	if *custodian == "" {
		return usagef("card enrol needs --custodian NAME")
	}
	if *rootsFile != "" {
		roots, err := readRoots(*rootsFile)
		if err != nil {
			return err
		}
		o.Roots = roots
	}
	if *attOut != "" {
		if _, err := os.Lstat(*attOut); err == nil {
			return errorf("attestation file %s exists; custos does not overwrite it", *attOut)
		}
	}
	prompt, err := newPINPrompt(*pinFile)
	if err != nil {
		return err
	}
	o.Prompt = prompt

	card, err := openCard(*serial)
	if err != nil {
		return err
	}
	defer card.Close()
	return enrolCard(card, o, enrolFiles{*pinFile, *newPINFile, *newPUKFile}, *attOut)
}

// enrolFiles are the PIN files of an enrolment: the card's PIN, and the
// new PIN and PUK for a factory card. Empty ones are asked at the terminal.
type enrolFiles struct {
	pin, newPIN, newPUK string
}

func enrolFlags(o *smartcard.EnrolOptions, slot, alg, touch, replace string, foreign bool) error {
	if slot != "" {
		v, err := strconv.ParseUint(slot, 16, 8)
		if err != nil || v < 0x82 || v > 0x95 {
			return usagef("--slot %q: give a retired slot, 82 to 95 (hex)", slot)
		}
		o.Slot = smartcard.Slot(v)
	}
	switch alg {
	case "auto":
	case "p256":
		o.Algorithm = piv.AlgorithmEC256
	case "x25519":
		o.Algorithm = piv.AlgorithmX25519
	default:
		return usagef("--alg %q: use auto, p256 or x25519", alg)
	}
	switch touch {
	case "never":
		o.Touch = piv.TouchPolicyNever
	case "always":
		o.Touch = piv.TouchPolicyAlways
	case "cached":
		o.Touch = piv.TouchPolicyCached
	default:
		return usagef("--touch %q: use never, always or cached", touch)
	}
	if replace != "" {
		id, err := parseSetID(replace)
		if err != nil {
			return err
		}
		o.Overwrite.SetID = &id
	}
	o.Overwrite.Foreign = foreign
	return nil
}

// enrolCard enrols the card, asking for a new PIN and PUK where it still
// has the factory ones, and saves the attestation to attOut if given.
func enrolCard(card *smartcard.Card, o smartcard.EnrolOptions, files enrolFiles, attOut string) error {
	e, err := ceremony.EnrolCard(card, o, enrolCredentials(files), reporter())
	if err != nil {
		return cardHints(err)
	}
	if attOut != "" {
		return writeAttestation(attOut, e)
	}
	return nil
}

// checkEnrolFiles refuses PIN files that do not fit the card's state,
// before anything is asked or changed: --pin-file is the PIN a card
// already has, --new-pin-file and --new-puk-file replace factory ones.
func checkEnrolFiles(id smartcard.CardID, cr smartcard.Credentials, files enrolFiles) error {
	if cr.PINDefault && files.pin != "" && files.newPIN == "" {
		return withHint(errorf("%v still has the factory PIN, which custos replaces: "+
			"--pin-file gives the PIN a card already has", id),
			"give the custodian's new PIN and PUK with --new-pin-file FILE and "+
				"--new-puk-file FILE (mode 0600), or leave out --pin-file to type them")
	}
	if !cr.PINDefault && files.newPIN != "" {
		warning("--new-pin-file is not used: %v already has its own PIN, "+
			"which custos asks for (--pin-file)", id)
	}
	if !cr.PUKDefault && files.newPUK != "" {
		warning("--new-puk-file is not used: %v already has its own PUK", id)
	}
	return nil
}

// writeAttestation saves the attestation chain (public) as PEM.
func writeAttestation(path string, e *smartcard.Enrolment) error {
	var b bytes.Buffer
	pem.Encode(&b, &pem.Block{Type: "CERTIFICATE", Bytes: e.AttestationCert})
	pem.Encode(&b, &pem.Block{Type: "CERTIFICATE", Bytes: e.DeviceCert})
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return errorf("writing attestation: %w", err)
	}
	if _, err := f.Write(b.Bytes()); err != nil {
		f.Close()
		return errorf("writing attestation %s: %w", path, err)
	}
	return f.Close()
}

func readRoots(path string) (*x509.CertPool, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, errorf("reading attestation roots: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		return nil, errorf("attestation roots %s: no PEM certificate", path)
	}
	return pool, nil
}

func cmdCardWipe(args []string) error {
	fs := newFlags("card wipe")
	serial := fs.String("serial", "", "")
	set := fs.String("set", "", "")
	pinFile := fs.String("pin-file", "", "")
	reset := fs.Bool("reset", false, "")
	var lose listFlag
	fs.Var(&lose, "lose", "")
	loseForeign := fs.Bool("lose-foreign", false, "")
	if pos, err := parseFlags(fs, args); err != nil {
		return err
	} else if len(pos) > 0 {
		return usagef("card wipe takes no arguments")
	}
	switch {
	case *reset && *set != "":
		return usagef("--set wipes one share, --reset the whole card: give one")
	case !*reset && *set == "":
		return usagef("card wipe needs --set SETID (or --reset for a card whose PIN is blocked)")
	case !*reset && (len(lose) > 0 || *loseForeign):
		return usagef("--lose and --lose-foreign go with --reset")
	}

	card, err := openCard(*serial)
	if err != nil {
		return err
	}
	defer card.Close()

	if *reset {
		var ids [][16]byte
		for _, l := range lose {
			id, err := parseSetID(l)
			if err != nil {
				return err
			}
			ids = append(ids, id)
		}
		if err := card.Reset(ids, *loseForeign); err != nil {
			return cardHints(err)
		}
		info("%v reset: factory PIN, PUK and management key, no keys", card.ID())
		return nil
	}

	id, err := parseSetID(*set)
	if err != nil {
		return err
	}
	prompt, err := newPINPrompt(*pinFile)
	if err != nil {
		return err
	}
	if err := card.Wipe(id, prompt); err != nil {
		return cardHints(err)
	}
	info("%v: share of set %s destroyed (its key was replaced)", card.ID(), shares.SetID(id))
	return nil
}

func parseSetID(s string) ([16]byte, error) {
	var id shares.SetID
	if err := id.UnmarshalText([]byte(s)); err != nil {
		return id, usagef("%v", err)
	}
	return id, nil
}

// openCard opens the card named by a --serial flag.
func openCard(serial string) (*smartcard.Card, error) {
	if serial == "" {
		return nil, withHint(usagef("give the card with --serial SERIAL"),
			"\"custos card list\" shows the serials of the cards present")
	}
	n, err := strconv.ParseUint(serial, 10, 32)
	if err != nil {
		return nil, usagef("--serial %q is not a card serial number", serial)
	}
	ctx, cancel := cardContext()
	defer cancel()
	c, err := smartcard.Open(ctx, uint32(n))
	if err != nil {
		return nil, cardHints(err)
	}
	return c, nil
}

// cardHints adds advice a custodian can act on to a card error.
func cardHints(err error) error {
	if errors.Is(err, ceremony.ErrCredentialsChanged) {
		err = withHint(err, "the card's PIN and PUK are now the new ones: "+
			"enrolling again asks for its PIN (--pin-file), not new ones")
	}
	var (
		absent  *smartcard.CardAbsentError
		busy    *smartcard.CardBusyError
		pin     *smartcard.PINError
		blocked *smartcard.PINBlockedError
		def     *smartcard.DefaultCredentialsError
		occ     *smartcard.SlotOccupiedError
		large   *smartcard.ObjectTooLargeError
		inter   *smartcard.InterruptedError
		att     *smartcard.AttestationError
		unatt   *smartcard.UnattestedError
		sets    *ceremony.CardSetsError
	)
	switch {
	case errors.As(err, &absent):
		return withHint(err, "insert the card; \"custos card list\" shows the cards present")
	case errors.As(err, &busy):
		return withHint(err, "close programs that may hold the card (another custos, "+
			"gpg-agent, ssh-agent, a browser), then try again")
	case errors.As(err, &pin):
		return withHint(err, "try again with the right PIN; the card counts every wrong one")
	case errors.As(err, &blocked):
		return withHint(err, "the custodian's PUK unblocks it: ykman piv access unblock-pin",
			"without the PUK, \"custos card wipe --reset\" empties the card; a recovery "+
				"can go on with other custodians")
	case errors.Is(err, errLastTryFromFile):
		return withHint(err, "nothing was tried; the card still has one PIN try",
			"to spend it, run the command at a terminal without --pin-file and "+
				"type yes when asked")
	case errors.Is(err, smartcard.ErrLastTryDeclined):
		return withHint(err, "nothing was tried; the card still has one PIN try")
	case errors.As(err, &att):
		return withHint(err, "a rehearsal card from \"custos card serve-virtual\" is "+
			"vouched for by its own CA, never trusted implicitly: start it with "+
			"--export-ca CA.pem and give --roots CA.pem",
			"a YubiKey is checked against Yubico's CAs; one that fails may not be "+
				"genuine: give it no share")
	case errors.As(err, &unatt):
		return withHint(err, fmt.Sprintf("enrol it again: custos card enrol --serial %d "+
			"--custodian NAME --roots CA.pem (for a rehearsal card, the CA from "+
			"serve-virtual --export-ca); it reuses the slot", unatt.Card.Serial))
	case errors.As(err, &def):
		return withHint(err, "run \"custos card enrol\", which sets the custodian's own PIN and PUK")
	case errors.As(err, &occ) && occ.Foreign:
		return withHint(err, "pick another slot, or pass --replace-foreign to destroy what it holds")
	case errors.As(err, &occ):
		return withHint(err, fmt.Sprintf("to destroy that share, agree by naming its set: --replace %s",
			shares.SetID(occ.SetID)))
	case errors.As(err, &large):
		return withHint(err, "shorten the label, or keep the secret in a separate sealed file")
	case errors.As(err, &inter) && inter.Now == smartcard.ContentNew:
		return withHint(err, "the share is on the card and verified; keep the card in the reader")
	case errors.As(err, &inter):
		return withHint(err, "keep the card in the reader and store the share again")
	case errors.As(err, &sets) && sets.Sets > 1:
		return withHint(err, "name the set with --set set.json",
			fmt.Sprintf("\"custos card status --serial %d\" lists them; a share "+
				"of a split that failed can be destroyed with \"custos card wipe "+
				"--serial %d --set SETID\"", sets.Card.Serial, sets.Card.Serial))
	}
	return err
}

// pinPrompt asks for PINs on the terminal, or reads them from files. At
// the terminal a wrong PIN is asked again (RetryPIN); a file is never
// tried twice.
type pinPrompt struct {
	file  string            // the PIN file of the one card asked; empty: files
	files map[uint32]string // each card's PIN file by serial (split)
	names map[uint32]string // whose card each is, for the prompt (split)
}

// newPINPrompt returns the prompt for --pin-file (empty: the terminal). A
// PIN file must be a regular file no one else can read.
func newPINPrompt(file string) (smartcard.PINPrompt, error) {
	if file == "" {
		return &pinPrompt{}, nil
	}
	if err := checkSecretFile(file); err != nil {
		return nil, err
	}
	return &pinPrompt{file: file}, nil
}

func checkSecretFile(path string) error {
	fi, err := os.Stat(path)
	if err != nil {
		return errorf("PIN file: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return errorf("PIN file %s is not a regular file", path)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return withHint(errorf("PIN file %s is readable by others (mode %04o)", path, fi.Mode().Perm()),
			fmt.Sprintf("chmod 600 %s", path))
	}
	return nil
}

// fileFor returns the PIN file of a card; empty: ask at the terminal.
func (p *pinPrompt) fileFor(card smartcard.CardID) string {
	if p.file != "" {
		return p.file
	}
	return p.files[card.Serial]
}

func (p *pinPrompt) PIN(card smartcard.CardID, retries int) ([]byte, error) {
	if f := p.fileFor(card); f != "" {
		return readSecretFile(f)
	}
	who := ""
	if name := p.names[card.Serial]; name != "" {
		who = name + ", "
	}
	return readTTY(fmt.Sprintf("%sPIN of %v (%d %s left): ", who, card, retries, plural(retries, "try", "tries")))
}

// RetryPIN asks again at the terminal after a wrong PIN, saying so first;
// a PIN file is not tried again. With one try left it says only that:
// ConfirmLastTry then asks for a yes, and the PIN is asked after it.
func (p *pinPrompt) RetryPIN(wrong *smartcard.PINError) bool {
	if p.fileFor(wrong.Card) != "" {
		return false
	}
	if wrong.Retries == 1 {
		warning("%v", wrong)
		return true
	}
	warning("%v; type it again (or just Enter to give up)", wrong)
	return true
}

// errLastTryFromFile is why a PIN file never spends a card's last try.
var errLastTryFromFile error = lastTryFromFile{}

type lastTryFromFile struct{}

func (lastTryFromFile) Error() string {
	return "a PIN file never spends a card's last PIN try"
}

func (lastTryFromFile) Is(target error) bool {
	return target == smartcard.ErrLastTryDeclined
}

// ConfirmLastTry refuses with a PIN file: a script cannot see the risk.
// At the terminal it says first that the try is the last, then reads the
// yes without echo: a custodian who types the PIN there by mistake does
// not show it, and anything but yes gives up without repeating it.
func (p *pinPrompt) ConfirmLastTry(card smartcard.CardID) (bool, error) {
	if p.fileFor(card) != "" {
		return false, errLastTryFromFile
	}
	warning("%v: 1 try left: it is the last; a wrong PIN now blocks the card", card)
	ans, err := readTTY("type yes to spend it, anything else gives up (typing is hidden): ")
	if err != nil {
		return false, err
	}
	defer clear(ans)
	return strings.EqualFold(string(bytes.TrimSpace(ans)), "yes"), nil
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// newSecret asks for a new PIN or PUK twice, or reads it from a file.
func newSecret(what, file string) ([]byte, error) {
	if file != "" {
		if err := checkSecretFile(file); err != nil {
			return nil, err
		}
		return readSecretFile(file)
	}
	read := func(again bool) ([]byte, error) {
		if again {
			return readTTY(fmt.Sprintf("new %s again: ", what))
		}
		a, err := readTTY(fmt.Sprintf("new %s (6 to 8 characters): ", what))
		var h *hintedError
		if errors.As(err, &h) {
			// No terminal: say which file gives it instead.
			return nil, withHint(errorf("no terminal to ask for the card's new %s", what),
				fmt.Sprintf("give it with --new-%s-file FILE (mode 0600)", strings.ToLower(what)))
		}
		return a, err
	}
	return ceremony.AskNewSecret(read, func() {
		warning("the two entries differ or are not 6 to 8 characters; again")
	})
}

// readSecretFile returns the first line of a PIN file.
func readSecretFile(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, errorf("reading PIN file: %w", err)
	}
	line := b
	if i := bytes.IndexAny(b, "\r\n"); i >= 0 {
		line = b[:i]
	}
	out := append([]byte(nil), line...)
	clear(b)
	return out, nil
}

// terminal is where custos asks a person for PINs and answers; tests
// replace it with a scripted one.
var terminal interface {
	// secret reads a line without echo.
	secret(prompt string) ([]byte, error)
	// present reports whether there is a terminal to ask.
	present() bool
} = devTTY{}

// devTTY is the process's controlling terminal, /dev/tty.
type devTTY struct{}

func (devTTY) present() bool {
	tty, err := os.OpenFile("/dev/tty", os.O_RDWR, 0)
	if err != nil {
		return false
	}
	tty.Close()
	return true
}

// readTTY reads a line from the terminal without echo.
func readTTY(prompt string) ([]byte, error) { return terminal.secret(prompt) }

// errInterruptedRead is the error of a terminal read ended by Ctrl-C.
var errInterruptedRead = errors.New("interrupted at the terminal prompt")

// ttyRead is the terminal read in progress. The first Ctrl-C ends it
// (main.go), so that a command stops at once and cleans up; reads after
// it are refused, except while the command undoes what it made (undoing),
// which may need a PIN.
var ttyRead struct {
	sync.Mutex
	stop    func() // ends the read in progress and restores the terminal
	undoing bool
}

// stopTTYRead ends the terminal read in progress, if any, with echo back
// on.
func stopTTYRead() {
	ttyRead.Lock()
	stop := ttyRead.stop
	ttyRead.Unlock()
	if stop != nil {
		stop()
	}
}

// setUndoing says whether the command is undoing what it made after a
// failure or an interrupt: the terminal may still be asked then.
func setUndoing(on bool) {
	ttyRead.Lock()
	ttyRead.undoing = on
	ttyRead.Unlock()
}

// mayRead reports whether a new terminal read may start: not after a
// Ctrl-C, unless the command is undoing what it made.
func mayRead() bool {
	ttyRead.Lock()
	defer ttyRead.Unlock()
	return interrupted.Err() == nil || ttyRead.undoing
}

// secret reads a line with echo off. The terminal stays in line mode with
// its signals, so Ctrl-C reaches main's handler, which ends the read
// through ttyRead.stop: the file is polled, so a read deadline wakes it.
func (devTTY) secret(prompt string) ([]byte, error) {
	if !mayRead() {
		return nil, errInterruptedRead
	}
	tty, err := os.OpenFile("/dev/tty", os.O_RDWR, 0)
	if err != nil {
		return nil, withHint(errorf("no terminal to ask for the PIN"),
			"give it with --pin-file FILE (mode 0600)")
	}
	defer tty.Close()
	restore, err := echoOff(tty)
	if err != nil {
		return nil, errorf("reading from the terminal: %w", err)
	}

	var once sync.Once
	var stopped atomic.Bool // by Ctrl-C, not by the end of the read
	stop := func() {
		once.Do(func() {
			ttyRead.Lock()
			stopped.Store(ttyRead.stop != nil)
			ttyRead.Unlock()
			restore()
			// TODO: a terminal the runtime cannot poll ignores the
			// deadline; the read then ends only with its line.
			tty.SetReadDeadline(time.Now())
			if stopped.Load() {
				fmt.Fprintln(tty) // end the prompt's line before any message
			}
		})
	}
	ttyRead.Lock()
	ttyRead.stop = stop
	ttyRead.Unlock()
	defer func() {
		ttyRead.Lock()
		ttyRead.stop = nil
		ttyRead.Unlock()
		stop()
	}()

	fmt.Fprint(tty, prompt)
	b, err := readLine(tty)
	if !stopped.Load() {
		fmt.Fprintln(tty)
	}
	switch {
	case errors.Is(err, os.ErrDeadlineExceeded) && stopped.Load():
		return nil, errInterruptedRead
	case err != nil:
		return nil, errorf("reading from the terminal: %w", err)
	}
	return b, nil
}

// echoOff turns the terminal's echo off, keeping line editing and the
// signal keys; restore turns it back to what it was.
func echoOff(tty *os.File) (restore func(), err error) {
	rc, err := tty.SyscallConn()
	if err != nil {
		return nil, err
	}
	var old *unix.Termios
	var ioErr error
	cerr := rc.Control(func(fd uintptr) {
		old, ioErr = unix.IoctlGetTermios(int(fd), unix.TCGETS)
		if ioErr != nil {
			return
		}
		t := *old
		t.Lflag &^= unix.ECHO | unix.ECHONL
		t.Lflag |= unix.ICANON | unix.ISIG
		t.Iflag |= unix.ICRNL
		ioErr = unix.IoctlSetTermios(int(fd), unix.TCSETS, &t)
	})
	if cerr != nil {
		return nil, cerr
	}
	if ioErr != nil {
		return nil, ioErr
	}
	return func() {
		rc.Control(func(fd uintptr) {
			unix.IoctlSetTermios(int(fd), unix.TCSETS, old)
		})
	}, nil
}

// readLine reads one line of at most 255 bytes, without its line end. A
// longer line is refused; the buffer is cleared either way.
func readLine(r io.Reader) ([]byte, error) {
	var buf [256]byte
	defer clear(buf[:])
	n := 0
	for {
		m, err := r.Read(buf[n:])
		n += m
		if i := bytes.IndexByte(buf[:n], '\n'); i >= 0 {
			return append([]byte(nil), bytes.TrimRight(buf[:i], "\r")...), nil
		}
		switch {
		case errors.Is(err, io.EOF) && n > 0:
			return append([]byte(nil), buf[:n]...), nil
		case err != nil:
			return nil, err
		case n == len(buf):
			return nil, errors.New("the line is too long")
		}
	}
}
