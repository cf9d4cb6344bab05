package ceremony

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"

	"custos/hsm"
	"custos/shares"
)

// HSMTarget places a recovered key in a PKCS#11 token: it is imported
// sensitive and non-extractable, and its check values are computed inside
// the token and compared with the set record's before Place returns. The
// key object takes the URI's object= as its label (the set's label when
// the URI has none) and the set ID as its CKA_ID.
type HSMTarget struct {
	URI *hsm.URI
	// Prompt asks for the token's user PIN when the URI has no
	// pin-source. The recovery ceremony sets it to ask the room.
	Prompt hsm.PINPrompt
	// Options tune the import (create or unwrap path).
	Options hsm.Options

	// resumed says an earlier run may already have imported the key, so
	// a key of the same label and ID is proven rather than refused.
	resumed bool
}

// NewHSMTarget reads a pkcs11: URI as a recovery target. pin-value is
// refused; the URI must name the module (module-path).
func NewHSMTarget(uri string) (*HSMTarget, error) {
	u, err := hsm.ParseURI(uri)
	if err != nil {
		return nil, fmt.Errorf("reading HSM target: %w", err)
	}
	if u.ModulePath == "" {
		return nil, errors.New("reading HSM target: the URI names no PKCS#11 module; add ?module-path=/path/to/module.so")
	}
	return &HSMTarget{URI: u}, nil
}

func (h *HSMTarget) String() string {
	tok := h.URI.Token
	if tok == "" {
		tok = h.URI.Serial
	}
	if tok == "" {
		tok = "(the only token)"
	}
	s := "HSM token " + tok
	if h.URI.Object != "" {
		s += " as " + h.URI.Object
	}
	return s
}

func (h *HSMTarget) label(rec *SetRecord) string {
	if h.URI.Object != "" {
		return h.URI.Object
	}
	return rec.Label
}

// Place imports the key and proves it inside the token. Import is all or
// nothing: on any failure the token is left as it was. After Undo (an
// interrupted earlier run), a key already on the token under the same
// label and ID is proven instead of imported twice.
func (h *HSMTarget) Place(ctx context.Context, key []byte, rec *SetRecord) (string, error) {
	sec := &shares.Secret{Bytes: key, Kind: rec.Kind, Algorithm: rec.Algorithm}
	k, err := HSMKey(sec, rec.SetID, h.label(rec), rec.Checks)
	if err != nil {
		return "", fmt.Errorf("preparing the key for %v: %w", h, err)
	}
	defer clear(k.Secret)

	s, err := hsm.Open(h.URI, h.Prompt)
	if err != nil {
		return "", fmt.Errorf("opening %v: %w", h, err)
	}
	defer s.Close()

	im, err := s.ImportKey(ctx, k, h.Options)
	if errors.Is(err, hsm.ErrObjectExists) && h.resumed {
		return h.proveExisting(s, k)
	}
	if err != nil {
		return "", fmt.Errorf("importing into %v: %w", s.Info(), err)
	}
	if err := s.Close(); err != nil {
		return "", fmt.Errorf("closing %v: %w", s.Info(), err)
	}
	return fmt.Sprintf("imported into %v as %s %q (id %s), sensitive and non-extractable; %s",
		s.Info(), im.Kind, im.Label, hex.EncodeToString(im.ID), proofText(im.Proof)), nil
}

// proveExisting proves a key an interrupted run left on the token, once
// the key in hand is shown to be the set's.
func (h *HSMTarget) proveExisting(s *hsm.Session, k hsm.Key) (string, error) {
	ref := hsm.ObjectRef{Label: k.Label, ID: k.ID}
	if err := sameCheck(k); err != nil {
		return "", fmt.Errorf("proving %v on %v: %w", ref, s.Info(), err)
	}
	pr, err := s.VerifyObject(ref, k.Expect)
	if err != nil {
		return "", fmt.Errorf("proving %v left by an interrupted run on %v: %w", ref, s.Info(), err)
	}
	return fmt.Sprintf("already on %v as %q from an interrupted run; not imported twice; %s",
		s.Info(), k.Label, proofText(pr)), nil
}

// sameCheck refuses key material whose own check values differ from
// those it is expected to have.
func sameCheck(k hsm.Key) error {
	got, err := hsm.ComputeCheck(k)
	if err != nil {
		return fmt.Errorf("computing the key's check value: %w", err)
	}
	for _, p := range [][2][]byte{{k.Expect.KCV, got.KCV}, {k.Expect.ECB, got.ECB},
		{k.Expect.HMAC, got.HMAC}, {k.Expect.SPKISHA256, got.SPKISHA256}} {
		if len(p[0]) > 0 && !bytes.Equal(p[0], p[1]) {
			return errors.New("the key in hand does not have the set record's check value")
		}
	}
	return nil
}

// Undo notes that an interrupted run may have imported the key. Import is
// all or nothing, so no half-made object is left to remove; a whole one
// is proven by the next Place rather than destroyed.
//
// TODO: a process killed inside C_CreateObject could leave a key without
// its custos record object; package hsm has no destroy call to clear it,
// and the next Place proves it, which is enough to trust it.
func (h *HSMTarget) Undo() error {
	h.resumed = true
	return nil
}

// proofText says what the token computed, as custodians read check values.
func proofText(p hsm.Proof) string {
	var got []string
	add := func(name string, v []byte) {
		if len(v) > 0 {
			got = append(got, name+" "+strings.ToUpper(hex.EncodeToString(v)))
		}
	}
	add("KCV", p.Got.KCV)
	add("ECB", p.Got.ECB)
	add("HMAC", p.Got.HMAC)
	if len(p.Got.SPKISHA256) > 0 {
		got = append(got, "SPKI-SHA256 "+hex.EncodeToString(p.Got.SPKISHA256))
	}
	s := "check values computed inside the token: " + strings.Join(got, ", ") +
		" (proven: " + strings.Join(p.Proven, ", ") + ")"
	if len(p.Skipped) > 0 {
		s += "; not computed: " + strings.Join(p.Skipped, "; ")
	}
	return s
}
