package ceremony

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strings"

	"custos/hsm"
	"custos/shares"
)

// HSMTarget places a recovered key in a PKCS#11 token: it is imported
// sensitive and non-extractable, and its check values are computed inside
// the token and compared with the set record's before Place returns. Keys
// are named as NameHSMKey says: the URI's object= (else the set's label)
// and the set ID as CKA_ID; the keys of a bundle take their entry names,
// after object= as a prefix (PlaceKeys).
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
	// pin is the PIN Prompt gave when Check logged in, kept so that the
	// room is asked once; Forget clears it.
	pin []byte
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

// LabelTakenError says the token already holds an object with the label
// or ID a recovered key would take. Nothing was changed on the token.
type LabelTakenError struct {
	Token    string
	Key      string   // the key that was to be imported
	Existing []string // the objects in its way
	Remedy   string   // what the room can do, in words
	Err      error    // the *hsm.ObjectExistsError
}

func (e *LabelTakenError) Error() string {
	return fmt.Sprintf("%s already holds %s, in the way of %s; nothing was changed on the token: %s",
		e.Token, strings.Join(e.Existing, ", "), e.Key, e.Remedy)
}

func (e *LabelTakenError) Unwrap() error { return e.Err }

// What the room can do about a taken label or ID. custos itself never
// replaces or removes a key on a token.
const (
	remedyLabel = "choose another label with object= in the target URI, " +
		"or remove the old key with the token's own tools first"
	remedyID = "the token already holds a key with the id this key takes (the set ID, or id= in the URI; " +
		"another label does not change it): remove that key with the token's own tools first, " +
		"or place the key in another token"
	remedyBundle = "remove the old keys with the token's own tools first, or place the bundle in another token"
)

// labelTaken restates an hsm.ObjectExistsError in what the room can do.
func labelTaken(err error, remedy string) error {
	var oe *hsm.ObjectExistsError
	if !errors.As(err, &oe) {
		return err
	}
	return &LabelTakenError{Token: oe.Token, Key: oe.Key, Existing: oe.Existing, Remedy: remedy, Err: err}
}

// takenRemedy says what to do about a conflict: a single key's label can
// be chosen with object=, its ID (the set ID) cannot; a bundle's keys are
// many, and their IDs come from the set too.
func takenRemedy(s *hsm.Session, keys []hsm.Key) string {
	if len(keys) != 1 {
		return remedyBundle
	}
	if _, id, err := s.Taken(keys[0]); err == nil && id {
		return remedyID
	}
	return remedyLabel
}

// Check makes sure, before any custodian is called, that the keys of
// rec can go to the token: the set's secret is a key an HSM takes, the
// pin-source file (if any) is readable only by its owner, the module
// loads, the token is there, the login works, the token has the
// mechanisms the import and its proof need, and the labels and IDs the
// keys will take are free. The PIN a Prompt gives is kept for Place,
// until Forget.
func (h *HSMTarget) Check(ctx context.Context, rec *SetRecord) error {
	keys, err := h.plannedKeys(rec)
	if err != nil {
		return err
	}
	if err := checkPINFile(h.URI); err != nil {
		return err
	}
	s, err := h.open(true)
	if err != nil {
		return err
	}
	defer s.Close()
	if err := s.CheckMechanisms(keys, h.Options); err != nil {
		return fmt.Errorf("checking %v: %w", h, err)
	}
	if !h.resumed {
		if err := s.CheckFree(keys); err != nil {
			return labelTaken(err, takenRemedy(s, keys))
		}
	}
	return s.Close()
}

// Forget clears the PIN Check kept.
func (h *HSMTarget) Forget() {
	clear(h.pin)
	h.pin = nil
}

// open opens and logs in to the token. With keep, a PIN the prompt gives
// is kept for the next open, so the room types it once.
func (h *HSMTarget) open(keep bool) (*hsm.Session, error) {
	prompt := h.Prompt
	var typed []byte
	switch {
	case h.pin != nil:
		prompt = func(hsm.TokenInfo) ([]byte, error) { return bytes.Clone(h.pin), nil }
	case keep && prompt != nil:
		ask := prompt
		prompt = func(t hsm.TokenInfo) ([]byte, error) {
			pin, err := ask(t)
			if err == nil {
				clear(typed)
				typed = bytes.Clone(pin)
			}
			return pin, err
		}
	}
	s, err := hsm.Open(h.URI, prompt)
	if err != nil {
		clear(typed)
		return nil, fmt.Errorf("opening %v: %w", h, err)
	}
	if typed != nil {
		h.pin = typed
	}
	return s, nil
}

// checkPINFile refuses a pin-source file that others may read, or that
// is not a regular file, as the card PIN files are refused.
func checkPINFile(u *hsm.URI) error {
	path, err := u.PINFile()
	if err != nil || path == "" {
		return err
	}
	fi, err := os.Stat(path)
	switch {
	case err != nil:
		return fmt.Errorf("reading the HSM PIN file: %w", err)
	case !fi.Mode().IsRegular():
		return fmt.Errorf("HSM PIN file %s is not a regular file", path)
	case fi.Mode().Perm()&0o077 != 0:
		return fmt.Errorf("HSM PIN file %s is readable by others (mode %04o); make it yours alone: chmod 600 %s",
			path, fi.Mode().Perm(), path)
	}
	return nil
}

// plannedKeys are the keys a recovery of rec imports, named as the import
// will name them (PlanHSMKeys) but without their material. A secret that
// is no key an HSM takes is refused here, before anyone is called.
func (h *HSMTarget) plannedKeys(rec *SetRecord) ([]hsm.Key, error) {
	if rec.Sealed != nil && rec.Kind != shares.KindBundle {
		// TODO: a private key too large to ride inside the shares would
		// need reading into memory from its sealed file; none is that
		// large in practice, so it is refused.
		return nil, fmt.Errorf("set %s holds a %s secret of more than %d bytes in a sealed file; "+
			"an HSM target takes keys and bundles of keys: recover it to a file: target",
			rec.SetID.Short(), rec.Kind, shares.InlineLimit)
	}
	if rec.Kind == shares.KindBundle && rec.Manifest != nil &&
		!shares.EqualChecks(rec.Checks, []shares.CheckValue{rec.Manifest.Check()}) {
		return nil, fmt.Errorf("set %s's record: its bundle manifest does not match its check value: the record was altered",
			rec.SetID.Short())
	}
	keys, _, err := PlanHSMKeys(h.URI, rec)
	if err != nil {
		// TODO: PlanHSMKeys's errors advise "--out", the flag of custos
		// recover; a ceremony's file target is file:PATH.
		return nil, fmt.Errorf("set %s cannot go into %v: %w", rec.SetID.Short(), h, err)
	}
	return keys, nil
}

// bundleKeys is the collector of a bundle's keys for this target, which
// names them as plannedKeys did.
func (h *HSMTarget) bundleKeys(rec *SetRecord) (*BundleKeys, error) {
	prefix, err := HSMBundlePrefix(h.URI)
	if err != nil {
		return nil, err
	}
	return &BundleKeys{SetID: rec.SetID, Manifest: rec.Manifest, Prefix: prefix}, nil
}

// Place imports the key and proves it inside the token. Import is all or
// nothing: on any failure the token is left as it was. After Undo (an
// interrupted earlier run), a key already on the token under the same
// label and ID is proven instead of imported twice.
func (h *HSMTarget) Place(ctx context.Context, key []byte, rec *SetRecord) (string, error) {
	sec := &shares.Secret{Bytes: key, Kind: rec.Kind, Algorithm: rec.Algorithm}
	k, err := HSMKeyFor(sec, h.URI, rec)
	if err != nil {
		return "", fmt.Errorf("preparing the key for %v: %w", h, err)
	}
	defer clear(k.Secret)
	return h.PlaceKeys(ctx, []hsm.Key{k})
}

// PlaceKeys imports keys (those of a bundle, see BundleKeys) and proves
// each inside the token, all or nothing, as Place does for one key.
func (h *HSMTarget) PlaceKeys(ctx context.Context, keys []hsm.Key) (string, error) {
	s, err := h.open(false)
	if err != nil {
		return "", err
	}
	defer s.Close()

	im, err := s.Import(ctx, keys, h.Options)
	if errors.Is(err, hsm.ErrObjectExists) && h.resumed {
		return h.proveExisting(s, keys)
	}
	if err != nil {
		return "", fmt.Errorf("importing into %v: %w", s.Info(), labelTaken(err, takenRemedy(s, keys)))
	}
	if err := s.Close(); err != nil {
		return "", fmt.Errorf("closing %v: %w", s.Info(), err)
	}
	return importedText(s.Info(), im), nil
}

// importedText says what was imported and proven, naming a few keys of a
// large bundle and counting the rest.
func importedText(t hsm.TokenInfo, im []hsm.Imported) string {
	if len(im) == 1 {
		return fmt.Sprintf("imported into %v as %s %q (id %s), sensitive and non-extractable; %s",
			t, im[0].Kind, im[0].Label, hex.EncodeToString(im[0].ID), proofText(im[0].Proof))
	}
	const shown = 5
	var each []string
	for _, k := range im[:min(len(im), shown)] {
		each = append(each, fmt.Sprintf("%s %q: %s", k.Kind, k.Label, strings.Join(k.Proof.Proven, ", ")))
	}
	if len(im) > shown {
		each = append(each, fmt.Sprintf("and %d more, each proven", len(im)-shown))
	}
	return fmt.Sprintf("imported %d keys into %v, sensitive and non-extractable, each proven inside the token: %s",
		len(im), t, strings.Join(each, "; "))
}

// proveExisting proves the keys an interrupted run left on the token,
// once the keys in hand are shown to be the set's.
func (h *HSMTarget) proveExisting(s *hsm.Session, keys []hsm.Key) (string, error) {
	var last hsm.Proof
	for _, k := range keys {
		ref := hsm.ObjectRef{Label: k.Label, ID: k.ID}
		if err := sameCheck(k); err != nil {
			return "", fmt.Errorf("proving %v on %v: %w", ref, s.Info(), err)
		}
		pr, err := s.VerifyObject(ref, k.Expect)
		if err != nil {
			return "", fmt.Errorf("proving %v left by an interrupted run on %v: %w", ref, s.Info(), err)
		}
		last = pr
	}
	if len(keys) == 1 {
		return fmt.Sprintf("already on %v as %q from an interrupted run; not imported twice; %s",
			s.Info(), keys[0].Label, proofText(last)), nil
	}
	return fmt.Sprintf("already on %v from an interrupted run, %d keys; not imported twice; each proven inside the token",
		s.Info(), len(keys)), nil
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
