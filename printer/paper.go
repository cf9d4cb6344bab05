package printer

import (
	"fmt"
	"strings"
)

// Paper is a sheet size.
type Paper int

// The sheet sizes custos prints on.
const (
	A4 Paper = iota + 1
	Letter
)

// ParsePaper turns "a4" or "letter" (any case) into a Paper.
func ParsePaper(s string) (Paper, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "a4":
		return A4, nil
	case "letter", "us-letter", "usletter":
		return Letter, nil
	}
	return 0, fmt.Errorf("parsing paper size %q: want a4 or letter", s)
}

// String returns the name ParsePaper accepts.
func (p Paper) String() string {
	switch p {
	case A4:
		return "a4"
	case Letter:
		return "letter"
	}
	return fmt.Sprintf("Paper(%d)", int(p))
}

// size returns the sheet's width and height in millimetres.
func (p Paper) size() (w, h float64, ok bool) {
	switch p {
	case A4:
		return 210, 297, true
	case Letter:
		return 215.9, 279.4, true
	}
	return 0, 0, false
}

// The frame is the area everything is drawn in, the same on both sheets:
// centred, it keeps at least 15 mm from every edge of an A4 and of a Letter
// sheet, so a page still prints whole when it goes to a printer loaded
// with the other size at 100 % scale.
const (
	frameW = 180.0
	frameH = 249.4
)

// MinMargin is the least distance from any drawn element to the edge of
// either sheet size, in millimetres.
const MinMargin = 12.0

// frame returns the top-left corner of the frame on p.
func (p Paper) frame() (x, y float64) {
	w, h, _ := p.size()
	return (w - frameW) / 2, (h - frameH) / 2
}
