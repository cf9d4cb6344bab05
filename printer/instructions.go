package printer

import "fmt"

// instruction is one paragraph of the recovery instructions: a bold lead
// and its text. Parts with a field come from the caller and are checked
// against the fonts under that name.
type instruction struct {
	lead  string
	parts []part
}

type part struct {
	text  string
	field string
}

func plain(format string, a ...any) part { return part{text: fmt.Sprintf(format, a...)} }

// instructions returns the paragraphs printed on every share, written for
// a custodian under stress or a successor who has no one to ask.
//
// TODO: English only; a custodian may need them in their own language.
func instructions(p SharePage) []instruction {
	label := part{"“" + p.Label + "”", "label"}
	if p.Label == "" {
		label = plain("a secret key")
	}
	k, n := p.Threshold, p.Count
	return []instruction{
		{"What this is.", []part{
			plain("This page is share %d of %d of ", p.Index, n), label,
			plain(", split with the custos program on %s. The key was cut "+
				"into %d shares, each given to a different custodian. Any %d "+
				"different shares of the same set (set ID %s, printed on "+
				"every page) rebuild the key. Fewer than %d reveal nothing "+
				"about it, and shares of other sets do not fit.",
				p.Created.UTC().Format("2 January 2006"), n, k, p.SetID, k),
		}},
		{"Keep it safe.", []part{plain(
			"Store this page sealed in an envelope, in a locked place, away " +
				"from the other shares. Do not copy, photograph or scan it " +
				"except during a recovery. Never give it, show it, read it " +
				"out or send it to anyone: not to colleagues, IT support, " +
				"vendors, auditors, or anyone who calls or writes asking for " +
				"it, however urgent they say it is. It leaves your hands only " +
				"at a recovery you attend in person. If it may have been seen, " +
				"copied or lost, tell the security officer at once, so the " +
				"key can be split again and this share made useless.")}},
		{"To recover the key.", []part{plain(
			"Bring this page to the recovery. On the recovery computer, run "+
				"\"custos recover\" and do what it asks. It asks for the "+
				"shares one at a time, as a scan or photo of the page or as "+
				"typed text. It checks each share on its own, names any that "+
				"is damaged or belongs to another set, and shows how many of "+
				"the %d needed it has. With %d it rebuilds the key and "+
				"compares it with the check values printed on the first "+
				"page; they must match. Take this page back when it is done.",
			k, k)}},
		{"If the code will not scan.", []part{plain(
			"Type the text form instead, one line at a time, exactly as " +
				"printed. The last group of each line is a check: a typing " +
				"mistake is reported on its own line, so only that line " +
				"needs to be typed again.")}},
		{"If you are not the custodian named here.", []part{plain(
			"If this page reached you because its custodian left or died, " +
				"do not destroy it and do not use it alone. Keep it sealed " +
				"and hand it, in person, only to the person your organisation " +
				"has named to run key recoveries.")}},
	}
}
