package virtual

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestStatePersists(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ana.card")
	c, err := Open(path, WithSerial(31415926))
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("state file mode %04o, want 0600", fi.Mode().Perm())
	}

	// Change everything a ceremony changes.
	auth(t, c, DefaultManagementKey)
	gen := expectSW(t, c, "00 47 00 85 05 ac 03 80 01 11", swOK)
	expectSW(t, c, "00 db 3f ff 0a 5c 03 5f c1 10 53 03 01 02 03", swOK)
	expectSW(t, c, "00 24 00 80 10 313233343536ffff 3837363534333231", swOK)
	expect(t, c, "00 20 00 80 08 3030303030303030", "63 c2")
	newMgmt := bytes.Repeat([]byte{0x24}, 16)
	expectSW(t, c, "00 ff ff ff 13 08 9b 10"+strings.Repeat("24", 16), swOK)

	// A second process opens the same card: all of it is there.
	again, err := Open(path, WithSerial(1))
	if err != nil {
		t.Fatal(err)
	}
	if again.Serial() != 31415926 {
		t.Fatalf("serial %d after reopening", again.Serial())
	}
	meta := expectSW(t, again, "00 f7 00 85", swOK)
	if !bytes.Contains(meta, gen[3:]) {
		t.Fatal("public key differs after reopening")
	}
	expect(t, again, "00 cb 3f ff 05 5c 03 5f c1 10", "53 03 01 02 03 90 00")
	expect(t, again, verifyEmpty, "63 c2")
	expect(t, again, "00 20 00 80 08 3837363534333231", "90 00")
	auth(t, again, newMgmt)

	// The file says plainly what it is.
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var top map[string]any
	if err := json.Unmarshal(raw, &top); err != nil {
		t.Fatal(err)
	}
	notice, _ := top["notice"].(string)
	if !strings.Contains(notice, "NOT A SECURE ELEMENT") || !strings.Contains(notice, "private keys") {
		t.Fatalf("notice %q", notice)
	}
	if !bytes.HasPrefix(raw, []byte("{\n  \"notice\"")) {
		t.Fatal("notice is not the first field of the state file")
	}

	// No temporary files are left behind.
	entries, _ := os.ReadDir(filepath.Dir(path))
	if len(entries) != 1 {
		t.Fatalf("directory holds %d files, want only the state file", len(entries))
	}
}

func TestOpenRefusesReadableState(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bo.card")
	if _, err := Open(path); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := Open(path)
	if err == nil || !strings.Contains(err.Error(), "chmod 600") || !strings.Contains(err.Error(), path) {
		t.Fatalf("got %v, want a refusal naming %s", err, path)
	}
}

func TestOpenRefusesDamagedState(t *testing.T) {
	dir := t.TempDir()
	for name, content := range map[string]string{
		"garbage":    "not json",
		"bad format": `{"format": 99}`,
		"bad pin":    `{"format": 1, "pin": {"value": "31", "retries": 3, "remaining": 3}}`,
	} {
		path := filepath.Join(dir, strings.ReplaceAll(name, " ", "-"))
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := Open(path); err == nil || !strings.Contains(err.Error(), path) {
			t.Errorf("%s: got %v, want an error naming the file", name, err)
		}
	}
}

// When the state cannot be written, the card answers 6581 (memory
// failure) and forgets the change, as a card whose write failed.
func TestPersistFailureRollsBack(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "cards")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "chen.card")
	c, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	auth(t, c, DefaultManagementKey)

	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	expect(t, c, "00 db 3f ff 08 5c 03 5f c1 05 53 01 01", "65 81")
	expect(t, c, verifyWrong, "65 81")

	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	expect(t, c, "00 cb 3f ff 05 5c 03 5f c1 05", "6a 82")
	expect(t, c, verifyEmpty, "63 c3")
	// The failed write also dropped the management key authentication.
	expect(t, c, "00 db 3f ff 08 5c 03 5f c1 05 53 01 01", "69 82")
}

func TestNewCardsDiffer(t *testing.T) {
	a, b := newCard(t), newCard(t)
	if a.Serial() == b.Serial() {
		t.Fatal("two new cards share a serial")
	}
	if a.Serial() < 10_000_000 || a.Serial() > 99_999_999 {
		t.Fatalf("serial %d is not eight digits", a.Serial())
	}
	if a.AttestationCA().Equal(b.AttestationCA()) {
		t.Fatal("two new cards share an attestation root")
	}
}
