package main

import (
	"io"
	"testing"
	"time"

	"custos/ceremony"
)

func TestParseAge(t *testing.T) {
	day := 24 * time.Hour
	for in, want := range map[string]time.Duration{
		"365d": 365 * day, "1d": day, "26w": 26 * 7 * day, "2160h": 90 * day,
	} {
		if got, err := parseAge(in); err != nil || got != want {
			t.Errorf("parseAge(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "d", "1y", "0d", "-5d", "-1h", "12", "x7d", "99999999d"} {
		if _, err := parseAge(in); err == nil || exitCode(err) != 2 {
			t.Errorf("parseAge(%q) = %v; want a usage error", in, err)
		}
	}
}

func TestParseDay(t *testing.T) {
	got, err := parseDay("2026-12-31")
	if err != nil || !got.Equal(time.Date(2026, 12, 31, 0, 0, 0, 0, time.UTC)) {
		t.Errorf("parseDay(2026-12-31) = %v, %v", got, err)
	}
	if _, err := parseDay("31/12/2026"); exitCode(err) != 2 {
		t.Errorf("parseDay(31/12/2026) = %v; want a usage error", err)
	}
}

func TestSyslogFlag(t *testing.T) {
	for _, tt := range []struct {
		args []string
		want string
	}{
		{nil, ""},
		{[]string{"--audit-syslog"}, ceremony.DefaultSyslogSocket},
		{[]string{"--audit-syslog=/run/custos/log"}, "/run/custos/log"},
		{[]string{"--audit-syslog=false"}, ""},
	} {
		fs := newFlags("test")
		path := addSyslogFlag(fs)
		pos, err := parseFlags(fs, append(tt.args, "DIR"))
		if err != nil || *path != tt.want || len(pos) != 1 || pos[0] != "DIR" {
			t.Errorf("%q: path %q pos %q err %v; want %q", tt.args, *path,
				pos, err, tt.want)
		}
	}
	fs := newFlags("test")
	addSyslogFlag(fs)
	if _, err := parseFlags(fs, []string{"--audit-syslog="}); exitCode(err) != 2 {
		t.Errorf("an empty socket path: %v", err)
	}
}

func TestExitCodes(t *testing.T) {
	saved := stderr
	stderr = io.Discard
	defer func() { stderr = saved }()
	dir := t.TempDir()
	for _, tt := range []struct {
		args []string
		want int
	}{
		{[]string{"status"}, 2},
		{[]string{"status", "--drill-max-age", "soon", dir}, 2},
		{[]string{"status", dir}, 1},
		{[]string{"audit", "verify"}, 2},
		{[]string{"audit", "verify", dir + "/none.log"}, 1},
	} {
		if got := run(tt.args); got != tt.want {
			t.Errorf("custos %q exits %d, want %d", tt.args, got, tt.want)
		}
	}
}
