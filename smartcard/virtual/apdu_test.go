package virtual

import (
	"bytes"
	"encoding/hex"
	"strings"
	"testing"
)

// unhex decodes hex with spaces, as APDUs are written in specifications.
func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		t.Fatalf("bad hex %q: %v", s, err)
	}
	return b
}

func TestParseCommand(t *testing.T) {
	tests := []struct {
		name     string
		apdu     string
		data     string
		ne       int
		extended bool
		bad      bool
	}{
		{name: "case 1", apdu: "00 fd 00 00"},
		{name: "case 2 short, Le 00 is 256", apdu: "00 fd 00 00 00", ne: 256},
		{name: "case 2 short", apdu: "00 cb 3f ff 08", ne: 8},
		{name: "case 3 short", apdu: "00 a4 04 00 05 a0 00 00 03 08", data: "a0 00 00 03 08"},
		{name: "case 4 short", apdu: "00 a4 04 00 05 a0 00 00 03 08 00", data: "a0 00 00 03 08", ne: 256},
		{name: "case 2 extended", apdu: "00 cb 3f ff 00 01 00", ne: 256, extended: true},
		{name: "case 3 extended", apdu: "00 db 3f ff 00 00 02 5c 00", data: "5c 00", extended: true},
		{name: "case 4 extended, Le 0000 is 65536", apdu: "00 db 3f ff 00 00 02 5c 00 00 00", data: "5c 00", ne: 65536, extended: true},
		{name: "too short", apdu: "00 a4 04", bad: true},
		{name: "Lc longer than data", apdu: "00 a4 04 00 05 a0 00", bad: true},
		{name: "Lc shorter than data", apdu: "00 a4 04 00 01 a0 00 00 00", bad: true},
		{name: "extended Lc 0", apdu: "00 a4 04 00 00 00 00 00 00", bad: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := parseCommand(unhex(t, tt.apdu))
			if tt.bad {
				if err == nil {
					t.Fatalf("parsed %s, want an error", tt.apdu)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(c.data, unhex(t, tt.data)) || c.ne != tt.ne || c.extended != tt.extended {
				t.Errorf("got data %x ne %d extended %v, want %s %d %v",
					c.data, c.ne, c.extended, tt.data, tt.ne, tt.extended)
			}
		})
	}
}

func TestTLV(t *testing.T) {
	tests := []struct {
		name  string
		tag   uint32
		value []byte
		enc   string
	}{
		{"one byte tag", 0x80, []byte{0x11}, "80 01 11"},
		{"two byte tag", 0x7f49, []byte{}, "7f 49 00"},
		{"three byte tag", 0x5fc105, []byte{1}, "5f c1 05 01 01"},
		{"length 81", 0x53, bytes.Repeat([]byte{0xaa}, 0x80), "53 81 80" + strings.Repeat("aa", 0x80)},
		{"length 82", 0x70, bytes.Repeat([]byte{0xbb}, 0x100), "70 82 01 00" + strings.Repeat("bb", 0x100)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			enc := tlvBytes(tt.tag, tt.value)
			if want := unhex(t, tt.enc); !bytes.Equal(enc, want) {
				t.Fatalf("encoded %x, want %x", enc, want)
			}
			ts, err := parseTLVs(append(enc, 0x01, 0x00))
			if err != nil {
				t.Fatal(err)
			}
			if len(ts) != 2 || ts[0].tag != tt.tag || !bytes.Equal(ts[0].value, tt.value) || ts[1].tag != 0x01 {
				t.Errorf("decoded %+v", ts)
			}
		})
	}

	for _, bad := range []string{"53 05 00", "5f c1", "5f ff ff ff 00", "53 84 00 00 00 01", "53 81"} {
		if _, err := parseTLVs(unhex(t, bad)); err == nil {
			t.Errorf("parsed malformed %s", bad)
		}
	}
}
