package printer

import (
	"fmt"

	"github.com/go-pdf/fpdf"
)

// ptToMM converts a font size in points to millimetres.
const ptToMM = 25.4 / 72

// Glyph extents as a share of the font size, generous for the fonts used,
// so the recorded boxes enclose what is inked.
const (
	ascentShare  = 0.95
	descentShare = 0.3
)

// box is the extent of one drawn element in millimetres from the page's
// top-left corner. Tests use the boxes to check the page geometry.
type box struct {
	page       int
	x, y, w, h float64
	kind       string // "text", "rule", "fill" or "qr"
}

// canvas draws on the PDF and records a box for every element.
type canvas struct {
	pdf   *fpdf.Fpdf
	fonts *fontSet
	page  int
	boxes []box
}

func (c *canvas) record(kind string, x, y, w, h float64) {
	c.boxes = append(c.boxes, box{c.page, x, y, w, h, kind})
}

// text draws runs with the left end of their baseline at (x, baseline)
// and returns their width.
func (c *canvas) text(x, baseline float64, runs []run, size float64) float64 {
	start := x
	for _, r := range runs {
		c.fonts.use(r.face, size)
		c.pdf.Text(x, baseline, r.text)
		x += c.pdf.GetStringWidth(r.text)
	}
	mm := size * ptToMM
	c.record("text", start, baseline-ascentShare*mm, x-start,
		(ascentShare+descentShare)*mm)
	return x - start
}

// fill draws a filled rectangle in the current fill colour.
func (c *canvas) fill(kind string, x, y, w, h float64) {
	c.pdf.Rect(x, y, w, h, "F")
	c.record(kind, x, y, w, h)
}

// rule draws a horizontal line of the given width in millimetres.
func (c *canvas) rule(x, y, length, width float64) {
	c.pdf.SetLineWidth(width)
	c.pdf.Line(x, y, x+length, y)
	c.record("rule", x, y-width/2, length, width)
}

// frameRect draws an unfilled rectangle.
func (c *canvas) frameRect(x, y, w, h, width float64) {
	c.pdf.SetLineWidth(width)
	c.pdf.Rect(x, y, w, h, "D")
	c.record("rule", x-width/2, y-width/2, w+width, h+width)
}

// grey sets text, fill and line colour to one grey level (0 is black).
func (c *canvas) grey(level int) {
	c.pdf.SetTextColor(level, level, level)
	c.pdf.SetFillColor(level, level, level)
	c.pdf.SetDrawColor(level, level, level)
}

// block is a piece of the page flow: it is never split across pages.
type block struct {
	h    float64
	draw func(c *canvas, x, y float64)

	// keep holds the block on the same page as the one after it.
	keep bool
	// cont, when a page starts with this block, is drawn above it, so a
	// section continued from the previous page is named again.
	cont *block
	// mark names the block, so other blocks can learn its page number.
	mark string
}

// placed is a block at its position.
type placed struct {
	b *block
	y float64
}

// paginate lays blocks out top to bottom in pages of height avail.
func paginate(blocks []*block, avail float64) ([][]placed, error) {
	var pages [][]placed
	var cur []placed
	y := 0.0
	for i, b := range blocks {
		if b.h > avail {
			return nil, fmt.Errorf("laying out page: a block of %.0f mm "+
				"is taller than the %.0f mm page body", b.h, avail)
		}

		need := b.h
		for j := i; j+1 < len(blocks) && blocks[j].keep; j++ {
			need += blocks[j+1].h
		}
		if len(cur) > 0 && y+min(need, avail) > avail {
			pages = append(pages, cur)
			cur, y = nil, 0
			if b.cont != nil {
				cur = append(cur, placed{b.cont, 0})
				y = b.cont.h
			}
		}
		cur = append(cur, placed{b, y})
		y += b.h
	}
	if len(cur) > 0 {
		pages = append(pages, cur)
	}
	return pages, nil
}

// pageOf returns the 1-based page holding the block marked mark, or 0.
func pageOf(pages [][]placed, mark string) int {
	for i, p := range pages {
		for _, pl := range p {
			if pl.b.mark == mark {
				return i + 1
			}
		}
	}
	return 0
}
