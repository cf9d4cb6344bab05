package smartcard

import (
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"time"

	"github.com/go-piv/piv-go/v2/piv"
)

// CardID names a card in every message: its serial number and, once known,
// the reader it sits in.
type CardID struct {
	Serial uint32
	Reader string
}

// String returns "card 12345678 (in Reader Name)" or "card 12345678".
func (id CardID) String() string {
	if id.Reader == "" {
		return fmt.Sprintf("card %d", id.Serial)
	}
	return fmt.Sprintf("card %d (in %s)", id.Serial, id.Reader)
}

// CardAbsentError reports that the card is in no reader, or was pulled out
// while custos was talking to it.
type CardAbsentError struct {
	Card    CardID
	Removed bool // the card was there and went away during the operation
}

func (e *CardAbsentError) Error() string {
	if e.Removed {
		return fmt.Sprintf("%v was removed", e.Card)
	}
	return fmt.Sprintf("card %d is not in any reader", e.Card.Serial)
}

// CardBusyError reports that a card is held by another program (another
// custos, a browser, gpg-agent, ssh-agent...) for longer than custos waits.
type CardBusyError struct {
	Card    CardID
	Readers []string // readers whose card could not be asked
	Waited  time.Duration
}

func (e *CardBusyError) Error() string {
	if e.Card.Reader != "" && e.Waited == 0 {
		return fmt.Sprintf("%v is in use by another program", e.Card)
	}
	if e.Card.Reader != "" {
		return fmt.Sprintf("%v is in use by another program (waited %v)",
			e.Card, e.Waited.Round(time.Second))
	}
	return fmt.Sprintf("card %d not found; the card in %q is in use by "+
		"another program and may be it (waited %v)", e.Card.Serial,
		e.Readers, e.Waited.Round(time.Second))
}

// PINError reports a wrong PIN. Retries is the number of tries left; the
// PIN is blocked when it reaches zero (then the error is PINBlockedError).
type PINError struct {
	Card    CardID
	Retries int
}

func (e *PINError) Error() string {
	tries := "tries"
	if e.Retries == 1 {
		tries = "try"
	}
	return fmt.Sprintf("wrong PIN for %v: %d %s left", e.Card, e.Retries, tries)
}

// PINBlockedError reports a card whose PIN is blocked: no more tries. The
// custodian's PUK can unblock it (ykman piv access unblock-pin); without the
// PUK only a full reset, which loses every share on the card, makes the card
// usable again.
type PINBlockedError struct{ Card CardID }

func (e *PINBlockedError) Error() string {
	return fmt.Sprintf("the PIN of %v is blocked", e.Card)
}

// ErrLastTryDeclined is returned when only one PIN try is left and the
// prompt did not confirm spending it.
var ErrLastTryDeclined = errors.New("last PIN try not confirmed")

// DefaultCredentialsError reports a card that still has a factory PIN, PUK
// or management key, as the card itself says (custos never tries them). Set
// EnrolOptions.NewPIN and NewPUK to have custos replace them.
type DefaultCredentialsError struct {
	Card          CardID
	PIN, PUK, Key bool
}

func (e *DefaultCredentialsError) Error() string {
	var what []string
	if e.PIN {
		what = append(what, "PIN")
	}
	if e.PUK {
		what = append(what, "PUK")
	}
	if e.Key {
		what = append(what, "management key")
	}
	return fmt.Sprintf("%v still has the factory default %s", e.Card,
		joinAnd(what))
}

// SlotOccupiedError reports a slot that holds something custos would
// destroy: a custos share (SetID set), or a key or certificate that custos did
// not write (Foreign).
type SlotOccupiedError struct {
	Card    CardID
	Slot    Slot
	Foreign bool
	SetID   [16]byte // the set whose share the slot holds, when !Foreign
	Index   int
}

func (e *SlotOccupiedError) Error() string {
	if e.Foreign {
		return fmt.Sprintf("slot %v of %v holds a key or certificate "+
			"custos did not write", e.Slot, e.Card)
	}
	return fmt.Sprintf("slot %v of %v holds share %d of set %X", e.Slot,
		e.Card, e.Index, e.SetID[:])
}

// CardFullError reports that no retired slot is free for a new custodian key.
type CardFullError struct{ Card CardID }

func (e *CardFullError) Error() string {
	return fmt.Sprintf("%v has no free key slot", e.Card)
}

// UnattestedError reports a custos slot whose key's attestation custos
// never verified (its enrolment failed there, or predates the check). It
// takes no share; enrolling the card again replaces its key.
type UnattestedError struct {
	Card CardID
	Slot Slot
}

func (e *UnattestedError) Error() string {
	return fmt.Sprintf("slot %v of %v holds a key whose attestation custos "+
		"never verified; it takes no share until the card is enrolled again",
		e.Slot, e.Card)
}

// ObjectTooLargeError reports a certificate object larger than the card
// stores in one slot.
type ObjectTooLargeError struct {
	Card      CardID
	Slot      Slot
	Size, Max int
}

func (e *ObjectTooLargeError) Error() string {
	if e.Max == 0 {
		return fmt.Sprintf("object too large for slot %v of %v: the card "+
			"refused %d bytes", e.Slot, e.Card, e.Size)
	}
	return fmt.Sprintf("object too large for slot %v of %v: %d bytes, the "+
		"card holds at most %d", e.Slot, e.Card, e.Size, e.Max)
}

// NotCustosError reports a card, slot or set that holds no custos share.
type NotCustosError struct {
	Card  CardID
	Slot  Slot      // zero when the whole card was searched
	SetID *[16]byte // the set that was looked for, if any
}

func (e *NotCustosError) Error() string {
	switch {
	case e.SetID != nil:
		return fmt.Sprintf("%v holds no share of set %X", e.Card, e.SetID[:])
	case e.Slot != 0:
		return fmt.Sprintf("slot %v of %v holds no custos share", e.Slot,
			e.Card)
	}
	return fmt.Sprintf("%v holds no custos share", e.Card)
}

// Content says what a slot holds after an interrupted write.
type Content int

// The contents an interrupted write can leave.
const (
	ContentUnknown Content = iota // the card did not come back
	ContentOld                    // the slot still holds what it held before
	ContentNew                    // the new share is there, verified
)

func (c Content) String() string {
	switch c {
	case ContentOld:
		return "its previous content"
	case ContentNew:
		return "the new share, verified"
	}
	return "unknown content"
}

// InterruptedError reports a write during which the card was pulled or the
// connection dropped. Now tells what the slot holds, read back after the
// card came back; with ContentNew the share is stored and verified, and only
// the interruption is reported.
type InterruptedError struct {
	Card CardID
	Slot Slot
	Now  Content
	Err  error // why the card could not be read back, for ContentUnknown
}

func (e *InterruptedError) Error() string {
	msg := fmt.Sprintf("writing slot %v of %v was interrupted; the slot "+
		"holds %v", e.Slot, e.Card, e.Now)
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	return msg
}

func (e *InterruptedError) Unwrap() error { return e.Err }

// CardError is any other refusal or failure of the card, in words. Status
// keeps the ISO 7816 status word and Err the underlying error, for logs;
// Error shows neither.
type CardError struct {
	Card   CardID
	Status uint16
	Msg    string // what went wrong, when custos knows better than Status
	Err    error
}

func (e *CardError) Error() string {
	if e.Msg != "" {
		return fmt.Sprintf("%v: %s", e.Card, e.Msg)
	}
	return fmt.Sprintf("%v: %s", e.Card, statusText(e.Status))
}

func (e *CardError) Unwrap() error { return e.Err }

// statusText puts a status word into words.
func statusText(sw uint16) string {
	switch {
	case sw == 0x6982:
		return "the card refused: not authorised"
	case sw == 0x6a84:
		return "the card is out of memory"
	case sw == 0x6a80 || sw == 0x6700 || sw == 0x6a86:
		return "the card rejected the command as malformed"
	case sw == 0x6d00 || sw == 0x6a81:
		return "the card does not support this operation"
	case sw == 0x6a82 || sw == 0x6a88:
		return "the card has no such object"
	case sw != 0:
		return "the card refused the operation"
	}
	return "the card did not answer as expected"
}

// statusWord returns the status word piv-go saw, or 0. Some piv-go paths
// format the status error with %v rather than wrap it; their text still
// carries the word, which is read back here.
func statusWord(err error) uint16 {
	var s interface{ Status() uint16 }
	if errors.As(err, &s) {
		return s.Status()
	}
	if err == nil {
		return 0
	}
	m := swInText.FindStringSubmatch(err.Error())
	if m == nil {
		return 0
	}
	sw, _ := strconv.ParseUint(m[1], 16, 16)
	return uint16(sw)
}

var swInText = regexp.MustCompile(`smart card error ([0-9a-f]{4})\b`)

// pinFailure turns piv-go's answer to a VERIFY into PINError or
// PINBlockedError; ok is false for other errors.
func pinFailure(id CardID, err error) (error, bool) {
	var a piv.AuthErr
	if !errors.As(err, &a) {
		return nil, false
	}
	if a.Retries == 0 || statusWord(err) == 0x6983 {
		return &PINBlockedError{Card: id}, true
	}
	return &PINError{Card: id, Retries: a.Retries}, true
}

// cardErr wraps a piv-go error that is neither a PIN nor a transport
// failure, with the gerund phrase of the step that failed.
func cardErr(id CardID, step string, err error) error {
	if err == nil {
		return nil
	}
	if typed(err) {
		return fmt.Errorf("%s: %w", step, err)
	}
	if e, ok := pinFailure(id, err); ok {
		return fmt.Errorf("%s: %w", step, e)
	}
	return fmt.Errorf("%s: %w", step,
		&CardError{Card: id, Status: statusWord(err), Err: err})
}

// typed reports whether err already is one of this package's errors.
func typed(err error) bool {
	var (
		a *CardAbsentError
		b *CardBusyError
		p *PINError
		k *PINBlockedError
		c *CardError
		i *InterruptedError
	)
	return errors.As(err, &a) || errors.As(err, &b) || errors.As(err, &p) ||
		errors.As(err, &k) || errors.As(err, &c) || errors.As(err, &i)
}

func joinAnd(s []string) string {
	switch len(s) {
	case 0:
		return ""
	case 1:
		return s[0]
	}
	out := s[0]
	for _, w := range s[1 : len(s)-1] {
		out += ", " + w
	}
	return out + " and " + s[len(s)-1]
}
