// Package virtualtest inserts virtual PIV cards into the readers of a
// running pcscd, for tests that talk to cards the way custos does: through
// PC/SC, with piv-go.
//
// The readers are vsmartcard vpcd readers. Which ones to use comes from
// the environment variable CUSTOS_VPCD_PORTS, a comma-separated list of
// port=reader pairs, for example
//
//	CUSTOS_VPCD_PORTS="35963=Virtual PCD 00 00,35964=Virtual PCD 00 01"
//
// .ci/with-pcscd starts a private pcscd with six such readers and sets it.
// Without it, the stock vpcd configuration of Debian's vsmartcard-vpcd
// package (two readers on ports 35963 and 35964) is tried.
//
// Test processes share the readers: each reader is taken with a lock file
// in CUSTOS_VPCD_LOCKDIR (default $TMPDIR/custos-vpcd-locks, which
// .ci/with-pcscd uses too), so parallel tests and test binaries wait for a
// free reader instead of fighting over one.
//
// When pcscd or vpcd is missing, Start skips the test, except under
// CUSTOS_INTEGRATION=1, where it fails it.
package virtualtest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"custos/smartcard/virtual"
	"custos/smartcard/virtual/internal/pcsc"
)

// Environment variables read by this package.
const (
	EnvPorts       = "CUSTOS_VPCD_PORTS"
	EnvLockDir     = "CUSTOS_VPCD_LOCKDIR"
	EnvIntegration = "CUSTOS_INTEGRATION"
)

// defaultPorts is the reader layout of vsmartcard-vpcd's own
// configuration file.
const defaultPorts = "35963=Virtual PCD 00 00,35964=Virtual PCD 00 01"

// How long Start waits for a free reader, and for pcscd to see a card
// come or go.
var (
	readerWait   = 3 * time.Minute
	presenceWait = 15 * time.Second
)

// Inserted is a virtual card in a reader of pcscd.
type Inserted struct {
	Card   *virtual.Card
	Reader string // PC/SC reader name, for piv.Open
	Serial uint32
	Port   int // vpcd TCP port of the reader

	// Pull takes the card out of the reader now and waits until pcscd
	// sees it gone. Pulling a pulled card does nothing.
	Pull func()
	// Reinsert puts the card back and waits until pcscd sees it.
	// Reinserting an inserted card does nothing.
	Reinsert func()
	// PullAfter arms a fault: the card answers the next n command APDUs,
	// then is pulled when the one after arrives, which it never sees.
	// PullAfter(0) pulls on the next command; a negative n disarms the
	// fault. Reinsert the card afterwards (or Pull it) to wait for pcscd
	// to notice.
	PullAfter func(n int)
	// Commands returns how many command APDUs the card has been sent
	// since it was first inserted, counting those a fault swallowed.
	Commands func() int
}

// Option changes how Start makes its cards.
type Option func(*config)

type config struct {
	cardOpts []virtual.Option
}

// WithCardOptions passes options (firmware version, serial) to
// virtual.New for every card Start makes.
func WithCardOptions(opts ...virtual.Option) Option {
	return func(c *config) { c.cardOpts = append(c.cardOpts, opts...) }
}

// Start inserts n fresh virtual cards into n distinct vpcd readers of the
// running pcscd and returns them once pcscd lists each card as present.
// It skips the test when pcscd or vpcd is not available (fails it under
// CUSTOS_INTEGRATION=1) and removes the cards and frees the readers at
// t.Cleanup.
func Start(t testing.TB, n int, opts ...Option) []Inserted {
	t.Helper()
	var cfg config
	for _, o := range opts {
		o(&cfg)
	}
	cards := make([]*virtual.Card, n)
	for i := range cards {
		c, err := virtual.New(cfg.cardOpts...)
		if err != nil {
			t.Fatalf("making virtual card: %v", err)
		}
		cards[i] = c
	}
	return Insert(t, cards...)
}

// Insert puts the given cards (for example loaded from state files with
// virtual.Open) into distinct free readers, as Start does.
func Insert(t testing.TB, cards ...*virtual.Card) []Inserted {
	t.Helper()
	readers := available(t)
	if len(cards) > len(readers) {
		unavailable(t, fmt.Sprintf("%d virtual cards wanted but %s lists only %d vpcd readers",
			len(cards), EnvPorts, len(readers)))
	}
	ctx, err := pcsc.Establish()
	if err != nil {
		unavailable(t, fmt.Sprintf("pcscd is not running (%v); run the tests under .ci/with-pcscd", err))
	}
	t.Cleanup(func() { ctx.Release() })
	for _, r := range readers {
		if _, err := ctx.Present(r.name); err != nil {
			unavailable(t, fmt.Sprintf("pcscd has no reader %q (%v); "+
				"is it running with the vpcd readers of %s?", r.name, err, EnvPorts))
		}
	}

	held := lockReaders(t, readers, len(cards))
	out := make([]Inserted, len(cards))
	for i, c := range cards {
		out[i] = insert(t, ctx, c, held[i])
	}
	return out
}

// Reader is a vpcd reader reserved for a test.
type Reader struct {
	Port int    // vpcd TCP port on 127.0.0.1
	Name string // PC/SC reader name
}

// Reserve takes one free vpcd reader for a test that inserts a card its
// own way, for example through "custos card serve-virtual", and frees it
// at t.Cleanup. It skips or fails as Start does when there is none.
func Reserve(t testing.TB) Reader {
	t.Helper()
	readers := available(t)
	ctx, err := pcsc.Establish()
	if err != nil {
		unavailable(t, fmt.Sprintf("pcscd is not running (%v); run the tests under .ci/with-pcscd", err))
	}
	defer ctx.Release()
	for _, r := range readers {
		if _, err := ctx.Present(r.name); err != nil {
			unavailable(t, fmt.Sprintf("pcscd has no reader %q (%v)", r.name, err))
		}
	}
	h := lockReaders(t, readers, 1)[0]
	t.Cleanup(func() { h.lock.Close() })
	return Reader{Port: h.port, Name: h.name}
}

// WaitCard waits until pcscd sees a card in the reader (present) or sees
// it gone, and fails the test after a while.
func WaitCard(t testing.TB, reader string, present bool) {
	t.Helper()
	ctx, err := pcsc.Establish()
	if err != nil {
		t.Fatalf("waiting for card in %q: %v", reader, err)
	}
	defer ctx.Release()
	wait, stop := context.WithTimeout(context.Background(), presenceWait)
	defer stop()
	if err := ctx.WaitPresent(wait, reader, present); err != nil {
		t.Fatal(err)
	}
}

// reader is one vpcd reader.
type reader struct {
	port int
	name string
}

// available parses CUSTOS_VPCD_PORTS.
func available(t testing.TB) []reader {
	t.Helper()
	spec := os.Getenv(EnvPorts)
	if spec == "" {
		spec = defaultPorts
	}
	readers, err := parsePorts(spec)
	if err != nil {
		t.Fatalf("reading %s: %v", EnvPorts, err)
	}
	return readers
}

// parsePorts parses "port=reader,port=reader".
func parsePorts(spec string) ([]reader, error) {
	var out []reader
	for _, item := range strings.Split(spec, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		p, name, found := strings.Cut(item, "=")
		port, err := strconv.Atoi(strings.TrimSpace(p))
		if !found || err != nil || port <= 0 || port > 65535 || strings.TrimSpace(name) == "" {
			return nil, fmt.Errorf("bad entry %q: want port=reader name", item)
		}
		out = append(out, reader{port: port, name: strings.TrimSpace(name)})
	}
	if len(out) == 0 {
		return nil, errors.New("no readers listed")
	}
	return out, nil
}

// unavailable skips the test, or fails it under CUSTOS_INTEGRATION=1.
func unavailable(t testing.TB, why string) {
	t.Helper()
	if os.Getenv(EnvIntegration) == "1" {
		t.Fatalf("virtual card unavailable under %s=1: %s", EnvIntegration, why)
	}
	t.Skipf("skipping: virtual card unavailable: %s", why)
}

// heldReader is a reader this process has locked.
type heldReader struct {
	reader
	lock *os.File
}

// lockReaders takes n free readers, waiting for other tests to free
// them. It takes all n at once or none, so that two tests wanting
// several readers each cannot starve one another.
func lockReaders(t testing.TB, readers []reader, n int) []heldReader {
	t.Helper()
	dir, err := lockDir()
	if err != nil {
		t.Fatalf("making vpcd lock directory: %v", err)
	}
	deadline := time.Now().Add(readerWait)
	for {
		var held []heldReader
		for _, r := range readers {
			if len(held) == n {
				break
			}
			f, err := tryLock(filepath.Join(dir, fmt.Sprintf("vpcd-%d.lock", r.port)))
			if err != nil {
				t.Fatalf("locking reader %q: %v", r.name, err)
			}
			if f != nil {
				held = append(held, heldReader{reader: r, lock: f})
			}
		}
		if len(held) == n {
			return held
		}
		for _, h := range held {
			h.lock.Close()
		}
		if time.Now().After(deadline) {
			t.Fatalf("only %d of %d vpcd readers free after %v: other tests hold the rest",
				len(held), n, readerWait)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func lockDir() (string, error) {
	dir := os.Getenv(EnvLockDir)
	if dir == "" {
		dir = filepath.Join(os.TempDir(), "custos-vpcd-locks")
	}
	return dir, os.MkdirAll(dir, 0o700)
}

// tryLock takes an exclusive flock on path without waiting. It returns
// nil, nil when another holder has it.
func tryLock(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	err = syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
	if errors.Is(err, syscall.EWOULDBLOCK) {
		f.Close()
		return nil, nil
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// slot runs one card in one reader.
type slot struct {
	t      testing.TB
	pc     *pcsc.Context
	card   *virtual.Card
	r      heldReader
	addr   string
	mu     sync.Mutex
	cancel context.CancelFunc
	done   chan struct{}
	// pullAfter is the number of commands still to answer before a
	// fault pulls the card; negative when no fault is armed.
	pullAfter atomic.Int64
	commands  atomic.Int64
	faulted   atomic.Bool // a fault pulled the card
	unexpect  error
}

func insert(t testing.TB, pc *pcsc.Context, card *virtual.Card, r heldReader) Inserted {
	t.Helper()
	s := &slot{t: t, pc: pc, card: card, r: r,
		addr: fmt.Sprintf("127.0.0.1:%d", r.port)}
	s.pullAfter.Store(-1)
	t.Cleanup(func() {
		s.pull()
		s.r.lock.Close()
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.unexpect != nil {
			t.Errorf("virtual card %d in %q stopped unexpectedly: %v", card.Serial(), r.name, s.unexpect)
		}
	})
	s.reinsert()
	return Inserted{
		Card:      card,
		Reader:    r.name,
		Serial:    card.Serial(),
		Port:      r.port,
		Pull:      s.pull,
		Reinsert:  s.reinsert,
		PullAfter: func(n int) { s.pullAfter.Store(int64(n)) },
		Commands:  func() int { return int(s.commands.Load()) },
	}
}

// before counts commands and fires an armed fault.
func (s *slot) before([]byte) bool {
	s.commands.Add(1)
	for {
		left := s.pullAfter.Load()
		if left < 0 {
			return true
		}
		if s.pullAfter.CompareAndSwap(left, left-1) {
			if left == 0 {
				s.faulted.Store(true)
			}
			return left > 0
		}
	}
}

func (s *slot) reinsert() {
	s.t.Helper()
	s.mu.Lock()
	if s.done != nil {
		if s.faulted.Load() {
			<-s.done // the fault fired: Serve is on its way out
		}
		select {
		case <-s.done:
		default:
			s.mu.Unlock()
			return
		}
		// Pulled, perhaps by a fault: let pcscd see the card gone
		// before it comes back, as a person's hand would.
		wait, stop := context.WithTimeout(context.Background(), presenceWait)
		err := s.pc.WaitPresent(wait, s.r.name, false)
		stop()
		if err != nil {
			s.mu.Unlock()
			s.t.Fatalf("reinserting virtual card %d: %v", s.card.Serial(), err)
		}
	}
	s.pullAfter.Store(-1)
	s.faulted.Store(false)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	s.cancel, s.done = cancel, done
	s.mu.Unlock()

	go func() {
		defer close(done)
		err := s.card.Serve(ctx, s.addr, virtual.BeforeCommand(s.before))
		if err != nil && !errors.Is(err, virtual.ErrPulled) {
			s.mu.Lock()
			s.unexpect = err
			s.mu.Unlock()
		}
	}()

	wait, stop := context.WithTimeout(context.Background(), presenceWait)
	defer stop()
	if err := s.pc.WaitPresent(wait, s.r.name, true); err != nil {
		s.t.Fatalf("inserting virtual card %d: %v", s.card.Serial(), err)
	}
}

func (s *slot) pull() {
	s.t.Helper()
	s.mu.Lock()
	cancel, done := s.cancel, s.done
	s.mu.Unlock()
	if done == nil {
		return
	}
	cancel()
	<-done

	wait, stop := context.WithTimeout(context.Background(), presenceWait)
	defer stop()
	if err := s.pc.WaitPresent(wait, s.r.name, false); err != nil {
		s.t.Errorf("pulling virtual card %d: %v", s.card.Serial(), err)
	}
}
