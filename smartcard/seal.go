package smartcard

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdh"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// Sealed shares. A share is sealed to the public key of its card slot:
//
//	e        = fresh key pair on the slot key's curve (P-256 or X25519)
//	z        = ECDH(e, slot key)                   (on the card when opening)
//	k ‖ iv   = HKDF-SHA256(z, salt = "", info, 44 bytes)
//	info     = "custos card seal v1\x00" ‖ suite ‖ serial (4, big endian) ‖
//	           slot (1) ‖ set ID (16) ‖ index (1) ‖ e.pub ‖ slot.pub
//	sealed   = suite (1) ‖ e.pub ‖ AES-256-GCM(k, iv, share, aad = info)
//
// The key is used once, so a derived nonce is safe. Binding the serial, slot
// and set in info means a sealed share copied to another card, slot or set
// does not open.

// Seal suites: one per slot key curve.
const (
	suiteP256   = 1
	suiteX25519 = 2
)

const sealInfoPrefix = "custos card seal v1\x00"

// sealContext is what a sealed share is bound to.
type sealContext struct {
	Serial uint32
	Slot   Slot
	SetID  [16]byte
	Index  int
}

var errSealed = errors.New("sealed share does not open")

func suiteOf(pub *ecdh.PublicKey) (byte, error) {
	switch pub.Curve() {
	case ecdh.P256():
		return suiteP256, nil
	case ecdh.X25519():
		return suiteX25519, nil
	}
	return 0, fmt.Errorf("unsupported slot key curve %v", pub.Curve())
}

func curveOf(suite byte) (ecdh.Curve, int, bool) {
	switch suite {
	case suiteP256:
		return ecdh.P256(), 65, true
	case suiteX25519:
		return ecdh.X25519(), 32, true
	}
	return nil, 0, false
}

// seal encrypts share to the slot key pub.
func seal(rnd io.Reader, pub *ecdh.PublicKey, c sealContext, share []byte) ([]byte, error) {
	suite, err := suiteOf(pub)
	if err != nil {
		return nil, err
	}
	eph, err := pub.Curve().GenerateKey(rnd)
	if err != nil {
		return nil, fmt.Errorf("generating ephemeral key: %w", err)
	}
	z, err := eph.ECDH(pub)
	if err != nil {
		return nil, fmt.Errorf("agreeing key: %w", err)
	}
	defer clear(z)

	epub := eph.PublicKey().Bytes()
	info := sealInfo(suite, c, epub, pub.Bytes())
	aead, iv, err := sealAEAD(z, info)
	if err != nil {
		return nil, err
	}
	out := append([]byte{suite}, epub...)
	return aead.Seal(out, iv, share, info), nil
}

// unseal opens sealed with agree, which does ECDH between the slot's
// private key and the ephemeral public key (on the card).
func unseal(sealed []byte, pub *ecdh.PublicKey, c sealContext,
	agree func(*ecdh.PublicKey) ([]byte, error)) ([]byte, error) {
	if len(sealed) < 1 {
		return nil, errSealed
	}
	curve, n, ok := curveOf(sealed[0])
	if !ok || curve != pub.Curve() || len(sealed) < 1+n+16 {
		return nil, errSealed
	}
	epub, err := curve.NewPublicKey(sealed[1 : 1+n])
	if err != nil {
		return nil, errSealed
	}

	z, err := agree(epub)
	if err != nil {
		return nil, err
	}
	defer clear(z)

	info := sealInfo(sealed[0], c, sealed[1:1+n], pub.Bytes())
	aead, iv, err := sealAEAD(z, info)
	if err != nil {
		return nil, err
	}
	share, err := aead.Open(nil, iv, sealed[1+n:], info)
	if err != nil {
		return nil, errSealed
	}
	return share, nil
}

func sealInfo(suite byte, c sealContext, epub, pub []byte) []byte {
	info := append([]byte(sealInfoPrefix), suite)
	info = binary.BigEndian.AppendUint32(info, c.Serial)
	info = append(info, byte(c.Slot))
	info = append(info, c.SetID[:]...)
	info = append(info, byte(c.Index))
	info = append(info, epub...)
	return append(info, pub...)
}

func sealAEAD(z, info []byte) (cipher.AEAD, []byte, error) {
	okm, err := hkdf.Key(sha256.New, z, nil, string(info), 32+12)
	if err != nil {
		return nil, nil, fmt.Errorf("deriving key: %w", err)
	}
	defer clear(okm[:32])
	block, err := aes.NewCipher(okm[:32])
	if err != nil {
		return nil, nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, nil, err
	}
	return aead, okm[32:], nil
}

// randReader is the randomness custos uses; tests may replace it.
var randReader io.Reader = rand.Reader
