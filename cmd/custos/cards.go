package main

import (
	"context"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"custos/ceremony"
	"custos/shares"
	"custos/smartcard"
)

// cardFlags are split's card options.
type cardFlags struct {
	specs    listFlag // --card NAME=SERIAL
	pinFiles listFlag // --pin-file FILE, or SERIAL=FILE per card
	reassign listFlag // --reassign-card SERIAL
	roots    string   // --roots CA.pem
}

// register adds the card options to split's flag set.
func (f *cardFlags) register(fs *flag.FlagSet) {
	fs.Var(&f.specs, "card", "")
	fs.Var(&f.pinFiles, "pin-file", "")
	fs.Var(&f.reassign, "reassign-card", "")
	fs.StringVar(&f.roots, "roots", "", "")
}

// writer turns the card options into a card writer, or nil without
// --card. NAME in --card NAME=SERIAL is a custodian's --name, or their
// share number. Every mistake is refused here, before anything is read
// or written: a PIN file belongs to one card.
func (f *cardFlags) writer(names []string) (ceremony.CardWriter, error) {
	if len(f.specs) == 0 {
		switch {
		case f.roots != "":
			return nil, usagef("--roots checks the attestation of cards given with --card; there are none")
		case len(f.pinFiles) > 0:
			return nil, usagef("--pin-file gives the PIN of a card given with --card; there are none")
		case len(f.reassign) > 0:
			return nil, usagef("--reassign-card names a card given with --card; there are none")
		}
		return nil, nil
	}
	var roots *x509.CertPool
	if f.roots != "" {
		var err error
		if roots, err = readRoots(f.roots); err != nil {
			return nil, err
		}
	}
	parsed, err := parseCardSpecs(f.specs)
	if err != nil {
		return nil, err
	}
	if err := markReassigned(parsed, f.reassign); err != nil {
		return nil, err
	}
	files, err := cardPINFiles(parsed, f.pinFiles)
	if err != nil {
		return nil, err
	}
	if err := pinSources(parsed, files, names); err != nil {
		return nil, err
	}

	prompt := &pinPrompt{files: files, names: map[uint32]string{}}
	for _, spec := range parsed {
		prompt.names[spec.Serial] = specWho(spec, names)
	}
	cards, err := ceremony.NewSerialCards(parsed, names, ceremony.CardOptions{
		Prompt: prompt, Credentials: splitCredentials(files),
		Roots: roots, Report: reporter(),
	})
	var bad *ceremony.CardSpecError
	if errors.As(err, &bad) {
		return nil, withHint(usagef("--card %s=%d: %v", bad.Spec.Custodian, bad.Spec.Serial, err),
			"NAME is a custodian's --name (give --name first) or their share number; "+
				"each custodian has one card, and each card one custodian")
	}
	if err != nil {
		return nil, err
	}
	return &trackedCards{cards}, nil
}

// setArg writes a set ID as one word, for a command to copy.
func setArg(id shares.SetID) string {
	return strings.ToUpper(hex.EncodeToString(id[:]))
}

// trackedCards notes in leftBehind every share that may be on a card, so
// that a second Ctrl-C can say how to destroy it. While it destroys one
// again after a failure, the terminal may still ask for the card's PIN
// after a Ctrl-C.
type trackedCards struct{ *ceremony.SerialCards }

func (t *trackedCards) Store(ctx context.Context, s *shares.Share, d *shares.Dealt) (*shares.Share, *ceremony.CardRef, error) {
	serial := t.Serial(s.Index)
	leftBehind.addCard(leftCard{serial: serial, set: setArg(s.SetID),
		index: s.Index, who: whoOf(s.Index, s.Custodian)})
	got, ref, err := t.SerialCards.Store(ctx, s, d)
	if err != nil && !ceremony.LeftOnCard(err) {
		leftBehind.dropCard(serial, setArg(s.SetID))
	}
	return got, ref, err
}

func (t *trackedCards) Discard(ctx context.Context, s *shares.Share) error {
	setUndoing(true)
	defer setUndoing(false)
	err := t.SerialCards.Discard(ctx, s)
	if err == nil {
		leftBehind.dropCard(t.Serial(s.Index), setArg(s.SetID))
	}
	return err
}

// parseCardSpecs parses --card NAME=SERIAL flags.
func parseCardSpecs(specs []string) ([]ceremony.CardSpec, error) {
	var parsed []ceremony.CardSpec
	for _, spec := range specs {
		name, serialText, ok := strings.Cut(spec, "=")
		if !ok {
			return nil, usagef("--card %q: write NAME=SERIAL, e.g. --card Ana=12345678", spec)
		}
		serial, err := strconv.ParseUint(serialText, 10, 32)
		if err != nil {
			return nil, usagef("--card %q: %q is not a card serial number", spec, serialText)
		}
		parsed = append(parsed, ceremony.CardSpec{Custodian: name, Serial: uint32(serial)})
	}
	return parsed, nil
}

// specOf returns the --card spec of a serial given as text by another
// flag, or a usage error naming that flag.
func specOf(parsed []ceremony.CardSpec, option, text string) (*ceremony.CardSpec, error) {
	serial, err := strconv.ParseUint(text, 10, 32)
	if err != nil {
		return nil, usagef("%s %q is not a card serial number", option, text)
	}
	for i := range parsed {
		if parsed[i].Serial == uint32(serial) {
			return &parsed[i], nil
		}
	}
	return nil, usagef("%s %s: no --card has serial %d", option, text, serial)
}

// markReassigned sets Reassign on the specs of the --reassign-card serials.
func markReassigned(parsed []ceremony.CardSpec, serials []string) error {
	for _, text := range serials {
		spec, err := specOf(parsed, "--reassign-card", text)
		if err != nil {
			return err
		}
		spec.Reassign = true
	}
	return nil
}

// cardPINFiles maps each card's serial to its PIN file. A plain --pin-file
// FILE is for a split with one card; with several, each card has its own,
// --pin-file SERIAL=FILE, so that no card is tried with another's PIN.
// Cards without one are asked at the terminal.
func cardPINFiles(parsed []ceremony.CardSpec, flags []string) (map[uint32]string, error) {
	files := map[uint32]string{}
	for _, text := range flags {
		serial, file, perCard := strings.Cut(text, "=")
		if _, err := strconv.ParseUint(serial, 10, 32); !perCard || err != nil {
			// A plain file: the PIN of the one card.
			if len(parsed) > 1 {
				return nil, withHint(usagef("--pin-file %s would be tried on "+
					"each of the %d cards: a PIN file belongs to one card", text,
					len(parsed)), fmt.Sprintf("give each card its own: --pin-file "+
					"SERIAL=FILE, e.g. --pin-file %d=%s; a card without one is "+
					"asked at the terminal", parsed[0].Serial, text))
			}
			serial, file = strconv.FormatUint(uint64(parsed[0].Serial), 10), text
		}
		spec, err := specOf(parsed, "--pin-file", serial)
		if err != nil {
			return nil, err
		}
		if _, dup := files[spec.Serial]; dup {
			return nil, usagef("--pin-file: card %d is given two PIN files", spec.Serial)
		}
		if err := checkSecretFile(file); err != nil {
			return nil, err
		}
		files[spec.Serial] = file
	}
	return files, nil
}

// pinSources refuses cards without a PIN file when there is no terminal
// to ask their PIN, before anything is written.
func pinSources(parsed []ceremony.CardSpec, files map[uint32]string, names []string) error {
	for _, spec := range parsed {
		if _, ok := files[spec.Serial]; ok || terminal.present() {
			continue
		}
		return withHint(errorf("no terminal to ask the PIN of %s's card %d, "+
			"and no --pin-file for it", specWho(spec, names), spec.Serial),
			fmt.Sprintf("give it with --pin-file %d=FILE (mode 0600)", spec.Serial))
	}
	return nil
}

// specWho names the custodian of a --card spec in messages: their name,
// or "custodian N" when the split has no names.
func specWho(spec ceremony.CardSpec, names []string) string {
	n, err := strconv.Atoi(spec.Custodian)
	switch {
	case err != nil || slices.Contains(names, spec.Custodian):
		return spec.Custodian
	case n >= 1 && n <= len(names):
		return names[n-1]
	}
	return whoOf(n, "")
}

// whoOf names the custodian of share index with this name.
func whoOf(index int, name string) string {
	if name != "" {
		return name
	}
	return fmt.Sprintf("custodian %d", index)
}

// splitCredentials gives a factory card a split must enrol its
// custodian's new PIN and PUK from the terminal, after checking that the
// card's PIN file, if any, fits its state.
func splitCredentials(files map[uint32]string) ceremony.NewCredentials {
	creds := enrolCredentials(enrolFiles{})
	creds.Check = func(id smartcard.CardID, cr smartcard.Credentials) error {
		return checkEnrolFiles(id, cr, enrolFiles{pin: files[id.Serial]})
	}
	return creds
}

// splitCardHints says what a failed split onto cards left behind, and
// only what happened: the shares destroyed again, those still on a card
// with the command that destroys them, or that nothing was written.
func splitCardHints(err error) error {
	err = cardHints(err)
	var (
		check *ceremony.CardCheckError
		owner *ceremony.CardOwnerError
		cards *ceremony.SplitCardsError
	)
	switch {
	case errors.As(err, &owner):
		return withHint(err, fmt.Sprintf("if card %d is %s's card now, say so with "+
			"--reassign-card %d; otherwise give each custodian their own card's serial",
			owner.Card.Serial, owner.Custodian, owner.Card.Serial),
			"nothing was written to any card or file")
	case errors.As(err, &check):
		return withHint(err, "nothing was written to any card or file")
	case !errors.As(err, &cards):
		return withHint(err, "every file this split created has been removed; "+
			"no share was written to a card")
	}
	var hints []string
	for _, l := range cards.Left {
		serial := "SERIAL"
		if l.Serial != 0 {
			serial = fmt.Sprint(l.Serial)
		}
		hints = append(hints, fmt.Sprintf("share %d of the failed split is still on "+
			"%s's card: destroy it with custos card wipe --serial %s --set %s",
			l.Index, whoOf(l.Index, l.Custodian), serial, setArg(l.SetID)))
	}
	if n := len(cards.Destroyed); n > 0 {
		hints = append(hints, fmt.Sprintf("%d %s this split wrote to cards %s "+
			"destroyed again (see above)", n, plural(n, "share", "shares"),
			plural(n, "was", "were")))
	}
	hints = append(hints, "every file this split created has been removed")
	return withHint(err, hints...)
}

// readCardShares reads shares from cards by serial, asking for PINs. A
// card that fails is reported with its reason and the recovery goes on
// with the others.
func readCardShares(serials, pinFiles []string, record *ceremony.SetRecord) ([]ceremony.Offered, error) {
	if len(serials) == 0 {
		if len(pinFiles) > 0 {
			return nil, usagef("--pin-file gives the PIN of a card given with --card; there are none")
		}
		return nil, nil
	}
	var parsed []uint32
	seen := map[uint32]bool{}
	for _, text := range serials {
		serial, err := strconv.ParseUint(text, 10, 32)
		if err != nil {
			return nil, usagef("--card %q is not a card serial number", text)
		}
		if seen[uint32(serial)] {
			return nil, usagef("card %d is given twice with --card; a card holds one custodian's share", serial)
		}
		seen[uint32(serial)] = true
		parsed = append(parsed, uint32(serial))
	}
	var specs []ceremony.CardSpec
	for _, serial := range parsed {
		specs = append(specs, ceremony.CardSpec{Serial: serial})
	}
	files, err := cardPINFiles(specs, pinFiles)
	if err != nil {
		return nil, err
	}
	prompt := &pinPrompt{files: files}

	// A card that fails is said once, here, with its hints; the recovery
	// goes on with the others and counts only what was read.
	var out []ceremony.Offered
	for _, serial := range parsed {
		s, err := ceremony.ReadCardShare(interrupted, serial, record, prompt, reporter())
		if err != nil {
			warnWithHints(fmt.Sprintf("not using card %d", serial), cardHints(err))
			continue
		}
		out = append(out, ceremony.Offered{Share: s, Source: fmt.Sprintf("card %d", serial)})
	}
	return out, nil
}

// warnWithHints prints err as one warning, then its hints.
func warnWithHints(what string, err error) {
	warning("%s: %v", what, err)
	var h *hintedError
	for e := err; errors.As(e, &h); e = h.err {
		for _, line := range h.hints {
			hint("%s", line)
		}
	}
}

// enrolCredentials gives a factory card its custodian's new PIN and PUK
// from the files of an enrolment, or else from the terminal.
func enrolCredentials(files enrolFiles) ceremony.NewCredentials {
	return ceremony.NewCredentials{
		Check: func(id smartcard.CardID, cr smartcard.Credentials) error {
			return checkEnrolFiles(id, cr, files)
		},
		Ask: func(id smartcard.CardID, what string) ([]byte, error) {
			if what == "PUK" {
				info("%v still has the factory PUK; choose the custodian's PUK (it unblocks the PIN)", id)
				return newSecret(what, files.newPUK)
			}
			info("%v still has the factory PIN; choose the custodian's PIN", id)
			return newSecret(what, files.newPIN)
		},
	}
}
