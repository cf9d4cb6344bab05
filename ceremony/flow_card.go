package ceremony

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"

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

// ConfirmLastTry says first that the try is the last, then reads the yes
// as a secret: a custodian who types the PIN there by mistake does not
// show it, and anything but yes gives up without repeating what was typed.
func (a pinAsker) ConfirmLastTry(card smartcard.CardID) (bool, error) {
	a.p.Show(Screen{Title: "Last PIN try", Alarm: true, Lines: []string{
		fmt.Sprintf("Card %d has 1 PIN try left: it is the last. A wrong PIN now blocks the card.", card.Serial),
		"Only go on if you are sure of the PIN; the PIN is asked after this.",
	}})
	ans, err := a.p.Secret(fmt.Sprintf("%s, type yes to spend the last try of card %d, "+
		"anything else gives up (typing is hidden)", a.who, card.Serial))
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

	o := CardOptions{Prompt: asker, Credentials: r.newCredentials(c), Roots: r.Roots}
	plan, err := o.slotFor(card, s, replace, false)
	var owner *CardOwnerError
	if errors.As(err, &owner) {
		if err := r.confirmOwner(c, owner); err != nil {
			return nil, nil, err
		}
		plan, err = o.slotFor(card, s, replace, true)
	}
	if err != nil {
		return nil, nil, err
	}
	req := storeRequest(s, d, plan.slot, asker)
	req.Replace = plan.replace
	req.OnPulled = func(id smartcard.CardID) {
		r.Prompter.Show(Screen{Title: "Card pulled out", Alarm: true, Lines: []string{
			fmt.Sprintf("Card %d left the reader while its share was written.", id.Serial),
			"Put it back in the reader now; custos waits and checks what it holds.",
		}})
	}
	return storeAndReadBack(card, req, d.DealerKey, func() {
		r.Prompter.Show(Screen{Title: fmt.Sprintf("Reading back %s's card", c.Name), Lines: []string{
			fmt.Sprintf("Share %d is written to card %d, slot %v.", s.Index, c.Serial, plan.slot),
			fmt.Sprintf("%s now types the PIN once more so custos can read it back.", c.Name),
		}})
	})
}

// confirmOwner shows that the custodian's card carries other names and
// asks the room whether it is the custodian's now; no stops the ceremony
// before anything is written to the card.
func (r *crun) confirmOwner(c PlanCustodian, e *CardOwnerError) error {
	r.Prompter.Show(Screen{Title: "Whose card is this?", Alarm: true, Lines: []string{
		fmt.Sprintf("The plan gives card %d to %s, but it was enrolled for %s.",
			c.Serial, c.Name, joinWords(e.EnrolledFor)),
		"Two custodians' cards may have been swapped, or the plan has the wrong serial.",
		fmt.Sprintf("Go on only if this card now belongs to %s: the share is recorded for %s.",
			c.Name, c.Name),
		"Answer no to stop here; nothing has been written to the card.",
	}})
	return r.confirm(fmt.Sprintf("Is card %d %s's card now?", c.Serial, c.Name))
}

// newCredentials asks the custodian for their card's new PIN and PUK when
// it still has the factory ones.
func (r *crun) newCredentials(c PlanCustodian) NewCredentials {
	return NewCredentials{
		Check: func(_ smartcard.CardID, cr smartcard.Credentials) error {
			if !cr.PINDefault && !cr.PUKDefault {
				return nil
			}
			r.Prompter.Show(Screen{Title: fmt.Sprintf("New card for %s", c.Name), Lines: []string{
				fmt.Sprintf("Card %d is fresh from the factory.", c.Serial),
				fmt.Sprintf("%s now chooses a PIN (6 to 8 characters) and a PUK, which", c.Name),
				"unblocks the PIN if it is ever typed wrong three times.",
				"Nobody else should see them; they are not shown as they are typed.",
			}})
			return nil
		},
		Ask: func(_ smartcard.CardID, what string) ([]byte, error) {
			return r.newSecret(c.Name, what)
		},
	}
}

// newSecret asks twice for a new PIN or PUK until both agree.
func (r *crun) newSecret(who, what string) ([]byte, error) {
	return AskNewSecret(func(again bool) ([]byte, error) {
		if again {
			return r.Prompter.Secret(fmt.Sprintf("%s, type the new %s again", who, what))
		}
		return r.Prompter.Secret(fmt.Sprintf("%s, choose the card's new %s (6 to 8 characters)", who, what))
	}, func() {
		r.Prompter.Show(Screen{Title: "Not accepted", Alarm: true, Lines: []string{
			fmt.Sprintf("The two %ss differ, or are not 6 to 8 characters. Please choose again.", what)}})
	})
}

// cardWords explains a card error in a custodian's words.
// worded says an error in the room's words and keeps the error itself, so
// that errors.Is and errors.As still see what happened (an abort, say).
type worded struct {
	words string
	err   error
}

func (w worded) Error() string { return w.words }
func (w worded) Unwrap() error { return w.err }

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
