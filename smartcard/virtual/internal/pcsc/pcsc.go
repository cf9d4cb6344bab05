// Package pcsc is the little of PC/SC that the virtual card's tests need
// beyond piv-go: which readers pcscd lists and whether a card is present
// in one. It talks to pcscd through libpcsclite.
package pcsc

// #cgo linux pkg-config: libpcsclite
// #include <stdlib.h>
// #include <PCSC/winscard.h>
// #include <PCSC/wintypes.h>
import "C"

import (
	"bytes"
	"context"
	"fmt"
	"time"
	"unsafe"
)

// Error is a PC/SC return code.
type Error struct{ Code uint32 }

func (e *Error) Error() string {
	return fmt.Sprintf("pcsc error 0x%08x", e.Code)
}

const errNoReaders = 0x8010002e

func check(rc C.LONG) error {
	if rc == C.SCARD_S_SUCCESS {
		return nil
	}
	return &Error{Code: uint32(rc)}
}

// Context is a connection to pcscd.
type Context struct{ ctx C.SCARDCONTEXT }

// Establish connects to pcscd.
func Establish() (*Context, error) {
	var ctx C.SCARDCONTEXT
	rc := C.SCardEstablishContext(C.SCARD_SCOPE_SYSTEM, nil, nil, &ctx)
	if err := check(rc); err != nil {
		return nil, fmt.Errorf("connecting to pcscd: %w", err)
	}
	return &Context{ctx: ctx}, nil
}

// Release closes the connection.
func (c *Context) Release() error {
	return check(C.SCardReleaseContext(c.ctx))
}

// Readers lists the readers pcscd knows.
func (c *Context) Readers() ([]string, error) {
	var n C.DWORD
	rc := C.SCardListReaders(c.ctx, nil, nil, &n)
	if uint32(rc) == errNoReaders {
		return nil, nil
	}
	if err := check(rc); err != nil {
		return nil, fmt.Errorf("listing readers: %w", err)
	}
	buf := make([]byte, n)
	rc = C.SCardListReaders(c.ctx, nil, (*C.char)(unsafe.Pointer(&buf[0])), &n)
	if err := check(rc); err != nil {
		return nil, fmt.Errorf("listing readers: %w", err)
	}
	var out []string
	for _, r := range bytes.Split(buf[:n], []byte{0}) {
		if len(r) > 0 {
			out = append(out, string(r))
		}
	}
	return out, nil
}

// Present reports whether a card is in the reader.
func (c *Context) Present(reader string) (bool, error) {
	name := C.CString(reader)
	defer C.free(unsafe.Pointer(name))
	var rs C.SCARD_READERSTATE
	rs.szReader = name
	rs.dwCurrentState = C.SCARD_STATE_UNAWARE
	rc := C.SCardGetStatusChange(c.ctx, 0, &rs, 1)
	if err := check(rc); err != nil {
		return false, fmt.Errorf("reading state of %q: %w", reader, err)
	}
	if rs.dwEventState&C.SCARD_STATE_UNKNOWN != 0 {
		return false, fmt.Errorf("reader %q not known to pcscd", reader)
	}
	return rs.dwEventState&C.SCARD_STATE_PRESENT != 0, nil
}

// WaitPresent polls until the reader's card presence is want, or ctx is
// done.
func (c *Context) WaitPresent(ctx context.Context, reader string, want bool) error {
	for {
		got, err := c.Present(reader)
		if err != nil {
			return err
		}
		if got == want {
			return nil
		}
		select {
		case <-ctx.Done():
			state := "absent"
			if want {
				state = "present"
			}
			return fmt.Errorf("waiting for card to be %s in %q: %w", state, reader, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}
