package ceremony

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"sync"

	"github.com/manifoldco/promptui"
	"golang.org/x/term"
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

// ErrInputEnded is returned by a prompter whose input ended: Ctrl-D on a
// terminal, or the end of what was piped in. It is an ErrInterrupted, so
// a ceremony stops on it, but it is reported as what it is.
var ErrInputEnded error = inputEnded{}

type inputEnded struct{}

func (inputEnded) Error() string { return "the input ended" }

// Is makes an ended input an interruption too.
func (inputEnded) Is(target error) bool { return target == ErrInterrupted }

// TermPrompter asks on a terminal with promptui; PINs are masked. When its
// input or output is not a terminal (a pipe, a file, a log), it asks in
// plain numbered lines instead, with no cursor codes, and reads a PIN
// only from a terminal.
type TermPrompter struct {
	In  io.ReadCloser  // nil means standard input
	Out io.WriteCloser // nil means standard output

	lines *bufio.Reader // plain mode's reader of In, kept between questions
}

func (t *TermPrompter) out() io.WriteCloser {
	if t.Out == nil {
		return os.Stdout
	}
	return t.Out
}

func (t *TermPrompter) in() io.ReadCloser {
	if t.In == nil {
		return os.Stdin
	}
	return t.In
}

// plain says whether to ask in plain lines: promptui draws with cursor
// codes that only a terminal understands.
func (t *TermPrompter) plain() bool {
	return !isTerminal(t.in()) || !isTerminal(t.out())
}

func isTerminal(f any) bool {
	fd, ok := f.(interface{ Fd() uintptr })
	return ok && term.IsTerminal(int(fd.Fd()))
}

// readLine reads one answer in plain mode, without its line end.
func (t *TermPrompter) readLine() (string, error) {
	if t.lines == nil {
		t.lines = bufio.NewReader(t.in())
	}
	l, err := t.lines.ReadString('\n')
	if errors.Is(err, io.EOF) && l == "" {
		return "", ErrInputEnded
	}
	if err != nil && !errors.Is(err, io.EOF) {
		return "", fmt.Errorf("reading the answer: %w", err)
	}
	return strings.TrimRight(l, "\r\n"), nil
}

// ask prints a plain question and reads its answer.
func (t *TermPrompter) ask(q string) (string, error) {
	fmt.Fprintf(t.out(), "%s: ", q)
	l, err := t.readLine()
	if !isTerminal(t.in()) {
		fmt.Fprintln(t.out()) // nothing echoed the answer or its line end
	}
	return l, err
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
		var ans string
		var err error
		if t.plain() {
			ans, err = t.ask(question + " [y/n]")
		} else {
			p := promptui.Prompt{Label: question + " [y/n]", Stdin: t.In, Stdout: t.out()}
			ans, err = p.Run()
			err = termErr(err)
		}
		if err != nil {
			return false, err
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

// Select shows the choices as a list picked with the arrow keys, or, in
// plain mode, as a numbered list answered with a number.
func (t *TermPrompter) Select(question string, choices []string) (int, error) {
	if t.plain() {
		return t.plainSelect(question, choices)
	}
	s := promptui.Select{Label: question, Items: choices, Size: len(choices),
		HideHelp: true, Stdin: t.In, Stdout: t.out()}
	i, _, err := s.Run()
	return i, termErr(err)
}

func (t *TermPrompter) plainSelect(question string, choices []string) (int, error) {
	w := t.out()
	for {
		fmt.Fprintln(w, question)
		for i, c := range choices {
			fmt.Fprintf(w, "  %d) %s\n", i+1, c)
		}
		ans, err := t.ask(fmt.Sprintf("Type a number from 1 to %d", len(choices)))
		if err != nil {
			return 0, err
		}
		n, err := strconv.Atoi(strings.TrimSpace(ans))
		if err == nil && n >= 1 && n <= len(choices) {
			return n - 1, nil
		}
		fmt.Fprintf(w, "   %q is not one of the numbers 1 to %d\n", ans, len(choices))
	}
}

// Input asks for a line, checked as it is typed (in plain mode, checked
// when it is in, and asked again when refused).
func (t *TermPrompter) Input(question string, check func(string) error) (string, error) {
	if t.plain() {
		for {
			ans, err := t.ask(question)
			if err != nil {
				return "", err
			}
			ans = strings.TrimSpace(ans)
			if check == nil {
				return ans, nil
			}
			cerr := check(ans)
			if cerr == nil {
				return ans, nil
			}
			fmt.Fprintf(t.out(), "   %v\n", cerr)
		}
	}
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
	if t.plain() {
		return t.plainSecret(question)
	}
	p := promptui.Prompt{Label: question, Mask: '*', Stdin: t.In, Stdout: t.out(),
		HideEntered: true}
	ans, err := p.Run()
	if err != nil {
		return nil, termErr(err)
	}
	return []byte(ans), nil
}

// ErrNoTerminal is returned when a PIN is asked for and no terminal is
// there to type it on without it showing.
var ErrNoTerminal = errors.New("a PIN is typed on a terminal, and standard input is not one: " +
	"run the ceremony on a terminal, or rehearse it with --answers")

// plainSecret reads a PIN from a terminal input while the output is not
// a terminal: nothing is echoed. It never reads one from a pipe.
func (t *TermPrompter) plainSecret(question string) ([]byte, error) {
	in, ok := t.in().(interface{ Fd() uintptr })
	if !ok || !term.IsTerminal(int(in.Fd())) {
		return nil, ErrNoTerminal
	}
	fmt.Fprintf(t.out(), "%s: ", question)
	pin, err := term.ReadPassword(int(in.Fd()))
	fmt.Fprintln(t.out())
	if err != nil {
		return nil, fmt.Errorf("reading from the terminal: %w", err)
	}
	return pin, nil
}

func termErr(err error) error {
	if errors.Is(err, promptui.ErrEOF) {
		return ErrInputEnded
	}
	if errors.Is(err, promptui.ErrInterrupt) {
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

// scriptStop turns the replies "interrupt" and "end of input" into the
// errors a terminal gives for Ctrl-C and for input that ends.
func scriptStop(reply string) error {
	switch reply {
	case "interrupt":
		return ErrInterrupted
	case "end of input":
		return ErrInputEnded
	}
	return nil
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
	}
	if err := scriptStop(r); err != nil {
		return false, err
	}
	return false, fmt.Errorf("script: answer %q to %q is not yes or no", r, question)
}

// Select takes a reply that is part of exactly one choice.
func (s *Script) Select(question string, choices []string) (int, error) {
	r, err := s.next(question)
	if err != nil {
		return 0, err
	}
	if err := scriptStop(r); err != nil {
		return 0, err
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
	if err := scriptStop(r); err != nil {
		return "", err
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
	if err := scriptStop(r); err != nil {
		return nil, err
	}
	return []byte(r), nil
}
