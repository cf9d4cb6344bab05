//go:build !cgo || !(linux || freebsd || openbsd || darwin)

package smartcard

import "errors"

// TODO: the raw PC/SC probe (busy/absent codes, GET METADATA) has only a
// cgo pcsc-lite implementation; Windows would need winscard.dll calls.
var errNoRawPCSC = errors.New("raw pc/sc access is not built on this platform")

type rawContext struct{}

type rawConn struct{}

func rawEstablish() (*rawContext, error) { return nil, errNoRawPCSC }

func (c *rawContext) release() {}

func (c *rawContext) readers() ([]string, error) { return nil, errNoRawPCSC }

func (c *rawContext) connect(string) (*rawConn, error) { return nil, errNoRawPCSC }

func (c *rawConn) close() {}

func (c *rawConn) closeReset() {}

func (c *rawConn) transmit([]byte) ([]byte, uint16, error) { return nil, 0, errNoRawPCSC }
