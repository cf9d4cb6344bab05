package scan_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"image"
	"image/color"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"

	qrcode "github.com/skip2/go-qrcode"
	xdraw "golang.org/x/image/draw"

	"custos/scan"
)

func TestDecodeFileFixtures(t *testing.T) {
	tests := map[string][]string{
		"testdata/seed-one-code.png": {"CUSTOS TEST 1 OF 2 SEED"},
		"testdata/seed-two-codes.jpg": {"CUSTOS TEST 1 OF 2 SEED",
			"CUSTOS TEST 2 OF 2 SEED"},
	}
	for path, want := range tests {
		got, err := scan.DecodeFile(path)
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		if !sameSet(got, want) {
			t.Errorf("%s: got %q, want %q", path, got, want)
		}
	}
}

// symbol renders payload as a QR code with module pixels per module on a
// white sheet of the given size, at (x, y).
func symbol(t *testing.T, sheet *image.Gray, payload string, module, x, y int) {
	t.Helper()
	q, err := qrcode.New(payload, qrcode.Highest)
	if err != nil {
		t.Fatal(err)
	}
	img := q.Image(-module)
	r := img.Bounds().Add(image.Pt(x, y))
	xdraw.Draw(sheet, r, img, img.Bounds().Min, xdraw.Src)
}

func whiteSheet(w, h int) *image.Gray {
	g := image.NewGray(image.Rect(0, 0, w, h))
	for i := range g.Pix {
		g.Pix[i] = 255
	}
	return g
}

func TestDecodeImageEachPayloadOnce(t *testing.T) {
	sheet := whiteSheet(900, 400)
	symbol(t, sheet, "CUSTOS PART 1 OF 2 ABC", 4, 10, 10)
	symbol(t, sheet, "CUSTOS PART 2 OF 2 ABC", 4, 310, 10)
	symbol(t, sheet, "CUSTOS PART 1 OF 2 ABC", 4, 610, 10) // a photocopy
	got, err := scan.DecodeImage(sheet)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"CUSTOS PART 1 OF 2 ABC", "CUSTOS PART 2 OF 2 ABC"}
	if !sameSet(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestDecodeImageInvertedAndTurned(t *testing.T) {
	const payload = "CUSTOS 7Q2KD4XA 001:ABCDE FGHIJ"
	base := whiteSheet(400, 400)
	symbol(t, base, payload, 5, 40, 40)

	inverted := whiteSheet(400, 400)
	for i, v := range base.Pix {
		inverted.Pix[i] = 255 - v
	}
	cases := map[string]image.Image{
		"inverted":   inverted,
		"turned 90°": turnQuarter(base),
		"turned 30°": turn(padded(base, 200), 30),
		"NRGBA":      nrgba(base),
	}
	for name, img := range cases {
		got, err := scan.DecodeImage(img)
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if len(got) != 1 || got[0] != payload {
			t.Errorf("%s: got %q", name, got)
		}
	}
}

func turnQuarter(g *image.Gray) *image.Gray {
	b := g.Bounds()
	out := image.NewGray(image.Rect(0, 0, b.Dy(), b.Dx()))
	for y := 0; y < b.Dy(); y++ {
		for x := 0; x < b.Dx(); x++ {
			out.SetGray(b.Dy()-1-y, x, g.GrayAt(x, y))
		}
	}
	return out
}

func padded(g *image.Gray, pad int) *image.Gray {
	b := g.Bounds()
	out := whiteSheet(b.Dx()+2*pad, b.Dy()+2*pad)
	xdraw.Draw(out, b.Add(image.Pt(pad, pad)), g, b.Min, xdraw.Src)
	return out
}

// nrgba puts g on a half-transparent layer, which should read as if
// printed on white.
func nrgba(g *image.Gray) *image.NRGBA {
	out := image.NewNRGBA(g.Bounds())
	for y := 0; y < g.Rect.Dy(); y++ {
		for x := 0; x < g.Rect.Dx(); x++ {
			v := g.GrayAt(x, y).Y
			a := uint8(255)
			if v > 128 {
				a = 0 // transparent where the paper would be white
			}
			out.SetNRGBA(x, y, color.NRGBA{v, v, v, a})
		}
	}
	return out
}

func TestDecodeFileErrors(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	var blank bytes.Buffer
	png.Encode(&blank, whiteSheet(300, 200))

	t.Run("missing", func(t *testing.T) {
		p := filepath.Join(dir, "nope.png")
		_, err := scan.DecodeFile(p)
		if err == nil || !strings.Contains(err.Error(), p) {
			t.Errorf("got %v, want an error naming %s", err, p)
		}
	})
	t.Run("not an image", func(t *testing.T) {
		p := write("notes.png", []byte("001: ABCDE FGHIJ\n"))
		_, err := scan.DecodeFile(p)
		if !errors.Is(err, scan.ErrImageFormat) || !strings.Contains(err.Error(), p) {
			t.Errorf("got %v, want ErrImageFormat naming %s", err, p)
		}
	})
	t.Run("GIF", func(t *testing.T) {
		p := write("scan.gif", []byte("GIF89a\x01\x00\x01\x00\x00\x00\x00;"))
		_, err := scan.DecodeFile(p)
		if !errors.Is(err, scan.ErrImageFormat) || !strings.Contains(err.Error(), p) {
			t.Errorf("got %v, want ErrImageFormat naming %s", err, p)
		}
	})
	t.Run("too large", func(t *testing.T) {
		p := write("huge.png", hugePNG(t, 40000, 40000))
		_, err := scan.DecodeFile(p)
		if !errors.Is(err, scan.ErrImageFormat) || !strings.Contains(err.Error(), "40000") {
			t.Errorf("got %v, want ErrImageFormat for its size", err)
		}
	})
	t.Run("no code", func(t *testing.T) {
		p := write("blank.png", blank.Bytes())
		got, err := scan.DecodeFile(p)
		var none *scan.NoCodeError
		if !errors.As(err, &none) || none.File != p || got != nil {
			t.Fatalf("got %q, %v; want a NoCodeError for %s", got, err, p)
		}
		if want := "no QR code found in " + p; err.Error() != want {
			t.Errorf("message %q, want %q", err, want)
		}
	})
	t.Run("empty image", func(t *testing.T) {
		_, err := scan.DecodeImage(image.NewGray(image.Rect(0, 0, 0, 0)))
		var none *scan.NoCodeError
		if !errors.As(err, &none) {
			t.Errorf("got %v, want NoCodeError", err)
		}
	})
}

// hugePNG returns a 1x1 PNG whose header claims w x h pixels.
func hugePNG(t *testing.T, w, h uint32) []byte {
	var buf bytes.Buffer
	png.Encode(&buf, image.NewGray(image.Rect(0, 0, 1, 1)))
	b := buf.Bytes()
	// IHDR data starts after the 8-byte signature and the chunk's length
	// and type; its CRC follows the 13 data bytes.
	binary.BigEndian.PutUint32(b[16:], w)
	binary.BigEndian.PutUint32(b[20:], h)
	binary.BigEndian.PutUint32(b[29:], crc32.ChecksumIEEE(b[12:29]))
	return b
}

// FuzzDecodeImage feeds arbitrary bytes through the image decoders and
// DecodeImage, which must neither panic nor succeed with nothing.
func FuzzDecodeImage(f *testing.F) {
	for _, seed := range []string{"testdata/seed-one-code.png",
		"testdata/seed-two-codes.jpg"} {
		b, err := os.ReadFile(seed)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		cfg, _, err := image.DecodeConfig(bytes.NewReader(b))
		if err != nil || cfg.Width*cfg.Height > 512*512 {
			return
		}
		img, _, err := image.Decode(bytes.NewReader(b))
		if err != nil {
			return
		}
		got, err := scan.DecodeImage(img)
		if err == nil && len(got) == 0 {
			t.Fatal("success with no payload")
		}
	})
}
