package printer

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

const testHead = "3f9a1c0e7b2d4f6a8c9e1b3d5f7a9c0e2b4d6f8a1c3e5b7d9f0a2c4e6b8d0f1a"

// testTranscript returns a split ceremony of steps steps.
func testTranscript(paper Paper, steps int) Transcript {
	start := time.Date(2026, 1, 15, 9, 0, 0, 0, time.UTC)
	t := Transcript{
		Paper: paper, Kind: CeremonySplit,
		SetID: "7F2C 1A9B 0011 2233 4455 6677 8899 AABB",
		Label: "Payments HSM master key 2026", Threshold: 2, Count: 3,
		CheckValues: []string{"KCV (AES-CMAC, X9.24): 1A2B3C"},
		Date:        start, Place: "Vault room B, Zürich",
		Notes: "Camera 2 was off for maintenance.\nThe spare card " +
			"12345679 stayed sealed.",
		People: []Participant{
			{Name: "Olga Operator", Role: RoleOperator},
			{Name: "Ana Silva", Role: RoleCustodian, Share: 1,
				Detail: "card 12345678 and paper"},
			{Name: "Софья Ковалевская", Role: RoleCustodian, Share: 2,
				Detail: "paper"},
			{Name: "Chen Wei", Role: RoleCustodian, Share: 3,
				Detail: "card 12345680"},
			{Name: "Wanda Witness", Role: RoleWitness},
		},
		AuditLog: "audit.jsonl", AuditSeq: 42, AuditHead: testHead,
	}
	outcomes := []string{"ok", "ok", "ok", "refused", "ok", "failed"}
	for i := range steps {
		t.Steps = append(t.Steps, TranscriptStep{
			Time: start.Add(time.Duration(i) * 97 * time.Second),
			What: fmt.Sprintf("Step %03d: share %d written for its "+
				"custodian and read back from its page", i+1, i%3+1),
			Outcome: outcomes[i%len(outcomes)],
		})
	}
	return t
}

func TestTranscriptText(t *testing.T) {
	tr := testTranscript(A4, 8)
	doc, err := renderTranscript(tr)
	if err != nil {
		t.Fatal(err)
	}
	checkBoxes(t, doc, A4)
	text := extractText(t, doc)
	flat := strings.Join(strings.Fields(text), " ")

	want := []string{"Key ceremony transcript", "Key split", tr.SetID,
		tr.Label, "any 2 of the 3 shares rebuild the key", tr.CheckValues[0],
		"Thursday 15 January 2026, 09:00 UTC", tr.Place,
		"Camera 2 was off for maintenance.", "audit.jsonl ended with entry 42",
		"custos audit verify --head HASH LOG", "share 1, card 12345678 and paper",
	}
	for _, p := range tr.People {
		want = append(want, p.Name)
	}
	// The head, grouped as people read it aloud.
	want = append(want, "3F9A1C0E 7B2D4F6A 8C9E1B3D 5F7A9C0E",
		"2B4D6F8A 1C3E5B7D 9F0A2C4E 6B8D0F1A")
	for _, s := range tr.Steps {
		want = append(want, s.What)
	}
	for _, w := range want {
		if !strings.Contains(flat, w) {
			t.Errorf("pdftotext does not find %q", w)
		}
	}
	// Every step's time and outcome, in order.
	pos := 0
	for i, s := range tr.Steps {
		row := s.Time.Format("15:04:05") + " " + s.What + " " + s.Outcome
		j := strings.Index(flat[pos:], row)
		if j < 0 {
			t.Fatalf("step %d row %q not found in order in:\n%s", i+1, row, flat)
		}
		pos += j + len(row)
	}
	// A signature line for everyone present and two spare.
	if n := strings.Count(text, "Signature"); n != len(tr.People)+2+1 {
		t.Errorf("%d \"Signature\" captions and headings; want %d", n,
			len(tr.People)+3)
	}
	for _, p := range tr.People {
		if !strings.Contains(flat, p.Name+", "+string(p.Role)) {
			t.Errorf("no signature line for %s", p.Name)
		}
	}
}

func TestTranscriptPages(t *testing.T) {
	for _, paper := range []Paper{A4, Letter} {
		t.Run(paper.String(), func(t *testing.T) {
			tr := testTranscript(paper, 150)
			tr.Steps[70].Time = tr.Steps[70].Time.Add(24 * time.Hour)
			doc, err := renderTranscript(tr)
			if err != nil {
				t.Fatal(err)
			}
			if doc.pages < 4 {
				t.Fatalf("150 steps fit %d pages; want several", doc.pages)
			}
			checkBoxes(t, doc, paper)

			text := extractText(t, doc)
			everyPageSays(t, doc, text, func(i int) []string {
				return []string{fmt.Sprintf("Page %d of %d", i, doc.pages),
					fmt.Sprintf("split transcript · page %d of %d", i,
						doc.pages),
					"audit head 3F9A1C0E7B2D4F6A", tr.SetID}
			})
			pages := strings.Split(text, "\f")
			if !strings.Contains(pages[1], "Steps, continued") {
				t.Error("page 2 does not say the steps continue")
			}
			// A ceremony over two days prints dates with the times.
			if !strings.Contains(text, "15 Jan 09:00:00") ||
				!strings.Contains(text, "16 Jan") {
				t.Error("steps on two days are printed without their dates")
			}
			flat := strings.Join(strings.Fields(text), " ")
			for i, s := range tr.Steps {
				if !strings.Contains(flat, s.What) {
					t.Errorf("step %d is missing", i+1)
				}
			}
			// The signatures come last.
			last := pages[doc.pages-1]
			if !strings.Contains(last, "Name and role") {
				t.Error("the last page has no spare signature line")
			}
			if !strings.Contains(text, "Signatures, continued") &&
				strings.Count(last, "Signature") < len(tr.People)+2 {
				t.Error("signatures continue without their heading")
			}
		})
	}
}

// TestTranscriptRendered rasterises every page with pdftoppm: each page
// has ink, and none of it outside the frame.
func TestTranscriptRendered(t *testing.T) {
	needTool(t, "pdftoppm", "poppler-utils")
	const dpi = 60
	tr := testTranscript(Letter, 60)
	doc, err := renderTranscript(tr)
	if err != nil {
		t.Fatal(err)
	}
	if doc.pages < 2 {
		t.Fatalf("60 steps fit %d page; want several", doc.pages)
	}
	for i, img := range rasterise(t, doc, dpi) {
		inside, outside := inkAround(img, Letter, dpi)
		if inside < 1000 || outside > 0 {
			t.Errorf("page %d: %d inked pixels inside the frame, %d outside",
				i+1, inside, outside)
		}
	}
}

func TestTranscriptInvalid(t *testing.T) {
	tests := []struct {
		name   string
		change func(*Transcript)
		want   string
	}{
		{"no paper", func(t *Transcript) { t.Paper = 0 }, "paper"},
		{"kind", func(t *Transcript) { t.Kind = "party" }, `"party"`},
		{"no set", func(t *Transcript) { t.SetID = " " }, "set ID"},
		{"k > n", func(t *Transcript) { t.Threshold = 4 }, "4 of 3"},
		{"no date", func(t *Transcript) { t.Date = time.Time{} }, "date"},
		{"no steps", func(t *Transcript) { t.Steps = nil }, "no steps"},
		{"short head", func(t *Transcript) { t.AuditHead = "3f9a" }, "64 hex"},
		{"no name", func(t *Transcript) { t.People[1].Name = "" }, "person 2"},
		{"role", func(t *Transcript) { t.People[2].Role = "boss" },
			"person 3 (Софья Ковалевская) has role \"boss\""},
		{"step", func(t *Transcript) { t.Steps[1].What = "" }, "step 2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr := testTranscript(A4, 3)
			tt.change(&tr)
			err := WriteTranscriptPDF(&bytes.Buffer{}, tr)
			if !errors.Is(err, ErrInvalidTranscript) ||
				!strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v, want ErrInvalidTranscript about %q", err,
					tt.want)
			}
		})
	}
}

func TestTranscriptUnprintable(t *testing.T) {
	saved := FallbackFonts
	defer func() { FallbackFonts = saved }()
	FallbackFonts = nil

	tr := testTranscript(A4, 3)
	tr.People[3].Name = "Chen 李"
	err := WriteTranscriptPDF(&bytes.Buffer{}, tr)
	var ue *UnprintableError
	if !errors.As(err, &ue) || ue.Field != "name of person 4" {
		t.Fatalf("got %v, want an UnprintableError for person 4", err)
	}

	tr = testTranscript(A4, 3)
	tr.Steps[2].What = "card \u202Eevil"
	if err := WriteTranscriptPDF(&bytes.Buffer{}, tr); !errors.As(err, &ue) ||
		ue.Field != "step 3" {
		t.Fatalf("got %v, want an UnprintableError for step 3", err)
	}
}

func TestTranscriptDeterministic(t *testing.T) {
	tr := testTranscript(A4, 20)
	var a, b, c bytes.Buffer
	if err := WriteTranscriptPDF(&a, tr); err != nil {
		t.Fatal(err)
	}
	if err := WriteTranscriptPDF(&b, tr); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a.Bytes(), b.Bytes()) {
		t.Error("two renderings differ")
	}
	tr.AuditHead = strings.Repeat("0", 64)
	if err := WriteTranscriptPDF(&c, tr); err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(a.Bytes(), c.Bytes()) {
		t.Error("a different audit head gave the same bytes")
	}
}

func TestGroupHash(t *testing.T) {
	got := groupHash(testHead)
	if len(got) != 2 || got[0] != "3F9A1C0E 7B2D4F6A 8C9E1B3D 5F7A9C0E" {
		t.Errorf("groupHash = %q", got)
	}
	if strings.ReplaceAll(strings.Join(got, ""), " ", "") != strings.ToUpper(testHead) {
		t.Error("groupHash lost or added digits")
	}
}
