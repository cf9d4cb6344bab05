package ceremony

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"custos/hsm"
	"custos/shares"
)

// refusedFirst runs a recovery that must stop before any custodian is
// asked for anything, and returns its error and screens.
func refusedFirst(t *testing.T, rp RecoveryPlan, answers []Answer) (error, string) {
	t.Helper()
	sc := &Script{Answers: answers}
	_, err := Recover(context.Background(), rp, Options{Prompter: sc, Interfaces: offline})
	var stop *StoppedError
	if !errors.As(err, &stop) {
		t.Fatalf("got %v, want a stop", err)
	}
	if strings.Contains(sc.Transcript(), "Share 1 of the 2") || sc.Left() != len(answers) {
		t.Fatalf("a custodian was asked before the refusal:\n%s", sc.Transcript())
	}
	if !strings.Contains(sc.Transcript(), "0 of the 2 shares needed had been collected") {
		t.Errorf("the stop does not say that no share was collected:\n%s", sc.Transcript())
	}
	return err, sc.Transcript()
}

// A file target that exists, or whose directory is missing or cannot be
// written, is refused before the first custodian is called.
func TestRecoverFileTargetCheckedFirst(t *testing.T) {
	pl, _ := splitForTest(t)
	rec := filepath.Join(pl.OutDir, RecordFile)
	answers := paperRecoveryAnswers(pl)

	taken := filepath.Join(t.TempDir(), "taken.key")
	if err := os.WriteFile(taken, []byte("keep me"), 0o600); err != nil {
		t.Fatal(err)
	}
	err, _ := refusedFirst(t, RecoveryPlan{Record: rec, Target: "file:" + taken}, answers)
	var exists *ExistsError
	if !errors.As(err, &exists) || !strings.Contains(err.Error(), taken) {
		t.Errorf("existing target: %v", err)
	}
	if b, _ := os.ReadFile(taken); string(b) != "keep me" {
		t.Error("the existing file was changed")
	}

	nodir := filepath.Join(t.TempDir(), "no", "such", "dir", "k.key")
	err, screens := refusedFirst(t, RecoveryPlan{Record: rec, Target: "file:" + nodir}, answers)
	if !strings.Contains(err.Error(), "does not exist") || !strings.Contains(err.Error(), filepath.Dir(nodir)) {
		t.Errorf("missing directory: %v", err)
	}
	// The run after a refusal says no share was given, rather than that
	// every custodian gives theirs again.
	if !strings.Contains(screens, "No custodian had given a share yet") || strings.Contains(screens, "gives theirs again") {
		t.Errorf("the second run's screens:\n%s", screens)
	}

	if os.Geteuid() == 0 {
		t.Log("running as root, which may write anywhere: the read-only directory case is not tried")
		return
	}
	ro := filepath.Join(t.TempDir(), "ro")
	if err := os.Mkdir(ro, 0o500); err != nil {
		t.Fatal(err)
	}
	err, _ = refusedFirst(t, RecoveryPlan{Record: rec, Target: "file:" + filepath.Join(ro, "k.key")}, answers)
	if !strings.Contains(err.Error(), "cannot write to directory "+ro) {
		t.Errorf("read-only directory: %v", err)
	}
}

// HSM targets are checked before any custodian: a PIN file others can
// read, a module that does not load, a token that is not there, a PIN in
// the URI, and a secret that is no key an HSM takes.
func TestRecoverHSMTargetCheckedFirst(t *testing.T) {
	pl, _ := paperPlan(t)
	pl.Key.Kind = shares.KindAES
	if _, err := Split(context.Background(), pl, Options{Prompter: &Script{Answers: splitAnswers}, Interfaces: offline}); err != nil {
		t.Fatal(err)
	}
	rec := filepath.Join(pl.OutDir, RecordFile)
	raw, _ := splitForTest(t) // a 32-byte key file of no named kind: raw
	tk := newTestToken(t, "vault-pre")
	answers := paperRecoveryAnswers(pl)

	open := filepath.Join(t.TempDir(), "open.pin")
	if err := os.WriteFile(open, []byte(tk.pin+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(open, 0o644); err != nil {
		t.Fatal(err)
	}
	putKey(t, tk, "taken-label")
	base := "pkcs11:token=vault-pre;object=k?module-path=" + softhsmModule
	for _, tt := range []struct {
		name, target, record, want string
	}{
		{"pin file readable by others", base + "&pin-source=file:" + open, rec, "readable by others (mode 0644)"},
		{"module missing", "pkcs11:token=vault-pre?module-path=/nonexistent/libnone.so&pin-source=file:" + tk.pinFile,
			rec, "/nonexistent/libnone.so"},
		{"unknown token", "pkcs11:token=no-such-token?module-path=" + softhsmModule + "&pin-source=file:" + tk.pinFile,
			rec, "no-such-token"},
		{"pin-value", base + "&pin-value=" + tk.pin, rec, "pin-value"},
		{"raw secret", base + "&pin-source=file:" + tk.pinFile, filepath.Join(raw.OutDir, RecordFile),
			"not a key an HSM takes"},
		{"label taken", tk.uri("taken-label", true), rec, "choose another label with object= in the target URI"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err, screens := refusedFirst(t, RecoveryPlan{Record: tt.record, Target: tt.target}, answers)
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got %v, want it to say %q", err, tt.want)
			}
			if strings.Contains(screens, tk.pin) || strings.Contains(err.Error(), tk.pin) {
				t.Error("the PIN shows")
			}
		})
	}
	if n := strings.Count(tk.objects(t), "Secret Key"); n != 1 {
		t.Errorf("the token holds %d secret keys; a refused recovery put one there", n)
	}
}

// putKey imports an AES key of the label into the test token, as someone
// else's key already there.
func putKey(t *testing.T, tk *testToken, label string) {
	t.Helper()
	s, err := hsm.Open(&hsm.URI{Token: tk.label, ModulePath: softhsmModule, PINSource: "file:" + tk.pinFile}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	k := hsm.Key{Label: label, Kind: hsm.KindAES128, Secret: randomBytes(t, 16)}
	if k.Expect, err = hsm.ComputeCheck(k); err != nil {
		t.Fatal(err)
	}
	if _, err := s.ImportKey(context.Background(), k, hsm.Options{}); err != nil {
		t.Fatal(err)
	}
}

// A wrong HSM PIN typed up front is said as such and may be typed again;
// the right one is then used for the import without asking a third time.
func TestRecoverHSMWrongPINFirst(t *testing.T) {
	pl, _ := paperPlan(t)
	pl.Key.Kind = shares.KindAES
	if _, err := Split(context.Background(), pl, Options{Prompter: &Script{Answers: splitAnswers}, Interfaces: offline}); err != nil {
		t.Fatal(err)
	}
	tk := newTestToken(t, "vault-pin")
	answers := []Answer{{"Type the user PIN of token", "00000000"}, {"Type the PIN of", "yes"},
		{"Type the user PIN of token", tk.pin}}
	sc := &Script{Answers: append(answers, paperRecoveryAnswers(pl)...)}
	res, err := Recover(context.Background(), RecoveryPlan{Record: filepath.Join(pl.OutDir, RecordFile),
		Target: tk.uri("pin-master", false)}, Options{Prompter: sc, Interfaces: offline})
	if err != nil {
		t.Fatalf("%v\n%s", err, sc.Transcript())
	}
	tr := sc.Transcript()
	if !strings.Contains(tr, "Wrong HSM PIN") || strings.Count(tr, "Type the user PIN") != 2 ||
		strings.Index(tr, "Wrong HSM PIN") > strings.Index(tr, "Share 1 of the 2") {
		t.Errorf("screens:\n%s", tr)
	}
	if !strings.Contains(res.Placed, "computed inside the token") || !strings.Contains(tk.objects(t), "pin-master") {
		t.Errorf("proof %q", res.Placed)
	}
}

// placeFails is the room creating a file where the key is to go while
// the ceremony waits to place it.
type placeFails struct {
	*Script
	in func()
}

func (p placeFails) Confirm(q string) (bool, error) {
	if strings.Contains(q, "Place the key") {
		p.in()
	}
	return p.Script.Confirm(q)
}

// When the key cannot be placed after every share was given, the stop
// says that the shares had been collected (and were erased), not 0.
func TestRecoverStopCountsCollected(t *testing.T) {
	pl, _ := splitForTest(t)
	out := filepath.Join(t.TempDir(), "late.key")
	sc := &Script{Answers: paperRecoveryAnswers(pl)}
	pr := placeFails{sc, func() { os.WriteFile(out, []byte("someone else's"), 0o600) }}
	_, err := Recover(context.Background(), RecoveryPlan{Record: filepath.Join(pl.OutDir, RecordFile), Target: "file:" + out},
		Options{Prompter: pr, Interfaces: offline})
	var exists *ExistsError
	if !errors.As(err, &exists) {
		t.Fatalf("got %v\n%s", err, sc.Transcript())
	}
	tr := sc.Transcript()
	if !strings.Contains(tr, "2 of the 2 shares needed had been collected; they were erased from memory") {
		t.Errorf("the stop miscounts the shares:\n%s", tr)
	}
	if b, _ := os.ReadFile(out); string(b) != "someone else's" {
		t.Error("the file that appeared was overwritten")
	}
}

// The same in an HSM: a key with the label appears before the import; the
// import is refused in words the room can act on, and the shares counted.
func TestRecoverHSMStopCountsCollected(t *testing.T) {
	pl, _ := paperPlan(t)
	pl.Key.Kind = shares.KindAES
	if _, err := Split(context.Background(), pl, Options{Prompter: &Script{Answers: splitAnswers}, Interfaces: offline}); err != nil {
		t.Fatal(err)
	}
	tk := newTestToken(t, "vault-late")
	sc := &Script{Answers: paperRecoveryAnswers(pl)}
	pr := placeFails{sc, func() { putKey(t, tk, "late") }}
	_, err := Recover(context.Background(), RecoveryPlan{Record: filepath.Join(pl.OutDir, RecordFile),
		Target: tk.uri("late", true)}, Options{Prompter: pr, Interfaces: offline})
	var taken *LabelTakenError
	if !errors.As(err, &taken) || !strings.Contains(err.Error(), "choose another label with object=") {
		t.Fatalf("got %v\n%s", err, sc.Transcript())
	}
	if !strings.Contains(sc.Transcript(), "2 of the 2 shares needed had been collected") {
		t.Errorf("the stop miscounts the shares:\n%s", sc.Transcript())
	}
}
