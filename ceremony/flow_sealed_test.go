package ceremony

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"custos/hsm"
	"custos/printer"
	"custos/shares"
)

// sealedSplit splits secret as "custos split" does, to paper for Ana, Bo
// and Chen, 2 of 3; a secret over the inline limit goes to secret.sealed.
func sealedSplit(t *testing.T, secret []byte, kind shares.Kind) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "set")
	_, err := SplitFiles(context.Background(), SplitRequest{
		Policy: shares.Policy{Threshold: 2, Count: 3, Custodians: []string{"Ana", "Bo", "Chen"},
			Label: "big secret", Kind: kind},
		Paper: printer.A4, OutDir: dir, Secret: bytes.NewReader(secret)}, Reporter{})
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

func randomBytes(t *testing.T, n int) []byte {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

// twoShares answers the collection with Ana's and Chen's typed shares.
func twoShares(dir string) []Answer {
	return []Answer{
		{"Share 1 of the 2", "typed share file"},
		{"Path of the typed", filepath.Join(dir, "share-1-Ana.txt")},
		{"Share 2 of the 2", "typed share file"},
		{"Path of the typed", filepath.Join(dir, "share-3-Chen.txt")},
	}
}

// A secret too large for the shares is recovered through the ceremony
// from the sealed file set.json names beside it, streamed into a new 0600
// file; a drill proves it and writes none of it.
func TestRecoverSealedToFile(t *testing.T) {
	secret := randomBytes(t, 3*shares.InlineLimit+123)
	dir := sealedSplit(t, secret, shares.KindRaw)
	rec := filepath.Join(dir, RecordFile)

	out := filepath.Join(t.TempDir(), "restored.bin")
	sc := &Script{Answers: append(twoShares(dir), Answer{"Place the key", "yes"})}
	res, err := Recover(context.Background(), RecoveryPlan{Record: rec, Target: "file:" + out},
		Options{Prompter: sc, Interfaces: offline})
	if err != nil {
		t.Fatalf("%v\n%s", err, sc.Transcript())
	}
	got, err := os.ReadFile(out)
	if err != nil || !bytes.Equal(got, secret) {
		t.Fatalf("restored %d bytes, %v; want the %d-byte secret", len(got), err, len(secret))
	}
	if fi, _ := os.Stat(out); fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v", fi.Mode())
	}
	if !strings.Contains(res.Placed, fmt.Sprintf("%d bytes", len(secret))) {
		t.Errorf("proof %q", res.Placed)
	}
	if !strings.Contains(sc.Transcript(), "secret.sealed") {
		t.Errorf("the screens do not name the sealed file:\n%s", sc.Transcript())
	}

	before := dirFiles(t, dir)
	dr := &Script{Answers: twoShares(dir)}
	if _, err := Drill(context.Background(), rec, Options{Prompter: dr, Interfaces: offline}); err != nil {
		t.Fatalf("%v\n%s", err, dr.Transcript())
	}
	r, err := ReadRecord(rec)
	if err != nil || r.LastDrill == nil {
		t.Fatalf("drill not recorded: %+v, %v", r, err)
	}
	noSecretIn(t, dir, secret[:64])
	for f := range dirFiles(t, dir) {
		if !before[f] && !strings.HasPrefix(f, "transcript-drill") && !strings.HasPrefix(f, "ceremony-drill") {
			t.Errorf("the drill left %s", f)
		}
	}
}

func dirFiles(t *testing.T, dir string) map[string]bool {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]bool{}
	for _, e := range ents {
		out[e.Name()] = true
	}
	return out
}

// A sealed file that is missing, another set's, or cut short is refused
// by name before any custodian is asked for anything; so is one named
// for a set whose secret rides inside its shares.
func TestRecoverSealedRefusedFirst(t *testing.T) {
	secret := randomBytes(t, shares.InlineLimit+1)
	dir := sealedSplit(t, secret, shares.KindRaw)
	other := sealedSplit(t, randomBytes(t, shares.InlineLimit+1), shares.KindRaw)
	rec := filepath.Join(dir, RecordFile)
	sealed := filepath.Join(dir, SealedFile)

	cut := filepath.Join(t.TempDir(), "cut.sealed")
	b, err := os.ReadFile(sealed)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(cut, b[:len(b)-10], 0o600); err != nil {
		t.Fatal(err)
	}
	moved := filepath.Join(t.TempDir(), "moved.sealed")
	if err := os.Rename(sealed, moved); err != nil {
		t.Fatal(err)
	}
	inline, _ := splitForTest(t)

	for _, tt := range []struct {
		name     string
		rp       RecoveryPlan
		drill    bool
		want     string
		wantFile string
	}{
		{"another set's", RecoveryPlan{Record: rec, Sealed: filepath.Join(other, SealedFile)}, true,
			"it belongs to set", filepath.Join(other, SealedFile)},
		{"cut short", RecoveryPlan{Record: rec, Sealed: cut}, false, "bytes, the shares expect", cut},
		{"missing", RecoveryPlan{Record: rec}, false, "does not exist", sealed},
		{"missing, drill", RecoveryPlan{Record: rec}, true, "does not exist", sealed},
		{"inline set", RecoveryPlan{Record: filepath.Join(inline.OutDir, RecordFile), Sealed: moved}, true,
			"rides inside the shares", moved},
	} {
		t.Run(tt.name, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "restored.bin")
			answers := append(twoShares(dir), Answer{"Place the key", "yes"})
			sc := &Script{Answers: answers}
			opt := Options{Prompter: sc, Interfaces: offline}
			var err error
			if tt.drill {
				_, err = DrillWith(context.Background(), tt.rp, opt)
			} else {
				tt.rp.Target = "file:" + out
				_, err = Recover(context.Background(), tt.rp, opt)
			}
			var stop *StoppedError
			if !errors.As(err, &stop) || stop.Step != "preflight" ||
				!strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), tt.wantFile) {
				t.Fatalf("got %v; want a stop before anyone is called, naming %s: %q", err, tt.wantFile, tt.want)
			}
			if sc.Left() != len(answers) || strings.Contains(sc.Transcript(), "Share 1") {
				t.Errorf("a custodian was asked first:\n%s", sc.Transcript())
			}
			if _, err := os.Stat(out); err == nil {
				t.Error("a key file was written")
			}
		})
	}

	// Named explicitly where it was moved, the sealed file is used.
	out := filepath.Join(t.TempDir(), "restored.bin")
	sc := &Script{Answers: append(twoShares(dir), Answer{"Place the key", "yes"})}
	if _, err := Recover(context.Background(), RecoveryPlan{Record: rec, Target: "file:" + out, Sealed: moved},
		Options{Prompter: sc, Interfaces: offline}); err != nil {
		t.Fatalf("%v\n%s", err, sc.Transcript())
	}
	if got, _ := os.ReadFile(out); !bytes.Equal(got, secret) {
		t.Error("the secret recovered with --sealed differs")
	}
}

// makeBundle writes a tar of two AES keys, an HMAC secret, an EC P-256
// private key and a raw blob large enough that the bundle is sealed.
func makeBundle(t *testing.T) []byte {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	add := func(name string, b []byte) {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o600, Size: int64(len(b)), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		tw.Write(b)
	}
	add("keys/a.aes", randomBytes(t, 32))
	add("keys/b.aes", randomBytes(t, 16))
	add("mac.hmac", randomBytes(t, 32))
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(ec)
	if err != nil {
		t.Fatal(err)
	}
	add("signing.pem", pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
	add("notes.bin", randomBytes(t, 2*shares.InlineLimit))
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// A sealed bundle recovered into an HSM: the labels are checked free and
// the PIN asked before any custodian; then every key the HSM takes is
// imported and proven, and the raw entry is named as left out. OpenSC
// sees the keys.
func TestRecoverBundleToHSM(t *testing.T) {
	dir := sealedSplit(t, makeBundle(t), shares.KindBundle)
	rec := filepath.Join(dir, RecordFile)
	if _, err := os.Stat(filepath.Join(dir, SealedFile)); err != nil {
		t.Fatalf("the bundle was not sealed: %v", err)
	}
	tk := newTestToken(t, "vault-bundle")

	answers := append([]Answer{{"Type the user PIN of token", tk.pin}}, twoShares(dir)...)
	sc := &Script{Answers: append(answers, Answer{"Place the key", "yes"})}
	res, err := Recover(context.Background(), RecoveryPlan{Record: rec, Target: tk.uri("", false)},
		Options{Prompter: sc, Interfaces: offline})
	if err != nil {
		t.Fatalf("%v\n%s", err, sc.Transcript())
	}
	if !strings.Contains(res.Placed, "imported 4 keys") {
		t.Errorf("proof %q", res.Placed)
	}
	if !strings.Contains(sc.Transcript(), "notes.bin") {
		t.Errorf("the raw entry left out is not named:\n%s", sc.Transcript())
	}
	objs := tk.objects(t)
	for _, label := range []string{"keys/a.aes", "keys/b.aes", "mac.hmac", "signing.pem"} {
		if !strings.Contains(objs, label) {
			t.Errorf("pkcs11-tool does not show %s:\n%s", label, objs)
		}
	}
	if strings.Contains(objs, "notes.bin") {
		t.Error("the raw entry went to the token")
	}

	// Again into the same token: the labels are taken, which is found
	// with the PIN from a file, before anyone is called.
	os.Remove(JournalFile(dir, "recover"))
	sc2 := &Script{Answers: twoShares(dir)}
	_, err = Recover(context.Background(), RecoveryPlan{Record: rec, Target: tk.uri("", true)},
		Options{Prompter: sc2, Interfaces: offline})
	var taken *LabelTakenError
	if !errors.As(err, &taken) || !errors.Is(err, hsm.ErrObjectExists) || sc2.Left() != len(twoShares(dir)) ||
		!strings.Contains(err.Error(), "place the bundle in another token") {
		t.Fatalf("got %v\n%s", err, sc2.Transcript())
	}
}

// The keys the preflight checks are named as BundleKeys names the keys
// it imports, object= prefix included.
func TestBundlePlanMatchesKeys(t *testing.T) {
	bundle := makeBundle(t)
	dir := sealedSplit(t, bundle, shares.KindBundle)
	r, err := ReadRecord(filepath.Join(dir, RecordFile))
	if err != nil {
		t.Fatal(err)
	}
	h, err := NewHSMTarget("pkcs11:token=t;object=2026-?module-path=/m.so")
	if err != nil {
		t.Fatal(err)
	}
	planned, err := h.plannedKeys(r)
	if err != nil {
		t.Fatal(err)
	}
	bk, err := h.bundleKeys(r)
	if err != nil {
		t.Fatal(err)
	}
	if err := bk.Read(bytes.NewReader(bundle)); err != nil {
		t.Fatal(err)
	}
	defer bk.Wipe()
	if len(planned) != 4 || len(planned) != len(bk.Keys) {
		t.Fatalf("planned %d keys, the bundle gives %d", len(planned), len(bk.Keys))
	}
	for i, k := range bk.Keys {
		p := planned[i]
		if p.Label != k.Label || !bytes.Equal(p.ID, k.ID) || p.Kind != k.Kind || !strings.HasPrefix(k.Label, "2026-") {
			t.Errorf("key %d: planned %q %x %v, got %q %x %v", i, p.Label, p.ID, p.Kind, k.Label, k.ID, k.Kind)
		}
	}
}
