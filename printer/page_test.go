package printer

import (
	"bytes"
	"errors"
	"fmt"
	"image"
	_ "image/png"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestParsePaper(t *testing.T) {
	for in, want := range map[string]Paper{"a4": A4, "A4": A4,
		" letter ": Letter, "Letter": Letter} {
		got, err := ParsePaper(in)
		if err != nil || got != want {
			t.Errorf("ParsePaper(%q) = %v, %v; want %v", in, got, err, want)
		}
		if back, _ := ParsePaper(got.String()); back != got {
			t.Errorf("ParsePaper(%v.String()) = %v", got, back)
		}
	}
	for _, in := range []string{"", "a3", "legal", "a44"} {
		if _, err := ParsePaper(in); err == nil {
			t.Errorf("ParsePaper(%q) succeeded", in)
		}
	}
}

func TestValidate(t *testing.T) {
	secret := "SECRETPAYLOADXYZ"
	tests := []struct {
		name   string
		change func(*SharePage)
		want   string
	}{
		{"no paper", func(p *SharePage) { p.Paper = 0 }, "paper"},
		{"no name", func(p *SharePage) { p.Custodian = "  " }, "custodian"},
		{"no set", func(p *SharePage) { p.SetID = "" }, "set ID"},
		{"index 0", func(p *SharePage) { p.Index = 0 }, "index 0"},
		{"k > n", func(p *SharePage) { p.Threshold = 6 }, "6 of 5"},
		{"n > 255", func(p *SharePage) { p.Count, p.Threshold = 256, 2 }, "256"},
		{"no time", func(p *SharePage) { p.Created = time.Time{} }, "creation"},
		{"no lines", func(p *SharePage) { p.TextLines = nil }, "text lines"},
		{"no codes", func(p *SharePage) { p.QRPayloads = nil }, "QR payloads"},
		{"tab in line", func(p *SharePage) {
			p.TextLines[3] = secret + "\t"
		}, "text line 4: character 17"},
		{"lower case", func(p *SharePage) {
			p.QRPayloads[0] = secret + "a"
		}, "QR payload 1: character 17"},
		{"too long", func(p *SharePage) {
			p.QRPayloads[0] = strings.Repeat("A", MaxQRPayload+1)
		}, "1201 characters"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := testPage(A4, "Ada Lovelace", 12, 300)
			tt.change(&p)
			err := WriteSharePDF(&bytes.Buffer{}, p)
			if !errors.Is(err, ErrInvalidPage) {
				t.Fatalf("got %v, want ErrInvalidPage", err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not mention %q", err, tt.want)
			}
			if strings.Contains(err.Error(), secret) {
				t.Errorf("error %q quotes share data", err)
			}
		})
	}
}

// pageCases are the layouts the geometry tests cover: a 32-byte key's
// share, a 4 KiB secret's, and long free-text fields.
func pageCases() map[string]SharePage {
	long := testPage(A4, strings.Repeat("Maximilian-Alexander ", 8), 40,
		1200, 1200, 900)
	long.Label = strings.Repeat("Card issuing master key, region EMEA. ", 9)
	long.SetID = strings.Repeat("7Q2KD4XAPN3VR5WS", 4)
	long.DealerFingerprint = strings.Repeat("0123456789abcdef", 8)
	long.CheckValues = append(long.CheckValues,
		strings.Repeat("KCV ", 40))
	return map[string]SharePage{
		"key":   testPage(A4, "Ada Lovelace", 12, 620),
		"large": testPage(A4, "Софья Ковалевская", 180, 1200, 1200, 1200, 1200, 1200, 1200, 1200, 1200, 1100),
		"long":  long,
		"odd":   testPage(A4, "Υπατία", 30, 40, 1200, 700),
	}
}

func TestGeometry(t *testing.T) {
	for name, p := range pageCases() {
		for _, paper := range []Paper{A4, Letter} {
			p.Paper = paper
			t.Run(fmt.Sprintf("%s/%v", name, paper), func(t *testing.T) {
				doc, err := render(p)
				if err != nil {
					t.Fatal(err)
				}
				checkBoxes(t, doc, paper)
			})
		}
	}
}

// checkBoxes checks every drawn element against the frame and both sheet
// sizes, and that text never overlaps text or a QR code's quiet zone.
func checkBoxes(t *testing.T, doc *document, paper Paper) {
	t.Helper()
	const eps = 1e-6
	fx, fy := paper.frame()
	pw, ph, _ := paper.size()
	if len(doc.boxes) == 0 {
		t.Fatal("nothing drawn")
	}

	for _, b := range doc.boxes {
		if b.page < 1 || b.page > doc.pages {
			t.Errorf("%s box on page %d of %d", b.kind, b.page, doc.pages)
		}
		if b.x < fx-eps || b.y < fy-eps || b.x+b.w > fx+frameW+eps ||
			b.y+b.h > fy+frameH+eps {
			t.Errorf("page %d: %s box %+v leaves the frame", b.page, b.kind, b)
		}
		for _, sheet := range []Paper{A4, Letter} {
			sw, sh, _ := sheet.size()
			dx, dy := (sw-pw)/2, (sh-ph)/2 // centred on the other sheet
			m := min(b.x+dx, b.y+dy, sw-(b.x+dx+b.w), sh-(b.y+dy+b.h))
			if m < MinMargin-eps {
				t.Errorf("page %d: %s box %+v is %.1f mm from the edge of "+
					"a %v sheet", b.page, b.kind, b, m, sheet)
			}
		}
	}

	var texts, quiets, others []box
	for _, b := range doc.boxes {
		switch b.kind {
		case "text":
			texts = append(texts, b)
		case "quiet":
			quiets = append(quiets, b)
		case "qr":
		default:
			others = append(others, b)
		}
	}
	for i, a := range texts {
		for _, b := range texts[i+1:] {
			if a.page == b.page && overlap(a, b) {
				t.Errorf("page %d: text boxes overlap: %+v %+v", a.page, a, b)
			}
		}
	}
	for _, q := range quiets {
		for _, b := range append(texts, others...) {
			if q.page == b.page && overlap(q, b) {
				t.Errorf("page %d: %s box in a quiet zone: %+v %+v",
					q.page, b.kind, b, q)
			}
		}
	}
}

func overlap(a, b box) bool {
	const slack = 0.05
	return a.x+slack < b.x+b.w && b.x+slack < a.x+a.w &&
		a.y+slack < b.y+b.h && b.y+slack < a.y+a.h
}

func TestEveryPageNamesSetIndexAndPage(t *testing.T) {
	p := pageCases()["large"]
	doc, err := render(p)
	if err != nil {
		t.Fatal(err)
	}
	if doc.pages < 4 {
		t.Fatalf("a 180-line share fits %d pages; want several", doc.pages)
	}
	text := extractText(t, doc)
	everyPageSays(t, doc, text, func(i int) []string {
		return []string{fmt.Sprintf("Page %d of %d", i, doc.pages),
			fmt.Sprintf("page %d of %d", i, doc.pages),
			"Secret key share 2 of 5", p.SetID}
	})
	flat := strings.Join(strings.Fields(text), " ")
	for i, line := range p.TextLines {
		if !strings.Contains(flat, strings.Join(strings.Fields(line), " ")) {
			t.Errorf("text line %d is not in the document", i+1)
		}
	}
	for i := range p.QRPayloads {
		if want := fmt.Sprintf("Part %d of %d", i+1, len(p.QRPayloads)); !strings.Contains(text, want) {
			t.Errorf("no label %q", want)
		}
	}
}

// everyPageSays checks that each page of text, doc's text from
// extractText, holds the strings want returns for its number (from 1).
func everyPageSays(t *testing.T, doc *document, text string,
	want func(page int) []string) {
	t.Helper()
	pages := strings.Split(text, "\f")
	if len(pages) < doc.pages {
		t.Fatalf("pdftotext gives %d pages of %d", len(pages), doc.pages)
	}
	for i := 1; i <= doc.pages; i++ {
		for _, w := range want(i) {
			if !strings.Contains(pages[i-1], w) {
				t.Errorf("page %d lacks %q", i, w)
			}
		}
	}
}

// extractText writes doc and reads its text back with pdftotext, pages
// separated by form feeds.
func extractText(t *testing.T, doc *document) string {
	t.Helper()
	tool := needTool(t, "pdftotext", "poppler-utils")
	path := filepath.Join(t.TempDir(), "share.pdf")
	writeDoc(t, doc, path)
	out, err := exec.Command(tool, "-raw", "-enc", "UTF-8", path, "-").Output()
	if err != nil {
		t.Fatalf("pdftotext: %v", err)
	}
	return string(out)
}

func writeDoc(t *testing.T, doc *document, path string) {
	t.Helper()
	var buf bytes.Buffer
	if err := doc.pdf.Output(&buf); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestNamesPrintAsGiven(t *testing.T) {
	names := map[string]string{
		"Latin":    "Margaret Hamilton",
		"accents":  "José Ñúñez-Øverås Łódź",
		"Cyrillic": "Софья Васильевна Ковалевская",
		"Greek":    "Υπατία η Αλεξανδρινή",
		"extended": "Nguyễn Thị Minh Khai", // beyond the Go fonts
		"CJK":      "山田 太郎",
	}
	for script, name := range names {
		t.Run(script, func(t *testing.T) {
			switch script {
			case "extended":
				needFile(t, FallbackFonts[0], "fonts-dejavu-core")
			case "CJK":
				needFile(t, FallbackFonts[1], "fonts-droid-fallback")
			}
			doc, err := render(testPage(Letter, name, 12, 500))
			if err != nil {
				t.Fatal(err)
			}
			text := extractText(t, doc)
			if !strings.Contains(text, name) {
				t.Errorf("pdftotext does not find %q in:\n%s", name, text)
			}
		})
	}
}

func TestUnprintableNames(t *testing.T) {
	tests := []struct {
		name, custodian string
		fallbacks       []string
		chars           string
		reason          string
	}{
		{"uncovered", "山田 太郎", nil, "山田太郎", "no installed font"},
		{"uncovered beside Latin", "Ana 李", nil, "李", "no installed font"},
		{"Arabic", "نور الهدى", FallbackFonts, "نورالهدى", "Arabic"},
		{"Hebrew", "דוד לוי", FallbackFonts, "דולי", "Hebrew"},
		{"Devanagari", "अनीता", FallbackFonts, "अनीता", "Devanagari"},
		{"bidi override", "Eve\u202Eevil", FallbackFonts, "\u202E", "control"},
		{"zero width", "Bo\u200Bb", FallbackFonts, "\u200B", "control"},
		{"outside BMP", "Ug 𒀭", FallbackFonts, "𒀭", "Basic Multilingual"},
	}
	saved := FallbackFonts
	defer func() { FallbackFonts = saved }()

	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			FallbackFonts = tt.fallbacks
			err := WriteSharePDF(&bytes.Buffer{},
				testPage(A4, tt.custodian, 12, 300))
			var ue *UnprintableError
			if !errors.As(err, &ue) {
				t.Fatalf("got %v, want *UnprintableError", err)
			}
			if ue.Field != "custodian name" || string(ue.Chars) != tt.chars {
				t.Errorf("got field %q chars %q, want custodian name %q",
					ue.Field, string(ue.Chars), tt.chars)
			}
			msg := err.Error()
			if !strings.Contains(msg, tt.reason) ||
				!strings.Contains(msg, fmt.Sprintf("U+%04X", []rune(tt.chars)[0])) {
				t.Errorf("error %q lacks %q or the code point", msg, tt.reason)
			}
		})
	}
}

func TestOtherFieldsAreChecked(t *testing.T) {
	p := testPage(A4, "Ada", 12, 300)
	p.CheckValues = append(p.CheckValues, "KCV\u202E: 123")
	err := WriteSharePDF(&bytes.Buffer{}, p)
	var ue *UnprintableError
	if !errors.As(err, &ue) || ue.Field != "check value 3" {
		t.Fatalf("got %v, want an UnprintableError for check value 3", err)
	}
}

func TestDeterministic(t *testing.T) {
	for _, name := range []string{"Ada Lovelace", "Софья", "Nguyễn Thị"} {
		p := testPage(A4, name, 30, 1200, 400)
		var a, b bytes.Buffer
		if err := WriteSharePDF(&a, p); err != nil {
			t.Fatal(err)
		}
		if err := WriteSharePDF(&b, p); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(a.Bytes(), b.Bytes()) {
			t.Errorf("%s: two renderings differ", name)
		}

		p.Created = p.Created.Add(time.Second)
		var c bytes.Buffer
		if err := WriteSharePDF(&c, p); err != nil {
			t.Fatal(err)
		}
		if bytes.Equal(a.Bytes(), c.Bytes()) {
			t.Errorf("%s: a different creation time gave the same bytes", name)
		}
		if !bytes.Contains(c.Bytes(), []byte("D:20260115100401")) {
			t.Errorf("%s: creation date not taken from Created", name)
		}
	}
}

func TestTextFormFits(t *testing.T) {
	p := testPage(A4, "Ada", 3, 300)
	p.TextLines[1] += strings.Repeat(" ABCDE", 7) // 99 characters
	doc, err := render(p)
	if err != nil {
		t.Fatalf("a long line should shrink to fit: %v", err)
	}
	checkBoxes(t, doc, A4)

	p.TextLines[1] += strings.Repeat(" ABCDE", 20)
	if err := WriteSharePDF(&bytes.Buffer{}, p); !errors.Is(err, ErrInvalidPage) {
		t.Errorf("a 219-character line: got %v, want ErrInvalidPage", err)
	}
}

// TestRenderedMarginsAreBlank rasterises real pages and checks that no
// ink falls outside the frame, which lies 15 mm or more inside the sheet.
func TestRenderedMarginsAreBlank(t *testing.T) {
	needTool(t, "pdftoppm", "poppler-utils")
	const dpi = 100
	for _, paper := range []Paper{A4, Letter} {
		p := pageCases()["long"]
		p.Paper = paper
		doc, err := render(p)
		if err != nil {
			t.Fatal(err)
		}
		for i, img := range rasterise(t, doc, dpi) {
			if _, outside := inkAround(img, paper, dpi); outside > 0 {
				t.Errorf("%v page %d: %d inked pixels outside the frame",
					paper, i+1, outside)
			}
		}
	}
}

// rasterise renders doc's pages with pdftoppm in grey at dpi and returns
// one image a page; it fails unless there is an image for every page.
func rasterise(t *testing.T, doc *document, dpi int) []image.Image {
	t.Helper()
	tool := needTool(t, "pdftoppm", "poppler-utils")
	dir := t.TempDir()
	writeDoc(t, doc, filepath.Join(dir, "doc.pdf"))
	cmd := exec.Command(tool, "-png", "-gray", "-r", fmt.Sprint(dpi),
		filepath.Join(dir, "doc.pdf"), filepath.Join(dir, "p"))
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("pdftoppm: %v: %s", err, out)
	}
	files, _ := filepath.Glob(filepath.Join(dir, "p-*.png"))
	if len(files) != doc.pages {
		t.Fatalf("%d page images for %d pages", len(files), doc.pages)
	}
	var imgs []image.Image
	for _, f := range files {
		imgs = append(imgs, loadPNG(t, f))
	}
	return imgs
}

// inkAround counts the inked pixels of a page image rasterised at dpi
// inside the frame of paper and outside it.
func inkAround(img image.Image, paper Paper, dpi int) (inside, outside int) {
	fx, fy := paper.frame()
	px := func(mm float64) int {
		return int(math.Round(mm / 25.4 * float64(dpi)))
	}
	frame := image.Rect(px(fx)-1, px(fy)-1, px(fx+frameW)+1, px(fy+frameH)+1)
	b := img.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			lum, _, _, _ := img.At(x, y).RGBA()
			switch {
			case lum >= 0xf000:
			case image.Pt(x, y).In(frame):
				inside++
			default:
				outside++
			}
		}
	}
	return inside, outside
}

func loadPNG(t *testing.T, path string) image.Image {
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
