package virtual

import (
	"encoding/hex"
	"testing"
)

// FuzzTransmit sends arbitrary APDUs to a card, authenticated or not: it
// must never panic, and must always answer with at least a status word.
// The seeds are the APDUs of the known-answer tests.
func FuzzTransmit(f *testing.F) {
	for _, s := range []string{
		selectPIV, verifyDefault, verifyWrong, verifyEmpty,
		"00fd0000", "00f80000", "00f7009b", "00f70080", "00f7009a",
		"00cb3fff035c017e", "00cb3fff055c035fc105",
		"00db3fff085c035fc1055301aa", "10db3fff065c035fc10553",
		"0047009a05ac0380011100", "0087119a0a7c08820081040102030400",
		"00870a9b047c028000", "00870a9b047c028100",
		"002c0080103132333435363738363534333231ffff",
		"00240081103132333435363738383736353433323100",
		"00fe119a2806200000000000000000000000000000000000000000000000000000000000000001",
		"00f99a00", "00fa0505", "00fb0000", "00ffffff1b039b18" + "010203040506070801020304050607080102030405060708",
		"00c0000000", "00a40400085a0000052747111700", "001d0000",
	} {
		b, err := hex.DecodeString(stripSpaces(s))
		if err != nil {
			f.Fatalf("seed %q: %v", s, err)
		}
		f.Add(b, false)
		f.Add(b, true)
	}

	c, err := New()
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, apdu []byte, authed bool) {
		if authed {
			c.sess.pinOK, c.sess.pinFresh, c.sess.mgmtOK = true, true, true
		}
		r := c.Transmit(apdu)
		if len(r) < 2 {
			t.Fatalf("response %x to %x has no status word", r, apdu)
		}
		if err := c.st.validate(); err != nil {
			t.Fatalf("after %x the card state is broken: %v", apdu, err)
		}
	})
}

func stripSpaces(s string) string {
	out := make([]byte, 0, len(s))
	for i := range len(s) {
		if s[i] != ' ' {
			out = append(out, s[i])
		}
	}
	return string(out)
}
