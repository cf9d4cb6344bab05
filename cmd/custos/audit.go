package main

// custos status and custos audit: the records a ceremony leaves behind.

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"text/tabwriter"
	"time"

	"custos/ceremony"
)

// TODO: the lead may move these into main.go's table and usage text; the
// registration here keeps the commands and their scripts working until
// then, and is harmless after.

var auditCommands = map[string]command{
	"verify": cmdAuditVerify,
}

const statusUsage = `usage: custos status [--drill-max-age AGE] [--as-of DATE] [--audit LOG] DIR

Lists every share set recorded under DIR (each set.json, at any depth, or
DIR itself when it is a set.json): label, policy, check values, who holds
each share on what, and when the set and each custodian were last drilled.
Warns about a drill older than AGE (default 365d; also 26w, 2160h) or one
that never happened. --as-of reports as on another day (2026-12-31).

A set record whose policy, label, check values or custodians differ from
what the split's dealer key signed is refused by name. Drills are added
later and cannot be signed: each one set.json records is checked against
the audit log, LOG or else audit.log beside the set.json, and a drill the
log does not show is named and not counted.

    $ custos status /srv/escrow
    $ custos status --drill-max-age 180d shares/set.json
    $ custos status --audit /var/log/custos/audit.log /srv/escrow

Exit status: 0 when every record was read (warnings or not), 1 when one
could not be, 2 on a usage error.
`

const auditUsage = `usage: custos audit verify [--head HASH] LOG

Checks the hash chain of an audit log from its first entry to its last and
names the first entry that was edited, removed, reordered, duplicated or
cut short. Prints the hash of the last entry, the head, on standard output.

--head checks that the log holds the head printed on a ceremony transcript:
a log cut at an entry boundary, or rewritten whole, does not.

    $ custos audit verify shares/audit.log
    $ custos audit verify --head "3F9A1C0E 7B2D4F6A ..." shares/audit.log
`

// statusOut is where status prints its inventory; tests replace it.
var statusOut io.Writer = os.Stdout

func cmdStatus(args []string) error {
	if wantsHelp(args) {
		fmt.Fprint(os.Stdout, statusUsage)
		return nil
	}
	fs := newFlags("status")
	maxAge := fs.String("drill-max-age", "365d", "")
	asOf := fs.String("as-of", "", "")
	audit := fs.String("audit", "", "")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usagef("status takes one DIR, the directory of the set " +
			"records")
	}
	opts := ceremony.StatusOptions{Audit: *audit}
	if opts.MaxDrillAge, err = parseAge(*maxAge); err != nil {
		return err
	}
	if *asOf != "" {
		if opts.Now, err = parseDay(*asOf); err != nil {
			return err
		}
	}

	rep, err := ceremony.Inventory(pos[0], opts)
	if errors.Is(err, ceremony.ErrNoRecords) {
		return withHint(errorf("%w", err), "give the directory the split "+
			"wrote (--out), or a directory above several of them")
	}
	if err != nil {
		return errorf("%w", err)
	}
	return reportStatus(rep, opts)
}

func reportStatus(rep *ceremony.StatusReport, opts ceremony.StatusOptions) error {
	if opts.Now.IsZero() {
		opts.Now = time.Now()
	}
	if opts.MaxDrillAge == 0 {
		opts.MaxDrillAge = ceremony.DefaultMaxDrillAge
	}
	for i := range rep.Sets {
		if i > 0 {
			fmt.Fprintln(statusOut)
		}
		printSet(statusOut, &rep.Sets[i], opts)
	}

	attention, unchecked := 0, 0
	for _, s := range rep.Sets {
		for _, w := range s.Warnings {
			warning("%s", w)
		}
		if len(s.Warnings) > 0 {
			attention++
		}
		if s.AuditLog == "" && drilled(&s) {
			unchecked++
		}
	}
	for _, err := range rep.Unreadable {
		warning("%v", err)
	}
	if unchecked > 0 {
		info("the drills of %s are as set.json says: no audit log was "+
			"found beside it to check them against (give --audit LOG)",
			nounCount(unchecked, "set", "sets"))
	}
	days := int(opts.MaxDrillAge / (24 * time.Hour))
	switch {
	case len(rep.Unreadable) > 0:
		return withHint(errorf("%d of %d set records could not be read "+
			"(listed above)", len(rep.Unreadable),
			len(rep.Unreadable)+len(rep.Sets)),
			"the sets that were read are listed; a record altered after "+
				"its split is not trusted: use the copy kept with the "+
				"ceremony papers")
	case attention > 0:
		info("%s; %s attention (warnings above)",
			nounCount(len(rep.Sets), "set", "sets"),
			nounCount(attention, "needs", "need"))
	default:
		info("%s; every set and custodian drilled within %d days",
			nounCount(len(rep.Sets), "set", "sets"), days)
	}
	return nil
}

// printSet writes one set's inventory.
func printSet(w io.Writer, s *ceremony.SetStatus, opts ceremony.StatusOptions) {
	r := s.Record
	fmt.Fprintf(w, "set %s  %q  any %d of %d, %s\n", r.SetID.Short(),
		r.Label, r.Threshold, r.Count, r.Algorithm)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "  record\t%s\n", s.Path)
	fmt.Fprintf(tw, "  set ID\t%s\n", r.SetID)
	fmt.Fprintf(tw, "  created\t%s\n", r.Created.UTC().Format("2006-01-02"))
	for _, c := range r.Checks {
		fmt.Fprintf(tw, "  check value\t%s\n", c)
	}
	fmt.Fprintf(tw, "  signature\tdealer %s signed the fixed fields; verified\n", r.DealerFP)
	if s.AuditLog != "" {
		fmt.Fprintf(tw, "  audit log\t%s (drills checked against it)\n", s.AuditLog)
	} else {
		fmt.Fprintf(tw, "  audit log\tnone found; drills not checked\n")
	}
	fmt.Fprintf(tw, "  set drill\t%s\n", drillText(s.Drill))
	fmt.Fprintf(tw, "  drilled\t%d of %d custodians within %d days; %d "+
		"needed to rebuild\n", s.Current(), len(s.Custodians),
		int(opts.MaxDrillAge/(24*time.Hour)), r.Threshold)
	tw.Flush()

	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, c := range s.Custodians {
		fmt.Fprintf(tw, "    %d\t%s\t%s\t%s\n", c.Index, c.Name, c.Where(),
			drillText(c.Drill))
	}
	tw.Flush()
}

// drilled reports whether set.json records any drill of the set.
func drilled(s *ceremony.SetStatus) bool {
	if s.Drill.Last != nil {
		return true
	}
	for _, c := range s.Custodians {
		if c.Drill.Last != nil {
			return true
		}
	}
	return false
}

func drillText(d ceremony.DrillState) string {
	switch {
	case d.Unlogged:
		return "set.json says drilled " + d.Last.UTC().Format("2006-01-02") +
			": NOT IN THE AUDIT LOG"
	case d.Last == nil:
		return "never drilled: OVERDUE"
	case d.Future:
		return "drilled " + d.Last.UTC().Format("2006-01-02") +
			", after today: CHECK CLOCK"
	}
	s := fmt.Sprintf("drilled %s (%s ago)", d.Last.UTC().Format("2006-01-02"),
		nounCount(int(d.Age/(24*time.Hour)), "day", "days"))
	if d.Overdue {
		s += ": OVERDUE"
	}
	return s
}

// nounCount writes n with the singular or plural noun: "1 entry", "2 entries".
func nounCount(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}

// parseAge reads a maximum drill age: "365d", "26w", or a Go duration
// such as "2160h".
func parseAge(s string) (time.Duration, error) {
	bad := usagef("--drill-max-age %q: want days (365d), weeks (52w) or "+
		"hours (8760h)", s)
	var d time.Duration
	unit := map[byte]time.Duration{'d': 24 * time.Hour, 'w': 7 * 24 * time.Hour}
	if n := len(s); n > 1 && unit[s[n-1]] != 0 {
		v, err := strconv.Atoi(s[:n-1])
		if err != nil || v > 100*366 {
			return 0, bad
		}
		d = time.Duration(v) * unit[s[n-1]]
	} else {
		var err error
		if d, err = time.ParseDuration(s); err != nil {
			return 0, bad
		}
	}
	if d <= 0 {
		return 0, bad
	}
	return d, nil
}

// parseDay reads --as-of: a date (the start of that day, UTC) or an RFC
// 3339 time.
func parseDay(s string) (time.Time, error) {
	if t, err := time.Parse("2006-01-02", s); err == nil {
		return t, nil
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	return time.Time{}, usagef("--as-of %q: want a date such as 2026-12-31", s)
}

func cmdAuditVerify(args []string) error {
	if wantsHelp(args) {
		fmt.Fprint(os.Stdout, auditUsage)
		return nil
	}
	fs := newFlags("audit verify")
	head := fs.String("head", "", "")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usagef("audit verify takes one LOG file")
	}
	want := ""
	if *head != "" {
		if want, err = ceremony.ParseHash(*head); err != nil {
			return usagef("--head: the hash printed on the transcript has " +
				"64 hex digits (spaces do not matter)")
		}
	}

	path := pos[0]
	sum, err := ceremony.VerifyLog(path)
	var broken *ceremony.BrokenLogError
	if errors.As(err, &broken) {
		return withHint(errorf("%w", err), brokenHints(broken, sum)...)
	}
	if err != nil {
		return errorf("%w", err)
	}

	info("audit log %s: %s, %s to %s; the chain is intact", path,
		nounCount(sum.Entries, "entry", "entries"), sum.First.Format(time.DateTime),
		sum.Last.Format(time.DateTime+" UTC"))
	info("log ID %s; head (entry %d) %s", sum.LogID, sum.Entries, sum.Head)
	fmt.Println(sum.Head)
	if want == "" {
		return nil
	}
	seq, ok := sum.Find(want)
	switch {
	case !ok:
		return withHint(errorf("the transcript's head is not in %s: "+
			"entries were cut from its end, or it was rewritten", path),
			"compare with other copies of the log (syslog, backups); "+
				"this file is not the record of that ceremony")
	case seq == uint64(sum.Entries):
		info("the transcript's head is the last entry: nothing was " +
			"logged after it")
	default:
		info("the transcript's head is entry %d; %s logged after it",
			seq, nounCount(sum.Entries-int(seq), "entry was", "entries were"))
	}
	return nil
}

// brokenHints says what a broken log still proves and what to do.
func brokenHints(b *ceremony.BrokenLogError, sum *ceremony.LogSummary) []string {
	var hints []string
	if sum != nil && sum.Entries > 0 {
		hints = append(hints, fmt.Sprintf("the %s before line %d chain "+
			"correctly; the last has hash %s",
			nounCount(sum.Entries, "entry", "entries"), b.Line, sum.Head))
	}
	if b.Fault == ceremony.FaultTruncated {
		hints = append(hints, "a crash while writing leaves a cut last "+
			"line; keep a copy, and compare with syslog before repairing")
	}
	return append(hints, "keep the file unchanged as evidence; custos "+
		"will not append to it")
}

// wantsHelp reports whether args ask for a command's usage text.
func wantsHelp(args []string) bool {
	for _, a := range args {
		switch a {
		case "-h", "-help", "--help":
			return true
		case "--":
			return false
		}
	}
	return false
}

// syslogFlag is --audit-syslog[=SOCKET]: copy every audit entry to the
// local syslog socket, /dev/log unless another is given. Ceremony
// commands add it with addSyslogFlag and pass the path to
// ceremony.AuditOptions.Syslog.
type syslogFlag struct{ path string }

func (s *syslogFlag) String() string   { return s.path }
func (s *syslogFlag) IsBoolFlag() bool { return true }

func (s *syslogFlag) Set(v string) error {
	switch v {
	case "true":
		s.path = ceremony.DefaultSyslogSocket
	case "false":
		s.path = ""
	case "":
		return errors.New("give a socket path, as --audit-syslog=/dev/log")
	default:
		s.path = v
	}
	return nil
}

// addSyslogFlag adds --audit-syslog to fs and returns where the socket
// path will be: "" when the flag is not given.
func addSyslogFlag(fs *flag.FlagSet) *string {
	f := &syslogFlag{}
	fs.Var(f, "audit-syslog", "")
	return &f.path
}
