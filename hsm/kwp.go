package hsm

import (
	"crypto/aes"
	"crypto/cipher"
	"encoding/binary"
	"errors"
	"fmt"
)

// This file implements AES Key Wrap with Padding (RFC 5649) on top of the
// wrapping function W of AES Key Wrap (RFC 3394 section 2.2.1). It is the
// form CKM_AES_KEY_WRAP_PAD unwraps inside a token.

// kwpAIV is the 32-bit constant of the alternative initial value (RFC
// 5649 section 3); the message length indicator follows it.
const kwpAIV = 0xA65959A6

// errKWPIntegrity is the one error an unwrap gives for any failed check,
// so a caller learns nothing about which check failed.
var errKWPIntegrity = errors.New("key wrap integrity check failed")

// kwpWrap wraps p under the AES key kek (RFC 5649 section 4.1).
func kwpWrap(kek, p []byte) ([]byte, error) {
	if len(p) == 0 || uint64(len(p)) > 0xFFFFFFFF {
		return nil, fmt.Errorf("wrapping %d bytes: length out of range",
			len(p))
	}
	block, err := aes.NewCipher(kek)
	if err != nil {
		return nil, fmt.Errorf("wrapping: %w", err)
	}

	var aiv [8]byte
	binary.BigEndian.PutUint32(aiv[:4], kwpAIV)
	binary.BigEndian.PutUint32(aiv[4:], uint32(len(p)))
	padded := make([]byte, (len(p)+7)/8*8)
	copy(padded, p)
	defer clear(padded)

	if len(padded) == 8 {
		// A single block is encrypted once, in ECB mode (step 2).
		out := make([]byte, 16)
		copy(out, aiv[:])
		copy(out[8:], padded)
		block.Encrypt(out, out)
		return out, nil
	}
	return wrapW(block, aiv, padded), nil
}

// kwpUnwrap reverses kwpWrap and checks the integrity of the result
// (RFC 5649 section 4.2 and section 3).
func kwpUnwrap(kek, c []byte) ([]byte, error) {
	if len(c) < 16 || len(c)%8 != 0 {
		return nil, fmt.Errorf("unwrapping %d bytes: %w", len(c),
			errKWPIntegrity)
	}
	block, err := aes.NewCipher(kek)
	if err != nil {
		return nil, fmt.Errorf("unwrapping: %w", err)
	}

	var aiv [8]byte
	var padded []byte
	if len(c) == 16 {
		out := make([]byte, 16)
		block.Decrypt(out, c)
		copy(aiv[:], out[:8])
		padded = out[8:]
	} else {
		aiv, padded = unwrapW(block, c)
	}

	p, ok := kwpCheck(aiv, padded)
	if !ok {
		clear(padded)
		return nil, errKWPIntegrity
	}
	return p, nil
}

// kwpCheck verifies the AIV, the length indicator and the zero padding,
// and returns the plaintext without padding. Only tests unwrap outside a
// token, so the checks need not run in constant time.
func kwpCheck(aiv [8]byte, padded []byte) ([]byte, bool) {
	n := uint64(len(padded))
	mli := uint64(binary.BigEndian.Uint32(aiv[4:]))
	if binary.BigEndian.Uint32(aiv[:4]) != kwpAIV ||
		mli+8 <= n || mli > n {
		return nil, false
	}
	var pad byte
	for _, b := range padded[mli:] {
		pad |= b
	}
	if pad != 0 {
		return nil, false
	}
	return padded[:mli], true
}

// wrapW is the wrapping process W of RFC 3394 section 2.2.1 with initial
// value iv over the 64-bit blocks of p (at least two).
func wrapW(block cipher.Block, iv [8]byte, p []byte) []byte {
	n := len(p) / 8
	out := make([]byte, 8+len(p))
	copy(out[8:], p)
	a := iv
	var b [16]byte
	for j := 0; j < 6; j++ {
		for i := 1; i <= n; i++ {
			r := out[8*i : 8*i+8]
			copy(b[:8], a[:])
			copy(b[8:], r)
			block.Encrypt(b[:], b[:])
			t := uint64(n*j + i)
			binary.BigEndian.PutUint64(a[:],
				binary.BigEndian.Uint64(b[:8])^t)
			copy(r, b[8:])
		}
	}
	copy(out, a[:])
	clear(b[:])
	return out
}

// unwrapW is the unwrapping process W⁻¹ of RFC 3394 section 2.2.2. It
// returns the recovered initial value and the plaintext blocks.
func unwrapW(block cipher.Block, c []byte) ([8]byte, []byte) {
	n := len(c)/8 - 1
	var a [8]byte
	copy(a[:], c[:8])
	p := make([]byte, 8*n)
	copy(p, c[8:])
	var b [16]byte
	for j := 5; j >= 0; j-- {
		for i := n; i >= 1; i-- {
			r := p[8*(i-1) : 8*i]
			t := uint64(n*j + i)
			binary.BigEndian.PutUint64(b[:8],
				binary.BigEndian.Uint64(a[:])^t)
			copy(b[8:], r)
			block.Decrypt(b[:], b[:])
			copy(a[:], b[:8])
			copy(r, b[8:])
		}
	}
	clear(b[:])
	return a, p
}
