package printer

import (
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// qrAlphabet is the QR alphanumeric set (ISO/IEC 18004, table 5).
const qrAlphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:"

// randomPayload returns n random QR alphanumeric characters.
func randomPayload(rng *rand.Rand, n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = qrAlphabet[rng.IntN(len(qrAlphabet))]
	}
	return string(b)
}

// randomLines returns n lines shaped like the shares package's text form.
func randomLines(rng *rand.Rand, n int) []string {
	const b32 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
	group := func(k int) string {
		b := make([]byte, k)
		for i := range b {
			b[i] = b32[rng.IntN(len(b32))]
		}
		return string(b)
	}
	lines := make([]string, n)
	for i := range lines {
		var groups []string
		for range 8 {
			groups = append(groups, group(5))
		}
		lines[i] = fmt.Sprintf("%03d: %s  %s", i+1,
			strings.Join(groups, " "), group(4))
	}
	return lines
}

// testPage returns a valid page with random payloads of the given sizes
// and lines text lines.
func testPage(paper Paper, name string, lines int, sizes ...int) SharePage {
	rng := rand.New(rand.NewPCG(uint64(lines), uint64(len(sizes))))
	p := SharePage{
		Paper:     paper,
		Custodian: name,
		Index:     2, Threshold: 3, Count: 5,
		Label: "Payments HSM master key 2026",
		SetID: "7Q2KD4XAPN3VR5WS2MFE6YT7HU",
		Kind:  "AES-256 key",
		CheckValues: []string{"KCV (AES-CMAC, X9.24): 1A2B3C",
			"AES-ECB zero block: 4D5E6F"},
		DealerFingerprint: "SHA256:3f9a1c0e7b2d4f6a8c9e1b3d5f7a9c0e" +
			"2b4d6f8a1c3e5b7d9f0a2c4e6b8d0f1a",
		Created:   time.Date(2026, 1, 15, 10, 4, 0, 0, time.UTC),
		TextLines: randomLines(rng, lines),
	}
	for _, n := range sizes {
		p.QRPayloads = append(p.QRPayloads, randomPayload(rng, n))
	}
	return p
}

// needTool skips the test when tool is missing, unless the integration
// run demands every real part.
func needTool(t *testing.T, tool, pkg string) string {
	t.Helper()
	path, err := exec.LookPath(tool)
	if err == nil {
		return path
	}
	if os.Getenv("CUSTOS_INTEGRATION") == "1" {
		t.Fatalf("%s (Debian package %s) is required when "+
			"CUSTOS_INTEGRATION=1: %v", tool, pkg, err)
	}
	t.Skipf("%s not installed (Debian package %s); skipping", tool, pkg)
	return ""
}

// needFile does the same for a file that a Debian package installs.
func needFile(t *testing.T, path, pkg string) {
	t.Helper()
	if _, err := os.Stat(path); err == nil {
		return
	}
	if os.Getenv("CUSTOS_INTEGRATION") == "1" {
		t.Fatalf("%s (Debian package %s) is required when "+
			"CUSTOS_INTEGRATION=1", path, pkg)
	}
	t.Skipf("%s not installed (Debian package %s); skipping", path, pkg)
}
