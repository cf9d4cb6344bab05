package printer

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// refCases are shares of the sizes custodians get: the smallest possible,
// one AES key, an RSA-3072 private key (110 lines, six codes, as custos
// split makes it) and a 4 KiB secret.
func refCases() map[string]SharePage {
	return map[string]SharePage{
		"smallest": testPage(A4, "Ada Lovelace", 1, 20),
		"aes key":  testPage(A4, "Ada Lovelace", 12, 620),
		"rsa-3072": testPage(Letter, "Bo Chen", 110,
			990, 990, 990, 990, 990, 600),
		"4 KiB": pageCases()["large"],
	}
}

// flat joins a page's words with single spaces, so phrases wrapped over
// lines can be found.
func flat(s string) string { return strings.Join(strings.Fields(s), " ") }

// pagesWith returns the 1-based numbers of the pages holding want.
func pagesWith(pages []string, want string) []int {
	var on []int
	for i, pg := range pages {
		if strings.Contains(flat(pg), want) {
			on = append(on, i+1)
		}
	}
	return on
}

// wantRange spells a page range as a reader expects it, written here
// independently of pageRange.
func wantRange(from, to int) string {
	if from == to {
		return "page " + strconv.Itoa(from)
	}
	if to == from+1 {
		return fmt.Sprintf("pages %d and %d", from, to)
	}
	return fmt.Sprintf("pages %d to %d", from, to)
}

// TestPageReferences renders shares of several lengths and checks, in the
// text pdftotext reads back, that every page the paper points to holds
// what it says: the notice on page 1 names the pages that really hold the
// instructions, and the instructions name the pages of the check values
// and of the text form.
func TestPageReferences(t *testing.T) {
	seen := map[int]bool{}
	for name, p := range refCases() {
		t.Run(name, func(t *testing.T) {
			doc, err := render(p)
			if err != nil {
				t.Fatal(err)
			}
			seen[doc.pages] = true
			pages := strings.Split(extractText(t, doc), "\f")
			if len(pages) < doc.pages {
				t.Fatalf("pdftotext found %d pages; the share has %d",
					len(pages), doc.pages)
			}
			pages = pages[:doc.pages]
			checkRefs(t, p, pages)
		})
	}
	// The smallest share already takes two pages; a multi-page one must
	// be among the cases, or the bug this guards against is not covered.
	most := 0
	for n := range seen {
		most = max(most, n)
	}
	if !seen[2] || most < 5 {
		t.Errorf("cases rendered to %v pages; want 2 and 5 or more", seen)
	}
}

// checkRefs finds each section in pages and compares the references.
func checkRefs(t *testing.T, p SharePage, pages []string) {
	t.Helper()
	first := func(what string) int {
		on := pagesWith(pages, what)
		if len(on) == 0 {
			t.Fatalf("no page holds %q", what)
		}
		return on[0]
	}
	last := func(what string) int {
		on := pagesWith(pages, what)
		if len(on) == 0 {
			t.Fatalf("no page holds %q", what)
		}
		return on[len(on)-1]
	}

	instrFrom := first("What to do with this page")
	instrTo := last("to run key recoveries.")
	paras := instructions(p, measureRefs)
	for _, para := range paras {
		if on := first(para.lead); on < instrFrom || on > instrTo {
			t.Errorf("paragraph %q is on page %d, outside pages %d to %d",
				para.lead, on, instrFrom, instrTo)
		}
	}
	notice := "What to do with it is explained on " +
		wantRange(instrFrom, instrTo) + "."
	if instrFrom == 1 && instrTo == 1 {
		notice = "What to do with it is explained below."
	}
	if !strings.Contains(flat(pages[0]), notice) {
		t.Errorf("page 1 lacks %q; the instructions are on pages %d to %d:"+
			"\n%s", notice, instrFrom, instrTo, pages[0])
	}

	details := first("Check values:")
	if !strings.Contains(flat(strings.Join(pages, " ")),
		"with the check values on "+wantRange(details, details)+":") {
		t.Errorf("the instructions do not send the reader to page %d for "+
			"the check values", details)
	}

	textFrom := first(flat(p.TextLines[0]))
	textTo := last(flat(p.TextLines[len(p.TextLines)-1]))
	if textFrom != first("Text form") {
		t.Errorf("text line 1 is on page %d, its heading on page %d",
			textFrom, first("Text form"))
	}
	want := "type the numbered lines of the text form (" +
		wantRange(textFrom, textTo) + ")"
	if !strings.Contains(flat(strings.Join(pages, " ")), want) {
		t.Errorf("the instructions lack %q", want)
	}
}

// TestNoticeWords checks the page phrases, including a layout no share
// reaches today: everything on page 1.
func TestNoticeWords(t *testing.T) {
	tests := []struct {
		from, to int
		want     string
	}{
		{1, 1, "What to do with it is explained below."},
		{1, 2, "What to do with it is explained on pages 1 and 2."},
		{3, 3, "What to do with it is explained on page 3."},
		{2, 4, "What to do with it is explained on pages 2 to 4."},
	}
	for _, tt := range tests {
		got := noticeWhere(pageRefs{instrFrom: tt.from, instrTo: tt.to})
		if got != tt.want {
			t.Errorf("pages %d to %d: got %q, want %q", tt.from, tt.to,
				got, tt.want)
		}
	}
}

// TestInstructionsPrintCommands checks that the commands are on paper
// whole, one to a line, as a reader must type them.
func TestInstructionsPrintCommands(t *testing.T) {
	p := refCases()["aes key"]
	doc, err := render(p)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(extractText(t, doc), "\n")
	for _, cmd := range []string{guidedCommand, oneLineCommand} {
		found := slices.ContainsFunc(lines, func(l string) bool {
			return strings.TrimSpace(l) == cmd
		})
		if !found {
			t.Errorf("no line of the page is the command %q", cmd)
		}
	}
	text := flat(strings.Join(lines, " "))
	for _, stale := range []string{`run "custos recover" and do what it asks`,
		"asks for the shares one at a time, as a scan"} {
		if strings.Contains(text, stale) {
			t.Errorf("the page still says %q", stale)
		}
	}
}

// printedCommands returns the commands set apart in the instructions and
// those quoted in their prose.
func printedCommands(p SharePage) []string {
	quoted := regexp.MustCompile(`"(custos [^"]*)"`)
	var cmds []string
	for _, para := range instructions(p, measureRefs) {
		for _, part := range para.parts {
			if part.cmd {
				cmds = append(cmds, part.text)
				continue
			}
			for _, m := range quoted.FindAllStringSubmatch(part.text, -1) {
				cmds = append(cmds, m[1])
			}
		}
	}
	return cmds
}

// cliSource is what the tests read from cmd/custos: the synopsis lines of
// its usage texts, its command names and the flags it defines.
type cliSource struct {
	synopses map[string][]string // "custos recover" → synopsis lines
	commands map[string]bool     // "recover", "ceremony recover", "help"
	flags    map[string]bool     // every flag name defined anywhere
}

// readCLI parses the CLI's source. It reads the usage texts rather than
// running the binary, so the printer tests need no build of the CLI.
func readCLI(t *testing.T) cliSource {
	t.Helper()
	dir := filepath.Join("..", "cmd", "custos")
	fset := token.NewFileSet()
	files, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil || len(files) == 0 {
		t.Fatalf("finding the CLI source in %s: %v", dir, err)
	}
	cli := cliSource{map[string][]string{}, map[string]bool{},
		map[string]bool{}}
	for _, path := range files {
		if strings.HasSuffix(path, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
		if err != nil {
			t.Fatalf("parsing %s: %v", path, err)
		}
		ast.Inspect(f, func(n ast.Node) bool {
			switch n := n.(type) {
			case *ast.ValueSpec:
				cli.addUsage(n)
				cli.addTable(n)
			case *ast.CallExpr:
				cli.addFlag(n)
			case *ast.CaseClause:
				// run's switch takes "help" before the table.
				for _, e := range n.List {
					if lit, ok := e.(*ast.BasicLit); ok && lit.Value == `"help"` {
						cli.commands["help"] = true
					}
				}
			}
			return true
		})
	}
	if len(cli.synopses) == 0 || len(cli.commands) < 3 || len(cli.flags) == 0 {
		t.Fatalf("found no usage text, commands or flags in %s", dir)
	}
	return cli
}

// addUsage reads the synopsis lines of a string constant named *usage
// or *Usage.
func (cli cliSource) addUsage(v *ast.ValueSpec) {
	for i, name := range v.Names {
		if !strings.HasSuffix(strings.ToLower(name.Name), "usage") ||
			i >= len(v.Values) {
			continue
		}
		lit, ok := v.Values[i].(*ast.BasicLit)
		if !ok || lit.Kind != token.STRING {
			continue
		}
		text, err := strconv.Unquote(lit.Value)
		if err != nil {
			continue
		}
		for _, line := range synopsisLines(text) {
			var words []string
			for _, w := range strings.Fields(line)[1:] {
				if strings.HasPrefix(w, "-") || strings.HasPrefix(w, "[") ||
					strings.ToUpper(w) == w || strings.Contains(w, "|") {
					break
				}
				words = append(words, w)
			}
			key := "custos " + strings.Join(words, " ")
			cli.synopses[key] = append(cli.synopses[key], line)
		}
	}
}

// synopsisLines returns the lines of text that start with "custos ",
// each joined with the lines that continue it ("[--card SERIAL]...").
func synopsisLines(text string) []string {
	var out []string
	open := false
	for _, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		switch {
		case strings.HasPrefix(line, "custos "):
			out = append(out, line)
			open = true
		case open && (strings.HasPrefix(line, "[") ||
			strings.HasPrefix(line, "-")):
			out[len(out)-1] += " " + line
		default:
			open = false
		}
	}
	return out
}

// addTable reads the keys of the dispatch tables: commands (top level)
// and ceremonyCommands, cardCommands, … (groups).
func (cli cliSource) addTable(v *ast.ValueSpec) {
	for i, name := range v.Names {
		if i >= len(v.Values) || !strings.HasSuffix(name.Name, "ommands") {
			continue
		}
		group := strings.TrimSuffix(name.Name, "Commands")
		if name.Name == "commands" {
			group = ""
		}
		lit, ok := v.Values[i].(*ast.CompositeLit)
		if !ok {
			continue
		}
		for _, el := range lit.Elts {
			kv, ok := el.(*ast.KeyValueExpr)
			if !ok {
				continue
			}
			key, ok := kv.Key.(*ast.BasicLit)
			if !ok {
				continue
			}
			sub, _ := strconv.Unquote(key.Value)
			cli.commands[strings.TrimSpace(group+" "+sub)] = true
		}
	}
}

// addFlag records the name given to a flag-defining call such as
// fs.String("out", "", "") or fs.StringVar(&x, "audit", "", "").
func (cli cliSource) addFlag(call *ast.CallExpr) {
	sel, ok := call.Fun.(*ast.SelectorExpr)
	if !ok {
		return
	}
	arg := 0
	switch sel.Sel.Name {
	case "String", "Bool", "Int", "Duration", "Func":
	case "StringVar", "BoolVar", "IntVar", "DurationVar", "Var":
		arg = 1
	default:
		return
	}
	if len(call.Args) <= arg {
		return
	}
	if lit, ok := call.Args[arg].(*ast.BasicLit); ok && lit.Kind == token.STRING {
		name, _ := strconv.Unquote(lit.Value)
		cli.flags[name] = true
	}
}

// TestInstructionsNameRealCommands checks every command the paper tells a
// reader to type against the CLI: the command exists, its usage synopsis
// has each flag printed, each flag is defined, a value given in a form
// ("file:…") is the form the synopsis asks for, and the arguments are the
// synopsis's. A successor years from now has no one to ask if they differ.
func TestInstructionsNameRealCommands(t *testing.T) {
	cli := readCLI(t)
	cmds := printedCommands(refCases()["aes key"])
	for _, want := range []string{guidedCommand, oneLineCommand,
		"custos help"} {
		if !slices.Contains(cmds, want) {
			t.Errorf("the instructions do not print %q", want)
		}
	}
	for _, cmd := range cmds {
		checkCommand(t, cli, cmd)
	}
}

func checkCommand(t *testing.T, cli cliSource, cmd string) {
	t.Helper()
	words := strings.Fields(cmd)
	var name []string
	for _, w := range words[1:] {
		if strings.HasPrefix(w, "-") {
			break
		}
		name = append(name, w)
	}
	if len(name) == 0 || !cli.commands[strings.Join(name, " ")] {
		t.Errorf("%q: custos has no command %q", cmd, strings.Join(name, " "))
		return
	}
	if name[0] == "help" {
		return
	}
	key := "custos " + strings.Join(name, " ")
	synopses := cli.synopses[key]
	if len(synopses) == 0 {
		t.Errorf("%q: no usage text has a synopsis for %q", cmd, key)
		return
	}

	rest := words[1+len(name):]
	for i := 0; i < len(rest); i++ {
		w := rest[i]
		if !strings.HasPrefix(w, "--") {
			// A positional argument, named as the synopsis names it.
			for _, syn := range synopses {
				if !slices.Contains(strings.Fields(syn), w) {
					t.Errorf("%q: argument %s is not in the synopsis %q",
						cmd, w, syn)
				}
			}
			continue
		}
		flag := strings.TrimPrefix(w, "--")
		if !cli.flags[flag] {
			t.Errorf("%q: no flag --%s is defined in cmd/custos", cmd, flag)
		}
		for _, syn := range synopses {
			if !regexp.MustCompile(`(^|[\s\[])` + regexp.QuoteMeta(w) +
				`(\s|\]|$)`).MatchString(syn) {
				t.Errorf("%q: the synopsis %q has no %s", cmd, syn, w)
			}
		}
		if i+1 == len(rest) {
			continue
		}
		i++
		if form, _, ok := strings.Cut(rest[i], ":"); ok {
			// The value's form must be one the command's own usage
			// text gives after the flag.
			re := regexp.MustCompile(regexp.QuoteMeta(w) + `\s+(\S*\|)?` +
				regexp.QuoteMeta(form+":"))
			if !slices.ContainsFunc(synopses, re.MatchString) {
				t.Errorf("%q: no synopsis of %q gives %s a %q value",
					cmd, key, w, form+":")
			}
		}
	}
}
