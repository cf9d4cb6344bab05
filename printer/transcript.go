package printer

import (
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"
)

// Transcript is the paper record of one key ceremony: what was done, by
// whom, in front of whom, and the hash that ties it to the audit log.
// Everyone present signs it. It holds no secret.
type Transcript struct {
	Paper Paper
	Kind  CeremonyKind

	SetID       string   // the share set, as printed on the shares
	Label       string   // what the secret is
	Threshold   int      // k
	Count       int      // n
	CheckValues []string // labelled check values of the secret

	Date  time.Time // when the ceremony began; also the PDF's date
	Place string    // where it was held
	Notes string    // anything the room wants on the record

	People []Participant
	Steps  []TranscriptStep

	AuditLog  string // the audit log's file name
	AuditSeq  uint64 // the number of the log's last entry before printing
	AuditHead string // that entry's hash, 64 hex digits
}

// CeremonyKind is what a ceremony did.
type CeremonyKind string

// The ceremonies custos runs.
const (
	CeremonySplit    CeremonyKind = "split"
	CeremonyRecovery CeremonyKind = "recovery"
	CeremonyDrill    CeremonyKind = "drill"
)

// Title returns the kind as a heading, e.g. "Recovery drill".
func (k CeremonyKind) Title() string {
	switch k {
	case CeremonySplit:
		return "Key split"
	case CeremonyRecovery:
		return "Key recovery"
	case CeremonyDrill:
		return "Recovery drill"
	}
	return string(k)
}

// Role is what a participant was there for.
type Role string

// The roles at a ceremony.
const (
	RoleOperator  Role = "operator"
	RoleCustodian Role = "custodian"
	RoleWitness   Role = "witness"
)

// Participant is one person present at a ceremony.
type Participant struct {
	Name   string
	Role   Role
	Share  int    // a custodian's share index; 0 for none
	Detail string // e.g. "card 12345678 and paper"
}

// TranscriptStep is one step of a ceremony and how it ended.
type TranscriptStep struct {
	Time    time.Time
	What    string
	Outcome string // "ok", "failed", "refused", ...
}

// ErrInvalidTranscript is wrapped by errors about a Transcript that cannot
// be printed as given.
var ErrInvalidTranscript = errors.New("invalid transcript")

// WriteTranscriptPDF writes t as a PDF document to w. Pages are laid out
// like share pages, so they print whole on A4 and on Letter; a long
// ceremony flows over several pages, each naming the set, the ceremony and
// the audit log head. The same transcript always gives the same bytes.
func WriteTranscriptPDF(w io.Writer, t Transcript) error {
	doc, err := renderTranscript(t)
	if err != nil {
		return err
	}
	return doc.output(w)
}

func (t Transcript) validate() error {
	err := transcriptPDF.checkSet(t.Paper, t.SetID, t.Threshold, t.Count)
	if err != nil {
		return err
	}
	bad := transcriptPDF.bad
	switch {
	case t.Kind != CeremonySplit && t.Kind != CeremonyRecovery &&
		t.Kind != CeremonyDrill:
		return bad("ceremony kind %q is not split, recovery or drill", t.Kind)
	case t.Date.IsZero():
		return bad("no ceremony date")
	case len(t.Steps) == 0:
		return bad("no steps")
	}
	if t.AuditHead != "" {
		if b, err := hex.DecodeString(t.AuditHead); err != nil || len(b) != 32 {
			return bad("audit log head must be 64 hex digits")
		}
	}
	for i, p := range t.People {
		switch {
		case strings.TrimSpace(p.Name) == "":
			return bad("person %d has no name", i+1)
		case p.Role != RoleOperator && p.Role != RoleCustodian &&
			p.Role != RoleWitness:
			return bad("person %d (%s) has role %q; want operator, "+
				"custodian or witness", i+1, p.Name, p.Role)
		case p.Share < 0 || p.Share > 255:
			return bad("person %d (%s) has share index %d", i+1, p.Name,
				p.Share)
		}
	}
	for i, s := range t.Steps {
		if s.Time.IsZero() || strings.TrimSpace(s.What) == "" {
			return bad("step %d needs a time and a description", i+1)
		}
	}
	return nil
}

// groupHash writes a hash in groups of eight, four groups a line, so that
// people can compare it aloud.
func groupHash(h string) []string {
	h = strings.ToUpper(h)
	var groups []string
	for i := 0; i < len(h); i += 8 {
		groups = append(groups, h[i:min(i+8, len(h))])
	}
	var lines []string
	for i := 0; i < len(groups); i += 4 {
		lines = append(lines, strings.Join(groups[i:min(i+4, len(groups))], " "))
	}
	return lines
}

// tbuilder turns a Transcript into blocks and draws them.
type tbuilder struct {
	*layout
	t     Transcript
	setID []run
}

func renderTranscript(t Transcript) (*document, error) {
	l, err := newLayout(transcriptPDF, t.validate(), t.Paper, t.Date,
		fmt.Sprintf("custos %s transcript", t.Kind))
	if err != nil {
		return nil, err
	}
	b := &tbuilder{layout: l, t: t}
	if b.setID, err = l.fonts.segment("set ID", t.SetID, l.fonts.mono); err != nil {
		return nil, err
	}
	return l.compose(b, b.addDetails, b.addNotes, b.addPeople, b.addSteps,
		b.addAnchor, b.addSignatures)
}

// field is a span of caller text, named for errors.
func (b *tbuilder) field(s, name string) span {
	return span{s, b.fonts.sans, name}
}

// paragraph adds wrapped text as one block; keep holds it on the page of
// the block after it.
func (b *tbuilder) paragraph(spans []span, size, leading, after float64,
	keep bool) error {
	lines, err := b.fonts.wrap(spans, size, frameW)
	if err != nil {
		return err
	}
	h := float64(len(lines)) * leading
	b.add(&block{h: h + after, keep: keep, draw: func(c *canvas, x, y float64) {
		drawLines(c, x, y, lines, size, leading)
	}})
	return nil
}

// addDetails adds the table of what the ceremony was about.
func (b *tbuilder) addDetails() error {
	t := b.t
	const size, leading = 10.0, 4.8
	type row struct {
		label, field string
		text         []string
		face         *face
		size         float64
	}
	label := t.Label
	if label == "" {
		label = "(none)"
	}
	place := t.Place
	if place == "" {
		place = "(not recorded)"
	}
	checks := t.CheckValues
	if len(checks) == 0 {
		checks = []string{"(none)"}
	}
	rows := []row{
		{"Ceremony", "", []string{t.Kind.Title()}, b.fonts.bold, 12},
		{"Set ID", "set ID", []string{t.SetID}, b.fonts.mono, 9},
		{"Label", "label", []string{label}, b.fonts.sans, size},
		{"Policy", "", []string{fmt.Sprintf("any %d of the %d shares "+
			"rebuild the key", t.Threshold, t.Count)}, b.fonts.sans, size},
		{"Check values", "check value", checks, b.fonts.sans, size},
		{"Date", "", []string{t.Date.UTC().Format(
			"Monday 2 January 2006, 15:04 UTC")}, b.fonts.sans, size},
		{"Place", "place", []string{place}, b.fonts.sans, size},
	}

	var details []detail
	for _, r := range rows {
		var lines [][]run
		for _, s := range r.text {
			l, err := b.fonts.wrap([]span{{s, r.face, r.field}}, r.size,
				frameW-labelW)
			if err != nil {
				return err
			}
			lines = append(lines, l...)
		}
		details = append(details, detail{r.label, lines, r.size})
	}
	return b.addTable(details, leading)
}

// addTable adds label and value rows, each row a block of its own.
func (b *tbuilder) addTable(rows []detail, leading float64) error {
	for _, r := range rows {
		b.add(&block{h: r.height(leading), draw: func(c *canvas, x, y float64) {
			r.draw(c, b.fonts, x, y, leading)
		}})
	}
	b.add(&block{h: 3, draw: func(*canvas, float64, float64) {}})
	return nil
}

func (b *tbuilder) addNotes() error {
	if strings.TrimSpace(b.t.Notes) == "" {
		return nil
	}
	b.heading("Notes", "")
	var spans []span
	for i, para := range strings.Split(b.t.Notes, "\n") {
		if i > 0 {
			spans = append(spans, b.sans(" "))
		}
		spans = append(spans, b.field(strings.TrimSpace(para), "notes"))
	}
	return b.paragraph(spans, 10, 4.8, 3, false)
}

// addPeople adds the list of everyone present.
func (b *tbuilder) addPeople() error {
	if len(b.t.People) == 0 {
		return nil
	}
	b.heading("Present", "")
	const size, leading = 10.0, 4.8
	const nameW, roleW = 72.0, 24.0
	for i, p := range b.t.People {
		name, err := b.fonts.wrap([]span{b.field(p.Name, "name of person "+
			fmt.Sprint(i+1))}, size, nameW-3)
		if err != nil {
			return err
		}
		what := p.Detail
		if p.Share > 0 {
			what = fmt.Sprintf("share %d", p.Share)
			if p.Detail != "" {
				what += ", " + p.Detail
			}
		}
		var detailLines [][]run
		if what != "" {
			detailLines, err = b.fonts.wrap([]span{b.field(what,
				"detail of person "+fmt.Sprint(i+1))}, 9.5,
				frameW-nameW-roleW)
			if err != nil {
				return err
			}
		}
		role := []run{{b.fonts.sans, string(p.Role)}}
		h := float64(max(len(name), len(detailLines), 1))*leading + 1.2
		b.add(&block{h: h, draw: func(c *canvas, x, y float64) {
			drawLines(c, x, y, name, size, leading)
			c.text(x+nameW, y+ascentShare*size*ptToMM, role, size)
			drawLines(c, x+nameW+roleW, y, detailLines, 9.5, leading)
		}})
	}
	b.add(&block{h: 3, draw: func(*canvas, float64, float64) {}})
	return nil
}

// stepTimes formats the step times: the time of day when the whole
// ceremony falls on one UTC day, else the date as well.
func (b *tbuilder) stepTimes() []string {
	layout := "15:04:05"
	day := b.t.Steps[0].Time.UTC().Format("2006-01-02")
	for _, s := range b.t.Steps {
		if s.Time.UTC().Format("2006-01-02") != day {
			layout = "2 Jan 15:04:05"
		}
	}
	var out []string
	for _, s := range b.t.Steps {
		out = append(out, s.Time.UTC().Format(layout))
	}
	return out
}

// addSteps adds the steps in order, shaded in alternate rows, with the
// column heads repeated on each new page.
func (b *tbuilder) addSteps() error {
	const size, leading, pad = 9.5, 4.4, 0.8
	times := b.stepTimes()
	timeW := 4.0
	for _, s := range times {
		timeW = max(timeW, b.fonts.width([]run{{b.fonts.sans, s}}, size)+4)
	}
	outW := 4.0
	for _, s := range b.t.Steps {
		outW = max(outW, b.fonts.width([]run{{b.fonts.bold, s.Outcome}},
			size)+2)
	}
	whatW := frameW - timeW - outW - 2

	head := b.heading("Steps (times in UTC)", "")
	cols := func(c *canvas, x, y float64) {
		c.grey(90)
		base := y + ascentShare*8*ptToMM
		c.text(x, base, []run{{b.fonts.bold, "Time"}}, 8)
		c.text(x+timeW, base, []run{{b.fonts.bold, "Step"}}, 8)
		c.text(x+frameW-outW, base, []run{{b.fonts.bold, "Outcome"}}, 8)
		c.grey(0)
	}
	head.h += 5
	headDraw := head.draw
	head.draw = func(c *canvas, x, y float64) {
		headDraw(c, x, y)
		cols(c, x, y+9)
	}
	cont := b.headingBlock("Steps, continued")
	cont.h += 5
	contDraw := cont.draw
	cont.draw = func(c *canvas, x, y float64) {
		contDraw(c, x, y)
		cols(c, x, y+9)
	}

	for i, s := range b.t.Steps {
		what, err := b.fonts.wrap([]span{b.field(s.What,
			fmt.Sprintf("step %d", i+1))}, size, whatW)
		if err != nil {
			return err
		}
		// A step that did not go well stands out in bold.
		outFace := b.fonts.bold
		if s.Outcome == "ok" {
			outFace = b.fonts.sans
		}
		outcome, err := b.fonts.segment(fmt.Sprintf("outcome of step %d",
			i+1), s.Outcome, outFace)
		if err != nil {
			return err
		}
		if s.Outcome == "" {
			outcome = nil
		}
		when := []run{{b.fonts.sans, times[i]}}
		shade := i%2 == 0
		h := float64(len(what))*leading + 2*pad
		b.add(&block{h: h, cont: cont, draw: func(c *canvas, x, y float64) {
			if shade {
				c.grey(236)
				c.fill("fill", x, y, frameW, h)
				c.grey(0)
			}
			base := y + pad + ascentShare*size*ptToMM
			c.text(x+1, base, when, size)
			drawLines(c, x+timeW, y+pad, what, size, leading)
			if outcome != nil {
				c.text(x+frameW-outW+1, base, outcome, size)
			}
		}})
	}
	b.add(&block{h: 4, draw: func(*canvas, float64, float64) {}})
	return nil
}

// addAnchor adds the statement that ties the paper to the audit log.
func (b *tbuilder) addAnchor() error {
	t := b.t
	b.heading("Audit log", "")
	if t.AuditHead == "" {
		return b.paragraph([]span{b.sans("No audit log was kept for this " +
			"ceremony.")}, 10, 4.8, 3, false)
	}
	name := t.AuditLog
	if name == "" {
		name = "the audit log"
	}
	spans := []span{b.sans("When this transcript was printed, "),
		b.field(name, "audit log name"),
		b.sans(fmt.Sprintf(" ended with entry %d, whose hash is printed "+
			"below. Keep this page with the log: a log that does not hold "+
			"this hash, or holds it at another entry, is not the record of "+
			"this ceremony. Check it with: custos audit verify --head "+
			"HASH LOG.", t.AuditSeq))}
	if err := b.paragraph(spans, 9.5, 4.5, 1.5, true); err != nil {
		return err
	}

	lines := groupHash(t.AuditHead)
	const size, leading, pad = 12.0, 6.0, 2.5
	h := float64(len(lines))*leading + 2*pad
	b.add(&block{h: h + 4, draw: func(c *canvas, x, y float64) {
		c.grey(240)
		c.fill("fill", x, y, frameW, h)
		c.grey(0)
		c.frameRect(x+0.25, y+0.25, frameW-0.5, h-0.5, 0.5)
		for i, l := range lines {
			c.text(x+pad+2, y+pad+ascentShare*size*ptToMM+float64(i)*leading,
				[]run{{b.fonts.mono, l}}, size)
		}
	}})
	return nil
}

// addSignatures adds a statement and a signature line for every person
// present, and spare lines for anyone the list missed.
func (b *tbuilder) addSignatures() error {
	b.heading("Signatures", "")
	if err := b.paragraph([]span{b.sans("By signing, each person " +
		"confirms that they were present and that the steps above are " +
		"what took place.")}, 9.5, 4.5, 2, true); err != nil {
		return err
	}

	small := func(s string) []run { return []run{{b.fonts.sans, s}} }
	line := func(c *canvas, x, y, w float64, caption string) {
		c.grey(0)
		c.rule(x, y+10, w, 0.3)
		c.grey(90)
		c.text(x, y+13, small(caption), 7.5)
		c.grey(0)
	}
	cont := b.headingBlock("Signatures, continued")
	// Two blank rows for anyone the list missed.
	people := append(slices.Clone(b.t.People), Participant{}, Participant{})
	for i, p := range people {
		var who [][]run
		if p.Name != "" {
			var err error
			who, err = b.fonts.wrap([]span{
				{p.Name, b.fonts.bold, "name of person " + fmt.Sprint(i+1)},
				b.sans(", " + string(p.Role))}, 10.5, 70)
			if err != nil {
				return err
			}
		}
		h := max(float64(len(who))*5, 5) + 12
		b.add(&block{h: h, cont: cont, draw: func(c *canvas, x, y float64) {
			if who == nil {
				line(c, x, y, 66, "Name and role")
			} else {
				drawLines(c, x, y+4, who, 10.5, 5)
			}
			line(c, x+72, y, 74, "Signature")
			line(c, x+152, y, 28, "Date")
		}})
	}
	return nil
}

// title, headerLine, footerLine and footerNote are the transcript's
// furniture.
func (b *tbuilder) title() string { return "Key ceremony transcript" }

func (b *tbuilder) headerLine() []run {
	t, f := b.t, b.fonts
	sub := joinRuns([]run{{f.sans, "Set "}}, b.setID)
	return joinRuns(sub, []run{{f.sans, fmt.Sprintf(
		"  ·  any %d of %d  ·  %s", t.Threshold, t.Count,
		t.Date.UTC().Format("2 January 2006"))}})
}

func (b *tbuilder) footerLine(page, pages int) []run {
	f := b.fonts
	left := joinRuns([]run{{f.sans, "custos  ·  set "}}, b.setID)
	return joinRuns(left, []run{{f.sans, fmt.Sprintf(
		"  ·  %s transcript  ·  page %d of %d", b.t.Kind, page, pages)}})
}

// footerNote is the footer's right part: the start of the audit head, so
// a loose page still names its log.
func (b *tbuilder) footerNote() []run {
	if b.t.AuditHead == "" {
		return []run{{b.fonts.sans, "no audit log"}}
	}
	return []run{{b.fonts.sans, "audit head "},
		{b.fonts.mono, strings.ToUpper(b.t.AuditHead[:16])}}
}
