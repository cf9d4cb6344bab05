package scan_test

import (
	"context"
	"errors"
	"image"
	"testing"

	"custos/printer"
	"custos/scan"
)

// BenchmarkDecodeImage reads rendered share pages at 300 dpi, as a split
// reads back every page it prints: a page of typed text and instructions
// with no code, and pages with two and four codes of a six-code share.
//
//	go test -run '^$' -bench DecodeImage -benchtime 10x ./scan
func BenchmarkDecodeImage(b *testing.B) {
	needTool(b, "pdftoppm", "poppler-utils")
	pdf, _ := sharePDF(b, printer.A4, "Ada Lovelace", 5,
		958, 958, 958, 958, 958, 760)
	pages, err := scan.RasterizePDF(context.Background(), pdf, 300)
	if err != nil {
		b.Fatal(err)
	}
	if len(pages) < 3 {
		b.Fatalf("%d pages; want two of codes and one of text", len(pages))
	}
	// The printer puts two codes on the first page, the other four on
	// the second, and the typed text and instructions after them.
	for _, tc := range []struct {
		name  string
		img   image.Image
		codes int
	}{
		{"no code", pages[len(pages)-1], 0},
		{"two codes", pages[0], 2},
		{"four codes", pages[1], 4},
	} {
		img := tc.img
		b.Run(tc.name, func(b *testing.B) {
			for b.Loop() {
				got, err := scan.DecodeImage(img)
				var none *scan.NoCodeError
				switch {
				case tc.codes == 0 && !errors.As(err, &none):
					b.Fatalf("a page without codes gave %d payloads, %v",
						len(got), err)
				case tc.codes > 0 && len(got) != tc.codes:
					b.Fatalf("read %d codes, want %d (%v)", len(got),
						tc.codes, err)
				}
			}
		})
	}
}
