package hsm

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/miekg/pkcs11"
)

// TestVerifyPeerKey proves a key pkcs11-tool generated on the token: the
// expected SPKI hash comes from pkcs11-tool's own export of the public
// key, so neither side of the comparison is ours.
func TestVerifyPeerKey(t *testing.T) {
	h := newSoftHSM(t)
	h.initToken("peer")
	for _, kt := range []string{"EC:secp384r1", "rsa:2048", "EC:edwards25519"} {
		label := "peer-" + kt
		out, err := h.tool("--token-label", "peer", "--login", "--pin",
			"env:CUSTOS_TEST_PIN", "--keypairgen", "--key-type", kt,
			"--usage-sign", "--label", label, "--id", "4242")
		if err != nil {
			t.Fatalf("pkcs11-tool --keypairgen %s: %v\n%s", kt, err, out)
		}
		sum := sha256.Sum256(h.peerSPKI(label, kt))

		s := h.open("peer")
		pr, err := s.VerifyObject(ObjectRef{Label: label},
			Check{SPKISHA256: sum[:]})
		if err != nil {
			t.Errorf("%s: %v", kt, err)
		} else if len(pr.Proven) != 2 {
			t.Errorf("%s: proven %v", kt, pr.Proven)
		}

		sum[0] ^= 1
		_, err = s.VerifyObject(ObjectRef{Label: label},
			Check{SPKISHA256: sum[:]})
		if !errors.Is(err, ErrCheckMismatch) {
			t.Errorf("%s: wrong hash: err = %v", kt, err)
		}
		s.Close()
	}
}

// TestVerifyAndList imports keys, proves them again by label and by ID,
// and lists them with the check values the token computes now.
func TestVerifyAndList(t *testing.T) {
	h := newSoftHSM(t)
	h.initToken("list")
	s := h.open("list")
	aes := aesKey(t, 256)
	mac := hmacKey(t, 32)
	ed := ed25519Key(t)
	keys := []Key{aes.key("aes"), mac.key("mac"), ed.key("ed")}
	keys[0].ID = []byte{0xa1}
	if _, err := s.Import(bg, keys, Options{}); err != nil {
		t.Fatal(err)
	}
	unwrapped := aesKey(t, 128)
	if _, err := s.ImportKey(bg, unwrapped.key("aes-unwrapped"),
		Options{Path: PathUnwrap, TransportBits: 2048}); err != nil {
		t.Fatal(err)
	}

	for label, want := range map[string]Check{
		"aes": aes.expect, "mac": mac.expect, "ed": ed.expect,
		"aes-unwrapped": unwrapped.expect,
	} {
		if _, err := s.VerifyObject(ObjectRef{Label: label},
			want); err != nil {
			t.Errorf("%s: %v", label, err)
		}
	}
	// Found by ID alone, the proof names the key by its label too, so
	// that "hsm verify --set" does not print key "".
	pr, err := s.VerifyObject(ObjectRef{ID: []byte{0xa1}},
		Check{ECB: aes.expect.ECB})
	if err != nil {
		t.Errorf("by id: %v", err)
	} else if pr.Object != `secret key "aes" (id a1)` {
		t.Errorf("by id: proof names %q", pr.Object)
	}
	_, err = s.VerifyObject(ObjectRef{Label: "aes"},
		Check{ECB: []byte{1, 2, 3}})
	var ce *CheckError
	if !errors.As(err, &ce) || !bytes.Equal(ce.Got, aes.expect.ECB) {
		t.Errorf("wrong ecb: err = %v", err)
	}
	if _, err := s.VerifyObject(ObjectRef{Label: "nope"},
		aes.expect); !errors.Is(err, ErrObjectNotFound) {
		t.Errorf("missing object: err = %v", err)
	}
	if _, err := s.VerifyObject(ObjectRef{Label: "aes"},
		Check{HMAC: mac.expect.HMAC}); err == nil {
		t.Error("an hmac value accepted for an aes key")
	}

	// A key custos did not import is listed only when all are asked for.
	out, err := h.tool("--token-label", "list", "--login", "--pin",
		"env:CUSTOS_TEST_PIN", "--keygen", "--key-type", "AES:32",
		"--label", "foreign")
	if err != nil {
		t.Fatalf("pkcs11-tool --keygen: %v\n%s", err, out)
	}
	objs, err := s.List(false)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]Object{}
	for _, o := range objs {
		got[o.Label] = o
	}
	if len(got) != 4 || !got["aes"].Custos {
		t.Fatalf("List(false) = %+v", objs)
	}
	for label, want := range map[string]Check{
		"aes": aes.expect, "mac": mac.expect, "ed": ed.expect,
		"aes-unwrapped": unwrapped.expect,
	} {
		c := got[label].Check
		if !bytes.Equal(c.ECB, want.ECB) || !bytes.Equal(c.KCV, want.KCV) ||
			!bytes.Equal(c.HMAC, want.HMAC) ||
			!bytes.Equal(c.SPKISHA256, want.SPKISHA256) {
			t.Errorf("%s listed with %+v, want %+v (notes %v)", label, c,
				want, got[label].Notes)
		}
	}
	if got["aes"].Kind != "aes-256" || got["ed"].Kind != "ed25519" {
		t.Errorf("kinds: %q %q", got["aes"].Kind, got["ed"].Kind)
	}
	all, err := s.List(true)
	if err != nil || len(all) != 5 {
		t.Errorf("List(true) = %d objects, %v", len(all), err)
	}
}

// peerSPKI gets a public key's SPKI from pkcs11-tool. Its --read-object
// exports RSA and P-256 keys; for P-384 and Ed25519 it fails in OpenSC
// 0.23 ("cannot create EVP_PKEY"), so the SPKI is assembled from the
// EC_POINT --list-objects prints and the fixed DER prefix of RFC 5480 or
// RFC 8410.
func (h *softHSM) peerSPKI(label, kt string) []byte {
	h.t.Helper()
	prefix := map[string]string{
		"EC:secp384r1":    "3076301006072a8648ce3d020106052b81040022036200",
		"EC:edwards25519": "302a300506032b6570032100",
	}[kt]
	if prefix == "" {
		der := filepath.Join(h.dir, "pub.der")
		os.Remove(der)
		out, err := h.tool("--token-label", "peer", "--read-object",
			"--type", "pubkey", "--label", label, "-o", der)
		if err != nil {
			h.t.Fatalf("pkcs11-tool --read-object: %v\n%s", err, out)
		}
		spki, err := os.ReadFile(der)
		if err != nil {
			h.t.Fatal(err)
		}
		return spki
	}

	block := peerBlock(h.peerObjects("peer"), "Public Key Object", label)
	for _, line := range strings.Split(block, "\n") {
		v, ok := strings.CutPrefix(strings.TrimSpace(line), "EC_POINT:")
		if !ok {
			continue
		}
		point := unhexT(h.t, strings.TrimSpace(v))
		if len(point) < 2 || point[0] != 0x04 || int(point[1]) != len(point)-2 {
			h.t.Fatalf("EC_POINT %x is not a short OCTET STRING", point)
		}
		return append(unhexT(h.t, prefix), point[2:]...)
	}
	h.t.Fatalf("pkcs11-tool shows no EC_POINT for %s:\n%s", label, block)
	return nil
}

// TestVerifyWithoutEncrypt: a key that may not encrypt is still proven
// by its ECB value, from the CKA_CHECK_VALUE the token computed.
func TestVerifyWithoutEncrypt(t *testing.T) {
	h := newSoftHSM(t)
	h.initToken("noenc")
	s := h.open("noenc")
	tk := aesKey(t, 256)
	k := tk.key("mac-only")
	k.Usage = &Usage{Sign: true, Verify: true}
	im, err := s.ImportKey(bg, k, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(im.Proof.Proven) != 2 {
		t.Errorf("proven %v, skipped %v", im.Proof.Proven, im.Proof.Skipped)
	}
	if s.attrBool(mustFind(t, s, "mac-only"), pkcs11.CKA_ENCRYPT) {
		t.Error("key may encrypt")
	}
	pr, err := s.VerifyObject(ObjectRef{Label: "mac-only"},
		Check{ECB: tk.expect.ECB})
	if err != nil || !bytes.Equal(pr.Got.ECB, tk.expect.ECB) {
		t.Errorf("ecb by CKA_CHECK_VALUE: %+v, %v", pr, err)
	}
	_, err = s.VerifyObject(ObjectRef{Label: "mac-only"},
		Check{ECB: []byte{0, 0, 0}})
	if !errors.Is(err, ErrCheckMismatch) {
		t.Errorf("wrong ecb: %v", err)
	}
}

func mustFind(t *testing.T, s *Session, label string) pkcs11.ObjectHandle {
	t.Helper()
	hs, err := s.find(pkcs11.NewAttribute(pkcs11.CKA_LABEL, label))
	if err != nil || len(hs) != 1 {
		t.Fatalf("finding %s: %d objects, %v", label, len(hs), err)
	}
	return hs[0]
}
