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
)

// DefaultMaxDrillAge is how old a drill may be before status warns: a
// year, so that every set is rehearsed at least once between audits.
const DefaultMaxDrillAge = 365 * 24 * time.Hour

// StatusOptions sets what counts as overdue.
type StatusOptions struct {
	MaxDrillAge time.Duration // 0 means DefaultMaxDrillAge
	Now         time.Time     // the day of the report; zero means now
}

// DrillState says when a set or a custodian was last drilled.
type DrillState struct {
	Last    *time.Time    // nil when never
	Age     time.Duration // since Last; 0 when never
	Overdue bool          // never, or longer ago than the maximum age
	Future  bool          // Last is after the report's time: a clock was wrong
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
	Warnings   []string // each names the set; none means all is well
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

	rep := &StatusReport{Unreadable: problems}
	for _, p := range paths {
		rec, err := ReadRecord(p)
		if err != nil {
			rep.Unreadable = append(rep.Unreadable, err)
			continue
		}
		rep.Sets = append(rep.Sets, judge(p, rec, opts))
	}
	rep.findCopies()
	return rep, nil
}

// judge works out the drill state of a set and its custodians.
func judge(path string, rec *SetRecord, opts StatusOptions) SetStatus {
	st := SetStatus{Path: path, Record: rec,
		Drill: drillState(rec.LastDrill, opts)}
	never := st.Drill.Last == nil
	for _, c := range rec.Custodians {
		cs := CustodianStatus{Custodian: c, Drill: drillState(c.LastDrill, opts)}
		st.Custodians = append(st.Custodians, cs)
		never = never && cs.Drill.Last == nil
	}

	name := fmt.Sprintf("set %s (%q)", rec.SetID.Short(), rec.Label)
	warn := func(format string, a ...any) {
		st.Warnings = append(st.Warnings, name+": "+fmt.Sprintf(format, a...))
	}
	if never {
		warn("never drilled, neither the whole set nor any custodian, "+
			"since it was made on %s", day(rec.Created))
		return st
	}
	maxDays := days(opts.MaxDrillAge)
	switch d := st.Drill; {
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
