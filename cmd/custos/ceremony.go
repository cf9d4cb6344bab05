package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"custos/ceremony"
)

const ceremonyUsage = `Usage:
    custos ceremony split [--plan PLAN] [--roots CA.pem] [OPTIONS]
    custos ceremony recover --set set.json --target file:PATH|pkcs11:URI
                            [--sealed FILE] [OPTIONS]
    custos ceremony drill --set set.json [--sealed FILE] [--custodian] [OPTIONS]

The interactive key ceremonies, step by step on this terminal. Without a
plan file, split asks its questions. The audit log defaults to audit.log
beside the set record. An interrupted ceremony continues when run again.

Before any custodian is called, recover and drill check the sealed file of
a large secret and the target: a file target must not exist yet and its
directory must be writable; an HSM target must be reachable, take the PIN
(asked once, here) and have the key's label and ID free.

Options:
    --sealed FILE           The sealed file of a secret too large to ride in
                            the shares (custos split wrote it as
                            secret.sealed); default: the file set.json
                            names, beside set.json.
    --audit LOG             The audit log (default: audit.log beside set.json).
    --audit-syslog[=SOCK]   Copy every audit entry to the local syslog socket
                            (default /dev/log).
    --allow-network         Go on although the network is up (recorded).
    --answers FILE          Unattended rehearsal: answer every question from
                            FILE instead of the terminal (recorded in the
                            audit log). A question FILE does not answer stops
                            the ceremony. Lines are "FRAGMENT = REPLY": a
                            question takes the first unused line whose
                            FRAGMENT is part of it, else the last line that
                            fits; a REPLY "<PATH" is the first line of PATH,
                            a file of mode 0600 (for PINs). For tests and
                            demos: a real ceremony is answered by people.

Examples:
    $ custos ceremony split --plan ceremony.plan
    $ custos ceremony recover --set shares/set.json --target file:/secure/master.key
    $ custos ceremony recover --set shares/set.json \
          --target 'pkcs11:token=vault-a;object=master?module-path=/usr/lib/softhsm/libsofthsm2.so'
    $ custos ceremony drill --set shares/set.json --custodian
`

// ceremonyFlags are the flags every ceremony takes.
type ceremonyFlags struct {
	audit, roots string
	syslog       *string
	answers      string
	allowNetwork bool
	prompter     ceremony.Prompter
}

// add registers the flags every ceremony takes.
func (c *ceremonyFlags) add(fs *flag.FlagSet) {
	fs.StringVar(&c.audit, "audit", "", "")
	fs.BoolVar(&c.allowNetwork, "allow-network", false, "")
	fs.StringVar(&c.answers, "answers", "", "")
	c.syslog = addSyslogFlag(fs)
}

// prompt returns the ceremony's prompter: the terminal, or the answers
// file of an unattended rehearsal.
func (c *ceremonyFlags) prompt() (ceremony.Prompter, error) {
	if c.prompter != nil {
		return c.prompter, nil
	}
	if c.answers == "" {
		c.prompter = &ceremony.TermPrompter{}
		return c.prompter, nil
	}
	rules, err := readAnswers(c.answers)
	if err != nil {
		return nil, err
	}
	warning("unattended rehearsal: every question is answered from %s", c.answers)
	c.prompter = &ceremony.Script{Fallback: rules.answer, Echo: os.Stdout}
	return c.prompter, nil
}

func (c *ceremonyFlags) options(dir string) (ceremony.Options, func(), error) {
	pr, err := c.prompt()
	if err != nil {
		return ceremony.Options{}, nil, err
	}
	opt := ceremony.Options{Prompter: pr, AllowNetwork: c.allowNetwork,
		KillAt: ceremony.KillAtFromEnv(), Stopper: &ceremony.Stopper{}}
	if c.roots != "" {
		pool, err := readRoots(c.roots)
		if err != nil {
			return opt, nil, err
		}
		opt.Roots = pool
	}
	path := c.audit
	if path == "" {
		path = filepath.Join(dir, ceremony.DefaultAuditFile)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return opt, nil, errorf("creating audit log directory: %w", err)
	}
	actor := "operator"
	if c.answers != "" {
		actor = "unattended, answers from " + filepath.Base(c.answers)
	}
	log, err := ceremony.OpenAudit(path, ceremony.AuditOptions{Actor: ceremony.AuditText(actor, ceremony.MaxName),
		Syslog: *c.syslog})
	if err != nil {
		return opt, nil, err
	}
	opt.Audit = log
	return opt, func() { log.Close() }, nil
}

// runCeremony runs a ceremony with Ctrl-C and SIGTERM stopping it: the
// ceremony notices at its next step; one blocked on a prompt is stopped
// from here after a grace period, and custos exits.
func runCeremony(opt ceremony.Options, f func(ctx context.Context) error) error {
	ctx, cancel := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- f(ctx) }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
	}
	select {
	case err := <-done:
		return err
	case <-time.After(2 * time.Second):
		err := opt.Stopper.Stop(ceremony.ErrInterrupted)
		if err == nil {
			err = <-done
		}
		return err
	}
}

func cmdCeremonySplit(args []string) error {
	fs := newFlags("ceremony split")
	var cf ceremonyFlags
	plan := fs.String("plan", "", "")
	fs.StringVar(&cf.roots, "roots", "", "")
	cf.add(fs)
	if pos, err := parseFlags(fs, args); err != nil {
		return err
	} else if len(pos) > 0 {
		return usagef("ceremony split takes no arguments; give a plan with --plan")
	}
	var pl *ceremony.Plan
	if *plan != "" {
		var err error
		if pl, err = ceremony.ReadPlan(*plan); err != nil {
			return err
		}
	}
	pr, err := cf.prompt()
	if err != nil {
		return err
	}
	pl, err = ceremony.AskPlan(pr, pl)
	if err != nil {
		return err
	}
	if pl.Roots != "" && cf.roots == "" {
		cf.roots = pl.Roots
	}
	if err := os.MkdirAll(pl.OutDir, 0o755); err != nil {
		return errorf("creating output directory: %w", err)
	}
	opt, closeLog, err := cf.options(pl.OutDir)
	if err != nil {
		return err
	}
	defer closeLog()
	return runCeremony(opt, func(ctx context.Context) error {
		_, err := ceremony.Split(ctx, pl, opt)
		return err
	})
}

func cmdCeremonyRecover(args []string) error {
	fs := newFlags("ceremony recover")
	var cf ceremonyFlags
	set := fs.String("set", "", "")
	target := fs.String("target", "", "")
	sealed := fs.String("sealed", "", "")
	cf.add(fs)
	if pos, err := parseFlags(fs, args); err != nil {
		return err
	} else if len(pos) > 0 {
		return usagef("ceremony recover takes no arguments")
	}
	switch {
	case *set == "":
		return usagef("ceremony recover needs --set set.json")
	case *target == "":
		return withHint(usagef("ceremony recover needs --target file:PATH or --target pkcs11:URI"),
			"to rehearse without placing the key anywhere, run \"custos ceremony drill\"")
	}
	if strings.HasPrefix(*target, "pkcs11:") {
		// The same checks and hints as custos recover --hsm: no PIN in
		// the URI, a module named, a pin-source file only we can read.
		if _, err := hsmParseURI(*target); err != nil {
			return err
		}
	}
	if _, err := ceremony.ParseTarget(*target); err != nil {
		return usagef("%v", err)
	}
	opt, closeLog, err := cf.options(filepath.Dir(*set))
	if err != nil {
		return err
	}
	defer closeLog()
	return runCeremony(opt, func(ctx context.Context) error {
		_, err := ceremony.Recover(ctx, ceremony.RecoveryPlan{Record: *set, Target: *target, Sealed: *sealed}, opt)
		return err
	})
}

func cmdCeremonyDrill(args []string) error {
	fs := newFlags("ceremony drill")
	var cf ceremonyFlags
	set := fs.String("set", "", "")
	one := fs.Bool("custodian", false, "")
	sealed := fs.String("sealed", "", "")
	cf.add(fs)
	if pos, err := parseFlags(fs, args); err != nil {
		return err
	} else if len(pos) > 0 {
		return usagef("ceremony drill takes no arguments")
	}
	switch {
	case *set == "":
		return usagef("ceremony drill needs --set set.json")
	case *one && *sealed != "":
		return usagef("a custodian drill rebuilds nothing, so it needs no --sealed file")
	}
	opt, closeLog, err := cf.options(filepath.Dir(*set))
	if err != nil {
		return err
	}
	defer closeLog()
	return runCeremony(opt, func(ctx context.Context) error {
		var err error
		if *one {
			_, err = ceremony.DrillCustodian(ctx, *set, opt)
		} else {
			_, err = ceremony.DrillWith(ctx, ceremony.RecoveryPlan{Record: *set, Sealed: *sealed}, opt)
		}
		return err
	})
}

// answerRules are the lines of an --answers file.
type answerRules struct {
	file  string
	rules []answerRule
	asked int
}

type answerRule struct {
	ask, reply string
	line       int
	used       bool
}

// maxAnswered stops a rehearsal whose answers make it go round in
// circles (a card that is never found, a PIN that is always wrong).
const maxAnswered = 200

// readAnswers reads an --answers file: "FRAGMENT = REPLY" lines, with
// comments after #. Replies of the form <PATH are read when asked, from
// files beside the answers file unless PATH is absolute.
func readAnswers(path string) (*answerRules, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, errorf("reading answers: %w", err)
	}
	defer f.Close()
	a := &answerRules{file: path}
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		l := strings.TrimSpace(sc.Text())
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		ask, reply, ok := strings.Cut(l, " = ")
		if !ok || strings.TrimSpace(ask) == "" {
			return nil, usagef("answers %s line %d: write FRAGMENT = REPLY", path, n)
		}
		a.rules = append(a.rules, answerRule{ask: strings.TrimSpace(ask), reply: strings.TrimSpace(reply), line: n})
	}
	if err := sc.Err(); err != nil {
		return nil, errorf("reading answers %s: %w", path, err)
	}
	if len(a.rules) == 0 {
		return nil, usagef("answers %s holds no FRAGMENT = REPLY line", path)
	}
	return a, nil
}

// answer is the reply of the first rule not used yet that fits the
// question, else of the last rule that fits. A rule that reads a file and
// fails answers nothing, so the script stops.
func (a *answerRules) answer(question string) (string, bool) {
	a.asked++
	if a.asked > maxAnswered {
		warning("answers %s: more than %d questions; stopping", a.file, maxAnswered)
		return "", false
	}
	var r *answerRule
	for i := range a.rules {
		if strings.Contains(question, a.rules[i].ask) {
			r = &a.rules[i]
			if !r.used {
				break
			}
		}
	}
	if r != nil {
		r.used = true
		src, ok := strings.CutPrefix(r.reply, "<")
		if !ok {
			return r.reply, true
		}
		if !filepath.IsAbs(src) {
			src = filepath.Join(filepath.Dir(a.file), src)
		}
		b, err := readAnswerFile(src)
		if err != nil {
			warning("answers %s line %d: %v", a.file, r.line, err)
			return "", false
		}
		// TODO: the Script prompter hands replies over as strings, which
		// cannot be cleared; rehearsal PINs only.
		return string(b), true
	}
	return "", false
}

func readAnswerFile(path string) ([]byte, error) {
	if err := checkSecretFile(path); err != nil {
		return nil, err
	}
	b, err := readSecretFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", path, err)
	}
	return b, nil
}
