package ceremony

import (
	"bytes"
	"strings"
	"testing"

	"custos/hsm"
	"custos/shares"
)

// TestNameHSMKey: object= and id= in the URI name the key; without them
// the set's label and ID do; a set made without a label gets a default,
// never the empty label a token import refuses.
func TestNameHSMKey(t *testing.T) {
	rec := dealRecord(t)
	id := rec.SetID[:]
	for _, tt := range []struct {
		uri, label string
		setLabel   string
		id         []byte
		from       string
	}{
		{"pkcs11:token=v;object=master", "master", "payments master", id, "object="},
		{"pkcs11:token=v", "payments master", "payments master", id, "the set's label"},
		{"pkcs11:token=v", "custos-" + strings.ToLower(rec.SetID.Short()), "", id, "default"},
		{"pkcs11:token=v;object=m2;id=%0a%0b", "m2", "", []byte{10, 11}, "object="},
	} {
		u, err := hsm.ParseURI(tt.uri)
		if err != nil {
			t.Fatal(err)
		}
		r := *rec
		r.Label = tt.setLabel
		n := NameHSMKey(u, &r)
		if n.Label != tt.label || !bytes.Equal(n.ID, tt.id) || !strings.Contains(n.From, tt.from) {
			t.Errorf("%s, set label %q: named %q %x (from %s), want %q %x", tt.uri, tt.setLabel,
				n.Label, n.ID, n.From, tt.label, tt.id)
		}
		keys, _, err := PlanHSMKeys(u, &r)
		if err != nil || len(keys) != 1 || keys[0].Label != tt.label || !bytes.Equal(keys[0].ID, tt.id) ||
			keys[0].Kind != hsm.KindAES256 || len(keys[0].Expect.KCV) == 0 {
			t.Errorf("%s: planned %+v, %v", tt.uri, keys, err)
		}
	}
}

// TestPlanHSMKeysRefuses: what no HSM takes is refused before any share
// is combined.
func TestPlanHSMKeysRefuses(t *testing.T) {
	rec := dealRecord(t)
	u, _ := hsm.ParseURI("pkcs11:token=v")
	raw := *rec
	raw.Kind, raw.Algorithm = shares.KindRaw, "raw"
	if _, _, err := PlanHSMKeys(u, &raw); err == nil || !strings.Contains(err.Error(), "raw secret is not a key an HSM takes") {
		t.Errorf("raw: %v", err)
	}
	sealed := *rec
	sealed.Sealed = &SealedRecord{File: SealedFile, Size: 5000}
	if _, _, err := PlanHSMKeys(u, &sealed); err == nil || !strings.Contains(err.Error(), "sealed file") {
		t.Errorf("sealed: %v", err)
	}
	bundle := *rec
	bundle.Kind = shares.KindBundle
	if _, _, err := PlanHSMKeys(u, &bundle); err != ErrNoManifest {
		t.Errorf("bundle without manifest: %v", err)
	}
	bundle.Manifest = &shares.Manifest{Entries: []shares.Entry{
		{Name: "k/a.aes", Kind: shares.KindAES, Algorithm: "AES-128", Checks: rec.Checks},
		{Name: "notes", Kind: shares.KindRaw, Algorithm: "raw"},
	}}
	withID, _ := hsm.ParseURI("pkcs11:token=v;object=p-;id=%01")
	if _, _, err := PlanHSMKeys(withID, &bundle); err == nil || !strings.Contains(err.Error(), "id= in the URI cannot name the keys of a bundle") {
		t.Errorf("bundle with id=: %v", err)
	}
	prefixed, _ := hsm.ParseURI("pkcs11:token=v;object=p-")
	keys, skipped, err := PlanHSMKeys(prefixed, &bundle)
	if err != nil || len(keys) != 1 || keys[0].Label != "p-k/a.aes" ||
		!bytes.Equal(keys[0].ID, BundleKeyID(rec.SetID, "k/a.aes")) ||
		len(skipped) != 1 || !strings.HasPrefix(skipped[0], "notes (") {
		t.Errorf("bundle with prefix: %+v %q %v", keys, skipped, err)
	}
}
