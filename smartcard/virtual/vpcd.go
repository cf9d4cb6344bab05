package virtual

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
)

// ErrHungUp is returned by Serve when vpcd closes the connection, as
// when pcscd stops.
var ErrHungUp = errors.New("vpcd closed the connection")

// ErrPulled is returned by Serve when a BeforeCommand hook pulled the
// card.
var ErrPulled = errors.New("card pulled by BeforeCommand hook")

// vpcd control codes: a one-byte message from the reader.
const (
	vpcdPowerOff = 0x00
	vpcdPowerOn  = 0x01
	vpcdReset    = 0x02
	vpcdGetATR   = 0x04
)

// ServeOption changes how Serve runs.
type ServeOption func(*serveConfig)

type serveConfig struct {
	before func(apdu []byte) bool
}

// BeforeCommand calls f with every command APDU before the card handles
// it. When f returns false Serve drops the connection at once, without
// answering: the card is pulled from the reader in the middle of the
// exchange. Tests use it to pull a card after the Nth command.
func BeforeCommand(f func(apdu []byte) bool) ServeOption {
	return func(s *serveConfig) { s.before = f }
}

// Serve inserts the card into a vsmartcard vpcd reader: it dials vpcd at
// addr (host:port; the host must be a loopback address or localhost,
// since the card holds its private keys in the clear) and answers the reader until ctx is
// done (returning nil) or vpcd hangs up (returning an error wrapping
// ErrHungUp). The card loses power, and so its security status, whenever
// the connection ends.
//
// vpcd frames every message both ways with a two-byte big-endian length.
// A one-byte message from vpcd is a control code: power off, power on,
// reset (none answered) or a request for the ATR; anything longer is a
// command APDU, answered with the response APDU.
func (c *Card) Serve(ctx context.Context, addr string, opts ...ServeOption) error {
	var cfg serveConfig
	for _, o := range opts {
		o(&cfg)
	}
	addr = strings.Replace(addr, "localhost:", "127.0.0.1:", 1)
	if err := checkLoopback(addr); err != nil {
		return fmt.Errorf("serving virtual card: %w", err)
	}

	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("dialing vpcd at %s: %w", addr, err)
	}
	defer c.PowerOff()

	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	defer conn.Close()

	err = c.serveConn(conn, cfg)
	if ctx.Err() != nil {
		return nil
	}
	return fmt.Errorf("serving card %d at %s: %w", c.Serial(), addr, err)
}

// serveConn runs the vpcd protocol on one connection until it fails.
func (c *Card) serveConn(conn net.Conn, cfg serveConfig) error {
	var hdr [2]byte
	for {
		quickAck(conn)
		if _, err := io.ReadFull(conn, hdr[:]); err != nil {
			return hungUp(err)
		}
		msg := make([]byte, binary.BigEndian.Uint16(hdr[:]))
		quickAck(conn)
		if _, err := io.ReadFull(conn, msg); err != nil {
			return hungUp(err)
		}

		var reply []byte
		switch {
		case len(msg) == 0:
			continue
		case len(msg) == 1 && msg[0] == vpcdGetATR:
			reply = c.ATR()
		case len(msg) == 1:
			// Power off, power on and reset all start a fresh session.
			c.PowerOff()
			continue
		default:
			if cfg.before != nil && !cfg.before(msg) {
				return ErrPulled
			}
			reply = c.Transmit(msg)
		}

		frame := binary.BigEndian.AppendUint16(nil, uint16(len(reply)))
		frame = append(frame, reply...)
		_, err := conn.Write(frame)
		// Commands carry PINs and keys, responses shared secrets: clear
		// them (best effort; the kernel's socket buffers are out of reach).
		clear(msg)
		clear(reply)
		clear(frame)
		if err != nil {
			return hungUp(err)
		}
	}
}

func hungUp(err error) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return ErrHungUp
	}
	return fmt.Errorf("%w: %w", ErrHungUp, err)
}

// checkLoopback refuses an address that is not on this machine.
func checkLoopback(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("parsing vpcd address %q: %w", addr, err)
	}
	ip := net.ParseIP(host)
	if ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("vpcd address %q is not a loopback address; "+
			"a virtual card is only served on this machine", addr)
	}
	return nil
}
