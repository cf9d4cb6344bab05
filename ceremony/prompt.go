package ceremony

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"

	"github.com/manifoldco/promptui"
)

// Prompter is how a ceremony talks with the people in the room. Every flow
// speaks only through it, so that the same flow runs on a terminal
// (TermPrompter) and from a script in tests (Script).
type Prompter interface {
	// Show puts up a screen: what is happening and what to do now.
	Show(s Screen)
	// Confirm asks a yes/no question.
	Confirm(question string) (bool, error)
	// Select asks for one of choices and returns its position.
	Select(question string, choices []string) (int, error)
	// Input asks for a line of text; check, when set, refuses bad
	// answers with a reason and the question is asked again.
	Input(question string, check func(string) error) (string, error)
	// Secret asks for a PIN or other secret without showing it. The
	// caller clears the result after use.
	Secret(question string) ([]byte, error)
}

// Screen is one announcement: a title and lines of plain words.
type Screen struct {
	Title string
	Lines []string
	// Alarm marks a screen about a failure or an interruption.
	Alarm bool
}

// ErrInterrupted is returned by a prompter when the person pressed Ctrl-C
// or the ceremony was told to stop.
var ErrInterrupted = errors.New("interrupted")

// TermPrompter asks on a terminal with promptui. PINs are masked.
type TermPrompter struct {
	In  io.ReadCloser  // nil means standard input
	Out io.WriteCloser // nil means standard output
}

func (t *TermPrompter) out() io.WriteCloser {
	if t.Out == nil {
		return os.Stdout
	}
	return t.Out
}

// Show prints a screen with a rule above its title.
func (t *TermPrompter) Show(s Screen) {
	w := t.out()
	mark := "=="
	if s.Alarm {
		mark = "!!"
	}
	fmt.Fprintf(w, "\n%s %s %s\n", mark, s.Title, strings.Repeat(mark[:1], max(0, 60-len(s.Title))))
	for _, l := range s.Lines {
		fmt.Fprintf(w, "   %s\n", l)
	}
	fmt.Fprintln(w)
}

// Confirm asks for y or n; anything else is asked again.
func (t *TermPrompter) Confirm(question string) (bool, error) {
	for {
		p := promptui.Prompt{Label: question + " [y/n]", Stdin: t.In, Stdout: t.out()}
		ans, err := p.Run()
		if err != nil {
			return false, termErr(err)
		}
		switch strings.ToLower(strings.TrimSpace(ans)) {
		case "y", "yes":
			return true, nil
		case "n", "no":
			return false, nil
		}
		fmt.Fprintln(t.out(), "   please type y for yes or n for no")
	}
}

// Select shows the choices as a list picked with the arrow keys.
func (t *TermPrompter) Select(question string, choices []string) (int, error) {
	s := promptui.Select{Label: question, Items: choices, Size: len(choices),
		HideHelp: true, Stdin: t.In, Stdout: t.out()}
	i, _, err := s.Run()
	return i, termErr(err)
}

// Input asks for a line, checked as it is typed.
func (t *TermPrompter) Input(question string, check func(string) error) (string, error) {
	p := promptui.Prompt{Label: question, Validate: check, Stdin: t.In, Stdout: t.out()}
	ans, err := p.Run()
	return strings.TrimSpace(ans), termErr(err)
}

// Secret asks for a PIN, showing a star for each character typed.
//
// TODO: promptui returns the PIN as a string, which cannot be cleared from
// memory; piv-go takes PINs as strings too, so a byte-level reader would
// not keep it out of memory for long either.
func (t *TermPrompter) Secret(question string) ([]byte, error) {
	p := promptui.Prompt{Label: question, Mask: '*', Stdin: t.In, Stdout: t.out(),
		HideEntered: true}
	ans, err := p.Run()
	if err != nil {
		return nil, termErr(err)
	}
	return []byte(ans), nil
}

func termErr(err error) error {
	if errors.Is(err, promptui.ErrInterrupt) || errors.Is(err, promptui.ErrEOF) {
		return ErrInterrupted
	}
	if err != nil {
		return fmt.Errorf("reading from the terminal: %w", err)
	}
	return nil
}

// ErrScript is wrapped by every error of a Script that cannot answer a
// question (none left, one for another question, one refused). A
// ceremony stops on it rather than asking again.
var ErrScript = errors.New("the script cannot answer")

// Answer is one scripted reply. Ask must be part of the question it
// answers; a question that does not contain it fails the script.
type Answer struct {
	Ask   string
	Reply string
}

// Script is a Prompter fed answers in order, for tests and rehearsals. It
// fails on a question it has no answer for, and keeps everything it was
// shown and asked in its transcript.
type Script struct {
	Answers []Answer
	// Fallback, when set, answers questions once Answers are used up.
	Fallback func(question string) (string, bool)
	// Echo, when set, is shown every screen and every question with its
	// reply as they happen, so an unattended rehearsal can be followed.
	// Replies to Secret are not shown.
	Echo io.Writer

	mu  sync.Mutex
	log strings.Builder
}

// Transcript returns every screen and question the script saw.
func (s *Script) Transcript() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.log.String()
}

// Left returns how many scripted answers were not used.
func (s *Script) Left() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.Answers)
}

// Show records the screen.
func (s *Script) Show(sc Screen) {
	s.mu.Lock()
	defer s.mu.Unlock()
	fmt.Fprintf(&s.log, "== %s\n", sc.Title)
	for _, l := range sc.Lines {
		fmt.Fprintf(&s.log, "   %s\n", l)
	}
	if s.Echo != nil {
		(&TermPrompter{Out: nopCloser{s.Echo}}).Show(sc)
	}
}

type nopCloser struct{ io.Writer }

func (nopCloser) Close() error { return nil }

func (s *Script) next(question string) (string, error) {
	return s.ask(question, false)
}

// ask takes the next answer, or the fallback's, and echoes it.
func (s *Script) ask(question string, secret bool) (reply string, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	fmt.Fprintf(&s.log, "?? %s\n", question)
	if s.Echo != nil {
		defer func() {
			shown := reply
			if secret {
				shown = "(given; not shown)"
			}
			if err == nil {
				fmt.Fprintf(s.Echo, "?? %s\n   > %s\n", question, shown)
			}
		}()
	}
	if len(s.Answers) == 0 {
		if s.Fallback != nil {
			if r, ok := s.Fallback(question); ok {
				return r, nil
			}
		}
		return "", fmt.Errorf("script: unexpected question %q: no answer left: %w", question, ErrScript)
	}
	a := s.Answers[0]
	if !strings.Contains(question, a.Ask) {
		return "", fmt.Errorf("script: unexpected question %q: the next answer is for %q: %w", question, a.Ask, ErrScript)
	}
	s.Answers = s.Answers[1:]
	return a.Reply, nil
}

// Confirm takes "yes" or "no".
func (s *Script) Confirm(question string) (bool, error) {
	r, err := s.next(question)
	if err != nil {
		return false, err
	}
	switch r {
	case "yes":
		return true, nil
	case "no":
		return false, nil
	case "interrupt":
		return false, ErrInterrupted
	}
	return false, fmt.Errorf("script: answer %q to %q is not yes or no", r, question)
}

// Select takes a reply that is part of exactly one choice.
func (s *Script) Select(question string, choices []string) (int, error) {
	r, err := s.next(question)
	if err != nil {
		return 0, err
	}
	if r == "interrupt" {
		return 0, ErrInterrupted
	}
	found := -1
	for i, c := range choices {
		if strings.Contains(c, r) {
			if found >= 0 {
				return 0, fmt.Errorf("script: answer %q to %q matches several choices", r, question)
			}
			found = i
		}
	}
	if found < 0 {
		return 0, fmt.Errorf("script: answer %q to %q is none of %q", r, question, choices)
	}
	return found, nil
}

// Input returns the reply, refused like a terminal would when check fails.
func (s *Script) Input(question string, check func(string) error) (string, error) {
	r, err := s.next(question)
	if err != nil {
		return "", err
	}
	if r == "interrupt" {
		return "", ErrInterrupted
	}
	if check != nil {
		if err := check(r); err != nil {
			return "", fmt.Errorf("script: answer %q to %q refused: %w (%w)", r, question, ErrScript, err)
		}
	}
	return r, nil
}

// Secret returns the reply as bytes.
func (s *Script) Secret(question string) ([]byte, error) {
	r, err := s.ask(question, true)
	if err != nil {
		return nil, err
	}
	if r == "interrupt" {
		return nil, ErrInterrupted
	}
	return []byte(r), nil
}
