package hsm

import (
	"crypto/aes"
	"crypto/subtle"
)

// aesCMAC computes AES-CMAC (RFC 4493, NIST SP 800-38B) of msg under key.
// The package needs it outside a token only to compute expected check
// values (ComputeCheck); inside a token CKM_AES_CMAC does the work.
func aesCMAC(key, msg []byte) ([]byte, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}

	// Subkeys K1 and K2 (RFC 4493 section 2.3).
	var l, k1, k2 [16]byte
	block.Encrypt(l[:], l[:])
	dbl(&k1, &l)
	dbl(&k2, &k1)
	defer func() { clear(l[:]); clear(k1[:]); clear(k2[:]) }()

	// Split into blocks; the last one is padded and masked (section 2.4).
	n := (len(msg) + 15) / 16
	complete := n > 0 && len(msg)%16 == 0
	if n == 0 {
		n = 1
	}
	var last [16]byte
	rest := msg[(n-1)*16:]
	copy(last[:], rest)
	if complete {
		subtle.XORBytes(last[:], last[:], k1[:])
	} else {
		last[len(rest)] = 0x80
		subtle.XORBytes(last[:], last[:], k2[:])
	}

	var x [16]byte
	for i := 0; i < n-1; i++ {
		subtle.XORBytes(x[:], x[:], msg[i*16:i*16+16])
		block.Encrypt(x[:], x[:])
	}
	subtle.XORBytes(x[:], x[:], last[:])
	block.Encrypt(x[:], x[:])
	return x[:], nil
}

// dbl doubles in GF(2^128) with the CMAC polynomial: a left shift by one
// bit, then 0x87 into the last byte if the top bit fell off.
func dbl(dst, src *[16]byte) {
	carry := src[0] >> 7
	for i := 0; i < 15; i++ {
		dst[i] = src[i]<<1 | src[i+1]>>7
	}
	dst[15] = src[15]<<1 ^ 0x87*carry
}
