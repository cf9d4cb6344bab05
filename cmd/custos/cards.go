package main

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"custos/ceremony"
	"custos/shares"
	"custos/smartcard"
)

// cardWriter stores custodians' shares on their cards during a split.
type cardWriter struct {
	serials map[int]uint32 // by share index
	prompt  smartcard.PINPrompt
	pinFile string
	// roots verify the cards' attestations (nil: Yubico's CAs for an
	// enrolment; the record made at enrolment for a store).
	roots *x509.CertPool
}

// parseCardSpecs turns --card NAME=SERIAL flags into a card writer. NAME is
// a custodian's --name, or their share number. rootsFile is split's
// --roots: the attestation CAs the cards are checked against.
func parseCardSpecs(specs, names []string, pinFile, rootsFile string) (ceremony.CardWriter, error) {
	if len(specs) == 0 {
		if rootsFile != "" {
			return nil, usagef("--roots checks the attestation of cards given with --card; there are none")
		}
		return nil, nil
	}
	w := &cardWriter{serials: map[int]uint32{}, pinFile: pinFile}
	if rootsFile != "" {
		roots, err := readRoots(rootsFile)
		if err != nil {
			return nil, err
		}
		w.roots = roots
	}
	seen := map[uint32]string{}
	for _, spec := range specs {
		name, serialText, ok := strings.Cut(spec, "=")
		if !ok {
			return nil, usagef("--card %q: write NAME=SERIAL, e.g. --card Ana=12345678", spec)
		}
		serial, err := strconv.ParseUint(serialText, 10, 32)
		if err != nil {
			return nil, usagef("--card %q: %q is not a card serial number", spec, serialText)
		}
		index := custodianIndex(name, names)
		if index == 0 {
			return nil, usagef("--card %q: no custodian is named %q (give --name first, or the share number)", spec, name)
		}
		if prev, dup := seen[uint32(serial)]; dup {
			return nil, usagef("card %d is given for both %s and %s; each custodian needs their own card", serial, prev, name)
		}
		if _, dup := w.serials[index]; dup {
			return nil, usagef("custodian %s has two --card flags", name)
		}
		seen[uint32(serial)] = name
		w.serials[index] = uint32(serial)
	}
	prompt, err := newPINPrompt(pinFile)
	if err != nil {
		return nil, err
	}
	w.prompt = prompt
	return w, nil
}

func custodianIndex(name string, names []string) int {
	for i, n := range names {
		if n == name {
			return i + 1
		}
	}
	if i, err := strconv.Atoi(name); err == nil && i >= 1 && (len(names) == 0 || i <= len(names)) {
		return i
	}
	return 0
}

func (w *cardWriter) Custodians() []int {
	var out []int
	for i := range w.serials {
		out = append(out, i)
	}
	return out
}

// Store enrols the card when it has no custos slot yet, writes the share,
// and reads it back with the custodian's PIN.
func (w *cardWriter) Store(ctx context.Context, s *shares.Share, d *shares.Dealt) (*shares.Share, *ceremony.CardRef, error) {
	serial := w.serials[s.Index]
	card, err := smartcard.Open(ctx, serial)
	if err != nil {
		return nil, nil, cardHints(err)
	}
	defer card.Close()
	info("card %d for %s: inserted and found", serial, s.Custodian)

	slot, err := w.enrolledSlot(card, s)
	if err != nil {
		return nil, nil, cardHints(err)
	}
	err = card.Store(smartcard.StoreRequest{
		Slot: slot, SetID: s.SetID, Index: s.Index, Custodian: s.Custodian,
		Label: s.Label, Share: s.Marshal(), Dealer: d.Dealer, Prompt: w.prompt,
		Roots:    w.roots,
		OnPulled: func(id smartcard.CardID) { warning("%v was pulled during the write; put it back in", id) },
	})
	if err != nil {
		return nil, nil, cardHints(err)
	}
	info("card %d: share %d written to slot %v; reading it back (PIN needed)", serial, s.Index, slot)

	got, err := ceremony.LoadCardShare(card, s.SetID, w.prompt, d.DealerKey)
	if err != nil {
		return nil, nil, cardHints(err)
	}
	ref, err := ceremony.CardRefOf(card, slot)
	if err != nil {
		return nil, nil, cardHints(err)
	}
	return got, ref, nil
}

// Discard wipes a share this writer stored, after a failed split.
func (w *cardWriter) Discard(ctx context.Context, s *shares.Share) error {
	card, err := smartcard.Open(ctx, w.serials[s.Index])
	if err != nil {
		return cardHints(err)
	}
	defer card.Close()
	return cardHints(card.Wipe(s.SetID, w.prompt))
}

// enrolledSlot returns a custos slot on the card with no share whose key's
// attestation was verified, enrolling one when there is none (reusing a
// slot whose attestation failed before). Store then has the card attest
// the slot key again.
//
// A slot enrolled under another name is used with a warning, not refused:
// the name is a label custos wrote, not a credential, names differ between
// splits ("Ana", "Ana Lima"), and the read-back with the custodian's PIN
// is what shows the card is theirs.
func (w *cardWriter) enrolledSlot(card *smartcard.Card, s *shares.Share) (smartcard.Slot, error) {
	st, err := card.Info()
	if err != nil {
		return 0, err
	}
	unverified := false
	for _, sl := range st.Slots {
		if sl.Foreign || sl.Err != nil || sl.Kind != smartcard.KindEnrolled {
			continue
		}
		if !sl.Attested {
			unverified = true
			continue
		}
		if sl.Custodian != s.Custodian {
			warning("%v slot %v was enrolled for %q, not %q: make sure this is %s's card; "+
				"the share is recorded for %q", card.ID(), sl.Slot, sl.Custodian,
				s.Custodian, displayName(s), s.Custodian)
		}
		return sl.Slot, nil
	}

	switch {
	case unverified:
		info("%v holds a key whose attestation was never verified: enrolling it again for %s",
			card.ID(), displayName(s))
	case len(st.Slots) > 0:
		info("%v has no free custos slot: enrolling another one for %s", card.ID(), displayName(s))
	default:
		info("%v has no custos slot yet: enrolling it for %s", card.ID(), displayName(s))
	}
	o := smartcard.EnrolOptions{Custodian: s.Custodian, Prompt: w.prompt, Roots: w.roots}
	e, err := enrol(card, o, enrolFiles{pin: w.pinFile})
	if err != nil {
		return 0, err
	}
	return e.Slot, nil
}

// displayName names a custodian in messages: their name, or their share
// number when the split has no names.
func displayName(s *shares.Share) string {
	if s.Custodian != "" {
		return s.Custodian
	}
	return fmt.Sprintf("custodian %d", s.Index)
}

// readCardShares reads shares from cards by serial, asking for PINs. A
// card that fails is reported with its reason and the recovery goes on
// with the others.
func readCardShares(serials []string, pinFile string, record *ceremony.SetRecord) ([]ceremony.Offered, error) {
	if len(serials) == 0 {
		return nil, nil
	}
	prompt, err := newPINPrompt(pinFile)
	if err != nil {
		return nil, err
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

	// A card that fails is said once, here, with its hints; the recovery
	// goes on with the others and counts only what was read.
	var out []ceremony.Offered
	for _, serial := range parsed {
		s, err := readOneCard(serial, prompt, record)
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

func readOneCard(serial uint32, prompt smartcard.PINPrompt, record *ceremony.SetRecord) (*shares.Share, error) {
	ctx, cancel := cardContext()
	defer cancel()
	card, err := smartcard.Open(ctx, serial)
	if err != nil {
		return nil, err
	}
	defer card.Close()
	var setID [16]byte
	var dealer []byte
	if record != nil {
		setID, dealer = record.SetID, record.DealerKey
	} else if setID, err = onlySet(card); err != nil {
		return nil, err
	}
	info("card %d: reading share of set %s (PIN needed)", serial, shares.SetID(setID).Short())
	return ceremony.LoadCardShare(card, setID, prompt, dealer)
}

// onlySet returns the set of the one share a card holds.
func onlySet(card *smartcard.Card) ([16]byte, error) {
	held, err := card.Shares()
	if err != nil {
		return [16]byte{}, err
	}
	switch len(held) {
	case 0:
		return [16]byte{}, errorf("%v holds no custos share", card.ID())
	case 1:
		return held[0].SetID, nil
	}
	return [16]byte{}, withHint(errorf("%v holds shares of %d sets", card.ID(), len(held)),
		"name the set with --set set.json")
}
