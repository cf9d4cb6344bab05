package hsm

import (
	"context"
	"crypto"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/miekg/pkcs11"
)

func TestWrongPIN(t *testing.T) {
	h := newSoftHSM(t)
	h.initToken("pin")
	bad := filepath.Join(h.dir, "bad.pin")
	writeSecret(t, bad, "not-"+h.pin+"\n")
	u := h.uri("pin")
	u.PINSource = "file:" + bad

	_, err := Open(u, nil)
	var pe *PINError
	if !errors.As(err, &pe) || !errors.Is(err, ErrPINIncorrect) {
		t.Fatalf("err = %v, want a PINError for an incorrect PIN", err)
	}
	if !strings.Contains(err.Error(), `token "pin"`) ||
		strings.Contains(err.Error(), h.pin) {
		t.Errorf("error should name the token and not the PIN: %v", err)
	}
	h.assertEmpty("pin")
}

// TestPINFromPrompt: without a pin-source the prompt is asked, with the
// token it is for.
func TestPINFromPrompt(t *testing.T) {
	h := newSoftHSM(t)
	h.initToken("prompted")
	u := h.uri("prompted")
	u.PINSource = ""
	var asked TokenInfo
	s, err := Open(u, func(ti TokenInfo) ([]byte, error) {
		asked = ti
		return []byte(h.pin), nil
	})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	if asked.Label != "prompted" || asked.Serial == "" {
		t.Errorf("prompt got %+v", asked)
	}
	if _, err := Open(u, nil); !errors.Is(err, ErrNoPIN) {
		t.Errorf("no pin source and no prompt: err = %v", err)
	}
}

// TestPINLocked: SoftHSM never locks a PIN, so the lock is injected: once
// as the token's flag (custos must not even try the PIN) and once as the
// answer to C_Login.
func TestPINLocked(t *testing.T) {
	h := newSoftHSM(t)
	h.initToken("locked")

	f := &faulty{tokenFlags: pkcs11.CKF_USER_PIN_LOCKED}
	tried := false
	f.login = func(string) error { tried = true; return nil }
	injectFaults(t, f)
	_, err := Open(h.uri("locked"), nil)
	if !errors.Is(err, ErrPINLocked) || tried {
		t.Errorf("locked flag: err = %v, login tried = %v", err, tried)
	}

	f.tokenFlags = pkcs11.CKF_USER_PIN_FINAL_TRY
	f.login = func(string) error {
		return pkcs11.Error(pkcs11.CKR_PIN_INCORRECT)
	}
	_, err = Open(h.uri("locked"), nil)
	var pe *PINError
	if !errors.As(err, &pe) || !pe.FinalTry ||
		!strings.Contains(err.Error(), "one more wrong PIN") {
		t.Errorf("final try: err = %v", err)
	}

	f.tokenFlags = 0
	f.login = func(string) error { return pkcs11.Error(pkcs11.CKR_PIN_LOCKED) }
	_, err = Open(h.uri("locked"), nil)
	if !errors.Is(err, ErrPINLocked) {
		t.Errorf("CKR_PIN_LOCKED: err = %v", err)
	}
}

func TestTokenNotFound(t *testing.T) {
	h := newSoftHSM(t)
	h.initToken("present")
	_, err := Open(h.uri("absent"), nil)
	var te *TokenError
	if !errors.As(err, &te) || !errors.Is(err, ErrTokenNotFound) ||
		!strings.Contains(err.Error(), `token="absent"`) ||
		!strings.Contains(err.Error(), softhsmModule) {
		t.Fatalf("err = %v, want token not found naming token and module", err)
	}

	// The uninitialised slot SoftHSM always offers has an empty label; a
	// URI naming no token must not pick it.
	u := h.uri("")
	s, err := Open(u, nil)
	if err != nil {
		t.Fatalf("the one initialised token should be found: %v", err)
	}
	if s.Info().Label != "present" {
		t.Errorf("opened %v", s.Info())
	}
	s.Close()
}

func TestTwoTokensOneLabel(t *testing.T) {
	h := newSoftHSM(t)
	h.initToken("twin")
	h.initToken("twin")

	_, openErr := Open(h.uri("twin"), nil)
	var te *TokenError
	if !errors.As(openErr, &te) || !errors.Is(openErr, ErrTokenAmbiguous) ||
		len(te.Matches) != 2 {
		t.Fatalf("err = %v, want two matches", openErr)
	}
	tokens, err := Tokens(h.uri("twin"))
	if err != nil || len(tokens) != 2 || tokens[0].Serial == tokens[1].Serial {
		t.Fatalf("Tokens = %v, %v", tokens, err)
	}
	for _, want := range tokens {
		if !strings.Contains(openErr.Error(), want.Serial) {
			t.Errorf("error does not name serial %s: %v", want.Serial,
				openErr)
		}
	}

	// The serial tells them apart.
	u := h.uri("twin")
	u.Serial = tokens[1].Serial
	s, err := Open(u, nil)
	if err != nil {
		t.Fatal(err)
	}
	if s.Info().Serial != tokens[1].Serial {
		t.Errorf("opened %v, want serial %s", s.Info(), tokens[1].Serial)
	}
	s.Close()
}

// TestMechanismMissing asks for what SoftHSM lacks: RSA-OAEP with
// SHA-256 for the transport key, and a vendor mechanism by Require.
func TestMechanismMissing(t *testing.T) {
	h := newSoftHSM(t)
	h.initToken("mech")
	s := h.open("mech")
	k := aesKey(t, 256).key("needs-oaep256")

	_, err := s.ImportKey(bg, k, Options{Path: PathUnwrap,
		OAEPHash: crypto.SHA256, TransportBits: 2048})
	var me *MechanismError
	if !errors.As(err, &me) || !errors.Is(err, ErrMechanismMissing) ||
		!strings.Contains(err.Error(), "CKM_RSA_PKCS_OAEP with SHA-256") ||
		!strings.Contains(err.Error(), `token "mech"`) {
		t.Fatalf("err = %v, want OAEP SHA-256 missing on token mech", err)
	}

	_, err = s.ImportKey(bg, k, Options{Require: []uint{0x80001234,
		pkcs11.CKM_AES_KEY_WRAP_PAD}})
	if !errors.As(err, &me) || len(me.Missing) != 1 ||
		!strings.Contains(me.Missing[0], "0x80001234") {
		t.Fatalf("err = %v, want only mechanism 0x80001234 missing", err)
	}
	s.Close()
	h.assertEmpty("mech")
}

func TestLabelTaken(t *testing.T) {
	h := newSoftHSM(t)
	h.initToken("taken")
	s := h.open("taken")
	first := aesKey(t, 256)
	if _, err := s.ImportKey(bg, first.key("master"), Options{}); err != nil {
		t.Fatal(err)
	}

	second := aesKey(t, 256)
	_, err := s.ImportKey(bg, second.key("master"), Options{})
	var oe *ObjectExistsError
	if !errors.As(err, &oe) || !errors.Is(err, ErrObjectExists) ||
		!strings.Contains(err.Error(), `secret key "master"`) {
		t.Fatalf("err = %v, want the label taken", err)
	}
	// Same ID under another label is refused too.
	k := second.key("other-label")
	k.ID = keyID(t, s, "master")
	if _, err := s.ImportKey(bg, k, Options{}); !errors.Is(err,
		ErrObjectExists) {
		t.Fatalf("id taken: err = %v", err)
	}
	// Nothing changed: the first key is the only one and still proves.
	if objs := keyObjects(t, s); len(objs) != 1 {
		t.Fatalf("token holds %v", objs)
	}
	if _, err := s.VerifyObject(ObjectRef{Label: "master"},
		first.expect); err != nil {
		t.Fatalf("first key no longer proves: %v", err)
	}

	// Told to replace, the second key takes the label and the first goes.
	k = second.key("master")
	k.OnConflict = Replace
	if _, err := s.ImportKey(bg, k, Options{}); err != nil {
		t.Fatal(err)
	}
	if objs := keyObjects(t, s); len(objs) != 1 {
		t.Fatalf("after replace the token holds %v", objs)
	}
	if _, err := s.VerifyObject(ObjectRef{Label: "master"},
		second.expect); err != nil {
		t.Fatalf("replacement does not prove: %v", err)
	}

	// Keep-both leaves two objects with the label.
	k = first.key("master")
	k.OnConflict = KeepBoth
	if _, err := s.ImportKey(bg, k, Options{}); err != nil {
		t.Fatal(err)
	}
	if objs := keyObjects(t, s); len(objs) != 2 {
		t.Fatalf("after keep-both the token holds %v", objs)
	}
}

func keyObjects(t *testing.T, s *Session) []objRef {
	t.Helper()
	hs, err := s.find(pkcs11.NewAttribute(pkcs11.CKA_CLASS,
		pkcs11.CKO_SECRET_KEY))
	if err != nil {
		t.Fatal(err)
	}
	var out []objRef
	for _, h := range hs {
		o, err := s.describe(h)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, o)
	}
	return out
}

func keyID(t *testing.T, s *Session, label string) []byte {
	t.Helper()
	for _, o := range keyObjects(t, s) {
		if o.label == label {
			return o.id
		}
	}
	t.Fatalf("no key %s", label)
	return nil
}

// TestCheckMismatchLeavesNothing gives wrong expected values, as a wrong
// set record or a wrongly rebuilt key would: the object is created,
// proven wrong, and removed, by both paths and for both classes.
func TestCheckMismatchLeavesNothing(t *testing.T) {
	h := newSoftHSM(t)
	h.initToken("mismatch")
	s := h.open("mismatch")
	aes := aesKey(t, 256)
	ec := p384Key(t)
	for _, path := range []Path{PathCreate, PathUnwrap} {
		k := aes.key("aes-" + path.String())
		k.Expect.KCV = []byte{k.Expect.KCV[0] ^ 1, 0, 0}
		_, err := s.ImportKey(bg, k, Options{Path: path,
			TransportBits: 2048})
		var ce *CheckError
		if !errors.As(err, &ce) || ce.Method != methodCMAC ||
			!strings.Contains(err.Error(), "aes-"+path.String()) {
			t.Errorf("%v: err = %v, want a cmac mismatch", path, err)
		}

		k = ec.key("ec-" + path.String())
		k.Expect.SPKISHA256 = make([]byte, 32)
		_, err = s.ImportKey(bg, k, Options{Path: path,
			TransportBits: 2048})
		if !errors.As(err, &ce) || ce.Method != methodSPKI {
			t.Errorf("%v: err = %v, want an spki mismatch", path, err)
		}
	}
	s.Close()
	h.assertEmpty("mismatch")
}

// TestFaultPartWay makes the token run out of memory at the 21st object:
// the 20 created before must be removed.
func TestFaultPartWay(t *testing.T) {
	h := newSoftHSM(t)
	h.initToken("fault")
	f := &faulty{createAfter: 20}
	injectFaults(t, f)
	s := h.open("fault")
	_, err := s.Import(bg, bundle(t, 40, "f"), Options{})
	if !isRV(err, pkcs11.CKR_DEVICE_MEMORY) ||
		!strings.Contains(err.Error(), `"f-20"`) {
		t.Fatalf("err = %v, want CKR_DEVICE_MEMORY on f-20", err)
	}
	s.Close()
	h.assertEmpty("fault")
}

// TestRollbackFailureReported: when removing fails too, the error lists
// what is left, and still wraps the first failure.
func TestRollbackFailureReported(t *testing.T) {
	h := newSoftHSM(t)
	h.initToken("stuck")
	f := &faulty{createAfter: 3,
		destroyErr: pkcs11.Error(pkcs11.CKR_DEVICE_ERROR)}
	injectFaults(t, f)
	s := h.open("stuck")
	_, err := s.Import(bg, bundle(t, 5, "s"), Options{})
	var re *RollbackError
	if !errors.As(err, &re) || len(re.Left) != 3 ||
		!isRV(err, pkcs11.CKR_DEVICE_MEMORY) {
		t.Fatalf("err = %v, want a RollbackError leaving 3", err)
	}
	if !strings.Contains(err.Error(), `key "s-0"`) {
		t.Errorf("error does not name what is left: %v", err)
	}
	s.Close()
	if objs := h.tokenObjects("stuck"); len(objs) != 3 {
		t.Errorf("token holds %v, want the 3 reported", objs)
	}
}

// TestTamperedWrapRefused flips a bit of each wrapped key on its way to
// the token: the token's RFC 5649 check must refuse it.
func TestTamperedWrapRefused(t *testing.T) {
	h := newSoftHSM(t)
	h.initToken("tamper")
	injectFaults(t, &faulty{unwrapFlip: true})
	s := h.open("tamper")
	_, err := s.ImportKey(bg, aesKey(t, 256).key("tampered"),
		Options{Path: PathUnwrap, TransportBits: 2048})
	if err == nil || !strings.Contains(err.Error(), "unwrapping") {
		t.Fatalf("err = %v, want the unwrap refused", err)
	}
	s.Close()
	h.assertEmpty("tamper")
}

func TestCancelledImportRollsBack(t *testing.T) {
	h := newSoftHSM(t)
	h.initToken("cancel")
	s := h.open("cancel")
	ctx, cancel := context.WithCancel(bg)
	_, err := s.Import(ctx, bundle(t, 30, "c"), Options{
		Progress: func(done, _ int) {
			if done == 10 {
				cancel()
			}
		}})
	if !errors.Is(err, context.Canceled) ||
		!strings.Contains(err.Error(), "after 10 of 30") {
		t.Fatalf("err = %v", err)
	}
	s.Close()
	h.assertEmpty("cancel")
}

// TestRefusedBeforeTouching: bad input is refused before the token
// changes.
func TestRefusedBeforeTouching(t *testing.T) {
	h := newSoftHSM(t)
	h.initToken("input")
	s := h.open("input")
	aes := aesKey(t, 256)
	noSign := Usage{Encrypt: true}
	cases := map[string]Key{
		"no label":  {Kind: KindAES256, Secret: aes.secret, Expect: aes.expect},
		"short aes": {Label: "x", Kind: KindAES256, Secret: aes.secret[:16], Expect: aes.expect},
		"no expect": {Label: "x", Kind: KindAES256, Secret: aes.secret},
		"kcv only, no sign": {Label: "x", Kind: KindAES256, Secret: aes.secret,
			Expect: Check{KCV: aes.expect.KCV}, Usage: &noSign},
		"rsa marked ec": {Label: "x", Kind: KindECP256,
			Private: rsaKey(t, 2048).signer,
			Expect:  Check{SPKISHA256: make([]byte, 32)}},
	}
	for name, k := range cases {
		if _, err := s.ImportKey(bg, k, Options{}); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	dup := bundle(t, 2, "d")
	dup[1].Label = dup[0].Label
	if _, err := s.Import(bg, dup, Options{}); err == nil ||
		!strings.Contains(err.Error(), "twice") {
		t.Errorf("duplicate label in bundle: %v", err)
	}
	s.Close()
	h.assertEmpty("input")
}

// TestModuleLifecycle: one C_Initialize for many sessions, C_Finalize
// with the last; and a module someone else initialised is used but left
// initialised.
func TestModuleLifecycle(t *testing.T) {
	h := newSoftHSM(t)
	h.initToken("life")
	a := h.open("life")
	b := h.open("life")
	if n := loadedModules(); n != 1 {
		t.Errorf("%d modules loaded for two sessions, want 1", n)
	}
	a.Close()
	if _, err := b.List(true); err != nil {
		t.Errorf("second session broke when the first closed: %v", err)
	}
	b.Close()
	if n := loadedModules(); n != 0 {
		t.Errorf("%d modules loaded after both closed", n)
	}

	other := pkcs11.New(softhsmModule)
	if err := other.Initialize(); err != nil {
		t.Fatal(err)
	}
	defer func() { other.Finalize(); other.Destroy() }()
	s, err := Open(h.uri("life"), nil)
	if err != nil {
		t.Fatalf("module initialised by another owner: %v", err)
	}
	s.Close()
	if _, err := other.GetSlotList(true); err != nil {
		t.Errorf("closing our session finalised the other owner's "+
			"module: %v", err)
	}
}

func TestOpenNeedsModule(t *testing.T) {
	for _, u := range []*URI{
		{Token: "x"},
		{Token: "x", ModuleName: "softhsm2"},
		{Token: "x", ModulePath: filepath.Join(t.TempDir(), "none.so")},
	} {
		if _, err := Open(u, nil); err == nil {
			t.Errorf("Open(%v) succeeded", u)
		}
	}
	notLib := filepath.Join(t.TempDir(), "text.so")
	os.WriteFile(notLib, []byte("not a library"), 0o600)
	_, err := Open(&URI{ModulePath: notLib}, nil)
	if err == nil || !strings.Contains(err.Error(), notLib) || !errors.Is(err, ErrModule) {
		t.Errorf("loading a text file: %v", err)
	}
	missing := filepath.Join(t.TempDir(), "none.so")
	_, err = Tokens(&URI{ModulePath: missing})
	var me *ModuleError
	if !errors.As(err, &me) || me.Path != missing || me.Reason != "no such file" {
		t.Errorf("a missing module: %v", err)
	}
	if n := loadedModules(); n != 0 {
		t.Errorf("%d modules loaded after failures", n)
	}
}

func TestClosedSessionRefuses(t *testing.T) {
	h := newSoftHSM(t)
	h.initToken("closed")
	s := h.open("closed")
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if _, err := s.List(true); !errors.Is(err, errClosed) {
		t.Errorf("List after Close: %v", err)
	}
	if _, err := s.VerifyObject(ObjectRef{Label: "x"},
		Check{ECB: []byte{1, 2, 3}}); !errors.Is(err, errClosed) {
		t.Errorf("VerifyObject after Close: %v", err)
	}
	if _, err := s.ImportKey(bg, aesKey(t, 128).key("x"),
		Options{}); !errors.Is(err, errClosed) {
		t.Errorf("Import after Close: %v", err)
	}
}
