package smartcard

// End-to-end tests: piv-go through the real pcscd to virtual cards in vpcd
// readers. Run them with
//
//	.ci/with-pcscd go test ./smartcard/
//
// Without pcscd they skip (fail under CUSTOS_INTEGRATION=1).

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"math/big"
	"testing"
	"time"

	"github.com/go-piv/piv-go/v2/piv"

	"custos/smartcard/virtual/virtualtest"
)

const (
	testPIN = "246810"
	testPUK = "13579135"
)

// prompt answers PIN requests as a custodian would, and records what custos
// showed them.
type prompt struct {
	pin      string
	confirm  bool
	retries  []int // tries-left counts shown, one per PIN request
	lastAsks int
}

func (p *prompt) PIN(_ CardID, retries int) ([]byte, error) {
	p.retries = append(p.retries, retries)
	return []byte(p.pin), nil
}

func (p *prompt) ConfirmLastTry(CardID) (bool, error) {
	p.lastAsks++
	return p.confirm, nil
}

func roots(ins virtualtest.Inserted) *x509.CertPool {
	pool := x509.NewCertPool()
	pool.AddCert(ins.Card.AttestationCA())
	return pool
}

func openCard(t *testing.T, serial uint32) *Card {
	t.Helper()
	c, err := Open(context.Background(), serial)
	if err != nil {
		t.Fatalf("opening card %d: %v", serial, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// enrol opens a fresh virtual card and enrols it with the test PIN.
func enrol(t *testing.T, ins virtualtest.Inserted, o EnrolOptions) (*Card, *Enrolment) {
	t.Helper()
	c := openCard(t, ins.Serial)
	if o.NewPIN == nil {
		o.NewPIN, o.NewPUK = []byte(testPIN), []byte(testPUK)
	}
	o.Roots = roots(ins)
	e, err := c.Enrol(o)
	if err != nil {
		t.Fatalf("enrolling %v: %v", c.ID(), err)
	}
	return c, e
}

func newSet(t *testing.T) ([16]byte, ed25519.PrivateKey) {
	t.Helper()
	var id [16]byte
	rand.Read(id[:])
	_, dealer, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return id, dealer
}

func shareBytes(index int, n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	copy(b, fmt.Sprintf("CSTS share %d", index))
	return b
}

// TestCardCeremony enrols three cards, stores a share on each and loads two
// back with their PINs.
func TestCardCeremony(t *testing.T) {
	cards := virtualtest.Start(t, 3)
	setID, dealer := newSet(t)
	algs := []piv.Algorithm{0, piv.AlgorithmEC256, piv.AlgorithmX25519}
	want := map[uint32][]byte{}

	for i, ins := range cards {
		c, e := enrol(t, ins, EnrolOptions{Custodian: fmt.Sprintf("custodian %d", i+1),
			Algorithm: algs[i], Touch: piv.TouchPolicyCached})
		if e.Slot != FirstSlot || e.Attestation.Serial != ins.Serial ||
			e.Attestation.TouchPolicy != piv.TouchPolicyCached || len(e.DeviceCert) == 0 {
			t.Fatalf("enrolment of %v: %+v", c.ID(), e)
		}
		if c.creds.PINDefault || c.creds.PUKDefault || c.creds.KeyDefault {
			t.Fatalf("%v still has factory credentials: %+v", c.ID(), c.creds)
		}
		want[ins.Serial] = shareBytes(i+1, 600)
		err := c.Store(StoreRequest{Slot: e.Slot, SetID: setID, Index: i + 1,
			Label: "backup master key", Share: want[ins.Serial], Dealer: dealer})
		if err != nil {
			t.Fatalf("storing on %v: %v", c.ID(), err)
		}
		c.Close()
	}

	// The probe must now see changed credentials, without the PIN.
	infos, err := List(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	listed := 0
	for _, info := range infos {
		if _, ours := want[info.Card.Serial]; !ours {
			continue
		}
		listed++
		cr := info.Credentials
		if !cr.Known || cr.PINDefault || cr.PUKDefault || cr.KeyDefault || cr.PINRetries != 3 {
			t.Errorf("%v credentials %+v", info.Card, cr)
		}
		if len(info.Slots) != 1 || info.Slots[0].Kind != KindShare || info.Slots[0].SetID != setID ||
			!info.Slots[0].SignatureValid || !bytes.Equal(info.Slots[0].Dealer, dealer.Public().(ed25519.PublicKey)) {
			t.Errorf("%v slots %+v", info.Card, info.Slots)
		}
	}
	if listed != 3 {
		t.Fatalf("List found %d of our 3 cards: %+v", listed, infos)
	}

	for i, ins := range cards[:2] {
		c := openCard(t, ins.Serial)
		p := &prompt{pin: testPIN}
		got, err := c.Load(setID, p)
		if err != nil {
			t.Fatalf("loading from %v: %v", c.ID(), err)
		}
		if !bytes.Equal(got.Share, want[ins.Serial]) || got.Index != i+1 ||
			got.Custodian != fmt.Sprintf("custodian %d", i+1) || got.Label != "backup master key" ||
			!bytes.Equal(got.Dealer, dealer.Public().(ed25519.PublicKey)) {
			t.Fatalf("loaded %+v", got)
		}
		if fmt.Sprint(p.retries) != "[3]" {
			t.Errorf("PIN prompts showed %v tries left, want [3]", p.retries)
		}
	}
}

// TestCardDefaultsRefused checks a factory card is refused without using a
// PIN try, and that a share does not move to another set.
func TestCardDefaultsRefused(t *testing.T) {
	ins := virtualtest.Start(t, 1)[0]
	c := openCard(t, ins.Serial)
	p := &prompt{pin: "123456"}
	_, err := c.Enrol(EnrolOptions{Custodian: "Ana", Prompt: p, Roots: roots(ins)})
	var def *DefaultCredentialsError
	if !errors.As(err, &def) || !def.PIN || !def.PUK {
		t.Fatalf("Enrol on a factory card: %v, want DefaultCredentialsError", err)
	}
	if len(p.retries) != 0 {
		t.Fatal("custos asked for a PIN on a factory card")
	}
	_, err = c.Enrol(EnrolOptions{NewPIN: []byte("123456"), NewPUK: []byte(testPUK)})
	if err == nil {
		t.Fatal("accepted the factory PIN as the new PIN")
	}
	c.Close()

	infos, err := List(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, info := range infos {
		if info.Card.Serial == ins.Serial && info.Credentials.PINRetries != 3 {
			t.Fatalf("refusal used PIN tries: %+v", info.Credentials)
		}
	}

	c, e := enrol(t, ins, EnrolOptions{Custodian: "Ana"})
	setID, dealer := newSet(t)
	if err := c.Store(StoreRequest{Slot: e.Slot, SetID: setID, Index: 1, Share: []byte("s"), Dealer: dealer}); err != nil {
		t.Fatal(err)
	}
	other := setID
	other[0] ^= 1
	var nc *NotCustosError
	if _, err := c.Load(other, &prompt{pin: testPIN}); !errors.As(err, &nc) {
		t.Fatalf("Load of another set: %v, want NotCustosError", err)
	}
}

// TestCardPINToBlocked walks a card from three PIN tries to blocked, then
// resets it.
func TestCardPINToBlocked(t *testing.T) {
	ins := virtualtest.Start(t, 1)[0]
	c, e := enrol(t, ins, EnrolOptions{Custodian: "Bo"})
	setID, dealer := newSet(t)
	if err := c.Store(StoreRequest{Slot: e.Slot, SetID: setID, Index: 2, Share: []byte("share"), Dealer: dealer}); err != nil {
		t.Fatal(err)
	}
	c.Close()
	c = openCard(t, ins.Serial)

	wrong := &prompt{pin: "999999"}
	for _, left := range []int{2, 1} {
		_, err := c.Load(setID, wrong)
		var pe *PINError
		if !errors.As(err, &pe) || pe.Retries != left {
			t.Fatalf("wrong PIN: %v, want PINError with %d left", err, left)
		}
	}
	if fmt.Sprint(wrong.retries) != "[3 2]" {
		t.Fatalf("tries shown %v, want [3 2]", wrong.retries)
	}

	// One try left: custos asks first, and stops if not confirmed.
	_, err := c.Load(setID, wrong)
	if !errors.Is(err, ErrLastTryDeclined) || wrong.lastAsks != 1 || len(wrong.retries) != 2 {
		t.Fatalf("last try: %v (asked %d, prompted %v)", err, wrong.lastAsks, wrong.retries)
	}
	wrong.confirm = true
	_, err = c.Load(setID, wrong)
	var blocked *PINBlockedError
	if !errors.As(err, &blocked) {
		t.Fatalf("last wrong PIN: %v, want PINBlockedError", err)
	}
	right := &prompt{pin: testPIN, confirm: true}
	if _, err := c.Load(setID, right); !errors.As(err, &blocked) || len(right.retries) != 0 {
		t.Fatalf("blocked card: %v, prompted %v", err, right.retries)
	}

	// A blocked card can be reset, but only naming what is lost.
	var occ *SlotOccupiedError
	if err := c.Reset(nil, false); !errors.As(err, &occ) || occ.SetID != setID {
		t.Fatalf("Reset without consent: %v", err)
	}
	if err := c.Reset([][16]byte{setID}, false); err != nil {
		t.Fatalf("Reset: %v", err)
	}
	c.Close()
	c = openCard(t, ins.Serial)
	if !c.creds.PINDefault || c.creds.PINRetries != 3 {
		t.Fatalf("after reset: %+v", c.creds)
	}
	if sh, err := c.Shares(); err != nil || len(sh) != 0 {
		t.Fatalf("after reset shares %v, %v", sh, err)
	}
}

// TestCardBusy holds a card open as another program would and checks Open
// waits a bounded time, then says the card is busy; and that it gets the
// card when released in time.
func TestCardBusy(t *testing.T) {
	ins := virtualtest.Start(t, 1)[0]
	other, err := piv.Open(ins.Reader)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { other.Close() }()

	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	start := time.Now()
	_, err = Open(ctx, ins.Serial)
	var busy *CardBusyError
	if !errors.As(err, &busy) || len(busy.Readers) != 1 || busy.Readers[0] != ins.Reader {
		t.Fatalf("Open of a held card: %v, want CardBusyError naming %q", err, ins.Reader)
	}
	if d := time.Since(start); d < 900*time.Millisecond || d > 5*time.Second {
		t.Fatalf("Open waited %v, want about 1s", d)
	}

	infos, err := List(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	seen := false
	for _, info := range infos {
		seen = seen || (info.Busy && info.Card.Reader == ins.Reader)
	}
	if !seen {
		t.Fatalf("List does not show %q busy: %+v", ins.Reader, infos)
	}

	go func() {
		time.Sleep(500 * time.Millisecond)
		other.Close()
	}()
	c, err := Open(context.Background(), ins.Serial)
	if err != nil {
		t.Fatalf("Open after release: %v", err)
	}
	c.Close()

	var absent *CardAbsentError
	if _, err := Open(context.Background(), 0xfffffff0); !errors.As(err, &absent) {
		t.Fatalf("Open of a card in no reader: %v", err)
	}
}

// TestCardOverwrite checks custos never overwrites a share or a foreign
// slot unless told exactly what will be lost, and that Wipe destroys.
func TestCardOverwrite(t *testing.T) {
	ins := virtualtest.Start(t, 1)[0]
	c, e := enrol(t, ins, EnrolOptions{Custodian: "Chen"})
	setA, dealer := newSet(t)
	setB, _ := newSet(t)
	req := StoreRequest{Slot: e.Slot, SetID: setA, Index: 1, Share: []byte("share A"), Dealer: dealer}
	if err := c.Store(req); err != nil {
		t.Fatal(err)
	}

	var occ *SlotOccupiedError
	reqB := req
	reqB.SetID, reqB.Share = setB, []byte("share B")
	if err := c.Store(reqB); !errors.As(err, &occ) || occ.SetID != setA || occ.Foreign {
		t.Fatalf("overwrite without consent: %v", err)
	}
	reqB.Replace = &setB // consent to lose the wrong set
	if err := c.Store(reqB); !errors.As(err, &occ) {
		t.Fatalf("overwrite naming another set: %v", err)
	}
	if _, err := c.Enrol(EnrolOptions{Slot: e.Slot, Prompt: &prompt{pin: testPIN}, Roots: roots(ins)}); !errors.As(err, &occ) {
		t.Fatalf("re-enrol over a share: %v", err)
	}

	// A slot holding someone else's certificate.
	foreign := FirstSlot + 5
	ps, _ := foreign.piv()
	if _, err := c.yk.GenerateKey(c.mgmt, ps, piv.Key{Algorithm: piv.AlgorithmEC256,
		PINPolicy: piv.PINPolicyNever, TouchPolicy: piv.TouchPolicyNever}); err != nil {
		t.Fatal(err)
	}
	if err := c.yk.SetCertificate(c.mgmt, ps, selfSigned(t)); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Enrol(EnrolOptions{Slot: foreign, Prompt: &prompt{pin: testPIN}, Roots: roots(ins)}); !errors.As(err, &occ) || !occ.Foreign {
		t.Fatalf("enrol over a foreign slot: %v", err)
	}
	reqF := req
	reqF.Slot = foreign
	if err := c.Store(reqF); !errors.As(err, &occ) || !occ.Foreign {
		t.Fatalf("store into a foreign slot: %v", err)
	}

	reqB.Replace = &setA
	if err := c.Store(reqB); err != nil {
		t.Fatalf("overwrite with consent: %v", err)
	}
	c.Close()

	c = openCard(t, ins.Serial)
	info, err := c.Info()
	if err != nil {
		t.Fatal(err)
	}
	if len(info.Slots) != 2 || info.Slots[0].SetID != setB || !info.Slots[1].Foreign {
		t.Fatalf("slots after overwrite: %+v", info.Slots)
	}
	p := &prompt{pin: testPIN}
	if got, err := c.Load(setB, p); err != nil || string(got.Share) != "share B" {
		t.Fatalf("Load B: %v", err)
	}

	// Wipe replaces the key: the share is gone for good.
	oldKey, _ := c.slotKey(e.Slot)
	if err := c.Wipe(setB, p); err != nil {
		t.Fatalf("Wipe: %v", err)
	}
	var nc *NotCustosError
	if _, err := c.Load(setB, p); !errors.As(err, &nc) {
		t.Fatalf("Load after wipe: %v", err)
	}
	newKey, _ := c.slotKey(e.Slot)
	ok, _ := toECDH(oldKey)
	nk, _ := toECDH(newKey)
	if sameKey(ok, nk) {
		t.Fatal("Wipe kept the slot key")
	}
	info, _ = c.Info()
	if info.Slots[0].Kind != KindEnrolled || info.Slots[0].Custodian != "Chen" {
		t.Fatalf("slot after wipe: %+v", info.Slots[0])
	}
	// The wiped slot takes a new share without consent.
	reqB.Replace = nil
	if err := c.Store(reqB); err != nil {
		t.Fatalf("store after wipe: %v", err)
	}
}

func selfSigned(t *testing.T) *x509.Certificate {
	t.Helper()
	_, k, _ := ed25519.GenerateKey(rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(7),
		Subject: pkix.Name{CommonName: "VPN"}, NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, k.Public(), k)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return cert
}

// TestCardPulled pulls the card after the 1st, 2nd, ... command of a Store
// that replaces set A by set B. Each time the card must hold either the old
// share or the new one, verified, and Store must say which.
func TestCardPulled(t *testing.T) {
	ins := virtualtest.Start(t, 1)[0]
	c, e := enrol(t, ins, EnrolOptions{Custodian: "Dee"})
	setA, dealer := newSet(t)
	setB, _ := newSet(t)
	shareA, shareB := shareBytes(1, 1500), shareBytes(2, 1500)
	base := StoreRequest{Slot: e.Slot, Index: 1, Dealer: dealer, ReinsertWait: 20 * time.Second,
		Prompt: &prompt{pin: testPIN}}
	store := func(c *Card, id [16]byte, share []byte, replace *[16]byte) error {
		r := base
		r.SetID, r.Share, r.Replace = id, share, replace
		r.OnPulled = func(CardID) { ins.Reinsert() }
		return c.Store(r)
	}
	if err := store(c, setA, shareA, nil); err != nil {
		t.Fatal(err)
	}

	seen := map[Content]int{}
	for n := 0; ; n++ {
		ins.PullAfter(n)
		err := store(c, setB, shareB, &setA)
		ins.PullAfter(-1)
		t.Logf("pull after %d commands: %v", n, err)
		ins.Reinsert()
		c.Close()

		var ie *InterruptedError
		var absent *CardAbsentError
		wantSet, wantShare := setA, shareA
		switch {
		case err == nil:
			wantSet, wantShare = setB, shareB
		case errors.As(err, &ie) && ie.Now == ContentNew:
			wantSet, wantShare = setB, shareB
		case errors.As(err, &ie) && ie.Now == ContentOld:
		case errors.As(err, &absent) && absent.Removed:
			// Pulled before the write began: nothing changed.
		default:
			var ce *CardError
			if errors.As(err, &ce) {
				t.Logf("cause: %v", ce.Err)
			}
			t.Fatalf("pull after %d commands: %v", n, err)
		}
		if ie != nil {
			seen[ie.Now]++
		}

		c = openCard(t, ins.Serial)
		got, lerr := c.Load(wantSet, &prompt{pin: testPIN})
		if lerr != nil || !bytes.Equal(got.Share, wantShare) {
			t.Fatalf("pull after %d commands (%v): card does not hold the share Store reported: %v", n, err, lerr)
		}
		if err == nil {
			break
		}
		if wantSet == setB {
			if err := store(c, setA, shareA, &setB); err != nil {
				t.Fatalf("restoring set A: %v", err)
			}
		}
		if n > 60 {
			t.Fatal("Store never finished without a pull")
		}
	}
	if seen[ContentOld] == 0 || seen[ContentNew] == 0 {
		t.Errorf("pulls did not meet both outcomes (old, new verified): %v", seen)
	}
}
