package ceremony

import (
	"crypto/ed25519"
	"encoding/binary"
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

	// Signature is the dealer's Ed25519 signature over the record's fixed
	// fields (see signedRecord), made at the split while the dealer key
	// still existed. Records made before custos signed them have none.
	Signature shares.HexBytes `json:"signature,omitempty"`
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

// NewRecord builds the record of a fresh split and signs its fixed fields
// with the dealer key, which d must still hold (the record is left
// unsigned when d.Dealer is gone or is not d.DealerKey's). A large
// secret's sealed file is recorded from the shares that bind it.
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
	if s.External() {
		r.Sealed = &SealedRecord{File: SealedFile, Size: s.SealedSize, Digest: s.SealedDigest}
	}
	for _, sh := range d.Shares {
		r.Custodians = append(r.Custodians, Custodian{Index: sh.Index, Name: sh.Custodian})
	}
	r.sign(d.Dealer)
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

// ReadRecord reads and checks a set record file. A record whose fixed
// fields are not what the dealer signed is refused with a
// *RecordAlteredError naming the file, and so is one without a signature:
// custos signs every record at the split, so a missing signature was
// removed, and with it whatever vouched for the fields.
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
	if err := r.verify(); err != nil {
		return nil, &RecordAlteredError{Path: path, Reason: err.Error()}
	}
	return &r, nil
}

// Signed reports whether the record carries the dealer's signature. Every
// record ReadRecord returns was signed and verified.
func (r *SetRecord) Signed() bool { return len(r.Signature) > 0 }

// RecordAlteredError says a set record is not what the split wrote: its
// fixed fields (policy, label, check values, custodians, dealer key) are
// not the ones the dealer signed.
type RecordAlteredError struct {
	Path   string
	Reason string
}

func (e *RecordAlteredError) Error() string {
	return fmt.Sprintf("set record %s was altered after the split: %s", e.Path, e.Reason)
}

// recordSigContext separates record signatures from every other
// signature of the dealer key (shares use their own context).
const recordSigContext = "custos set record signature v1\x00"

// sign signs the fixed fields with the dealer key, if it is the record's.
func (r *SetRecord) sign(dealer ed25519.PrivateKey) {
	if len(dealer) != ed25519.PrivateKeySize {
		return
	}
	pub, ok := dealer.Public().(ed25519.PublicKey)
	if !ok || !pub.Equal(ed25519.PublicKey(r.DealerKey)) {
		return // wiped, or another key
	}
	r.Signature = ed25519.Sign(dealer, r.signedMessage())
}

// verify checks what a record can prove about itself: that its dealer
// fingerprint is its dealer key's, and its signature, when it has one.
func (r *SetRecord) verify() error {
	if fp := shares.DealerFingerprint(ed25519.PublicKey(r.DealerKey)); r.DealerFP != fp {
		return fmt.Errorf("its dealer fingerprint %s is not its dealer key's (%s)", r.DealerFP, fp)
	}
	if !r.Signed() {
		return errors.New("it carries no dealer signature; custos signs every set record at the split, so the signature was removed")
	}
	if !ed25519.Verify(ed25519.PublicKey(r.DealerKey), r.signedMessage(), r.Signature) {
		return errors.New("the dealer's signature over its set ID, label, policy, kind, check values, custodians and dealer key does not verify")
	}
	return nil
}

// signedMessage is what the record signature covers: the context, then
// the fields fixed at the split, each length-prefixed so no two records
// encode alike. Media, files, cards and drills are left out: the
// ceremony adds them after the dealer key is erased, and they change.
//
// TODO: cards and paper files are known before the key is erased in a
// plain split; signing them would need a second record signature.
func (r *SetRecord) signedMessage() []byte {
	var b signedRecord
	b.bytes([]byte(recordSigContext))
	b.u64(uint64(r.Format))
	b.bytes(r.SetID[:])
	b.str(r.Label)
	b.u64(uint64(r.Created.Unix()))
	b.u64(uint64(r.Created.Nanosecond()))
	b.u64(uint64(r.Threshold))
	b.u64(uint64(r.Count))
	b.str(r.Kind.String())
	b.str(r.Algorithm)
	b.u64(uint64(len(r.Checks)))
	for _, c := range r.Checks {
		b.str(c.Method.String())
		b.bytes(c.Value)
	}
	b.bytes(r.DealerKey)
	b.flag(r.Sealed != nil)
	if r.Sealed != nil {
		b.str(r.Sealed.File)
		b.u64(r.Sealed.Size)
		b.bytes(r.Sealed.Digest)
	}
	b.flag(r.Manifest != nil)
	if r.Manifest != nil {
		b.bytes(r.Manifest.Check().Value) // covers every entry
	}
	b.u64(uint64(len(r.Custodians)))
	for _, c := range r.Custodians {
		b.u64(uint64(c.Index))
		b.str(c.Name)
	}
	return b.buf
}

// signedRecord builds the signed encoding of a record.
type signedRecord struct{ buf []byte }

func (s *signedRecord) u64(v uint64) { s.buf = binary.BigEndian.AppendUint64(s.buf, v) }

func (s *signedRecord) bytes(p []byte) {
	s.u64(uint64(len(p)))
	s.buf = append(s.buf, p...)
}

func (s *signedRecord) str(v string) { s.bytes([]byte(v)) }

func (s *signedRecord) flag(v bool) {
	if v {
		s.buf = append(s.buf, 1)
	} else {
		s.buf = append(s.buf, 0)
	}
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
