package smartcard

import (
	"errors"
	"fmt"
	"testing"

	"custos/smartcard/virtual/virtualtest"
)

// retryPrompt is a person at a terminal: it gives its PINs in turn and
// asks again after a wrong one while told to.
type retryPrompt struct {
	prompt
	pins  []string
	again bool
	told  []int // tries left told after each wrong PIN
}

func (p *retryPrompt) PIN(id CardID, retries int) ([]byte, error) {
	p.pin, p.pins = p.pins[0], p.pins[1:]
	return p.prompt.PIN(id, retries)
}

func (p *retryPrompt) RetryPIN(wrong *PINError) bool {
	p.told = append(p.told, wrong.Retries)
	return p.again && len(p.pins) > 0
}

// A prompt that retries is asked again after a wrong PIN, with the tries
// left shown and the last one confirmed; one that does not gives up, as a
// PIN file must. A wrong PIN after a right one on the same connection is
// counted and shown.
func TestCardPINRetry(t *testing.T) {
	ins := virtualtest.Start(t, 1)[0]
	c, e := enrol(t, ins, EnrolOptions{Custodian: "Ana"})
	setID, dealer := newSet(t)
	if err := c.Store(StoreRequest{Slot: e.Slot, SetID: setID, Index: 1,
		Share: []byte("share"), Dealer: dealer}); err != nil {
		t.Fatal(err)
	}
	c.Close()

	c = openCard(t, ins.Serial)
	p := &retryPrompt{pins: []string{"999999", "888888", testPIN}, again: true}
	p.confirm = true
	if _, err := c.Load(setID, p); err != nil {
		t.Fatalf("load with two wrong PINs first: %v", err)
	}
	if got := fmt.Sprint(p.retries, p.told, p.lastAsks); got != "[3 2 1] [2 1] 1" {
		t.Errorf("tries shown, told and last-try asks: %s, want [3 2 1] [2 1] 1", got)
	}

	// The right PIN reset the counter. A wrong one now, on the verified
	// connection, is refused and the prompt that gives up stops there.
	once := &retryPrompt{pins: []string{"999999", testPIN}}
	_, err := c.Load(setID, once)
	var pe *PINError
	if !errors.As(err, &pe) || pe.Retries != 2 || len(once.told) != 1 {
		t.Fatalf("wrong PIN without retry: %v (told %v)", err, once.told)
	}
	again := &retryPrompt{pins: []string{testPIN}}
	if _, err := c.Load(setID, again); err != nil || fmt.Sprint(again.retries) != "[2]" {
		t.Fatalf("after a wrong PIN the tries shown are %v (%v), want [2]", again.retries, err)
	}
}
