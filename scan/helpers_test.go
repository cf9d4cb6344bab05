package scan_test

import (
	"bytes"
	"context"
	"fmt"
	"image"
	"image/png"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"custos/printer"
	"custos/scan"
)

const qrAlphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:"

func randomPayload(rng *rand.Rand, n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = qrAlphabet[rng.IntN(len(qrAlphabet))]
	}
	return string(b)
}

// sharePDF prints a share page carrying payloads of the given sizes and
// returns the PDF's path and the payloads.
func sharePDF(t testing.TB, paper printer.Paper, name string, seed uint64,
	sizes ...int) (string, []string) {
	t.Helper()
	rng := rand.New(rand.NewPCG(seed, 7))
	p := printer.SharePage{
		Paper: paper, Custodian: name,
		Index: 1, Threshold: 2, Count: 3,
		Label: "Scan test key", SetID: "SCANTEST7Q2KD4XA", Kind: "AES-128 key",
		CheckValues:       []string{"KCV (AES-CMAC, X9.24): 0F1E2D"},
		DealerFingerprint: "SHA256:00112233445566778899aabbccddeeff",
		Created:           time.Date(2026, 2, 1, 9, 0, 0, 0, time.UTC),
	}
	for i := range 12 {
		p.TextLines = append(p.TextLines,
			fmt.Sprintf("%03d: %s", i+1, randomPayload(rng, 40)))
	}
	for _, n := range sizes {
		p.QRPayloads = append(p.QRPayloads, randomPayload(rng, n))
	}

	var buf bytes.Buffer
	if err := printer.WriteSharePDF(&buf, p); err != nil {
		t.Fatalf("printing share page: %v", err)
	}
	path := filepath.Join(t.TempDir(), "share.pdf")
	if err := os.WriteFile(path, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	return path, p.QRPayloads
}

// rasterize renders the PDF's pages with RasterizePDF (pdftoppm) and
// saves them as PNG files, as a user's scanner would leave them. It
// returns the files in page order.
func rasterize(t *testing.T, pdf string, dpi int) []string {
	t.Helper()
	needTool(t, "pdftoppm", "poppler-utils")
	pages, err := scan.RasterizePDF(context.Background(), pdf, dpi)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	var files []string
	for i, img := range pages {
		path := filepath.Join(dir, fmt.Sprintf("page-%02d.png", i+1))
		savePNG(t, img, path)
		files = append(files, path)
	}
	return files
}

// zbar reads the QR codes in an image file with zbarimg.
func zbar(t *testing.T, path string) []string {
	t.Helper()
	tool := needTool(t, "zbarimg", "zbar-tools")
	cmd := exec.Command(tool, "--raw", "-q", "-Sdisable", "-Sqrcode.enable", path)
	out, err := cmd.Output()
	if err != nil {
		// zbarimg exits 4 when it finds nothing.
		if ee, ok := err.(*exec.ExitError); ok && ee.ExitCode() == 4 {
			return nil
		}
		t.Fatalf("zbarimg %s: %v", filepath.Base(path), err)
	}
	return strings.Split(strings.TrimSuffix(string(out), "\n"), "\n")
}

// sameSet reports whether got holds exactly the strings in want, each
// once.
func sameSet(got, want []string) bool {
	a, b := slices.Clone(got), slices.Clone(want)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}

// describe lists payloads by length, so failures never print share data.
func describe(ps []string) string {
	var parts []string
	for _, p := range ps {
		parts = append(parts, fmt.Sprintf("%d chars %.6s…", len(p), p))
	}
	return "[" + strings.Join(parts, ", ") + "]"
}

func needTool(t testing.TB, tool, pkg string) string {
	t.Helper()
	path, err := exec.LookPath(tool)
	if err == nil {
		return path
	}
	if os.Getenv("CUSTOS_INTEGRATION") == "1" {
		t.Fatalf("%s (Debian package %s) is required when "+
			"CUSTOS_INTEGRATION=1: %v", tool, pkg, err)
	}
	t.Skipf("%s not installed (Debian package %s); skipping", tool, pkg)
	return ""
}

func loadImage(t *testing.T, path string) image.Image {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, _, err := image.Decode(f)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

func savePNG(t *testing.T, img image.Image, path string) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	enc := png.Encoder{CompressionLevel: png.BestSpeed}
	if err := enc.Encode(f, img); err != nil {
		t.Fatal(err)
	}
}
