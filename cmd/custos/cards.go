package main

import (
	"bytes"
	"context"
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
}

// parseCardSpecs turns --card NAME=SERIAL flags into a card writer. NAME is
// a custodian's --name, or their share number.
func parseCardSpecs(specs, names []string, pinFile string) (ceremony.CardWriter, error) {
	if len(specs) == 0 {
		return nil, nil
	}
	w := &cardWriter{serials: map[int]uint32{}}
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
		OnPulled: func(id smartcard.CardID) { warning("%v was pulled during the write; put it back in", id) },
	})
	if err != nil {
		return nil, nil, cardHints(err)
	}
	info("card %d: share %d written to slot %v; reading it back (PIN needed)", serial, s.Index, slot)

	got, err := loadShare(card, s.SetID, w.prompt, d.DealerKey)
	if err != nil {
		return nil, nil, cardHints(err)
	}
	return got, &ceremony.CardRef{Serial: serial, Slot: slot.String()}, nil
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

// enrolledSlot returns a custos slot on the card with no share, enrolling
// one when there is none.
func (w *cardWriter) enrolledSlot(card *smartcard.Card, s *shares.Share) (smartcard.Slot, error) {
	st, err := card.Info()
	if err != nil {
		return 0, err
	}
	for _, sl := range st.Slots {
		if !sl.Foreign && sl.Kind == smartcard.KindEnrolled {
			return sl.Slot, nil
		}
	}
	info("%v has no custos slot yet: enrolling it for %s", card.ID(), s.Custodian)
	e, err := enrol(card, smartcard.EnrolOptions{Custodian: s.Custodian, Prompt: w.prompt}, "", "")
	if err != nil {
		return 0, err
	}
	return e.Slot, nil
}

// loadShare reads a share from a card with the PIN and checks it alone,
// and against the dealer key when one is known.
func loadShare(card *smartcard.Card, setID [16]byte, prompt smartcard.PINPrompt, dealer []byte) (*shares.Share, error) {
	l, err := card.Load(setID, prompt)
	if err != nil {
		return nil, err
	}
	defer clear(l.Share)
	source := fmt.Sprintf("card %d", l.Card.Serial)
	if dealer != nil && !bytes.Equal(l.Dealer, dealer) {
		return nil, errorf("%s holds a share signed by dealer %s, not the set's %s: it is not this set's card",
			source, shares.DealerFingerprint(l.Dealer), shares.DealerFingerprint(dealer))
	}
	s, err := shares.Parse(l.Share, source)
	if err != nil {
		return nil, err
	}
	if !bytes.Equal(s.DealerKey, l.Dealer) {
		return nil, errorf("%s: the share inside is signed by another dealer than its certificate", source)
	}
	return s, nil
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
	var out []ceremony.Offered
	for _, text := range serials {
		serial, err := strconv.ParseUint(text, 10, 32)
		if err != nil {
			return nil, usagef("--card %q is not a card serial number", text)
		}
		source := "card " + text
		s, err := readOneCard(uint32(serial), prompt, record)
		if err != nil {
			err = cardHints(err)
			printError(err)
		}
		out = append(out, ceremony.Offered{Share: s, Source: source, Err: err})
	}
	return out, nil
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
	return loadShare(card, setID, prompt, dealer)
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
