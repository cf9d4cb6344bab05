package ceremony

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// syslogMsg is an RFC 5424 message taken apart by parse5424, a strict
// reader written from the grammar of RFC 5424 section 6, independent of
// formatSyslog.
type syslogMsg struct {
	pri                                 int
	version                             int
	timestamp, host, app, procid, msgid string
	sdid                                string
	params                              map[string]string
	msg                                 string
}

func parse5424(s string) (*syslogMsg, error) {
	m := &syslogMsg{params: map[string]string{}}
	if !strings.HasPrefix(s, "<") {
		return nil, errors.New("no PRI")
	}
	end := strings.IndexByte(s, '>')
	if end < 2 || end > 4 {
		return nil, errors.New("bad PRI")
	}
	pri, err := strconv.Atoi(s[1:end])
	if err != nil || pri > 191 {
		return nil, fmt.Errorf("bad PRI %q", s[1:end])
	}
	m.pri = pri
	s = s[end+1:]

	fields := strings.SplitN(s, " ", 7)
	if len(fields) != 7 {
		return nil, errors.New("header has too few fields")
	}
	if m.version, err = strconv.Atoi(fields[0]); err != nil {
		return nil, errors.New("bad VERSION")
	}
	m.timestamp, m.host, m.app, m.procid, m.msgid = fields[1], fields[2],
		fields[3], fields[4], fields[5]
	for _, f := range fields[1:6] {
		for _, c := range []byte(f) {
			if c < 33 || c > 126 {
				return nil, fmt.Errorf("header field %q is not PRINTUSASCII", f)
			}
		}
	}
	if len(m.app) > 48 || len(m.procid) > 128 || len(m.msgid) > 32 ||
		len(m.host) > 255 {
		return nil, errors.New("header field too long")
	}

	rest := fields[6]
	if !strings.HasPrefix(rest, "[") {
		return nil, errors.New("no SD-ELEMENT")
	}
	rest = rest[1:]
	i := strings.IndexAny(rest, " ]")
	if i < 0 {
		return nil, errors.New("SD-ID not ended")
	}
	m.sdid, rest = rest[:i], rest[i:]
	for strings.HasPrefix(rest, " ") {
		rest = rest[1:]
		eq := strings.Index(rest, `="`)
		if eq < 1 || eq > 32 || strings.ContainsAny(rest[:eq], ` ]"`) {
			return nil, fmt.Errorf("bad PARAM-NAME in %q", rest)
		}
		name := rest[:eq]
		rest = rest[eq+2:]
		var val strings.Builder
		closed := false
		for j := 0; j < len(rest); j++ {
			c := rest[j]
			switch {
			case c == '\\' && j+1 < len(rest) && strings.IndexByte(`"\]`, rest[j+1]) >= 0:
				val.WriteByte(rest[j+1])
				j++
			case c == ']':
				return nil, fmt.Errorf("unescaped ] in the value of %s", name)
			case c == '"':
				rest, closed = rest[j+1:], true
			default:
				val.WriteByte(c)
			}
			if closed {
				break
			}
		}
		if !closed {
			return nil, fmt.Errorf("value of %s not closed", name)
		}
		if _, dup := m.params[name]; dup {
			return nil, fmt.Errorf("PARAM-NAME %s twice", name)
		}
		m.params[name] = val.String()
	}
	if !strings.HasPrefix(rest, "]") {
		return nil, fmt.Errorf("SD-ELEMENT not closed at %q", rest)
	}
	rest = rest[1:]
	if rest != "" {
		if !strings.HasPrefix(rest, " \ufeff") {
			return nil, errors.New("MSG is not SP BOM UTF-8")
		}
		m.msg = strings.TrimPrefix(rest, " \ufeff")
	}
	return m, nil
}

// nastyEntry has every character RFC 5424 makes a value escape.
func nastyEntry() AuditEntry {
	return AuditEntry{Event: EventShareRejected, Outcome: OutcomeRefused,
		Actor: `Olga "the operator"`, SetID: testSet, Share: 3,
		Custodian: `Zoë [backup]`, Source: `C:\scans\bo].png`,
		Detail: `a\"] b \\ ]] "end`}
}

func checkNasty(t *testing.T, m *syslogMsg, seq uint64, logID string) {
	t.Helper()
	e := nastyEntry()
	want := map[string]string{
		"seq": strconv.FormatUint(seq, 10), "log": logID,
		"outcome": "refused", "actor": e.Actor, "custodian": e.Custodian,
		"source": e.Source, "detail": e.Detail, "share": "3",
		"set": "7F2C1A9B0102030405060708090A0B0C",
	}
	for k, v := range want {
		if m.params[k] != v {
			t.Errorf("param %s = %q, want %q", k, m.params[k], v)
		}
	}
	if m.pri != 10*8+4 || m.version != 1 || m.app != "custos" ||
		m.msgid != string(EventShareRejected) || m.sdid != syslogSDID ||
		m.procid != strconv.Itoa(os.Getpid()) {
		t.Errorf("header: %+v", m)
	}
	if len(m.params["hash"]) != 64 || len(m.params["prev"]) != 64 {
		t.Errorf("hash %q prev %q", m.params["hash"], m.params["prev"])
	}
	if !strings.Contains(m.msg, "share.rejected refused") ||
		!strings.Contains(m.msg, e.Detail) {
		t.Errorf("MSG %q", m.msg)
	}
	if _, err := time.Parse(time.RFC3339Nano, m.timestamp); err != nil ||
		!strings.HasSuffix(m.timestamp, "Z") {
		t.Errorf("TIMESTAMP %q: %v", m.timestamp, err)
	}
}

func TestFormatSyslog(t *testing.T) {
	e := nastyEntry()
	e.Seq, e.Time = 7, time.Date(2026, 1, 15, 9, 5, 12, 1000, time.UTC)
	e.Prev, e.Hash = strings.Repeat("a", 64), strings.Repeat("b", 64)
	raw := string(formatSyslog(e, "vault-room-1", os.Getpid(), "0123"))
	m, err := parse5424(raw)
	if err != nil {
		t.Fatalf("%v\n%s", err, raw)
	}
	checkNasty(t, m, 7, "0123")
	if m.timestamp != "2026-01-15T09:05:12.000001Z" || m.host != "vault-room-1" {
		t.Errorf("timestamp %q host %q", m.timestamp, m.host)
	}
	// The escapes are exactly RFC 5424's: a backslash before '"', '\'
	// and ']', nothing else.
	if !strings.Contains(raw, `detail="a\\\"\] b \\\\ \]\] \"end"`) {
		t.Errorf("detail escaped wrongly in %s", raw)
	}
}

// shortTemp returns a directory with a path short enough for a Unix
// socket (108 bytes), created by the test.
func shortTemp(t *testing.T) string {
	dir := t.TempDir()
	if len(dir) > 80 {
		var err error
		if dir, err = os.MkdirTemp("", "cs"); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.RemoveAll(dir) })
	}
	return dir
}

func TestSyslogDatagram(t *testing.T) {
	dir := shortTemp(t)
	sock := filepath.Join(dir, "log")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock,
		Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()

	l, err := OpenAudit(filepath.Join(dir, "a.jsonl"), AuditOptions{Syslog: sock})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if _, err := l.Append(nastyEntry()); err != nil {
		t.Fatal(err)
	}

	buf := make([]byte, 8192)
	var msgs []*syslogMsg
	for range 2 {
		conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		n, err := conn.Read(buf)
		if err != nil {
			t.Fatal(err)
		}
		m, err := parse5424(string(buf[:n]))
		if err != nil {
			t.Fatalf("%v\n%s", err, buf[:n])
		}
		msgs = append(msgs, m)
	}
	if msgs[0].msgid != "log.created" || msgs[0].params["seq"] != "1" {
		t.Errorf("first message: %+v", msgs[0])
	}
	checkNasty(t, msgs[1], 2, l.ID())
	if msgs[1].params["hash"] != l.Head() {
		t.Errorf("syslog hash %s, log head %s", msgs[1].params["hash"], l.Head())
	}
}

func TestSyslogStream(t *testing.T) {
	dir := shortTemp(t)
	sock := filepath.Join(dir, "log")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	got := make(chan []string, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			got <- nil
			return
		}
		defer c.Close()
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		var lines []string
		sc := bufio.NewScanner(c)
		for len(lines) < 3 && sc.Scan() {
			lines = append(lines, sc.Text())
		}
		got <- lines
	}()

	l, err := OpenAudit(filepath.Join(dir, "a.jsonl"), AuditOptions{Syslog: sock})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	for range 2 {
		if _, err := l.Append(nastyEntry()); err != nil {
			t.Fatal(err)
		}
	}
	lines := <-got
	if len(lines) != 3 {
		t.Fatalf("read %d messages from the stream, want 3", len(lines))
	}
	for i, line := range lines[1:] {
		m, err := parse5424(line)
		if err != nil {
			t.Fatalf("%v\n%s", err, line)
		}
		checkNasty(t, m, uint64(i+2), l.ID())
	}
}

func TestSyslogMissingSocket(t *testing.T) {
	dir := shortTemp(t)
	sock := filepath.Join(dir, "no-such-log")
	path := filepath.Join(dir, "a.jsonl")
	_, err := OpenAudit(path, AuditOptions{Syslog: sock})
	if err == nil || !strings.Contains(err.Error(), sock) {
		t.Fatalf("OpenAudit with a missing socket: %v", err)
	}
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Error("a log was created although its syslog socket is missing")
	}

	// A network address is a file name to custos, never a host.
	if _, err := OpenAudit(path, AuditOptions{Syslog: "127.0.0.1:514"}); err == nil {
		t.Error("a host:port syslog address was accepted")
	}
}

// TestSyslogDaemonGone checks that an entry is kept in the file when the
// daemon disappears, and that the caller learns it was not forwarded.
func TestSyslogDaemonGone(t *testing.T) {
	dir := shortTemp(t)
	sock := filepath.Join(dir, "log")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock,
		Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "a.jsonl")
	l, err := OpenAudit(path, AuditOptions{Syslog: sock})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	conn.Close()
	os.Remove(sock)

	head, err := l.Append(nastyEntry())
	var se *SyslogError
	if !errors.As(err, &se) || se.Socket != sock || se.Seq != 2 {
		t.Fatalf("Append with the daemon gone: %v", err)
	}
	sum, err := VerifyLog(path)
	if err != nil || sum.Entries != 2 || sum.Head != head {
		t.Fatalf("the entry is not in the file: %v %+v", err, sum)
	}
}
