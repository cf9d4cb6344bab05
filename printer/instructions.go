package printer

import "fmt"

// instruction is one paragraph of the recovery instructions: a bold lead
// and its parts.
type instruction struct {
	lead  string
	parts []part
}

// part is a piece of an instruction. Parts with a field come from the
// caller and are checked against the fonts under that name; a command
// is set apart on its own line, in the monospace face.
type part struct {
	text  string
	field string
	cmd   bool
}

func plain(format string, a ...any) part { return part{text: fmt.Sprintf(format, a...)} }

func command(s string) part { return part{text: s, field: "command", cmd: true} }

// The commands the instructions tell a reader to type. They must match
// the synopses in the usage texts of cmd/custos; a test compares them.
const (
	guidedCommand  = "custos ceremony recover --set set.json --target file:NEW-FILE"
	oneLineCommand = "custos recover --set set.json --out NEW-FILE SHARE..."
)

// pageRefs are the pages the printed text points to. They are known only
// after pagination, so text is measured with measureRefs and drawn with
// the real pages.
type pageRefs struct {
	instrFrom, instrTo int // the instructions' first and last pages
	details            int // the page with the details and check values
	textFrom, textTo   int // the text form's first and last pages
}

// measureRefs gives the longest text any real layout can give: two-digit
// pages and two-page ranges ("pages 88 and 89" is longer than "pages 2 to
// 6"). Greedy wrapping never needs more lines for shorter words, so text
// measured with measureRefs fits when drawn with the real pages.
var measureRefs = pageRefs{88, 89, 88, 88, 89}

// pageRange names pages from to to in words.
func pageRange(from, to int) string {
	switch {
	case from == to:
		return fmt.Sprintf("page %d", from)
	case to == from+1:
		return fmt.Sprintf("pages %d and %d", from, to)
	}
	return fmt.Sprintf("pages %d to %d", from, to)
}

// noticeWhere is the notice's last sentence: where the instructions are.
func noticeWhere(r pageRefs) string {
	if r.instrFrom == 1 && r.instrTo == 1 {
		return "What to do with it is explained below."
	}
	return fmt.Sprintf("What to do with it is explained on %s.",
		pageRange(r.instrFrom, r.instrTo))
}

// instructions returns the paragraphs printed on every share, written for
// a custodian under stress or a successor who has no one to ask. They
// must stay short: on a share of one AES key they share a page with the
// text form and the receipt.
//
// TODO: English only; a custodian may need them in their own language.
func instructions(p SharePage, r pageRefs) []instruction {
	label := part{"“" + p.Label + "”", "label", false}
	if p.Label == "" {
		label = plain("a secret key")
	}
	k := p.Threshold
	quorum := fmt.Sprintf("Any %d different shares of set %s rebuild "+
		"the key; fewer reveal nothing", k, p.SetID)
	need := fmt.Sprintf("%d shares", k)
	if k == 1 {
		quorum = fmt.Sprintf("Any one share of set %s rebuilds the key",
			p.SetID)
		need = "one share"
	}

	return []instruction{
		{"What this is.", []part{
			plain("Share %d of %d of ", p.Index, p.Count), label,
			plain(", made with the custos program on %s. %s, and shares "+
				"of other sets do not fit.",
				p.Created.UTC().Format("2 January 2006"), quorum),
		}},
		{"Keep it safe.", []part{plain(
			"Keep it sealed and locked away, apart from the other shares; " +
				"do not copy or photograph it. Give it, show it or read it " +
				"to no one: not colleagues, IT support, vendors or auditors, " +
				"nor anyone who calls or writes for it, however urgent. It " +
				"leaves your hands only at a recovery you attend in person. " +
				"If it may have been seen or lost, tell the security " +
				"officer at once.")}},
		{"To recover the key,", []part{
			plain("bring %s of this set, its record set.json (it holds "+
				"no secret) and an offline computer with custos. The "+
				"guided way asks for the shares one at a time (card, scan "+
				"or photo, or typed) and explains each step:", need),
			command(guidedCommand),
			plain("Or name them all in one command, each share as a .png " +
				"or .jpg scan or photo of its pages, or a .txt file of its " +
				"text form:"),
			command(oneLineCommand),
			plain("Either way, custos checks each share alone, names any "+
				"that is damaged or from another set, and compares the "+
				"rebuilt key with the check values on %s: they must match. "+
				"Without set.json, leave out --set and compare them "+
				"yourself. \"custos help\" shows the other options (cards, "+
				"HSMs, large secrets).", pageRange(r.details, r.details)),
		}},
		{"If the code will not scan,", []part{plain(
			"type the numbered lines of the text form (%s), numbers "+
				"included, into a .txt file, or when the guided way asks. "+
				"Case and spaces do not matter. Each line ends in a check, "+
				"so a mistake is reported with its line number.",
			pageRange(r.textFrom, r.textTo))}},
		{"Not the custodian named here?", []part{plain(
			"If this page reached you because its custodian left or died, " +
				"do not destroy it or use it alone: keep it sealed and give " +
				"it, in person, only to whoever your organisation has named " +
				"to run key recoveries.")}},
	}
}
