package ceremony

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"sort"
	"strconv"
	"sync"
	"syscall"
	"time"

	"custos/shares"
)

// The interactive ceremonies (Split, Recover, Drill, DrillCustodian) run as
// a sequence of named steps. Each step is announced on a screen, and the
// big ones are confirmed by the room before anything happens. After each
// step the ceremony's journal (see Journal) and the audit log say it is
// done. When a step fails, or the ceremony is interrupted (Ctrl-C, SIGTERM,
// a card pulled, a "no"), every secret in memory is cleared, and the
// screen, the journal and the audit log say where it stopped and what
// state every card and file is in. Running the ceremony again continues
// from there.

// Auditor is the ceremony's audit trail. Every step, every share
// collected and every stop is appended; entries never carry a secret.
// *AuditLog is one.
type Auditor interface {
	Append(e AuditEntry) (head string, err error)
}

// Events of the interactive ceremonies beyond those audit.go names.
const (
	EventStepDone     AuditEvent = "ceremony.step"
	EventAirGap       AuditEvent = "ceremony.air-gap"
	EventSecretErased AuditEvent = "secret.erased"
	EventKeyExported  AuditEvent = "key.exported"
)

// KillAtEnv is the environment variable the custos command reads for
// Options.KillAt, so tests can stop a ceremony dead at a chosen step.
const KillAtEnv = "CUSTOS_CEREMONY_KILL_AT"

// Options are what every ceremony needs besides its plan.
type Options struct {
	Prompter Prompter
	Audit    Auditor // nil: no audit trail is written
	// Interfaces lists network interfaces for the air-gap check; nil
	// means the system's.
	Interfaces   InterfaceLister
	AllowNetwork bool
	// Roots verify card attestations at enrolment; nil means Yubico's.
	Roots *x509.CertPool
	// Stopper, when set, lets another goroutine (a signal handler) stop
	// the ceremony while it waits on a prompt.
	Stopper *Stopper
	// KillAt is a test hook: the process kills itself (SIGKILL, no
	// clean-up) as step KillAt begins. Zero disables it.
	KillAt int
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// KillAtFromEnv reads KillAtEnv; 0 when unset or not a number.
func KillAtFromEnv() int {
	n, _ := strconv.Atoi(os.Getenv(KillAtEnv))
	return n
}

// Stopper stops a running ceremony from outside, as a signal handler
// does: the secrets are cleared and the stop is recorded at once.
type Stopper struct {
	mu   sync.Mutex
	stop func(error) error
}

// Stop stops the ceremony with cause and returns the stop error, or nil
// when no ceremony is running.
func (s *Stopper) Stop(cause error) error {
	s.mu.Lock()
	f := s.stop
	s.mu.Unlock()
	if f == nil {
		return nil
	}
	return f(cause)
}

func (s *Stopper) set(f func(error) error) {
	if s == nil {
		return
	}
	s.mu.Lock()
	s.stop = f
	s.mu.Unlock()
}

// StoppedError says a ceremony did not finish: at which step, why, and
// what state every card and file was left in.
type StoppedError struct {
	Ceremony string
	Step     string
	Cause    error
	State    []string
	Resume   string // what running it again will do
}

func (e *StoppedError) Error() string {
	return fmt.Sprintf("%s ceremony stopped at step %q: %v", e.Ceremony, e.Step, e.Cause)
}

func (e *StoppedError) Unwrap() error { return e.Cause }

// ErrDeclined is the cause of a stop when someone in the room answered no.
var ErrDeclined = errors.New("stopped at the room's request")

// crun is one running ceremony.
type crun struct {
	Options
	ctx   context.Context
	name  string
	j     *Journal
	setID shares.SetID

	mu    sync.Mutex
	step  int
	cur   string
	wipe  []func()
	state func() []string // describes cards and files, for a stop
	// present, when set, names the custodians (by share index) who took
	// part, for the transcript; nil means all of them.
	present map[int]bool
	resume  string
	stopped *StoppedError
}

func newRun(ctx context.Context, name string, opt Options) *crun {
	if opt.Now == nil {
		opt.Now = time.Now
	}
	r := &crun{Options: opt, ctx: ctx, name: name}
	opt.Stopper.set(r.stop)
	return r
}

func (r *crun) now() time.Time { return r.Now().UTC().Truncate(time.Second) }

// begin starts a step: it checks for an interruption, fires the test
// hook, and shows the step's screen.
func (r *crun) begin(step string, s Screen) error {
	if err := r.ctx.Err(); err != nil {
		return ErrInterrupted
	}
	r.mu.Lock()
	r.step++
	r.cur = step
	n := r.step
	r.mu.Unlock()
	if r.KillAt == n {
		syscall.Kill(os.Getpid(), syscall.SIGKILL)
		select {} // the signal arrives
	}
	if s.Title != "" {
		r.Prompter.Show(s)
	}
	return nil
}

// confirm asks the room; "no" stops the ceremony.
func (r *crun) confirm(q string) error {
	ok, err := r.Prompter.Confirm(q)
	if err != nil {
		return err
	}
	if !ok {
		return ErrDeclined
	}
	return r.ctx.Err()
}

// done records a finished step in the journal and the audit trail.
func (r *crun) done(step, detail string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.j != nil {
		r.j.Steps = append(r.j.Steps, JournalStep{Name: step, At: r.now(), Detail: detail})
		if err := r.j.Save(); err != nil {
			return err
		}
	}
	return r.audit(AuditEntry{Event: EventStepDone, Outcome: OutcomeOK,
		Slot: step, Detail: AuditText(r.name+": "+detail, MaxDetail)})
}

// audit appends an entry about this ceremony's set.
func (r *crun) audit(e AuditEntry) error {
	if r.Audit == nil {
		return nil
	}
	if e.SetID == (shares.SetID{}) {
		e.SetID = r.setID
	}
	if e.Outcome == "" {
		e.Outcome = OutcomeOK
	}
	if _, err := r.Audit.Append(e); err != nil {
		return fmt.Errorf("writing the audit log: %w", err)
	}
	return nil
}

// hold registers a clean-up that clears a secret when the ceremony ends
// or stops, whichever comes first.
func (r *crun) hold(wipe func()) {
	r.mu.Lock()
	r.wipe = append(r.wipe, wipe)
	r.mu.Unlock()
}

// forget clears every held secret now.
func (r *crun) forget() {
	r.mu.Lock()
	w := r.wipe
	r.wipe = nil
	r.mu.Unlock()
	for i := len(w) - 1; i >= 0; i-- {
		w[i]()
	}
}

// stop ends the ceremony early: secrets are cleared, and the journal, the
// audit trail and the screen say where it stopped and what state every
// card and file is in. It runs once; later calls return the same error.
func (r *crun) stop(cause error) error {
	r.forget()
	r.mu.Lock()
	if r.stopped != nil {
		r.mu.Unlock()
		return r.stopped
	}
	e := &StoppedError{Ceremony: r.name, Step: r.cur, Cause: cause, Resume: r.resume}
	if r.state != nil {
		e.State = r.state()
	}
	r.stopped = e
	if r.j != nil {
		r.j.Stopped = &JournalStep{Name: r.cur, At: r.now(), Detail: cause.Error()}
		r.j.Save() // best effort: the audit trail and screen still say it
	}
	outcome := OutcomeFailed
	if errors.Is(cause, ErrInterrupted) || errors.Is(cause, ErrDeclined) {
		outcome = OutcomeAborted
	}
	r.audit(AuditEntry{Event: EventCeremonyAborted, Outcome: outcome,
		Slot: r.cur, Detail: AuditText(r.name+" stopped at "+r.cur+": "+cause.Error(), MaxDetail)})
	r.mu.Unlock()
	r.Stopper.set(nil)
	r.showStop(e)
	return e
}

func (r *crun) showStop(e *StoppedError) {
	lines := []string{fmt.Sprintf("The %s ceremony stopped during: %s.", e.Ceremony, stepWords(e.Step)),
		"Why: " + causeWords(e.Cause), "",
		"Every secret this computer held in memory has been erased.", ""}
	if len(e.State) > 0 {
		lines = append(lines, "Where things stand now:")
		for _, s := range e.State {
			lines = append(lines, "  - "+s)
		}
		lines = append(lines, "")
	}
	if e.Resume != "" {
		lines = append(lines, e.Resume)
	}
	r.Prompter.Show(Screen{Title: "The ceremony has STOPPED", Lines: lines, Alarm: true})
}

func causeWords(err error) string {
	switch {
	case errors.Is(err, ErrInputEnded):
		return "the input ended (nothing more can be read from where the answers come from: " +
			"standard input was closed, or a file or pipe ran out of lines)."
	case errors.Is(err, ErrInterrupted):
		return "it was interrupted (Ctrl-C or a stop signal)."
	case errors.Is(err, ErrDeclined):
		return "someone answered no, so custos stopped as asked."
	}
	return err.Error()
}

// finish ends a ceremony that completed.
func (r *crun) finish() error {
	r.forget()
	r.Stopper.set(nil)
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.j != nil {
		r.j.Done = true
		r.j.Stopped = nil
		if err := r.j.Save(); err != nil {
			return err
		}
	}
	return r.audit(AuditEntry{Event: EventCeremonyFinished, Detail: r.name})
}

func joinLines(s []string) string {
	out := ""
	for i, l := range s {
		if i > 0 {
			out += "; "
		}
		out += l
	}
	return out
}

// stepWords turns a step name into words for the room.
func stepWords(step string) string {
	names := map[string]string{
		"":            "getting ready, before the first step",
		"preflight":   "checking the target and files before any custodian is called",
		"exporting":   "placing the key in its target",
		"discard":     "erasing the rebuilt key after the drill",
		"custodian":   "checking the custodian's share",
		"air-gap":     "the air-gap check",
		"plan":        "the plan check",
		"key":         "making or reading the master key",
		"check-value": "writing down the check value",
		"quorums":     "proving every quorum",
		"destroy":     "destroying the key in memory",
		"record":      "writing the set record",
		"transcript":  "printing the transcript",
		"collect":     "collecting shares",
		"rebuild":     "rebuilding the key",
		"export":      "placing the key in its target",
	}
	if w, ok := names[step]; ok {
		return w
	}
	return step
}

func sortedKeys(m map[int]bool) []int {
	var out []int
	for k := range m {
		out = append(out, k)
	}
	sort.Ints(out)
	return out
}
