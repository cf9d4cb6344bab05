package virtual

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"os"
	"sync"
)

// Defaults of a fresh card, as a fresh YubiKey ships.
var (
	// DefaultPIN is the PIN of a new or reset card.
	DefaultPIN = []byte("123456")
	// DefaultPUK is the PUK of a new or reset card.
	DefaultPUK = []byte("12345678")
	// DefaultManagementKey is the well-known YubiKey management key
	// (AES-192 from firmware 5.7, Triple-DES before).
	DefaultManagementKey = []byte{
		1, 2, 3, 4, 5, 6, 7, 8,
		1, 2, 3, 4, 5, 6, 7, 8,
		1, 2, 3, 4, 5, 6, 7, 8,
	}
)

const (
	defaultRetries = 3
	// maxObjectSize is the most object data (the value of the 53
	// template) the card stores, as a YubiKey 5.
	maxObjectSize = 3052
	// maxChain bounds a chained command, so that a runaway host cannot
	// make the card buffer without end.
	maxChain = 8192
)

// atr is the answer to reset of a YubiKey 5 (USB, CCID): T=1 offered, and
// "YubiKey" in the historical bytes, which some hosts look for.
var atr = []byte{
	0x3b, 0xfd, 0x13, 0x00, 0x00, 0x81, 0x31, 0xfe, 0x15, 0x80, 0x73, 0xc0,
	0x21, 0xc0, 0x57, 0x59, 0x75, 0x62, 0x69, 0x4b, 0x65, 0x79, 0x40,
}

// Card is one virtual PIV card's state and command handler. Its methods
// are safe for concurrent use; commands are handled one at a time.
type Card struct {
	mu sync.Mutex

	path  string // state file, "" for a card in memory
	saved []byte // the state as last written, to roll back to
	st    *state
	dirty bool // st changed by the command being handled

	sess session
}

// session is what the card forgets on power-off, reset and SELECT: the
// security status, a pending management key challenge, a chained
// command being collected and a response being fetched.
type session struct {
	applet     applet
	pinOK      bool // PIN verified
	pinFresh   bool // PIN verified and not yet used by a PIN-always key
	mgmtOK     bool // management key authenticated
	challenge  *mgmtChallenge
	chain      *command
	pendingOut []byte
}

type applet int

const (
	appletNone applet = iota
	appletPIV
	appletMgmt
)

// Option sets a property of a new card. Options have no effect on a card
// loaded from an existing state file.
type Option func(*state)

// WithVersion makes the card report firmware version major.minor.patch.
// Before 5.3 it has no GET METADATA; before 5.7 its default management key
// is Triple-DES and it has no Ed25519 or X25519.
func WithVersion(major, minor, patch byte) Option {
	return func(s *state) {
		s.Version = [3]byte{major, minor, patch}
		s.Mgmt.Alg = defaultMgmtAlg(s.Version)
	}
}

// WithSerial sets the card serial number instead of a random one.
func WithSerial(serial uint32) Option {
	return func(s *state) { s.Serial = serial }
}

// New returns a fresh card in memory: random serial, firmware 5.7.1,
// default PIN, PUK and management key, empty slots, and a new attestation
// key in slot f9 certified by a new virtual attestation CA.
func New(opts ...Option) (*Card, error) {
	st, err := newState(opts)
	if err != nil {
		return nil, fmt.Errorf("creating virtual card: %w", err)
	}
	c := &Card{st: st}
	c.sess = session{applet: appletPIV}
	return c, nil
}

// Open loads the card kept in the state file at statePath, or creates a
// fresh card there (mode 0600) when the file does not exist. Every command
// that changes the card rewrites the file atomically. Open refuses a state
// file that others can read or write.
//
// TODO: lock the state file, so that two processes serving the same card
// cannot overwrite each other's changes; today the last writer wins.
func Open(statePath string, opts ...Option) (*Card, error) {
	fi, err := os.Stat(statePath)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return create(statePath, opts)
	case err != nil:
		return nil, fmt.Errorf("opening virtual card state: %w", err)
	case fi.Mode().Perm()&0o077 != 0:
		return nil, fmt.Errorf("opening virtual card state %s: mode %04o "+
			"lets others read its private keys; run chmod 600 on it",
			statePath, fi.Mode().Perm())
	}

	st, raw, err := loadState(statePath)
	if err != nil {
		return nil, fmt.Errorf("loading virtual card state: %w", err)
	}
	c := &Card{path: statePath, st: st, saved: raw}
	c.sess = session{applet: appletPIV}
	return c, nil
}

func create(path string, opts []Option) (*Card, error) {
	st, err := newState(opts)
	if err != nil {
		return nil, fmt.Errorf("creating virtual card: %w", err)
	}
	raw, err := st.marshal()
	if err != nil {
		return nil, fmt.Errorf("encoding virtual card state: %w", err)
	}

	// O_EXCL first, so that two processes creating the same card do not
	// both believe they made it.
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, fmt.Errorf("creating virtual card state: %w", err)
	}
	f.Close()
	if err := writeFileAtomic(path, raw); err != nil {
		os.Remove(path)
		return nil, fmt.Errorf("writing virtual card state: %w", err)
	}
	c := &Card{path: path, st: st, saved: raw}
	c.sess = session{applet: appletPIV}
	return c, nil
}

// newState builds a fresh card.
func newState(opts []Option) (*state, error) {
	serial, err := randomSerial()
	if err != nil {
		return nil, err
	}
	st := &state{
		Notice:  stateNotice,
		Format:  stateFormat,
		Serial:  serial,
		Version: [3]byte{5, 7, 1},
		Keys:    map[string]*slotKey{},
		Objects: map[string]hexBytes{},
	}
	st.resetCredentials(defaultRetries, defaultRetries)
	for _, o := range opts {
		o(st)
	}
	if err := st.newAttestation(); err != nil {
		return nil, fmt.Errorf("making attestation key: %w", err)
	}
	return st, nil
}

// resetCredentials restores the default PIN, PUK and management key.
func (s *state) resetCredentials(pinRetries, pukRetries int) {
	s.PIN = secretRef{Value: padPIN(DefaultPIN), Retries: pinRetries,
		Remaining: pinRetries, IsDefault: true}
	s.PUK = secretRef{Value: padPIN(DefaultPUK), Retries: pukRetries,
		Remaining: pukRetries, IsDefault: true}
	s.Mgmt = mgmtKey{Alg: defaultMgmtAlg(s.Version),
		Key: bytes.Clone(DefaultManagementKey), Touch: touchNever, IsDefault: true}
}

// randomSerial picks an eight-digit serial, as YubiKeys have.
func randomSerial() (uint32, error) {
	n, err := rand.Int(rand.Reader, big.NewInt(90_000_000))
	if err != nil {
		return 0, fmt.Errorf("choosing serial: %w", err)
	}
	return uint32(n.Int64()) + 10_000_000, nil
}

// randomHex returns n random bytes in hex, for temporary file names.
func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// Serial returns the card serial number.
func (c *Card) Serial() uint32 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.st.Serial
}

// Version returns the firmware version the card reports.
func (c *Card) Version() (major, minor, patch byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	v := c.st.Version
	return v[0], v[1], v[2]
}

// ATR returns the answer to reset the card gives its reader.
func (c *Card) ATR() []byte { return bytes.Clone(atr) }

// PowerOff is what the reader does when it cuts power: the card forgets
// its security status and any half-received chained command.
func (c *Card) PowerOff() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.sess = session{applet: appletPIV}
}

// Transmit handles one command APDU and returns the response APDU, status
// word included. It never fails: errors become status words, as on a card.
func (c *Card) Transmit(apdu []byte) []byte {
	c.mu.Lock()
	defer c.mu.Unlock()

	r := c.handle(apdu)
	if c.dirty {
		c.dirty = false
		if err := c.persist(); err != nil {
			r = status(swMemoryFailure)
		}
	}
	return r.bytes()
}

// persist writes the state file after a change. When writing fails the
// card rolls back to the last written state and drops its security
// status, as a card whose memory write failed.
func (c *Card) persist() error {
	if c.path == "" {
		return nil
	}
	raw, err := c.st.marshal()
	if err == nil {
		err = writeFileAtomic(c.path, raw)
	}
	if err != nil {
		if old, _, lerr := decodeState(c.saved); lerr == nil {
			c.st = old
		}
		c.sess = session{applet: c.sess.applet}
		return err
	}
	c.saved = raw
	return nil
}

// handle runs one command: response chaining, command chaining, then the
// selected applet.
func (c *Card) handle(apdu []byte) response {
	cmd, err := parseCommand(apdu)
	if err != nil {
		return status(swWrongLength)
	}
	if cmd.cla&^0x10 != 0 {
		c.sess.chain = nil
		return status(swCLANotSupported)
	}

	if cmd.ins == 0xc0 { // GET RESPONSE, ISO/IEC 7816-4 section 7.6.1
		return c.getResponse(cmd)
	}
	c.sess.pendingOut = nil

	cmd, r, done := c.collectChain(cmd)
	if done {
		return r
	}
	if cmd.assembled {
		defer clear(cmd.data) // it may hold a private key or PINs
	}

	if cmd.ins == 0xa4 {
		r = c.selectApplet(cmd)
	} else {
		switch c.sess.applet {
		case appletPIV:
			r = c.piv(cmd)
		case appletMgmt:
			r = c.mgmtApplet(cmd)
		default:
			r = status(swINSNotSupported)
		}
	}
	if cmd.ins != 0x87 {
		c.sess.challenge = nil
	}
	return c.chunk(r, cmd)
}

// collectChain gathers the chunks of a chained command (CLA 10). It
// returns done with the answer to an intermediate chunk, or the whole
// command once its last chunk arrived. Nothing of a chained command is
// acted on before its last chunk, so a card pulled halfway changes
// nothing.
func (c *Card) collectChain(cmd command) (command, response, bool) {
	prev := c.sess.chain
	sameHeader := prev != nil && prev.ins == cmd.ins &&
		prev.p1 == cmd.p1 && prev.p2 == cmd.p2
	if prev != nil && !sameHeader {
		clear(prev.data)
		c.sess.chain = nil
		prev = nil
	}

	if cmd.chained() {
		if prev == nil {
			prev = &command{ins: cmd.ins, p1: cmd.p1, p2: cmd.p2}
			c.sess.chain = prev
		}
		if len(prev.data)+len(cmd.data) > maxChain {
			clear(prev.data)
			c.sess.chain = nil
			return cmd, status(swWrongLength), true
		}
		prev.data = append(prev.data, cmd.data...)
		return cmd, ok(nil), true
	}

	if prev != nil {
		c.sess.chain = nil
		data := make([]byte, 0, len(prev.data)+len(cmd.data))
		cmd.data = append(append(data, prev.data...), cmd.data...)
		cmd.assembled = true
		clear(prev.data)
	}
	return cmd, response{}, false
}

// chunk cuts a long response into what one response APDU carries and
// keeps the rest for GET RESPONSE (61xx).
func (c *Card) chunk(r response, cmd command) response {
	if r.sw != swOK {
		return r
	}
	max := maxOut(cmd)
	if len(r.data) <= max {
		return r
	}
	c.sess.pendingOut = r.data[max:]
	return response{data: r.data[:max], sw: moreData(len(r.data) - max)}
}

// getResponse returns the next part of a long response.
func (c *Card) getResponse(cmd command) response {
	rest := c.sess.pendingOut
	if rest == nil {
		return status(swConditionsNotMet)
	}
	max := maxOut(cmd)
	if len(rest) <= max {
		c.sess.pendingOut = nil
		return ok(rest)
	}
	c.sess.pendingOut = rest[max:]
	return response{data: rest[:max], sw: moreData(len(rest) - max)}
}

func maxOut(cmd command) int {
	if cmd.extended {
		if cmd.ne == 0 {
			return 65536
		}
		return cmd.ne
	}
	if cmd.ne == 0 {
		return 256
	}
	return cmd.ne
}

func moreData(left int) uint16 {
	if left > 0xff {
		return swMoreData
	}
	return swMoreData | uint16(left)
}

// Smart card application identifiers.
var (
	aidPIV  = []byte{0xa0, 0x00, 0x00, 0x03, 0x08}
	aidMgmt = []byte{0xa0, 0x00, 0x00, 0x05, 0x27, 0x47, 0x11, 0x17}
)

// selectApplet handles SELECT by AID (ISO/IEC 7816-4 section 7.1.1,
// SP 800-73-4 part 2 section 3.1.1). Selecting an applet, even the one
// already selected, clears the security status.
func (c *Card) selectApplet(cmd command) response {
	if cmd.p1 != 0x04 {
		return status(swIncorrectP1P2)
	}
	switch {
	case len(cmd.data) >= len(aidPIV) && bytes.HasPrefix(pivFullAID, cmd.data):
		c.sess = session{applet: appletPIV}
		return ok(pivSelectResponse())
	case bytes.Equal(cmd.data, aidMgmt):
		c.sess = session{applet: appletMgmt}
		return ok([]byte(mgmtVersionText(c.st.Version)))
	}
	return status(swNotFound)
}

// pivFullAID is the PIV AID with its version PIX (SP 800-73-4 part 1
// section 2.2).
var pivFullAID = []byte{0xa0, 0x00, 0x00, 0x03, 0x08, 0x00, 0x00, 0x10, 0x00, 0x01, 0x00}

// pivSelectResponse is the application property template a YubiKey
// returns: the PIX and the authority's AID.
func pivSelectResponse() []byte {
	inner := tlvBytes(0x4f, pivFullAID[5:])
	inner = appendTLV(inner, 0x79, tlvBytes(0x4f, aidPIV))
	return tlvBytes(0x61, inner)
}

func serialBytes(serial uint32) []byte {
	return binary.BigEndian.AppendUint32(nil, serial)
}
