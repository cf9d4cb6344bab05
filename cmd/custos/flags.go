package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
)

// listFlag collects a flag given several times.
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }

// newFlags returns a flag set that reports errors as usage errors instead
// of printing and exiting.
func newFlags(name string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	return fs
}

// parseFlags parses flags and positional arguments in any order, so that
// "custos split KEY --out DIR" works like "custos split --out DIR KEY".
// A lone "-" is a positional argument (standard input); "--" ends flags.
func parseFlags(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if err == flag.ErrHelp {
				fmt.Fprint(os.Stdout, usageOf(fs.Name()))
				return nil, errHelpShown
			}
			return nil, usagef("%s: %v", fs.Name(), err)
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		if args[0] == "--" {
			return append(pos, args[1:]...), nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}

// errHelpShown ends a command whose usage was asked for (-h, --help) and
// printed: exit status 0, nothing more said.
var errHelpShown = errors.New("usage shown")

// usageOf returns the usage text of a command by its flag set name ("hsm
// verify"); a command without its own text gets its group's, else the
// global one.
func usageOf(name string) string {
	if u, ok := commandUsages[name]; ok {
		return u
	}
	group, _, _ := strings.Cut(name, " ")
	if u, ok := groupUsages[group]; ok {
		return u
	}
	return usage
}
