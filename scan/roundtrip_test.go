package scan_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"testing"

	"custos/printer"
	"custos/scan"
)

// roundTrips are printed share pages: names in several scripts, both
// sheet sizes, payloads from tiny to the 1200-character maximum, and a
// share needing several codes over more than one page.
var roundTrips = []struct {
	name  string
	paper printer.Paper
	sizes []int
}{
	{"Margaret Hamilton", printer.A4, []int{38}},
	{"Софья Ковалевская", printer.Letter, []int{700}},
	{"Υπατία η Αλεξανδρινή", printer.A4, []int{1200}},
	{"José Ñúñez-Øverås", printer.Letter, []int{1200, 1200, 1200, 700, 45}},
}

// TestRoundTrip prints each page, renders it at 300 and 150 dpi with
// pdftoppm, and reads every page image with DecodeFile and with zbarimg:
// both must return exactly the payloads printed.
func TestRoundTrip(t *testing.T) {
	for i, rt := range roundTrips {
		pdf, want := sharePDF(t, rt.paper, rt.name, uint64(i), rt.sizes...)
		for _, dpi := range []int{300, 150} {
			t.Run(fmt.Sprintf("%s/%v/%d", rt.name, rt.paper, dpi), func(t *testing.T) {
				var ours, theirs []string
				for _, page := range rasterize(t, pdf, dpi) {
					got, err := scan.DecodeFile(page)
					var none *scan.NoCodeError
					if errors.As(err, &none) && none.File == page {
						continue // a page of text and instructions
					}
					if err != nil {
						t.Fatalf("%s: %v", filepath.Base(page), err)
					}
					ours = append(ours, got...)
					theirs = append(theirs, zbar(t, page)...)
				}
				if !sameSet(ours, want) {
					t.Errorf("DecodeFile read %s, want %s", describe(ours),
						describe(want))
				}
				if !sameSet(theirs, want) {
					t.Errorf("zbarimg read %s, want %s", describe(theirs),
						describe(want))
				}
			})
		}
	}
}

// TestRasterizeAndDecode reads a multi-page share through RasterizePDF and
// DecodeImage, with no image files in between.
func TestRasterizeAndDecode(t *testing.T) {
	needTool(t, "pdftoppm", "poppler-utils")
	rt := roundTrips[3]
	pdf, want := sharePDF(t, rt.paper, rt.name, 3, rt.sizes...)
	pages, err := scan.RasterizePDF(context.Background(), pdf, 150)
	if err != nil {
		t.Fatal(err)
	}
	if len(pages) < 2 {
		t.Fatalf("%d pages; the five codes need at least two", len(pages))
	}
	var got []string
	for i, img := range pages {
		ps, err := scan.DecodeImage(img)
		var none *scan.NoCodeError
		if errors.As(err, &none) {
			continue
		}
		if err != nil {
			t.Fatalf("page %d: %v", i+1, err)
		}
		got = append(got, ps...)
	}
	if !sameSet(got, want) {
		t.Errorf("read %s, want %s", describe(got), describe(want))
	}
}
