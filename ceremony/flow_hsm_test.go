package ceremony

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"custos/hsm"
	"custos/shares"
)

const softhsmModule = "/usr/lib/softhsm/libsofthsm2.so"

// integration reports whether a missing real part must fail the test.
func integration() bool { return os.Getenv("CUSTOS_INTEGRATION") == "1" }

// needPart skips the test when a real part is missing, or fails it under
// CUSTOS_INTEGRATION=1.
func needPart(t *testing.T, what string, err error) {
	t.Helper()
	if err == nil {
		return
	}
	if integration() {
		t.Fatalf("%s is required with CUSTOS_INTEGRATION=1: %v", what, err)
	}
	t.Skipf("%s is missing: %v", what, err)
}

// testToken is a SoftHSM token made for one test, in its own temporary
// directory, with random test PINs.
type testToken struct {
	label, pin, pinFile string
}

func newTestToken(t *testing.T, label string) *testToken {
	t.Helper()
	_, err := os.Stat(softhsmModule)
	needPart(t, "SoftHSM", err)
	_, err = exec.LookPath("softhsm2-util")
	needPart(t, "softhsm2-util", err)

	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "tokens"), 0o700); err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(dir, "softhsm2.conf")
	body := fmt.Sprintf("directories.tokendir = %s\nobjectstore.backend = file\nlog.level = ERROR\n",
		filepath.Join(dir, "tokens"))
	if err := os.WriteFile(conf, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("SOFTHSM2_CONF", conf)

	tk := &testToken{label: label, pin: randomHex(t), pinFile: filepath.Join(dir, "user.pin")}
	if err := os.WriteFile(tk.pinFile, []byte(tk.pin+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	// Test PINs of a throw-away token; softhsm2-util takes them as flags.
	out, err := exec.Command("softhsm2-util", "--init-token", "--free", "--label", label,
		"--so-pin", randomHex(t), "--pin", tk.pin).CombinedOutput()
	if err != nil {
		t.Fatalf("softhsm2-util --init-token: %v\n%s", err, out)
	}
	return tk
}

func randomHex(t *testing.T) string {
	b := make([]byte, 4)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// uri names the token; withPIN adds its pin-source.
func (tk *testToken) uri(object string, withPIN bool) string {
	u := "pkcs11:token=" + tk.label
	if object != "" {
		u += ";object=" + object
	}
	u += "?module-path=" + softhsmModule
	if withPIN {
		u += "&pin-source=file:" + tk.pinFile
	}
	return u
}

// objects lists the token's objects with OpenSC's pkcs11-tool, which
// custos did not write.
func (tk *testToken) objects(t *testing.T) string {
	t.Helper()
	tool, err := exec.LookPath("pkcs11-tool")
	needPart(t, "pkcs11-tool (OpenSC)", err)
	out, err := exec.Command(tool, "--module", softhsmModule, "--token-label", tk.label,
		"--login", "--pin", tk.pin, "--list-objects").CombinedOutput()
	if err != nil {
		t.Fatalf("pkcs11-tool --list-objects: %v\n%s", err, out)
	}
	return string(out)
}

// paperRecoveryAnswers give Ana's and Chen's typed share files.
func paperRecoveryAnswers(pl *Plan) []Answer {
	return []Answer{
		{"Share 1 of the 2", "typed share file"},
		{"Path of the typed", filepath.Join(pl.OutDir, "share-1-Ana.txt")},
		{"Share 2 of the 2", "typed share file"},
		{"Path of the typed", filepath.Join(pl.OutDir, "share-3-Chen.txt")},
		{"Place the key", "yes"},
	}
}

// A recovery into a SoftHSM token asks the room for the token's PIN,
// imports the key, and shows the check value the token computed; OpenSC
// sees the key there. A second recovery into the same token is refused
// and leaves the token as it was.
func TestRecoverToHSM(t *testing.T) {
	pl, key := paperPlan(t)
	pl.Key.Kind = shares.KindAES
	if _, err := Split(context.Background(), pl, Options{Prompter: &Script{Answers: splitAnswers}, Interfaces: offline}); err != nil {
		t.Fatal(err)
	}
	tk := newTestToken(t, "vault-test")
	rec, err := ReadRecord(filepath.Join(pl.OutDir, RecordFile))
	if err != nil {
		t.Fatal(err)
	}
	kcv := strings.ToUpper(hex.EncodeToString(rec.Checks[0].Value))

	// The PIN is asked once, before any custodian is called.
	answers := append([]Answer{{"Type the user PIN of token", tk.pin}}, paperRecoveryAnswers(pl)...)
	sc := &Script{Answers: answers}
	audit := openTestAudit(t, filepath.Join(t.TempDir(), "audit.log"))
	res, err := Recover(context.Background(), RecoveryPlan{Record: filepath.Join(pl.OutDir, RecordFile),
		Target: tk.uri("master-2026", false)}, Options{Prompter: sc, Interfaces: offline, Audit: audit})
	if err != nil {
		t.Fatalf("%v\n%s", err, sc.Transcript())
	}
	if sc.Left() != 0 {
		t.Errorf("%d answers unused", sc.Left())
	}
	if !strings.Contains(res.Placed, "computed inside the token") || !strings.Contains(res.Placed, kcv) {
		t.Errorf("proof %q does not show the token's KCV %s", res.Placed, kcv)
	}
	if strings.Contains(sc.Transcript(), tk.pin) {
		t.Error("the PIN appears on a screen")
	}
	if n := strings.Count(sc.Transcript(), "Type the user PIN"); n != 1 {
		t.Errorf("the PIN was asked %d times, want once", n)
	}
	objs := tk.objects(t)
	if !strings.Contains(objs, "master-2026") || !strings.Contains(objs, "Secret Key") {
		t.Errorf("pkcs11-tool does not show the key:\n%s", objs)
	}
	if _, err := VerifyLog(audit.Path()); err != nil {
		t.Error(err)
	}
	pdf := pdfText(t, res.Transcript)
	if !strings.Contains(pdf, "Ana, custodian") || !strings.Contains(pdf, "Chen, custodian") ||
		strings.Contains(pdf, "Bo, custodian") || !strings.Contains(pdf, "placing the key") {
		t.Errorf("recovery transcript:\n%s", pdf)
	}

	// The same recovery again: the label and ID are taken, which is
	// found before any custodian is called, and said in what the room
	// can do.
	j := JournalFile(pl.OutDir, "recover")
	os.Remove(j)
	sc2 := &Script{Answers: paperRecoveryAnswers(pl)}
	_, err = Recover(context.Background(), RecoveryPlan{Record: filepath.Join(pl.OutDir, RecordFile),
		Target: tk.uri("master-2026", true)}, Options{Prompter: sc2, Interfaces: offline})
	var taken *LabelTakenError
	if !errors.Is(err, hsm.ErrObjectExists) || !errors.As(err, &taken) {
		t.Fatalf("second import: got %v, want an object-exists error", err)
	}
	if sc2.Left() != len(paperRecoveryAnswers(pl)) {
		t.Errorf("custodians were asked before the taken label was found:\n%s", sc2.Transcript())
	}
	for _, want := range []string{`"master-2026"`, "the id this key takes", "remove that key with the token's own tools"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("the refusal lacks %q: %v", want, err)
		}
	}
	if strings.Contains(err.Error(), "keep-both") || strings.Contains(err.Error(), "say replace") {
		t.Errorf("the refusal names options the ceremony does not have: %v", err)
	}
	if got := strings.Count(tk.objects(t), "Secret Key"); got != 1 {
		t.Errorf("token holds %d secret keys after the refused import, want 1", got)
	}

	// After an interrupted run (Undo), the key already there is proven
	// inside the token, not imported twice; a wrong key is not accepted.
	tg, err := ParseTarget(tk.uri("master-2026", true))
	if err != nil {
		t.Fatal(err)
	}
	if err := tg.Undo(); err != nil {
		t.Fatal(err)
	}
	proof, err := tg.Place(context.Background(), key, rec)
	if err != nil || !strings.Contains(proof, "not imported twice") || !strings.Contains(proof, kcv) {
		t.Fatalf("resumed Place: %q, %v", proof, err)
	}
	wrong := append([]byte(nil), key...)
	wrong[0] ^= 1
	if _, err := tg.Place(context.Background(), wrong, rec); err == nil {
		t.Fatal("a wrong key was accepted")
	}
	if got := strings.Count(tk.objects(t), "Secret Key"); got != 1 {
		t.Errorf("token holds %d secret keys after resuming, want 1", got)
	}
}

// A URI without a module, or with the PIN in it, is refused up front.
func TestParseHSMTarget(t *testing.T) {
	for _, bad := range []string{"pkcs11:token=x", "pkcs11:token=x?pin-value=1234&module-path=/m.so"} {
		if _, err := ParseTarget(bad); err == nil {
			t.Errorf("ParseTarget(%q) accepted", bad)
		}
	}
	tg, err := ParseTarget("pkcs11:token=vault-a;object=k?module-path=/m.so")
	if err != nil {
		t.Fatal(err)
	}
	if h, ok := tg.(*HSMTarget); !ok || h.URI.Token != "vault-a" || h.String() != "HSM token vault-a as k" {
		t.Errorf("got %#v", tg)
	}
}
