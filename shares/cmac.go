package shares

import (
	"crypto/aes"
	"crypto/subtle"
)

// aesCMAC computes AES-CMAC (NIST SP 800-38B, RFC 4493) of msg under key.
// It is used only for check values, where msg is short.
func aesCMAC(key, msg []byte) ([]byte, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}

	// Subkeys K1 and K2 come from doubling L = E(K, 0^128) in GF(2^128).
	l := make([]byte, 16)
	block.Encrypt(l, l)
	k1 := gfDouble(l)
	k2 := gfDouble(k1)

	n := (len(msg) + 15) / 16
	complete := n > 0 && len(msg)%16 == 0
	if n == 0 {
		n = 1
	}

	last := make([]byte, 16)
	tail := msg[(n-1)*16:]
	if complete {
		subtle.XORBytes(last, tail, k1)
	} else {
		copy(last, tail)
		last[len(tail)] = 0x80
		subtle.XORBytes(last, last, k2)
	}

	x := make([]byte, 16)
	for i := 0; i < n-1; i++ {
		subtle.XORBytes(x, x, msg[i*16:(i+1)*16])
		block.Encrypt(x, x)
	}
	subtle.XORBytes(x, x, last)
	block.Encrypt(x, x)
	return x, nil
}

// gfDouble multiplies a 128-bit block by x in GF(2^128) with the CMAC
// polynomial x^128 + x^7 + x^2 + x + 1.
func gfDouble(in []byte) []byte {
	out := make([]byte, 16)
	carry := in[0] >> 7
	for i := 0; i < 15; i++ {
		out[i] = in[i]<<1 | in[i+1]>>7
	}
	out[15] = in[15] << 1
	out[15] ^= 0x87 * carry
	return out
}
