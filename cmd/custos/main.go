// Command custos splits master keys into threshold shares held by custodians
// on smart cards and paper, and rebuilds them at an offline recovery.
//
// Run "custos help" for the usage text.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"syscall"
)

const usage = `custos: threshold key escrow and offline recovery.

Usage:
    custos split --threshold K --shares N [--name NAME]... [--label L]
                 [--kind raw|aes|hmac|private-key|bundle] [--paper a4|letter]
                 [--card NAME=SERIAL]... [--roots CA.pem] [--pin-file [SERIAL=]F]...
                 [--no-paper] --out DIR KEYFILE
    custos recover [--out FILE] [--sealed FILE] [--set set.json]
                   [--card SERIAL]... [--pin-file [SERIAL=]F]...
                   [--hsm URI [--hsm-path create|unwrap]] SHARE...
    custos verify [--set set.json] [--sealed FILE] SHARE...
    custos inspect [--json] SHARE
    custos ceremony split [--plan FILE] [--audit LOG] [--allow-network]
    custos ceremony recover --set set.json --target file:PATH|pkcs11:URI
                   [--sealed FILE]
    custos ceremony drill --set set.json [--sealed FILE] [--custodian]
    custos card list|status|enrol|wipe|serve-virtual ...
    custos hsm list|verify ...
    custos audit verify [--head HASH] LOG
    custos status [--drill-max-age 365d] [--audit LOG] DIR

Commands:
    split     Split KEYFILE ("-" for standard input) into N shares, any K of
              which rebuild it. Writes one PDF and one text file per share
              and set.json, the public record, into DIR. Every page is read
              back and every K-subset is combined before split succeeds.
    recover   Rebuild the secret from K or more shares. A SHARE is a typed or
              printed .txt file, or a .png/.jpg scan or photo of a share page.
              The secret goes to FILE (created new, mode 0600), or to
              standard output when that is not a terminal; the check value
              goes to standard error.
    verify    Check each share alone and say whether they form a quorum,
              without rebuilding anything.
    inspect   Show the public fields of one share.
    ceremony  The guided ceremonies custodians and witnesses sit through:
              split, recovery and drills, step by step, with an audit log.
    card      Custodian cards: list, status, enrol, wipe, and a virtual
              card for rehearsals ("custos card" lists the options).
    hsm       HSM tokens: list keys custos imported, verify a key against
              its set record.
    audit     Check an audit log's hash chain; names the first broken entry.
    status    The inventory of sets under DIR: custodians, media, cards,
              and drills older than a year.

Examples:
    $ openssl rand 32 > master.key
    $ custos split --threshold 2 --shares 3 --name Ana --name Bo --name Chen \
          --label "backup master key" --kind aes --out shares/ master.key
    $ custos verify shares/share-1-Ana.txt shares/share-3-Chen.txt
    $ custos recover --out rebuilt.key shares/share-1-Ana.txt scan-of-bo.jpg

Exit status: 0 on success, 1 when an input is refused, 2 on a usage error.
`

// command runs one subcommand with the arguments after its name.
type command func(args []string) error

// commands is the dispatch table. Groups ("card", "hsm", …) dispatch again on
// their own table.
var commands = map[string]command{
	"split":    cmdSplit,
	"recover":  cmdRecover,
	"verify":   cmdVerify,
	"inspect":  cmdInspect,
	"card":     group("card", cardCommands, cardUsage),
	"ceremony": group("ceremony", ceremonyCommands, ceremonyUsage),
	"hsm":      group("hsm", hsmCommands, hsmUsage),
	"audit":    group("audit", auditCommands, auditUsage),
	"status":   cmdStatus,
}

var cardCommands = map[string]command{
	"list":          cmdCardList,
	"status":        cmdCardStatus,
	"enrol":         cmdCardEnrol,
	"wipe":          cmdCardWipe,
	"serve-virtual": cmdCardServeVirtual,
}

var ceremonyCommands = map[string]command{
	"split":   cmdCeremonySplit,
	"recover": cmdCeremonyRecover,
	"drill":   cmdCeremonyDrill,
}

var hsmCommands = map[string]command{
	"list":   cmdHSMList,
	"verify": cmdHSMVerify,
}

// hsmUsage is shown for "custos hsm --help".
var hsmUsage = hsmListUsage + "\n" + hsmVerifyUsage

// commandUsages are the usage texts --help prints, by flag set name.
var commandUsages = map[string]string{
	"split":        splitUsage,
	"recover":      recoverUsage,
	"verify":       verifyUsage,
	"inspect":      inspectUsage,
	"hsm list":     hsmListUsage,
	"hsm verify":   hsmVerifyUsage,
	"status":       statusUsage,
	"audit verify": auditUsage,
}

// groupUsages are the usage texts of the command groups, for their
// commands without a text of their own.
var groupUsages = map[string]string{
	"card":     cardUsage,
	"ceremony": ceremonyUsage,
	"hsm":      hsmUsage,
	"audit":    auditUsage,
}

// group dispatches "custos NAME SUB ..." to table[SUB]; usage is shown
// for --help, and when SUB is missing.
func group(name string, table map[string]command, usage string) command {
	return func(args []string) error {
		if len(args) > 0 && (args[0] == "-h" || args[0] == "--help" || args[0] == "help") {
			fmt.Fprint(os.Stdout, usage)
			return nil
		}
		if len(args) == 0 {
			fmt.Fprint(stderr, usage)
			return usagef("%s needs a subcommand: %s", name, names(table))
		}
		cmd, ok := table[args[0]]
		if !ok {
			return usagef("unknown command %q %q; try one of: %s", name, args[0], names(table))
		}
		return cmd(args[1:])
	}
}

func names(table map[string]command) string {
	var n []string
	for k := range table {
		n = append(n, k)
	}
	sort.Strings(n)
	return strings.Join(n, ", ")
}

// interrupted is cancelled by the first Ctrl-C or SIGTERM, so that a
// command stops at its next step and removes what it half made; a
// terminal prompt waiting then ends at once. A second signal ends the
// process at once, after saying what is left behind (leftBehind).
var interrupted context.Context = context.Background()

func catchInterrupts() func() {
	ctx, cancel := context.WithCancel(context.Background())
	interrupted = ctx
	sig := make(chan os.Signal, 2)
	done := make(chan struct{})
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	go func() {
		select {
		case <-sig:
		case <-done:
			return
		}
		cancel()
		stopTTYRead()
		warning("interrupted: stopping at the next step and removing what was half made (again to quit at once)")
		select {
		case <-sig:
		case <-done:
			return
		}
		stopTTYRead()
		leftBehind.say()
		os.Exit(130)
	}()
	return func() {
		signal.Stop(sig)
		close(done)
		cancel()
	}
}

// leftBehind is what a command has made so far that it removes when it
// fails: shares on cards and files in a directory. A second Ctrl-C quits
// before that clean-up, so it prints what to remove by hand.
var leftBehind = &leftovers{}

type leftovers struct {
	mu     sync.Mutex
	cards  []leftCard
	dir    string          // where the command writes files
	before map[string]bool // the names dir held before
}

// leftCard is a share of set on card serial, for custodian who.
type leftCard struct {
	serial uint32
	set    string
	index  int
	who    string
}

// addCard notes a share that may be on a card from now on.
func (l *leftovers) addCard(c leftCard) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.cards = append(l.cards, c)
}

// dropCard notes that the share of set on card serial is gone again.
func (l *leftovers) dropCard(serial uint32, set string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.cards = slices.DeleteFunc(l.cards, func(c leftCard) bool {
		return c.serial == serial && c.set == set
	})
}

// watchDir notes the directory a command writes to and what it held.
func (l *leftovers) watchDir(dir string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.dir, l.before = dir, map[string]bool{}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		l.before[e.Name()] = true
	}
}

// say prints the wipe command of every card share and the new files.
func (l *leftovers) say() {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, c := range l.cards {
		warning("share %d of the stopped split may still be on %s's card %d: "+
			"destroy it with: custos card wipe --serial %d --set %s",
			c.index, c.who, c.serial, c.serial, c.set)
	}
	if l.dir == "" {
		return
	}
	entries, _ := os.ReadDir(l.dir)
	for _, e := range entries {
		if !l.before[e.Name()] {
			warning("file left behind: %s", filepath.Join(l.dir, e.Name()))
		}
	}
}

func main() {
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	hardenProcess()
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	switch args[0] {
	case "help", "-h", "--help":
		fmt.Fprint(os.Stdout, usage)
		return 0
	}
	cmd, ok := commands[args[0]]
	if !ok {
		printError(usagef("unknown command %q", args[0]))
		hint("run \"custos help\" for the list of commands")
		return 2
	}
	stop := catchInterrupts()
	defer stop()
	err := cmd(args[1:])
	if errors.Is(err, errHelpShown) {
		return 0
	}
	if err != nil {
		printError(err)
		if exitCode(err) == 2 {
			hint("run \"custos help\" for usage")
		}
	}
	return exitCode(err)
}
