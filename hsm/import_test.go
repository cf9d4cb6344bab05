package hsm

import (
	"bytes"
	"crypto/rand"
	"errors"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/miekg/pkcs11"
)

// TestImportEveryKindBothPaths imports an AES-256, RSA-3072, P-384 and
// Ed25519 key made by openssl by both paths, and checks for each: the
// proof inside the token, the secret attribute unreadable, the usage
// attributes written, and pkcs11-tool seeing the object.
func TestImportEveryKindBothPaths(t *testing.T) {
	h := newSoftHSM(t)
	h.initToken("kinds")
	keys := map[string]testKey{
		"aes256":  aesKey(t, 256),
		"rsa3072": rsaKey(t, 3072),
		"p384":    p384Key(t),
		"ed25519": ed25519Key(t),
	}

	s := h.open("kinds")
	softhsm26 := s.Info().Model == "SoftHSM v2" && s.Info().Firmware == "2.6"
	for _, path := range []Path{PathCreate, PathUnwrap} {
		// One bundle of mixed kinds per path, so one transport key.
		var bundle []Key
		var made []testKey
		for name, tk := range keys {
			label := name + "-" + path.String()
			if tk.kind == KindEd25519 && path == PathUnwrap && softhsm26 {
				// SoftHSM 2.6 cannot unwrap Ed25519 PKCS#8; the import
				// must fail cleanly and say so.
				_, err := s.ImportKey(bg, tk.key(label), Options{Path: path})
				if err == nil || !strings.Contains(err.Error(), "Ed25519") {
					t.Errorf("%s: err = %v, want the Ed25519 refusal",
						label, err)
				}
				continue
			}
			bundle = append(bundle, tk.key(label))
			made = append(made, tk)
		}
		out, err := s.Import(bg, bundle, Options{Path: path})
		if err != nil {
			t.Fatalf("%v: %v", path, err)
		}
		for i, im := range out {
			checkProof(t, im.Label, made[i], im)
			checkObject(t, s, im.Label, made[i].kind)
			if im.Path != path {
				t.Errorf("%s: imported by %v", im.Label, im.Path)
			}
		}
	}

	peer := h.peerObjects("kinds")
	for name, tk := range keys {
		for _, path := range []string{"create", "unwrap"} {
			label := name + "-" + path
			block := peerBlock(peer, keyHeader(tk.kind), label)
			if name == "ed25519" && path == "unwrap" && softhsm26 {
				if block != "" {
					t.Errorf("pkcs11-tool sees %s, which must not exist",
						label)
				}
				continue
			}
			if block == "" {
				t.Errorf("pkcs11-tool does not see %s:\n%s", label, peer)
				continue
			}
			if !strings.Contains(block, "Access:     sensitive") {
				t.Errorf("pkcs11-tool does not show %s sensitive:\n%s",
					label, block)
			}
			if !tk.kind.IsSecret() &&
				peerBlock(peer, "Public Key Object", label) == "" {
				t.Errorf("pkcs11-tool sees no public key %s", label)
			}
		}
	}
}

func keyHeader(k Kind) string {
	if k.IsSecret() {
		return "Secret Key Object"
	}
	return "Private Key Object"
}

// peerBlock finds, in pkcs11-tool --list-objects output, the object whose
// header starts with header and whose label is label.
func peerBlock(out, header, label string) string {
	var block []string
	flush := func() string {
		b := strings.Join(block, "\n")
		if strings.HasPrefix(b, header) &&
			strings.Contains(b+"\n", "label:      "+label+"\n") {
			return b
		}
		return ""
	}
	for _, line := range strings.Split(out, "\n") {
		if line != "" && line[0] != ' ' {
			if b := flush(); b != "" {
				return b
			}
			block = nil
		}
		block = append(block, line)
	}
	return flush()
}

// checkProof checks that the token computed every expected value.
func checkProof(t *testing.T, label string, tk testKey, im Imported) {
	t.Helper()
	var want []string
	switch {
	case tk.kind.IsAES():
		want = []string{methodECB, methodCMAC}
		if !bytes.Equal(im.Proof.Got.ECB, tk.expect.ECB) ||
			!bytes.Equal(im.Proof.Got.KCV, tk.expect.KCV) {
			t.Errorf("%s: token computed %+v, openssl %+v", label,
				im.Proof.Got, tk.expect)
		}
	case tk.kind == KindHMAC:
		want = []string{methodHMAC}
	default:
		want = []string{methodSignature, methodSPKI}
		if !bytes.Equal(im.Proof.Got.SPKISHA256, tk.expect.SPKISHA256) {
			t.Errorf("%s: spki hash %x, openssl %x", label,
				im.Proof.Got.SPKISHA256, tk.expect.SPKISHA256)
		}
	}
	got := slices.Sorted(slices.Values(im.Proof.Proven))
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("%s: proven %v, want %v (skipped %v)", label, got, want,
			im.Proof.Skipped)
	}
}

// checkObject checks the key object's attributes on the token.
func checkObject(t *testing.T, s *Session, label string, kind Kind) {
	t.Helper()
	class := uint(pkcs11.CKO_PRIVATE_KEY)
	secretAttr := uint(pkcs11.CKA_VALUE)
	switch {
	case kind.IsSecret():
		class = pkcs11.CKO_SECRET_KEY
	case kind == KindRSA:
		secretAttr = pkcs11.CKA_PRIVATE_EXPONENT
	}
	hs, err := s.find(pkcs11.NewAttribute(pkcs11.CKA_CLASS, class),
		pkcs11.NewAttribute(pkcs11.CKA_LABEL, label))
	if err != nil || len(hs) != 1 {
		t.Fatalf("%s: found %d key objects, %v", label, len(hs), err)
	}
	h := hs[0]

	_, err = s.attrs(h, secretAttr)
	if !isRV(err, pkcs11.CKR_ATTRIBUTE_SENSITIVE) {
		t.Errorf("%s: reading the secret gave %v, want "+
			"CKR_ATTRIBUTE_SENSITIVE", label, err)
	}
	u := DefaultUsage(kind)
	for attr, want := range map[uint]bool{
		pkcs11.CKA_TOKEN: true, pkcs11.CKA_PRIVATE: true,
		pkcs11.CKA_SENSITIVE: true, pkcs11.CKA_EXTRACTABLE: false,
		pkcs11.CKA_SIGN: u.Sign, pkcs11.CKA_DECRYPT: u.Decrypt,
		pkcs11.CKA_UNWRAP: u.Unwrap, pkcs11.CKA_DERIVE: false,
	} {
		if got := s.attrBool(h, attr); got != want {
			t.Errorf("%s: attribute 0x%X is %v, want %v", label, attr, got,
				want)
		}
	}
	if kind.IsSecret() {
		return
	}
	pubs, err := s.find(
		pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_PUBLIC_KEY),
		pkcs11.NewAttribute(pkcs11.CKA_LABEL, label))
	if err != nil || len(pubs) != 1 {
		t.Errorf("%s: %d public key objects, %v", label, len(pubs), err)
	}
}

// TestImportHMACAndSmallAES covers the kinds the brief lists beside the
// four above: a generic HMAC secret, AES-128 and AES-192, and P-256.
func TestImportHMACAndSmallAES(t *testing.T) {
	h := newSoftHSM(t)
	h.initToken("more")
	s := h.open("more")
	for _, path := range []Path{PathCreate, PathUnwrap} {
		for name, tk := range map[string]testKey{
			"hmac": hmacKey(t, 48), "aes128": aesKey(t, 128),
			"aes192": aesKey(t, 192), "p256": p256Key(t),
		} {
			label := name + "-" + path.String()
			im, err := s.ImportKey(bg, tk.key(label), Options{Path: path})
			if err != nil {
				t.Errorf("%s: %v", label, err)
				continue
			}
			checkProof(t, label, tk, im)
			checkObject(t, s, label, tk.kind)
		}
	}
}

// TestImportShortHMACRollsBack: SoftHSM will not HMAC-SHA256 with a key
// under 32 bytes, so the proof fails after the object exists; the object
// must go.
func TestImportShortHMACRollsBack(t *testing.T) {
	h := newSoftHSM(t)
	h.initToken("short")
	s := h.open("short")
	_, err := s.ImportKey(bg, hmacKey(t, 16).key("short-hmac"), Options{})
	if err == nil || !strings.Contains(err.Error(), "short-hmac") {
		t.Fatalf("err = %v, want a failure naming the key", err)
	}
	s.Close()
	h.assertEmpty("short")
}

func TestImportNamedTransport(t *testing.T) {
	h := newSoftHSM(t)
	h.initToken("named")
	out, err := h.tool("--token-label", "named", "--login", "--pin",
		"env:CUSTOS_TEST_PIN", "--keypairgen", "--key-type", "rsa:2048",
		"--usage-wrap", "--label", "import-key", "--id", "99")
	if err != nil {
		t.Fatalf("pkcs11-tool --keypairgen: %v\n%s", err, out)
	}

	s := h.open("named")
	tk := aesKey(t, 256)
	im, err := s.ImportKey(bg, tk.key("via-named"), Options{Path: PathUnwrap,
		TransportLabel: "import-key"})
	if err != nil {
		t.Fatal(err)
	}
	checkProof(t, "via-named", tk, im)

	_, err = s.ImportKey(bg, aesKey(t, 256).key("no-such"),
		Options{Path: PathUnwrap, TransportLabel: "missing"})
	if !errors.Is(err, ErrObjectNotFound) {
		t.Errorf("missing transport key: err = %v", err)
	}
}

// TestImportBundleRollsBackPartWay: the 37th of 50 keys carries a wrong
// expected check value; the 36 before it must be removed too.
func TestImportBundleRollsBackPartWay(t *testing.T) {
	h := newSoftHSM(t)
	h.initToken("bundle")
	s := h.open("bundle")
	keys := bundle(t, 50, "k")
	keys[36].Expect.ECB = []byte{0xde, 0xad, 0x00}

	var progress int
	_, err := s.Import(bg, keys, Options{
		Progress: func(done, total int) { progress = done }})
	var ce *CheckError
	if !errors.As(err, &ce) || ce.Method != methodECB ||
		!strings.Contains(err.Error(), `"k-36"`) {
		t.Fatalf("err = %v, want an ecb mismatch on k-36", err)
	}
	if progress != 36 {
		t.Errorf("progress reached %d, want 36", progress)
	}
	s.Close()
	h.assertEmpty("bundle")
}

// bundle makes n AES-256 keys with check values from ComputeCheck, which
// TestCheckMatchesOpenSSL ties to openssl.
func bundle(t testing.TB, n int, prefix string) []Key {
	keys := make([]Key, n)
	for i := range keys {
		secret := make([]byte, 32)
		if _, err := rand.Read(secret); err != nil {
			t.Fatal(err)
		}
		k := Key{Label: prefix + "-" + strconv.Itoa(i), Kind: KindAES256,
			Secret: secret, ID: []byte(prefix + strconv.Itoa(i))}
		c, err := ComputeCheck(k)
		if err != nil {
			t.Fatal(err)
		}
		k.Expect = c
		keys[i] = k
	}
	return keys
}
