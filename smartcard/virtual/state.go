package virtual

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
)

// stateNotice is written at the top of every state file. A person who
// finds the file must learn at once what it holds.
const stateNotice = "REHEARSAL CARD, NOT A SECURE ELEMENT: this file " +
	"holds a custos virtual PIV card in the clear, private keys, PIN, PUK " +
	"and management key included. Anyone who can read it owns the card. " +
	"Use it for rehearsals, drills and tests only, never for real custody."

// stateFormat is the version of the state file layout.
const stateFormat = 1

// state is everything a card remembers between power cycles. It is also
// the JSON layout of the state file, so its field names are a format.
type state struct {
	Notice  string  `json:"notice"`
	Format  int     `json:"format"`
	Serial  uint32  `json:"serial"`
	Version [3]byte `json:"version"`

	PIN  secretRef `json:"pin"`
	PUK  secretRef `json:"puk"`
	Mgmt mgmtKey   `json:"management_key"`

	// Keys maps a slot ("9a", "82", "f9") to its key.
	Keys map[string]*slotKey `json:"keys"`
	// Objects maps a data object tag ("5fc105") to its content, the value
	// of the 53 template as PUT DATA wrote it.
	Objects map[string]hexBytes `json:"objects"`

	// AttestationRoot is the virtual CA that signed the f9 certificate.
	AttestationRoot attestationRoot `json:"attestation_root"`
}

// secretRef is a PIN or PUK: its value padded with FF to eight bytes,
// and its retry counter.
type secretRef struct {
	Value     hexBytes `json:"value"`
	Retries   int      `json:"retries"`
	Remaining int      `json:"remaining"`
	IsDefault bool     `json:"default"`
}

// mgmtKey is the card management key (slot 9b).
type mgmtKey struct {
	Alg       byte     `json:"algorithm"`
	Key       hexBytes `json:"key"`
	Touch     byte     `json:"touch_policy"`
	IsDefault bool     `json:"default"`
}

// slotKey is one asymmetric key. Private holds the raw private key: the
// scalar for P-256 and P-384, the 32-byte seed for Ed25519 and the
// 32-byte scalar for X25519.
type slotKey struct {
	Alg         byte     `json:"algorithm"`
	Private     hexBytes `json:"private"`
	PINPolicy   byte     `json:"pin_policy"`
	TouchPolicy byte     `json:"touch_policy"`
	Origin      byte     `json:"origin"`
}

// attestationRoot is the card's own attestation root CA.
type attestationRoot struct {
	Private hexBytes `json:"private"`
	Cert    hexBytes `json:"certificate"`
}

// hexBytes is a byte string written as hex in JSON, so that a person can
// compare a state file with APDU traces.
type hexBytes []byte

func (h hexBytes) MarshalJSON() ([]byte, error) {
	return json.Marshal(hex.EncodeToString(h))
}

func (h *hexBytes) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	v, err := hex.DecodeString(s)
	if err != nil {
		return err
	}
	*h = v
	return nil
}

// slotName is the map key of a key slot.
func slotName(slot byte) string { return fmt.Sprintf("%02x", slot) }

// objectName is the map key of a data object.
func objectName(tag uint32) string { return strconv.FormatUint(uint64(tag), 16) }

// validate checks a loaded state for the fields every command relies on.
func (s *state) validate() error {
	if s.Format != stateFormat {
		return fmt.Errorf("unsupported state format %d (want %d)", s.Format, stateFormat)
	}
	for name, r := range map[string]secretRef{"pin": s.PIN, "puk": s.PUK} {
		if len(r.Value) != 8 || r.Retries < 1 || r.Retries > 255 ||
			r.Remaining < 0 || r.Remaining > r.Retries {
			return fmt.Errorf("invalid %s record", name)
		}
	}
	if want, ok := mgmtKeyLen[s.Mgmt.Alg]; !ok || len(s.Mgmt.Key) != want {
		return errors.New("invalid management key record")
	}
	for name, k := range s.Keys {
		if _, err := k.signer(); err != nil {
			return fmt.Errorf("invalid key in slot %s: %w", name, err)
		}
	}
	if s.Keys == nil {
		s.Keys = map[string]*slotKey{}
	}
	if s.Objects == nil {
		s.Objects = map[string]hexBytes{}
	}
	return nil
}

// loadState reads a state file.
func loadState(path string) (*state, []byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, err
	}
	s, _, err := decodeState(b)
	if err != nil {
		return nil, nil, fmt.Errorf("reading %s: %w", path, err)
	}
	return s, b, nil
}

// decodeState parses and checks the bytes of a state file.
func decodeState(b []byte) (*state, []byte, error) {
	var s state
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, nil, fmt.Errorf("decoding state: %w", err)
	}
	if err := s.validate(); err != nil {
		return nil, nil, fmt.Errorf("checking state: %w", err)
	}
	return &s, b, nil
}

// marshal encodes the state as the file holds it.
func (s *state) marshal() ([]byte, error) {
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

// writeFileAtomic replaces path with b: a new temporary file in the same
// directory (O_EXCL, 0600), fsync, rename, then fsync of the directory.
// A crash leaves either the old file or the new one, never a mix.
func writeFileAtomic(path string, b []byte) (err error) {
	dir := filepath.Dir(path)
	tmp, err := createTemp(dir, "."+filepath.Base(path)+".tmp-")
	if err != nil {
		return fmt.Errorf("creating temporary file: %w", err)
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()

	if _, err = tmp.Write(b); err != nil {
		return fmt.Errorf("writing %s: %w", tmp.Name(), err)
	}
	if err = tmp.Sync(); err != nil {
		return fmt.Errorf("syncing %s: %w", tmp.Name(), err)
	}
	if err = tmp.Close(); err != nil {
		return fmt.Errorf("closing %s: %w", tmp.Name(), err)
	}
	if err = os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("renaming into %s: %w", path, err)
	}

	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("opening directory %s: %w", dir, err)
	}
	defer d.Close()
	if err = d.Sync(); err != nil {
		return fmt.Errorf("syncing directory %s: %w", dir, err)
	}
	return nil
}

// createTemp makes a new file with a random name, O_EXCL and mode 0600.
func createTemp(dir, prefix string) (*os.File, error) {
	for range 100 {
		name := filepath.Join(dir, prefix+randomHex(8))
		f, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
		if errors.Is(err, os.ErrExist) {
			continue
		}
		return f, err
	}
	return nil, errors.New("no free temporary name")
}
