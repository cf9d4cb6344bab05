package ceremony

import (
	"bytes"
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"custos/printer"
	"custos/shares"
	"custos/smartcard"
	"custos/smartcard/virtual/virtualtest"
)

func TestPickSlot(t *testing.T) {
	var old, other shares.SetID
	old[0], other[0] = 1, 2
	enrolled := func(s smartcard.Slot, name string, attested bool) smartcard.SlotInfo {
		return smartcard.SlotInfo{Slot: s, Kind: smartcard.KindEnrolled,
			Custodian: name, Attested: attested}
	}
	share := func(s smartcard.Slot, set shares.SetID) smartcard.SlotInfo {
		return smartcard.SlotInfo{Slot: s, Kind: smartcard.KindShare,
			SetID: set, Custodian: "Ana", Attested: true}
	}
	foreign := smartcard.SlotInfo{Slot: 0x82, Foreign: true}
	broken := smartcard.SlotInfo{Slot: 0x83, Kind: smartcard.KindEnrolled,
		Attested: true, Err: errors.New("malformed certificate")}

	tests := []struct {
		name    string
		slots   []smartcard.SlotInfo
		replace []shares.SetID
		who     string
		anyName bool
		want    slotPlan
	}{
		{"fresh card", nil, nil, "Ana", false, slotPlan{enrol: enrolFresh}},
		{"enrolled", []smartcard.SlotInfo{enrolled(0x84, "Ana", true)}, nil, "Ana", false,
			slotPlan{slot: 0x84, enrolledFor: "Ana"}},
		{"first verified slot", []smartcard.SlotInfo{foreign, broken,
			enrolled(0x84, "Ana", false), enrolled(0x85, "Ana", true)}, nil, "Ana", false,
			slotPlan{slot: 0x85, enrolledFor: "Ana"}},
		{"only unverified", []smartcard.SlotInfo{enrolled(0x82, "Ana", false)},
			nil, "Ana", false, slotPlan{enrol: enrolUnverified}},
		{"full", []smartcard.SlotInfo{foreign, share(0x83, other)}, nil, "Ana", false,
			slotPlan{enrol: enrolFull}},
		{"abandoned attempt", []smartcard.SlotInfo{enrolled(0x82, "Ana", true),
			share(0x83, other), share(0x84, old)}, []shares.SetID{old}, "Ana", false,
			slotPlan{slot: 0x84, replace: (*[16]byte)(&old), enrolledFor: "Ana"}},
		{"another set is kept", []smartcard.SlotInfo{share(0x83, other)},
			[]shares.SetID{old}, "Ana", false, slotPlan{enrol: enrolFull}},
		{"the custodian's own slot", []smartcard.SlotInfo{enrolled(0x82, "Dana", true),
			enrolled(0x83, "Ana", true)}, nil, "Ana", false,
			slotPlan{slot: 0x83, enrolledFor: "Ana"}},
		{"another custodian's slot", []smartcard.SlotInfo{enrolled(0x82, "Bo", true)},
			nil, "Ana", false, slotPlan{enrol: enrolFull}},
		{"reassigned", []smartcard.SlotInfo{enrolled(0x82, "Bo", true)},
			nil, "Ana", true, slotPlan{slot: 0x82, enrolledFor: "Bo"}},
		{"no names", []smartcard.SlotInfo{enrolled(0x82, "Bo", true)},
			nil, "", false, slotPlan{slot: 0x82, enrolledFor: "Bo"}},
		{"slot without a name", []smartcard.SlotInfo{enrolled(0x82, "", true)},
			nil, "Ana", false, slotPlan{slot: 0x82}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := pickSlot(&smartcard.CardInfo{Slots: tt.slots}, tt.replace, tt.who, tt.anyName)
			if got.slot != tt.want.slot || got.enrol != tt.want.enrol ||
				got.enrolledFor != tt.want.enrolledFor ||
				(got.replace == nil) != (tt.want.replace == nil) ||
				got.replace != nil && *got.replace != *tt.want.replace {
				t.Errorf("pickSlot = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestNewSerialCards(t *testing.T) {
	names := []string{"Ana", "Bo", "Chen"}
	c, err := NewSerialCards([]CardSpec{{"Chen", 30, false}, {"Ana", 10, true},
		{"2", 20, false}}, names, CardOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(c.Custodians(), c.serials, c.reassign); got !=
		"[1 2 3] map[1:10 2:20 3:30] map[1:true 2:false 3:false]" {
		t.Errorf("custodians, serials and reassigned cards: %s", got)
	}

	refused := []struct {
		specs []CardSpec
		names []string
		want  string
	}{
		{[]CardSpec{{"Zed", 1, false}}, names, `no custodian is named "Zed"`},
		{[]CardSpec{{"4", 1, false}}, names, `no custodian is named "4"`},
		{[]CardSpec{{"0", 1, false}}, nil, `no custodian is named "0"`},
		{[]CardSpec{{"Ana", 7, false}, {"Bo", 7, false}}, names, "card 7 is given for both Ana and Bo"},
		{[]CardSpec{{"Ana", 7, false}, {"1", 8, false}}, names, "custodian 1 is given two cards"},
	}
	for _, tt := range refused {
		_, err := NewSerialCards(tt.specs, tt.names, CardOptions{})
		var se *CardSpecError
		last := tt.specs[len(tt.specs)-1]
		if !errors.As(err, &se) || se.Spec != last || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%v: got %v, want a CardSpecError for %v saying %q", tt.specs, err, last, tt.want)
		}
	}

	// Without names, any share number names a custodian.
	if c, err := NewSerialCards([]CardSpec{{"7", 70, false}}, nil, CardOptions{}); err != nil || c.serials[7] != 70 {
		t.Errorf("share number without names: %v, %v", c, err)
	}
}

func TestCardOwner(t *testing.T) {
	slot := func(name string, kind smartcard.Kind) smartcard.SlotInfo {
		return smartcard.SlotInfo{Slot: 0x82, Kind: kind, Custodian: name}
	}
	foreign := smartcard.SlotInfo{Slot: 0x83, Foreign: true}
	tests := []struct {
		slots []smartcard.SlotInfo
		want  string
		err   string // empty: accepted
	}{
		{nil, "Ana", ""},
		{[]smartcard.SlotInfo{foreign}, "Ana", ""},
		{[]smartcard.SlotInfo{slot("Ana", smartcard.KindEnrolled)}, "Ana", ""},
		{[]smartcard.SlotInfo{slot("", smartcard.KindEnrolled)}, "Ana", ""},
		{[]smartcard.SlotInfo{slot("Bo", smartcard.KindShare), slot("Ana", smartcard.KindEnrolled)}, "Ana", ""},
		{[]smartcard.SlotInfo{slot("Bo", smartcard.KindEnrolled)}, "", ""},
		{[]smartcard.SlotInfo{slot("Bo", smartcard.KindEnrolled)}, "Ana",
			"card 48318542 was enrolled for Bo, not Ana: swapped cards?"},
		{[]smartcard.SlotInfo{slot("Bo", smartcard.KindShare), slot("Chen", smartcard.KindEnrolled),
			slot("Bo", smartcard.KindEnrolled)}, "Ana",
			"card 48318542 was enrolled for Bo and Chen, not Ana: swapped cards?"},
	}
	for _, tt := range tests {
		st := &smartcard.CardInfo{Card: smartcard.CardID{Serial: 48318542, Reader: "R"}, Slots: tt.slots}
		err := cardOwner(st, tt.want)
		var oe *CardOwnerError
		switch {
		case tt.err == "" && err != nil:
			t.Errorf("%+v for %q: refused: %v", tt.slots, tt.want, err)
		case tt.err != "" && (!errors.As(err, &oe) || err.Error() != tt.err):
			t.Errorf("%+v for %q: %v, want a CardOwnerError %q", tt.slots, tt.want, err, tt.err)
		}
	}
}

func TestAskNewSecret(t *testing.T) {
	// Entries in order: two that differ, two too short, two that agree.
	entries := []string{"13572468", "13572469", "12345", "12345", "24681357", "24681357"}
	var given [][]byte
	var agains []bool
	read := func(again bool) ([]byte, error) {
		if len(entries) == 0 {
			return nil, errors.New("asked too often")
		}
		b := []byte(entries[0])
		entries = entries[1:]
		given = append(given, b)
		agains = append(agains, again)
		return b, nil
	}
	refusals := 0
	got, err := AskNewSecret(read, func() { refusals++ })
	if err != nil || string(got) != "24681357" {
		t.Fatalf("AskNewSecret = %q, %v", got, err)
	}
	if refusals != 2 || fmt.Sprint(agains) != "[false true false true false true]" {
		t.Errorf("%d refusals, reads %v", refusals, agains)
	}
	for i, b := range given {
		if i != 4 && !bytes.Equal(b, make([]byte, len(b))) {
			t.Errorf("entry %d was not cleared", i+1)
		}
	}

	// A failed read stops it, clearing the first entry.
	entries = []string{"13572468"}
	given = nil
	if _, err := AskNewSecret(read, func() {}); err == nil ||
		!bytes.Equal(given[0], make([]byte, 8)) {
		t.Errorf("after a failed read: %v, first entry %q", err, given[0])
	}
}

// said collects what a flow reports.
type said struct {
	mu    sync.Mutex
	lines []string
}

func (s *said) reporter() Reporter {
	add := func(prefix string) func(string, ...any) {
		return func(format string, a ...any) {
			s.mu.Lock()
			defer s.mu.Unlock()
			s.lines = append(s.lines, prefix+fmt.Sprintf(format, a...))
		}
	}
	return Reporter{Info: add(""), Warn: add("warning: ")}
}

func (s *said) add(line string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.lines = append(s.lines, line)
}

func (s *said) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return strings.Join(s.lines, "\n")
}

// roomPrompt gives each card's PIN, and asks again after a wrong one, as
// a person at a terminal does. Every request goes into the same log as
// what the flow reports, so the order of messages and prompts shows.
type roomPrompt struct {
	log   *said
	pin   string
	asked int
	// before, if set, runs before a PIN is given, with the message said
	// just before the request; a non-empty result is given instead.
	before func(serial uint32, said string) string
}

func (p *roomPrompt) PIN(card smartcard.CardID, retries int) ([]byte, error) {
	p.asked++
	last := ""
	if n := len(p.log.lines); n > 0 {
		last = p.log.lines[n-1]
	}
	p.log.add(fmt.Sprintf("PIN? card %d (%d left)", card.Serial, retries))
	if p.before != nil {
		if pin := p.before(card.Serial, last); pin != "" {
			return []byte(pin), nil
		}
	}
	return []byte(p.pin), nil
}

func (p *roomPrompt) ConfirmLastTry(smartcard.CardID) (bool, error) { return false, nil }

func (p *roomPrompt) RetryPIN(wrong *smartcard.PINError) bool {
	p.log.add("wrong: " + wrong.Error())
	return true
}

// serialSplit splits a fixed key 2-of-2 to Ana and Bo, on paper and on
// the cards given, into a new directory; it returns the error and the
// directory.
func serialSplit(t *testing.T, cards CardWriter, log *said) (string, error) {
	t.Helper()
	out := filepath.Join(t.TempDir(), "out")
	_, err := SplitFiles(context.Background(), SplitRequest{
		Policy: shares.Policy{Threshold: 2, Count: 2, Custodians: []string{"Ana", "Bo"},
			Label: "serial cards", Kind: shares.KindAES},
		OutDir: out, Secret: bytes.NewReader(bytes.Repeat([]byte{0x42}, 32)),
		NoPaper: true, Cards: cards,
	}, log.reporter())
	return out, err
}

// cardOptions are the options of a split onto virtual cards whose new
// PIN is pin.
func cardOptions(prompt smartcard.PINPrompt, pin, puk string, log *said, ins ...virtualtest.Inserted) CardOptions {
	roots := x509.NewCertPool()
	for _, c := range ins {
		roots.AddCert(c.Card.AttestationCA())
	}
	return CardOptions{
		Prompt: prompt,
		Credentials: NewCredentials{Ask: func(_ smartcard.CardID, what string) ([]byte, error) {
			if what == "PUK" {
				return []byte(puk), nil
			}
			return []byte(pin), nil
		}},
		Roots: roots, Report: log.reporter(),
	}
}

func cardInfo(t *testing.T, serial uint32) *smartcard.CardInfo {
	t.Helper()
	card, err := smartcard.Open(context.Background(), serial)
	if err != nil {
		t.Fatal(err)
	}
	defer card.Close()
	st, err := card.Info()
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// A card that is in no reader stops the split before anything is
// written: the other custodian's factory card is not even enrolled.
func TestSerialCardsCheckedBeforeWriting(t *testing.T) {
	ins := virtualtest.Start(t, 1)[0]
	pin, puk := "4711"+randomHex(t)[:4], "90817263"
	var log said
	p := &roomPrompt{log: &log, pin: pin}
	const absent = 99999999
	cards, err := NewSerialCards([]CardSpec{{Custodian: "Ana", Serial: ins.Serial},
		{Custodian: "Bo", Serial: absent}}, []string{"Ana", "Bo"}, cardOptions(p, pin, puk, &log, ins))
	if err != nil {
		t.Fatal(err)
	}
	out, err := serialSplit(t, cards, &log)
	var check *CardCheckError
	var gone *smartcard.CardAbsentError
	if !errors.As(err, &check) || check.Index != 2 || !errors.As(err, &gone) ||
		gone.Card.Serial != absent || !strings.Contains(err.Error(), "checking Bo's card before the split") {
		t.Fatalf("split with Bo's card absent: %v\n%s", err, &log)
	}
	if st := cardInfo(t, ins.Serial); !st.Credentials.PINDefault || len(st.Slots) != 0 {
		t.Errorf("Ana's card was changed by a split refused before writing: %+v", st)
	}
	if p.asked != 0 || strings.Contains(log.String(), "enrolling") {
		t.Errorf("the refused split asked for a PIN or enrolled a card:\n%s", &log)
	}
	if _, err := os.Stat(out); err == nil {
		t.Errorf("a refused split left %s", out)
	}
}

// Bo's card is pulled at his PIN prompt, after Ana's share was stored and
// his was written. custos says why before it asks for Ana's PIN again;
// Ana mistypes it and is asked again; her share is destroyed, and her card
// keeps one slot, ready for the next split. Bo's share cannot be reached:
// it is named as left on his card, and the next split onto his card lists
// it. Run three times, the failed split never grows Ana's card.
func TestSerialCardsPulledMidSplit(t *testing.T) {
	ins := virtualtest.Start(t, 2)
	ana, bo := ins[0], ins[1]
	pin, puk := "4711"+randomHex(t)[:4], "90817263"

	for attempt := 1; attempt <= 3; attempt++ {
		var log said
		p := &roomPrompt{log: &log, pin: pin}
		mistyped := false
		p.before = func(serial uint32, said string) string {
			switch {
			case serial == bo.Serial && strings.Contains(said, "share 2 written"):
				bo.Pull() // at the read-back
			case serial == ana.Serial && strings.Contains(said, "must be destroyed again") && !mistyped:
				mistyped = true
				return "00000000"
			}
			return ""
		}
		cards, err := NewSerialCards([]CardSpec{{Custodian: "Ana", Serial: ana.Serial},
			{Custodian: "Bo", Serial: bo.Serial}}, []string{"Ana", "Bo"},
			cardOptions(p, pin, puk, &log, ana, bo))
		if err != nil {
			t.Fatal(err)
		}
		out, err := serialSplit(t, cards, &log)
		bo.Reinsert()

		var sc *SplitCardsError
		var gone *smartcard.CardAbsentError
		if !errors.As(err, &sc) || !errors.As(err, &gone) || gone.Card.Serial != bo.Serial ||
			!strings.Contains(err.Error(), "storing share 2 on Bo's card") {
			t.Fatalf("attempt %d: split with Bo's card pulled: %v\n%s", attempt, err, &log)
		}
		if fmt.Sprint(sc.Destroyed) != "[1]" || len(sc.Left) != 1 || sc.Left[0].Index != 2 ||
			sc.Left[0].Serial != bo.Serial {
			t.Fatalf("attempt %d: destroyed %v, left %+v\n%s", attempt, sc.Destroyed, sc.Left, &log)
		}
		lines := log.lines
		stopped := slices.IndexFunc(lines, func(l string) bool {
			return strings.HasPrefix(l, "warning: the split is stopped: storing share 2 on Bo's card")
		})
		again := slices.IndexFunc(lines, func(l string) bool {
			return strings.HasPrefix(l, fmt.Sprintf("Ana's share 1 is on card %d and must be destroyed again", ana.Serial))
		})
		if stopped < 0 || again != stopped+1 || again+3 >= len(lines) ||
			lines[again+1] != fmt.Sprintf("PIN? card %d (3 left)", ana.Serial) ||
			!strings.HasPrefix(lines[again+2], "wrong: wrong PIN for card") ||
			lines[again+3] != fmt.Sprintf("PIN? card %d (2 left)", ana.Serial) {
			t.Fatalf("attempt %d: Ana's PIN is not asked again after saying why:\n%s", attempt, &log)
		}
		if !strings.Contains(log.String(), "share 1 destroyed on Ana's card") ||
			!strings.Contains(log.String(), "warning: share 2 is STILL on Bo's card") {
			t.Errorf("attempt %d: the cards' states are not said:\n%s", attempt, &log)
		}
		if _, err := os.Stat(out); err == nil {
			t.Errorf("attempt %d: a failed split left %s", attempt, out)
		}

		st := cardInfo(t, ana.Serial)
		if len(st.Slots) != 1 || st.Slots[0].Slot != 0x82 || st.Slots[0].Kind != smartcard.KindEnrolled ||
			!st.Slots[0].Attested || st.Slots[0].Custodian != "Ana" {
			t.Fatalf("attempt %d: Ana's card after the failed split: %+v", attempt, st.Slots)
		}
		held, left := 0, false
		for _, sl := range cardInfo(t, bo.Serial).Slots {
			if sl.Kind == smartcard.KindShare {
				held++
				left = left || shares.SetID(sl.SetID) == sc.Left[0].SetID
			}
		}
		if held != attempt || !left {
			t.Errorf("attempt %d: Bo's card holds %d leftover shares, this one's: %v", attempt, held, left)
		}
		if attempt > 1 && !strings.Contains(log.String(), "holds share 2 of set ") ||
			attempt > 1 && !strings.Contains(log.String(), fmt.Sprintf("custos card wipe --serial %d", bo.Serial)) {
			t.Errorf("attempt %d: Bo's leftover shares were not listed:\n%s", attempt, &log)
		}
	}

	// Ana's card is read without naming a set: it holds none.
	var log said
	p := &roomPrompt{log: &log, pin: pin}
	_, err := ReadCardShare(context.Background(), ana.Serial, nil, p, Reporter{})
	var sets *CardSetsError
	if !errors.As(err, &sets) || sets.Sets != 0 {
		t.Errorf("reading Ana's card after three failed splits: %v", err)
	}

	// Discard of a share the card does not hold is refused, naming it;
	// on an absent card it names that.
	cards, err := NewSerialCards([]CardSpec{{Custodian: "Ana", Serial: ana.Serial},
		{Custodian: "Bo", Serial: 99999999}}, []string{"Ana", "Bo"}, cardOptions(p, pin, puk, &log, ana))
	if err != nil {
		t.Fatal(err)
	}
	var s shares.Share
	s.Index, s.SetID, s.Custodian = 1, shares.SetID{1}, "Ana"
	var de *DiscardError
	if err := cards.Discard(context.Background(), &s); !errors.As(err, &de) ||
		de.Serial != ana.Serial || !strings.Contains(err.Error(), fmt.Sprint(ana.Serial)) {
		t.Errorf("discarding a share the card does not hold: %v", err)
	}
	s.Index = 2
	var gone *smartcard.CardAbsentError
	if err := cards.Discard(context.Background(), &s); !errors.As(err, &gone) {
		t.Errorf("discarding on an absent card: %v", err)
	}
}

// A card whose first enrolment failed its attestation keeps the new PIN
// and an unverified slot; the interactive split enrols that slot again,
// checked against the room's roots, and stores the share there.
func TestCardCeremonyReenrolsUnverifiedSlot(t *testing.T) {
	ins := virtualtest.Start(t, 1)[0]
	pin, puk := "4711"+randomHex(t)[:4], "90817263"
	card, err := smartcard.Open(context.Background(), ins.Serial)
	if err != nil {
		t.Fatal(err)
	}
	creds := NewCredentials{Ask: func(_ smartcard.CardID, what string) ([]byte, error) {
		return []byte(map[string]string{"PIN": pin, "PUK": puk}[what]), nil
	}}
	// Without roots the virtual card's CA is not trusted.
	_, err = EnrolCard(card, smartcard.EnrolOptions{Custodian: "Ana"}, creds, Reporter{})
	card.Close()
	var ae *smartcard.AttestationError
	if !errors.Is(err, ErrCredentialsChanged) || !errors.As(err, &ae) || ae.Slot != 0x82 {
		t.Fatalf("enrolment without the card's CA: %v", err)
	}

	roots := x509.NewCertPool()
	roots.AddCert(ins.Card.AttestationCA())
	kf := filepath.Join(t.TempDir(), "master.key")
	if err := os.WriteFile(kf, bytes.Repeat([]byte{0x5e}, 32), 0o600); err != nil {
		t.Fatal(err)
	}
	pl := &Plan{Label: "reenrol", Threshold: 2, Paper: printer.A4,
		Key: KeySource{File: kf, Kind: shares.KindAES}, OutDir: filepath.Join(t.TempDir(), "out"),
		Custodians: []PlanCustodian{{Name: "Ana", Card: true, Serial: ins.Serial},
			{Name: "Bo", Paper: true}}}
	sc := &Script{Answers: splitAnswers, Fallback: cardAnswers(pin, puk)}
	opt := Options{Prompter: sc, Interfaces: offline, Roots: roots,
		Audit: openTestAudit(t, filepath.Join(t.TempDir(), "audit.log"))}
	out, err := Split(context.Background(), pl, opt)
	if err != nil {
		t.Fatalf("%v\n%s", err, sc.Transcript())
	}
	if ref := out.Record.Custodians[0].Card; ref == nil || ref.Slot != "82" || len(ref.Attestation) == 0 {
		t.Errorf("Ana's card: %+v, want slot 82 with its attestation", ref)
	}
	if strings.Contains(sc.Transcript(), "New card for Ana") {
		t.Errorf("a card with its own PIN was treated as new:\n%s", sc.Transcript())
	}
}
