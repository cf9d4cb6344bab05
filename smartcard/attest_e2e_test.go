package smartcard

// Attestation end to end, on virtual cards through pcscd (.ci/with-pcscd
// go test ./smartcard/ -run Attest).

import (
	"errors"
	"testing"

	"custos/smartcard/virtual/virtualtest"
)

// TestAttestFailureLeavesSlotUnverified guards against a card whose
// attestation failed being used anyway: the slot must take no share, and
// enrolling again must reuse it rather than burn another slot.
func TestAttestFailureLeavesSlotUnverified(t *testing.T) {
	ins := virtualtest.Start(t, 1)[0]
	c := openCard(t, ins.Serial)
	setID, dealer := newSet(t)

	// Yubico's CAs (Roots nil) do not vouch for a virtual card.
	_, err := c.Enrol(EnrolOptions{Custodian: "Ana", NewPIN: []byte(testPIN),
		NewPUK: []byte(testPUK)})
	var ae *AttestationError
	if !errors.As(err, &ae) || !ae.Kept || ae.Slot != FirstSlot {
		t.Fatalf("Enrol of a virtual card against Yubico's CAs: %v, want AttestationError kept in 82", err)
	}
	// The second failure reuses the slot of the first.
	_, err = c.Enrol(EnrolOptions{Custodian: "Ana", Prompt: &prompt{pin: testPIN}})
	if !errors.As(err, &ae) || ae.Slot != FirstSlot {
		t.Fatalf("second failed Enrol: %v, want AttestationError in slot 82", err)
	}
	info, err := c.Info()
	if err != nil {
		t.Fatal(err)
	}
	if len(info.Slots) != 1 || info.Slots[0].Kind != KindEnrolled || info.Slots[0].Attested ||
		info.Slots[0].Custodian != "Ana" {
		t.Fatalf("slots after failed enrolments: %+v", info.Slots)
	}

	var un *UnattestedError
	err = c.Store(StoreRequest{Slot: FirstSlot, SetID: setID, Index: 1, Share: []byte("s"),
		Dealer: dealer, Prompt: &prompt{pin: testPIN}})
	if !errors.As(err, &un) || un.Slot != FirstSlot {
		t.Fatalf("Store into an unverified slot: %v, want UnattestedError", err)
	}
	if sh, err := c.Shares(); err != nil || len(sh) != 0 {
		t.Fatalf("refused Store left shares %v (%v)", sh, err)
	}

	e, err := c.Enrol(EnrolOptions{Custodian: "Ana", Prompt: &prompt{pin: testPIN}, Roots: roots(ins)})
	if err != nil || e.Slot != FirstSlot {
		t.Fatalf("Enrol with the card's CA: %v (slot %v), want slot 82 reused", err, e.Slot)
	}
	info, _ = c.Info()
	if len(info.Slots) != 1 || !info.Slots[0].Attested {
		t.Fatalf("slots after enrolment: %+v", info.Slots)
	}
	if err := c.Store(StoreRequest{Slot: e.Slot, SetID: setID, Index: 1, Share: []byte("s"),
		Dealer: dealer}); err != nil {
		t.Fatalf("Store into the verified slot: %v", err)
	}
}

// TestStoreReattests checks Store has the card attest the slot again: with
// roots that do not vouch for the card it refuses, and the share it does
// store keeps the record, so a wipe and another Store still work.
func TestStoreReattests(t *testing.T) {
	cards := virtualtest.Start(t, 2)
	ins, other := cards[0], cards[1]
	c, e := enrol(t, ins, EnrolOptions{Custodian: "Bo"})
	setID, dealer := newSet(t)
	req := StoreRequest{Slot: e.Slot, SetID: setID, Index: 2, Share: []byte("share"),
		Dealer: dealer, Prompt: &prompt{pin: testPIN}}

	bad := req
	bad.Roots = roots(other)
	var ae *AttestationError
	if err := c.Store(bad); !errors.As(err, &ae) || ae.Kept {
		t.Fatalf("Store with another card's CA: %v, want AttestationError", err)
	}
	good := req
	good.Roots = roots(ins)
	if err := c.Store(good); err != nil {
		t.Fatalf("Store with the card's CA: %v", err)
	}
	sh, err := c.Shares()
	if err != nil || len(sh) != 1 || !sh[0].Attested {
		t.Fatalf("share after Store: %+v (%v)", sh, err)
	}

	if err := c.Wipe(setID, &prompt{pin: testPIN}); err != nil {
		t.Fatal(err)
	}
	info, _ := c.Info()
	if len(info.Slots) != 1 || info.Slots[0].Kind != KindEnrolled || !info.Slots[0].Attested {
		t.Fatalf("slot after wipe: %+v", info.Slots)
	}
	if err := c.Store(req); err != nil {
		t.Fatalf("Store after wipe, against the recorded attestation: %v", err)
	}
}
