package ceremony

// The inventory of share sets: which sets exist, who holds their shares on
// what, and whether they have been drilled recently enough to trust that
// they still rebuild their keys.

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"custos/shares"
)

// DefaultMaxDrillAge is how old a drill may be before status warns: a
// year, so that every set is rehearsed at least once between audits.
const DefaultMaxDrillAge = 365 * 24 * time.Hour

// DefaultAuditFile is where a ceremony keeps its audit log unless told
// otherwise: beside the set record.
const DefaultAuditFile = "audit.log"

// StatusOptions sets what counts as overdue, and where drills are
// confirmed.
type StatusOptions struct {
	MaxDrillAge time.Duration // 0 means DefaultMaxDrillAge
	Now         time.Time     // the day of the report; zero means now
	// Audit is the audit log every set's drills are checked against.
	// Empty means each set's own DefaultAuditFile beside its record,
	// when there is one.
	Audit string
}

// DrillState says when a set or a custodian was last drilled.
type DrillState struct {
	Last    *time.Time    // nil when never
	Age     time.Duration // since Last; 0 when never
	Overdue bool          // never, or longer ago than the maximum age
	Future  bool          // Last is after the report's time: a clock was wrong
	// Unlogged says the audit log was read and does not show the drill
	// set.json records: the record was edited, or the drill was logged
	// elsewhere. Such a drill counts as overdue.
	Unlogged bool
}

// CustodianStatus is one custodian of a set and their last drill.
type CustodianStatus struct {
	Custodian
	Drill DrillState
}

// SetStatus is one set record and what needs attention about it.
type SetStatus struct {
	Path       string
	Record     *SetRecord
	Drill      DrillState // the last drill that rebuilt the whole set
	Custodians []CustodianStatus
	// AuditLog is the audit log the drills were checked against; empty
	// when none was found, and the drills are as set.json says.
	AuditLog string
	Warnings []string // each names the set; none means all is well
}

// StatusReport is the inventory of every set record under a directory.
type StatusReport struct {
	Sets []SetStatus
	// Unreadable lists the records that could not be read, each error
	// naming its file.
	Unreadable []error
}

// FindRecords returns the set records (files named set.json) under root,
// at any depth, sorted. Hidden directories are skipped and symbolic links
// are not followed. root may also be a set record itself. Directories that
// cannot be read are returned as errors beside what was found.
func FindRecords(root string) ([]string, []error, error) {
	fi, err := os.Stat(root)
	if err != nil {
		return nil, nil, fmt.Errorf("reading %s: %w", root, err)
	}
	if !fi.IsDir() {
		return []string{root}, nil, nil
	}

	var found []string
	var problems []error
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		switch {
		case err != nil && path == root:
			return err
		case err != nil:
			problems = append(problems, fmt.Errorf("reading %s: %w", path, err))
			return nil
		case d.IsDir() && path != root && strings.HasPrefix(d.Name(), "."):
			return fs.SkipDir
		case d.Type().IsRegular() && d.Name() == RecordFile:
			found = append(found, path)
		}
		return nil
	})
	if err != nil {
		return nil, nil, fmt.Errorf("reading %s: %w", root, err)
	}
	sort.Strings(found)
	return found, problems, nil
}

// Inventory reads every set record under root and judges its drills.
// It fails only when root itself cannot be read; unreadable records are
// listed in the report.
func Inventory(root string, opts StatusOptions) (*StatusReport, error) {
	if opts.MaxDrillAge <= 0 {
		opts.MaxDrillAge = DefaultMaxDrillAge
	}
	if opts.Now.IsZero() {
		opts.Now = time.Now()
	}
	paths, problems, err := FindRecords(root)
	if err != nil {
		return nil, err
	}
	if len(paths) == 0 && len(problems) == 0 {
		return nil, fmt.Errorf("%w under %s", ErrNoRecords, root)
	}

	logs := &auditLogs{opts: opts, read: map[string]*auditEvidence{}}
	if opts.Audit != "" {
		if ev := logs.get(opts.Audit); ev.err != nil {
			return nil, ev.err
		}
	}
	rep := &StatusReport{Unreadable: problems}
	for _, p := range paths {
		rec, err := ReadRecord(p)
		if err != nil {
			rep.Unreadable = append(rep.Unreadable, err)
			continue
		}
		rep.Sets = append(rep.Sets, judge(p, rec, opts, logs.forRecord(p)))
	}
	rep.findCopies()
	return rep, nil
}

// judge works out the drill state of a set and its custodians, each drill
// checked against the audit log when there is one.
func judge(path string, rec *SetRecord, opts StatusOptions, ev *auditEvidence) SetStatus {
	st := SetStatus{Path: path, Record: rec,
		Drill: drillState(rec.LastDrill, opts)}
	name := fmt.Sprintf("set %s (%q)", rec.SetID.Short(), rec.Label)
	warn := func(format string, a ...any) {
		st.Warnings = append(st.Warnings, name+": "+fmt.Sprintf(format, a...))
	}
	never := st.Drill.Last == nil
	for _, c := range rec.Custodians {
		cs := CustodianStatus{Custodian: c, Drill: drillState(c.LastDrill, opts)}
		st.Custodians = append(st.Custodians, cs)
		never = never && cs.Drill.Last == nil
	}
	switch {
	case ev != nil && ev.err != nil:
		warn("its drills were not checked against the audit log: %v", ev.err)
	case ev != nil:
		st.confirm(ev, warn)
	}

	if never {
		warn("never drilled, neither the whole set nor any custodian, "+
			"since it was made on %s", day(rec.Created))
		return st
	}
	maxDays := days(opts.MaxDrillAge)
	switch d := st.Drill; {
	case d.Unlogged:
	case d.Last == nil:
		warn("the whole set has never been drilled: no recovery has " +
			"proven that its shares rebuild the key")
	case d.Future:
		warn("its last drill is dated %s, after today: check the clock "+
			"of the machine that recorded it", day(*d.Last))
	case d.Overdue:
		warn("the whole set was last drilled on %s, %d days ago (more "+
			"than %d)", day(*d.Last), days(d.Age), maxDays)
	}
	for _, cs := range st.Custodians {
		who := fmt.Sprintf("custodian %d (%s)", cs.Index, cs.Name)
		switch d := cs.Drill; {
		case d.Unlogged:
		case d.Last == nil:
			warn("%s has never been drilled", who)
		case d.Future:
			warn("%s's last drill is dated %s, after today", who, day(*d.Last))
		case d.Overdue:
			warn("%s was last drilled on %s, %d days ago (more than %d)",
				who, day(*d.Last), days(d.Age), maxDays)
		}
	}
	return st
}

// confirm checks each drill set.json records against the audit log, and
// marks and names those the log does not show.
func (st *SetStatus) confirm(ev *auditEvidence, warn func(string, ...any)) {
	st.AuditLog = ev.path
	if ev.broken != nil {
		warn("audit log %s is broken (%v); drills logged after the break "+
			"are not counted", ev.path, ev.broken)
	}
	id := st.Record.SetID
	if d := &st.Drill; d.Last != nil && !ev.shows(id, 0, *d.Last) {
		d.Unlogged, d.Overdue = true, true
		warn("set.json says the whole set was drilled on %s, but the "+
			"audit log %s shows no such drill: the record was edited, or "+
			"the drill was logged elsewhere; it is not counted",
			day(*d.Last), ev.path)
	}
	for i := range st.Custodians {
		cs := &st.Custodians[i]
		if d := &cs.Drill; d.Last != nil && !ev.shows(id, cs.Index, *d.Last) {
			d.Unlogged, d.Overdue = true, true
			warn("set.json says custodian %d (%s) drilled on %s, but the "+
				"audit log %s shows no such drill: the record was edited, "+
				"or the drill was logged elsewhere; it is not counted",
				cs.Index, cs.Name, day(*d.Last), ev.path)
		}
	}
}

// drillSlack is how far apart the time a drill is recorded in set.json
// and the time of its audit entry may be: the ceremony takes one, saves
// the record, then appends the entry.
const drillSlack = 2 * time.Minute

// auditEvidence is what one audit log shows about drills: for each set,
// the times of whole-set drills (index 0) and of drills each share index
// took part in, a custodian drill or a set drill its share was given to.
type auditEvidence struct {
	path   string
	drills map[shares.SetID]map[int][]time.Time
	broken error // the chain breaks; only entries before it count
	err    error // the log could not be read at all
}

// shows reports whether the log has a drill of set id and share index
// (0: the whole set) at the recorded time.
func (ev *auditEvidence) shows(id shares.SetID, index int, at time.Time) bool {
	for _, t := range ev.drills[id][index] {
		if d := t.Sub(at); d >= -drillSlack && d <= drillSlack {
			return true
		}
	}
	return false
}

// readEvidence reads the drills an audit log shows. A set drill counts
// for the shares offered to it: those logged for the set since the last
// ceremony that finished.
//
// TODO: an aborted drill whose shares were offered and that was never
// resumed lends them to the set's next drill; the log does not tie a
// share.offered entry to a run, so they cannot be told apart.
func readEvidence(path string) *auditEvidence {
	ev := &auditEvidence{path: path, drills: map[shares.SetID]map[int][]time.Time{}}
	entries, _, err := ReadAudit(path)
	var broken *BrokenLogError
	switch {
	case errors.As(err, &broken):
		ev.broken = broken
	case err != nil:
		ev.err = err
		return ev
	}
	offered := map[shares.SetID]map[int]bool{}
	add := func(id shares.SetID, index int, t time.Time) {
		if ev.drills[id] == nil {
			ev.drills[id] = map[int][]time.Time{}
		}
		ev.drills[id][index] = append(ev.drills[id][index], t)
	}
	for _, e := range entries {
		switch {
		case e.Event == EventCeremonyFinished:
			clear(offered)
		case e.Outcome != OutcomeOK:
		case e.Event == EventShareOffered && e.Share > 0:
			if offered[e.SetID] == nil {
				offered[e.SetID] = map[int]bool{}
			}
			offered[e.SetID][e.Share] = true
		case e.Event == EventDrillRecorded && e.Share > 0:
			add(e.SetID, e.Share, e.Time)
		case e.Event == EventDrillRecorded:
			add(e.SetID, 0, e.Time)
			for i := range offered[e.SetID] {
				add(e.SetID, i, e.Time)
			}
			delete(offered, e.SetID)
		}
	}
	return ev
}

// auditLogs reads each audit log once for a report.
type auditLogs struct {
	opts StatusOptions
	read map[string]*auditEvidence
}

func (l *auditLogs) get(path string) *auditEvidence {
	if ev, ok := l.read[path]; ok {
		return ev
	}
	ev := readEvidence(path)
	l.read[path] = ev
	return ev
}

// forRecord returns the evidence for the set record at path: the log
// the options name, else the one beside the record; nil when there is
// none.
func (l *auditLogs) forRecord(path string) *auditEvidence {
	if l.opts.Audit != "" {
		return l.get(l.opts.Audit)
	}
	beside := filepath.Join(filepath.Dir(path), DefaultAuditFile)
	if _, err := os.Lstat(beside); err != nil {
		return nil
	}
	return l.get(beside)
}

// Current returns how many custodians have drilled within the maximum age.
func (s *SetStatus) Current() int {
	n := 0
	for _, c := range s.Custodians {
		if !c.Drill.Overdue && !c.Drill.Future {
			n++
		}
	}
	return n
}

func drillState(last *time.Time, opts StatusOptions) DrillState {
	if last == nil {
		return DrillState{Overdue: true}
	}
	age := opts.Now.Sub(*last)
	return DrillState{Last: last, Age: max(age, 0),
		Overdue: age > opts.MaxDrillAge, Future: age < -24*time.Hour}
}

// findCopies warns about a set recorded in more than one file: a copy is
// fine, but drills recorded in one are not seen in the other.
func (r *StatusReport) findCopies() {
	where := map[string][]int{}
	var order []string
	for i, s := range r.Sets {
		id := s.Record.SetID.String()
		if where[id] == nil {
			order = append(order, id)
		}
		where[id] = append(where[id], i)
	}
	for _, id := range order {
		idx := where[id]
		if len(idx) < 2 {
			continue
		}
		var paths []string
		for _, i := range idx {
			paths = append(paths, r.Sets[i].Path)
		}
		for _, i := range idx {
			s := &r.Sets[i]
			s.Warnings = append(s.Warnings, fmt.Sprintf("set %s is recorded "+
				"in %d files (%s): a drill recorded in one is not seen in "+
				"the others", s.Record.SetID.Short(), len(paths),
				strings.Join(paths, ", ")))
		}
	}
}

// Where returns where the custodian's share lives, in words: "paper, card
// 12345678 slot 82".
func (c *Custodian) Where() string {
	var parts []string
	for _, m := range c.Media {
		switch {
		case m == "card" && c.Card != nil && c.Card.Slot != "":
			parts = append(parts, fmt.Sprintf("card %d slot %s", c.Card.Serial,
				c.Card.Slot))
		case m == "card" && c.Card != nil:
			parts = append(parts, fmt.Sprintf("card %d", c.Card.Serial))
		default:
			parts = append(parts, m)
		}
	}
	if len(parts) == 0 {
		return "(no medium recorded)"
	}
	return strings.Join(parts, ", ")
}

// ErrNoRecords is returned when a directory holds no set record.
var ErrNoRecords = errors.New("no set record (" + RecordFile + ") found")

func days(d time.Duration) int { return int(d / (24 * time.Hour)) }

func day(t time.Time) string { return t.UTC().Format("2006-01-02") }
