package printer

import (
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/makiuchi-d/gozxing"
	"github.com/makiuchi-d/gozxing/qrcode"
	"github.com/makiuchi-d/gozxing/qrcode/decoder"
	"golang.org/x/image/font/gofont/gomono"
	"golang.org/x/image/font/gofont/goregular"
)

// TestQRVersions checks the versions go-qrcode picks at error correction
// H against the alphanumeric capacities of ISO/IEC 18004 table 7: if it
// fell back to byte mode, each would need a larger version.
func TestQRVersions(t *testing.T) {
	tests := []struct{ chars, version int }{
		{10, 1}, {11, 2}, {122, 8}, {123, 9}, {143, 9}, {144, 10},
		{1852, 40},
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for _, tt := range tests {
		sym, err := encodeQR(randomPayload(rng, tt.chars))
		if err != nil {
			t.Fatal(err)
		}
		if sym.version != tt.version {
			t.Errorf("%d characters: version %d, want %d", tt.chars,
				sym.version, tt.version)
		}
		if want := 17 + 4*tt.version; len(sym.modules) != want {
			t.Errorf("%d characters: %d modules, want %d", tt.chars,
				len(sym.modules), want)
		}
	}
	if _, err := encodeQR(strings.Repeat("A", 1853)); err == nil {
		t.Error("1853 characters fit in one code at level H")
	}
	sym, _ := encodeQR(randomPayload(rng, MaxQRPayload))
	if sym.version > 32 {
		t.Errorf("a %d-character payload needs version %d; the layout "+
			"assumes at most 32", MaxQRPayload, sym.version)
	}
}

// TestQRModeAndLevel decodes the printed modules with gozxing's decoder:
// the payload comes back, at level H, with no byte-mode segment.
func TestQRModeAndLevel(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for _, n := range []int{1, 45, 700, MaxQRPayload} {
		payload := randomPayload(rng, n)
		sym, err := encodeQR(payload)
		if err != nil {
			t.Fatal(err)
		}
		res, err := decoder.NewDecoder().DecodeBoolMap(sym.modules, nil)
		if err != nil {
			t.Fatalf("%d characters: %v", n, err)
		}
		if res.GetText() != payload {
			t.Errorf("%d characters: decoded text differs", n)
		}
		if res.GetECLevel() != "H" {
			t.Errorf("%d characters: level %q, want H", n, res.GetECLevel())
		}
		if res.GetByteSegments() != nil {
			t.Errorf("%d characters: byte mode used", n)
		}
	}
}

// TestModulesWholeAndLargeEnough checks the drawn rectangles: modules of
// at least 0.5 mm, an even number of 1/300-inch dots, starting on the
// 1/150-inch grid, and rectangles that cover exactly the dark modules.
func TestModulesWholeAndLargeEnough(t *testing.T) {
	for name, p := range pageCases() {
		doc, err := render(p)
		if err != nil {
			t.Fatal(err)
		}
		m := doc.module
		dots := m / dot
		if m < 0.5 || math.Abs(dots-math.Round(dots)) > 1e-9 ||
			int(math.Round(dots))%snapDots != 0 {
			t.Errorf("%s: module %.4f mm is %.3f dots", name, m, dots)
		}
		if len(doc.origins) != len(doc.symbols) {
			t.Fatalf("%s: %d codes drawn, %d encoded", name,
				len(doc.origins), len(doc.symbols))
		}
		for i, o := range doc.origins {
			for _, v := range o {
				steps := v / (snapDots * dot)
				if math.Abs(steps-math.Round(steps)) > 1e-6 {
					t.Errorf("%s: code %d starts off the grid at %.4f mm",
						name, i+1, v)
				}
			}
			checkRects(t, doc.symbols[i])
		}
	}
}

// checkRects rebuilds the symbol from its rectangles.
func checkRects(t *testing.T, sym *qrSymbol) {
	t.Helper()
	n := len(sym.modules)
	hits := make([][]int, n)
	for i := range hits {
		hits[i] = make([]int, n)
	}
	rects := sym.rects()
	for _, r := range rects {
		if r.w < 1 || r.h < 1 || r.x < 0 || r.y < 0 || r.x+r.w > n || r.y+r.h > n {
			t.Fatalf("bad rectangle %+v in a %d-module symbol", r, n)
		}
		for y := r.y; y < r.y+r.h; y++ {
			for x := r.x; x < r.x+r.w; x++ {
				hits[y][x]++
			}
		}
	}
	dark := 0
	for y, row := range sym.modules {
		for x, on := range row {
			want := 0
			if on {
				want, dark = 1, dark+1
			}
			if hits[y][x] != want {
				t.Fatalf("module (%d,%d) covered %d times, want %d", x, y,
					hits[y][x], want)
			}
		}
	}
	if len(rects) >= dark {
		t.Errorf("%d rectangles for %d dark modules: runs not merged",
			len(rects), dark)
	}
}

func TestCoverage(t *testing.T) {
	sans, err := parseCoverage(goregular.TTF)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range "AzéŁЖжλΩ€·" {
		if !sans.has(r) {
			t.Errorf("Go Regular lacks %q", r)
		}
	}
	for _, r := range "中ا\uFFFF" {
		if sans.has(r) {
			t.Errorf("Go Regular claims %q", r)
		}
	}
	mono, err := parseCoverage(gomono.TTF)
	if err != nil {
		t.Fatal(err)
	}
	for c := ' '; c <= '~'; c++ {
		if !mono.has(c) {
			t.Errorf("Go Mono lacks %q", c)
		}
	}

	for name, b := range map[string][]byte{
		"empty":     nil,
		"truncated": goregular.TTF[:200],
		"CFF":       append([]byte("OTTO"), goregular.TTF[4:]...),
	} {
		if _, err := parseCoverage(b); err == nil {
			t.Errorf("%s font accepted", name)
		}
	}
}

func FuzzParseCoverage(f *testing.F) {
	f.Add(goregular.TTF)
	f.Add(gomono.TTF[:4096])
	f.Add([]byte("\x00\x01\x00\x00\x00\x01cmap\x00\x00\x00\x00\x00\x00\x00\x1c\x00\x00\x00\x10"))
	f.Fuzz(func(t *testing.T, b []byte) {
		cov, err := parseCoverage(b)
		if err != nil {
			return
		}
		for i := 1; i < len(cov); i++ {
			if cov[i].lo <= cov[i-1].hi+1 || cov[i].lo > cov[i].hi {
				t.Fatalf("ranges not normalised: %v", cov[i-1:i+1])
			}
		}
	})
}

// TestQRImage reads back the image QRImage draws, which a split uses when
// no PDF rasteriser is installed.
func TestQRImage(t *testing.T) {
	payload := randomPayload(rand.New(rand.NewPCG(9, 9)), 700)
	img, err := QRImage(payload, 3)
	if err != nil {
		t.Fatal(err)
	}
	src := gozxing.NewLuminanceSourceFromImage(img)
	bmp, _ := gozxing.NewBinaryBitmap(gozxing.NewHybridBinarizer(src))
	res, err := qrcode.NewQRCodeReader().Decode(bmp, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.GetText() != payload {
		t.Error("QRImage does not read back as its payload")
	}
	b := img.Bounds()
	for x := 0; x < b.Dx(); x++ { // the quiet zone's first row is white
		if r, _, _, _ := img.At(x, 0).RGBA(); r != 0xffff {
			t.Fatalf("pixel (%d, 0) is not white", x)
		}
	}
}
