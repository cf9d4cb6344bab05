package ceremony

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// termWith is a TermPrompter reading input from a file and writing to
// another, neither of them a terminal, as when custos runs under a pipe.
func termWith(t *testing.T, input string) (*TermPrompter, func() string) {
	t.Helper()
	dir := t.TempDir()
	in := filepath.Join(dir, "in")
	if err := os.WriteFile(in, []byte(input), 0o600); err != nil {
		t.Fatal(err)
	}
	fin, err := os.Open(in)
	if err != nil {
		t.Fatal(err)
	}
	fout, err := os.Create(filepath.Join(dir, "out"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fin.Close(); fout.Close() })
	return &TermPrompter{In: fin, Out: fout}, func() string {
		b, err := os.ReadFile(fout.Name())
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
}

// Off a terminal, questions are plain numbered lines with no cursor
// codes, wrong answers are asked again, and a PIN is not read from the
// pipe; the end of the input is told as such, not as Ctrl-C.
func TestTermPrompterPlain(t *testing.T) {
	p, out := termWith(t, "7\n2\nmaybe\ny\n\nfine\n")
	p.Show(Screen{Title: "A screen", Lines: []string{"a line"}})
	i, err := p.Select("Which?", []string{"first", "second"})
	if err != nil || i != 1 {
		t.Fatalf("Select = %d, %v", i, err)
	}
	ok, err := p.Confirm("Go on?")
	if err != nil || !ok {
		t.Fatalf("Confirm = %v, %v", ok, err)
	}
	s, err := p.Input("Name?", notEmpty)
	if err != nil || s != "fine" {
		t.Fatalf("Input = %q, %v", s, err)
	}
	if _, err := p.Secret("PIN?"); !errors.Is(err, ErrNoTerminal) {
		t.Fatalf("Secret from a pipe: %v", err)
	}
	if _, err := p.Input("More?", nil); !errors.Is(err, ErrInputEnded) || !errors.Is(err, ErrInterrupted) {
		t.Fatalf("Input at the end: %v", err)
	}

	got := out()
	if strings.Contains(got, "\x1b") {
		t.Errorf("escape codes in plain output: %q", got)
	}
	for _, want := range []string{"== A screen", "  1) first", "  2) second", "Type a number from 1 to 2",
		`"7" is not one of the numbers`, "Go on? [y/n]", "please type y for yes or n for no", "please type something"} {
		if !strings.Contains(got, want) {
			t.Errorf("output lacks %q:\n%s", want, got)
		}
	}
}
