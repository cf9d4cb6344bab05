package ceremony

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"custos/printer"
	"custos/shares"
)

const goodPlan = `# a full plan
[set]
label     = Payments master key ; the label
threshold = 2
paper     = letter
key       = file:/keys/master.key
kind      = aes
out       = /media/ceremony/set1
witnesses = Dana Ortiz, Eli Park

[custodian Ana Lima]
medium = both
card   = 12345678

[custodian Bo Chen]
medium = paper

[Custodian Chen Wu]
MEDIUM = card
serial = 87654321

[recovery]
target = pkcs11:token=vault-a?module-path=/usr/lib/softhsm/libsofthsm2.so
`

func TestParsePlan(t *testing.T) {
	pl, err := ParsePlan(strings.NewReader(goodPlan), "good.plan")
	if err != nil {
		t.Fatal(err)
	}
	want := &Plan{Label: "Payments master key", Threshold: 2, Paper: printer.Letter,
		Key: KeySource{File: "/keys/master.key", Kind: shares.KindAES}, OutDir: "/media/ceremony/set1",
		Witnesses: []string{"Dana Ortiz", "Eli Park"},
		Target:    "pkcs11:token=vault-a?module-path=/usr/lib/softhsm/libsofthsm2.so",
		Custodians: []PlanCustodian{{Name: "Ana Lima", Card: true, Paper: true, Serial: 12345678},
			{Name: "Bo Chen", Paper: true}, {Name: "Chen Wu", Card: true, Serial: 87654321}}}
	if got, exp := planString(pl), planString(want); got != exp {
		t.Errorf("parsed\n%s\nwant\n%s", got, exp)
	}
	if m := pl.missing(); len(m) != 0 {
		t.Errorf("a full plan misses %v", m)
	}

	// kind before key keeps the kind.
	pl, err = ParsePlan(strings.NewReader("[set]\nkind = hmac\nkey = file:/k\n"), "order.plan")
	if err != nil || pl.Key.Kind != shares.KindHMAC || pl.Key.File != "/k" {
		t.Errorf("kind before key: %+v, %v", pl, err)
	}
}

// planString writes a plan out field by field, for comparison.
func planString(pl *Plan) string {
	var b strings.Builder
	for _, f := range []string{pl.Label, itoa(pl.Threshold), pl.Paper.String(), pl.Key.String(),
		pl.Key.Kind.String(), pl.OutDir, strings.Join(pl.Witnesses, "|"), pl.Target, pl.Roots} {
		b.WriteString(f + "\n")
	}
	for _, c := range pl.Custodians {
		b.WriteString(c.Name + " " + c.Medium() + " " + itoa(int(c.Serial)) + "\n")
	}
	return b.String()
}

// Every mistake is named with its file and line, and says how to fix it.
func TestParsePlanErrors(t *testing.T) {
	cases := []struct {
		plan string
		line int
		want string
	}{
		{"label = x\n", 1, "before any [section]"},
		{"[set]\nlabel x\n", 2, "neither [section] nor key = value"},
		{"[set]\nlabel = a\nlabel = b\n", 3, "given twice"},
		{"[set]\n[set]\n", 2, "[set] is given twice"},
		{"[set\n", 1, "no closing ]"},
		{"[vault]\n", 1, "unknown section"},
		{"[custodian]\n", 1, "needs a name"},
		{"[custodian A]\n[custodian A]\n", 2, "listed twice"},
		{"[set]\nthreshold = 1\n", 2, "from 2 to 255"},
		{"[set]\nthreshold = two\n", 2, "from 2 to 255"},
		{"[set]\nkey = random\n", 2, "generate or file:PATH"},
		{"[set]\nkind = pdf\n", 2, "unknown secret kind"},
		{"[set]\npaper = a3\n", 2, ""},
		{"[set]\ncolour = red\n", 2, "unknown key"},
		{"[custodian A]\nmedium = usb\n", 2, "card, paper or both"},
		{"[custodian A]\ncard = 0\n", 2, "not a card serial"},
		{"[custodian A]\npin = 1234\n", 2, "unknown key"},
		{"[recovery]\nsource = x\n", 2, "takes target"},
		{"[custodian A]\nmedium = card\n", 0, "no card = SERIAL"},
		{"[custodian A]\nmedium = paper\ncard = 5\n", 0, "medium = both"},
		{"[custodian A]\nmedium = card\ncard = 5\n[custodian B]\nmedium = card\ncard = 5\n", 0, "given to both"},
		{"[set]\nthreshold = 3\n[custodian A]\n[custodian B]\n", 0, "more than the 2 custodians"},
		{"[set]\nkey = generate\nkind = hmac\n", 0, "generated key is AES-256"},
		{"[set]\nkey = file:/k\nkind = bundle\n", 0, "kind bundle"},
		{"[recovery]\ntarget = /dev/sda\n", 0, "file:PATH or a pkcs11: URI"},
		{"[set]\nlabel = " + strings.Repeat("x", maxPlanLine) + "\n", 2, "longer than 4096 bytes"},
	}
	for _, c := range cases {
		_, err := ParsePlan(strings.NewReader(c.plan), "bad.plan")
		var pe *PlanError
		if !errors.As(err, &pe) {
			t.Errorf("%q: got %v, want a PlanError", c.plan, err)
			continue
		}
		if pe.File != "bad.plan" || pe.Line != c.line || !strings.Contains(pe.Msg, c.want) {
			t.Errorf("%.60q: got %.100q (line %d), want line %d with %q", c.plan, err, pe.Line, c.line, c.want)
		}
	}
}

// The plan files shipped in testdata parse.
func TestShippedPlans(t *testing.T) {
	paths, _ := filepath.Glob(filepath.Join("..", "testdata", "plans", "*.plan"))
	if len(paths) == 0 {
		t.Fatal("no plans in testdata/plans")
	}
	for _, p := range paths {
		pl, err := ReadPlan(p)
		if err != nil {
			t.Errorf("%s: %v", p, err)
			continue
		}
		if m := pl.missing(); len(m) != 0 {
			t.Errorf("%s misses %v", p, m)
		}
	}
}

// FuzzParsePlan feeds plans to the parser: it must never panic, and what
// it accepts must be a plan a ceremony can run or ask the rest of.
func FuzzParsePlan(f *testing.F) {
	f.Add(goodPlan)
	paths, _ := filepath.Glob(filepath.Join("..", "testdata", "plans", "*.plan"))
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(string(b))
	}
	f.Add("[set]\nthreshold = 2\n[custodian A]\nmedium = card\ncard = 7\n[custodian B]\n")
	f.Fuzz(func(t *testing.T, s string) {
		pl, err := ParsePlan(strings.NewReader(s), "fuzz.plan")
		if err != nil {
			var pe *PlanError
			if !errors.As(err, &pe) || pe.File != "fuzz.plan" {
				t.Fatalf("error %v is not a PlanError naming the file", err)
			}
			return
		}
		n := len(pl.Custodians)
		if pl.Threshold != 0 && (pl.Threshold < 2 || pl.Threshold > 255 || n > 0 && pl.Threshold > n) {
			t.Fatalf("accepted threshold %d of %d", pl.Threshold, n)
		}
		names, serials := map[string]bool{}, map[uint32]bool{}
		for _, c := range pl.Custodians {
			if c.Name == "" || names[c.Name] || !c.Card && !c.Paper || c.Card != (c.Serial != 0) {
				t.Fatalf("accepted custodian %+v", c)
			}
			if c.Serial != 0 && serials[c.Serial] {
				t.Fatalf("accepted card %d twice", c.Serial)
			}
			names[c.Name], serials[c.Serial] = true, true
		}
		if pl.Key.Generate && pl.Key.File != "" {
			t.Fatalf("accepted key %+v", pl.Key)
		}
	})
}
