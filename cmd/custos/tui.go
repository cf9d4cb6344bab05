package main

import (
	"errors"
	"fmt"
	"io"
	"os"
)

// Every message custos prints goes through the helpers in this file, so that
// a custodian reads one voice: "custos: error: …", then "custos: hint: …"
// lines, and never a Go stack or a raw status word.

// stderr is where messages go; tests replace it.
var stderr io.Writer = os.Stderr

// usageError is a mistake in how custos was called: exit status 2.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

// usagef returns a usage error; main prints it with a pointer to --help.
func usagef(format string, a ...any) error {
	return &usageError{fmt.Sprintf(format, a...)}
}

// hintedError carries lines of advice that main prints after the error.
type hintedError struct {
	err   error
	hints []string
}

func (e *hintedError) Error() string { return e.err.Error() }
func (e *hintedError) Unwrap() error { return e.err }

// withHint attaches advice to err. A nil err stays nil.
func withHint(err error, hints ...string) error {
	if err == nil {
		return nil
	}
	return &hintedError{err: err, hints: hints}
}

// errorf is fmt.Errorf for refused inputs (exit status 1).
func errorf(format string, a ...any) error { return fmt.Errorf(format, a...) }

func printError(err error) {
	fmt.Fprintf(stderr, "custos: error: %v\n", err)
	var h *hintedError
	for e := err; errors.As(e, &h); e = h.err {
		for _, line := range h.hints {
			hint(line)
		}
	}
}

func hint(format string, a ...any) {
	fmt.Fprintf(stderr, "custos: hint: "+format+"\n", a...)
}

func warning(format string, a ...any) {
	fmt.Fprintf(stderr, "custos: warning: "+format+"\n", a...)
}

// info prints progress a person should see; it never carries a secret.
func info(format string, a ...any) {
	fmt.Fprintf(stderr, "custos: "+format+"\n", a...)
}

// exitCode maps an error returned by a command to the process status.
func exitCode(err error) int {
	var u *usageError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &u):
		return 2
	default:
		return 1
	}
}
