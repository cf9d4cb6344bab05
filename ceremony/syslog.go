package ceremony

// Copies of audit entries for the local syslog daemon, and from there for
// a SIEM. Each entry goes out as one RFC 5424 message: the entry's fields
// as structured data, a one-line summary as the message. Only Unix domain
// sockets are used; custos itself never sends anything over a network.

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"unicode/utf8"
)

// DefaultSyslogSocket is the local syslog socket on Linux.
const DefaultSyslogSocket = "/dev/log"

// syslogSDID names custos's structured data element. 32473 is the private
// enterprise number reserved for examples (RFC 5612).
//
// TODO: register a private enterprise number for custos; until then SIEM
// rules should also match APP-NAME "custos".
const syslogSDID = "custos@32473"

// syslogFacility is authpriv (10): security messages that ordinary users
// may not read.
const syslogFacility = 10

// Severities of RFC 5424 table 2.
const (
	sevError   = 3
	sevWarning = 4
	sevInfo    = 6
)

// SyslogError says an entry is in the audit log file but did not reach
// the syslog socket.
type SyslogError struct {
	Socket string
	Seq    uint64
	Err    error
}

func (e *SyslogError) Error() string {
	return fmt.Sprintf("sending audit entry %d to syslog socket %s: %v",
		e.Seq, e.Socket, e.Err)
}

func (e *SyslogError) Unwrap() error { return e.Err }

// syslogWriter sends entries to one local socket, datagram or stream.
type syslogWriter struct {
	path  string
	logID string
	host  string
	pid   int

	mu      sync.Mutex
	network string // "unixgram" or "unix"
	conn    net.Conn
}

// dialSyslog connects to the socket at path: as a datagram socket, as
// /dev/log is, or as a stream socket when it is one.
func dialSyslog(path string) (*syslogWriter, error) {
	w := &syslogWriter{path: path, host: syslogHostname(),
		pid: os.Getpid()}
	if err := w.dial(); err != nil {
		return nil, fmt.Errorf("connecting to syslog socket %s: %w", path, err)
	}
	return w, nil
}

func (w *syslogWriter) dial() error {
	if w.path == "" {
		return errors.New("no socket path")
	}
	conn, err := net.Dial("unixgram", w.path)
	w.network = "unixgram"
	if errors.Is(err, syscall.EPROTOTYPE) {
		conn, err = net.Dial("unix", w.path)
		w.network = "unix"
	}
	if err != nil {
		return err
	}
	w.conn = conn
	return nil
}

// send writes e as one message, reconnecting once if the daemon went away
// (it restarts, and its socket is made anew).
func (w *syslogWriter) send(e AuditEntry) error {
	msg := formatSyslog(e, w.host, w.pid, w.logID)
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.network == "unix" {
		// Stream sockets frame messages by line ends; an entry has none.
		msg = append(msg, '\n')
	}
	_, err := w.conn.Write(msg)
	if err != nil {
		w.conn.Close()
		if err = w.dial(); err == nil {
			_, err = w.conn.Write(msg)
		}
	}
	if err != nil {
		return &SyslogError{Socket: w.path, Seq: e.Seq, Err: err}
	}
	return nil
}

func (w *syslogWriter) close() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.conn != nil {
		w.conn.Close()
	}
}

// formatSyslog encodes e as an RFC 5424 message (section 6):
//
//	<PRI>1 TIMESTAMP HOSTNAME custos PROCID MSGID [SD-ELEMENT] BOM MSG
//
// MSGID is the event; the SD-ELEMENT holds the entry's fields.
func formatSyslog(e AuditEntry, host string, pid int, logID string) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, "<%d>1 %s %s custos %d %s ",
		syslogFacility*8+severity(e.Outcome),
		e.Time.UTC().Format(auditTimeFormat), host, pid, e.Event)

	b.WriteString("[" + syslogSDID)
	param := func(name, value string) {
		if value != "" {
			b.WriteString(" " + name + `="` + escapeSDValue(value) + `"`)
		}
	}
	num := func(name string, v uint64) {
		if v != 0 {
			param(name, strconv.FormatUint(v, 10))
		}
	}
	param("log", logID)
	num("seq", e.Seq)
	param("outcome", string(e.Outcome))
	param("actor", e.Actor)
	if e.SetID != ([16]byte{}) {
		param("set", strings.ReplaceAll(e.SetID.String(), " ", ""))
	}
	num("share", uint64(e.Share))
	param("custodian", e.Custodian)
	num("card", uint64(e.Card))
	param("slot", e.Slot)
	param("media", e.Media)
	param("source", e.Source)
	var checks []string
	for _, c := range e.Checks {
		v, _ := c.Value.MarshalText()
		checks = append(checks, c.Method.String()+":"+string(v))
	}
	param("checks", strings.Join(checks, ","))
	param("detail", e.Detail)
	param("prev", e.Prev)
	param("hash", e.Hash)
	b.WriteString("] \ufeff")

	b.WriteString(e.Summary())
	return []byte(b.String())
}

func severity(o AuditOutcome) int {
	switch o {
	case OutcomeOK:
		return sevInfo
	case OutcomeFailed:
		return sevError
	}
	return sevWarning
}

// escapeSDValue escapes '"', '\' and ']' with a backslash, as RFC 5424
// section 6.3.3 requires inside PARAM-VALUE.
func escapeSDValue(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch r {
		case '"', '\\', ']':
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}

// syslogHostname returns the host name as RFC 5424 allows it (1 to 255
// printable US-ASCII characters), or the nil value "-".
func syslogHostname() string {
	h, err := os.Hostname()
	if err != nil || h == "" || len(h) > 255 || !utf8.ValidString(h) {
		return "-"
	}
	for _, c := range []byte(h) {
		if c < 33 || c > 126 {
			return "-"
		}
	}
	return h
}
