package printer

import (
	"errors"
	"fmt"
	"io"
	"math"
	"strings"
	"time"

	"github.com/go-pdf/fpdf"
)

// SharePage is what one custodian's paper backup shows. The strings come
// ready from package shares; the printer lays them out and never parses
// or combines them.
type SharePage struct {
	Paper     Paper
	Custodian string // the custodian's name, in any script the fonts cover

	Index     int // this share's index, 1..255
	Threshold int // shares needed to rebuild the secret (k)
	Count     int // shares dealt (n)

	Label             string   // what the secret is, in the dealer's words
	SetID             string   // names the split; printed on every page
	Kind              string   // the kind of secret, e.g. "AES-256 key"
	CheckValues       []string // labelled check values of the secret
	DealerFingerprint string   // fingerprint of the split's dealer key
	Created           time.Time

	TextLines  []string // the typable form, one printed line each
	QRPayloads []string // QR alphanumeric payloads, each one code
}

// ErrInvalidPage is wrapped by errors about a SharePage that cannot be
// printed as given.
var ErrInvalidPage = errors.New("invalid share page")

// WriteSharePDF writes p as a PDF document to w. The same page always
// gives the same bytes: the document dates come from p.Created.
func WriteSharePDF(w io.Writer, p SharePage) error {
	doc, err := render(p)
	if err != nil {
		return err
	}
	return doc.output(w)
}

// document is a rendered share page or transcript with what tests
// inspect.
type document struct {
	pdf      *fpdf.Fpdf
	kind     docKind
	boxes    []box
	pages    int
	module   float64 // QR module size in millimetres
	symbols  []*qrSymbol
	origins  [][2]float64 // QR symbol top-left corners, quiet zone excluded
	pageSize [2]float64
}

// output writes the rendered PDF to w.
func (d *document) output(w io.Writer) error {
	if err := d.pdf.Output(w); err != nil {
		return fmt.Errorf("writing %s PDF: %w", d.kind.what, err)
	}
	return nil
}

// docKind is what sort of document the printer makes: a share page or a
// transcript. Errors name it.
type docKind struct {
	what    string // "share" or "transcript"
	invalid error  // wrapped by errors about input that cannot be printed
}

var (
	sharePDF      = docKind{"share", ErrInvalidPage}
	transcriptPDF = docKind{"transcript", ErrInvalidTranscript}
)

// bad returns an error about input of this kind that cannot be printed.
// Messages name the field and position but never quote share data.
func (k docKind) bad(format string, a ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{k.invalid}, a...)...)
}

// Vertical layout of the frame, in millimetres from its top.
const (
	bodyTop    = 17.0
	footerH    = 8.0
	bodyHeight = frameH - bodyTop - footerH
	columnGap  = 10.0
	columnW    = (frameW - columnGap) / 2
	labelW     = 34.0 // the label column of the details table
)

func render(p SharePage) (*document, error) {
	l, err := newLayout(sharePDF, p.validate(), p.Paper, p.Created,
		fmt.Sprintf("custos key share %d of %d", p.Index, p.Count))
	if err != nil {
		return nil, err
	}
	b := &builder{layout: l, p: p}
	if err := b.segmentFields(); err != nil {
		return nil, err
	}
	return l.compose(b, b.addNotice, b.addDetails, b.addCodes,
		b.addInstructions, b.addTextForm, b.addSignatures)
}

// layout is what share pages and transcripts are built on: the PDF, the
// blocks of the body in order, their pages once paginated, and the sizes
// of the header and footer lines every page carries.
type layout struct {
	kind  docKind
	paper Paper
	fonts *fontSet
	doc   *document

	blocks   []*block
	pages    [][]placed
	headSize float64 // points, for the furniture's headerLine
	footSize float64 // points, for the furniture's footerLine
}

// furniture is what a kind of document prints around the body of every
// page: a title and the page number above a header line, and a footer
// line with a note at its right end.
type furniture interface {
	title() string
	headerLine() []run
	footerLine(page, pages int) []run
	footerNote() []run
}

// newLayout starts a document of kind k, unless its input is invalid
// (invalid is what its validate returned). The PDF has custos's settings:
// no margins or automatic page breaks (layout is ours), and dates from
// when, so the same input always gives the same bytes.
func newLayout(k docKind, invalid error, paper Paper, when time.Time,
	title string) (*layout, error) {
	if invalid != nil {
		return nil, invalid
	}
	w, h, _ := paper.size()
	pdf := fpdf.NewCustom(&fpdf.InitType{UnitStr: "mm",
		Size: fpdf.SizeType{Wd: w, Ht: h}})
	pdf.SetMargins(0, 0, 0)
	pdf.SetAutoPageBreak(false, 0)
	pdf.SetCatalogSort(true)
	pdf.SetCreationDate(when)
	pdf.SetModificationDate(when)
	pdf.SetProducer("custos", false)
	pdf.SetCreator("custos", false)
	pdf.SetTitle(title, false)
	fonts, err := newFontSet(pdf)
	if err != nil {
		return nil, err
	}
	doc := &document{pdf: pdf, kind: k, pageSize: [2]float64{w, h}}
	return &layout{kind: k, paper: paper, fonts: fonts, doc: doc}, nil
}

// compose fits the header and footer lines, runs the steps that add the
// body's blocks, lays the blocks out in pages and draws them.
func (l *layout) compose(f furniture, steps ...func() error) (*document,
	error) {
	if err := l.fitHeaderFooter(f); err != nil {
		return nil, err
	}
	for _, step := range steps {
		if err := step(); err != nil {
			return nil, err
		}
	}

	pages, err := paginate(l.blocks, bodyHeight)
	if err != nil {
		return nil, err
	}
	l.pages = pages
	l.doc.pages = len(pages)
	l.draw(f)
	if err := l.doc.pdf.Error(); err != nil {
		return nil, fmt.Errorf("rendering %s PDF: %w", l.kind.what, err)
	}
	return l.doc, nil
}

func (l *layout) add(blk *block) *block {
	l.blocks = append(l.blocks, blk)
	return blk
}

func (l *layout) sans(s string) span { return span{s, l.fonts.sans, "text"} }
func (l *layout) bold(s string) span { return span{s, l.fonts.bold, "text"} }

// headingBlock is a section title, not yet added.
func (l *layout) headingBlock(title string) *block {
	runs, _ := l.fonts.segment("heading", title, l.fonts.bold)
	return &block{h: 9, draw: func(c *canvas, x, y float64) {
		c.text(x, y+6, runs, 12)
	}}
}

// heading adds a section title that stays with the block after it; mark
// names it for page references.
func (l *layout) heading(title, mark string) *block {
	blk := l.headingBlock(title)
	blk.keep, blk.mark = true, mark
	return l.add(blk)
}

// checkSet checks what every kind of document prints about the set: the
// paper it is on, the set ID and the policy.
func (k docKind) checkSet(paper Paper, setID string, threshold,
	count int) error {
	switch {
	case paper != A4 && paper != Letter:
		return k.bad("paper size %v is neither A4 nor Letter", paper)
	case strings.TrimSpace(setID) == "" || len(setID) > 64:
		return k.bad("set ID must have 1 to 64 characters")
	case threshold < 1 || threshold > count || count > 255:
		return k.bad("policy %d of %d is impossible", threshold, count)
	}
	return nil
}

// validate checks what the printer relies on.
func (p SharePage) validate() error {
	err := sharePDF.checkSet(p.Paper, p.SetID, p.Threshold, p.Count)
	if err != nil {
		return err
	}
	bad := sharePDF.bad
	switch {
	case strings.TrimSpace(p.Custodian) == "":
		return bad("no custodian name")
	case p.Index < 1 || p.Index > 255:
		return bad("share index %d is outside 1..255", p.Index)
	case p.Created.IsZero():
		return bad("no creation time")
	case len(p.TextLines) == 0:
		return bad("no text lines")
	case len(p.QRPayloads) == 0:
		return bad("no QR payloads")
	}

	for i, line := range p.TextLines {
		for j := 0; j < len(line); j++ {
			if line[j] < ' ' || line[j] > '~' {
				return bad("text line %d: character %d is not printable ASCII",
					i+1, j+1)
			}
		}
	}
	for i, q := range p.QRPayloads {
		if len(q) == 0 || len(q) > MaxQRPayload {
			return bad("QR payload %d has %d characters; want 1 to %d",
				i+1, len(q), MaxQRPayload)
		}
		for j := 0; j < len(q); j++ {
			if !isQRAlphanumeric(q[j]) {
				return bad("QR payload %d: character %d is not in the QR "+
					"alphanumeric set", i+1, j+1)
			}
		}
	}
	return nil
}

// builder turns a SharePage into blocks and draws them.
type builder struct {
	*layout
	p SharePage

	name, label, kind, setID, dealer []run
	checks                           [][]run
}

// segmentFields checks every free-text field against the fonts first, so a
// name that cannot be printed fails before anything else is done.
func (b *builder) segmentFields() error {
	f := b.fonts
	seg := func(dst *[]run, field, s string, base *face) error {
		if s == "" {
			s = "(none)"
		}
		runs, err := f.segment(field, s, base)
		*dst = runs
		return err
	}

	if err := seg(&b.name, "custodian name", b.p.Custodian, f.sans); err != nil {
		return err
	}
	if err := seg(&b.label, "label", b.p.Label, f.sans); err != nil {
		return err
	}
	if err := seg(&b.kind, "kind", b.p.Kind, f.sans); err != nil {
		return err
	}
	if err := seg(&b.setID, "set ID", b.p.SetID, f.mono); err != nil {
		return err
	}
	if err := seg(&b.dealer, "dealer fingerprint", b.p.DealerFingerprint,
		f.mono); err != nil {
		return err
	}
	for i, cv := range b.p.CheckValues {
		var runs []run
		field := fmt.Sprintf("check value %d", i+1)
		if err := seg(&runs, field, cv, f.sans); err != nil {
			return err
		}
		b.checks = append(b.checks, runs)
	}
	return nil
}

// paragraph measures spans wrapped to width and returns the lines and
// their height.
func (b *builder) paragraph(spans []span, size, width, leading float64) (
	[][]run, float64, error) {
	lines, err := b.fonts.wrap(spans, size, width)
	if err != nil {
		return nil, 0, err
	}
	return lines, float64(len(lines)) * leading, nil
}

// drawLines draws wrapped lines with the first baseline one ascent below y.
func drawLines(c *canvas, x, y float64, lines [][]run, size, leading float64) {
	base := y + ascentShare*size*ptToMM
	for i, l := range lines {
		c.text(x, base+float64(i)*leading, l, size)
	}
}

// addNotice adds the boxed warning at the top of the first page. It names
// the pages with the instructions, known only after pagination, so it is
// measured with measureRefs and drawn with the real pages.
func (b *builder) addNotice() error {
	spans := func(r pageRefs) []span {
		return []span{b.bold("SECRET."), b.sans(fmt.Sprintf(
			" This page is one share of a secret key that was split among "+
				"several people. On its own it reveals nothing; together with "+
				"other shares it rebuilds the key. Keep it sealed, away from "+
				"the other shares, and give it to no one. %s",
			noticeWhere(r)))}
	}
	const size, leading, pad = 10.0, 4.6, 3.0
	_, h, err := b.paragraph(spans(measureRefs), size, frameW-2*pad, leading)
	if err != nil {
		return err
	}

	b.add(&block{h: h + 2*pad + 4, draw: func(c *canvas, x, y float64) {
		lines, _, _ := b.paragraph(spans(b.refs()), size, frameW-2*pad,
			leading)
		c.grey(235)
		c.fill("fill", x, y, frameW, h+2*pad)
		c.grey(0)
		c.frameRect(x+0.25, y+0.25, frameW-0.5, h+2*pad-0.5, 0.5)
		drawLines(c, x+pad, y+pad, lines, size, leading)
	}})
	return nil
}

// detail is one row of the details table.
type detail struct {
	label string
	lines [][]run
	size  float64
}

// addDetails adds the table that says whose share this is and of what.
func (b *builder) addDetails() error {
	p := b.p
	const size, leading = 10.0, 4.8
	valueW := frameW - labelW

	wrapRuns := func(runs []run, size float64) ([][]run, error) {
		var spans []span
		for _, r := range runs {
			spans = append(spans, span{r.text, r.face, "detail"})
		}
		return b.fonts.wrap(spans, size, valueW)
	}
	var rows []detail
	addRow := func(label string, size float64, values ...[]run) error {
		var lines [][]run
		for _, v := range values {
			l, err := wrapRuns(v, size)
			if err != nil {
				return err
			}
			lines = append(lines, l...)
		}
		rows = append(rows, detail{label, lines, size})
		return nil
	}

	sansRuns := func(s string) []run { return []run{{b.fonts.sans, s}} }
	share := fmt.Sprintf("%d of %d. Any %d different shares of this set "+
		"rebuild the key; fewer reveal nothing about it.",
		p.Index, p.Count, p.Threshold)
	created := p.Created.UTC().Format("2 January 2006, 15:04 UTC")
	checks := b.checks
	if len(checks) == 0 {
		checks = [][]run{sansRuns("(none)")}
	}

	for _, err := range []error{
		addRow("Custodian", 15, b.name),
		addRow("Share", size, sansRuns(share)),
		addRow("Label", size, b.label),
		addRow("Secret kind", size, b.kind),
		addRow("Set ID", 9, b.setID),
		addRow("Check values", size, checks...),
		addRow("Dealer key", 9, b.dealer),
		addRow("Created", size, sansRuns(created)),
	} {
		if err != nil {
			return err
		}
	}

	h := 2.0
	for _, r := range rows {
		h += r.height(leading)
	}
	b.add(&block{h: h + 4, mark: "details", draw: func(c *canvas, x, y float64) {
		y += 2
		for _, r := range rows {
			r.draw(c, b.fonts, x, y, leading)
			y += r.height(leading)
		}
	}})
	return nil
}

// lead is the distance between the row's baselines: leading, or more for
// a large size.
func (r detail) lead(leading float64) float64 {
	return max(leading, r.size*ptToMM*1.3)
}

func (r detail) height(leading float64) float64 {
	return float64(len(r.lines))*r.lead(leading) + 1.2
}

// draw draws the row's label in the left column and its value lines
// beside it, the first baseline one ascent below y.
func (r detail) draw(c *canvas, f *fontSet, x, y, leading float64) {
	label := []run{{f.bold, r.label + ":"}}
	c.text(x, y+ascentShare*r.size*ptToMM, label, 9.5)
	drawLines(c, x+labelW, y, r.lines, r.size, r.lead(leading))
}

// addCodes adds the QR codes, two to a row, all with the same module size.
func (b *builder) addCodes() error {
	var biggest int
	for i, q := range b.p.QRPayloads {
		sym, err := encodeQR(q)
		if err != nil {
			return fmt.Errorf("QR payload %d: %w", i+1, err)
		}
		b.doc.symbols = append(b.doc.symbols, sym)
		biggest = max(biggest, sym.size())
	}
	dots := moduleDots(biggest, columnW)
	if dots == 0 {
		return fmt.Errorf("%w: a QR code of %d modules does not fit the page",
			ErrInvalidPage, biggest)
	}
	b.doc.module = float64(dots) * dot

	n := len(b.doc.symbols)
	title := "QR code"
	if n > 1 {
		title = fmt.Sprintf("QR codes (%d parts, scan them in any order)", n)
	}
	b.heading(title, "")

	side, sideH, err := b.codeNote()
	if err != nil {
		return err
	}
	for i := 0; i < n; i += 2 {
		first := i
		tallest := b.doc.symbols[i].size()
		if i+1 < n {
			tallest = max(tallest, b.doc.symbols[i+1].size())
		}
		// The code, the grid snap (under 0.2 mm) and the part label.
		rowH := float64(tallest)*b.doc.module + 8.5
		if i+1 == n {
			rowH = max(rowH, sideH+4)
		}
		b.add(&block{h: rowH, draw: func(c *canvas, x, y float64) {
			b.drawCode(c, first, x, y)
			if first+1 < n {
				b.drawCode(c, first+1, x+columnW+columnGap, y)
			} else {
				drawLines(c, x+columnW+columnGap, y+2, side, 9.5, 4.6)
			}
		}})
	}
	return nil
}

// codeNote is the text beside a lone code in the last row.
func (b *builder) codeNote() ([][]run, float64, error) {
	spans := []span{b.bold("Scanning. "), b.sans(
		"At a recovery, custos reads this code from a scan or a photo " +
			"of the whole page. If there are several codes they may be " +
			"read in any order. If a code is damaged or will not scan, " +
			"type the text form below instead: it holds the same share.")}
	return b.paragraph(spans, 9.5, columnW, 4.6)
}

// drawCode draws symbol i in a cell whose top-left corner is (x, y): the
// symbol on the printer-dot grid, with its quiet zone, and its part label.
func (b *builder) drawCode(c *canvas, i int, x, y float64) {
	sym := b.doc.symbols[i]
	m := b.doc.module
	ox := snap(x) + quietModules*m
	oy := snap(y) + quietModules*m
	b.doc.origins = append(b.doc.origins, [2]float64{ox, oy})

	c.grey(0)
	for _, r := range sym.rects() {
		c.fill("qr", ox+float64(r.x)*m, oy+float64(r.y)*m,
			float64(r.w)*m, float64(r.h)*m)
	}
	full := float64(sym.size()) * m
	c.record("quiet", snap(x), snap(y), full, full)

	label := fmt.Sprintf("Part %d of %d", i+1, len(b.doc.symbols))
	runs := []run{{b.fonts.bold, label}}
	lw := b.fonts.width(runs, 10)
	c.text(snap(x)+(full-lw)/2, snap(y)+full+4, runs, 10)
}

// snap moves a coordinate up to the next line of the module grid.
func snap(v float64) float64 {
	const step = snapDots * dot
	return math.Ceil(v/step-1e-9) * step
}

// textFormSize is the monospace size of the text form: 11 points, or less
// when a line would not fit the frame.
func (b *builder) textFormSize() (float64, error) {
	longest := ""
	for _, l := range b.p.TextLines {
		if len(l) > len(longest) {
			longest = l
		}
	}
	runs := []run{{b.fonts.mono, longest}}
	for size := 11.0; size >= 7; size -= 0.5 {
		if b.fonts.width(runs, size) <= frameW-4 {
			return size, nil
		}
	}
	return 0, fmt.Errorf("%w: text lines of %d characters do not fit the "+
		"page", ErrInvalidPage, len(longest))
}

// addTextForm adds the typable lines, shaded in alternate lines so a
// typist keeps their place, with the heading repeated on each new page.
func (b *builder) addTextForm() error {
	size, err := b.textFormSize()
	if err != nil {
		return err
	}
	intro, introH, err := b.paragraph([]span{b.sans(
		"Type these lines if the QR code cannot be read, line by line, " +
			"each with its number. Letter case and spaces do not matter. " +
			"The last group is a check, so custos can tell which line has " +
			"a typing mistake.")}, 9.5, frameW, 4.6)
	if err != nil {
		return err
	}

	head := b.heading("Text form", "textform")
	head.h += introH + 2
	headDraw := head.draw
	head.draw = func(c *canvas, x, y float64) {
		headDraw(c, x, y)
		drawLines(c, x, y+9, intro, 9.5, 4.6)
	}
	cont := b.headingBlock("Text form, continued")

	leading := size*ptToMM + 1.3
	n := len(b.p.TextLines)
	whole := head.h+float64(n)*leading <= bodyHeight
	for i, line := range b.p.TextLines {
		runs := []run{{b.fonts.mono, line}}
		shade := i%2 == 0
		// Keep the whole form on one page when it fits one; else keep
		// at least a few lines with the heading and at the end.
		keep := i < n-1 && (whole || i < 4 || i >= n-4)
		mark := ""
		if i == n-1 {
			mark = "textform-end"
		}
		b.add(&block{h: leading, cont: cont, keep: keep, mark: mark, draw: func(c *canvas, x, y float64) {
			if shade {
				c.grey(232)
				c.fill("fill", x, y, frameW, leading)
				c.grey(0)
			}
			c.text(x+2, y+leading-1.3-descentShare*size*ptToMM/2, runs, size)
		}})
	}
	b.add(&block{h: 5, draw: func(*canvas, float64, float64) {}})
	return nil
}

// addInstructions adds what a custodian or a successor must know, written
// for someone with no one to ask. Its paragraphs may flow onto the next
// page (keeping them together would add a page to a one-key share), so the
// notice names every page they are on. Their text names other pages, so it
// is measured with measureRefs and drawn with the real ones.
func (b *builder) addInstructions() error {
	b.heading("What to do with this page", "instructions")
	const size, leading, cmdIndent = 9.5, 4.4, 6.0
	paras := instructions(b.p, measureRefs)
	for i, para := range paras {
		lines, h, err := b.instruction(para, size, leading, cmdIndent)
		if err != nil {
			return err
		}

		blk := b.add(&block{h: h + 1.6})
		if i == len(paras)-1 {
			blk.mark = "instructions-end"
		}
		blk.draw = func(c *canvas, x, y float64) {
			drawn := lines
			para := instructions(b.p, b.refs())[i]
			if l, _, err := b.instruction(para, size, leading,
				cmdIndent); err == nil {
				drawn = l
			}
			for _, l := range drawn {
				c.text(x+l.indent, y+ascentShare*size*ptToMM, l.runs, size)
				y += leading
			}
		}
	}
	return nil
}

// instrLine is one drawn line of an instruction, indented for commands.
type instrLine struct {
	runs   []run
	indent float64
}

// instruction wraps one paragraph, its commands on lines of their own,
// and returns the lines and their height.
func (b *builder) instruction(para instruction, size, leading,
	indent float64) ([]instrLine, float64, error) {
	var out []instrLine
	spans := []span{b.bold(para.lead + " ")}
	flush := func() error {
		if len(spans) == 0 {
			return nil
		}
		wrapped, err := b.fonts.wrap(spans, size, frameW)
		for _, l := range wrapped {
			out = append(out, instrLine{l, 0})
		}
		spans = nil
		return err
	}

	for _, part := range para.parts {
		switch {
		case part.cmd:
			if err := flush(); err != nil {
				return nil, 0, err
			}
			wrapped, err := b.fonts.wrap([]span{{part.text, b.fonts.mono,
				part.field}}, size, frameW-indent)
			if err != nil {
				return nil, 0, err
			}
			for _, l := range wrapped {
				out = append(out, instrLine{l, indent})
			}
		case part.field != "":
			spans = append(spans, span{part.text, b.fonts.sans, part.field})
		default:
			spans = append(spans, b.sans(part.text))
		}
	}
	if err := flush(); err != nil {
		return nil, 0, err
	}
	return out, float64(len(out)) * leading, nil
}

// refs returns the pages the printed text points to, once paginated.
func (b *builder) refs() pageRefs {
	return pageRefs{
		instrFrom: pageOf(b.pages, "instructions"),
		instrTo:   pageOf(b.pages, "instructions-end"),
		details:   pageOf(b.pages, "details"),
		textFrom:  pageOf(b.pages, "textform"),
		textTo:    pageOf(b.pages, "textform-end"),
	}
}

// addSignatures adds lines for the custodian and a witness to sign.
func (b *builder) addSignatures() error {
	p := b.p
	b.heading("Receipt", "")
	statement, sh, err := b.paragraph([]span{b.sans(fmt.Sprintf(
		"I received share %d of %d of set ", p.Index, p.Count)),
		{p.SetID, b.fonts.sans, "set ID"},
		b.sans(", checked that every page is here and readable, and will " +
			"keep it as described above.")}, 9.5, frameW, 4.5)
	if err != nil {
		return err
	}
	var nameSpans []span
	for _, r := range b.name {
		nameSpans = append(nameSpans, span{r.text, r.face, "custodian name"})
	}
	name, nh, err := b.paragraph(append([]span{b.bold("Custodian: ")},
		nameSpans...), 10.5, frameW, 5)
	if err != nil {
		return err
	}

	type field struct {
		x, w    float64
		caption string
	}
	const rowH = 12.0
	small := func(s string) []run { return []run{{b.fonts.sans, s}} }
	fields := func(c *canvas, x, y float64, fs []field) {
		for _, f := range fs {
			c.grey(0)
			c.rule(x+f.x, y+8, f.w, 0.3)
			c.grey(90)
			c.text(x+f.x, y+11, small(f.caption), 7.5)
		}
		c.grey(0)
	}
	witness := []run{{b.fonts.bold, "Witness"}}

	h := sh + 2 + nh + rowH + 2 + 5 + rowH
	b.add(&block{h: h + 2, draw: func(c *canvas, x, y float64) {
		drawLines(c, x, y, statement, 9.5, 4.5)
		y += sh + 2
		drawLines(c, x, y, name, 10.5, 5)
		y += nh
		fields(c, x, y, []field{{0, 120, "Custodian's signature"},
			{130, 50, "Date"}})
		y += rowH + 2
		c.text(x, y+3.7, witness, 10.5)
		y += 5
		fields(c, x, y, []field{{0, 60, "Witness's name"},
			{66, 70, "Witness's signature"}, {142, 38, "Date"}})
	}})
	return nil
}

// title, headerLine, footerLine and footerNote are the share page's
// furniture: the title and the line under it, and the footer's left and
// right parts.
func (b *builder) title() string {
	return fmt.Sprintf("Secret key share %d of %d", b.p.Index, b.p.Count)
}

func (b *builder) headerLine() []run {
	p, f := b.p, b.fonts
	sub := joinRuns([]run{{f.sans, "Set "}}, b.setID)
	return joinRuns(sub, []run{{f.sans, fmt.Sprintf(
		"  ·  share %d  ·  any %d of the %d shares rebuild the key",
		p.Index, p.Threshold, p.Count)}})
}

func (b *builder) footerLine(page, pages int) []run {
	p, f := b.p, b.fonts
	left := joinRuns([]run{{f.sans, "custos  ·  set "}}, b.setID)
	return joinRuns(left, []run{{f.sans, fmt.Sprintf(
		"  ·  share %d of %d  ·  page %d of %d", p.Index, p.Count, page,
		pages)}})
}

func (b *builder) footerNote() []run {
	return []run{{b.fonts.bold, "SECRET: keep sealed"}}
}

// fitHeaderFooter picks font sizes that keep the header and footer lines
// inside the frame, shrinking them for a long set ID. The footer line is
// measured with a two-digit page count.
func (l *layout) fitHeaderFooter(f furniture) error {
	var ok bool
	l.headSize, ok = l.fonts.fit(f.headerLine(), 9.5, 6, frameW)
	if !ok {
		return l.kind.bad("the set ID is too wide for the page header")
	}
	room := frameW - l.fonts.width(f.footerNote(), 8) - 4
	l.footSize, ok = l.fonts.fit(f.footerLine(88, 88), 8, 5.5, room)
	if !ok {
		return l.kind.bad("the set ID is too wide for the page footer")
	}
	return nil
}

// draw renders every page with its header and footer.
func (l *layout) draw(f furniture) {
	c := &canvas{pdf: l.doc.pdf, fonts: l.fonts}
	fx, fy := l.paper.frame()
	for i, page := range l.pages {
		l.doc.pdf.AddPage()
		c.page = i + 1
		l.drawHeader(c, f, fx, fy, i+1)
		for _, pl := range page {
			c.grey(0)
			pl.b.draw(c, fx, fy+bodyTop+pl.y)
		}
		l.drawFooter(c, f, fx, fy, i+1)
	}
	l.doc.boxes = c.boxes
}

func (l *layout) drawHeader(c *canvas, f furniture, fx, fy float64,
	page int) {
	bold := l.fonts.bold
	c.grey(0)
	c.text(fx, fy+6, []run{{bold, f.title()}}, 16)

	pageRuns := []run{{bold, fmt.Sprintf("Page %d of %d", page,
		len(l.pages))}}
	pw := l.fonts.width(pageRuns, 12)
	c.text(fx+frameW-pw, fy+6, pageRuns, 12)

	c.text(fx, fy+12, f.headerLine(), l.headSize)
	c.rule(fx, fy+14.5, frameW, 0.6)
}

func (l *layout) drawFooter(c *canvas, f furniture, fx, fy float64,
	page int) {
	y := fy + frameH
	c.grey(0)
	c.rule(fx, y-5.5, frameW, 0.3)
	c.grey(70)
	c.text(fx, y-1.2, f.footerLine(page, len(l.pages)), l.footSize)
	right := f.footerNote()
	c.text(fx+frameW-l.fonts.width(right, 8), y-1.2, right, 8)
	c.grey(0)
}
