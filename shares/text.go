package shares

import (
	"crypto/sha256"
	"encoding/base32"
	"encoding/binary"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// The text form of a share is for typing. It is the binary share in
// uppercase base32 without padding, 40 characters (25 bytes) a line in
// groups of five, each line numbered and ending in a four-character check:
//
//	001: ABCDE FGHIJ KLMNO PQRST UVWXY Z2345 67ABC DEFGH  K7Q2
//
// A typo is reported with its line number. Case, spaces, blank lines and
// line breaks do not matter: a colon marks each line and the three
// characters before it are its number. Lines starting with '#' are notes for
// people and are ignored. The digits 0, 1 and 8 are not base32, so where a
// typist wrote them for O, I and B the line check decides.
//
// A QR payload is the same lines without spaces, behind a part header:
//
//	CUSTOS PART 1 OF 2 7Q2KD4XA 001:ABCDE…K7Q2 002:…
//
// Every character is in QR alphanumeric mode, so decoders that guess
// character sets cannot garble it. The tag is the start of the share's
// fingerprint; it ties the parts of one share together.

const (
	lineChars  = 40 // base32 characters a line
	groupChars = 5
	checkChars = 4
	// QRMaxChars bounds one QR payload so that codes stay readable from
	// photographs at error correction H.
	QRMaxChars = 1000
)

var b32 = base32.StdEncoding.WithPadding(base32.NoPadding)

// TextError says which line of a typed share is wrong.
type TextError struct {
	Source string
	Line   int // 0 when the error is not about one line
	Reason string
}

func (e *TextError) Error() string {
	where := "share text"
	if e.Source != "" {
		where = e.Source
	}
	if e.Line > 0 {
		return fmt.Sprintf("%s: line %d: %s", where, e.Line, e.Reason)
	}
	return fmt.Sprintf("%s: %s", where, e.Reason)
}

// TextLines returns the typable lines of the share.
func (s *Share) TextLines() []string {
	body := b32.EncodeToString(s.Marshal())
	var lines []string
	for n := 1; len(body) > 0; n++ {
		chunk := body[:min(lineChars, len(body))]
		body = body[len(chunk):]
		var groups []string
		for i := 0; i < len(chunk); i += groupChars {
			groups = append(groups, chunk[i:min(i+groupChars, len(chunk))])
		}
		lines = append(lines, fmt.Sprintf("%03d: %-47s  %s", n, strings.Join(groups, " "), lineCheck(n, chunk)))
	}
	return lines
}

// Text returns the share's text form with a short note for people.
func (s *Share) Text() string {
	var b strings.Builder
	fmt.Fprintf(&b, "# custos share %d of %d (any %d rebuild the secret)\n", s.Index, s.Count, s.Threshold)
	fmt.Fprintf(&b, "# set %s, label %q, custodian %q\n", s.SetID, s.Label, s.Custodian)
	b.WriteString("# Type the numbered lines exactly. Spaces and letter case do not matter.\n")
	for _, l := range s.TextLines() {
		b.WriteString(l)
		b.WriteByte('\n')
	}
	return b.String()
}

// lineCheck is the first 20 bits of SHA-256 over the line number and data.
func lineCheck(n int, data string) string {
	h := sha256.New()
	h.Write([]byte("custos line check v1\x00"))
	h.Write(binary.BigEndian.AppendUint16(nil, uint16(n)))
	h.Write([]byte(data))
	return b32.EncodeToString(h.Sum(nil)[:3])[:checkChars]
}

// Tag is the short fingerprint that names the share in its QR parts.
func (s *Share) Tag() string {
	fp := s.Fingerprint()
	return b32.EncodeToString(fp[:5])
}

// QRPayloads returns the share as one or more QR payloads, each at most
// QRMaxChars characters and naming its part.
func (s *Share) QRPayloads() []string {
	var compact []string
	for _, l := range s.TextLines() {
		compact = append(compact, strings.ReplaceAll(l, " ", ""))
	}
	header := len("CUSTOS PART 999 OF 999 ") + len(s.Tag()) + 1
	var parts [][]string
	size := QRMaxChars
	for _, l := range compact {
		if size+len(l)+1 > QRMaxChars-header {
			parts = append(parts, nil)
			size = 0
		}
		parts[len(parts)-1] = append(parts[len(parts)-1], l)
		size += len(l) + 1
	}
	out := make([]string, len(parts))
	for i, p := range parts {
		out[i] = fmt.Sprintf("CUSTOS PART %d OF %d %s %s", i+1, len(parts), s.Tag(), strings.Join(p, " "))
	}
	return out
}

// normalize drops note lines and whitespace and folds case.
func normalize(text string) string {
	var b strings.Builder
	for _, line := range strings.Split(strings.ReplaceAll(text, "\r", "\n"), "\n") {
		if strings.HasPrefix(strings.TrimSpace(line), "#") {
			continue
		}
		for _, r := range line {
			switch r {
			case ' ', '\t', '\v', '\f', '\u00a0':
				continue
			}
			b.WriteRune(r)
		}
	}
	return strings.ToUpper(b.String())
}

// textLine is one numbered line as typed or scanned.
type textLine struct {
	n    int
	data string // base32, checked
}

// splitLines finds the numbered lines of normalized text; what stands
// before the first line is returned as the header.
func splitLines(s, source string) (header string, lines []textLine, err error) {
	var colons []int
	for i := 0; i < len(s); i++ {
		if s[i] == ':' {
			colons = append(colons, i)
		}
	}
	if len(colons) == 0 {
		return "", nil, &TextError{Source: source, Reason: "no numbered lines found (each line starts like \"001:\")"}
	}
	if colons[0] < 3 {
		return "", nil, &TextError{Source: source, Reason: "the first line has no three-digit number before its colon"}
	}
	header = s[:colons[0]-3]
	for i, c := range colons {
		num := s[c-3 : c]
		end := len(s)
		if i+1 < len(colons) {
			end = colons[i+1] - 3
		}
		if end < c+1 {
			return "", nil, &TextError{Source: source, Reason: fmt.Sprintf("the line after %q is empty or its number is cut short", num)}
		}
		l, err := parseLine(num, s[c+1:end], source)
		if err != nil {
			return "", nil, err
		}
		lines = append(lines, l)
	}
	return header, lines, nil
}

func parseLine(num, rest, source string) (textLine, error) {
	n, err := strconv.Atoi(num)
	if err != nil || n < 1 {
		return textLine{}, &TextError{Source: source, Reason: fmt.Sprintf("%q is not a line number (three digits, like 007)", num)}
	}
	if len(rest) <= checkChars {
		return textLine{}, &TextError{Source: source, Line: n, Reason: "the line is too short: it needs its data and a four-character check"}
	}
	data, check := rest[:len(rest)-checkChars], rest[len(rest)-checkChars:]
	if len(data) > lineChars {
		return textLine{}, &TextError{Source: source, Line: n, Reason: fmt.Sprintf("the line has %d characters of data, at most %d fit: a character too many?", len(data), lineChars)}
	}
	if lineCheck(n, data) == check {
		return textLine{n, data}, nil
	}
	// 0, 1 and 8 are not base32; try the letters they are mistaken for.
	fixed := strings.NewReplacer("0", "O", "1", "I", "8", "B").Replace(data)
	fixedCheck := strings.NewReplacer("0", "O", "1", "I", "8", "B").Replace(check)
	if lineCheck(n, fixed) == fixedCheck {
		return textLine{n, fixed}, nil
	}
	return textLine{}, &TextError{Source: source, Line: n, Reason: "the line check does not match: a character on this line is mistyped"}
}

// CheckTextLine checks one typed line of a share on its own, as it is
// typed, so that a typo can be caught at once: it returns the line's
// number, or a TextError saying what is wrong with it. Note lines and
// blank lines are not lines of the share: they return 0 and no error.
func CheckTextLine(line string) (int, error) {
	s := normalize(line)
	if s == "" {
		return 0, nil
	}
	_, lines, err := splitLines(s, "")
	if err != nil {
		return 0, err
	}
	if len(lines) != 1 {
		return 0, &TextError{Reason: fmt.Sprintf("%d numbered lines typed as one: type one line at a time", len(lines))}
	}
	return lines[0].n, nil
}

// ParseText decodes a typed share and checks it like Parse. source names
// the text in errors, usually its file name.
func ParseText(text, source string) (*Share, error) {
	header, lines, err := splitLines(normalize(text), source)
	if err != nil {
		return nil, err
	}
	if header != "" {
		if _, _, _, err := parsePartHeader(header); err != nil {
			return nil, &TextError{Source: source, Reason: fmt.Sprintf("unexpected text %q before the first line", header)}
		}
	}
	return assemble(lines, source)
}

// assemble orders lines, finds gaps and decodes the share.
func assemble(lines []textLine, source string) (*Share, error) {
	byNum := map[int]string{}
	maxN := 0
	for _, l := range lines {
		if prev, ok := byNum[l.n]; ok && prev != l.data {
			return nil, &TextError{Source: source, Line: l.n, Reason: "the line appears twice with different contents"}
		}
		byNum[l.n] = l.data
		maxN = max(maxN, l.n)
	}
	var body strings.Builder
	for n := 1; n <= maxN; n++ {
		data, ok := byNum[n]
		if !ok {
			return nil, &TextError{Source: source, Line: n, Reason: "the line is missing"}
		}
		if n < maxN && len(data) != lineChars {
			return nil, &TextError{Source: source, Line: n, Reason: fmt.Sprintf("the line has %d characters of data, every line but the last has %d: a character is missing", len(data), lineChars)}
		}
		body.WriteString(data)
	}
	raw, err := b32.DecodeString(body.String())
	if err != nil {
		return nil, &TextError{Source: source, Line: maxN, Reason: "the last line does not decode: a character is missing or extra"}
	}
	s, err := Parse(raw, source)
	var pe *ParseError
	if errors.As(err, &pe) && strings.HasPrefix(pe.Reason, "truncated") {
		return nil, &TextError{Source: source, Reason: fmt.Sprintf("the share stops after line %d: lines at the end are missing", maxN)}
	}
	return s, err
}

func parsePartHeader(h string) (part, of int, tag string, err error) {
	bad := errors.New("not a custos QR part header")
	if !strings.HasPrefix(h, "CUSTOSPART") {
		return 0, 0, "", bad
	}
	h = strings.TrimPrefix(h, "CUSTOSPART")
	i := strings.Index(h, "OF")
	if i < 1 {
		return 0, 0, "", bad
	}
	part, err1 := strconv.Atoi(h[:i])
	rest := h[i+2:]
	// The count runs until the tag, which is 8 base32 characters.
	if len(rest) < 9 {
		return 0, 0, "", bad
	}
	of, err2 := strconv.Atoi(rest[:len(rest)-8])
	tag = rest[len(rest)-8:]
	if err1 != nil || err2 != nil || part < 1 || of < part {
		return 0, 0, "", bad
	}
	return part, of, tag, nil
}

// Parts gathers QR payloads, from any number of images in any order, into
// shares.
type Parts struct {
	byTag map[string]*partial
	order []string
}

type partial struct {
	of      int
	parts   map[int][]textLine
	sources []string
}

// Add takes one decoded QR payload. source names the image it came from.
func (p *Parts) Add(payload, source string) error {
	header, lines, err := splitLines(normalize(payload), source)
	if err != nil {
		return fmt.Errorf("QR code in %s is not a custos share: %w", source, err)
	}
	part, of, tag, err := parsePartHeader(header)
	if err != nil {
		return fmt.Errorf("QR code in %s is not a custos share part", source)
	}
	if p.byTag == nil {
		p.byTag = map[string]*partial{}
	}
	pa := p.byTag[tag]
	if pa == nil {
		pa = &partial{of: of, parts: map[int][]textLine{}}
		p.byTag[tag] = pa
		p.order = append(p.order, tag)
	}
	if pa.of != of {
		return fmt.Errorf("QR code in %s says part %d of %d, an earlier part of share %s said of %d", source, part, of, tag, pa.of)
	}
	pa.parts[part] = lines
	if !containsString(pa.sources, source) {
		pa.sources = append(pa.sources, source)
	}
	return nil
}

func containsString(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// Complete reports whether at least one share was seen and every share
// seen has all its parts, so a reader can stop looking at further pages.
func (p *Parts) Complete() bool {
	if len(p.order) == 0 {
		return false
	}
	for _, pa := range p.byTag {
		if len(pa.parts) < pa.of {
			return false
		}
	}
	return true
}

// PartsError says why the QR codes read from some images do not make a
// share. Source names those images.
type PartsError struct{ Source, Reason string }

func (e *PartsError) Error() string { return e.Source + ": " + e.Reason }

// Shares returns the complete shares. A share with missing parts is an
// error naming the parts and the images that were read.
func (p *Parts) Shares() ([]*Share, error) {
	var out []*Share
	var errs []error
	for _, tag := range p.order {
		pa := p.byTag[tag]
		source := strings.Join(pa.sources, "+")
		var missing []string
		var lines []textLine
		for i := 1; i <= pa.of; i++ {
			if l, ok := pa.parts[i]; ok {
				lines = append(lines, l...)
			} else {
				missing = append(missing, strconv.Itoa(i))
			}
		}
		if len(missing) > 0 {
			sort.Strings(missing)
			errs = append(errs, &PartsError{source, fmt.Sprintf("QR part %s of %d missing; scan the rest of that share's pages", strings.Join(missing, ", "), pa.of)})
			continue
		}
		s, err := assemble(lines, source)
		if err != nil {
			errs = append(errs, &PartsError{source, err.Error()})
			continue
		}
		if s.Tag() != tag {
			errs = append(errs, &PartsError{source, fmt.Sprintf("QR parts tagged %s do not make the share they name", tag)})
			continue
		}
		out = append(out, s)
	}
	return out, errors.Join(errs...)
}
