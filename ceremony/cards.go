package ceremony

import (
	"bytes"
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"custos/shares"
	"custos/smartcard"
)

// This file holds what every flow does with a custodian's card: choose the
// slot for a share (enrolling one first when there is none), store the
// share and read it back, read a share off a card, and ask for a factory
// card's new PIN and PUK. The interactive ceremony (flow_card.go) and the
// command line (SerialCards, ReadCardShare) differ only in how they ask
// and what they say.

// CardSpec gives a custodian of a split their card: the custodian by name,
// or by share number when the split has no names, and the card by its
// serial number.
type CardSpec struct {
	Custodian string
	Serial    uint32
	// Reassign lets the card go to this custodian although its custos
	// slots carry another custodian's name (see CardOwnerError): the
	// operator says the card is theirs now.
	Reassign bool
}

// CardSpecError is a card assignment a split cannot follow: no custodian
// has that name or number, a card is given to two custodians, or a
// custodian is given two cards. No card was touched.
type CardSpecError struct {
	Spec   CardSpec
	Reason string
}

func (e *CardSpecError) Error() string { return e.Reason }

// CardOwnerError refuses a card given to a custodian when its custos
// slots name other custodians only: most likely two custodians' cards
// were swapped. Nothing was written to it.
type CardOwnerError struct {
	Card        smartcard.CardID
	Custodian   string   // whom the split gives the card to
	EnrolledFor []string // the names the card's slots carry
}

func (e *CardOwnerError) Error() string {
	return fmt.Sprintf("card %d was enrolled for %s, not %s: swapped cards?",
		e.Card.Serial, joinWords(e.EnrolledFor), e.Custodian)
}

// cardOwner checks that a card given to the custodian named want carries
// that name, or no custodian's name at all. A split without names (want
// empty) accepts any card.
func cardOwner(st *smartcard.CardInfo, want string) error {
	if want == "" {
		return nil
	}
	var others []string
	for _, sl := range st.Slots {
		switch {
		case sl.Foreign || sl.Err != nil || sl.Custodian == "":
		case sl.Custodian == want:
			return nil
		case !slices.Contains(others, sl.Custodian):
			others = append(others, sl.Custodian)
		}
	}
	if len(others) == 0 {
		return nil
	}
	return &CardOwnerError{Card: st.Card, Custodian: want, EnrolledFor: others}
}

// joinWords joins names as prose: "Bo", "Bo and Chen", "Bo, Chen and Dee".
func joinWords(s []string) string {
	if len(s) < 2 {
		return strings.Join(s, "")
	}
	return strings.Join(s[:len(s)-1], ", ") + " and " + s[len(s)-1]
}

// CardCheckError is a card that failed the check Prepare makes before a
// split writes anything: nothing was written to any card or file.
type CardCheckError struct {
	Index     int
	Custodian string // empty when the split has no names
	Serial    uint32
	Err       error
}

func (e *CardCheckError) Error() string {
	return fmt.Sprintf("checking %s's card before the split: %v",
		indexWords(e.Index, e.Custodian), e.Err)
}

func (e *CardCheckError) Unwrap() error { return e.Err }

// DiscardError is a share a failed split wrote to a card and could not
// destroy again: it is still there.
type DiscardError struct {
	Index     int
	Custodian string
	Serial    uint32
	SetID     shares.SetID
	Err       error
}

func (e *DiscardError) Error() string {
	return fmt.Sprintf("destroying share %d of set %s on card %d: %v",
		e.Index, e.SetID.Short(), e.Serial, e.Err)
}

func (e *DiscardError) Unwrap() error { return e.Err }

// SplitCardsError is the error of a split that failed after it wrote
// shares to cards, with what became of them: Destroyed lists the share
// indexes destroyed again, Left the shares still on their cards. Its
// message is the split's failure, which Unwrap returns.
type SplitCardsError struct {
	Err       error
	Destroyed []int
	Left      []*DiscardError
}

func (e *SplitCardsError) Error() string { return e.Err.Error() }

func (e *SplitCardsError) Unwrap() error { return e.Err }

// writtenError is a failure of Store after the share reached the card, or
// may have: the split must destroy it as it does a stored one.
type writtenError struct{ error }

func (e *writtenError) Unwrap() error { return e.error }

// leftOnCard reports whether a Store error leaves the share on the card.
func leftOnCard(err error) bool {
	var w *writtenError
	return errors.As(err, &w)
}

// LeftOnCard reports whether an error of CardWriter.Store leaves the
// share on the card (or may): the split then destroys it with Discard.
func LeftOnCard(err error) bool { return leftOnCard(err) }

// CardOptions says how a flow reaches custodians' cards and tells the room
// what happens at each.
type CardOptions struct {
	// Prompt asks for the cards' PINs.
	Prompt smartcard.PINPrompt
	// Credentials gives a factory card its custodian's own PIN and PUK
	// when the card must be enrolled before it takes a share.
	Credentials NewCredentials
	// Roots verify the attestation of a key enrolled on a card; nil
	// means Yubico's CAs.
	Roots *x509.CertPool
	// Report says what happens at each card; its zero value says nothing.
	Report Reporter
}

// SerialCards is the CardWriter of a split given on the command line:
// each custodian's card is named by its serial number, PINs come from one
// prompt, and what happens is told through a Reporter. A card with no
// custos slot ready for a share is enrolled first.
type SerialCards struct {
	serials  map[int]uint32 // by share index
	reassign map[int]bool   // by share index: CardSpec.Reassign
	names    []string
	o        CardOptions
}

// NewSerialCards matches each spec's custodian with a share of the split:
// a name in names, or else a share number (1 to len(names), any positive
// number when the split has no names). It refuses a card given twice and
// a custodian given two cards with a CardSpecError. In a store, o.Roots
// also check the card's fresh attestation of the slot key; with nil Roots
// it is checked against the attestation recorded at enrolment.
func NewSerialCards(specs []CardSpec, names []string, o CardOptions) (*SerialCards, error) {
	c := &SerialCards{serials: map[int]uint32{}, reassign: map[int]bool{},
		names: names, o: o}
	owner := map[uint32]string{}
	for _, spec := range specs {
		index := custodianIndex(spec.Custodian, names)
		if index == 0 {
			return nil, &CardSpecError{spec, fmt.Sprintf(
				"no custodian is named %q", spec.Custodian)}
		}
		if prev, dup := owner[spec.Serial]; dup {
			return nil, &CardSpecError{spec, fmt.Sprintf("card %d is given for "+
				"both %s and %s; each custodian needs their own card",
				spec.Serial, prev, spec.Custodian)}
		}
		if _, dup := c.serials[index]; dup {
			return nil, &CardSpecError{spec, fmt.Sprintf(
				"custodian %s is given two cards", spec.Custodian)}
		}
		owner[spec.Serial] = spec.Custodian
		c.serials[index] = spec.Serial
		c.reassign[index] = spec.Reassign
	}
	return c, nil
}

// custodianIndex returns the share index of the custodian called name, a
// name in names or a share number; 0 when there is none.
func custodianIndex(name string, names []string) int {
	if i := slices.Index(names, name); i >= 0 {
		return i + 1
	}
	i, err := strconv.Atoi(name)
	if err != nil || i < 1 || len(names) > 0 && i > len(names) {
		return 0
	}
	return i
}

// Serial returns the serial of the card of share index i; 0 for none.
func (c *SerialCards) Serial(i int) uint32 { return c.serials[i] }

// Custodians returns the share indexes that go on a card, in order.
func (c *SerialCards) Custodians() []int {
	return slices.Sorted(maps.Keys(c.serials))
}

// name returns the custodian name of share index i; empty without names.
func (c *SerialCards) name(i int) string {
	if i <= len(c.names) {
		return c.names[i-1]
	}
	return ""
}

// Prepare checks every card before the split writes anything: it is in a
// reader, its PIN is not blocked, it carries no other custodian's name
// (CardOwnerError, unless its spec reassigns it), and one that must be
// enrolled passes Credentials.Check. A card that fails is a
// CardCheckError.
func (c *SerialCards) Prepare(ctx context.Context) error {
	for _, i := range c.Custodians() {
		if err := c.check(ctx, i); err != nil {
			return &CardCheckError{Index: i, Custodian: c.name(i),
				Serial: c.serials[i], Err: err}
		}
	}
	return nil
}

// check is Prepare for the card of share index i.
func (c *SerialCards) check(ctx context.Context, i int) error {
	card, err := smartcard.Open(ctx, c.serials[i])
	if err != nil {
		return err
	}
	defer card.Close()
	st, err := card.Info()
	if err != nil {
		return err
	}

	name := c.name(i)
	if !c.reassign[i] {
		if err := cardOwner(st, name); err != nil {
			return err
		}
	}
	if cr := st.Credentials; cr.Known && cr.PINRetries == 0 {
		return &smartcard.PINBlockedError{Card: card.ID()}
	}
	plan := pickSlot(st, nil, name, c.reassign[i])
	if check := c.o.Credentials.Check; plan.enrol != slotReady && check != nil {
		if err := check(card.ID(), st.Credentials); err != nil {
			return err
		}
	}
	c.o.Report.info("%v for %s: found", card.ID(), indexWords(i, name))
	return nil
}

// Store finds the custodian's card, enrols it when it has no custos slot
// ready, writes the share and reads it back with the custodian's PIN.
func (c *SerialCards) Store(ctx context.Context, s *shares.Share, d *shares.Dealt) (*shares.Share, *CardRef, error) {
	serial := c.serials[s.Index]
	card, err := smartcard.Open(ctx, serial)
	if err != nil {
		return nil, nil, err
	}
	defer card.Close()
	rep := c.o.Report

	plan, err := c.o.slotFor(card, s, nil, c.reassign[s.Index])
	if err != nil {
		return nil, nil, err
	}
	req := storeRequest(s, d, plan.slot, c.o.Prompt)
	req.Roots = c.o.Roots
	req.OnPulled = func(id smartcard.CardID) {
		rep.warn("%v was pulled during the write; put it back in", id)
	}
	return storeAndReadBack(card, req, d.DealerKey, func() {
		rep.info("card %d: share %d written to slot %v; reading it back "+
			"(PIN needed)", serial, s.Index, plan.slot)
	})
}

// Discard destroys a share Store wrote, after a failed split, and says
// first whose share it is and why the PIN is needed: the slot key is
// replaced, so the sealed share on the card can never be opened again.
// The slot stays enrolled for the custodian, and the next split uses it
// again. A failure is a DiscardError: the share is still on the card.
func (c *SerialCards) Discard(ctx context.Context, s *shares.Share) error {
	serial := c.serials[s.Index]
	c.o.Report.info("%s's share %d is on card %d and must be destroyed "+
		"again: the PIN of card %d is needed", custodianWords(s), s.Index,
		serial, serial)
	if err := c.discard(ctx, serial, s.SetID); err != nil {
		return &DiscardError{Index: s.Index, Custodian: s.Custodian,
			Serial: serial, SetID: s.SetID, Err: err}
	}
	return nil
}

// discard is Discard of the share of set on card serial. It runs after an
// interrupt too, when ctx is already done: it still waits for a busy card.
func (c *SerialCards) discard(ctx context.Context, serial uint32, set shares.SetID) error {
	card, err := smartcard.Open(context.WithoutCancel(ctx), serial)
	if err != nil {
		return err
	}
	defer card.Close()
	return card.Wipe(set, c.o.Prompt)
}

// custodianWords names a share's custodian in messages: their name, or
// their share number when the split has no names.
func custodianWords(s *shares.Share) string {
	return indexWords(s.Index, s.Custodian)
}

// indexWords names the custodian of share index with this name.
func indexWords(index int, name string) string {
	if name != "" {
		return name
	}
	return fmt.Sprintf("custodian %d", index)
}

// slotPlan is where a share goes on a card.
type slotPlan struct {
	slot smartcard.Slot
	// replace names the abandoned set whose share the slot holds.
	replace *[16]byte
	// enrolledFor is the name the slot was enrolled under.
	enrolledFor string
	// enrol, unless slotReady, is why a slot must be enrolled first.
	enrol enrolReason
}

// enrolReason is why a card needs an enrolment before it takes a share.
type enrolReason int

const (
	slotReady       enrolReason = iota // a slot is ready; no enrolment
	enrolUnverified                    // a key's attestation never verified
	enrolFull                          // every custos slot holds a share
	enrolFresh                         // the card has no custos slot
)

// pickSlot chooses the slot for the share of custodian who on a card in
// state st: the slot holding the share of an abandoned attempt named in
// replace, else an enrolled slot with no share whose key's attestation
// was verified, enrolled for who or for no name (for anyone when anyName
// or who is empty). Otherwise the plan says why a slot must be enrolled;
// an enrolment reuses a slot whose attestation failed.
func pickSlot(st *smartcard.CardInfo, replace []shares.SetID, who string, anyName bool) slotPlan {
	usable := func(sl smartcard.SlotInfo, kind smartcard.Kind) bool {
		return !sl.Foreign && sl.Err == nil && sl.Kind == kind
	}
	for _, sl := range st.Slots {
		if i := slices.Index(replace, shares.SetID(sl.SetID)); i >= 0 &&
			usable(sl, smartcard.KindShare) {
			raw := [16]byte(replace[i])
			return slotPlan{slot: sl.Slot, replace: &raw, enrolledFor: sl.Custodian}
		}
	}

	mine := func(sl smartcard.SlotInfo) bool {
		return anyName || who == "" || sl.Custodian == "" || sl.Custodian == who
	}
	unverified := false
	for _, sl := range st.Slots {
		switch {
		case !usable(sl, smartcard.KindEnrolled) || !mine(sl):
		case !sl.Attested:
			unverified = true
		default:
			return slotPlan{slot: sl.Slot, enrolledFor: sl.Custodian}
		}
	}
	switch {
	case unverified:
		return slotPlan{enrol: enrolUnverified}
	case len(st.Slots) > 0:
		return slotPlan{enrol: enrolFull}
	}
	return slotPlan{enrol: enrolFresh}
}

// slotFor returns the slot for share s on card (see pickSlot), enrolling
// one for the custodian first when the card has none ready.
//
// A card whose slots carry only other custodians' names is refused with
// a CardOwnerError before anything is written, unless reassign says the
// operator gave it to this custodian knowingly ("Ana" became "Ana Lima",
// or the card changed hands); the share is then recorded for the
// custodian of the split.
func (o CardOptions) slotFor(card *smartcard.Card, s *shares.Share, replace []shares.SetID, reassign bool) (slotPlan, error) {
	st, err := card.Info()
	if err != nil {
		return slotPlan{}, err
	}
	if !reassign {
		if err := cardOwner(st, s.Custodian); err != nil {
			return slotPlan{}, err
		}
	}
	plan := pickSlot(st, replace, s.Custodian, reassign)
	who, rep := custodianWords(s), o.Report
	if plan.enrol == slotReady {
		switch {
		case plan.enrolledFor == "" || plan.enrolledFor == s.Custodian:
		case s.Custodian == "":
			rep.info("%v slot %v is enrolled for %s: share %d goes there, "+
				"and the card keeps that name", card.ID(), plan.slot,
				plan.enrolledFor, s.Index)
		default:
			rep.warn("%v slot %v was enrolled for %s; it is given to %s, so "+
				"the share is recorded for %s", card.ID(), plan.slot,
				plan.enrolledFor, who, who)
		}
		return plan, nil
	}

	switch plan.enrol {
	case enrolUnverified:
		rep.info("%v holds a key whose attestation was never verified: "+
			"enrolling it again for %s", card.ID(), who)
	case enrolFull:
		rep.info("%v has no free custos slot for %s: enrolling another one",
			card.ID(), who)
		reportShares(st, rep)
	default:
		rep.info("%v has no custos slot yet: enrolling it for %s", card.ID(), who)
	}
	eo := smartcard.EnrolOptions{Custodian: s.Custodian, Prompt: o.Prompt, Roots: o.Roots}
	e, err := enrolCard(card, st.Credentials, eo, o.Credentials, rep)
	if err != nil {
		return slotPlan{}, err
	}
	return slotPlan{slot: e.Slot}, nil
}

// reportShares lists the shares a card holds when it needs another slot,
// so that a share a failed split left behind is seen, not kept silently.
func reportShares(st *smartcard.CardInfo, rep Reporter) {
	n := 0
	for _, sl := range st.Slots {
		if sl.Foreign || sl.Err != nil || sl.Kind != smartcard.KindShare {
			continue
		}
		n++
		label := ""
		if sl.Label != "" {
			label = fmt.Sprintf(" (%s)", sl.Label)
		}
		rep.info("  slot %v holds share %d of set %s%s for %s, written %s",
			sl.Slot, sl.Index, shares.SetID(sl.SetID), label,
			indexWords(sl.Index, sl.Custodian), sl.Written.UTC().Format(time.DateTime))
	}
	if n > 0 {
		rep.info("  if one is from a split that failed, destroy it: "+
			"custos card wipe --serial %d --set SETID", st.Card.Serial)
	}
}

// storeRequest is the request to write share s of the dealt set d to a
// slot. Callers add what their flow needs (Replace, Roots, OnPulled).
func storeRequest(s *shares.Share, d *shares.Dealt, slot smartcard.Slot, prompt smartcard.PINPrompt) smartcard.StoreRequest {
	return smartcard.StoreRequest{Slot: slot, SetID: s.SetID, Index: s.Index,
		Custodian: s.Custodian, Label: s.Label, Share: s.Marshal(),
		Dealer: d.Dealer, Prompt: prompt}
}

// storeAndReadBack writes req to the card, then reads the share back with
// the PIN and checks it against the set's dealer key. It returns the share
// as read and where it sits. readingBack is called between the two, to
// say that the PIN is needed again.
//
// An error after the share reached the card, or may have (the card was
// pulled during the write), is a writtenError: the caller destroys it.
func storeAndReadBack(card *smartcard.Card, req smartcard.StoreRequest, dealerKey []byte, readingBack func()) (*shares.Share, *CardRef, error) {
	defer clear(req.Share)
	if err := card.Store(req); err != nil {
		var ie *smartcard.InterruptedError
		if errors.As(err, &ie) && ie.Now != smartcard.ContentOld {
			return nil, nil, &writtenError{err}
		}
		return nil, nil, err
	}

	readingBack()
	got, err := LoadCardShare(card, req.SetID, req.Prompt, dealerKey)
	if err != nil {
		return nil, nil, &writtenError{err}
	}
	ref, err := CardRefOf(card, req.Slot)
	if err != nil {
		return nil, nil, &writtenError{err}
	}
	return got, ref, nil
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

// CardSetsError reports a card that holds no custos share, or shares of
// several sets, when no set was named to choose among them.
type CardSetsError struct {
	Card smartcard.CardID
	Sets int // how many sets the card holds a share of
}

func (e *CardSetsError) Error() string {
	if e.Sets == 0 {
		return fmt.Sprintf("%v holds no custos share", e.Card)
	}
	return fmt.Sprintf("%v holds shares of %d sets", e.Card, e.Sets)
}

// ReadCardShare finds the card with this serial and reads its share with
// the PIN from prompt. With a set record it reads the share of that set
// and checks its dealer; without one the card must hold the share of
// exactly one set (CardSetsError otherwise).
func ReadCardShare(ctx context.Context, serial uint32, record *SetRecord, prompt smartcard.PINPrompt, rep Reporter) (*shares.Share, error) {
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
	rep.info("card %d: reading share of set %s (PIN needed)", serial,
		shares.SetID(setID).Short())
	return LoadCardShare(card, setID, prompt, dealer)
}

// onlySet returns the set of the one share a card holds.
func onlySet(card *smartcard.Card) ([16]byte, error) {
	held, err := card.Shares()
	if err != nil {
		return [16]byte{}, err
	}
	if len(held) != 1 {
		return [16]byte{}, &CardSetsError{Card: card.ID(), Sets: len(held)}
	}
	return held[0].SetID, nil
}

// NewCredentials gives a factory card its custodian's own PIN and PUK
// during an enrolment.
type NewCredentials struct {
	// Check sees the card's credentials before anything is asked or
	// changed; an error stops the enrolment there. It may be nil.
	Check func(card smartcard.CardID, cr smartcard.Credentials) error
	// Ask returns the new PIN or PUK (what) of a card that still has the
	// factory one; the enrolment clears it after use. Without Ask a
	// factory card is refused (smartcard.DefaultCredentialsError).
	Ask func(card smartcard.CardID, what string) ([]byte, error)
}

// ErrCredentialsChanged is wrapped by an enrolment error that came after
// the card's factory PIN and PUK were replaced. They stay replaced, so an
// enrolment again needs the new PIN, not new credentials.
var ErrCredentialsChanged = errors.New("the card's factory PIN and PUK were replaced")

// credentialsChanged wraps an error with ErrCredentialsChanged; its
// message is the error's.
type credentialsChanged struct{ error }

func (e credentialsChanged) Unwrap() error { return e.error }

func (e credentialsChanged) Is(target error) bool {
	return target == ErrCredentialsChanged
}

// EnrolCard prepares a card for its custodian: a factory PIN and PUK are
// replaced with ones from creds, then the custodian's key is made on the
// card and its attestation checked (smartcard.Card.Enrol). The new slot is
// reported through rep.
func EnrolCard(card *smartcard.Card, o smartcard.EnrolOptions, creds NewCredentials, rep Reporter) (*smartcard.Enrolment, error) {
	st, err := card.Info()
	if err != nil {
		return nil, err
	}
	return enrolCard(card, st.Credentials, o, creds, rep)
}

// enrolCard is EnrolCard on a card whose credentials state cr is known.
func enrolCard(card *smartcard.Card, cr smartcard.Credentials, o smartcard.EnrolOptions, creds NewCredentials, rep Reporter) (*smartcard.Enrolment, error) {
	if creds.Check != nil {
		if err := creds.Check(card.ID(), cr); err != nil {
			return nil, err
		}
	}
	var err error
	if cr.PINDefault && creds.Ask != nil {
		if o.NewPIN, err = creds.Ask(card.ID(), "PIN"); err != nil {
			return nil, err
		}
		defer clear(o.NewPIN)
	}
	if cr.PUKDefault && creds.Ask != nil {
		if o.NewPUK, err = creds.Ask(card.ID(), "PUK"); err != nil {
			return nil, err
		}
		defer clear(o.NewPUK)
	}

	e, err := card.Enrol(o)
	var ae *smartcard.AttestationError
	if errors.As(err, &ae) && (cr.PINDefault || cr.PUKDefault) {
		return nil, credentialsChanged{err}
	}
	if err != nil {
		return nil, err
	}
	a := e.Attestation
	whom := fmt.Sprintf("for %q", o.Custodian)
	if o.Custodian == "" {
		whom = "with no custodian name"
	}
	rep.info("%v: slot %v enrolled %s; key made on the card (attested: "+
		"serial %d, firmware %d.%d.%d)", e.Card, e.Slot, whom,
		a.Serial, a.Version.Major, a.Version.Minor, a.Version.Patch)
	return e, nil
}

// AskNewSecret asks for a card's new PIN or PUK until two entries agree
// and have 6 to 8 characters, and returns it; the caller clears it. read
// reads one entry without echo: the first, or (again) its repetition.
// refused tells the person the two entries were not accepted, before
// they are asked again.
func AskNewSecret(read func(again bool) ([]byte, error), refused func()) ([]byte, error) {
	for {
		a, err := read(false)
		if err != nil {
			return nil, err
		}
		b, err := read(true)
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
		refused()
	}
}
