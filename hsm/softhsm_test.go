package hsm

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/miekg/pkcs11"
)

// The tests below run against SoftHSM2 with throw-away tokens. Each test
// writes its own softhsm2.conf, with its token directory in t.TempDir(),
// and points SOFTHSM2_CONF at it; nothing system-wide is touched. OpenSC's
// pkcs11-tool, which this project did not write, looks at the results.

const softhsmModule = "/usr/lib/softhsm/libsofthsm2.so"

// integration reports whether missing real parts must fail the tests.
func integration() bool { return os.Getenv("CUSTOS_INTEGRATION") == "1" }

// needTool finds a program, skipping the test if it is missing (failing
// under CUSTOS_INTEGRATION=1).
func needTool(t testing.TB, name string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err != nil {
		if integration() {
			t.Fatalf("%s is required with CUSTOS_INTEGRATION=1: %v", name,
				err)
		}
		t.Skipf("%s is not installed: %v", name, err)
	}
	return path
}

// softHSM is one test's private SoftHSM configuration.
type softHSM struct {
	t      testing.TB
	dir    string
	pin    string
	soPin  string
	pinURI string // pin-source value for the user PIN
}

func newSoftHSM(t testing.TB) *softHSM {
	t.Helper()
	if _, err := os.Stat(softhsmModule); err != nil {
		if integration() {
			t.Fatalf("SoftHSM is required with CUSTOS_INTEGRATION=1: %v",
				err)
		}
		t.Skipf("SoftHSM module missing: %v", err)
	}
	needTool(t, "softhsm2-util")

	dir := t.TempDir()
	tokens := filepath.Join(dir, "tokens")
	if err := os.Mkdir(tokens, 0o700); err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(dir, "softhsm2.conf")
	body := fmt.Sprintf("directories.tokendir = %s\n"+
		"objectstore.backend = file\nlog.level = ERROR\n", tokens)
	if err := os.WriteFile(conf, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("SOFTHSM2_CONF", conf)

	h := &softHSM{t: t, dir: dir, pin: randomPIN(t), soPin: randomPIN(t)}
	pinFile := filepath.Join(dir, "user.pin")
	writeSecret(t, pinFile, h.pin+"\n")
	h.pinURI = "file:" + pinFile
	t.Cleanup(func() {
		if n := loadedModules(); n != 0 {
			t.Errorf("%d PKCS#11 modules still loaded: a path forgot to "+
				"Close or release", n)
		}
	})
	return h
}

func randomPIN(t testing.TB) string {
	b := make([]byte, 6)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

func writeSecret(t testing.TB, path, content string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(content); err != nil {
		t.Fatal(err)
	}
}

// initToken initialises a free slot with the label and the test PINs.
func (h *softHSM) initToken(label string) {
	h.t.Helper()
	out, err := exec.Command("softhsm2-util", "--init-token", "--free",
		"--label", label, "--so-pin", h.soPin, "--pin", h.pin).
		CombinedOutput()
	if err != nil {
		h.t.Fatalf("softhsm2-util --init-token: %v\n%s", err, out)
	}
}

// uri names the token by label, with the module and the PIN file.
func (h *softHSM) uri(label string) *URI {
	return &URI{Token: label, ModulePath: softhsmModule,
		PINSource: h.pinURI}
}

// open logs in to the token and closes the session at cleanup.
func (h *softHSM) open(label string) *Session {
	h.t.Helper()
	s, err := Open(h.uri(label), nil)
	if err != nil {
		h.t.Fatalf("opening %s: %v", label, err)
	}
	h.t.Cleanup(func() { s.Close() })
	return s
}

// tool runs pkcs11-tool on the module. The user PIN travels in the
// environment, not argv.
func (h *softHSM) tool(args ...string) (string, error) {
	h.t.Helper()
	path := needTool(h.t, "pkcs11-tool")
	cmd := exec.Command(path, append([]string{"--module", softhsmModule},
		args...)...)
	cmd.Env = append(os.Environ(), "CUSTOS_TEST_PIN="+h.pin)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// peerObjects lists the token's objects as pkcs11-tool sees them, logged
// in so private objects show too.
func (h *softHSM) peerObjects(label string) string {
	h.t.Helper()
	out, err := h.tool("--token-label", label, "--login", "--pin",
		"env:CUSTOS_TEST_PIN", "--list-objects")
	if err != nil {
		h.t.Fatalf("pkcs11-tool --list-objects: %v\n%s", err, out)
	}
	return out
}

// tokenObjects lists every token object through a fresh session.
func (h *softHSM) tokenObjects(label string) []objRef {
	h.t.Helper()
	s, err := Open(h.uri(label), nil)
	if err != nil {
		h.t.Fatalf("opening %s: %v", label, err)
	}
	defer s.Close()
	hs, err := s.find(pkcs11.NewAttribute(pkcs11.CKA_TOKEN, true))
	if err != nil {
		h.t.Fatal(err)
	}
	var out []objRef
	for _, oh := range hs {
		o, err := s.describe(oh)
		if err != nil {
			h.t.Fatal(err)
		}
		out = append(out, o)
	}
	return out
}

// assertEmpty fails unless the token holds no objects, asked both of this
// package and of pkcs11-tool.
func (h *softHSM) assertEmpty(label string) {
	h.t.Helper()
	if objs := h.tokenObjects(label); len(objs) != 0 {
		h.t.Errorf("token %s still holds %v", label, objs)
	}
	if out := h.peerObjects(label); strings.Contains(out, "Object") {
		h.t.Errorf("pkcs11-tool still sees objects on %s:\n%s", label, out)
	}
}

// openssl runs openssl and returns its standard output.
func openssl(t testing.TB, stdin []byte, args ...string) []byte {
	t.Helper()
	cmd := exec.Command(needTool(t, "openssl"), args...)
	if stdin != nil {
		cmd.Stdin = strings.NewReader(string(stdin))
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("openssl %v: %v\n%s", args, err, stderr.String())
	}
	return out
}

// testKey is a key made by openssl with its check values computed by
// openssl too, never by this package.
type testKey struct {
	kind   Kind
	secret []byte
	signer crypto.Signer
	expect Check
}

func (k testKey) key(label string) Key {
	return Key{Label: label, Kind: k.kind,
		Secret: append([]byte(nil), k.secret...), Private: k.signer,
		Expect: k.expect}
}

// aesKey makes an AES key with openssl rand and its KCV (CMAC) and ECB
// check values with openssl enc and openssl mac.
func aesKey(t testing.TB, bits int) testKey {
	t.Helper()
	key := openssl(t, nil, "rand", fmt.Sprint(bits/8))
	hexKey := hex.EncodeToString(key)
	ecb := openssl(t, make([]byte, 16), "enc", fmt.Sprintf("-aes-%d-ecb", bits),
		"-nopad", "-K", hexKey)
	mac := openssl(t, make([]byte, 16), "mac", "-cipher",
		fmt.Sprintf("AES-%d-CBC", bits), "-macopt", "hexkey:"+hexKey, "CMAC")
	kcv, err := hex.DecodeString(strings.TrimSpace(string(mac)))
	if err != nil {
		t.Fatal(err)
	}
	kind := map[int]Kind{128: KindAES128, 192: KindAES192, 256: KindAES256}[bits]
	return testKey{kind: kind, secret: key,
		expect: Check{KCV: kcv[:3], ECB: ecb[:3]}}
}

// hmacKey makes a generic secret and its check value with openssl mac.
func hmacKey(t testing.TB, n int) testKey {
	t.Helper()
	key := openssl(t, nil, "rand", fmt.Sprint(n))
	mac := openssl(t, make([]byte, 32), "mac", "-digest", "SHA256",
		"-macopt", "hexkey:"+hex.EncodeToString(key), "HMAC")
	sum, err := hex.DecodeString(strings.TrimSpace(string(mac)))
	if err != nil {
		t.Fatal(err)
	}
	return testKey{kind: KindHMAC, secret: key, expect: Check{HMAC: sum[:3]}}
}

// privateKey makes a key with openssl genpkey; its check value is the
// SHA-256 of the SPKI DER that openssl pkey -pubout writes.
func privateKey(t testing.TB, kind Kind, genArgs ...string) testKey {
	t.Helper()
	dir := t.TempDir()
	path := filepath.Join(dir, "key.pem")
	openssl(t, nil, append(append([]string{"genpkey"}, genArgs...),
		"-out", path)...)
	spki := openssl(t, nil, "pkey", "-in", path, "-pubout", "-outform", "DER")
	sum := sha256.Sum256(spki)

	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(data)
	if block == nil {
		t.Fatal("openssl wrote no PEM")
	}
	parsed, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return testKey{kind: kind, signer: parsed.(crypto.Signer),
		expect: Check{SPKISHA256: sum[:]}}
}

func rsaKey(t testing.TB, bits int) testKey {
	return privateKey(t, KindRSA, "-algorithm", "RSA", "-pkeyopt",
		fmt.Sprintf("rsa_keygen_bits:%d", bits))
}

func p384Key(t testing.TB) testKey {
	return privateKey(t, KindECP384, "-algorithm", "EC", "-pkeyopt",
		"ec_paramgen_curve:P-384")
}

func p256Key(t testing.TB) testKey {
	return privateKey(t, KindECP256, "-algorithm", "EC", "-pkeyopt",
		"ec_paramgen_curve:P-256")
}

func ed25519Key(t testing.TB) testKey {
	return privateKey(t, KindEd25519, "-algorithm", "ed25519")
}

// faulty wraps a real module and injects faults where a test asks.
type faulty struct {
	p11
	login       func(pin string) error
	tokenFlags  uint // ORed into CK_TOKEN_INFO flags
	createAfter int  // fail the create after this many (0: never)
	creates     int
	destroyErr  error
	unwrapFlip  bool // flip a byte of every wrapped key
}

func (f *faulty) Login(sh pkcs11.SessionHandle, u uint, pin string) error {
	if f.login != nil {
		return f.login(pin)
	}
	return f.p11.Login(sh, u, pin)
}

func (f *faulty) GetTokenInfo(slot uint) (pkcs11.TokenInfo, error) {
	ti, err := f.p11.GetTokenInfo(slot)
	ti.Flags |= f.tokenFlags
	return ti, err
}

func (f *faulty) CreateObject(sh pkcs11.SessionHandle,
	t []*pkcs11.Attribute) (pkcs11.ObjectHandle, error) {

	f.creates++
	if f.createAfter > 0 && f.creates > f.createAfter {
		return 0, pkcs11.Error(pkcs11.CKR_DEVICE_MEMORY)
	}
	return f.p11.CreateObject(sh, t)
}

func (f *faulty) DestroyObject(sh pkcs11.SessionHandle,
	o pkcs11.ObjectHandle) error {

	if f.destroyErr != nil {
		return f.destroyErr
	}
	return f.p11.DestroyObject(sh, o)
}

func (f *faulty) UnwrapKey(sh pkcs11.SessionHandle, m []*pkcs11.Mechanism,
	k pkcs11.ObjectHandle, wrapped []byte,
	a []*pkcs11.Attribute) (pkcs11.ObjectHandle, error) {

	if f.unwrapFlip && m[0].Mechanism == pkcs11.CKM_AES_KEY_WRAP_PAD {
		wrapped = append([]byte(nil), wrapped...)
		wrapped[len(wrapped)/2] ^= 0x40
	}
	return f.p11.UnwrapKey(sh, m, k, wrapped, a)
}

// injectFaults makes sessions opened from now until cleanup go through f.
func injectFaults(t testing.TB, f *faulty) {
	old := wrapModule
	wrapModule = func(p p11) p11 { f.p11 = p; return f }
	t.Cleanup(func() { wrapModule = old })
}

var bg = context.Background()
