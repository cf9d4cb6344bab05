package smartcard

import (
	"bytes"
	"crypto/ecdh"
	"crypto/rand"
	"errors"
	"testing"
)

func softAgree(k *ecdh.PrivateKey) func(*ecdh.PublicKey) ([]byte, error) {
	return func(p *ecdh.PublicKey) ([]byte, error) { return k.ECDH(p) }
}

func TestSealRoundTrip(t *testing.T) {
	share := []byte("CSTS an encoded share, opaque to the card package")
	sc := sealContext{Serial: 12345678, Slot: 0x82, SetID: [16]byte{1, 2, 3}, Index: 3}
	for _, curve := range []ecdh.Curve{ecdh.P256(), ecdh.X25519()} {
		k, err := curve.GenerateKey(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		sealed, err := seal(rand.Reader, k.PublicKey(), sc, share)
		if err != nil {
			t.Fatalf("%v: seal: %v", curve, err)
		}
		if bytes.Contains(sealed, share[:16]) {
			t.Fatalf("%v: sealed share contains the plaintext", curve)
		}
		got, err := unseal(sealed, k.PublicKey(), sc, softAgree(k))
		if err != nil {
			t.Fatalf("%v: unseal: %v", curve, err)
		}
		if !bytes.Equal(got, share) {
			t.Fatalf("%v: unsealed %q, want %q", curve, got, share)
		}
		again, _ := seal(rand.Reader, k.PublicKey(), sc, share)
		if bytes.Equal(again, sealed) {
			t.Fatalf("%v: two seals of one share are equal", curve)
		}
	}
}

// TestSealBinding checks that a sealed share opens only for the card, slot,
// set and index it was sealed for, and that any flipped byte is caught.
func TestSealBinding(t *testing.T) {
	k, _ := ecdh.P256().GenerateKey(rand.Reader)
	other, _ := ecdh.P256().GenerateKey(rand.Reader)
	sc := sealContext{Serial: 7, Slot: 0x82, SetID: [16]byte{9}, Index: 1}
	sealed, err := seal(rand.Reader, k.PublicKey(), sc, []byte("share"))
	if err != nil {
		t.Fatal(err)
	}
	flip := func(i int) []byte {
		b := bytes.Clone(sealed)
		b[i] ^= 1
		return b
	}
	cases := []struct {
		name   string
		sealed []byte
		sc     sealContext
		key    *ecdh.PrivateKey
	}{
		{"other serial", sealed, sealContext{8, 0x82, [16]byte{9}, 1}, k},
		{"other slot", sealed, sealContext{7, 0x83, [16]byte{9}, 1}, k},
		{"other set", sealed, sealContext{7, 0x82, [16]byte{8}, 1}, k},
		{"other index", sealed, sealContext{7, 0x82, [16]byte{9}, 2}, k},
		{"other key", sealed, sc, other},
		{"flipped suite", flip(0), sc, k},
		{"flipped ephemeral key", flip(5), sc, k},
		{"flipped ciphertext", flip(70), sc, k},
		{"flipped tag", flip(len(sealed) - 1), sc, k},
		{"truncated", sealed[:60], sc, k},
		{"empty", nil, sc, k},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := unseal(c.sealed, c.key.PublicKey(), c.sc, softAgree(c.key))
			if err == nil {
				t.Fatal("opened")
			}
			if !errors.Is(err, errSealed) {
				t.Fatalf("err = %v, want errSealed", err)
			}
		})
	}
}

func TestSealRejectsOtherCurves(t *testing.T) {
	k, _ := ecdh.P384().GenerateKey(rand.Reader)
	if _, err := seal(rand.Reader, k.PublicKey(), sealContext{}, []byte("x")); err == nil {
		t.Fatal("sealed to a P-384 key")
	}
}
