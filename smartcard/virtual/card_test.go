package virtual

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/des"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"strings"
	"testing"
)

// tx sends one APDU (hex) and returns the response data and status word.
func tx(t testing.TB, c *Card, apdu string) ([]byte, uint16) {
	t.Helper()
	return txb(t, c, unhex(t, apdu))
}

func txb(t testing.TB, c *Card, apdu []byte) ([]byte, uint16) {
	t.Helper()
	r := c.Transmit(apdu)
	if len(r) < 2 {
		t.Fatalf("response %x too short", r)
	}
	n := len(r) - 2
	return r[:n], uint16(r[n])<<8 | uint16(r[n+1])
}

// expect sends an APDU and checks the whole response APDU.
func expect(t testing.TB, c *Card, apdu, want string) {
	t.Helper()
	got := c.Transmit(unhex(t, apdu))
	if w := unhex(t, want); !bytes.Equal(got, w) {
		t.Fatalf("%s\n got  % x\n want % x", apdu, got, w)
	}
}

// expectSW sends an APDU and checks the status word only.
func expectSW(t testing.TB, c *Card, apdu string, want uint16) []byte {
	t.Helper()
	data, sw := tx(t, c, apdu)
	if sw != want {
		t.Fatalf("%s: status %04x, want %04x", apdu, sw, want)
	}
	return data
}

func newCard(t testing.TB, opts ...Option) *Card {
	t.Helper()
	c, err := New(opts...)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

const (
	selectPIV = "00 a4 04 00 05 a0 00 00 03 08"
	// verifyDefault is VERIFY of PIN 123456, padded with FF (Yubico's
	// VERIFY documentation uses this very APDU).
	verifyDefault = "00 20 00 80 08 31 32 33 34 35 36 ff ff"
	verifyWrong   = "00 20 00 80 08 30 30 30 30 30 30 ff ff"
	verifyEmpty   = "00 20 00 80"
)

// Known answers from SP 800-73-4 part 2 and Yubico's PIV documentation.
func TestKnownAPDUs(t *testing.T) {
	c := newCard(t, WithSerial(0x00d937cb))

	// SELECT of the PIV AID returns the application property template
	// a YubiKey returns (SP 800-73-4 part 2 section 3.1.1).
	expect(t, c, selectPIV, "61 11 4f 06 00 00 10 00 01 00 79 07 4f 05 a0 00 00 03 08 90 00")
	expect(t, c, "00 a4 04 00 0b a0 00 00 03 08 00 00 10 00 01 00",
		"61 11 4f 06 00 00 10 00 01 00 79 07 4f 05 a0 00 00 03 08 90 00")
	expect(t, c, "00 a4 04 00 06 a0 00 00 00 01 01", "6a 82")

	expect(t, c, "00 fd 00 00", "05 07 01 90 00")
	expect(t, c, "00 f8 00 00", "00 d9 37 cb 90 00")

	// Empty VERIFY tells the tries left; wrong PINs count down.
	expect(t, c, verifyEmpty, "63 c3")
	expect(t, c, verifyWrong, "63 c2")
	expect(t, c, verifyEmpty, "63 c2")
	expect(t, c, verifyDefault, "90 00")
	expect(t, c, verifyEmpty, "90 00")

	// GET METADATA of the PIN: PIN/PUK algorithm FF, default, 3 of 3.
	expect(t, c, "00 f7 00 80", "01 01 ff 05 01 01 06 02 03 03 90 00")
	// Of the management key: AES-192 default on firmware 5.7.
	expect(t, c, "00 f7 00 9b", "01 01 0a 02 02 00 01 05 01 01 90 00")
	// An empty slot.
	expect(t, c, "00 f7 00 9a", "6a 88")

	// Discovery object, and an absent object.
	expect(t, c, "00 cb 3f ff 03 5c 01 7e",
		"7e 12 4f 0b a0 00 00 03 08 00 00 10 00 01 00 5f 2f 02 40 00 90 00")
	expect(t, c, "00 cb 3f ff 05 5c 03 5f c1 02", "6a 82")
	expect(t, c, "00 cb 3f ff 05 5c 03 5f c1 07", "6a 82")
	expect(t, c, "00 cb 3f ff 05 5c 03 5f c1 0c", "6a 82")

	// Unknown instruction and class.
	expect(t, c, "00 ca df 30 05", "6d 00")
	expect(t, c, "80 fd 00 00", "6e 00")

	// Writing needs the management key; reset needs PIN and PUK blocked.
	expect(t, c, "00 db 3f ff 08 5c 03 5f c1 05 53 01 00", "69 82")
	expect(t, c, "00 47 00 9a 05 ac 03 80 01 11", "69 82")
	expect(t, c, "00 fb 00 00", "69 85")
}

func TestPINBlockAndPUK(t *testing.T) {
	c := newCard(t)
	for _, want := range []string{"63 c2", "63 c1", "63 c0", "69 83"} {
		expect(t, c, verifyWrong, want)
	}
	expect(t, c, verifyEmpty, "69 83")
	expect(t, c, verifyDefault, "69 83") // the right PIN is refused too
	expect(t, c, "00 f7 00 80", "01 01 ff 05 01 01 06 02 03 00 90 00")

	// RESET RETRY COUNTER with a wrong PUK counts a PUK try.
	expect(t, c, "00 2c 00 80 10 3837363534333231 3635343332310000", "63 c2")
	// A new PIN of five digits is refused, without spending a try.
	expect(t, c, "00 2c 00 80 10 3132333435363738 31323334 35 ffffff", "6a 80")
	// The right PUK sets PIN 654321 and unblocks it.
	expect(t, c, "00 2c 00 80 10 3132333435363738 363534333231 ffff", "90 00")
	expect(t, c, verifyEmpty, "63 c3")
	expect(t, c, "00 20 00 80 08 363534333231 ffff", "90 00")
	expect(t, c, "00 f7 00 80", "01 01 ff 05 01 00 06 02 03 03 90 00")
	expect(t, c, "00 f7 00 81", "01 01 ff 05 01 01 06 02 03 03 90 00")

	// CHANGE REFERENCE DATA for the PUK, wrong old value, then right.
	expect(t, c, "00 24 00 81 10 3030303030303030 3837363534333231", "63 c2")
	expect(t, c, "00 24 00 81 10 3132333435363738 3837363534333231", "90 00")
	expect(t, c, "00 f7 00 81", "01 01 ff 05 01 00 06 02 03 03 90 00")

	// VERIFY with P1 FF resets the PIN security status.
	expect(t, c, "00 20 00 80 08 363534333231 ffff", "90 00")
	expect(t, c, "00 20 ff 80", "90 00")
	expect(t, c, verifyEmpty, "63 c3")
}

func TestResetNeedsBlockedPINAndPUK(t *testing.T) {
	c := newCard(t)
	auth(t, c, DefaultManagementKey)
	expectSW(t, c, "00 47 00 9a 05 ac 03 80 01 11", swOK)
	expectSW(t, c, "00 db 3f ff 08 5c 03 5f c1 05 53 01 aa", swOK)

	for range 3 {
		tx(t, c, verifyWrong)
	}
	expect(t, c, "00 fb 00 00", "69 85") // PUK not blocked yet
	for range 3 {
		tx(t, c, "00 24 00 81 10 3030303030303030 3030303030303030")
	}
	expect(t, c, "00 fb 00 00", "90 00")

	expect(t, c, "00 f7 00 9a", "6a 88")
	expect(t, c, "00 cb 3f ff 05 5c 03 5f c1 05", "6a 82")
	expect(t, c, verifyDefault, "90 00")
	expect(t, c, "00 f7 00 9b", "01 01 0a 02 02 00 01 05 01 01 90 00")
	// The attestation key and certificate survive, as on a YubiKey.
	expectSW(t, c, "00 f7 00 f9", swOK)
	if _, sw := tx(t, c, "00 cb 3f ff 05 5c 03 5f ff 01"); sw&0xff00 != swMoreData {
		t.Fatalf("attestation certificate: status %04x", sw)
	}
}

// auth runs mutual authentication with the management key (SP 800-73-4
// part 2 appendix A.2) the way a host does, computing in the test.
func auth(t testing.TB, c *Card, key []byte) {
	t.Helper()
	meta := expectSW(t, c, "00 f7 00 9b", swOK)
	alg := meta[2]
	if err := tryAuth(t, c, alg, key); err != nil {
		t.Fatal(err)
	}
}

func tryAuth(t testing.TB, c *Card, alg byte, key []byte) error {
	t.Helper()
	block := mgmtBlock(t, alg, key)
	n := byte(block.BlockSize())

	data, sw := tx(t, c, fmt.Sprintf("00 87 %02x 9b 04 7c 02 80 00", alg))
	if sw != swOK || len(data) != int(4+n) {
		return fmt.Errorf("witness: %x %04x", data, sw)
	}
	witness := make([]byte, n)
	block.Decrypt(witness, data[4:])
	challenge := make([]byte, n)
	rand.Read(challenge)

	cmd := []byte{0x00, 0x87, alg, 0x9b, 2 + 2*(n+2), 0x7c, 2 * (n + 2), 0x80, n}
	cmd = append(cmd, witness...)
	cmd = append(append(cmd, 0x81, n), challenge...)
	data, sw = txb(t, c, cmd)
	if sw != swOK {
		return fmt.Errorf("response: %04x", sw)
	}
	want := make([]byte, n)
	block.Encrypt(want, challenge)
	if !bytes.Equal(data, append([]byte{0x7c, n + 2, 0x82, n}, want...)) {
		return fmt.Errorf("card answered %x, want %x", data, want)
	}
	return nil
}

func mgmtBlock(t testing.TB, alg byte, key []byte) cipher.Block {
	t.Helper()
	var b cipher.Block
	var err error
	if alg == alg3DES {
		b, err = des.NewTripleDESCipher(key)
	} else {
		b, err = aes.NewCipher(key)
	}
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestManagementKey(t *testing.T) {
	t.Run("AES-192 default on 5.7", func(t *testing.T) {
		c := newCard(t)
		auth(t, c, DefaultManagementKey)
	})
	t.Run("3DES default before 5.7", func(t *testing.T) {
		c := newCard(t, WithVersion(5, 4, 3))
		expect(t, c, "00 f7 00 9b", "01 01 03 02 02 00 01 05 01 01 90 00")
		auth(t, c, DefaultManagementKey)
	})
	t.Run("wrong algorithm in P1", func(t *testing.T) {
		c := newCard(t)
		expect(t, c, "00 87 03 9b 04 7c 02 80 00", "6a 86")
	})
	t.Run("wrong key", func(t *testing.T) {
		c := newCard(t)
		wrong := bytes.Repeat([]byte{7}, 24)
		if err := tryAuth(t, c, algAES192, wrong); err == nil {
			t.Fatal("authenticated with a wrong key")
		}
		expect(t, c, "00 47 00 9a 05 ac 03 80 01 11", "69 82")
	})
	t.Run("response without witness request", func(t *testing.T) {
		c := newCard(t)
		cmd := "00 87 0a 9b 26 7c 24 80 10" + strings.Repeat("00", 16) + "81 10" + strings.Repeat("11", 16)
		expect(t, c, cmd, "69 82")
	})
	t.Run("challenge-response (external authenticate)", func(t *testing.T) {
		c := newCard(t)
		data := expectSW(t, c, "00 87 0a 9b 04 7c 02 81 00", swOK)
		block := mgmtBlock(t, algAES192, DefaultManagementKey)
		enc := make([]byte, 16)
		block.Encrypt(enc, data[4:])
		cmd := append(unhex(t, "00 87 0a 9b 14 7c 12 82 10"), enc...)
		if _, sw := txb(t, c, cmd); sw != swOK {
			t.Fatalf("status %04x", sw)
		}
		expectSW(t, c, "00 47 00 9a 05 ac 03 80 01 11", swOK)
	})
	t.Run("set AES-256, then 3DES, default flag cleared", func(t *testing.T) {
		c := newCard(t)
		auth(t, c, DefaultManagementKey)
		k256 := bytes.Repeat([]byte{0x42}, 32)
		expectSW(t, c, "00 ff ff ff 23 0c 9b 20"+fmt.Sprintf("%x", k256), swOK)
		expect(t, c, "00 f7 00 9b", "01 01 0c 02 02 00 01 05 01 00 90 00")
		expect(t, c, selectPIV, "61 11 4f 06 00 00 10 00 01 00 79 07 4f 05 a0 00 00 03 08 90 00")
		auth(t, c, k256)
		k3 := bytes.Repeat([]byte{0x13}, 24)
		expectSW(t, c, "00 ff ff fe 1b 03 9b 18"+fmt.Sprintf("%x", k3), swOK)
		expect(t, c, "00 f7 00 9b", "01 01 03 02 02 00 02 05 01 00 90 00")
		auth(t, c, k3)
	})
	t.Run("AES refused before 5.4", func(t *testing.T) {
		c := newCard(t, WithVersion(5, 2, 7))
		expect(t, c, "00 f7 00 9b", "6d 00") // no GET METADATA before 5.3
		if err := tryAuth(t, c, alg3DES, DefaultManagementKey); err != nil {
			t.Fatal(err)
		}
		expect(t, c, "00 ff ff ff 13 08 9b 10"+strings.Repeat("11", 16), "6a 80")
	})
}

// Security status is lost on SELECT, power-off and reset, as on a card.
func TestSecurityStatusResets(t *testing.T) {
	for _, how := range []string{"select", "power off", "management applet"} {
		t.Run(how, func(t *testing.T) {
			c := newCard(t)
			expect(t, c, verifyDefault, "90 00")
			auth(t, c, DefaultManagementKey)
			switch how {
			case "select":
				expectSW(t, c, selectPIV, swOK)
			case "power off":
				c.PowerOff()
			case "management applet":
				expectSW(t, c, "00 a4 04 00 08 a0 00 00 05 27 47 11 17", swOK)
				// The PIV applet is not selected: its commands are unknown.
				expect(t, c, "00 fd 00 00", "6d 00")
				expectSW(t, c, selectPIV, swOK)
			}
			expect(t, c, verifyEmpty, "63 c3")
			expect(t, c, "00 47 00 9a 05 ac 03 80 01 11", "69 82")
		})
	}
}

func TestManagementApplet(t *testing.T) {
	c := newCard(t, WithSerial(12345678))
	data := expectSW(t, c, "00 a4 04 00 08 a0 00 00 05 27 47 11 17", swOK)
	if !strings.Contains(string(data), "5.7.1") {
		t.Errorf("management select says %q", data)
	}
	expect(t, c, "00 1d 00 00", "0e 02 04 00 bc 61 4e 04 01 01 05 03 05 07 01 90 00")
}

func TestChaining(t *testing.T) {
	c := newCard(t)
	auth(t, c, DefaultManagementKey)

	// A 600-byte object in three chained PUT DATA commands (CLA 10).
	content := make([]byte, 600)
	rand.Read(content)
	body := append(unhex(t, "5c 03 5f c1 05 53 82 02 58"), content...)
	var chunks [][]byte
	for len(body) > 255 {
		chunks = append(chunks, body[:255])
		body = body[255:]
	}
	chunks = append(chunks, body)
	for i, ch := range chunks {
		cla := byte(0x10)
		if i == len(chunks)-1 {
			cla = 0x00
		}
		apdu := append([]byte{cla, 0xdb, 0x3f, 0xff, byte(len(ch))}, ch...)
		if _, sw := txb(t, c, apdu); sw != swOK {
			t.Fatalf("chunk %d: status %04x", i, sw)
		}
		if i == 0 {
			// Nothing is written before the last chunk.
			expect(t, c.clone(t), "00 cb 3f ff 05 5c 03 5f c1 05", "6a 82")
		}
	}

	// GET DATA answers 256 bytes at a time with 61xx; GET RESPONSE
	// fetches the rest.
	want := tlvBytes(0x53, content)
	var got []byte
	data, sw := tx(t, c, "00 cb 3f ff 05 5c 03 5f c1 05")
	for {
		got = append(got, data...)
		if sw == swOK {
			break
		}
		if sw&0xff00 != swMoreData {
			t.Fatalf("status %04x", sw)
		}
		if left := int(sw & 0xff); left != 0 && left != len(want)-len(got) {
			t.Fatalf("61%02x but %d bytes left", left, len(want)-len(got))
		}
		if len(data) != 256 {
			t.Fatalf("chunk of %d bytes", len(data))
		}
		data, sw = tx(t, c, "00 c0 00 00 00")
	}
	if !bytes.Equal(got, want) {
		t.Fatal("object read back differs")
	}

	// An extended Le takes the whole object at once.
	data = expectSW(t, c, "00 cb 3f ff 00 00 05 5c 03 5f c1 05 00 00", swOK)
	if !bytes.Equal(data, want) {
		t.Fatal("extended read differs")
	}
	// GET RESPONSE with nothing pending.
	expect(t, c, "00 c0 00 00 00", "69 85")
}

// A chain broken by another command, or by power loss, writes nothing.
func TestBrokenChainWritesNothing(t *testing.T) {
	c := newCard(t)
	auth(t, c, DefaultManagementKey)
	expectSW(t, c, "00 db 3f ff 08 5c 03 5f c1 05 53 01 01", swOK)

	expectSW(t, c, "10 db 3f ff 06 5c 03 5f c1 05 53", swOK)
	c.PowerOff()
	expect(t, c, "00 cb 3f ff 05 5c 03 5f c1 05", "53 01 01 90 00")

	auth(t, c, DefaultManagementKey)
	expectSW(t, c, "10 db 3f ff 06 5c 03 5f c1 05 53", swOK)
	expectSW(t, c, "00 fd 00 00", swOK) // another command breaks the chain
	// The tail alone is not a valid PUT DATA.
	expect(t, c, "00 db 3f ff 02 01 02", "6a 80")
	expect(t, c, "00 cb 3f ff 05 5c 03 5f c1 05", "53 01 01 90 00")
}

func TestObjectLimits(t *testing.T) {
	c := newCard(t)
	auth(t, c, DefaultManagementKey)
	put := func(tag string, n int) uint16 {
		body := append(unhex(t, "5c 03"+tag), tlvBytes(0x53, bytes.Repeat([]byte{0x5a}, n))...)
		apdu := append([]byte{0, 0xdb, 0x3f, 0xff, 0, byte(len(body) >> 8), byte(len(body))}, body...)
		_, sw := txb(t, c, apdu)
		return sw
	}
	if sw := put("5fc10d", maxObjectSize); sw != swOK {
		t.Fatalf("object of %d bytes: %04x", maxObjectSize, sw)
	}
	if sw := put("5fc10e", maxObjectSize+1); sw != swNotEnoughMemory {
		t.Fatalf("object of %d bytes: %04x, want 6a84", maxObjectSize+1, sw)
	}
	if sw := put("5fc1ff", 1); sw != swNotFound {
		t.Fatalf("unknown object: %04x", sw)
	}
	// An empty 53 deletes.
	expectSW(t, c, "00 db 3f ff 07 5c 03 5f c1 0d 53 00", swOK)
	expect(t, c, "00 cb 3f ff 05 5c 03 5f c1 0d", "6a 82")

	// Printed information needs the PIN to be read.
	expectSW(t, c, "00 db 3f ff 08 5c 03 5f c1 09 53 01 88", swOK)
	expect(t, c, "00 cb 3f ff 05 5c 03 5f c1 09", "69 82")
	expect(t, c, verifyDefault, "90 00")
	expect(t, c, "00 cb 3f ff 05 5c 03 5f c1 09", "53 01 88 90 00")
}

func TestKeys(t *testing.T) {
	c := newCard(t)

	tests := []struct {
		alg  byte
		slot byte
		pin  byte
	}{
		{algP256, 0x9a, pinDefault},
		{algP384, 0x9c, pinDefault},
		{algEd25519, 0x82, pinNever},
		{algX25519, 0x83, pinOnce},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%02x in %02x", tt.alg, tt.slot), func(t *testing.T) {
			auth(t, c, DefaultManagementKey)
			cmd := fmt.Sprintf("00 47 00 %02x 08 ac 06 80 01 %02x aa 01 %02x", tt.slot, tt.alg, tt.pin)
			data := expectSW(t, c, cmd, swOK)
			ts, err := parseTLVs(data)
			if err != nil || len(ts) != 1 || ts[0].tag != 0x7f49 {
				t.Fatalf("generate answered %x", data)
			}
			inner, _ := parseTLVs(ts[0].value)
			point, _ := find(inner, 0x86)

			meta := expectSW(t, c, fmt.Sprintf("00 f7 00 %02x", tt.slot), swOK)
			mts, _ := parseTLVs(meta)
			alg, _ := find(mts, 0x01)
			pol, _ := find(mts, 0x02)
			origin, _ := find(mts, 0x03)
			pub, _ := find(mts, 0x04)
			wantPIN := tt.pin
			if wantPIN == pinDefault {
				wantPIN = defaultPINPolicy(tt.slot)
			}
			if !bytes.Equal(alg, []byte{tt.alg}) || !bytes.Equal(pol, []byte{wantPIN, touchNever}) ||
				!bytes.Equal(origin, []byte{originGenerated}) || !bytes.Equal(pub, tlvBytes(0x86, point)) {
				t.Fatalf("metadata %x", meta)
			}
			checkKeyOp(t, c, tt.alg, tt.slot, wantPIN, point)
		})
	}
}

// checkKeyOp signs or agrees with the key in slot and checks the result
// with the public point, including the PIN policy.
func checkKeyOp(t *testing.T, c *Card, alg, slot, pinPolicy byte, point []byte) {
	t.Helper()
	msg := make([]byte, 32)
	rand.Read(msg)
	var op []byte
	var peer *ecdh.PrivateKey
	switch alg {
	case algP256, algP384, algEd25519:
		op = tlvBytes(0x81, msg)
	case algX25519:
		peer, _ = ecdh.X25519().GenerateKey(rand.Reader)
		op = tlvBytes(0x85, peer.PublicKey().Bytes())
	}
	tmpl := tlvBytes(0x7c, append([]byte{0x82, 0x00}, op...))
	apdu := append([]byte{0x00, 0x87, alg, slot, byte(len(tmpl))}, tmpl...)

	if pinPolicy != pinNever {
		c.PowerOff()
		if _, sw := txb(t, c, apdu); sw != swSecurityStatus {
			t.Fatalf("key operation without PIN: %04x", sw)
		}
		expect(t, c, verifyDefault, "90 00")
	}
	data, sw := txb(t, c, apdu)
	if sw != swOK {
		t.Fatalf("key operation: %04x", sw)
	}
	ts, _ := parseTLVs(data)
	inner, _ := parseTLVs(ts[0].value)
	out, _ := find(inner, 0x82)

	switch alg {
	case algP256, algP384:
		crv := elliptic.P256()
		if alg == algP384 {
			crv = elliptic.P384()
		}
		pub, err := ecdsa.ParseUncompressedPublicKey(crv, point)
		if err != nil {
			t.Fatal(err)
		}
		if !ecdsa.VerifyASN1(pub, msg, out) {
			t.Fatal("signature does not verify")
		}
	case algEd25519:
		if !ed25519.Verify(point, msg, out) {
			t.Fatal("signature does not verify")
		}
	case algX25519:
		pub, _ := ecdh.X25519().NewPublicKey(point)
		want, _ := peer.ECDH(pub)
		if !bytes.Equal(out, want) {
			t.Fatal("shared secrets differ")
		}
	}

	if pinPolicy == pinAlways {
		// The PIN was used up: the next operation needs it again.
		if _, sw := txb(t, c, apdu); sw != swSecurityStatus {
			t.Fatalf("second operation with PIN-always key: %04x", sw)
		}
	}
}

func TestECDHP256(t *testing.T) {
	c := newCard(t)
	auth(t, c, DefaultManagementKey)
	data := expectSW(t, c, "00 47 00 9d 0b ac 09 80 01 11 aa 01 01 ab 01 02", swOK)
	point := data[5:]
	peer, _ := ecdh.P256().GenerateKey(rand.Reader)
	tmpl := tlvBytes(0x7c, append([]byte{0x82, 0x00}, tlvBytes(0x85, peer.PublicKey().Bytes())...))
	out, sw := txb(t, c, append([]byte{0, 0x87, 0x11, 0x9d, byte(len(tmpl))}, tmpl...))
	if sw != swOK {
		t.Fatalf("ecdh: %04x", sw)
	}
	pub, _ := ecdh.P256().NewPublicKey(point)
	want, _ := peer.ECDH(pub)
	if !bytes.Equal(out, tlvBytes(0x7c, tlvBytes(0x82, want))) {
		t.Fatal("shared secrets differ")
	}
	// Touch policy "always" is recorded (and satisfied, having no button).
	expectSW(t, c, "00 f7 00 9d", swOK)
	meta := expectSW(t, c, "00 f7 00 9d", swOK)
	if !bytes.Contains(meta, []byte{0x02, 0x02, pinNever, touchAlways}) {
		t.Fatalf("metadata %x", meta)
	}

	// A point not on the curve is refused.
	bad := bytes.Clone(peer.PublicKey().Bytes())
	bad[10] ^= 1
	tmpl = tlvBytes(0x7c, append([]byte{0x82, 0x00}, tlvBytes(0x85, bad)...))
	if _, sw := txb(t, c, append([]byte{0, 0x87, 0x11, 0x9d, byte(len(tmpl))}, tmpl...)); sw != swIncorrectData {
		t.Fatalf("bad point: %04x", sw)
	}
}

func TestImportAndAttest(t *testing.T) {
	c := newCard(t)
	auth(t, c, DefaultManagementKey)

	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	d, _ := k.Bytes()
	cmd := append(unhex(t, "00 fe 11 9a 28"), tlvBytes(0x06, d)...)
	cmd = append(cmd, unhex(t, "aa 01 01 ab 01 01")...)
	expectSW(t, c, fmt.Sprintf("%x", cmd), swOK)
	meta := expectSW(t, c, "00 f7 00 9a", swOK)
	if !bytes.Contains(meta, []byte{0x03, 0x01, originImported}) {
		t.Fatalf("metadata %x", meta)
	}
	pub, _ := k.PublicKey.Bytes()
	if !bytes.Contains(meta, tlvBytes(0x86, pub)) {
		t.Fatal("metadata does not show the imported public key")
	}

	// Imported keys and empty slots cannot be attested.
	expect(t, c, "00 f9 9a 00", "6a 80")
	expect(t, c, "00 f9 9e 00", "6a 80")

	digest := sha256.Sum256([]byte("x"))
	tmpl := tlvBytes(0x7c, append([]byte{0x82, 0x00}, tlvBytes(0x81, digest[:])...))
	out, sw := txb(t, c, append([]byte{0, 0x87, 0x11, 0x9a, byte(len(tmpl))}, tmpl...))
	if sw != swOK || !ecdsa.VerifyASN1(&k.PublicKey, digest[:], out[4:]) {
		t.Fatalf("signing with imported key: %04x", sw)
	}
}

// clone copies a card's state, to look at it without disturbing the
// session under test.
func (c *Card) clone(t testing.TB) *Card {
	t.Helper()
	raw, err := c.st.marshal()
	if err != nil {
		t.Fatal(err)
	}
	st, _, err := decodeState(raw)
	if err != nil {
		t.Fatal(err)
	}
	return &Card{st: st, sess: session{applet: appletPIV}}
}
