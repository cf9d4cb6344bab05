package ceremony

// The audit log of the ceremonies.
//
// An audit log is a file of JSON Lines, one entry a line, that custos only
// ever appends to. Each entry carries the hash of the entry before it, and
// its own hash covers that, so an entry cannot be edited, removed, inserted
// or moved without the chain breaking at that place. The first entry
// starts the chain from a genesis value derived from the log's random ID,
// so entries cannot be spliced in from another log either.
//
// The hash of an entry is SHA-256 of the line "custos audit entry v1\n"
// followed by the entry's canonical form: the JSON of its fields in a fixed
// order, without spaces, without HTML escaping and without the "hash"
// field. The line written is that JSON with "hash" as its last field. The
// genesis value is SHA-256 of "custos audit genesis v1\n" and the log ID.
// So the chain can be checked with printf and sha256sum alone.
//
// The chain proves order and integrity, not authorship: anyone who can
// write the file can rewrite all of it and recompute every hash. That is
// why the hash of the last entry, the head, is printed on the ceremony
// transcript that the people present sign; a log that does not contain
// that head is not the log of that ceremony.
//
// Entries hold no secret. AuditEntry has typed fields for what a ceremony
// records and no map of arbitrary values; the free-text fields are short,
// printable and refused when they look like key material.

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"time"
	"unicode"
	"unicode/utf8"

	"custos/shares"
)

// AuditEvent names what an audit entry records, such as "share.stored".
// Events are lowercase words joined by dots and dashes, at most 32 bytes,
// so that they fit RFC 5424's MSGID.
type AuditEvent string

// The events the ceremonies record. Other events may be added; they must
// keep the form of these.
const (
	EventLogCreated       AuditEvent = "log.created"
	EventCeremonyStarted  AuditEvent = "ceremony.started"
	EventCeremonyFinished AuditEvent = "ceremony.finished"
	EventCeremonyAborted  AuditEvent = "ceremony.aborted"
	EventShareWritten     AuditEvent = "share.written"   // paper and text file
	EventShareStored      AuditEvent = "share.stored"    // on a card
	EventShareReadBack    AuditEvent = "share.read-back" // after writing
	EventShareOffered     AuditEvent = "share.offered"   // at a recovery
	EventShareRejected    AuditEvent = "share.rejected"
	EventQuorumProven     AuditEvent = "quorum.proven"
	EventSecretRebuilt    AuditEvent = "secret.rebuilt"
	EventCheckCompared    AuditEvent = "check.compared"
	EventKeyImported      AuditEvent = "hsm.imported"
	EventRecordWritten    AuditEvent = "record.written"
	EventDrillRecorded    AuditEvent = "drill.recorded"
)

// AuditOutcome says how the step an entry records ended.
type AuditOutcome string

// The outcomes of a step.
const (
	OutcomeOK      AuditOutcome = "ok"
	OutcomeFailed  AuditOutcome = "failed"  // it was tried and went wrong
	OutcomeRefused AuditOutcome = "refused" // custos would not do it
	OutcomeAborted AuditOutcome = "aborted" // a person stopped it
)

// AuditEntry is one line of the audit log. Append sets Seq, Time (when
// zero), Log, Prev and Hash; the caller sets the rest. Every field is
// public information: there is deliberately no field for a secret, a PIN
// or a share, and no map for arbitrary values.
type AuditEntry struct {
	Seq  uint64    // 1 for the first entry, then one more each entry
	Time time.Time // stored in UTC, to the microsecond
	Log  string    // the log's ID; only on the first entry

	Event     AuditEvent
	Outcome   AuditOutcome
	Actor     string       // who acted: the operator or a custodian
	SetID     shares.SetID // the share set concerned; zero for none
	Share     int          // a share index 1..255; 0 for none
	Custodian string       // the custodian concerned
	Card      uint32       // a card serial number; 0 for none
	Slot      string       // a card slot or HSM key label
	Media     string       // "paper", "card", "text", "scan", "hsm", ...
	Source    string       // the file, token or device used, by name
	Checks    []shares.CheckValue
	Detail    string // one short sentence, such as an error message

	Prev string // the hash of the entry before, lowercase hex
	Hash string // this entry's hash, lowercase hex
}

// wireEntry is the JSON form of an entry. Its field order is the
// canonical order; changing it changes every hash.
type wireEntry struct {
	Seq       uint64              `json:"seq"`
	Time      string              `json:"time"`
	Log       string              `json:"log,omitempty"`
	Event     AuditEvent          `json:"event"`
	Outcome   AuditOutcome        `json:"outcome"`
	Actor     string              `json:"actor,omitempty"`
	SetID     string              `json:"set_id,omitempty"`
	Share     int                 `json:"share,omitempty"`
	Custodian string              `json:"custodian,omitempty"`
	Card      uint32              `json:"card_serial,omitempty"`
	Slot      string              `json:"slot,omitempty"`
	Media     string              `json:"media,omitempty"`
	Source    string              `json:"source,omitempty"`
	Checks    []shares.CheckValue `json:"checks,omitempty"`
	Detail    string              `json:"detail,omitempty"`
	Prev      string              `json:"prev"`
	Hash      string              `json:"hash,omitempty"`
}

// auditTimeFormat is RFC 3339 in UTC with six fractional digits, the most
// RFC 5424 allows.
const auditTimeFormat = "2006-01-02T15:04:05.000000Z"

// Domain separators of the two hashes.
const (
	entryDomain   = "custos audit entry v1\n"
	genesisDomain = "custos audit genesis v1\n"
)

// maxLogLine bounds one line, far above what any valid entry needs.
const maxLogLine = 64 << 10

func (e *AuditEntry) wire() wireEntry {
	w := wireEntry{
		Seq: e.Seq, Time: e.Time.UTC().Format(auditTimeFormat), Log: e.Log,
		Event: e.Event, Outcome: e.Outcome, Actor: e.Actor,
		Share: e.Share, Custodian: e.Custodian, Card: e.Card, Slot: e.Slot,
		Media: e.Media, Source: e.Source, Checks: e.Checks,
		Detail: e.Detail, Prev: e.Prev, Hash: e.Hash,
	}
	if e.SetID != (shares.SetID{}) {
		w.SetID = strings.ToUpper(hex.EncodeToString(e.SetID[:]))
	}
	return w
}

func (w *wireEntry) entry() (AuditEntry, error) {
	t, err := time.Parse(auditTimeFormat, w.Time)
	if err != nil {
		return AuditEntry{}, fmt.Errorf("time %q is not in the form %s",
			w.Time, auditTimeFormat)
	}
	e := AuditEntry{
		Seq: w.Seq, Time: t, Log: w.Log, Event: w.Event, Outcome: w.Outcome,
		Actor: w.Actor, Share: w.Share, Custodian: w.Custodian, Card: w.Card,
		Slot: w.Slot, Media: w.Media, Source: w.Source, Checks: w.Checks,
		Detail: w.Detail, Prev: w.Prev, Hash: w.Hash,
	}
	if w.SetID != "" {
		if err := e.SetID.UnmarshalText([]byte(w.SetID)); err != nil {
			return AuditEntry{}, err
		}
	}
	return e, nil
}

// canonical returns the entry's JSON without a line break; with the hash
// left out it is what the hash covers.
func (w wireEntry) canonical(withHash bool) []byte {
	if !withHash {
		w.Hash = ""
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(w); err != nil {
		// Only strings, numbers and check values: this cannot fail.
		panic("ceremony: encoding audit entry: " + err.Error())
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
}

func (w wireEntry) hash() string {
	h := sha256.New()
	io.WriteString(h, entryDomain)
	h.Write(w.canonical(false))
	return hex.EncodeToString(h.Sum(nil))
}

// genesis returns the value the first entry of log id chains to.
func genesis(id string) string {
	sum := sha256.Sum256([]byte(genesisDomain + id))
	return hex.EncodeToString(sum[:])
}

// Field limits: room for a name or a sentence, not for a document.
const (
	maxNameLen   = 200 // names, sources, slots
	maxDetailLen = 600 // AuditEntry.Detail
)

// MaxDetail is the most bytes AuditEntry.Detail takes; MaxName the most
// any other text field takes.
const (
	MaxDetail = maxDetailLen
	MaxName   = maxNameLen
)

var eventPattern = regexp.MustCompile(`^[a-z][a-z0-9]*([.-][a-z0-9]+)*$`)

// ErrLooksSecret is wrapped by the error Append returns for text that looks
// like key material: a long run of letters and digits, a line of a share's
// text form, a QR payload or a PEM block. Entries never hold secrets; name
// the thing instead ("share-2-Bo.txt", "card 12345678").
var ErrLooksSecret = errors.New("looks like key material")

// validate checks what the caller set. Errors name the field and never
// quote its value, which might be the very secret being kept out.
func (e *AuditEntry) validate() error {
	switch {
	case len(e.Event) > 32 || !eventPattern.MatchString(string(e.Event)):
		return errors.New("event must be lowercase words joined by dots " +
			"or dashes, at most 32 bytes")
	case !validOutcome(e.Outcome):
		return fmt.Errorf("outcome must be %s, %s, %s or %s", OutcomeOK,
			OutcomeFailed, OutcomeRefused, OutcomeAborted)
	case e.Share < 0 || e.Share > 255:
		return fmt.Errorf("share index %d is outside 0..255", e.Share)
	}
	for _, c := range e.Checks {
		var m shares.CheckMethod
		if m.UnmarshalText([]byte(c.Method.String())) != nil {
			return fmt.Errorf("check value method %s is unknown", c.Method)
		}
		if len(c.Value) == 0 || len(c.Value) > 32 {
			return fmt.Errorf("check value %s has %d bytes; want 1 to 32",
				c.Method, len(c.Value))
		}
	}
	fields := []struct {
		name, value string
		max         int
	}{
		{"actor", e.Actor, maxNameLen}, {"custodian", e.Custodian, maxNameLen},
		{"slot", e.Slot, maxNameLen}, {"media", e.Media, maxNameLen},
		{"source", e.Source, maxNameLen}, {"detail", e.Detail, maxDetailLen},
	}
	for _, f := range fields {
		if err := checkText(f.value, f.max); err != nil {
			return fmt.Errorf("%s %w", f.name, err)
		}
	}
	return nil
}

func validOutcome(o AuditOutcome) bool {
	switch o {
	case OutcomeOK, OutcomeFailed, OutcomeRefused, OutcomeAborted:
		return true
	}
	return false
}

// checkText refuses text that does not belong in one line of a log: too
// long, not UTF-8, control or invisible characters, or key material.
func checkText(s string, max int) error {
	switch {
	case len(s) > max:
		return fmt.Errorf("has %d bytes; at most %d fit an audit entry",
			len(s), max)
	case !utf8.ValidString(s):
		return errors.New("is not valid UTF-8")
	}
	for _, r := range s {
		if r != ' ' && (!unicode.IsGraphic(r) || unicode.IsSpace(r)) {
			return fmt.Errorf("has a control or invisible character U+%04X",
				r)
		}
	}
	if looksSecret(s) {
		return fmt.Errorf("is refused: it %w", ErrLooksSecret)
	}
	return nil
}

// AuditText makes s fit a free-text field of an audit entry: control and
// invisible characters become spaces, runs of spaces one, and a long text
// is cut at a character boundary to limit bytes, ending in "...". It does
// not hide key material; Append still refuses that.
func AuditText(s string, limit int) string {
	s = strings.ToValidUTF8(s, "?")
	s = strings.Join(strings.FieldsFunc(s, func(r rune) bool {
		return r == ' ' || !unicode.IsGraphic(r) || unicode.IsSpace(r)
	}), " ")
	const more = "..."
	if len(s) <= limit {
		return s
	}
	if limit < len(more) {
		return ""
	}
	cut := limit - len(more)
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + more
}

// shareLine matches a line of a share's text form or QR payload.
var shareLine = regexp.MustCompile(`(?i)\d{3}:\s?[A-Z2-7]{5}(\s?[A-Z2-7]{5}){2}`)

// looksSecret is a best-effort guard against pasting key material into a
// text field: PEM blocks, share text and QR payloads, and runs of 24 or
// more base64 or hex characters that mix letters and digits. Names, file
// names, grouped set IDs and fingerprints pass.
func looksSecret(s string) bool {
	upper := strings.ToUpper(s)
	if strings.Contains(upper, "-----BEGIN") ||
		strings.Contains(upper, "CUSTOS PART") || shareLine.MatchString(s) {
		return true
	}
	tokens := strings.FieldsFunc(s, func(r rune) bool {
		return !(r < 0x80 && (unicode.IsLetter(r) || unicode.IsDigit(r) ||
			r == '+' || r == '='))
	})
	for _, t := range tokens {
		if len(t) < 24 {
			continue
		}
		digits, letters := 0, 0
		for _, r := range t {
			if unicode.IsDigit(r) {
				digits++
			} else if unicode.IsLetter(r) {
				letters++
			}
		}
		if digits >= 4 && letters >= 4 {
			return true
		}
	}
	return false
}

// LogFault is what is wrong with a broken audit log.
type LogFault int

// The faults VerifyLog tells apart.
const (
	FaultBadJSON    LogFault = iota + 1 // a line is not an entry at all
	FaultEdited                         // an entry's contents were changed
	FaultMisChained                     // an entry does not chain to the one before
	FaultRemoved                        // entries are missing
	FaultReordered                      // entries are out of order
	FaultDuplicated                     // an entry appears twice
	FaultTruncated                      // the last line was cut short
	FaultEmpty                          // the file holds no entry
	FaultChanged                        // the file changed under an open log
)

var faultNames = map[LogFault]string{
	FaultBadJSON: "bad JSON", FaultEdited: "edited",
	FaultMisChained: "broken chain", FaultRemoved: "entries removed",
	FaultReordered: "entries reordered", FaultDuplicated: "entry duplicated",
	FaultTruncated: "truncated last line", FaultEmpty: "empty",
	FaultChanged: "changed while open",
}

// String names the fault in a few words.
func (f LogFault) String() string {
	if s, ok := faultNames[f]; ok {
		return s
	}
	return fmt.Sprintf("LogFault(%d)", int(f))
}

// BrokenLogError names the first place where an audit log's chain breaks.
type BrokenLogError struct {
	Path   string
	Line   int    // 1-based line number in the file
	Seq    uint64 // the sequence number on that line; 0 if unreadable
	Fault  LogFault
	Reason string // what is wrong, in words
}

func (e *BrokenLogError) Error() string {
	where := fmt.Sprintf("line %d", e.Line)
	if e.Seq != 0 {
		where += fmt.Sprintf(" (entry %d)", e.Seq)
	}
	if e.Line == 0 {
		where = "file"
	}
	return fmt.Sprintf("audit log %s is broken at %s: %s: %s", e.Path, where,
		e.Fault, e.Reason)
}

// LogSummary describes a verified audit log, or, beside an error, the
// valid entries before the break.
type LogSummary struct {
	Path    string
	LogID   string
	Entries int       // valid entries
	First   time.Time // time of the first entry
	Last    time.Time // time of the last valid entry
	Head    string    // hash of the last valid entry; "" when none
	Size    int64     // bytes of the valid entries

	hashes []string // hashes[i] is entry i+1's
}

// Find returns the sequence number of the entry whose hash is h, as given
// on a transcript: any case, spaces ignored.
func (s *LogSummary) Find(h string) (seq uint64, ok bool) {
	h, err := ParseHash(h)
	if err != nil {
		return 0, false
	}
	for i, x := range s.hashes {
		if x == h {
			return uint64(i + 1), true
		}
	}
	return 0, false
}

// ParseHash normalises a hash as printed for people (grouped, any case)
// to the 64 lowercase hex digits the log stores.
func ParseHash(s string) (string, error) {
	h := strings.ToLower(strings.Join(strings.Fields(s), ""))
	if b, err := hex.DecodeString(h); err != nil || len(b) != sha256.Size {
		return "", errors.New("parsing hash: want 64 hex digits")
	}
	return h, nil
}

// chain checks entries in order and keeps the state of a valid prefix.
type chain struct {
	sum     LogSummary
	entries []AuditEntry // kept only when collect is set
	collect bool
}

// feed checks the lines of data, which must start where the valid prefix
// ended. It returns the first fault found, as a BrokenLogError without
// Path.
func (c *chain) feed(data []byte) *BrokenLogError {
	lines := bytes.SplitAfter(data, []byte("\n"))
	if n := len(lines); n > 0 && len(lines[n-1]) == 0 {
		lines = lines[:n-1]
	}
	for i, raw := range lines {
		lineNo := c.sum.Entries + 1
		if !bytes.HasSuffix(raw, []byte("\n")) {
			return c.truncated(lineNo, raw)
		}
		e, fault := c.check(lineNo, raw[:len(raw)-1], lines[i+1:])
		if fault != nil {
			return fault
		}
		c.accept(e, len(raw))
	}
	return nil
}

func (c *chain) accept(e AuditEntry, n int) {
	if c.sum.Entries == 0 {
		c.sum.LogID, c.sum.First = e.Log, e.Time
	}
	c.sum.Entries++
	c.sum.Last, c.sum.Head = e.Time, e.Hash
	c.sum.Size += int64(n)
	c.sum.hashes = append(c.sum.hashes, e.Hash)
	if c.collect {
		c.entries = append(c.entries, e)
	}
}

func (c *chain) truncated(lineNo int, raw []byte) *BrokenLogError {
	reason := "the line has no end: a write was cut short, or the " +
		"end of the file was cut off"
	var w wireEntry
	if json.Unmarshal(raw, &w) == nil && w.Seq != 0 {
		reason = "the line has no line break at its end: the file was " +
			"cut off or edited"
	}
	return &BrokenLogError{Line: lineNo, Fault: FaultTruncated,
		Reason: reason}
}

// check parses and checks one line without its line break. rest holds the
// lines after it, to tell removed entries from reordered ones.
func (c *chain) check(lineNo int, raw []byte, rest [][]byte) (AuditEntry, *BrokenLogError) {
	broken := func(seq uint64, f LogFault, format string, a ...any) *BrokenLogError {
		return &BrokenLogError{Line: lineNo, Seq: seq, Fault: f,
			Reason: fmt.Sprintf(format, a...)}
	}
	w, err := parseLine(raw)
	if err != nil {
		return AuditEntry{}, broken(0, FaultBadJSON, "%v", err)
	}
	if !bytes.Equal(w.canonical(true), raw) {
		return AuditEntry{}, broken(w.Seq, FaultEdited, "the line is not "+
			"in the exact form custos writes: it was edited")
	}
	e, err := w.entry()
	if err == nil {
		err = e.validate()
	}
	if err != nil {
		return AuditEntry{}, broken(w.Seq, FaultEdited, "%v", err)
	}
	if w.hash() != w.Hash {
		return AuditEntry{}, broken(w.Seq, FaultEdited, "its contents do "+
			"not match its hash: it was changed after it was written")
	}

	if f := c.order(lineNo, w, rest, broken); f != nil {
		return AuditEntry{}, f
	}
	return e, nil
}

// order checks that w comes next in the chain.
func (c *chain) order(lineNo int, w wireEntry, rest [][]byte,
	broken func(uint64, LogFault, string, ...any) *BrokenLogError) *BrokenLogError {
	want := uint64(c.sum.Entries) + 1
	switch {
	case w.Seq == 0:
		return broken(0, FaultEdited, "the entry has no sequence number")
	case w.Seq > want && later(rest, want):
		return broken(w.Seq, FaultReordered, "entry %d was expected "+
			"here and comes later in the file", want)
	case w.Seq > want && want == 1:
		return broken(w.Seq, FaultRemoved, "the log starts at entry %d: "+
			"the entries before it were removed", w.Seq)
	case w.Seq > want:
		return broken(w.Seq, FaultRemoved, "entry %d was expected: "+
			"%s removed", want, span(want, w.Seq-1))
	case w.Seq < want && w.Hash == c.sum.hashes[w.Seq-1]:
		return broken(w.Seq, FaultDuplicated, "it is a copy of line %d",
			w.Seq)
	case w.Seq < want:
		return broken(w.Seq, FaultDuplicated, "entry %d is already on "+
			"line %d; entry %d was expected", w.Seq, w.Seq, want)
	}

	if want == 1 {
		switch {
		case w.Event != EventLogCreated || len(w.Log) != 32:
			return broken(w.Seq, FaultEdited, "the first entry must be "+
				"%s with the log's ID", EventLogCreated)
		case w.Prev != genesis(w.Log):
			return broken(w.Seq, FaultMisChained, "the first entry does "+
				"not chain to the log's genesis value")
		}
		return nil
	}
	switch {
	case w.Log != "":
		return broken(w.Seq, FaultEdited, "only the first entry carries "+
			"the log ID")
	case w.Prev != c.sum.Head:
		return broken(w.Seq, FaultMisChained, "it does not chain to "+
			"entry %d on line %d: one of the two was replaced", want-1,
			lineNo-1)
	}
	return nil
}

func span(from, to uint64) string {
	if from == to {
		return fmt.Sprintf("entry %d was", from)
	}
	return fmt.Sprintf("entries %d to %d were", from, to)
}

// later reports whether entry seq is on one of lines.
func later(lines [][]byte, seq uint64) bool {
	for _, l := range lines {
		var w struct {
			Seq uint64 `json:"seq"`
		}
		if json.Unmarshal(l, &w) == nil && w.Seq == seq {
			return true
		}
	}
	return false
}

// parseLine decodes one entry strictly: one JSON object of known fields.
func parseLine(raw []byte) (wireEntry, error) {
	var w wireEntry
	if len(raw) > maxLogLine {
		return w, fmt.Errorf("the line has %d bytes, more than any entry",
			len(raw))
	}
	if len(bytes.TrimSpace(raw)) == 0 {
		return w, errors.New("the line is blank")
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&w); err != nil {
		return w, fmt.Errorf("the line is not an audit entry: %v", err)
	}
	if dec.More() {
		return w, errors.New("the line holds more than one JSON value")
	}
	return w, nil
}

// readLog checks a whole log read from r.
func readLog(r io.Reader, collect bool) (*chain, error) {
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, err
	}
	c := &chain{collect: collect}
	if len(data) == 0 {
		return c, &BrokenLogError{Fault: FaultEmpty,
			Reason: "the file holds no entry"}
	}
	if f := c.feed(data); f != nil {
		return c, f
	}
	return c, nil
}

// VerifyLog checks the whole chain of the audit log at path. A broken log
// gives a *BrokenLogError naming the first broken line, and a summary of
// the valid entries before it. While it reads, appenders wait.
func VerifyLog(path string) (*LogSummary, error) {
	c, err := verifyFile(path, false)
	if c == nil {
		return nil, err
	}
	return &c.sum, err
}

// ReadAudit verifies the audit log at path like VerifyLog and returns its
// entries, for a transcript or a report. On a broken log it returns the
// valid entries before the break with the error.
func ReadAudit(path string) ([]AuditEntry, *LogSummary, error) {
	c, err := verifyFile(path, true)
	if c == nil {
		return nil, nil, err
	}
	return c.entries, &c.sum, err
}

func verifyFile(path string, collect bool) (*chain, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("opening audit log: %w", err)
	}
	defer f.Close()
	if err := flock(f, syscall.LOCK_SH); err != nil {
		return nil, fmt.Errorf("locking audit log %s: %w", path, err)
	}
	c, err := readLog(f, collect)
	if c == nil {
		return nil, fmt.Errorf("reading audit log %s: %w", path, err)
	}
	c.sum.Path = path
	var b *BrokenLogError
	if errors.As(err, &b) {
		b.Path = path
	}
	return c, err
}

// AuditOptions configures an audit log opened for appending.
type AuditOptions struct {
	// Syslog, when not empty, is the path of a local syslog socket, such
	// as DefaultSyslogSocket, that receives every entry as well.
	Syslog string
	// Actor is recorded on the entry that creates a new log.
	Actor string

	now  func() time.Time     // tests set a clock
	sync func(*os.File) error // tests watch or fail fsync
}

// AuditLog is an audit log open for appending. Its methods may be called
// from several goroutines, and several processes may append to one file:
// each append holds an exclusive lock on the file.
type AuditLog struct {
	path string
	opts AuditOptions

	mu     sync.Mutex
	f      *os.File
	chain  chain
	failed error // set when an append went wrong half way
	syslog *syslogWriter
}

// OpenAudit opens the audit log at path for appending, creating it with
// its first entry when it does not exist. An existing log is verified
// first; a broken one is refused with a *BrokenLogError.
func OpenAudit(path string, opts AuditOptions) (*AuditLog, error) {
	if opts.now == nil {
		opts.now = time.Now
	}
	if opts.sync == nil {
		opts.sync = (*os.File).Sync
	}
	l := &AuditLog{path: path, opts: opts}
	if err := checkText(opts.Actor, maxNameLen); err != nil {
		return nil, fmt.Errorf("opening audit log %s: actor %w", path, err)
	}

	// The socket is tried first, so a wrong path creates no log.
	if opts.Syslog != "" {
		var err error
		if l.syslog, err = dialSyslog(opts.Syslog); err != nil {
			return nil, err
		}
	}
	first, err := l.open()
	if err != nil {
		l.Close()
		return nil, err
	}
	if l.syslog != nil {
		l.syslog.logID = l.chain.sum.LogID
		if first != nil {
			if err := l.syslog.send(*first); err != nil {
				l.Close()
				return nil, err
			}
		}
	}
	return l, nil
}

// open opens or creates the file and returns the first entry when it
// created the log.
func (l *AuditLog) open() (*AuditEntry, error) {
	f, created, err := openOrCreate(l.path)
	if err != nil {
		return nil, err
	}
	l.f = f
	first, err := l.start(created)
	if err != nil && created {
		os.Remove(l.path)
	}
	return first, err
}

// openOrCreate opens path for appending, or creates it new. The creator
// holds the lock from the start, so no one reads the file empty.
func openOrCreate(path string) (*os.File, bool, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_APPEND|os.O_CREATE|os.O_EXCL,
		0o644)
	if err == nil {
		if err := flock(f, syscall.LOCK_EX); err != nil {
			f.Close()
			os.Remove(path)
			return nil, false, fmt.Errorf("locking audit log %s: %w", path,
				err)
		}
		return f, true, nil
	}
	if !errors.Is(err, fs.ErrExist) {
		return nil, false, fmt.Errorf("creating audit log: %w", err)
	}

	f, err = os.OpenFile(path, os.O_RDWR|os.O_APPEND, 0)
	if err != nil {
		return nil, false, fmt.Errorf("opening audit log: %w", err)
	}
	fi, err := f.Stat()
	if err == nil && !fi.Mode().IsRegular() {
		err = errors.New("not a regular file")
	}
	if err == nil {
		err = lockWritten(f)
	}
	if err != nil {
		f.Close()
		return nil, false, fmt.Errorf("opening audit log %s: %w", path, err)
	}
	return f, false, nil
}

// lockWritten locks f. A log another process has just created may be
// empty for a moment, before its creator takes the lock; lockWritten
// waits up to a second for its first entry.
func lockWritten(f *os.File) error {
	for try := 0; ; try++ {
		if err := flock(f, syscall.LOCK_EX); err != nil {
			return err
		}
		fi, err := f.Stat()
		if err != nil || fi.Size() > 0 || try == 50 {
			return err
		}
		flock(f, syscall.LOCK_UN)
		time.Sleep(20 * time.Millisecond)
	}
}

// start writes the first entry of a new log, or verifies an existing one.
// It is called with the lock held and releases it.
func (l *AuditLog) start(created bool) (*AuditEntry, error) {
	defer flock(l.f, syscall.LOCK_UN)
	if !created {
		c, err := readLog(l.f, false)
		if c == nil {
			return nil, fmt.Errorf("reading audit log %s: %w", l.path, err)
		}
		if err != nil {
			return nil, l.refuse(err)
		}
		l.chain = *c
		return nil, nil
	}

	id := make([]byte, 16)
	rand.Read(id)
	first := AuditEntry{Log: hex.EncodeToString(id), Event: EventLogCreated,
		Outcome: OutcomeOK, Actor: l.opts.Actor,
		Detail: "custos audit log created"}
	if err := l.write(&first); err != nil {
		return nil, err
	}
	return &first, syncDir(filepath.Dir(l.path))
}

// refuse explains why a broken log takes no more entries.
func (l *AuditLog) refuse(err error) error {
	var b *BrokenLogError
	if errors.As(err, &b) {
		b.Path = l.path
	}
	return fmt.Errorf("refusing to append: %w", err)
}

// Append adds e to the log, fsyncs the file and returns the new head.
// Append sets e's Seq, Log, Prev and Hash, and its Time when zero. When
// the entry is in the file but could not be sent to syslog, Append returns
// the head and a *SyslogError.
func (l *AuditLog) Append(e AuditEntry) (head string, err error) {
	if err := e.validate(); err != nil {
		return "", fmt.Errorf("appending to audit log %s: %w", l.path, err)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f == nil {
		return "", fmt.Errorf("appending to audit log %s: the log is closed",
			l.path)
	}
	if l.failed != nil {
		return "", fmt.Errorf("appending to audit log %s: an earlier "+
			"append failed: %w", l.path, l.failed)
	}

	if err := flock(l.f, syscall.LOCK_EX); err != nil {
		return "", fmt.Errorf("locking audit log %s: %w", l.path, err)
	}
	err = l.catchUp()
	if err == nil {
		e.Log = ""
		err = l.write(&e)
	}
	flock(l.f, syscall.LOCK_UN)
	if err != nil {
		return "", err
	}

	if l.syslog != nil {
		if err := l.syslog.send(e); err != nil {
			return e.Hash, err
		}
	}
	return e.Hash, nil
}

// catchUp verifies what other processes appended since this log last
// looked, so that the next entry chains to the true head.
func (l *AuditLog) catchUp() error {
	fi, err := l.f.Stat()
	if err != nil {
		return fmt.Errorf("reading audit log %s: %w", l.path, err)
	}
	size := l.chain.sum.Size
	switch {
	case fi.Size() == size:
		return nil
	case fi.Size() < size:
		return l.refuse(&BrokenLogError{Line: l.chain.sum.Entries,
			Fault: FaultChanged, Reason: fmt.Sprintf("the file shrank from "+
				"%d to %d bytes while it was open", size, fi.Size())})
	}
	data := make([]byte, fi.Size()-size)
	if _, err := l.f.ReadAt(data, size); err != nil {
		return fmt.Errorf("reading audit log %s: %w", l.path, err)
	}
	if f := l.chain.feed(data); f != nil {
		return l.refuse(f)
	}
	return nil
}

// write chains e to the head, writes it as one line and fsyncs the file.
// It is called with the lock held. A failure after the write began leaves
// the log refusing further appends: the file may hold the entry or part of
// it, and only a verification can tell.
func (l *AuditLog) write(e *AuditEntry) error {
	e.Seq = uint64(l.chain.sum.Entries) + 1
	if e.Time.IsZero() {
		e.Time = l.opts.now()
	}
	e.Time = e.Time.UTC().Truncate(time.Microsecond)
	e.Prev = l.chain.sum.Head
	if e.Seq == 1 {
		e.Prev = genesis(e.Log)
	}
	w := e.wire()
	e.Hash = w.hash()
	w.Hash = e.Hash
	line := append(w.canonical(true), '\n')

	_, err := l.f.Write(line)
	if err == nil {
		err = l.opts.sync(l.f)
	}
	if err != nil {
		l.failed = err
		return fmt.Errorf("writing audit log %s: %w", l.path, err)
	}
	l.chain.accept(*e, len(line))
	return nil
}

// Head returns the hash of the log's last entry, lowercase hex.
func (l *AuditLog) Head() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.chain.sum.Head
}

// Seq returns the sequence number of the log's last entry.
func (l *AuditLog) Seq() uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return uint64(l.chain.sum.Entries)
}

// ID returns the log's random ID, from its first entry.
func (l *AuditLog) ID() string { return l.chain.sum.LogID }

// Path returns the file the log is in.
func (l *AuditLog) Path() string { return l.path }

// Close closes the log file and the syslog connection.
func (l *AuditLog) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.syslog != nil {
		l.syslog.close()
		l.syslog = nil
	}
	if l.f == nil {
		return nil
	}
	err := l.f.Close()
	l.f = nil
	if err != nil {
		return fmt.Errorf("closing audit log %s: %w", l.path, err)
	}
	return nil
}

// flock takes or releases an advisory lock on the whole file.
//
// TODO: flock(2) is Unix only; a Windows build needs LockFileEx.
func flock(f *os.File, how int) error {
	for {
		err := syscall.Flock(int(f.Fd()), how)
		if err != syscall.EINTR {
			return err
		}
	}
}

// syncDir makes a new directory entry durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("syncing directory %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("syncing directory %s: %w", dir, err)
	}
	return nil
}

// Summary says in one line what the entry records, for syslog messages
// and transcripts.
func (e *AuditEntry) Summary() string {
	var parts []string
	add := func(format string, a ...any) {
		parts = append(parts, fmt.Sprintf(format, a...))
	}
	if e.SetID != (shares.SetID{}) {
		add("set %s", e.SetID.Short())
	}
	if e.Share != 0 {
		add("share %d", e.Share)
	}
	if e.Custodian != "" {
		add("custodian %s", e.Custodian)
	}
	if e.Card != 0 {
		add("card %d", e.Card)
	}
	if e.Slot != "" {
		add("slot %s", e.Slot)
	}
	if e.Media != "" {
		add("on %s", e.Media)
	}
	if e.Source != "" {
		add("from %s", e.Source)
	}
	for _, c := range e.Checks {
		add("%s", c)
	}
	if e.Actor != "" {
		add("by %s", e.Actor)
	}

	s := fmt.Sprintf("%s %s", e.Event, e.Outcome)
	if len(parts) > 0 {
		s += ": " + strings.Join(parts, ", ")
	}
	if e.Detail != "" {
		s += ": " + e.Detail
	}
	return s
}
