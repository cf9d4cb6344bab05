package ceremony

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"custos/printer"
	"custos/shares"
)

// Plan is a ceremony written down in advance: who holds what, who watches,
// where things go. It is a small text file a person can edit:
//
//	# custos ceremony plan
//	[set]
//	label     = backup master key
//	threshold = 2
//	paper     = a4
//	key       = generate          ; or file:/path/to/key
//	kind      = aes               ; of a key file: aes, hmac, private-key, raw
//	out       = /media/ceremony/set1
//	roots     = yubico-roots.pem  ; card attestation roots (optional)
//	witnesses = Dana Ortiz, Eli Park
//
//	[custodian Ana Lima]
//	medium = both                 ; card, paper or both
//	card   = 12345678
//
//	[custodian Bo Chen]
//	medium = paper
//
//	[recovery]
//	target = file:/secure/restored.key   ; or a pkcs11: URI
//
// Lines starting with # or ; are comments; a value may end with a comment
// after " ;" or " #". Keys are case-insensitive. The number of shares is
// the number of custodians.
type Plan struct {
	Label      string
	Threshold  int
	Paper      printer.Paper
	Key        KeySource
	OutDir     string
	Roots      string // PEM file of card attestation roots; empty: Yubico
	Witnesses  []string
	Custodians []PlanCustodian
	Target     string // recovery target: "file:PATH" or a pkcs11: URI
}

// PlanCustodian is one share holder in a plan.
type PlanCustodian struct {
	Name   string
	Card   bool
	Paper  bool
	Serial uint32 // card serial when Card
}

// Medium names the custodian's media as the plan writes them.
func (c PlanCustodian) Medium() string {
	switch {
	case c.Card && c.Paper:
		return "both"
	case c.Card:
		return "card"
	}
	return "paper"
}

// KeySource says where a split's master key comes from: generated inside
// custos (an AES-256 key) or read from a file.
type KeySource struct {
	Generate bool
	File     string
	// Kind is what a key file holds; zero lets custos tell from its
	// bytes. An HSM target needs it to know the key type.
	Kind shares.Kind
}

func (k KeySource) String() string {
	if k.Generate {
		return "generate"
	}
	return "file:" + k.File
}

// ParseKeySource reads "generate" or "file:PATH".
func ParseKeySource(s string) (KeySource, error) {
	if s == "generate" {
		return KeySource{Generate: true}, nil
	}
	if p, ok := strings.CutPrefix(s, "file:"); ok && p != "" {
		return KeySource{File: p}, nil
	}
	return KeySource{}, fmt.Errorf("key %q: write generate or file:PATH", s)
}

// PlanError names the plan file and line of a mistake.
type PlanError struct {
	File string
	Line int
	Msg  string
}

func (e *PlanError) Error() string {
	if e.Line == 0 {
		return fmt.Sprintf("plan %s: %s", e.File, e.Msg)
	}
	return fmt.Sprintf("plan %s line %d: %s", e.File, e.Line, e.Msg)
}

// ReadPlan reads and checks a plan file.
func ReadPlan(path string) (*Plan, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("reading plan: %w", err)
	}
	defer f.Close()
	return ParsePlan(f, path)
}

// maxPlanLine bounds a plan line; plans are short and hand written.
const maxPlanLine = 4096

// ParsePlan parses a plan; name is used in errors.
func ParsePlan(r io.Reader, name string) (*Plan, error) {
	p := &planParser{plan: &Plan{}, name: name}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 256), maxPlanLine)
	for sc.Scan() {
		p.line++
		if err := p.parseLine(sc.Text()); err != nil {
			return nil, err
		}
	}
	if err := sc.Err(); errors.Is(err, bufio.ErrTooLong) {
		return nil, &PlanError{name, p.line + 1, fmt.Sprintf("the line is longer than %d bytes", maxPlanLine)}
	} else if err != nil {
		return nil, &PlanError{name, p.line + 1, err.Error()}
	}
	if err := p.plan.check(); err != nil {
		return nil, &PlanError{File: name, Msg: err.Error()}
	}
	return p.plan, nil
}

type planParser struct {
	plan         *Plan
	name         string
	line         int
	section      string
	seen         map[string]bool // keys seen in this section
	seenSections map[string]bool
}

func (p *planParser) errf(format string, a ...any) error {
	return &PlanError{p.name, p.line, fmt.Sprintf(format, a...)}
}

func (p *planParser) parseLine(raw string) error {
	line := strings.TrimSpace(raw)
	if line == "" || line[0] == '#' || line[0] == ';' {
		return nil
	}
	if line[0] == '[' {
		return p.openSection(line)
	}
	key, value, ok := strings.Cut(line, "=")
	if !ok {
		return p.errf("%q is neither [section] nor key = value", line)
	}
	key = strings.ToLower(strings.TrimSpace(key))
	value = stripComment(strings.TrimSpace(value))
	if p.section == "" {
		return p.errf("%s = … comes before any [section]", key)
	}
	if p.seen[key] {
		return p.errf("%s is given twice in [%s]", key, p.section)
	}
	p.seen[key] = true
	return p.setValue(key, value)
}

func stripComment(v string) string {
	for _, mark := range []string{" ;", " #", "\t;", "\t#"} {
		if i := strings.Index(v, mark); i >= 0 {
			v = v[:i]
		}
	}
	return strings.TrimSpace(v)
}

func (p *planParser) openSection(line string) error {
	if !strings.HasSuffix(line, "]") {
		return p.errf("section %q has no closing ]", line)
	}
	head := strings.TrimSpace(line[1 : len(line)-1])
	kind, rest, _ := strings.Cut(head, " ")
	kind = strings.ToLower(kind)
	rest = strings.TrimSpace(rest)
	p.seen = map[string]bool{}
	switch {
	case kind == "custodian" && rest != "":
		for _, c := range p.plan.Custodians {
			if c.Name == rest {
				return p.errf("custodian %q is listed twice", rest)
			}
		}
		p.plan.Custodians = append(p.plan.Custodians, PlanCustodian{Name: rest})
	case kind == "custodian":
		return p.errf("[custodian] needs a name: [custodian Ana Lima]")
	case (kind == "set" || kind == "recovery") && rest == "":
		if p.sectionSeen(kind) {
			return p.errf("[%s] is given twice", kind)
		}
	default:
		return p.errf("unknown section [%s]; use [set], [custodian NAME] or [recovery]", head)
	}
	p.section = kind
	return nil
}

func (p *planParser) sectionSeen(kind string) bool {
	if p.seenSections == nil {
		p.seenSections = map[string]bool{}
	}
	if p.seenSections[kind] {
		return true
	}
	p.seenSections[kind] = true
	return false
}

func (p *planParser) setValue(key, value string) error {
	var err error
	switch p.section {
	case "set":
		err = p.plan.setSet(key, value)
	case "custodian":
		err = p.plan.Custodians[len(p.plan.Custodians)-1].set(key, value)
	case "recovery":
		if key != "target" {
			err = fmt.Errorf("unknown key %q in [recovery]; it takes target", key)
		}
		p.plan.Target = value
	}
	if err != nil {
		return p.errf("%v", err)
	}
	return nil
}

func (pl *Plan) setSet(key, value string) error {
	var err error
	switch key {
	case "label":
		pl.Label = value
	case "threshold", "k":
		pl.Threshold, err = strconv.Atoi(value)
		if err != nil || pl.Threshold < 2 || pl.Threshold > 255 {
			return fmt.Errorf("threshold %q: give a number from 2 to 255", value)
		}
	case "paper":
		pl.Paper, err = printer.ParsePaper(value)
	case "key":
		kind := pl.Key.Kind
		pl.Key, err = ParseKeySource(value)
		pl.Key.Kind = kind
	case "kind":
		pl.Key.Kind, err = shares.ParseKind(value)
	case "out":
		pl.OutDir = value
	case "roots":
		pl.Roots = value
	case "witnesses":
		pl.Witnesses = splitNames(value)
	default:
		return fmt.Errorf("unknown key %q in [set]; it takes label, threshold, paper, key, kind, out, roots, witnesses", key)
	}
	return err
}

func splitNames(v string) []string {
	var out []string
	for _, n := range strings.Split(v, ",") {
		if n = strings.TrimSpace(n); n != "" {
			out = append(out, n)
		}
	}
	return out
}

func (c *PlanCustodian) set(key, value string) error {
	switch key {
	case "medium":
		switch value {
		case "card":
			c.Card, c.Paper = true, false
		case "paper":
			c.Card, c.Paper = false, true
		case "both":
			c.Card, c.Paper = true, true
		default:
			return fmt.Errorf("medium %q for %s: write card, paper or both", value, c.Name)
		}
	case "card", "serial":
		n, err := strconv.ParseUint(value, 10, 32)
		if err != nil || n == 0 {
			return fmt.Errorf("card %q for %s is not a card serial number", value, c.Name)
		}
		c.Serial = uint32(n)
	default:
		return fmt.Errorf("unknown key %q for custodian %s; it takes medium and card", key, c.Name)
	}
	return nil
}

// check refuses a plan that cannot run, saying what to fix.
func (pl *Plan) check() error {
	n := len(pl.Custodians)
	serials := map[uint32]string{}
	for i := range pl.Custodians {
		c := &pl.Custodians[i]
		if !c.Card && !c.Paper {
			c.Paper = true // no medium given: paper
		}
		if c.Card && c.Serial == 0 {
			return fmt.Errorf("custodian %s has a card medium but no card = SERIAL", c.Name)
		}
		if !c.Card && c.Serial != 0 {
			return fmt.Errorf("custodian %s has card %d but medium paper; write medium = both or card", c.Name, c.Serial)
		}
		if prev, ok := serials[c.Serial]; ok && c.Serial != 0 {
			return fmt.Errorf("card %d is given to both %s and %s", c.Serial, prev, c.Name)
		}
		serials[c.Serial] = c.Name
	}
	switch {
	case n > 255:
		return fmt.Errorf("%d custodians; at most 255", n)
	case n > 0 && pl.Threshold > n:
		return fmt.Errorf("threshold %d is more than the %d custodians", pl.Threshold, n)
	case pl.Key.Generate && pl.Key.Kind != 0 && pl.Key.Kind != shares.KindAES:
		return fmt.Errorf("kind %s with key = generate: a generated key is AES-256; drop kind or give key = file:PATH", pl.Key.Kind)
	case pl.Key.Kind == shares.KindBundle:
		return fmt.Errorf("kind bundle: a ceremony splits one key; split bundles with custos split")
	case pl.Target != "" && !strings.HasPrefix(pl.Target, "file:") && !strings.HasPrefix(pl.Target, "pkcs11:"):
		return fmt.Errorf("target %q: write file:PATH or a pkcs11: URI", pl.Target)
	}
	return nil
}

// missing says what a split still needs that the plan does not give.
func (pl *Plan) missing() []string {
	var m []string
	if pl.Label == "" {
		m = append(m, "label")
	}
	if pl.Threshold == 0 {
		m = append(m, "threshold")
	}
	if len(pl.Custodians) < 2 {
		m = append(m, "custodians")
	}
	if !pl.Key.Generate && pl.Key.File == "" {
		m = append(m, "key")
	}
	if pl.OutDir == "" {
		m = append(m, "out")
	}
	return m
}
