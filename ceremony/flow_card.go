package ceremony

import (
	"bytes"
	"context"
	"errors"
	"fmt"

	"custos/shares"
	"custos/smartcard"
)

// pinAsker asks a custodian for their card's PIN through the prompter,
// showing the tries left, and asks before the last try.
type pinAsker struct {
	p   Prompter
	who string
}

func (a pinAsker) PIN(card smartcard.CardID, retries int) ([]byte, error) {
	return a.p.Secret(fmt.Sprintf("%s, type the PIN of card %d (%d %s left; it is not shown)",
		a.who, card.Serial, retries, plural(retries, "try", "tries")))
}

func (a pinAsker) ConfirmLastTry(card smartcard.CardID) (bool, error) {
	a.p.Show(Screen{Title: "Last PIN try", Alarm: true, Lines: []string{
		fmt.Sprintf("Card %d has ONE PIN try left. A wrong PIN now blocks the card.", card.Serial),
		"Only go on if you are sure of the PIN.",
	}})
	return a.p.Confirm(fmt.Sprintf("%s, spend the last try of card %d?", a.who, card.Serial))
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// openCard asks for the custodian's card until it is found or the room
// gives up.
func (r *crun) openCard(who string, serial uint32) (*smartcard.Card, error) {
	for {
		ctx, cancel := context.WithTimeout(r.ctx, smartcard.BusyWait)
		card, err := smartcard.Open(ctx, serial)
		cancel()
		if err == nil {
			return card, nil
		}
		var absent *smartcard.CardAbsentError
		var busy *smartcard.CardBusyError
		if !errors.As(err, &absent) && !errors.As(err, &busy) || r.ctx.Err() != nil {
			return nil, err
		}
		r.Prompter.Show(Screen{Title: "Card not found", Alarm: true, Lines: []string{
			fmt.Sprintf("custos cannot find %s's card %d: %v.", who, serial, err),
			"Check the serial printed on the card and that it sits in the reader.",
			"Close any other program that may hold it (another custos, a browser).",
		}})
		if err := r.confirm(fmt.Sprintf("Try card %d again?", serial)); err != nil {
			return nil, err
		}
	}
}

// storeOnCard writes a share to the custodian's card and reads it back
// with their PIN. replace names the set of an abandoned attempt whose
// share may be overwritten on this card.
func (r *crun) storeOnCard(c PlanCustodian, s *shares.Share, d *shares.Dealt, replace []shares.SetID) (*shares.Share, *CardRef, error) {
	card, err := r.openCard(c.Name, c.Serial)
	if err != nil {
		return nil, nil, err
	}
	defer card.Close()
	asker := pinAsker{r.Prompter, c.Name}

	slot, replaced, err := r.cardSlot(card, c, asker, replace)
	if err != nil {
		return nil, nil, err
	}
	req := smartcard.StoreRequest{Slot: slot, SetID: s.SetID, Index: s.Index,
		Custodian: s.Custodian, Label: s.Label, Share: s.Marshal(), Dealer: d.Dealer,
		Prompt: asker, Replace: replaced,
		OnPulled: func(id smartcard.CardID) {
			r.Prompter.Show(Screen{Title: "Card pulled out", Alarm: true, Lines: []string{
				fmt.Sprintf("Card %d left the reader while its share was written.", id.Serial),
				"Put it back in the reader now; custos waits and checks what it holds.",
			}})
		}}
	if err := card.Store(req); err != nil {
		return nil, nil, err
	}

	r.Prompter.Show(Screen{Title: fmt.Sprintf("Reading back %s's card", c.Name), Lines: []string{
		fmt.Sprintf("Share %d is written to card %d, slot %v.", s.Index, c.Serial, slot),
		fmt.Sprintf("%s now types the PIN once more so custos can read it back.", c.Name),
	}})
	got, err := LoadCardShare(card, s.SetID, asker, d.DealerKey)
	if err != nil {
		return nil, nil, err
	}
	ref, err := CardRefOf(card, slot)
	return got, ref, err
}

// cardSlot picks the slot for the share: the slot of the abandoned
// attempt's share, else an enrolled empty slot, else a new enrolment.
func (r *crun) cardSlot(card *smartcard.Card, c PlanCustodian, asker pinAsker, replace []shares.SetID) (smartcard.Slot, *[16]byte, error) {
	st, err := card.Info()
	if err != nil {
		return 0, nil, err
	}
	for _, sl := range st.Slots {
		for _, id := range replace {
			if !sl.Foreign && sl.Kind == smartcard.KindShare && sl.SetID == id {
				raw := [16]byte(id)
				return sl.Slot, &raw, nil
			}
		}
	}
	for _, sl := range st.Slots {
		if !sl.Foreign && sl.Kind == smartcard.KindEnrolled {
			return sl.Slot, nil, nil
		}
	}
	e, err := r.enrol(card, st, c, asker)
	if err != nil {
		return 0, nil, err
	}
	return e.Slot, nil, nil
}

// enrol prepares a card for its custodian, asking for a new PIN and PUK
// when the card still has the factory ones.
func (r *crun) enrol(card *smartcard.Card, st *smartcard.CardInfo, c PlanCustodian, asker pinAsker) (*smartcard.Enrolment, error) {
	o := smartcard.EnrolOptions{Custodian: c.Name, Prompt: asker, Roots: r.Roots}
	cr := st.Credentials
	if cr.PINDefault || cr.PUKDefault {
		r.Prompter.Show(Screen{Title: fmt.Sprintf("New card for %s", c.Name), Lines: []string{
			fmt.Sprintf("Card %d is fresh from the factory.", c.Serial),
			fmt.Sprintf("%s now chooses a PIN (6 to 8 characters) and a PUK, which", c.Name),
			"unblocks the PIN if it is ever typed wrong three times.",
			"Nobody else should see them; they are not shown as they are typed.",
		}})
	}
	var err error
	if cr.PINDefault {
		if o.NewPIN, err = r.newSecret(c.Name, "PIN"); err != nil {
			return nil, err
		}
		defer clear(o.NewPIN)
	}
	if cr.PUKDefault {
		if o.NewPUK, err = r.newSecret(c.Name, "PUK"); err != nil {
			return nil, err
		}
		defer clear(o.NewPUK)
	}
	return card.Enrol(o)
}

// newSecret asks twice for a new PIN or PUK until both agree.
func (r *crun) newSecret(who, what string) ([]byte, error) {
	for {
		a, err := r.Prompter.Secret(fmt.Sprintf("%s, choose the card's new %s (6 to 8 characters)", who, what))
		if err != nil {
			return nil, err
		}
		b, err := r.Prompter.Secret(fmt.Sprintf("%s, type the new %s again", who, what))
		if err != nil {
			clear(a)
			return nil, err
		}
		same := bytes.Equal(a, b)
		clear(b)
		if same && len(a) >= 6 && len(a) <= 8 {
			return a, nil
		}
		clear(a)
		r.Prompter.Show(Screen{Title: "Not accepted", Alarm: true, Lines: []string{
			fmt.Sprintf("The two %ss differ, or are not 6 to 8 characters. Please choose again.", what)}})
	}
}

// LoadCardShare reads the share of setID from a card with the PIN and
// checks it alone and, when dealer is given, against the set's dealer.
func LoadCardShare(card *smartcard.Card, setID [16]byte, prompt smartcard.PINPrompt, dealer []byte) (*shares.Share, error) {
	l, err := card.Load(setID, prompt)
	if err != nil {
		return nil, err
	}
	defer clear(l.Share)
	source := fmt.Sprintf("card %d", l.Card.Serial)
	if dealer != nil && !bytes.Equal(l.Dealer, dealer) {
		return nil, fmt.Errorf("%s holds a share signed by dealer %s, not this set's %s",
			source, shares.DealerFingerprint(l.Dealer), shares.DealerFingerprint(dealer))
	}
	s, err := shares.Parse(l.Share, source)
	if err != nil {
		return nil, err
	}
	if !bytes.Equal(s.DealerKey, l.Dealer) {
		return nil, fmt.Errorf("%s: the share inside is signed by another dealer than its certificate", source)
	}
	return s, nil
}

// cardWords explains a card error in a custodian's words.
func cardWords(err error) string {
	var (
		pin     *smartcard.PINError
		blocked *smartcard.PINBlockedError
		absent  *smartcard.CardAbsentError
	)
	switch {
	case errors.As(err, &pin):
		return fmt.Sprintf("the PIN was wrong; the card has %d %s left", pin.Retries, plural(pin.Retries, "try", "tries"))
	case errors.As(err, &blocked):
		return "the card's PIN is blocked; the custodian's PUK can unblock it (ykman piv access unblock-pin)"
	case errors.Is(err, smartcard.ErrLastTryDeclined):
		return "the last PIN try was not spent; the card still has it"
	case errors.As(err, &absent):
		return "the card is not in the reader"
	}
	return err.Error()
}
