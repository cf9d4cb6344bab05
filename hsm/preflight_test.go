package hsm

import (
	"bytes"
	"crypto"
	"errors"
	"strings"
	"testing"
)

// CheckFree finds a taken label and a taken ID before any key material
// exists, says which object is in the way, and changes nothing; free
// labels and keys told to replace or keep both pass.
func TestCheckFree(t *testing.T) {
	h := newSoftHSM(t)
	h.initToken("pre")
	s := h.open("pre")
	old := aesKey(t, 256)
	if _, err := s.ImportKey(bg, old.key("master"), Options{}); err != nil {
		t.Fatal(err)
	}
	oldID := keyID(t, s, "master")

	err := s.CheckFree([]Key{{Label: "free"}, {Label: "master", ID: []byte{1}}})
	var oe *ObjectExistsError
	if !errors.As(err, &oe) || !errors.Is(err, ErrObjectExists) ||
		!strings.Contains(oe.Key, `"master"`) || len(oe.Existing) != 1 ||
		!strings.Contains(oe.Existing[0], `secret key "master"`) {
		t.Fatalf("label taken: err = %v", err)
	}
	err = s.CheckFree([]Key{{Label: "another", ID: bytes.Clone(oldID)}})
	if !errors.As(err, &oe) || !strings.Contains(oe.Key, `"another"`) {
		t.Fatalf("id taken: err = %v", err)
	}
	if err := s.CheckFree([]Key{{Label: "free", ID: []byte{9, 9}}}); err != nil {
		t.Fatalf("a free label and id refused: %v", err)
	}
	if err := s.CheckFree([]Key{{Label: "master", OnConflict: Replace}}); err != nil {
		t.Fatalf("a key told to replace refused: %v", err)
	}
	for _, tt := range []struct {
		k            Key
		label, idTkn bool
	}{
		{Key{Label: "master"}, true, false},
		{Key{Label: "other", ID: oldID}, false, true},
		{Key{Label: "master", ID: oldID}, true, true},
		{Key{Label: "free", ID: []byte{7}}, false, false},
	} {
		l, i, err := s.Taken(tt.k)
		if err != nil || l != tt.label || i != tt.idTkn {
			t.Errorf("Taken(%q, %x) = %v, %v, %v; want %v, %v", tt.k.Label, tt.k.ID, l, i, err, tt.label, tt.idTkn)
		}
	}
	if objs := keyObjects(t, s); len(objs) != 1 {
		t.Fatalf("CheckFree changed the token: %v", objs)
	}

	s.Close()
	if err := s.CheckFree(nil); err == nil {
		t.Error("a closed session checked labels")
	}
}

// CheckMechanisms names what the token lacks before any key is at hand.
func TestCheckMechanisms(t *testing.T) {
	h := newSoftHSM(t)
	h.initToken("mechs")
	s := h.open("mechs")
	keys := []Key{{Label: "k", Kind: KindAES256, Expect: Check{KCV: []byte{1, 2, 3}}}}
	if err := s.CheckMechanisms(keys, Options{}); err != nil {
		t.Fatalf("SoftHSM can import an AES key plainly: %v", err)
	}
	if err := s.CheckMechanisms(keys, Options{Path: PathUnwrap, OAEPHash: crypto.SHA1}); err != nil {
		t.Fatalf("SoftHSM can unwrap an AES key: %v", err)
	}
	err := s.CheckMechanisms(keys, Options{Require: []uint{0x80004321}})
	if !errors.Is(err, ErrMechanismMissing) || !strings.Contains(err.Error(), "0x80004321") {
		t.Fatalf("err = %v, want mechanism 0x80004321 missing", err)
	}
}

func TestURIPINFile(t *testing.T) {
	for _, tt := range []struct{ src, want string }{
		{"", ""},
		{"file:/etc/custos/pin", "/etc/custos/pin"},
		{"file:///run/pin", "/run/pin"},
		{"/a/../b/pin", "/b/pin"},
	} {
		got, err := (&URI{PINSource: tt.src}).PINFile()
		if err != nil || got != tt.want {
			t.Errorf("PINFile(%q) = %q, %v; want %q", tt.src, got, err, tt.want)
		}
	}
	for _, bad := range []string{"|cat pin", "https://example.invalid/pin", "file://host/pin"} {
		if got, err := (&URI{PINSource: bad}).PINFile(); err == nil {
			t.Errorf("PINFile(%q) = %q, want an error", bad, got)
		}
	}
}
