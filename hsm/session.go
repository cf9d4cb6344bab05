package hsm

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"unsafe"

	"github.com/miekg/pkcs11"
)

// TokenInfo describes an initialised token, as found in its module.
type TokenInfo struct {
	Module       string
	Label        string
	Serial       string
	Manufacturer string
	Model        string

	// Firmware is the token's firmware version, "major.minor".
	Firmware string

	PINCountLow   bool // wrong PINs were entered since the last success
	PINFinalTry   bool // one more wrong PIN locks the user PIN
	PINLocked     bool // the user PIN is locked
	ProtectedPath bool // the PIN is entered on the device, not here

	slot uint
}

// String names the token for messages: label and serial.
func (t TokenInfo) String() string {
	if t.Serial == "" {
		return fmt.Sprintf("token %q", t.Label)
	}
	return fmt.Sprintf("token %q (serial %s)", t.Label, t.Serial)
}

// PINPrompt asks a person for the user PIN of a token. The CLI reads it
// from the terminal. The returned slice is cleared after the login.
type PINPrompt func(t TokenInfo) ([]byte, error)

// Session is a logged-in read-write session on one token. Its methods are
// safe for concurrent use; they take turns, as PKCS#11 sessions must.
type Session struct {
	mu   sync.Mutex
	mod  *module
	p    p11
	sh   pkcs11.SessionHandle
	info TokenInfo

	mechs map[uint]pkcs11.MechanismInfo // nil until first asked
}

// Tokens lists the initialised tokens of the URI's module that match its
// token attributes, without logging in.
func Tokens(u *URI) ([]TokenInfo, error) {
	if err := checkModuleURI(u); err != nil {
		return nil, err
	}
	m, err := loadModule(u.ModulePath)
	if err != nil {
		return nil, err
	}
	defer m.release()
	return matchTokens(wrapModule(m.ctx), u.ModulePath, u)
}

// Open finds the one token the URI names, opens a read-write session on
// it and logs in as the user. The PIN comes from the URI's pin-source
// file if it has one, from prompt otherwise. Close the session when done:
// closing the last session on a module finalises it.
func Open(u *URI, prompt PINPrompt) (*Session, error) {
	if err := checkModuleURI(u); err != nil {
		return nil, err
	}
	m, err := loadModule(u.ModulePath)
	if err != nil {
		return nil, err
	}
	s, err := open(m, u, prompt)
	if err != nil {
		m.release()
		return nil, err
	}
	return s, nil
}

func open(m *module, u *URI, prompt PINPrompt) (*Session, error) {
	p := wrapModule(m.ctx)
	t, err := findToken(p, u.ModulePath, u)
	if err != nil {
		return nil, err
	}
	sh, err := p.OpenSession(t.slot,
		pkcs11.CKF_SERIAL_SESSION|pkcs11.CKF_RW_SESSION)
	if err != nil {
		return nil, fmt.Errorf("opening session on %v: %w", t, err)
	}
	s := &Session{mod: m, p: p, sh: sh, info: t}
	if err := s.login(u, prompt); err != nil {
		p.CloseSession(sh)
		return nil, err
	}
	return s, nil
}

func checkModuleURI(u *URI) error {
	if u == nil {
		return errors.New("no PKCS#11 URI")
	}
	if u.ModulePath == "" && u.ModuleName != "" {
		// TODO: search the p11-kit module directories for module-name;
		// until then only explicit paths load code into the process.
		return fmt.Errorf("module-name=%s is not supported: give "+
			"module-path=/path/to/%s.so", u.ModuleName, u.ModuleName)
	}
	return nil
}

// errClosed is returned by the methods of a closed Session.
var errClosed = errors.New("session is closed")

// live fails once the session is closed: the module may be finalised and
// its handles gone. Call with s.mu held.
func (s *Session) live() error {
	if s.mod == nil {
		return fmt.Errorf("%v: %w", s.info, errClosed)
	}
	return nil
}

// Info describes the session's token.
func (s *Session) Info() TokenInfo { return s.info }

// Close closes the session and releases the module; the last release
// calls C_Finalize. Closing the last session also logs the token out.
func (s *Session) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.mod == nil {
		return nil
	}
	err := s.p.CloseSession(s.sh)
	if err != nil {
		err = fmt.Errorf("closing session on %v: %w", s.info, err)
	}
	err = errors.Join(err, s.mod.release())
	s.mod = nil
	return err
}

// findToken returns the one initialised token matching the URI.
func findToken(p p11, module string, u *URI) (TokenInfo, error) {
	found, err := matchTokens(p, module, u)
	if err != nil {
		return TokenInfo{}, err
	}
	switch len(found) {
	case 0:
		return TokenInfo{}, &TokenError{Module: module,
			Want: u.tokenSelector(), Err: ErrTokenNotFound}
	case 1:
		return found[0], nil
	}
	var names []string
	for _, t := range found {
		names = append(names, t.String())
	}
	return TokenInfo{}, &TokenError{Module: module,
		Want: u.tokenSelector(), Matches: names, Err: ErrTokenAmbiguous}
}

// matchTokens lists initialised tokens matching the URI. Uninitialised
// slots (SoftHSM always offers one) are never candidates.
func matchTokens(p p11, module string, u *URI) ([]TokenInfo, error) {
	if err := matchLibrary(p, module, u); err != nil {
		return nil, err
	}
	slots, err := p.GetSlotList(true)
	if err != nil {
		return nil, fmt.Errorf("listing slots of %s: %w", module, err)
	}
	var found []TokenInfo
	for _, slot := range slots {
		t, ok, err := matchSlot(p, slot, u)
		if err != nil {
			return nil, fmt.Errorf("reading slot of %s: %w", module, err)
		}
		if ok {
			t.Module = module
			found = append(found, t)
		}
	}
	return found, nil
}

func matchSlot(p p11, slot uint, u *URI) (TokenInfo, bool, error) {
	ti, err := p.GetTokenInfo(slot)
	if err != nil {
		return TokenInfo{}, false, err
	}
	if ti.Flags&pkcs11.CKF_TOKEN_INITIALIZED == 0 {
		return TokenInfo{}, false, nil
	}
	t := tokenInfo(slot, ti)
	if !eqOpt(u.Token, t.Label) || !eqOpt(u.Serial, t.Serial) ||
		!eqOpt(u.Manufacturer, t.Manufacturer) || !eqOpt(u.Model, t.Model) {
		return t, false, nil
	}
	if u.SlotDescription == "" && u.SlotManufacturer == "" {
		return t, true, nil
	}
	si, err := p.GetSlotInfo(slot)
	if err != nil {
		return t, false, err
	}
	ok := eqOpt(u.SlotDescription, si.SlotDescription) &&
		eqOpt(u.SlotManufacturer, si.ManufacturerID)
	return t, ok, nil
}

func tokenInfo(slot uint, ti pkcs11.TokenInfo) TokenInfo {
	return TokenInfo{
		Label:        ti.Label,
		Serial:       ti.SerialNumber,
		Manufacturer: ti.ManufacturerID,
		Model:        ti.Model,
		Firmware: fmt.Sprintf("%d.%d", ti.FirmwareVersion.Major,
			ti.FirmwareVersion.Minor),
		PINCountLow:   ti.Flags&pkcs11.CKF_USER_PIN_COUNT_LOW != 0,
		PINFinalTry:   ti.Flags&pkcs11.CKF_USER_PIN_FINAL_TRY != 0,
		PINLocked:     ti.Flags&pkcs11.CKF_USER_PIN_LOCKED != 0,
		ProtectedPath: ti.Flags&pkcs11.CKF_PROTECTED_AUTHENTICATION_PATH != 0,
		slot:          slot,
	}
}

// matchLibrary applies the library-* attributes, which hold for the
// whole module or not at all.
func matchLibrary(p p11, module string, u *URI) error {
	if u.LibraryManufacturer == "" && u.LibraryDescription == "" &&
		u.LibraryVersion == "" {
		return nil
	}
	info, err := p.GetInfo()
	if err != nil {
		return fmt.Errorf("reading module %s: %w", module, err)
	}
	v := info.LibraryVersion
	version := fmt.Sprintf("%d.%d", v.Major, v.Minor)
	if !strings.Contains(u.LibraryVersion, ".") {
		version = fmt.Sprintf("%d", v.Major)
	}
	if eqOpt(u.LibraryManufacturer, info.ManufacturerID) &&
		eqOpt(u.LibraryDescription, info.LibraryDescription) &&
		eqOpt(u.LibraryVersion, version) {
		return nil
	}
	return &TokenError{Module: module, Err: ErrTokenNotFound,
		Want: fmt.Sprintf("library %q %q %s (module is %q %q %s)",
			u.LibraryManufacturer, u.LibraryDescription, u.LibraryVersion,
			info.ManufacturerID, info.LibraryDescription, version)}
}

// eqOpt matches an optional URI value against a token's value.
func eqOpt(want, have string) bool {
	return want == "" || want == have
}

// login logs the session in as the user.
func (s *Session) login(u *URI, prompt PINPrompt) error {
	if s.info.PINLocked {
		return &PINError{Token: s.info.String(), Err: ErrPINLocked}
	}
	pin, err := s.readPIN(u, prompt)
	if err != nil {
		return err
	}
	defer clear(pin)

	// The PIN goes to the module as a string view of the slice, so no
	// immutable Go copy of it lingers.
	// TODO: miekg/pkcs11 copies it into C memory it frees without
	// clearing; a PIN-clearing Login needs a cgo call of our own.
	view := unsafe.String(unsafe.SliceData(pin), len(pin))
	err = s.p.Login(s.sh, pkcs11.CKU_USER, view)
	switch {
	case err == nil, isRV(err, pkcs11.CKR_USER_ALREADY_LOGGED_IN):
		return nil
	case isRV(err, pkcs11.CKR_PIN_LOCKED):
		return &PINError{Token: s.info.String(), Err: ErrPINLocked}
	case isRV(err, pkcs11.CKR_PIN_INCORRECT),
		isRV(err, pkcs11.CKR_PIN_INVALID),
		isRV(err, pkcs11.CKR_PIN_LEN_RANGE):
		return s.pinIncorrect()
	}
	return fmt.Errorf("logging in to %v: %w", s.info, err)
}

// pinIncorrect re-reads the token flags so the error can say how close
// the PIN is to locking.
func (s *Session) pinIncorrect() error {
	e := &PINError{Token: s.info.String(), Err: ErrPINIncorrect}
	if ti, err := s.p.GetTokenInfo(s.info.slot); err == nil {
		t := tokenInfo(s.info.slot, ti)
		e.FinalTry, e.CountLow = t.PINFinalTry, t.PINCountLow
		if t.PINLocked {
			e.Err = ErrPINLocked
		}
	}
	return e
}

// readPIN takes the PIN from the pin-source file or the prompt.
func (s *Session) readPIN(u *URI, prompt PINPrompt) ([]byte, error) {
	if u.PINSource != "" {
		return readPINSource(u.PINSource)
	}
	if s.info.ProtectedPath && prompt == nil {
		// TODO: log in through the device's PIN pad (C_Login with no
		// PIN); not tried on a real one yet.
		return nil, fmt.Errorf("%v: %w: the token has a PIN pad, which "+
			"custos does not drive yet", s.info, ErrNoPIN)
	}
	if prompt == nil {
		return nil, fmt.Errorf("%v: %w: add pin-source=file:/path to the "+
			"URI or run custos on a terminal", s.info, ErrNoPIN)
	}
	pin, err := prompt(s.info)
	if err != nil {
		return nil, fmt.Errorf("reading PIN for %v: %w", s.info, err)
	}
	return pin, nil
}

// readPINSource reads a PIN from a pin-source value: a file: URI or a
// plain path. One trailing newline is dropped.
func readPINSource(src string) ([]byte, error) {
	path, err := pinSourcePath(src)
	if err != nil {
		return nil, err
	}
	pin, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading pin-source: %w", err)
	}
	n := len(pin)
	if bytes.HasSuffix(pin, []byte("\r\n")) {
		n -= 2
	} else if bytes.HasSuffix(pin, []byte("\n")) {
		n--
	}
	clear(pin[n:])
	if n == 0 {
		return nil, fmt.Errorf("reading pin-source %s: file is empty", path)
	}
	return pin[:n], nil
}

func pinSourcePath(src string) (string, error) {
	switch {
	case strings.HasPrefix(src, "|"):
		return "", errors.New("pin-source=|command is refused: custos " +
			"runs no programs for PINs; use pin-source=file:/path")
	case strings.HasPrefix(src, "file://"):
		rest := strings.TrimPrefix(src, "file://")
		if !strings.HasPrefix(rest, "/") {
			return "", fmt.Errorf("pin-source %s: only local files "+
				"(file:///path) are read", src)
		}
		return filepath.Clean(rest), nil
	case strings.HasPrefix(src, "file:"):
		return filepath.Clean(strings.TrimPrefix(src, "file:")), nil
	case strings.Contains(src, ":"):
		return "", fmt.Errorf("pin-source %s: only file: sources are read",
			src)
	}
	return filepath.Clean(src), nil
}
