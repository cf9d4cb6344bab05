package main

import (
	"crypto/rand"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/rogpeppe/go-internal/testscript"
)

// The CLI's behaviour is specified by the scripts in testdata/script at the
// repository root, one behaviour a script.

func TestMain(m *testing.M) {
	testscript.Main(m, map[string]func(){
		"custos": func() { os.Exit(run(os.Args[1:])) },
	})
}

func TestScripts(t *testing.T) {
	testscript.Run(t, testscript.Params{
		Dir: filepath.Join("..", "..", "testdata", "script"),
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
			"randfile": cmdRandFile,
			"mode":     cmdMode,
			"edit":     cmdEdit,
		},
		// [real] holds when the run promised real parts (make test sets
		// CUSTOS_INTEGRATION=1): scripts then fail, not skip, when a
		// tool is missing.
		Condition: func(cond string) (bool, error) {
			if cond == "real" {
				return os.Getenv("CUSTOS_INTEGRATION") == "1", nil
			}
			return false, fmt.Errorf("unknown condition %q", cond)
		},
	})
}

// randfile NAME SIZE writes SIZE random bytes: test keys are made by the
// tests, never committed.
func cmdRandFile(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 2 {
		ts.Fatalf("usage: randfile NAME SIZE")
	}
	n, err := strconv.Atoi(args[1])
	ts.Check(err)
	b := make([]byte, n)
	rand.Read(b)
	ts.Check(os.WriteFile(ts.MkAbs(args[0]), b, 0o600))
}

// mode FILE PERM checks a file's permission bits.
func cmdMode(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 2 {
		ts.Fatalf("usage: mode FILE PERM")
	}
	fi, err := os.Stat(ts.MkAbs(args[0]))
	ts.Check(err)
	want, err := strconv.ParseUint(args[1], 8, 32)
	ts.Check(err)
	if got := fi.Mode().Perm(); (uint64(got) == want) == neg {
		ts.Fatalf("%s has mode %o, want %s%o", args[0], got, map[bool]string{true: "not ", false: ""}[neg], want)
	}
}

// edit FILE OLD NEW replaces the first OLD in FILE with NEW (a typo).
func cmdEdit(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 3 {
		ts.Fatalf("usage: edit FILE OLD NEW")
	}
	path := ts.MkAbs(args[0])
	b, err := os.ReadFile(path)
	ts.Check(err)
	if !strings.Contains(string(b), args[1]) {
		ts.Fatalf("%s does not contain %q", args[0], args[1])
	}
	ts.Check(os.WriteFile(path, []byte(strings.Replace(string(b), args[1], args[2], 1)), 0o644))
}
