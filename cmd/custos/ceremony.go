package main

import (
	"context"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"custos/ceremony"
)

const ceremonyUsage = `Usage:
    custos ceremony split [--plan PLAN] [--roots CA.pem] [--audit LOG] [--allow-network]
    custos ceremony recover --set set.json --target file:PATH|pkcs11:URI [--audit LOG] [--allow-network]
    custos ceremony drill --set set.json [--custodian] [--audit LOG] [--allow-network]

The interactive key ceremonies, step by step on this terminal. Without a
plan file, split asks its questions. The audit log defaults to audit.log
beside the set record. An interrupted ceremony continues when run again.

Examples:
    $ custos ceremony split --plan ceremony.plan
    $ custos ceremony recover --set shares/set.json --target file:/secure/master.key
    $ custos ceremony drill --set shares/set.json --custodian
`

// ceremonyFlags are the flags every ceremony takes.
type ceremonyFlags struct {
	audit, roots string
	allowNetwork bool
}

func (c *ceremonyFlags) options(dir string) (ceremony.Options, func(), error) {
	opt := ceremony.Options{Prompter: &ceremony.TermPrompter{}, AllowNetwork: c.allowNetwork,
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
		path = filepath.Join(dir, "audit.log")
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return opt, nil, errorf("creating audit log directory: %w", err)
	}
	log, err := ceremony.OpenAudit(path, ceremony.AuditOptions{Actor: "operator"})
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
	fs.StringVar(&cf.audit, "audit", "", "")
	fs.StringVar(&cf.roots, "roots", "", "")
	fs.BoolVar(&cf.allowNetwork, "allow-network", false, "")
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
	pr := &ceremony.TermPrompter{}
	pl, err := ceremony.AskPlan(pr, pl)
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
	fs.StringVar(&cf.audit, "audit", "", "")
	fs.BoolVar(&cf.allowNetwork, "allow-network", false, "")
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
	if _, err := ceremony.ParseTarget(*target); err != nil {
		return usagef("%v", err)
	}
	opt, closeLog, err := cf.options(filepath.Dir(*set))
	if err != nil {
		return err
	}
	defer closeLog()
	return runCeremony(opt, func(ctx context.Context) error {
		_, err := ceremony.Recover(ctx, ceremony.RecoveryPlan{Record: *set, Target: *target}, opt)
		return err
	})
}

func cmdCeremonyDrill(args []string) error {
	fs := newFlags("ceremony drill")
	var cf ceremonyFlags
	set := fs.String("set", "", "")
	one := fs.Bool("custodian", false, "")
	fs.StringVar(&cf.audit, "audit", "", "")
	fs.BoolVar(&cf.allowNetwork, "allow-network", false, "")
	if pos, err := parseFlags(fs, args); err != nil {
		return err
	} else if len(pos) > 0 {
		return usagef("ceremony drill takes no arguments")
	}
	if *set == "" {
		return usagef("ceremony drill needs --set set.json")
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
			_, err = ceremony.Drill(ctx, *set, opt)
		}
		return err
	})
}
