package hsm

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"os/exec"
	"strings"
	"testing"
)

// TestCMACVectors checks AES-128 examples of RFC 4493 section 4.
func TestCMACVectors(t *testing.T) {
	key := unhexT(t, "2b7e151628aed2a6abf7158809cf4f3c")
	msg := unhexT(t, "6bc1bee22e409f96e93d7e117393172a"+
		"ae2d8a571e03ac9c9eb76fac45af8e51"+
		"30c81c46a35ce411e5fbc1191a0a52ef"+
		"f69f2445df4f9b17ad2b417be66c3710")
	for _, v := range []struct {
		n   int
		mac string
	}{
		{0, "bb1d6929e95937287fa37d129b756746"},
		{16, "070a16b46b4d4144f79bdd9dd04a287c"},
		{40, "dfa66747de9ae63030ca32611497c827"},
		{64, "51f0bebf7e3b9d92fc49741779363cfe"},
	} {
		got, err := aesCMAC(key, msg[:v.n])
		if err != nil || hex.EncodeToString(got) != v.mac {
			t.Errorf("CMAC(len %d) = %x, %v; want %s", v.n, got, err, v.mac)
		}
	}
}

// TestCheckMatchesOpenSSL computes AES check values with OpenSSL, which
// this package did not write, and compares with ComputeCheck.
func TestCheckMatchesOpenSSL(t *testing.T) {
	openssl := needTool(t, "openssl")
	for _, n := range []int{16, 24, 32} {
		key := make([]byte, n)
		rand.Read(key)
		hexKey := hex.EncodeToString(key)
		bits := map[int]string{16: "128", 24: "192", 32: "256"}[n]

		cmd := exec.Command(openssl, "enc", "-aes-"+bits+"-ecb", "-nopad",
			"-K", hexKey)
		cmd.Stdin = bytes.NewReader(make([]byte, 16))
		ecb, err := cmd.Output()
		if err != nil {
			t.Fatalf("openssl enc: %v", err)
		}
		cmd = exec.Command(openssl, "mac", "-cipher", "AES-"+bits+"-CBC",
			"-macopt", "hexkey:"+hexKey, "CMAC")
		cmd.Stdin = bytes.NewReader(make([]byte, 16))
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("openssl mac: %v", err)
		}
		mac := unhexT(t, strings.TrimSpace(string(out)))

		kind := map[int]Kind{16: KindAES128, 24: KindAES192, 32: KindAES256}[n]
		c, err := ComputeCheck(Key{Kind: kind, Secret: key})
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(c.ECB, ecb[:3]) || !bytes.Equal(c.KCV, mac[:3]) {
			t.Errorf("aes-%s: ecb %x kcv %x; openssl ecb %x cmac %x", bits,
				c.ECB, c.KCV, ecb[:3], mac[:3])
		}
	}
}
