package shares

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"strings"
	"testing"
)

func TestTextRoundTrip(t *testing.T) {
	d := mustSplit(t, randBytes(t, 32), policy(2, 3))
	s := d.Shares[0]
	text := s.Text()
	got, err := ParseText(text, "ana.txt")
	if err != nil {
		t.Fatalf("ParseText: %v\n%s", err, text)
	}
	if !bytes.Equal(got.Marshal(), s.Marshal()) {
		t.Fatal("text round trip changed the share")
	}

	// Lower case, no spaces, Windows line ends, lines broken anywhere.
	var sloppy strings.Builder
	for i, l := range s.TextLines() {
		l = strings.ToLower(strings.ReplaceAll(l, " ", ""))
		if i%2 == 0 {
			l = l[:10] + "\r\n  " + l[10:]
		}
		sloppy.WriteString(l + "\r\n\r\n")
	}
	if got, err := ParseText(sloppy.String(), "sloppy.txt"); err != nil || got.Fingerprint() != s.Fingerprint() {
		t.Fatalf("ParseText(sloppy) = %v", err)
	}
}

func TestTextLineLayout(t *testing.T) {
	d := mustSplit(t, randBytes(t, 32), policy(2, 3))
	lines := d.Shares[0].TextLines()
	if len(lines) < 5 || len(lines) > 20 {
		t.Fatalf("a 32-byte key's share has %d lines", len(lines))
	}
	first := lines[0]
	// "001: " + 8 groups of 5 separated by spaces + two spaces + 4-char check.
	if !strings.HasPrefix(first, "001: ") || len(first) != 5+47+2+4 {
		t.Fatalf("line layout %q (%d chars)", first, len(first))
	}
	for _, l := range lines {
		if strings.ToUpper(l) != l {
			t.Fatalf("line %q is not uppercase", l)
		}
	}
}

func TestTypoIsReportedOnItsLine(t *testing.T) {
	d := mustSplit(t, randBytes(t, 32), policy(2, 3))
	lines := d.Shares[1].TextLines()
	for _, target := range []int{0, 3, len(lines) - 1} {
		typo := append([]string{}, lines...)
		l := []byte(typo[target])
		pos := 7 // a data character
		if l[pos] == 'A' {
			l[pos] = 'B'
		} else {
			l[pos] = 'A'
		}
		typo[target] = string(l)
		_, err := ParseText(strings.Join(typo, "\n"), "bo.txt")
		var te *TextError
		if !errors.As(err, &te) || te.Line != target+1 || !strings.Contains(err.Error(), "bo.txt") {
			t.Fatalf("typo on line %d: got %v", target+1, err)
		}
	}
}

func TestDigitsForLettersAreForgiven(t *testing.T) {
	d := mustSplit(t, randBytes(t, 32), policy(2, 3))
	s := d.Shares[2]
	var typed []string
	changed := 0
	for _, l := range s.TextLines() {
		num, rest := l[:5], l[5:]
		before := rest
		rest = strings.NewReplacer("O", "0", "I", "1", "B", "8").Replace(rest)
		if rest != before {
			changed++
		}
		typed = append(typed, num+rest)
	}
	if changed == 0 {
		t.Skip("this share happens to have no O, I or B")
	}
	got, err := ParseText(strings.Join(typed, "\n"), "typed.txt")
	if err != nil || got.Fingerprint() != s.Fingerprint() {
		t.Fatalf("ParseText with 0/1/8 for O/I/B = %v", err)
	}
}

func TestMissingAndBrokenLines(t *testing.T) {
	d := mustSplit(t, randBytes(t, 32), policy(2, 3))
	lines := d.Shares[0].TextLines()
	tests := []struct {
		name  string
		text  []string
		line  int
		cause string
	}{
		{"middle line missing", append(append([]string{}, lines[:2]...), lines[3:]...), 3, "missing"},
		{"last line missing", lines[:len(lines)-1], 0, "lines at the end are missing"},
		{"no lines", []string{"hello"}, 0, "no numbered lines"},
		{"dropped character", append([]string{lines[0][:8] + lines[0][9:]}, lines[1:]...), 1, "check does not match"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseText(strings.Join(tt.text, "\n"), "x.txt")
			var te *TextError
			if !errors.As(err, &te) || te.Line != tt.line || !strings.Contains(err.Error(), tt.cause) {
				t.Fatalf("got %v, want line %d: %s", err, tt.line, tt.cause)
			}
		})
	}
}

func TestQRPayloads(t *testing.T) {
	// A share near the inline limit needs several codes.
	d := mustSplit(t, randBytes(t, 3000), policy(2, 3))
	s := d.Shares[0]
	payloads := s.QRPayloads()
	if len(payloads) < 3 {
		t.Fatalf("a 3000-byte secret's share fits in %d codes?", len(payloads))
	}
	for _, p := range payloads {
		if len(p) > QRMaxChars {
			t.Fatalf("payload of %d chars exceeds %d", len(p), QRMaxChars)
		}
		for _, r := range p {
			if !strings.ContainsRune("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:", r) {
				t.Fatalf("payload has %q, not in QR alphanumeric mode", r)
			}
		}
	}

	// Any order, from several images, with a duplicate read.
	var parts Parts
	order := rand.Perm(len(payloads))
	for _, i := range order {
		if err := parts.Add(payloads[i], "page.png"); err != nil {
			t.Fatal(err)
		}
	}
	parts.Add(payloads[0], "page2.png")
	got, err := parts.Shares()
	if err != nil || len(got) != 1 || got[0].Fingerprint() != s.Fingerprint() {
		t.Fatalf("Shares = %v, %v", got, err)
	}

	// A missing part is named.
	var some Parts
	for _, p := range payloads[1:] {
		some.Add(p, "p2.png")
	}
	if _, err := some.Shares(); err == nil || !strings.Contains(err.Error(), "QR part 1 of") {
		t.Fatalf("missing part: %v", err)
	}

	// The payload parses as typed text too, one part at a time.
	small := mustSplit(t, randBytes(t, 32), policy(2, 3)).Shares[1]
	one := small.QRPayloads()
	if len(one) != 1 {
		t.Fatalf("a 32-byte key's share needs %d codes", len(one))
	}
	if got, err := ParseText(one[0], "qr"); err != nil || got.Fingerprint() != small.Fingerprint() {
		t.Fatalf("ParseText(QR payload) = %v", err)
	}
}

func TestPartsOfTwoShares(t *testing.T) {
	d := mustSplit(t, randBytes(t, 32), policy(2, 3))
	var parts Parts
	for i, s := range d.Shares[:2] {
		for _, p := range s.QRPayloads() {
			if err := parts.Add(p, []string{"a.png", "b.png"}[i]); err != nil {
				t.Fatal(err)
			}
		}
	}
	got, err := parts.Shares()
	if err != nil || len(got) != 2 || got[0].Source != "a.png" || got[1].Source != "b.png" {
		t.Fatalf("Shares = %v, %v", got, err)
	}
	if err := parts.Add("HELLO WORLD", "cat.png"); err == nil || !strings.Contains(err.Error(), "cat.png") {
		t.Fatalf("a foreign QR code: %v", err)
	}
}

func TestCheckTextLine(t *testing.T) {
	d := mustSplit(t, randBytes(t, 32), policy(2, 3))
	lines := d.Shares[0].TextLines()
	for i, l := range lines {
		n, err := CheckTextLine(strings.ToLower(l))
		if err != nil || n != i+1 {
			t.Fatalf("line %d as typed in lower case: %d, %v", i+1, n, err)
		}
	}
	if n, err := CheckTextLine("  # a note  "); n != 0 || err != nil {
		t.Errorf("a note line: %d, %v", n, err)
	}
	typo := []byte(lines[1])
	typo[6] ^= 1 // a character of the data, after "002: "
	_, err := CheckTextLine(string(typo))
	var te *TextError
	if !errors.As(err, &te) || te.Line != 2 || !strings.Contains(te.Reason, "mistyped") {
		t.Errorf("a typo on line 2: %v", err)
	}
	if _, err := CheckTextLine(lines[0] + " " + lines[1]); err == nil {
		t.Error("two lines typed as one were taken")
	}
}
