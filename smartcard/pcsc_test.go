package smartcard

import (
	"testing"

	"custos/smartcard/virtual"
)

func TestParseMetadata(t *testing.T) {
	// Responses laid out as Yubico documents GET METADATA: 01 algorithm,
	// 02 policy, 05 default-value flag, 06 retries (total, remaining).
	cases := []struct {
		name    string
		resp    []byte
		def     bool
		retries int
		bad     bool
	}{
		{"factory PIN", []byte{0x01, 0x01, 0xff, 0x05, 0x01, 0x01, 0x06, 0x02, 0x03, 0x03}, true, 3, false},
		{"changed PIN, 1 left", []byte{0x01, 0x01, 0xff, 0x05, 0x01, 0x00, 0x06, 0x02, 0x03, 0x01}, false, 1, false},
		{"factory AES-192 key", []byte{0x01, 0x01, 0x0a, 0x02, 0x02, 0x00, 0x01, 0x05, 0x01, 0x01}, true, 0, false},
		{"no default field", []byte{0x01, 0x01, 0xff, 0x06, 0x02, 0x03, 0x03}, false, 0, true},
		{"truncated", []byte{0x01, 0x01, 0xff, 0x05, 0x01}, false, 0, true},
		{"bad flag length", []byte{0x05, 0x02, 0x01, 0x01}, false, 0, true},
		{"bad length form", []byte{0x05, 0x85, 0x01}, false, 0, true},
		{"empty", nil, false, 0, true},
	}
	for _, c := range cases {
		m, err := parseMetadata(c.resp)
		if (err != nil) != c.bad {
			t.Errorf("%s: err = %v", c.name, err)
			continue
		}
		if !c.bad && (m.isDefault != c.def || m.retries != c.retries) {
			t.Errorf("%s: default %v retries %d, want %v %d", c.name, m.isDefault, m.retries, c.def, c.retries)
		}
	}
}

// cardTx sends APDUs straight to a virtual card, without pcscd.
func cardTx(c *virtual.Card) func([]byte) ([]byte, uint16, error) {
	return func(cmd []byte) ([]byte, uint16, error) {
		var out []byte
		for {
			r := c.Transmit(cmd)
			if len(r) < 2 {
				return nil, 0, errShortResponse
			}
			out = append(out, r[:len(r)-2]...)
			sw := uint16(r[len(r)-2])<<8 | uint16(r[len(r)-1])
			if sw>>8 != 0x61 {
				return out, sw, nil
			}
			cmd = []byte{0x00, 0xc0, 0x00, 0x00, 0x00}
		}
	}
}

func TestProbeVirtualCard(t *testing.T) {
	c, err := virtual.New(virtual.WithSerial(31337))
	if err != nil {
		t.Fatal(err)
	}
	p, err := probeCard(cardTx(c))
	if err != nil {
		t.Fatal(err)
	}
	want := Credentials{Known: true, PINDefault: true, PUKDefault: true,
		KeyDefault: true, PINRetries: 3, PUKRetries: 3, PINTotal: 3}
	if p.serial != 31337 || p.creds != want {
		t.Fatalf("probe = serial %d creds %+v, want 31337 %+v", p.serial, p.creds, want)
	}

	old, err := virtual.New(virtual.WithVersion(5, 2, 7))
	if err != nil {
		t.Fatal(err)
	}
	p, err = probeCard(cardTx(old))
	if err != nil {
		t.Fatal(err)
	}
	if p.creds.Known {
		t.Fatalf("firmware 5.2.7 reported credentials %+v", p.creds)
	}
}
