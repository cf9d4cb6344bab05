package ceremony

import (
	"bytes"
	"context"
	"fmt"
	"image"
	"image/draw"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/makiuchi-d/gozxing"
	"github.com/makiuchi-d/gozxing/qrcode"

	"custos/printer"
	"custos/scan"
	"custos/shares"
)

// needTool skips a test when a real part is missing, unless the run
// promised real parts (CUSTOS_INTEGRATION=1, set by make test): then the
// missing tool is a failure.
func needTool(t *testing.T, tools ...string) {
	t.Helper()
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			if os.Getenv("CUSTOS_INTEGRATION") == "1" {
				t.Fatalf("%s is not installed, and CUSTOS_INTEGRATION=1 says it must be", tool)
			}
			t.Skipf("%s is not installed; run make test to install it", tool)
		}
	}
}

func run(t *testing.T, name string, args ...string) []byte {
	t.Helper()
	out, err := exec.Command(name, args...).Output()
	if err != nil {
		t.Fatalf("%s %s: %v", name, strings.Join(args, " "), err)
	}
	return out
}

// opensslKeys makes the test keys with openssl, a program no one here wrote.
func opensslKeys(t *testing.T, dir string) map[string]string {
	keys := map[string]string{
		"aes-256":  filepath.Join(dir, "aes.key"),
		"rsa-3072": filepath.Join(dir, "rsa.pem"),
		"ec-p384":  filepath.Join(dir, "ec.pem"),
		"ed25519":  filepath.Join(dir, "ed.pem"),
	}
	run(t, "openssl", "rand", "-out", keys["aes-256"], "32")
	run(t, "openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:3072", "-out", keys["rsa-3072"])
	run(t, "openssl", "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-384", "-out", keys["ec-p384"])
	run(t, "openssl", "genpkey", "-algorithm", "ED25519", "-out", keys["ed25519"])
	return keys
}

func splitToDir(t *testing.T, keyFile, dir string, kind shares.Kind, k, n int) *SplitResult {
	t.Helper()
	f, err := os.Open(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	names := []string{"Ana", "Bo", "Chen", "Dana", "Émile"}[:n]
	res, err := SplitFiles(context.Background(), SplitRequest{
		Policy: shares.Policy{Threshold: k, Count: n, Custodians: names, Label: "test key", Kind: kind},
		Paper:  printer.A4, OutDir: dir, Secret: f,
	}, Reporter{})
	if err != nil {
		t.Fatalf("SplitFiles(%s): %v", keyFile, err)
	}
	return res
}

// rasterize renders a PDF's pages to PNG files and returns their paths.
func rasterize(t *testing.T, pdf string, dpi int, dir string) []string {
	t.Helper()
	pages, err := scan.RasterizePDF(context.Background(), pdf, dpi)
	if err != nil {
		t.Fatal(err)
	}
	var paths []string
	for i, p := range pages {
		path := filepath.Join(dir, fmt.Sprintf("%s-%d-p%d.png", strings.TrimSuffix(filepath.Base(pdf), ".pdf"), dpi, i+1))
		writePNG(t, path, p)
		paths = append(paths, path)
	}
	return paths
}

func writePNG(t *testing.T, path string, img image.Image) {
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
}

// zbarRead returns the payloads zbarimg finds in an image. Only QR codes
// are looked for: zbarimg also tries a dozen linear symbologies by
// default, and --raw output would not say that a line came from one.
func zbarRead(t *testing.T, path string) []string {
	cmd := exec.Command("zbarimg", "--raw", "-q", "-Sdisable", "-Sqrcode.enable", path)
	out, err := cmd.Output()
	if ee, ok := err.(*exec.ExitError); ok && ee.ExitCode() == 4 {
		return nil // no symbol found
	} else if err != nil {
		t.Fatalf("zbarimg %s: %v", path, err)
	}
	var got []string
	for _, l := range strings.Split(strings.TrimRight(string(out), "\n"), "\n") {
		if l != "" {
			got = append(got, l)
		}
	}
	return got
}

func ourRead(t *testing.T, path string) []string {
	got, err := scan.DecodeFile(path)
	if _, none := err.(*scan.NoCodeError); none {
		return nil
	}
	if err != nil {
		t.Fatalf("DecodeFile(%s): %v", path, err)
	}
	return got
}

func sorted(s []string) []string {
	s = append([]string(nil), s...)
	sort.Strings(s)
	return s
}

// TestPaperRoundTripOpenSSLKeys splits keys made by openssl 3-of-5 onto
// paper, rasterises every page at 300 and 150 dpi, and checks that our
// scanner and zbarimg read every code and agree byte for byte with the
// share; then it recovers each key from three custodians' page images.
func TestPaperRoundTripOpenSSLKeys(t *testing.T) {
	needTool(t, "openssl", "pdftoppm", "zbarimg")
	keys := opensslKeys(t, t.TempDir())
	for name, keyFile := range keys {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			kind := shares.Kind(0)
			if name == "aes-256" {
				kind = shares.KindAES
			}
			res := splitToDir(t, keyFile, filepath.Join(dir, "out"), kind, 3, 5)
			for _, dpi := range []int{300, 150} {
				var images []string
				for _, c := range res.Record.Custodians {
					text, err := os.ReadFile(filepath.Join(dir, "out", c.Files[1]))
					if err != nil {
						t.Fatal(err)
					}
					s, err := shares.ParseText(string(text), c.Files[1])
					if err != nil {
						t.Fatal(err)
					}
					want := sorted(s.QRPayloads())
					var ours, zbar []string
					pages := rasterize(t, filepath.Join(dir, "out", c.Files[0]), dpi, dir)
					var withCodes []string
					for i, p := range pages {
						z := zbarRead(t, p)
						zbar = append(zbar, z...)
						// Pages of typed text only cost our scanner a full
						// search; read those zbarimg found codes on, and
						// the first page, which must have one.
						if len(z) > 0 || i == 0 {
							ours = append(ours, ourRead(t, p)...)
							withCodes = append(withCodes, p)
						}
					}
					if got := sorted(ours); !equalStrings(got, want) {
						t.Errorf("%s at %d dpi: our scanner read %d codes, want the %d printed, byte for byte", c.Files[0], dpi, len(got), len(want))
					}
					if got := sorted(zbar); !equalStrings(got, want) {
						t.Errorf("%s at %d dpi: zbarimg read %d codes, want the %d printed, byte for byte (%s)", c.Files[0], dpi, len(got), len(want), extraReads(got, want))
					}
					if c.Index == 2 || c.Index == 4 || c.Index == 5 {
						images = append(images, withCodes...)
					}
				}
				wantSecret, _ := os.ReadFile(keyFile)
				assertRecovers(t, images, wantSecret, res.Record)
			}
		})
	}
}

// extraReads says how reads differ from the payloads printed, without
// quoting them: repeats of a printed payload, and payloads never printed.
func extraReads(got, want []string) string {
	printed := map[string]int{}
	for _, w := range want {
		printed[w]++
	}
	var repeats, missing int
	var strange []string
	for _, g := range got {
		switch n, ok := printed[g]; {
		case !ok:
			strange = append(strange, fmt.Sprintf("%d chars", len(g)))
		case n == 0:
			repeats++
		default:
			printed[g]--
		}
	}
	for _, n := range printed {
		missing += n
	}
	return fmt.Sprintf("%d repeated, %d never printed %v, %d not read",
		repeats, len(strange), strange, missing)
}

func equalStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func assertRecovers(t *testing.T, images []string, want []byte, record *SetRecord) {
	t.Helper()
	offered := ReadShareFiles(images)
	var msgs []string
	rep := Reporter{Warn: func(f string, a ...any) { msgs = append(msgs, fmt.Sprintf(f, a...)) }}
	rec, err := Rebuild(context.Background(), RecoverRequest{Offered: offered, Record: record}, rep)
	if err != nil {
		t.Fatalf("Rebuild from %d images: %v (warnings: %v)", len(images), err, msgs)
	}
	defer rec.Wipe()
	if !bytes.Equal(rec.Secret.Bytes, want) {
		t.Fatal("the rebuilt secret differs from the key split")
	}
}

// TestDegradedScans recovers a key from pages that a poor scanner or a
// phone would give: rotated ±5°, blurred, JPEG quality 40, printed at 90%,
// and with a quarter of the code covered (error correction H carries it).
func TestDegradedScans(t *testing.T) {
	needTool(t, "openssl", "pdftoppm", "convert")
	dir := t.TempDir()
	keys := opensslKeys(t, dir)
	res := splitToDir(t, keys["rsa-3072"], filepath.Join(dir, "out"), 0, 2, 3)
	want, _ := os.ReadFile(keys["rsa-3072"])

	var clean []string
	for _, c := range res.Record.Custodians[:2] {
		for _, p := range rasterize(t, filepath.Join(dir, "out", c.Files[0]), 300, dir) {
			if len(ourRead(t, p)) > 0 {
				clean = append(clean, p) // the pages with codes
			}
		}
	}
	degradations := map[string][]string{
		"rotate+5":  {"-rotate", "5"},
		"rotate-5":  {"-rotate", "-5"},
		"blur":      {"-blur", "0x1.5"},
		"jpeg q40":  {"-quality", "40"},
		"scale 90%": {"-resize", "90%"},
	}
	for name, args := range degradations {
		t.Run(name, func(t *testing.T) {
			var images []string
			for i, page := range clean {
				ext := ".png"
				if name == "jpeg q40" {
					ext = ".jpg"
				}
				out := filepath.Join(t.TempDir(), fmt.Sprintf("page%d%s", i, ext))
				run(t, "convert", append(append([]string{page}, args...), out)...)
				images = append(images, out)
			}
			assertRecovers(t, images, want, res.Record)
		})
	}
	t.Run("quarter covered", func(t *testing.T) {
		var images []string
		for i, page := range clean {
			out := filepath.Join(t.TempDir(), fmt.Sprintf("page%d.png", i))
			coverQuarters(t, page, out)
			images = append(images, out)
		}
		assertRecovers(t, images, want, res.Record)
	})
}

// coverQuarters paints white over the bottom-right quarter of every QR
// code on a page: the quarter without finder patterns, as a coffee stain or
// a torn corner might. Pages without codes are copied as they are.
func coverQuarters(t *testing.T, in, out string) {
	f, err := os.Open(in)
	if err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(f)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	page := image.NewRGBA(img.Bounds())
	draw.Draw(page, page.Bounds(), img, image.Point{}, draw.Src)
	work := image.NewRGBA(img.Bounds()) // codes found are blanked here
	draw.Draw(work, work.Bounds(), img, image.Point{}, draw.Src)

	for found := 0; ; found++ {
		if found > 20 {
			t.Fatal("found more than 20 codes on one page")
		}
		bmp, _ := gozxing.NewBinaryBitmapFromImage(work)
		hints := map[gozxing.DecodeHintType]interface{}{gozxing.DecodeHintType_TRY_HARDER: true}
		res, err := qrcode.NewQRCodeReader().Decode(bmp, hints)
		if err != nil {
			break
		}
		minX, minY, maxX, maxY := bounds(res.GetResultPoints())
		// Finder centres sit 3.5 modules in from the symbol's edges; the
		// quarter runs from the centre of the symbol to its far corner.
		pad := (maxX - minX) / 6
		quarter := image.Rect(int((minX+maxX)/2), int((minY+maxY)/2), int(maxX+pad), int(maxY+pad))
		draw.Draw(page, quarter, image.White, image.Point{}, draw.Src)
		whole := image.Rect(int(minX-2*pad), int(minY-2*pad), int(maxX+2*pad), int(maxY+2*pad))
		draw.Draw(work, whole, image.White, image.Point{}, draw.Src)
	}
	writePNG(t, out, page)
}

func bounds(pts []gozxing.ResultPoint) (minX, minY, maxX, maxY float64) {
	minX, minY = 1e9, 1e9
	for _, p := range pts[:3] {
		minX, maxX = min(minX, p.GetX()), max(maxX, p.GetX())
		minY, maxY = min(minY, p.GetY()), max(maxY, p.GetY())
	}
	return
}
