package hsm

import (
	"bytes"
	"crypto/aes"
	"crypto/rand"
	"encoding/hex"
	"os/exec"
	"strings"
	"testing"
)

func unhexT(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestKWPVectors checks the two examples of RFC 5649 section 6.
func TestKWPVectors(t *testing.T) {
	kek := unhexT(t, "5840df6e29b02af1 ab493b705bf16ea1 ae8338f4dcc176a8")
	for _, v := range []struct{ key, wrapped string }{
		{"c37b7e6492584340 bed1220780894115 5068f738",
			"138bdeaa9b8fa7fc 61f97742e72248ee 5ae6ae5360d1ae6a 5f54f373fa543b6a"},
		{"466f7250617369", "afbeb0f07dfbf541 9200f2ccb50bb24f"},
	} {
		key, want := unhexT(t, v.key), unhexT(t, v.wrapped)
		got, err := kwpWrap(kek, key)
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("kwpWrap(%x) = %x, %v; want %x", key, got, err, want)
		}
		back, err := kwpUnwrap(kek, want)
		if err != nil || !bytes.Equal(back, key) {
			t.Errorf("kwpUnwrap(%x) = %x, %v; want %x", want, back, err, key)
		}
	}
}

// TestWrapWVectors checks the RFC 3394 core against section 4.1 and 4.6
// of that RFC, with its default initial value.
func TestWrapWVectors(t *testing.T) {
	iv := [8]byte{0xa6, 0xa6, 0xa6, 0xa6, 0xa6, 0xa6, 0xa6, 0xa6}
	for _, v := range []struct{ kek, data, wrapped string }{
		{"000102030405060708090A0B0C0D0E0F",
			"00112233445566778899AABBCCDDEEFF",
			"1FA68B0A8112B447 AEF34BD8FB5A7B82 9D3E862371D2CFE5"},
		{"000102030405060708090A0B0C0D0E0F101112131415161718191A1B1C1D1E1F",
			"00112233445566778899AABBCCDDEEFF000102030405060708090A0B0C0D0E0F",
			"28C9F404C4B810F4 CBCCB35CFB87F826 3F5786E2D80ED326 " +
				"CBC7F0E71A99F43B FB988B9B7A02DD21"},
	} {
		block, err := aes.NewCipher(unhexT(t, v.kek))
		if err != nil {
			t.Fatal(err)
		}
		want := unhexT(t, v.wrapped)
		if got := wrapW(block, iv, unhexT(t, v.data)); !bytes.Equal(got, want) {
			t.Errorf("W = %x, want %x", got, want)
		}
		a, p := unwrapW(block, want)
		if a != iv || !bytes.Equal(p, unhexT(t, v.data)) {
			t.Errorf("W⁻¹ = %x %x", a, p)
		}
	}
}

func TestKWPRefusesDamage(t *testing.T) {
	kek := make([]byte, 32)
	rand.Read(kek)
	for _, n := range []int{1, 7, 8, 9, 16, 32, 1217} {
		p := make([]byte, n)
		rand.Read(p)
		c, err := kwpWrap(kek, p)
		if err != nil {
			t.Fatal(err)
		}
		for i := range c {
			bad := bytes.Clone(c)
			bad[i] ^= 0x01
			if _, err := kwpUnwrap(kek, bad); err == nil {
				t.Fatalf("len %d: flipped byte %d accepted", n, i)
			}
		}
		if _, err := kwpUnwrap(kek, c[:len(c)-8]); err == nil && len(c) > 16 {
			t.Errorf("len %d: truncated wrap accepted", n)
		}
	}
	if _, err := kwpWrap(kek, nil); err == nil {
		t.Error("empty input wrapped")
	}
}

// TestKWPMatchesOpenSSL compares with OpenSSL's id-aes256-wrap-pad for
// lengths around the block edges.
func TestKWPMatchesOpenSSL(t *testing.T) {
	openssl := needTool(t, "openssl")
	kek := make([]byte, 32)
	rand.Read(kek)
	for _, n := range []int{1, 8, 15, 16, 17, 32, 33, 1217} {
		p := make([]byte, n)
		rand.Read(p)
		cmd := exec.Command(openssl, "enc", "-id-aes256-wrap-pad",
			"-K", hex.EncodeToString(kek), "-iv", "A65959A6")
		cmd.Stdin = bytes.NewReader(p)
		want, err := cmd.Output()
		if err != nil {
			t.Fatalf("openssl: %v", err)
		}
		got, err := kwpWrap(kek, p)
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("len %d: got %x, openssl %x (%v)", n, got, want, err)
		}
	}
}
