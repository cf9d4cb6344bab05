package printer

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"sort"
	"strings"
	"unicode"

	"github.com/go-pdf/fpdf"
	"golang.org/x/image/font/gofont/gobold"
	"golang.org/x/image/font/gofont/gomono"
	"golang.org/x/image/font/gofont/goregular"
)

// FallbackFonts lists TrueType files tried, in order, for characters that
// the built-in Go fonts lack (they cover Latin, Greek and Cyrillic). Files
// that do not exist are skipped. The defaults are Debian's paths:
// fonts-dejavu-core widens Latin, Greek and Cyrillic and adds Armenian,
// Georgian and many symbols; fonts-droid-fallback adds Chinese, Japanese
// and Korean. Only fonts with TrueType outlines can be embedded, so
// OpenType/CFF files such as fonts-noto-cjk's are refused.
var FallbackFonts = []string{
	"/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
	"/usr/share/fonts/truetype/droid/DroidSansFallbackFull.ttf",
}

// UnprintableError reports text that custos cannot print faithfully. A page
// is never printed with missing glyphs ("tofu"), reordered right-to-left
// text or unshaped letters; the caller should offer a transliteration or
// install a font.
type UnprintableError struct {
	Field  string // the page field, e.g. "custodian name"
	Chars  []rune // the distinct offending characters, in order
	Reason string // why they cannot be printed
}

func (e *UnprintableError) Error() string {
	var cps []string
	for _, r := range e.Chars {
		cps = append(cps, fmt.Sprintf("U+%04X", r))
	}
	return fmt.Sprintf("%s: cannot print %q (%s): %s",
		e.Field, string(e.Chars), strings.Join(cps, " "), e.Reason)
}

// shapedScripts are scripts that need right-to-left ordering or glyph
// shaping, which fpdf does not do: printed letter by letter they would be
// wrong, and a custodian might not notice.
var shapedScripts = map[string]*unicode.RangeTable{
	"Arabic": unicode.Arabic, "Hebrew": unicode.Hebrew,
	"Syriac": unicode.Syriac, "Thaana": unicode.Thaana,
	"NKo": unicode.Nko, "Samaritan": unicode.Samaritan,
	"Mandaic": unicode.Mandaic, "Devanagari": unicode.Devanagari,
	"Bengali": unicode.Bengali, "Gurmukhi": unicode.Gurmukhi,
	"Gujarati": unicode.Gujarati, "Oriya": unicode.Oriya,
	"Tamil": unicode.Tamil, "Telugu": unicode.Telugu,
	"Kannada": unicode.Kannada, "Malayalam": unicode.Malayalam,
	"Sinhala": unicode.Sinhala, "Thai": unicode.Thai, "Lao": unicode.Lao,
	"Tibetan": unicode.Tibetan, "Myanmar": unicode.Myanmar,
	"Khmer": unicode.Khmer, "Mongolian": unicode.Mongolian,
	"Javanese": unicode.Javanese, "Balinese": unicode.Balinese,
	"Tai Tham": unicode.Tai_Tham, "Sundanese": unicode.Sundanese,
}

// face is one font a page can draw with.
type face struct {
	family string // fpdf family key, lower case
	style  string // "" or "B"
	ttf    []byte
	cov    coverage
	added  bool
}

// fontSet holds the built-in faces and, once needed, the fallbacks.
type fontSet struct {
	pdf       *fpdf.Fpdf
	sans      *face
	bold      *face
	mono      *face
	fallbacks []*face
	loaded    bool
	skipped   []string // fallback files that exist but could not be used
}

// run is a stretch of text drawn with one face.
type run struct {
	face *face
	text string
}

func newFontSet(pdf *fpdf.Fpdf) (*fontSet, error) {
	set := &fontSet{pdf: pdf}
	var err error
	if set.sans, err = builtinFace("gosans", "", goregular.TTF); err != nil {
		return nil, err
	}
	if set.bold, err = builtinFace("gosans", "B", gobold.TTF); err != nil {
		return nil, err
	}
	if set.mono, err = builtinFace("gomono", "", gomono.TTF); err != nil {
		return nil, err
	}
	return set, nil
}

func builtinFace(family, style string, ttf []byte) (*face, error) {
	cov, err := parseCoverage(ttf)
	if err != nil {
		return nil, fmt.Errorf("reading built-in font %s%s: %w", family, style, err)
	}
	return &face{family: family, style: style, ttf: ttf, cov: cov}, nil
}

// loadFallbacks reads FallbackFonts once. Missing files are skipped
// silently; files that exist but cannot be used are noted for the error
// message, so a user learns why a character could not be printed.
func (set *fontSet) loadFallbacks() {
	if set.loaded {
		return
	}
	set.loaded = true
	for i, path := range FallbackFonts {
		ttf, err := os.ReadFile(path)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			set.skipped = append(set.skipped, fmt.Sprintf("%s: %v", path, err))
			continue
		}
		cov, err := parseCoverage(ttf)
		if err != nil {
			set.skipped = append(set.skipped, fmt.Sprintf("%s: %v", path, err))
			continue
		}
		f := &face{family: fmt.Sprintf("fallback%d", i), ttf: ttf, cov: cov}
		set.fallbacks = append(set.fallbacks, f)
	}
}

// use selects f in the PDF at size points, embedding it on first use.
//
// TODO: fpdf reports a font it cannot parse by printing to standard output
// and leaving the font undefined; parseCoverage refuses non-TrueType files
// first, so only a corrupt TrueType file could get that far.
func (set *fontSet) use(f *face, size float64) {
	if !f.added {
		set.pdf.AddUTF8FontFromBytes(f.family, f.style, f.ttf)
		f.added = true
	}
	set.pdf.SetFont(f.family, f.style, size)
}

// width returns the width of runs in millimetres at size points.
func (set *fontSet) width(runs []run, size float64) float64 {
	w := 0.0
	for _, r := range runs {
		set.use(r.face, size)
		w += set.pdf.GetStringWidth(r.text)
	}
	return w
}

// segment splits s into runs, each drawn with the first face that has
// every character of a cluster (a base character and the combining marks
// after it), starting from base. It refuses characters no face has,
// control and invisible characters, and scripts fpdf cannot lay out.
func (set *fontSet) segment(field, s string, base *face) ([]run, error) {
	if err := checkScripts(field, s); err != nil {
		return nil, err
	}

	var runs []run
	var missing []rune
	add := func(f *face, text string) {
		if n := len(runs); n > 0 && (runs[n-1].face == f || text == " ") {
			runs[n-1].text += text
			return
		}
		runs = append(runs, run{f, text})
	}
	for i, word := range strings.Split(s, " ") {
		if i > 0 {
			add(base, " ")
		}
		// A word in one face reads better than letters from two.
		if f := set.pick(word, base); f != nil {
			add(f, word)
			continue
		}
		for _, cl := range clusters(word) {
			f := set.pick(cl, base)
			if f == nil {
				missing = appendNew(missing, []rune(cl)...)
				continue
			}
			add(f, cl)
		}
	}

	if len(missing) > 0 {
		return nil, &UnprintableError{Field: field, Chars: missing,
			Reason: set.missingReason()}
	}
	return runs, nil
}

// pick returns the first face that has every rune of cl.
func (set *fontSet) pick(cl string, base *face) *face {
	if coversAll(base.cov, cl) {
		return base
	}
	if base != set.sans && coversAll(set.sans.cov, cl) {
		return set.sans
	}
	set.loadFallbacks()
	for _, f := range set.fallbacks {
		if coversAll(f.cov, cl) {
			return f
		}
	}
	return nil
}

func (set *fontSet) missingReason() string {
	reason := "no installed font has them (the Go fonts cover Latin, " +
		"Greek and Cyrillic; install fonts-dejavu-core or, for Chinese, " +
		"Japanese and Korean, fonts-droid-fallback, or give a " +
		"transliteration)"
	if len(set.skipped) > 0 {
		reason += "; unusable font files: " + strings.Join(set.skipped, "; ")
	}
	return reason
}

func coversAll(c coverage, s string) bool {
	for _, r := range s {
		if !c.has(r) {
			return false
		}
	}
	return true
}

// checkScripts refuses what no font can fix: invisible and control
// characters (a bidi override could make a name read differently on paper
// than on screen), characters beyond the Basic Multilingual Plane (fpdf
// maps only 16-bit code points), and scripts that need shaping or
// right-to-left layout.
func checkScripts(field, s string) error {
	var bad []rune
	for _, r := range s {
		if r == ' ' {
			continue
		}
		if !unicode.IsGraphic(r) || unicode.IsSpace(r) {
			bad = appendNew(bad, r)
		}
	}
	if len(bad) > 0 {
		return &UnprintableError{Field: field, Chars: bad,
			Reason: "control, invisible or non-standard space characters"}
	}

	for _, r := range s {
		if r > 0xFFFF {
			bad = appendNew(bad, r)
		}
	}
	if len(bad) > 0 {
		return &UnprintableError{Field: field, Chars: bad,
			Reason: "characters outside the Basic Multilingual Plane " +
				"cannot be embedded by the PDF library"}
	}

	for _, name := range sortedScriptNames() {
		for _, r := range s {
			if unicode.Is(shapedScripts[name], r) {
				bad = appendNew(bad, r)
			}
		}
		if len(bad) > 0 {
			return &UnprintableError{Field: field, Chars: bad,
				Reason: name + " script needs right-to-left layout or " +
					"letter shaping, which custos cannot print correctly; " +
					"give a transliteration in Latin letters"}
		}
	}
	return nil
}

func sortedScriptNames() []string {
	names := make([]string, 0, len(shapedScripts))
	for n := range shapedScripts {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// clusters splits s into a base character followed by its combining marks.
//
// TODO: marks are placed by their own zero-width glyphs, as fpdf does no
// OpenType positioning; fine for Latin, Greek and Cyrillic accents in
// DejaVu and the Go fonts, rough for stacked marks (e.g. Vietnamese typed
// decomposed). Composing to NFC first needs golang.org/x/text/unicode/norm.
func clusters(s string) []string {
	var out []string
	for _, r := range s {
		if n := len(out); n > 0 && unicode.In(r, unicode.Mn, unicode.Me) {
			out[n-1] += string(r)
			continue
		}
		out = append(out, string(r))
	}
	return out
}

func appendNew(list []rune, rs ...rune) []rune {
	for _, r := range rs {
		found := false
		for _, have := range list {
			found = found || have == r
		}
		if !found {
			list = append(list, r)
		}
	}
	return list
}
