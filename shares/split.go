package shares

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/ed25519"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/hashicorp/vault/shamir"
)

// InlineLimit is the largest secret that rides inside every share. Larger
// secrets are sealed to a separate file (see SplitSealed).
const InlineLimit = 4096

// Policy says how to split a secret.
type Policy struct {
	Threshold int // k: how many shares rebuild the secret, at least 2
	Count     int // n: how many shares to make, at most 255
	// Custodians names the holder of each share, in index order. It is
	// either empty or exactly Count names.
	Custodians []string
	Label      string // what the secret is, printed on every share
	// Kind is the secret's kind; zero means detect it (private keys are
	// recognised, anything else is raw).
	Kind Kind
	// Created is the split's time; zero means now.
	Created time.Time
	// Rand is the randomness source; nil means crypto/rand.
	Rand io.Reader
}

// Dealt is the outcome of a split: the shares and what the set record needs.
type Dealt struct {
	Shares    []*Share
	Detected  Detected
	Checks    []CheckValue
	Manifest  *Manifest // for bundles, the entries' names, kinds and check values
	DealerKey ed25519.PublicKey
	// Dealer is the split's signing key. The split ceremony needs it to sign
	// card certificates; call Wipe as soon as the shares are stored.
	Dealer ed25519.PrivateKey
}

// SetID returns the set's ID.
func (d *Dealt) SetID() SetID { return d.Shares[0].SetID }

// Wipe clears the dealer key. The shares are not secret on their own.
func (d *Dealt) Wipe() { clear(d.Dealer) }

// Validate checks the policy alone, before any secret is read.
func (p *Policy) Validate() error { return p.check() }

func (p *Policy) check() error {
	switch {
	case p.Threshold == 1:
		return fmt.Errorf("threshold 1 is too low: with k=1 every share is the whole secret; use at least 2")
	case p.Threshold < 2:
		return fmt.Errorf("threshold %d is not a number of shares; use at least 2", p.Threshold)
	case p.Count < 2:
		return fmt.Errorf("%d shares is too few; a split needs at least 2", p.Count)
	case p.Count > 255:
		return fmt.Errorf("%d shares is too many: at most 255", p.Count)
	case p.Threshold > p.Count:
		return fmt.Errorf("threshold %d is more than the %d shares: the secret could never be rebuilt", p.Threshold, p.Count)
	case len(p.Custodians) != 0 && len(p.Custodians) != p.Count:
		return fmt.Errorf("%d custodian names for %d shares", len(p.Custodians), p.Count)
	case len(p.Label) > maxText || !utf8.ValidString(p.Label):
		return fmt.Errorf("the label must be valid UTF-8 of at most %d bytes", maxText)
	}
	seen := map[string]int{}
	for i, name := range p.Custodians {
		if len(name) > maxText || !utf8.ValidString(name) {
			return fmt.Errorf("custodian %d's name must be valid UTF-8 of at most %d bytes", i+1, maxText)
		}
		folded := strings.ToLower(strings.TrimSpace(name))
		if j, dup := seen[folded]; dup && folded != "" {
			return fmt.Errorf("custodians %d and %d are both named %q: one person holding two shares weakens the threshold; give each share to a different person", j, i+1, name)
		}
		seen[folded] = i + 1
	}
	return nil
}

func (p *Policy) rand() io.Reader {
	if p.Rand != nil {
		return p.Rand
	}
	return rand.Reader
}

// Split seals a secret of at most InlineLimit bytes and splits its data key
// into p.Count shares, any p.Threshold of which rebuild it. Every share
// carries the sealed secret, so any quorum of paper is self-contained.
func Split(secret []byte, p Policy) (*Dealt, error) {
	if err := p.check(); err != nil {
		return nil, err
	}
	if len(secret) == 0 {
		return nil, errors.New("the secret is empty")
	}
	if len(secret) > InlineLimit {
		return nil, fmt.Errorf("the secret is %d bytes, more than the %d that ride inside shares; seal it to a separate file", len(secret), InlineLimit)
	}
	det, err := describe(secret, p.Kind)
	if err != nil {
		return nil, err
	}

	d, proto, dataKey, err := deal(p, det)
	if err != nil {
		return nil, err
	}
	defer clear(dataKey)

	var manifest *Manifest
	if det.Kind == KindBundle {
		manifest, err = ReadManifest(bytesReader(secret), checkKey(dataKey, proto.SetID))
		if err != nil {
			return nil, err
		}
		proto.Checks = []CheckValue{manifest.Check()}
	} else if proto.Checks, err = CheckValues(secret, det.Kind, checkKey(dataKey, proto.SetID)); err != nil {
		return nil, err
	}
	proto.Commit = commitment(dataKey, proto.SetID)
	proto.Inline = []byte{}
	proto.Inline, err = sealInline(dataKey, proto, secret, p.rand())
	if err != nil {
		return nil, err
	}
	d.Manifest = manifest
	return d, d.finish(proto, dataKey, p)
}

func describe(secret []byte, k Kind) (Detected, error) {
	if k == 0 {
		return DetectStrict(secret)
	}
	return Describe(secret, k)
}

// deal makes the parts of a split that do not depend on the payload: the
// set ID, the dealer key and the data key.
func deal(p Policy, det Detected) (*Dealt, *Share, []byte, error) {
	rnd := p.rand()
	pub, priv, err := ed25519.GenerateKey(rnd)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("generating dealer key: %w", err)
	}
	dataKey := make([]byte, 32)
	if _, err := io.ReadFull(rnd, dataKey); err != nil {
		return nil, nil, nil, fmt.Errorf("generating data key: %w", err)
	}
	created := p.Created
	if created.IsZero() {
		created = time.Now()
	}
	proto := &Share{
		Version:   Version,
		Created:   created.UTC().Truncate(time.Second),
		Threshold: p.Threshold,
		Count:     p.Count,
		Kind:      det.Kind,
		Algorithm: det.Algorithm,
		Label:     p.Label,
		DealerKey: pub,
	}
	if _, err := io.ReadFull(rnd, proto.SetID[:]); err != nil {
		return nil, nil, nil, fmt.Errorf("generating set ID: %w", err)
	}
	d := &Dealt{Detected: det, DealerKey: pub, Dealer: priv}
	return d, proto, dataKey, nil
}

// finish splits the data key and signs one share per custodian.
func (d *Dealt) finish(proto *Share, dataKey []byte, p Policy) error {
	parts, err := shamir.Split(dataKey, p.Count, p.Threshold)
	if err != nil {
		return fmt.Errorf("splitting data key: %w", err)
	}
	d.Checks = proto.Checks
	for i, part := range parts {
		s := *proto
		s.Index = i + 1
		if len(p.Custodians) > 0 {
			s.Custodian = p.Custodians[i]
		}
		s.KeyShare = part
		s.sign(d.Dealer)
		d.Shares = append(d.Shares, &s)
	}
	return nil
}

// subKey derives a key for one purpose from the data key.
func subKey(dataKey []byte, id SetID, purpose string) []byte {
	k, err := hkdf.Key(sha256.New, dataKey, id[:], "custos "+purpose+" v1", 32)
	if err != nil {
		panic("shares: hkdf: " + err.Error()) // only for lengths we never ask
	}
	return k
}

// commitment binds a data key without revealing it.
func commitment(dataKey []byte, id SetID) []byte {
	return subKey(dataKey, id, "key commitment")[:commitSize]
}

func checkKey(dataKey []byte, id SetID) []byte { return subKey(dataKey, id, "check value") }

func newGCM(key []byte) cipher.AEAD {
	block, err := aes.NewCipher(key)
	if err != nil {
		panic("shares: aes: " + err.Error())
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		panic("shares: gcm: " + err.Error())
	}
	return aead
}

func sealInline(dataKey []byte, proto *Share, secret []byte, rnd io.Reader) ([]byte, error) {
	key := subKey(dataKey, proto.SetID, "inline secret")
	defer clear(key)
	aead := newGCM(key)
	nonce := make([]byte, aead.NonceSize())
	if _, err := io.ReadFull(rnd, nonce); err != nil {
		return nil, fmt.Errorf("generating nonce: %w", err)
	}
	return aead.Seal(nonce, nonce, secret, proto.aad()), nil
}

func openInline(dataKey []byte, s *Share) ([]byte, error) {
	key := subKey(dataKey, s.SetID, "inline secret")
	defer clear(key)
	aead := newGCM(key)
	if len(s.Inline) < aead.NonceSize()+aead.Overhead() {
		return nil, errors.New("sealed secret is too short")
	}
	n := aead.NonceSize()
	return aead.Open(nil, s.Inline[:n], s.Inline[n:], s.aad())
}
