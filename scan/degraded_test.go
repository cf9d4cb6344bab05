package scan_test

import (
	"image"
	"image/color"
	"image/jpeg"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/makiuchi-d/gozxing"
	multiqr "github.com/makiuchi-d/gozxing/multi/qrcode"
	xdraw "golang.org/x/image/draw"
	"golang.org/x/image/math/f64"

	"custos/printer"
	"custos/scan"
)

// degradations are what paper goes through between printer and
// recovery. Each is made here with golang.org/x/image, independently of
// the decoder's own image code.
var degradations = []struct {
	name string
	do   func(t *testing.T, img *image.Gray) image.Image
	jpeg int // save as JPEG at this quality instead of PNG
}{
	{"rotated +5°", func(t *testing.T, g *image.Gray) image.Image { return turn(g, 5) }, 0},
	{"rotated -5°", func(t *testing.T, g *image.Gray) image.Image { return turn(g, -5) }, 0},
	{"blurred", func(t *testing.T, g *image.Gray) image.Image { return blur(g, 1.5) }, 0},
	{"JPEG quality 40", func(t *testing.T, g *image.Gray) image.Image { return g }, 40},
	{"printed at 90%", func(t *testing.T, g *image.Gray) image.Image { return scale(g, 0.9) }, 0},
	{"quarter covered", func(t *testing.T, g *image.Gray) image.Image {
		return coverQuarters(t, g, color.White)
	}, 0},
	{"quarter inked", func(t *testing.T, g *image.Gray) image.Image {
		return coverQuarters(t, g, color.Black)
	}, 0},
	{"photo: skew, blur, JPEG 60", func(t *testing.T, g *image.Gray) image.Image {
		return blur(turn(scale(g, 0.8), 3), 1)
	}, 60},
}

// TestDegradedScans prints a page with two codes (one of the largest
// size), renders it at 300 dpi, damages it, and reads it back. DecodeFile
// must return exactly the payloads; what zbarimg reads is logged for
// comparison.
func TestDegradedScans(t *testing.T) {
	pdf, want := sharePDF(t, printer.A4, "Grace Hopper", 11, 1200, 640)
	pages := rasterize(t, pdf, 300)
	clean := grey(loadImage(t, pages[0]))

	for _, d := range degradations {
		t.Run(d.name, func(t *testing.T) {
			img := d.do(t, clean)
			path := filepath.Join(t.TempDir(), "scan.png")
			if d.jpeg > 0 {
				path = filepath.Join(filepath.Dir(path), "scan.jpg")
				saveJPEG(t, img, path, d.jpeg)
			} else {
				savePNG(t, img, path)
			}

			got, err := scan.DecodeFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if !sameSet(got, want) {
				t.Errorf("DecodeFile read %s, want %s", describe(got),
					describe(want))
			}
			zb := zbar(t, path)
			t.Logf("zbarimg read %d of %d codes exactly", countSame(zb, want),
				len(want))
		})
	}
}

func countSame(got, want []string) int {
	n := 0
	for _, w := range want {
		for _, g := range got {
			if g == w {
				n++
				break
			}
		}
	}
	return n
}

func grey(img image.Image) *image.Gray {
	g := image.NewGray(img.Bounds())
	xdraw.Draw(g, g.Bounds(), img, img.Bounds().Min, xdraw.Src)
	return g
}

// turn rotates g by degrees about its centre on a white sheet.
func turn(g *image.Gray, degrees float64) *image.Gray {
	b := g.Bounds()
	out := image.NewGray(b)
	xdraw.Draw(out, b, image.NewUniform(color.White), image.Point{}, xdraw.Src)
	sin, cos := math.Sincos(degrees * math.Pi / 180)
	cx, cy := float64(b.Dx())/2, float64(b.Dy())/2
	m := f64.Aff3{cos, -sin, cx - cos*cx + sin*cy, sin, cos, cy - sin*cx - cos*cy}
	xdraw.BiLinear.Transform(out, m, g, b, xdraw.Over, nil)
	return out
}

// blur applies a Gaussian blur of standard deviation sigma pixels.
func blur(g *image.Gray, sigma float64) *image.Gray {
	r := int(math.Ceil(3 * sigma))
	k := make([]float64, 2*r+1)
	sum := 0.0
	for i := range k {
		x := float64(i - r)
		k[i] = math.Exp(-x * x / (2 * sigma * sigma))
		sum += k[i]
	}
	for i := range k {
		k[i] /= sum
	}
	pass := func(src *image.Gray, dx, dy int) *image.Gray {
		b := src.Bounds()
		out := image.NewGray(b)
		for y := b.Min.Y; y < b.Max.Y; y++ {
			for x := b.Min.X; x < b.Max.X; x++ {
				v := 0.0
				for i, w := range k {
					sx := min(max(x+(i-r)*dx, b.Min.X), b.Max.X-1)
					sy := min(max(y+(i-r)*dy, b.Min.Y), b.Max.Y-1)
					v += w * float64(src.GrayAt(sx, sy).Y)
				}
				out.SetGray(x, y, color.Gray{uint8(v + 0.5)})
			}
		}
		return out
	}
	return pass(pass(g, 1, 0), 0, 1)
}

// scale resizes g by factor with Catmull-Rom interpolation, as a printer
// set to "fit to page" would.
func scale(g *image.Gray, factor float64) *image.Gray {
	b := g.Bounds()
	out := image.NewGray(image.Rect(0, 0, int(float64(b.Dx())*factor),
		int(float64(b.Dy())*factor)))
	xdraw.CatmullRom.Scale(out, out.Bounds(), g, b, xdraw.Src, nil)
	return out
}

// coverQuarters paints over the bottom-right quarter of every code, the
// quarter that holds no finder pattern, in ink: level H must carry the
// loss.
// The codes are found with gozxing on the clean image.
func coverQuarters(t *testing.T, g *image.Gray, ink color.Color) image.Image {
	t.Helper()
	src := gozxing.NewLuminanceSourceFromImage(g)
	bmp, _ := gozxing.NewBinaryBitmap(gozxing.NewHybridBinarizer(src))
	results, err := multiqr.NewQRCodeMultiReader().DecodeMultiple(bmp,
		map[gozxing.DecodeHintType]interface{}{gozxing.DecodeHintType_TRY_HARDER: true})
	if err != nil || len(results) == 0 {
		t.Fatalf("locating the codes on the clean page: %v", err)
	}

	out := image.NewGray(g.Bounds())
	copy(out.Pix, g.Pix)
	for _, r := range results {
		pts := r.GetResultPoints() // bottom-left, top-left, top-right
		bl, tl, tr := pts[0], pts[1], pts[2]
		// The finder centres sit 3.5 modules inside the symbol's corners.
		pad := 3.5 * moduleSize(t, tl)
		left, top := tl.GetX()-pad, tl.GetY()-pad
		right, bottom := tr.GetX()+pad, bl.GetY()+pad
		cx, cy := (left+right)/2, (top+bottom)/2
		rect := image.Rect(int(cx), int(cy), int(right)+1, int(bottom)+1)
		xdraw.Draw(out, rect, image.NewUniform(ink), image.Point{}, xdraw.Src)
	}
	return out
}

// moduleSize returns the module size gozxing measured at a finder
// pattern.
func moduleSize(t *testing.T, p gozxing.ResultPoint) float64 {
	fp, ok := p.(interface{ GetEstimatedModuleSize() float64 })
	if !ok {
		t.Fatalf("result point %T is not a finder pattern", p)
	}
	return fp.GetEstimatedModuleSize()
}

func saveJPEG(t *testing.T, img image.Image, path string, quality int) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := jpeg.Encode(f, img, &jpeg.Options{Quality: quality}); err != nil {
		t.Fatal(err)
	}
}
