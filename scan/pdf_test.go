package scan_test

import (
	"context"
	"errors"
	"image"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"custos/printer"
	"custos/scan"
)

func TestRasterizePDFPages(t *testing.T) {
	needTool(t, "pdftoppm", "poppler-utils")
	for _, tt := range []struct {
		paper printer.Paper
		w, h  int // pixels at 72 dpi
	}{{printer.A4, 595, 842}, {printer.Letter, 612, 792}} {
		pdf, _ := sharePDF(t, tt.paper, "Ada", 1, 1200, 1200, 1200)
		pages, err := scan.RasterizePDF(context.Background(), pdf, 72)
		if err != nil {
			t.Fatal(err)
		}
		if len(pages) < 2 {
			t.Fatalf("%v: %d pages, want at least 2", tt.paper, len(pages))
		}
		for i, p := range pages {
			// A4 is 595.28 points wide; pdftoppm rounds up.
			if b := p.Bounds(); abs(b.Dx()-tt.w) > 1 || abs(b.Dy()-tt.h) > 1 {
				t.Errorf("%v page %d: %v, want %dx%d", tt.paper, i+1, b,
					tt.w, tt.h)
			}
		}
	}
}

func TestRasterizePDFErrors(t *testing.T) {
	needTool(t, "pdftoppm", "poppler-utils")
	dir := t.TempDir()
	bogus := filepath.Join(dir, "share.pdf")
	os.WriteFile(bogus, []byte("%PDF-1.4 nothing here"), 0o600)

	_, err := scan.RasterizePDF(context.Background(), bogus, 150)
	if err == nil || !strings.Contains(err.Error(), bogus) {
		t.Errorf("broken PDF: got %v, want an error naming it", err)
	}
	_, err = scan.RasterizePDF(context.Background(), bogus, 5)
	if err == nil || !strings.Contains(err.Error(), "dpi") {
		t.Errorf("5 dpi: got %v", err)
	}

	pdf, _ := sharePDF(t, printer.A4, "Ada", 1, 100)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err = scan.RasterizePDF(ctx, pdf, 150)
	if !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: got %v, want context.Canceled", err)
	}
}

// TestRasterizePDFDashName checks that a file name starting with "-" is
// not taken for an option.
func TestRasterizePDFDashName(t *testing.T) {
	needTool(t, "pdftoppm", "poppler-utils")
	pdf, _ := sharePDF(t, printer.A4, "Ada", 1, 100)
	dir := t.TempDir()
	b, _ := os.ReadFile(pdf)
	os.WriteFile(filepath.Join(dir, "-v"), b, 0o600)
	t.Chdir(dir)
	pages, err := scan.RasterizePDF(context.Background(), "-v", 36)
	if err != nil || len(pages) == 0 {
		t.Errorf("got %d pages, %v", len(pages), err)
	}
}

func TestRasterizePDFWithoutPdftoppm(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	_, err := scan.RasterizePDF(context.Background(), "share.pdf", 150)
	var missing *scan.ToolMissingError
	if !errors.As(err, &missing) || missing.Tool != "pdftoppm" ||
		!strings.Contains(err.Error(), "poppler-utils") {
		t.Errorf("got %v, want a ToolMissingError for pdftoppm", err)
	}
}

func abs(x int) int { return max(x, -x) }

func TestReadPGMStream(t *testing.T) {
	good := "P5\n# made by hand\n3 2\n255\n\x00\x80\xff\x10\x20\x30" +
		"P5 1 1 255 \x7f"
	pages, err := scan.ReadPGMStreamForTest(good)
	if err != nil || len(pages) != 2 {
		t.Fatalf("got %d pages, %v", len(pages), err)
	}
	if g := pages[0].(*image.Gray); g.Rect.Dx() != 3 || g.Pix[1] != 0x80 || g.Pix[5] != 0x30 {
		t.Errorf("first page decoded wrong: %v %v", g.Rect, g.Pix)
	}
	for _, bad := range []string{
		"P6\n1 1\n255\n\x00\x00\x00", // colour
		"P5\n1 1\n65535\n\x00\x00",   // 16-bit
		"P5\n2 2\n255\n\x00",         // truncated
		"P5\n99999999 99999999\n255\n",
		"P5\n-1 1\n255\n\x00",
	} {
		if _, err := scan.ReadPGMStreamForTest(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}
