package scan

import (
	"github.com/makiuchi-d/gozxing"
	"github.com/makiuchi-d/gozxing/common"
	"github.com/makiuchi-d/gozxing/qrcode/decoder"
)

// blankRadius is the half-width, in modules, of the window that must be of
// one colour for a module to count as blank (covered, torn or stained).
// In the random-looking data of a QR code a 5 x 5 window of one colour
// comes up once in 2^24, so clean modules are almost never suspected.
const blankRadius = 2

// decodeWithErasures decodes a sampled code whose damaged part is blank:
// codewords with a module inside a blank area are treated as erasures,
// which lets Reed-Solomon correct about twice as many of them.
func decodeWithErasures(bits *gozxing.BitMatrix) (*common.DecoderResult, error) {
	flipped, any := flipBlank(bits)
	if !any {
		return nil, errTooManyErrors
	}

	parser, err := decoder.NewBitMatrixParser(clone(bits))
	if err != nil {
		return nil, err
	}
	version, err := parser.ReadVersion()
	if err != nil {
		return nil, err
	}
	format, err := parser.ReadFormatInformation()
	if err != nil {
		return nil, err
	}
	level := format.GetErrorCorrectionLevel()
	words, err := parser.ReadCodewords()
	if err != nil {
		return nil, err
	}

	// The same walk over the matrix with blank modules flipped differs
	// exactly in the codewords that hold a blank module; the data mask
	// cancels out.
	fp, err := decoder.NewBitMatrixParser(flipped)
	if err != nil {
		return nil, err
	}
	other, err := fp.ReadCodewords()
	if err != nil {
		return nil, err
	}
	marks := make([]byte, len(words))
	for i := range words {
		if words[i] != other[i] {
			marks[i] = 1
		}
	}

	blocks, err := decoder.DataBlock_GetDataBlocks(words, version, level)
	if err != nil {
		return nil, err
	}
	markBlocks, err := decoder.DataBlock_GetDataBlocks(marks, version, level)
	if err != nil {
		return nil, err
	}

	var data []byte
	for i, b := range blocks {
		cw := b.GetCodewords()
		var erasures []int
		for j, m := range markBlocks[i].GetCodewords() {
			if m != 0 {
				erasures = append(erasures, j)
			}
		}
		if err := rsCorrect(cw, len(cw)-b.GetNumDataCodewords(), erasures); err != nil {
			return nil, err
		}
		data = append(data, cw[:b.GetNumDataCodewords()]...)
	}
	return decoder.DecodedBitStreamParser_Decode(data, version, level, hints)
}

// flipBlank returns a copy of bits with every blank module flipped, except
// in the format and version information, which the parser must still
// read the same way.
func flipBlank(bits *gozxing.BitMatrix) (*gozxing.BitMatrix, bool) {
	n := bits.GetWidth()
	out := clone(bits)
	any := false
	for y := 0; y < n; y++ {
		for x := 0; x < n; x++ {
			if isInfoArea(x, y, n) || !isBlank(bits, x, y) {
				continue
			}
			out.Flip(x, y)
			any = true
		}
	}
	return out, any
}

// isBlank reports whether the window around (x, y) is of one colour.
func isBlank(bits *gozxing.BitMatrix, x, y int) bool {
	n := bits.GetWidth()
	c := bits.Get(x, y)
	for dy := -blankRadius; dy <= blankRadius; dy++ {
		for dx := -blankRadius; dx <= blankRadius; dx++ {
			xx, yy := x+dx, y+dy
			if xx < 0 || yy < 0 || xx >= n || yy >= n {
				return false
			}
			if bits.Get(xx, yy) != c {
				return false
			}
		}
	}
	return true
}

// isInfoArea reports whether (x, y) holds format or version information
// in a symbol of n modules (ISO/IEC 18004, 7.9 and 7.10).
func isInfoArea(x, y, n int) bool {
	switch {
	case x <= 8 && y <= 8: // format, next to the top-left finder
		return true
	case y == 8 && x >= n-8, x == 8 && y >= n-8: // format, other copies
		return true
	case n >= 45 && x >= n-11 && x < n-8 && y < 6: // version, top right
		return true
	case n >= 45 && y >= n-11 && y < n-8 && x < 6: // version, bottom left
		return true
	}
	return false
}

func clone(b *gozxing.BitMatrix) *gozxing.BitMatrix {
	n := b.GetWidth()
	out, _ := gozxing.NewSquareBitMatrix(n)
	for y := 0; y < n; y++ {
		for x := 0; x < n; x++ {
			if b.Get(x, y) {
				out.Set(x, y)
			}
		}
	}
	return out
}
