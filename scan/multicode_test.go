package scan_test

import (
	"os/exec"
	"path/filepath"
	"testing"

	"custos/printer"
	"custos/scan"
)

// TestMultiCodePageDegraded reads a page carrying four codes after the
// faults of printing and scanning that cost a code in the ceremony's
// tests ("QR part 6 of 6 missing" at 90%). DecodeImage used to stop after
// a reading whose last round had no code it had failed to decode, even
// when codes located in earlier rounds, or finder patterns it could not
// group, were still unread: the page turned 5° on a larger sheet came
// back with three codes of four. Every code on the page must come back.
func TestMultiCodePageDegraded(t *testing.T) {
	// A share needing six codes: the printer puts two on the first
	// page and the other four, parts 3 to 6, on the second.
	pdf, want := sharePDF(t, printer.A4, "Ada Lovelace", 21,
		958, 958, 958, 958, 958, 760)
	pages := rasterize(t, pdf, 300)
	if len(pages) < 2 {
		t.Fatalf("%d pages; six codes need two", len(pages))
	}
	page, want := pages[1], want[2:]
	clean := grey(loadImage(t, page))

	cases := []struct {
		name   string
		magick []string // ImageMagick convert arguments, or none
		do     func(*testing.T, string) string
	}{
		{"resized to 90% by ImageMagick", []string{"-resize", "90%"}, nil},
		{"scaled to 90%", nil, func(t *testing.T, dir string) string {
			out := filepath.Join(dir, "scan.png")
			savePNG(t, scale(clean, 0.9), out)
			return out
		}},
		{"turned 5° on a larger sheet", nil, func(t *testing.T, dir string) string {
			// The sheet grows past the side at which the first
			// readings use a half-size image, as ImageMagick's
			// -rotate 5 makes it.
			out := filepath.Join(dir, "scan.png")
			savePNG(t, turn(padded(clean, 120), 5), out)
			return out
		}},
		{"scaled to 90% and turned 2°", nil, func(t *testing.T, dir string) string {
			out := filepath.Join(dir, "scan.png")
			savePNG(t, turn(scale(clean, 0.9), 2), out)
			return out
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			var img string
			if c.magick != nil {
				img = magick(t, page, dir, c.magick...)
			} else {
				img = c.do(t, dir)
			}
			got, err := scan.DecodeFile(img)
			if err != nil {
				t.Fatal(err)
			}
			if !sameSet(got, want) {
				t.Errorf("read %s, want %s", describe(got), describe(want))
			}
		})
	}
}

// magick runs ImageMagick's convert on in with args and returns the
// image it wrote.
func magick(t *testing.T, in, dir string, args ...string) string {
	t.Helper()
	tool := needTool(t, "convert", "imagemagick")
	out := filepath.Join(dir, "scan.png")
	cmd := exec.Command(tool, append(append([]string{in}, args...), out)...)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("convert %v: %v: %s", args, err, b)
	}
	return out
}
