package smartcard

import (
	"os"
	"os/exec"
	"testing"
)

// integration reports whether missing real parts must fail the test
// (CUSTOS_INTEGRATION=1, as make test and CI set) rather than skip it.
func integration() bool { return os.Getenv("CUSTOS_INTEGRATION") == "1" }

// needTool skips the test when an outside program is missing, or fails it
// under CUSTOS_INTEGRATION=1.
func needTool(t *testing.T, name string) {
	t.Helper()
	if _, err := exec.LookPath(name); err != nil {
		if integration() {
			t.Fatalf("%s not installed (CUSTOS_INTEGRATION=1)", name)
		}
		t.Skipf("%s not installed", name)
	}
}
