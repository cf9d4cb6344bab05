package printer

import "strings"

// span is a piece of a paragraph set in one base face.
type span struct {
	text  string
	base  *face
	field string // names the text's source in errors
}

// word is a stretch of text between spaces, ready to place.
type word struct {
	runs  []run
	w     float64
	space bool // a space comes before it
}

// wrap breaks spans into lines no wider than width millimetres at size
// points. Lines break at spaces; a word wider than a line (a long hex
// string, or Chinese text without spaces) is broken between characters.
func (set *fontSet) wrap(spans []span, size, width float64) ([][]run, error) {
	words, err := set.words(spans, size)
	if err != nil {
		return nil, err
	}

	set.use(set.sans, size)
	spaceW := set.pdf.GetStringWidth(" ")
	var lines [][]run
	var line []run
	lw := 0.0
	for _, wd := range words {
		gap := 0.0
		if wd.space && len(line) > 0 {
			gap = spaceW
		}
		if len(line) > 0 && lw+gap+wd.w > width {
			lines = append(lines, line)
			line, lw, gap = nil, 0, 0
		}
		for _, piece := range set.breakWord(wd, size, width) {
			if len(line) > 0 && piece.w > width-lw-gap {
				lines = append(lines, line)
				line, lw, gap = nil, 0, 0
			}
			if gap > 0 {
				line = joinRuns(line, []run{{set.sans, " "}})
			}
			line = joinRuns(line, piece.runs)
			lw += gap + piece.w
			gap = 0
		}
	}
	if len(line) > 0 {
		lines = append(lines, line)
	}
	return lines, nil
}

// words segments each span and splits it at spaces.
func (set *fontSet) words(spans []span, size float64) ([]word, error) {
	var words []word
	space := false
	for _, sp := range spans {
		for i, part := range strings.Split(sp.text, " ") {
			space = space || i > 0
			if part == "" {
				continue
			}
			runs, err := set.segment(sp.field, part, sp.base)
			if err != nil {
				return nil, err
			}
			words = append(words, word{runs, set.width(runs, size), space})
			space = false
		}
	}
	return words, nil
}

// breakWord returns wd whole when it fits a line of width millimetres,
// else in pieces that each fit one.
func (set *fontSet) breakWord(wd word, size, width float64) []word {
	if wd.w <= width {
		return []word{wd}
	}
	var out []word
	var cur word
	for _, r := range wd.runs {
		for _, cl := range clusters(r.text) {
			piece := []run{{r.face, cl}}
			w := set.width(piece, size)
			if len(cur.runs) > 0 && cur.w+w > width {
				out = append(out, cur)
				cur = word{}
			}
			cur.runs = joinRuns(cur.runs, piece)
			cur.w += w
		}
	}
	return append(out, cur)
}

// joinRuns appends b to a, merging runs that share a face.
func joinRuns(a, b []run) []run {
	out := append([]run(nil), a...)
	for _, r := range b {
		if n := len(out); n > 0 && out[n-1].face == r.face {
			out[n-1].text += r.text
			continue
		}
		out = append(out, r)
	}
	return out
}

// fit returns the largest size from most down to least, in half points,
// at which runs are no wider than width.
func (set *fontSet) fit(runs []run, most, least, width float64) (float64, bool) {
	for size := most; size >= least; size -= 0.5 {
		if set.width(runs, size) <= width {
			return size, true
		}
	}
	return least, false
}
