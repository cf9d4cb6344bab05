package printer

import (
	"fmt"

	qrcode "github.com/skip2/go-qrcode"
)

// MaxQRPayload is the longest QR payload WriteSharePDF accepts, in
// characters. At error correction H it needs QR version 32 (145 modules).
const MaxQRPayload = 1200

// dot is the unit of QR geometry: 1/300 inch. Symbols start on a grid of
// two dots (1/150 inch) and modules are an even number of dots, so every
// module edge falls on a pixel edge when the page is printed or rasterised
// at 150, 300 or 600 dpi, and modules stay whole and equal.
const (
	dot      = 25.4 / 300
	snapDots = 2
)

// Module sizes in dots: 6 dots is 0.508 mm, the smallest module printed;
// 8 dots (0.677 mm) is the largest, which keeps a short share's code small
// enough to leave room for its text form.
const (
	minModuleDots = 6
	maxModuleDots = 8
)

// quietModules is the blank margin the QR specification requires around a
// symbol, in modules.
const quietModules = 4

// qrSymbol is one encoded payload.
type qrSymbol struct {
	version int
	modules [][]bool // without the quiet zone
}

// isQRAlphanumeric reports whether c is in the QR alphanumeric set
// (ISO/IEC 18004, table 5).
func isQRAlphanumeric(c byte) bool {
	switch {
	case c >= '0' && c <= '9', c >= 'A' && c <= 'Z':
		return true
	}
	switch c {
	case ' ', '$', '%', '*', '+', '-', '.', '/', ':':
		return true
	}
	return false
}

// encodeQR encodes payload at error correction H. go-qrcode picks the
// alphanumeric mode by itself for such payloads.
func encodeQR(payload string) (*qrSymbol, error) {
	q, err := qrcode.New(payload, qrcode.Highest)
	if err != nil {
		return nil, fmt.Errorf("encoding QR code: %w", err)
	}
	q.DisableBorder = true
	return &qrSymbol{version: q.VersionNumber, modules: q.Bitmap()}, nil
}

// size is the symbol's width in modules, quiet zone included.
func (s *qrSymbol) size() int { return len(s.modules) + 2*quietModules }

// moduleRect is a dark rectangle in module units, relative to the symbol's
// top-left corner (quiet zone excluded).
type moduleRect struct{ x, y, w, h int }

// rects covers the dark modules with rectangles: runs along each row are
// merged, then equal runs in consecutive rows are stacked. Every edge lies
// on the module grid.
func (s *qrSymbol) rects() []moduleRect {
	var out []moduleRect
	open := map[[2]int]int{} // (x, w) -> index in out of a rect ending on the previous row
	for y, row := range s.modules {
		next := map[[2]int]int{}
		for x := 0; x < len(row); {
			if !row[x] {
				x++
				continue
			}
			start := x
			for x < len(row) && row[x] {
				x++
			}
			key := [2]int{start, x - start}
			if i, ok := open[key]; ok {
				out[i].h++
				next[key] = i
				continue
			}
			out = append(out, moduleRect{start, y, x - start, 1})
			next[key] = len(out) - 1
		}
		open = next
	}
	return out
}

// moduleDots picks the largest module, in dots, that lets a symbol of
// size modules fit in width millimetres, or 0 when even the smallest does
// not fit.
func moduleDots(size int, width float64) int {
	for d := maxModuleDots; d >= minModuleDots; d -= snapDots {
		if float64(size*d)*dot <= width {
			return d
		}
	}
	return 0
}
