package scan

import (
	"image"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/makiuchi-d/gozxing"
	qrcode "github.com/skip2/go-qrcode"
)

func blankSheet(w, h int) *image.Gray {
	g := image.NewGray(image.Rect(0, 0, w, h))
	for i := range g.Pix {
		g.Pix[i] = 255
	}
	return g
}

// drawCode prints payload at level H with module pixels per module, its
// quiet zone's corner at (x, y), and returns the symbol's side in pixels.
func drawCode(t *testing.T, g *image.Gray, payload string, module, x, y int) int {
	t.Helper()
	q, err := qrcode.New(payload, qrcode.Highest)
	if err != nil {
		t.Fatal(err)
	}
	bits := q.Bitmap() // with a four-module quiet zone
	for r, row := range bits {
		for c, dark := range row {
			if dark {
				fill(g, x+c*module, y+r*module, module, module, 0)
			}
		}
	}
	return len(bits) * module
}

func fill(g *image.Gray, x, y, w, h int, v uint8) {
	for yy := y; yy < y+h; yy++ {
		for xx := x; xx < x+w; xx++ {
			g.Pix[yy*g.Stride+xx] = v
		}
	}
}

// drawFinder prints a lone finder pattern (7 x 7 modules) with its
// top-left corner at (x, y).
func drawFinder(g *image.Gray, module, x, y int) {
	fill(g, x, y, 7*module, 7*module, 0)
	fill(g, x+module, y+module, 5*module, 5*module, 255)
	fill(g, x+2*module, y+2*module, 3*module, 3*module, 0)
}

const (
	payloadA = "CUSTOS PART 1 OF 2 7Q2KD4XA 001:ABCDEFGHIJKLMNOPQRST"
	payloadB = "CUSTOS PART 2 OF 2 7Q2KD4XA 002:UVWXYZ234567ABCDEFGH"
)

func TestReadGrayStopsAfterCleanReading(t *testing.T) {
	g := blankSheet(1700, 1700)
	drawCode(t, g, payloadA, 5, 100, 100)
	drawCode(t, g, payloadB, 5, 900, 100)
	r := readGray(g)
	if len(r.found) != 2 || r.tried != 1 {
		t.Errorf("read %d codes in %d readings; want 2 in 1", len(r.found),
			r.tried)
	}
}

func TestReadGrayPageWithoutCodes(t *testing.T) {
	g := blankSheet(1700, 2200)
	rng := rand.New(rand.NewPCG(1, 2))
	for range 400 { // strokes the size of typed letters
		fill(g, 100+rng.IntN(1400), 100+rng.IntN(1900), 2+rng.IntN(20),
			2+rng.IntN(6), 0)
	}
	r := readGray(g)
	// Hybrid, global histogram, inverted: no turns or skews.
	if len(r.found) != 0 || r.tried != 3 || r.sawPatterns {
		t.Errorf("found %d codes in %d readings (patterns seen: %v); "+
			"want none in 3", len(r.found), r.tried, r.sawPatterns)
	}
}

// TestReadingReportsWhatItLeft checks that a reading which reads one code
// but leaves another located, or leaves finder patterns it could not make
// a code of, says so, so that DecodeImage tries further readings rather
// than stopping with a code unread.
func TestReadingReportsWhatItLeft(t *testing.T) {
	t.Run("undecodable code", func(t *testing.T) {
		g := blankSheet(1700, 1000)
		drawCode(t, g, payloadA, 5, 100, 100)
		side := drawCode(t, g, payloadB, 5, 900, 100)
		// Scramble the middle of the second code, finders untouched.
		rng := rand.New(rand.NewPCG(3, 4))
		q := 4 * 5
		for y := 100 + q + 9*5; y < 100+side-q-9*5; y += 5 {
			for x := 900 + q + 9*5; x < 900+side-q-9*5; x += 5 {
				fill(g, x, y, 5, 5, uint8(255*rng.IntN(2)))
			}
		}
		checkLeft(t, g)
	})
	t.Run("finder patterns of no code", func(t *testing.T) {
		g := blankSheet(1700, 1700)
		drawCode(t, g, payloadA, 5, 100, 100)
		for i := range 4 { // on a line: no three make a code
			drawFinder(g, 5, 150+350*i, 1000+30*i)
		}
		checkLeft(t, g)
	})
}

func checkLeft(t *testing.T, g *image.Gray) {
	t.Helper()
	r := &reader{seen: map[string]bool{}}
	r.attempt(reading{img: g})
	if len(r.found) != 1 || r.found[0] != payloadA {
		t.Fatalf("read %d codes, want the good one", len(r.found))
	}
	if !r.missed || r.done() {
		t.Error("the reading did not report what it left unread")
	}
}

func TestClearQuad(t *testing.T) {
	m, _ := gozxing.NewBitMatrix(100, 100)
	m.SetRegion(0, 0, 100, 100)
	// A 40-pixel square turned 30° about (50, 50).
	var q [4][2]float64
	for i := range q {
		a := math.Pi/6 + float64(i)*math.Pi/2
		q[i] = [2]float64{50 + 20*math.Sqrt2*math.Cos(a),
			50 + 20*math.Sqrt2*math.Sin(a)}
	}
	clearQuad(m, q)
	cleared := 0
	for y := range 100 {
		for x := range 100 {
			if !m.Get(x, y) {
				cleared++
			}
		}
	}
	if cleared < 1600-80 || cleared > 1600+80 {
		t.Errorf("cleared %d pixels, want about 1600", cleared)
	}
	if m.Get(50, 50) || !m.Get(50, 20) || !m.Get(0, 0) {
		t.Error("cleared the wrong pixels")
	}

	// Corners off the image, or not numbers, must not panic.
	clearQuad(m, [4][2]float64{{-50, -50}, {500, -50}, {500, 500}, {-50, 500}})
	clearQuad(m, [4][2]float64{{math.NaN(), 0}, {1, 0}, {1, 1}, {0, 1}})
	if m.Get(99, 99) {
		t.Error("a quadrilateral covering the image left a pixel")
	}
}
