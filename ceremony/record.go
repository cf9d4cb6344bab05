package ceremony

import (
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"time"

	"custos/shares"
	"custos/smartcard"
)

// RecordVersion is the set record format this package writes.
const RecordVersion = 1

// SetRecord is the public record of a split, kept as set.json beside the
// shares. It holds no secret: only what lets a recovery, a drill or an
// auditor tell this set's shares and key from any other.
type SetRecord struct {
	Format     int                 `json:"custos_set_record"`
	Note       string              `json:"note"`
	SetID      shares.SetID        `json:"set_id"`
	Label      string              `json:"label"`
	Created    time.Time           `json:"created"`
	Threshold  int                 `json:"threshold"`
	Count      int                 `json:"count"`
	Kind       shares.Kind         `json:"kind"`
	Algorithm  string              `json:"algorithm"`
	Checks     []shares.CheckValue `json:"checks"`
	DealerKey  shares.HexBytes     `json:"dealer_key"`
	DealerFP   string              `json:"dealer_fingerprint"`
	Sealed     *SealedRecord       `json:"sealed,omitempty"`
	Custodians []Custodian         `json:"custodians"`
	Manifest   *shares.Manifest    `json:"manifest,omitempty"`
	LastDrill  *time.Time          `json:"last_drill,omitempty"`
}

// SealedRecord describes the separate sealed file of a large secret.
type SealedRecord struct {
	File   string          `json:"file"`
	Size   uint64          `json:"size"`
	Digest shares.HexBytes `json:"digest"`
}

// Custodian is one share holder and where their share lives.
type Custodian struct {
	Index     int        `json:"index"`
	Name      string     `json:"name"`
	Media     []string   `json:"media"` // "paper", "card"
	Files     []string   `json:"files,omitempty"`
	Card      *CardRef   `json:"card,omitempty"`
	LastDrill *time.Time `json:"last_drill,omitempty"`
}

// CardRef names the card that holds a custodian's share.
type CardRef struct {
	Serial uint32 `json:"serial"`
	Slot   string `json:"slot,omitempty"`
	// Attestation is the SHA-256 of the card's attestation certificate
	// for the slot key, verified when the card was enrolled.
	Attestation shares.HexBytes `json:"attestation_sha256,omitempty"`
}

// CardRefOf describes where a share was stored on a card, with the slot's
// attestation as the card records it.
func CardRefOf(card *smartcard.Card, slot smartcard.Slot) (*CardRef, error) {
	info, err := card.Info()
	if err != nil {
		return nil, err
	}
	ref := &CardRef{Serial: card.ID().Serial, Slot: slot.String()}
	for _, sl := range info.Slots {
		if sl.Slot == slot {
			ref.Attestation = sl.AttestationSHA256
		}
	}
	return ref, nil
}

const recordNote = "Public record of a custos share set. It holds no secret; keep it with the ceremony papers."

// NewRecord builds the record of a fresh split.
func NewRecord(d *shares.Dealt) *SetRecord {
	s := d.Shares[0]
	r := &SetRecord{
		Format:    RecordVersion,
		Note:      recordNote,
		SetID:     s.SetID,
		Label:     s.Label,
		Created:   s.Created,
		Threshold: s.Threshold,
		Count:     s.Count,
		Kind:      s.Kind,
		Algorithm: s.Algorithm,
		Checks:    d.Checks,
		DealerKey: shares.HexBytes(d.DealerKey),
		DealerFP:  shares.DealerFingerprint(d.DealerKey),
		Manifest:  d.Manifest,
	}
	for _, sh := range d.Shares {
		r.Custodians = append(r.Custodians, Custodian{Index: sh.Index, Name: sh.Custodian})
	}
	return r
}

// Expect returns what a recovery of this set must match.
func (r *SetRecord) Expect() *shares.Expect {
	return &shares.Expect{SetID: r.SetID, DealerKey: ed25519.PublicKey(r.DealerKey), Checks: r.Checks,
		Threshold: r.Threshold, Count: r.Count, Kind: r.Kind, Label: r.Label}
}

// Custodian returns the custodian with the given index, or nil.
func (r *SetRecord) Custodian(index int) *Custodian {
	for i := range r.Custodians {
		if r.Custodians[i].Index == index {
			return &r.Custodians[i]
		}
	}
	return nil
}

// ReadRecord reads and checks a set record file.
func ReadRecord(path string) (*SetRecord, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading set record: %w", err)
	}
	var r SetRecord
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("set record %s is not valid JSON: %w", path, err)
	}
	switch {
	case r.Format != RecordVersion:
		return nil, fmt.Errorf("set record %s has format %d, this custos reads %d", path, r.Format, RecordVersion)
	case len(r.DealerKey) != ed25519.PublicKeySize:
		return nil, fmt.Errorf("set record %s has no valid dealer key", path)
	case len(r.Checks) == 0:
		return nil, fmt.Errorf("set record %s has no check value", path)
	}
	return &r, nil
}

// Marshal encodes the record as indented JSON.
func (r *SetRecord) Marshal() ([]byte, error) {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

// Save replaces the record file atomically: a reader sees the old record
// or the new, never half of one.
func (r *SetRecord) Save(path string) error {
	b, err := r.Marshal()
	if err != nil {
		return err
	}
	return replaceFile(path, b, 0o644)
}

// Create writes the record to a new file, refusing to replace one.
func (r *SetRecord) Create(path string) error {
	b, err := r.Marshal()
	if err != nil {
		return err
	}
	return writeNew(path, b, 0o644)
}

// ErrNoRecord is returned when a step needs a set record and none is given.
var ErrNoRecord = errors.New("no set record")
