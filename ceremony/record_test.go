package ceremony

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"custos/shares"
)

// dealRecord splits a fresh AES key and returns its record, made while the
// dealer key is still there, as a split makes it.
func dealRecord(t *testing.T) *SetRecord {
	t.Helper()
	d, err := shares.Split(bytes.Repeat([]byte{7}, 32), shares.Policy{
		Threshold: 2, Count: 3, Kind: shares.KindAES, Label: "payments master",
		Custodians: []string{"Ana", "Bo", "Chen"}})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Wipe()
	return NewRecord(d)
}

// writeJSON saves a record after editing its JSON as a person would.
func writeJSON(t *testing.T, path string, rec *SetRecord, edit func(m map[string]any)) {
	t.Helper()
	b, err := rec.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	edit(m)
	if b, err = json.MarshalIndent(m, "", "  "); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func custodian(m map[string]any, i int) map[string]any {
	return m["custodians"].([]any)[i].(map[string]any)
}

func TestRecordSigned(t *testing.T) {
	rec := dealRecord(t)
	if !rec.Signed() {
		t.Fatal("a fresh split's record is not signed")
	}
	path := filepath.Join(t.TempDir(), RecordFile)
	if err := rec.Create(path); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(path)
	if !bytes.HasSuffix(b, []byte("}\n")) {
		t.Errorf("set.json does not end in a newline: %q", b[len(b)-5:])
	}
	got, err := ReadRecord(path)
	if err != nil {
		t.Fatalf("reading the record back: %v", err)
	}
	if !got.Signed() || got.Threshold != 2 || got.Label != "payments master" {
		t.Errorf("read back %+v", got)
	}
}

// TestRecordAltered edits each fixed field of set.json by hand: every edit
// is refused by name, and the fields a ceremony changes later are not.
func TestRecordAltered(t *testing.T) {
	rec := dealRecord(t)
	dir := t.TempDir()
	altered := map[string]func(m map[string]any){
		"threshold":    func(m map[string]any) { m["threshold"] = 1 },
		"count":        func(m map[string]any) { m["count"] = 4 },
		"label":        func(m map[string]any) { m["label"] = "other key" },
		"kind":         func(m map[string]any) { m["kind"] = "hmac" },
		"algorithm":    func(m map[string]any) { m["algorithm"] = "AES-128" },
		"created":      func(m map[string]any) { m["created"] = "2020-01-01T00:00:00Z" },
		"set id":       func(m map[string]any) { m["set_id"] = strings.Repeat("AB", 16) },
		"check value":  func(m map[string]any) { m["checks"].([]any)[0].(map[string]any)["value"] = "000000" },
		"check gone":   func(m map[string]any) { m["checks"] = m["checks"].([]any)[:1] },
		"name":         func(m map[string]any) { custodian(m, 1)["name"] = "Mallory" },
		"index":        func(m map[string]any) { custodian(m, 2)["index"] = 7 },
		"custodian":    func(m map[string]any) { m["custodians"] = m["custodians"].([]any)[:2] },
		"sealed added": func(m map[string]any) { m["sealed"] = map[string]any{"file": "x", "size": 1, "digest": "00"} },
		"signature":    func(m map[string]any) { m["signature"] = strings.Repeat("00", 64) },
		"fingerprint":  func(m map[string]any) { m["dealer_fingerprint"] = "0000 0000 0000 0000" },
	}
	for name, edit := range altered {
		path := filepath.Join(dir, strings.ReplaceAll(name, " ", "-")+".json")
		writeJSON(t, path, rec, edit)
		_, err := ReadRecord(path)
		var ae *RecordAlteredError
		if !errors.As(err, &ae) || ae.Path != path || !strings.Contains(err.Error(), path) {
			t.Errorf("%s edited: %v, want a RecordAlteredError naming %s", name, err, path)
		}
	}

	// A dealer key swapped with its fingerprint still fails: the
	// signature is not the new key's.
	other := dealRecord(t)
	path := filepath.Join(dir, "dealer.json")
	writeJSON(t, path, rec, func(m map[string]any) {
		m["dealer_key"] = strings.ToUpper(hexOf(other.DealerKey))
		m["dealer_fingerprint"] = other.DealerFP
	})
	if _, err := ReadRecord(path); err == nil {
		t.Error("a record with another dealer key was accepted")
	}

	// Drills, media, cards and the note change after the split.
	later := time.Date(2027, 5, 1, 0, 0, 0, 0, time.UTC)
	path = filepath.Join(dir, "drilled.json")
	writeJSON(t, path, rec, func(m map[string]any) {
		m["last_drill"] = later
		m["note"] = "kept in safe 3"
		custodian(m, 0)["last_drill"] = later
		custodian(m, 0)["media"] = []string{"paper", "card"}
		custodian(m, 0)["card"] = map[string]any{"serial": 12345678, "slot": "82"}
	})
	got, err := ReadRecord(path)
	if err != nil {
		t.Fatalf("a record with drills and cards added: %v", err)
	}
	if !got.Signed() || got.LastDrill == nil || got.Custodians[0].Card == nil {
		t.Errorf("read back %+v", got)
	}
}

// TestRecordUnsigned: a record from before signatures is read, and says
// so; one whose dealer key was wiped before NewRecord is not signed.
func TestRecordUnsigned(t *testing.T) {
	rec := dealRecord(t)
	path := filepath.Join(t.TempDir(), RecordFile)
	writeJSON(t, path, rec, func(m map[string]any) {
		delete(m, "signature")
		m["threshold"] = 1 // nothing vouches for it: status warns
	})
	_, err := ReadRecord(path)
	var ae *RecordAlteredError
	if !errors.As(err, &ae) || !strings.Contains(err.Error(), "no dealer signature") {
		t.Fatalf("a record without its signature: %v", err)
	}

	d, err := shares.Split(make([]byte, 16), shares.Policy{Threshold: 2, Count: 2})
	if err != nil {
		t.Fatal(err)
	}
	d.Wipe()
	if NewRecord(d).Signed() {
		t.Error("a record made after the dealer key was wiped is signed")
	}
}

// TestRecordSealed: a large secret's sealed file is recorded, and signed,
// when the record is made.
func TestRecordSealed(t *testing.T) {
	d, err := shares.SplitSealed(bytes.NewReader(make([]byte, shares.InlineLimit+1)), &bytes.Buffer{},
		shares.Policy{Threshold: 2, Count: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Wipe()
	rec := NewRecord(d)
	if rec.Sealed == nil || rec.Sealed.File != SealedFile || rec.Sealed.Size == 0 {
		t.Fatalf("sealed file not recorded: %+v", rec.Sealed)
	}
	path := filepath.Join(t.TempDir(), RecordFile)
	writeJSON(t, path, rec, func(m map[string]any) {
		m["sealed"].(map[string]any)["size"] = 5
	})
	if _, err := ReadRecord(path); err == nil {
		t.Error("an edited sealed file size was accepted")
	}
}

func hexOf(b []byte) string { return hex.EncodeToString(b) }
