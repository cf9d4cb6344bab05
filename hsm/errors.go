package hsm

import (
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
)

// Sentinel errors for the states a caller acts on. The typed errors below
// wrap them, so errors.Is works on either.
var (
	// ErrTokenNotFound means no initialised token matches the URI.
	ErrTokenNotFound = errors.New("token not found")
	// ErrTokenAmbiguous means several initialised tokens match the URI.
	ErrTokenAmbiguous = errors.New("several tokens match")
	// ErrPINIncorrect means the token refused the user PIN.
	ErrPINIncorrect = errors.New("incorrect PIN")
	// ErrPINLocked means the user PIN is blocked on the token.
	ErrPINLocked = errors.New("PIN locked")
	// ErrMechanismMissing means the token lacks a mechanism the import
	// or the proof needs.
	ErrMechanismMissing = errors.New("mechanism missing")
	// ErrObjectExists means an object with the same label or ID is
	// already on the token and the key did not say what to do about it.
	ErrObjectExists = errors.New("object exists")
	// ErrObjectNotFound means no key object matches the label or ID.
	ErrObjectNotFound = errors.New("object not found")
	// ErrCheckMismatch means a check value computed inside the token
	// differs from the expected one.
	ErrCheckMismatch = errors.New("check value mismatch")
	// ErrPINInURI means the URI carried pin-value.
	ErrPINInURI = errors.New("pin-value in a PKCS#11 URI is refused")
	// ErrNoPIN means neither a pin-source nor a prompt was available.
	ErrNoPIN = errors.New("no PIN available")
	// ErrModule means the URI's module-path does not load as a PKCS#11
	// library.
	ErrModule = errors.New("PKCS#11 module does not load")
)

// ModuleError says why the URI's module-path did not load.
type ModuleError struct {
	Path   string
	Reason string // "no such file", "not a PKCS#11 library", ...
}

func (e *ModuleError) Error() string {
	return fmt.Sprintf("PKCS#11 module %s: %s", e.Path, e.Reason)
}

func (e *ModuleError) Unwrap() error { return ErrModule }

// TokenError reports that the URI matched no token or several.
type TokenError struct {
	Module  string   // module path
	Want    string   // the selector, as written in the URI
	Matches []string // descriptions of the tokens that matched, if several
	Err     error    // ErrTokenNotFound or ErrTokenAmbiguous
}

func (e *TokenError) Error() string {
	ambiguous := errors.Is(e.Err, ErrTokenAmbiguous)
	switch {
	case ambiguous && e.Want == "":
		return fmt.Sprintf("module %s has %d tokens and the URI names "+
			"none: %s", e.Module, len(e.Matches),
			strings.Join(e.Matches, "; "))
	case ambiguous:
		return fmt.Sprintf("module %s: %d tokens match %s: %s",
			e.Module, len(e.Matches), e.Want, strings.Join(e.Matches, "; "))
	case e.Want == "":
		return fmt.Sprintf("module %s has no initialised token", e.Module)
	}
	return fmt.Sprintf("module %s: no initialised token matches %s",
		e.Module, e.Want)
}

func (e *TokenError) Unwrap() error { return e.Err }

// PINError reports a refused or blocked user PIN.
type PINError struct {
	Token    string // token description
	FinalTry bool   // the token says one more wrong PIN locks it
	CountLow bool   // the token says wrong PINs were entered before
	Err      error  // ErrPINIncorrect or ErrPINLocked
}

func (e *PINError) Error() string {
	msg := fmt.Sprintf("%s: %v", e.Token, e.Err)
	switch {
	case errors.Is(e.Err, ErrPINLocked):
		return msg + " (the security officer must unblock it)"
	case e.FinalTry:
		return msg + " (one more wrong PIN locks the token)"
	case e.CountLow:
		return msg + " (wrong PINs were entered before this one)"
	}
	return msg
}

func (e *PINError) Unwrap() error { return e.Err }

// MechanismError lists the mechanisms a token lacks for the work asked.
type MechanismError struct {
	Token   string
	Missing []string // e.g. "CKM_AES_KEY_WRAP_PAD (unwrap)"
}

func (e *MechanismError) Error() string {
	return fmt.Sprintf("%s lacks %s", e.Token, strings.Join(e.Missing, ", "))
}

func (e *MechanismError) Unwrap() error { return ErrMechanismMissing }

// ObjectExistsError reports a label or ID that is already taken.
type ObjectExistsError struct {
	Token    string
	Key      string   // the key being imported
	Existing []string // the objects in the way
}

func (e *ObjectExistsError) Error() string {
	return fmt.Sprintf("%s: %s: its label or id is taken by %s", e.Token,
		e.Key, strings.Join(e.Existing, ", "))
}

func (e *ObjectExistsError) Unwrap() error { return ErrObjectExists }

// CheckError reports a check value computed inside the token that differs
// from the expected one. Check values are public, so both are shown.
type CheckError struct {
	Token  string
	Object string
	Method string // e.g. "aes-ecb", "aes-cmac", "spki-sha256", "signature"
	Want   []byte
	Got    []byte
}

func (e *CheckError) Error() string {
	if e.Method == methodSignature {
		return fmt.Sprintf("%s: %s: signature made inside does not verify "+
			"with the expected public key", e.Token, e.Object)
	}
	return fmt.Sprintf("%s: %s: %s check value is %s, expected %s",
		e.Token, e.Object, e.Method, upperHex(e.Got), upperHex(e.Want))
}

func (e *CheckError) Unwrap() error { return ErrCheckMismatch }

// RollbackError reports objects an import created but could not remove
// after a failure. Err is the failure that started the rollback.
type RollbackError struct {
	Token string
	Left  []string // objects still on the token
	Err   error
}

func (e *RollbackError) Error() string {
	return fmt.Sprintf("%v; removing what this import created also failed, "+
		"%s still holds %s", e.Err, e.Token, strings.Join(e.Left, ", "))
}

func (e *RollbackError) Unwrap() error { return e.Err }

func upperHex(b []byte) string {
	return strings.ToUpper(hex.EncodeToString(b))
}

// objectName names an object for messages: label and ID.
func objectName(label string, id []byte) string {
	if len(id) == 0 {
		return fmt.Sprintf("key %q", label)
	}
	return fmt.Sprintf("key %q (id %s)", label, hex.EncodeToString(id))
}
