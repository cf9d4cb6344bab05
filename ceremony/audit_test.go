package ceremony

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"custos/shares"
)

// goldenHead is the hash of the last entry of testdata/audit/golden.jsonl,
// as golden.sh computed it with sha256sum.
const goldenHead = "993b09b4f730594fc6022bf6167b1a27937603db279c7a4f785d977c3287b649"

var testSet = shares.SetID{0x7f, 0x2c, 0x1a, 0x9b, 1, 2, 3, 4, 5, 6, 7, 8, 9,
	10, 11, 12}

// testClock returns a clock that starts at a fixed time and moves a
// second a call.
func testClock() func() time.Time {
	var mu sync.Mutex
	t := time.Date(2026, 1, 15, 9, 0, 0, 0, time.UTC)
	return func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		t = t.Add(time.Second)
		return t
	}
}

// sampleEntries are the steps of a small split, with text that needs
// escaping in JSON and in syslog.
func sampleEntries() []AuditEntry {
	kcv := shares.CheckValue{Method: shares.CheckKCV,
		Value: shares.HexBytes{0x1a, 0x2b, 0x3c}}
	return []AuditEntry{
		{Event: EventCeremonyStarted, Outcome: OutcomeOK, Actor: "Olga",
			SetID: testSet, Detail: `split of "root CA" [2 of 3]`},
		{Event: EventShareStored, Outcome: OutcomeOK, SetID: testSet,
			Share: 1, Custodian: "Zoë", Card: 12345678, Slot: "82",
			Media: "card", Checks: []shares.CheckValue{kcv}},
		{Event: EventShareWritten, Outcome: OutcomeOK, SetID: testSet,
			Share: 2, Custodian: "Бо", Media: "paper",
			Source: "share-2-Бо.pdf"},
		{Event: EventShareRejected, Outcome: OutcomeRefused,
			Source: `C:\scans\bo.png`, Detail: `belongs to set 19AB0000]`},
		{Event: EventQuorumProven, Outcome: OutcomeOK, SetID: testSet,
			Checks: []shares.CheckValue{kcv}},
		{Event: EventCeremonyFinished, Outcome: OutcomeOK, SetID: testSet},
	}
}

// writeLog makes a log of the sample entries and returns its path.
func writeLog(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	l, err := OpenAudit(path, AuditOptions{Actor: "Olga", now: testClock()})
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range sampleEntries() {
		if _, err := l.Append(e); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestAuditGoodLog(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.jsonl")
	l, err := OpenAudit(path, AuditOptions{Actor: "Olga", now: testClock()})
	if err != nil {
		t.Fatal(err)
	}
	if l.Seq() != 1 || len(l.ID()) != 32 {
		t.Fatalf("new log: seq %d, ID %q", l.Seq(), l.ID())
	}
	want := sampleEntries()
	var heads []string
	for i, e := range want[:3] {
		head, err := l.Append(e)
		if err != nil {
			t.Fatalf("entry %d: %v", i+2, err)
		}
		if head != l.Head() || len(head) != 64 {
			t.Fatalf("Append returned %q, Head is %q", head, l.Head())
		}
		heads = append(heads, head)
	}
	l.Close()

	// A second session appends to the same log after verifying it.
	l, err = OpenAudit(path, AuditOptions{now: testClock()})
	if err != nil {
		t.Fatal(err)
	}
	if l.Head() != heads[2] || l.Seq() != 4 {
		t.Fatalf("reopened log: head %s seq %d, want %s seq 4", l.Head(),
			l.Seq(), heads[2])
	}
	for _, e := range want[3:] {
		if _, err := l.Append(e); err != nil {
			t.Fatal(err)
		}
	}
	head := l.Head()
	l.Close()

	entries, sum, err := ReadAudit(path)
	if err != nil {
		t.Fatal(err)
	}
	if sum.Entries != len(want)+1 || sum.Head != head {
		t.Fatalf("summary: %d entries head %s; want %d, %s", sum.Entries,
			sum.Head, len(want)+1, head)
	}
	if entries[0].Event != EventLogCreated || entries[0].Actor != "Olga" ||
		entries[0].Log != sum.LogID {
		t.Errorf("first entry: %+v", entries[0])
	}
	for i, w := range want {
		got := entries[i+1]
		if got.Seq != uint64(i+2) || got.Time.IsZero() {
			t.Errorf("entry %d: seq %d time %v", i+2, got.Seq, got.Time)
		}
		got.Seq, got.Time, got.Prev, got.Hash = 0, time.Time{}, "", ""
		if fmt.Sprintf("%+v", got) != fmt.Sprintf("%+v", w) {
			t.Errorf("entry %d read back as\n%+v\nwant\n%+v", i+2, got, w)
		}
	}

	// The head is found as a transcript prints it: grouped, upper case.
	grouped := strings.ToUpper(head[:8] + " " + head[8:])
	if seq, ok := sum.Find(grouped); !ok || seq != uint64(len(want)+1) {
		t.Errorf("Find(head) = %d, %v", seq, ok)
	}
	if seq, ok := sum.Find(heads[0]); !ok || seq != 2 {
		t.Errorf("Find(entry 2) = %d, %v", seq, ok)
	}
	if _, ok := sum.Find(strings.Repeat("0", 64)); ok {
		t.Error("Find found a hash that is not in the log")
	}
}

// TestAuditGolden checks the hash definition against a log made with
// printf and sha256sum (testdata/audit/golden.sh).
func TestAuditGolden(t *testing.T) {
	entries, sum, err := ReadAudit("testdata/audit/golden.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	if sum.Head != goldenHead || sum.Entries != 4 ||
		sum.LogID != "00112233445566778899aabbccddeeff" {
		t.Fatalf("summary %+v", sum)
	}
	e := entries[2]
	if e.Custodian != "Zoë" || e.Card != 12345678 || e.Share != 1 ||
		len(e.Checks) != 1 || e.Checks[0].String() != "KCV (AES-CMAC, X9.24): 1A2B3C" {
		t.Errorf("entry 3: %+v", e)
	}
	if entries[3].Detail != `scanned from C:\scans\bo.png: belongs to set 19AB0000` {
		t.Errorf("entry 4 detail: %q", entries[3].Detail)
	}
	if entries[1].SetID.Short() != "7F2C1A9B" {
		t.Errorf("entry 2 set: %s", entries[1].SetID)
	}

	// The same entry built in Go gives the same line, byte for byte.
	lines := bytes.Split(readFile(t, "testdata/audit/golden.jsonl"), []byte("\n"))
	w := e.wire()
	if got := w.canonical(true); !bytes.Equal(got, lines[2]) {
		t.Errorf("entry 3 encodes as\n%s\nwant\n%s", got, lines[2])
	}
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// rehash recomputes the hash of a line after an edit, as a forger would.
func rehash(t *testing.T, line []byte) []byte {
	t.Helper()
	var w wireEntry
	if err := json.Unmarshal(line, &w); err != nil {
		t.Fatal(err)
	}
	w.Hash = w.hash()
	return w.canonical(true)
}

// replaceField replaces the first "name":"old" in line.
func replaceField(t *testing.T, line []byte, old, new string) []byte {
	t.Helper()
	if !bytes.Contains(line, []byte(old)) {
		t.Fatalf("line has no %s: %s", old, line)
	}
	return bytes.Replace(line, []byte(old), []byte(new), 1)
}

func TestAuditTampered(t *testing.T) {
	path := writeLog(t) // 7 entries: log.created and the 6 samples
	good := readFile(t, path)
	lines := bytes.SplitAfter(good, []byte("\n"))
	lines = lines[:len(lines)-1]
	join := func(ls ...[]byte) []byte { return bytes.Join(ls, nil) }
	without := func(i int) []byte {
		return join(append(append([][]byte{}, lines[:i]...), lines[i+1:]...)...)
	}
	nl := []byte("\n")
	strip := func(l []byte) []byte { return bytes.TrimSuffix(l, nl) }

	other := readFile(t, writeLog(t))
	otherLines := bytes.SplitAfter(other, nl)

	tests := []struct {
		name  string
		data  []byte
		line  int
		seq   uint64
		fault LogFault
		says  string
	}{
		{"detail edited",
			join(join(lines[:2]...), replaceField(t, lines[2], "Zoë", "Zoe"),
				join(lines[3:]...)),
			3, 3, FaultEdited, "do not match its hash"},
		{"edited and re-hashed",
			join(join(lines[:2]...),
				append(rehash(t, strip(replaceField(t, lines[2], `"share":1`, `"share":4`))), '\n'),
				join(lines[3:]...)),
			4, 4, FaultMisChained, "does not chain to entry 3 on line 3"},
		{"outcome flipped",
			join(join(lines[:4]...), replaceField(t, lines[4], `"refused"`, `"ok"`),
				join(lines[5:]...)),
			5, 5, FaultEdited, "do not match its hash"},
		{"spaces added",
			join(lines[0], replaceField(t, lines[1], `,"outcome"`, `, "outcome"`),
				join(lines[2:]...)),
			2, 2, FaultEdited, "exact form"},
		{"field added",
			join(lines[0], replaceField(t, lines[1], `{"seq"`, `{"pin":"1234","seq"`),
				join(lines[2:]...)),
			2, 0, FaultBadJSON, `unknown field "pin"`},
		{"entry removed", without(3), 4, 5, FaultRemoved, "entry 4 was expected: entry 4 was removed"},
		{"two removed", join(join(lines[:2]...), join(lines[4:]...)),
			3, 5, FaultRemoved, "entries 3 to 4 were removed"},
		{"first removed", without(0), 1, 2, FaultRemoved, "starts at entry 2"},
		{"reordered", join(join(lines[:3]...), lines[4], lines[3], join(lines[5:]...)),
			4, 5, FaultReordered, "entry 4 was expected here and comes later"},
		{"duplicated", join(join(lines[:4]...), lines[3], join(lines[4:]...)),
			5, 4, FaultDuplicated, "copy of line 4"},
		{"last line cut", good[:len(good)-20], 7, 0, FaultTruncated, "cut short"},
		{"last newline gone", good[:len(good)-1], 7, 0, FaultTruncated, "no line break"},
		{"garbage line", join(join(lines[:2]...), []byte("hello\n"), join(lines[2:]...)),
			3, 0, FaultBadJSON, "not an audit entry"},
		{"blank line", join(join(lines[:2]...), nl, join(lines[2:]...)),
			3, 0, FaultBadJSON, "blank"},
		{"spliced from another log",
			join(join(lines[:3]...), otherLines[3], join(lines[4:]...)),
			4, 4, FaultMisChained, "does not chain to entry 3"},
		{"first entry from another log",
			join(otherLines[0], join(lines[1:]...)),
			2, 2, FaultMisChained, "does not chain to entry 1"},
		{"empty", nil, 0, 0, FaultEmpty, "no entry"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "audit.jsonl")
			if err := os.WriteFile(p, tt.data, 0o644); err != nil {
				t.Fatal(err)
			}
			sum, err := VerifyLog(p)
			var b *BrokenLogError
			if !errors.As(err, &b) {
				t.Fatalf("VerifyLog: %v; want a BrokenLogError", err)
			}
			if b.Line != tt.line || b.Seq != tt.seq || b.Fault != tt.fault ||
				b.Path != p || !strings.Contains(err.Error(), tt.says) {
				t.Fatalf("got line %d seq %d %v: %v\nwant line %d seq %d %v, %q",
					b.Line, b.Seq, b.Fault, err, tt.line, tt.seq, tt.fault, tt.says)
			}
			if tt.line > 0 && sum.Entries != tt.line-1 {
				t.Errorf("summary counts %d valid entries, want %d",
					sum.Entries, tt.line-1)
			}

			// Appending to the broken log is refused, and changes nothing.
			l, err := OpenAudit(p, AuditOptions{})
			if l != nil || !errors.As(err, &b) ||
				!strings.Contains(err.Error(), "refusing to append") ||
				!strings.Contains(err.Error(), p) {
				t.Fatalf("OpenAudit of a broken log: %v", err)
			}
			if !bytes.Equal(readFile(t, p), tt.data) {
				t.Error("OpenAudit changed a broken log")
			}
		})
	}
}

// TestAuditTailCut shows what the chain cannot see alone, and how the
// head on a transcript catches it: whole entries cut from the end.
func TestAuditTailCut(t *testing.T) {
	path := writeLog(t)
	full, err := VerifyLog(path)
	if err != nil {
		t.Fatal(err)
	}
	data := readFile(t, path)
	lines := bytes.SplitAfter(data, []byte("\n"))
	cut := bytes.Join(lines[:4], nil)
	if err := os.WriteFile(path, cut, 0o644); err != nil {
		t.Fatal(err)
	}
	sum, err := VerifyLog(path)
	if err != nil {
		t.Fatalf("a log cut at a line end should verify alone: %v", err)
	}
	if _, ok := sum.Find(full.Head); ok {
		t.Error("the cut log still contains the transcript's head")
	}
}

func TestAuditRefusesSecrets(t *testing.T) {
	d, err := shares.Split(bytes.Repeat([]byte{0x5a}, 32),
		shares.Policy{Threshold: 2, Count: 2, Kind: shares.KindAES})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Wipe()
	key := sha256.Sum256([]byte("k"))
	secrets := map[string]string{
		"hex key":    hex.EncodeToString(key[:]),
		"base64 key": "q83vASNFZ4mrze8BI0VniavN7wEjRWeJq83vASNFZ4k=",
		"share line": d.Shares[0].TextLines()[1],
		"QR payload": d.Shares[0].QRPayloads()[0][:60],
		"PEM":        "-----BEGIN PRIVATE KEY----- MIGHAgEA",
	}
	path := writeLog(t)
	before := readFile(t, path)
	l, err := OpenAudit(path, AuditOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	for name, s := range secrets {
		for _, e := range []AuditEntry{
			{Event: EventShareOffered, Outcome: OutcomeOK, Detail: "got " + s},
			{Event: EventShareOffered, Outcome: OutcomeOK, Source: s},
			{Event: EventShareOffered, Outcome: OutcomeOK, Actor: s},
		} {
			_, err := l.Append(e)
			if !errors.Is(err, ErrLooksSecret) {
				t.Errorf("%s: Append returned %v, want ErrLooksSecret", name, err)
				continue
			}
			if strings.Contains(err.Error(), s) {
				t.Errorf("%s: the error quotes the secret: %v", name, err)
			}
		}
	}
	if !bytes.Equal(readFile(t, path), before) {
		t.Error("refused entries changed the log")
	}

	// What a ceremony does write passes.
	for _, s := range []string{"Zoë Ångström-Øster", "share-2-Bo.txt",
		"/media/usb/ceremony-2026-01-15/share-1-Ana.pdf",
		"set 7F2C 1A9B 0011 2233 4455 6677 8899 AABB",
		"signed by dealer key 3F9A 1C0E 7B2D 4F6A, not the set's 0011 2233",
		"pkcs11:token=HSM%20A;object=master-2026", "card 12345678 slot 9a"} {
		if _, err := l.Append(AuditEntry{Event: EventShareOffered,
			Outcome: OutcomeOK, Detail: s}); err != nil {
			t.Errorf("Append(%q): %v", s, err)
		}
	}
}

func TestAuditRefusesBadFields(t *testing.T) {
	l, err := OpenAudit(filepath.Join(t.TempDir(), "a.jsonl"), AuditOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	for _, tt := range []struct {
		e    AuditEntry
		want string
	}{
		{AuditEntry{Outcome: OutcomeOK}, "event"},
		{AuditEntry{Event: "Share Stored", Outcome: OutcomeOK}, "event"},
		{AuditEntry{Event: EventShareStored}, "outcome"},
		{AuditEntry{Event: EventShareStored, Outcome: "maybe"}, "outcome"},
		{AuditEntry{Event: EventShareStored, Outcome: OutcomeOK, Share: 256}, "256"},
		{AuditEntry{Event: EventShareStored, Outcome: OutcomeOK,
			Detail: "two\nlines"}, "detail has a control"},
		{AuditEntry{Event: EventShareStored, Outcome: OutcomeOK,
			Custodian: "Eve\u202e"}, "custodian has a control"},
		{AuditEntry{Event: EventShareStored, Outcome: OutcomeOK,
			Detail: strings.Repeat("a ", 400)}, "detail has 800 bytes"},
		{AuditEntry{Event: EventShareStored, Outcome: OutcomeOK,
			Checks: []shares.CheckValue{{Method: 99, Value: []byte{1}}}}, "unknown"},
	} {
		if _, err := l.Append(tt.e); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Append(%+v) = %v; want an error about %s", tt.e, err, tt.want)
		}
	}
	if l.Seq() != 1 {
		t.Errorf("refused entries were appended: seq %d", l.Seq())
	}
}

// TestAuditFsync watches every append reach fsync, and checks that a
// failed fsync stops the log rather than pretend.
func TestAuditFsync(t *testing.T) {
	path := filepath.Join(t.TempDir(), "a.jsonl")
	var synced []int64
	fail := false
	opts := AuditOptions{sync: func(f *os.File) error {
		fi, err := f.Stat()
		if err != nil {
			return err
		}
		synced = append(synced, fi.Size())
		if fail {
			return errors.New("input/output error")
		}
		return f.Sync()
	}}
	l, err := OpenAudit(path, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	for _, e := range sampleEntries()[:2] {
		if _, err := l.Append(e); err != nil {
			t.Fatal(err)
		}
	}
	// Each fsync came after its whole line was written.
	if len(synced) != 3 {
		t.Fatalf("%d fsyncs for 3 entries", len(synced))
	}
	sum, _ := VerifyLog(path)
	if synced[2] != sum.Size {
		t.Errorf("last fsync at %d bytes, the log has %d", synced[2], sum.Size)
	}

	fail = true
	_, err = l.Append(sampleEntries()[2])
	if err == nil || !strings.Contains(err.Error(), "input/output error") ||
		!strings.Contains(err.Error(), path) {
		t.Fatalf("Append with failing fsync: %v", err)
	}
	fail = false
	if _, err := l.Append(sampleEntries()[3]); err == nil ||
		!strings.Contains(err.Error(), "an earlier append failed") {
		t.Fatalf("Append after a failed fsync: %v", err)
	}
}

// TestAuditConcurrent appends from several open logs at once, as several
// processes would, each with its own file description and lock.
func TestAuditConcurrent(t *testing.T) {
	path := filepath.Join(t.TempDir(), "a.jsonl")
	const writers, each = 4, 25
	var wg sync.WaitGroup
	errs := make(chan error, writers*each+writers)
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			l, err := OpenAudit(path, AuditOptions{})
			if err != nil {
				errs <- err
				return
			}
			defer l.Close()
			for i := range each {
				_, err := l.Append(AuditEntry{Event: EventShareOffered,
					Outcome: OutcomeOK, Actor: fmt.Sprintf("writer %d", w),
					Share: i + 1})
				if err != nil {
					errs <- err
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	entries, sum, err := ReadAudit(path)
	if err != nil {
		t.Fatal(err)
	}
	if sum.Entries != writers*each+1 {
		t.Fatalf("%d entries, want %d", sum.Entries, writers*each+1)
	}
	creates := 0
	for _, e := range entries {
		if e.Event == EventLogCreated {
			creates++
		}
	}
	if creates != 1 {
		t.Errorf("%d log.created entries", creates)
	}
}

// TestAuditCatchUp checks that an open log verifies what others appended
// before it chains to it, and refuses a tampered tail.
func TestAuditCatchUp(t *testing.T) {
	path := writeLog(t)
	a, err := OpenAudit(path, AuditOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := OpenAudit(path, AuditOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()

	hb, err := b.Append(sampleEntries()[0])
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Append(sampleEntries()[1]); err != nil {
		t.Fatal(err)
	}
	entries, _, err := ReadAudit(path)
	if err != nil {
		t.Fatal(err)
	}
	if last := entries[len(entries)-1]; last.Prev != hb || last.Seq != 9 {
		t.Fatalf("a's entry chains to %s seq %d; want b's %s seq 9",
			last.Prev, last.Seq, hb)
	}

	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString(`{"seq":10}` + "\n")
	f.Close()
	_, err = a.Append(sampleEntries()[2])
	var broken *BrokenLogError
	if !errors.As(err, &broken) || broken.Line != 10 || broken.Path != path {
		t.Fatalf("Append after a forged line: %v", err)
	}
}

func TestAuditCreateRefusesDirectory(t *testing.T) {
	dir := t.TempDir()
	if _, err := OpenAudit(dir, AuditOptions{}); err == nil ||
		!strings.Contains(err.Error(), dir) {
		t.Fatalf("OpenAudit(dir) = %v", err)
	}
	missing := filepath.Join(dir, "no", "such", "a.jsonl")
	if _, err := OpenAudit(missing, AuditOptions{}); err == nil {
		t.Fatal("OpenAudit in a missing directory succeeded")
	}
}

// FuzzReadLog feeds the log reader arbitrary bytes. It must never panic;
// what it accepts must be a chain it would write; and reading in two
// pieces, as an open log catching up does, must agree with reading whole.
func FuzzReadLog(f *testing.F) {
	golden, err := os.ReadFile("testdata/audit/golden.jsonl")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(golden, 0)
	f.Add(golden, 300)
	f.Add(golden[:len(golden)-7], 100)
	lines := bytes.SplitAfter(golden, []byte("\n"))
	f.Add(bytes.Join([][]byte{lines[0], lines[2], lines[1], lines[3]}, nil), 0)
	f.Add(bytes.Join([][]byte{lines[0], lines[1], lines[1]}, nil), 0)
	f.Add([]byte(`{"seq":1}`+"\n"), 0)
	f.Add([]byte(`{"seq":0,"time":"x"}`+"\n\n"), 0)

	f.Fuzz(func(t *testing.T, data []byte, cut int) {
		whole, err := readLog(bytes.NewReader(data), true)
		if whole == nil {
			t.Fatal("readLog returned no state")
		}
		if err == nil {
			n := bytes.Count(data, []byte("\n"))
			if whole.sum.Entries != n || int(whole.sum.Size) != len(data) {
				t.Fatalf("accepted %d entries of %d lines", whole.sum.Entries, n)
			}
			for i, e := range whole.entries {
				w := e.wire()
				if w.hash() != e.Hash || e.Seq != uint64(i+1) {
					t.Fatalf("accepted entry %d does not hash", i+1)
				}
			}
		}

		// Split at a line end and feed the pieces in turn.
		if cut < 0 || cut > len(data) {
			return
		}
		if i := bytes.LastIndexByte(data[:cut], '\n'); i >= 0 {
			cut = i + 1
		} else {
			cut = 0
		}
		c := &chain{}
		f1 := c.feed(data[:cut])
		if f1 == nil {
			f1 = c.feed(data[cut:])
		}
		var want *BrokenLogError
		errors.As(err, &want)
		if len(data) == 0 {
			return
		}
		if (f1 == nil) != (want == nil) || (f1 != nil && f1.Line != want.Line) ||
			c.sum.Head != whole.sum.Head {
			t.Fatalf("in two pieces: %v; whole: %v", f1, err)
		}
	})
}

func TestAuditText(t *testing.T) {
	for _, tt := range []struct {
		in    string
		limit int
		want  string
	}{
		{"line one\nline\ttwo\r\n", 100, "line one line two"},
		{"  spaced   out  ", 100, "spaced out"},
		{"ëëëëë", 6, "ë..."}, // the second ë would be split at byte 3
		{"bad \xff byte", 100, "bad ? byte"},
		{"bidi \u202eevil", 100, "bidi evil"},
		{"abc", 2, ""},
	} {
		got := AuditText(tt.in, tt.limit)
		if got != tt.want {
			t.Errorf("AuditText(%q, %d) = %q, want %q", tt.in, tt.limit, got, tt.want)
		}
		if len(got) > tt.limit || checkText(got, tt.limit) != nil {
			t.Errorf("AuditText(%q, %d) = %q does not fit", tt.in, tt.limit, got)
		}
	}
}
