package smartcard

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/go-piv/piv-go/v2/piv"
)

// statusErr stands for piv-go's status word error, which is unexported;
// piv-go's has the same Status method, which is all custos looks at.
type statusErr struct{ sw uint16 }

func (e statusErr) Error() string  { return fmt.Sprintf("smart card error %04x", e.sw) }
func (e statusErr) Status() uint16 { return e.sw }

func (e statusErr) Unwrap() error {
	switch {
	case e.sw == 0x6983:
		return piv.AuthErr{Retries: 0}
	case e.sw&0xfff0 == 0x63c0:
		return piv.AuthErr{Retries: int(e.sw & 0xf)}
	}
	return nil
}

var rawStatus = regexp.MustCompile(`(?i)\b(6[0-9a-f]{3}|9000)\b|status|sw1`)

func TestCardErrMapping(t *testing.T) {
	id := CardID{Serial: 12345678, Reader: "Yubico YubiKey OTP+FIDO+CCID 00 00"}
	cases := []struct {
		name  string
		err   error
		check func(error) bool
	}{
		{"63C2 wrong PIN", statusErr{0x63c2}, func(e error) bool {
			var p *PINError
			return errors.As(e, &p) && p.Retries == 2
		}},
		{"63C1 last try", statusErr{0x63c1}, func(e error) bool {
			var p *PINError
			return errors.As(e, &p) && p.Retries == 1
		}},
		{"63C0 blocked", statusErr{0x63c0}, is[*PINBlockedError]},
		{"6983 blocked", statusErr{0x6983}, is[*PINBlockedError]},
		{"bare AuthErr", piv.AuthErr{Retries: 3}, func(e error) bool {
			var p *PINError
			return errors.As(e, &p) && p.Retries == 3
		}},
		{"6982 not authorised", statusErr{0x6982}, cardErrorWith(0x6982)},
		{"6A84 out of memory", statusErr{0x6a84}, cardErrorWith(0x6a84)},
		{"6A82 not found", statusErr{0x6a82}, cardErrorWith(0x6a82)},
		{"6D00 unsupported", statusErr{0x6d00}, cardErrorWith(0x6d00)},
		{"6F00 unknown", statusErr{0x6f00}, cardErrorWith(0x6f00)},
		{"status only in text", errors.New("command failed: smart card error 6a84: not enough memory"),
			cardErrorWith(0x6a84)},
		{"already typed", &CardBusyError{Card: id}, is[*CardBusyError]},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := cardErr(id, "storing share", c.err)
			if !c.check(got) {
				t.Fatalf("cardErr(%v) = %#v", c.err, got)
			}
			msg := got.Error()
			if !strings.HasPrefix(msg, "storing share: ") {
				t.Errorf("message %q lacks the step", msg)
			}
			if !strings.Contains(msg, "card 12345678") && !errors.As(got, new(*CardBusyError)) {
				t.Errorf("message %q does not name the card", msg)
			}
			if rawStatus.MatchString(strings.ReplaceAll(msg, "12345678", "")) {
				t.Errorf("message %q shows a raw status word", msg)
			}
		})
	}
}

func is[T error](err error) bool {
	var target T
	return errors.As(err, &target)
}

func cardErrorWith(sw uint16) func(error) bool {
	return func(err error) bool {
		var c *CardError
		return errors.As(err, &c) && c.Status == sw
	}
}

// TestErrorMessages checks every typed error names its card and reads as
// words, never as a status word.
func TestErrorMessages(t *testing.T) {
	id := CardID{Serial: 4242, Reader: "Virtual PCD 00 01"}
	set := [16]byte{0x7f, 0x2c}
	errs := []error{
		&CardAbsentError{Card: CardID{Serial: 4242}},
		&CardAbsentError{Card: id, Removed: true},
		&CardBusyError{Card: id, Waited: 3 * time.Second},
		&CardBusyError{Card: CardID{Serial: 4242}, Readers: []string{"R"}, Waited: time.Second},
		&PINError{Card: id, Retries: 2},
		&PINBlockedError{Card: id},
		&DefaultCredentialsError{Card: id, PIN: true, Key: true},
		&SlotOccupiedError{Card: id, Slot: 0x82, SetID: set, Index: 2},
		&SlotOccupiedError{Card: id, Slot: 0x82, Foreign: true},
		&CardFullError{Card: id},
		&ObjectTooLargeError{Card: id, Slot: 0x82, Size: 4000, Max: MaxObjectSize},
		&ObjectTooLargeError{Card: id, Slot: 0x82, Size: 2000},
		&NotCustosError{Card: id},
		&NotCustosError{Card: id, Slot: 0x83},
		&NotCustosError{Card: id, SetID: &set},
		&InvalidShareError{Card: id, Slot: 0x82, Reason: "dealer signature invalid"},
		&InterruptedError{Card: id, Slot: 0x82, Now: ContentOld},
		&AttestationError{Card: id, Slot: 0x82, Reason: "x"},
		&CardError{Card: id, Status: 0x6a80},
	}
	for _, e := range errs {
		msg := e.Error()
		if !strings.Contains(msg, "4242") {
			t.Errorf("%T: %q does not name the card", e, msg)
		}
		if rawStatus.MatchString(strings.ReplaceAll(msg, "4242", "")) {
			t.Errorf("%T: %q shows a status word", e, msg)
		}
		if msg != strings.TrimSpace(msg) || strings.HasSuffix(msg, ".") {
			t.Errorf("%T: %q is not Go error style", e, msg)
		}
	}
	if got := (&PINError{Card: id, Retries: 1}).Error(); !strings.Contains(got, "1 try left") {
		t.Errorf("PINError(1) = %q", got)
	}
	if got := (&DefaultCredentialsError{Card: id, PIN: true, PUK: true, Key: true}).Error(); !strings.Contains(got, "PIN, PUK and management key") {
		t.Errorf("DefaultCredentialsError = %q", got)
	}
}

func TestPCSCErrors(t *testing.T) {
	cases := []struct {
		rc           int64
		busy, absent bool
	}{
		{pcscSharingViolation, true, false},
		{pcscNoSmartcard, false, true},
		{pcscRemoved, false, true},
		{pcscUnpowered, false, true},
		{pcscReaderUnavailable, false, true},
		{pcscReset, false, false},
		{pcscNotTransacted, false, true},
		{pcscNoService, false, false},
		{int64(int32(-2146435061)), true, false}, // 0x8010000B as a 32-bit LONG
	}
	for _, c := range cases {
		err := rcError(c.rc)
		var pe *pcscError
		if !errors.As(err, &pe) {
			t.Fatalf("rcError(%#x) = %v", c.rc, err)
		}
		if pe.busy() != c.busy || pe.absent() != c.absent {
			t.Errorf("rc %#x: busy %v absent %v, want %v %v", c.rc, pe.busy(), pe.absent(), c.busy, c.absent)
		}
	}
	if rcError(0) != nil {
		t.Error("rcError(0) is an error")
	}
}
