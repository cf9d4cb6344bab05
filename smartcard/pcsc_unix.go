//go:build cgo && (linux || freebsd || openbsd || darwin)

package smartcard

// This file is the one cgo edge of the package: a few read-only PC/SC calls
// that piv-go does not expose. custos uses them to tell a busy card from an
// absent one by the resource manager's own return code, and to send Yubico's
// GET METADATA for the PIN, PUK and management key, whose "default value"
// flag piv-go does not parse. No secret ever crosses this file.

// #cgo linux pkg-config: libpcsclite
// #cgo freebsd CFLAGS: -I/usr/local/include/ -I/usr/local/include/PCSC
// #cgo freebsd LDFLAGS: -L/usr/local/lib/ -lpcsclite
// #cgo openbsd CFLAGS: -I/usr/local/include/ -I/usr/local/include/PCSC
// #cgo openbsd LDFLAGS: -L/usr/local/lib/ -lpcsclite
// #cgo darwin LDFLAGS: -framework PCSC
// #include <stdlib.h>
// #include <PCSC/winscard.h>
// #include <PCSC/wintypes.h>
import "C"

import (
	"bytes"
	"unsafe"
)

// rawContext is an open PC/SC resource manager context.
type rawContext struct{ ctx C.SCARDCONTEXT }

func rawEstablish() (*rawContext, error) {
	var ctx C.SCARDCONTEXT
	rc := C.SCardEstablishContext(C.SCARD_SCOPE_SYSTEM, nil, nil, &ctx)
	if err := rcError(int64(rc)); err != nil {
		return nil, err
	}
	return &rawContext{ctx: ctx}, nil
}

func (c *rawContext) release() {
	C.SCardReleaseContext(c.ctx)
}

// readers lists the reader names; none is not an error.
func (c *rawContext) readers() ([]string, error) {
	var n C.DWORD
	rc := C.SCardListReaders(c.ctx, nil, nil, &n)
	if uint32(rc) == pcscNoReaders {
		return nil, nil
	}
	if err := rcError(int64(rc)); err != nil {
		return nil, err
	}
	buf := make([]byte, n)
	rc = C.SCardListReaders(c.ctx, nil, (*C.char)(unsafe.Pointer(&buf[0])), &n)
	if uint32(rc) == pcscNoReaders {
		return nil, nil
	}
	if err := rcError(int64(rc)); err != nil {
		return nil, err
	}
	var names []string
	for _, b := range bytes.Split(buf[:n], []byte{0}) {
		if len(b) > 0 {
			names = append(names, string(b))
		}
	}
	return names, nil
}

// rawConn is an exclusive T=1 connection to the card in one reader.
type rawConn struct{ h C.SCARDHANDLE }

func (c *rawContext) connect(reader string) (*rawConn, error) {
	name := C.CString(reader)
	defer C.free(unsafe.Pointer(name))

	var h C.SCARDHANDLE
	var proto C.DWORD
	rc := C.SCardConnect(c.ctx, name, C.SCARD_SHARE_EXCLUSIVE,
		C.SCARD_PROTOCOL_T1, &h, &proto)
	if err := rcError(int64(rc)); err != nil {
		return nil, err
	}
	return &rawConn{h: h}, nil
}

func (c *rawConn) close() {
	C.SCardDisconnect(c.h, C.SCARD_LEAVE_CARD)
}

// closeReset disconnects and resets the card, which drops any PIN
// verification and management key authentication it still holds.
func (c *rawConn) closeReset() {
	C.SCardDisconnect(c.h, C.SCARD_RESET_CARD)
}

// transmit sends one short command APDU and returns the response data and
// status word, following 61xx with GET RESPONSE.
func (c *rawConn) transmit(cmd []byte) ([]byte, uint16, error) {
	var out []byte
	for {
		var resp [C.MAX_BUFFER_SIZE_EXTENDED]byte
		n := C.DWORD(len(resp))
		rc := C.SCardTransmit(c.h, C.SCARD_PCI_T1,
			(*C.BYTE)(&cmd[0]), C.DWORD(len(cmd)), nil,
			(*C.BYTE)(&resp[0]), &n)
		if err := rcError(int64(rc)); err != nil {
			return nil, 0, err
		}
		if n < 2 {
			return nil, 0, errShortResponse
		}
		out = append(out, resp[:n-2]...)
		sw := uint16(resp[n-2])<<8 | uint16(resp[n-1])
		if sw>>8 != 0x61 {
			return out, sw, nil
		}
		cmd = []byte{0x00, 0xc0, 0x00, 0x00, 0x00}
	}
}
