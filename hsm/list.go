package hsm

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/miekg/pkcs11"
)

// recordApp is the CKA_APPLICATION of the data objects that record what
// custos imported.
const recordApp = "custos"

// record is the JSON value of an import record data object. It holds only
// public facts: names, kinds and check values.
type record struct {
	Version int         `json:"version"`
	Time    time.Time   `json:"time"`
	Keys    []recordKey `json:"keys"`
}

type recordKey struct {
	Label      string `json:"label"`
	ID         string `json:"id"`
	Kind       string `json:"kind"`
	Path       string `json:"path"`
	KCV        string `json:"kcv,omitempty"`
	ECB        string `json:"ecb,omitempty"`
	HMAC       string `json:"hmac,omitempty"`
	SPKISHA256 string `json:"spki_sha256,omitempty"`
}

// writeRecord stores the import record as a private data object.
func (r *importRun) writeRecord(out []Imported) error {
	rec := record{Version: 1, Time: time.Now().UTC()}
	for _, im := range out {
		g := im.Proof.Got
		rec.Keys = append(rec.Keys, recordKey{
			Label: im.Label, ID: idHex(im.ID), Kind: im.Kind.String(),
			Path: im.Path.String(), KCV: upperHex(g.KCV),
			ECB: upperHex(g.ECB), HMAC: upperHex(g.HMAC),
			SPKISHA256: hex.EncodeToString(g.SPKISHA256),
		})
	}
	value, err := json.Marshal(rec)
	if err != nil {
		return fmt.Errorf("encoding import record: %w", err)
	}

	var t attrs
	t.add(pkcs11.CKA_CLASS, pkcs11.CKO_DATA)
	t.add(pkcs11.CKA_TOKEN, true)
	t.add(pkcs11.CKA_PRIVATE, true)
	t.add(pkcs11.CKA_APPLICATION, recordApp)
	t.add(pkcs11.CKA_LABEL,
		"custos import "+rec.Time.Format("2006-01-02T15:04:05.000Z"))
	t.add(pkcs11.CKA_VALUE, value)
	_, err = r.create(t, "import record")
	return err
}

// records reads every custos import record on the token, keyed by label
// and hex ID; the newest record wins.
func (s *Session) records() (map[string]time.Time, error) {
	hs, err := s.find(
		pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_DATA),
		pkcs11.NewAttribute(pkcs11.CKA_APPLICATION, recordApp))
	if err != nil {
		return nil, err
	}
	out := map[string]time.Time{}
	for _, h := range hs {
		v, ok := s.attr(h, pkcs11.CKA_VALUE)
		var rec record
		if !ok || json.Unmarshal(v, &rec) != nil || rec.Version != 1 {
			continue // not ours after all, or damaged: list without it
		}
		for _, k := range rec.Keys {
			key := k.Label + "\x00" + k.ID
			if rec.Time.After(out[key]) {
				out[key] = rec.Time
			}
		}
	}
	return out, nil
}

// Object describes a key object on the token, with check values the
// token computed just now.
type Object struct {
	Label    string
	ID       []byte
	Class    string // "secret key" or "private key"
	Kind     string // "aes-256", "rsa-3072", …; "aes" if the length is hidden
	Custos   bool   // a custos import record names it
	Imported time.Time
	Check    Check
	Notes    []string // check values that could not be computed, and why
}

// List describes the key objects on the token: those custos imported, or
// all secret and private keys when all is true.
func (s *Session) List(all bool) ([]Object, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.live(); err != nil {
		return nil, fmt.Errorf("listing: %w", err)
	}
	recs, err := s.records()
	if err != nil {
		return nil, err
	}
	var out []Object
	for _, class := range []uint{pkcs11.CKO_SECRET_KEY,
		pkcs11.CKO_PRIVATE_KEY} {
		hs, err := s.find(pkcs11.NewAttribute(pkcs11.CKA_CLASS, class),
			pkcs11.NewAttribute(pkcs11.CKA_TOKEN, true))
		if err != nil {
			return nil, err
		}
		for _, h := range hs {
			o, err := s.describe(h)
			if err != nil {
				return nil, fmt.Errorf("reading objects of %v: %w",
					s.info, err)
			}
			when, custos := recs[o.label+"\x00"+idHex(o.id)]
			if !custos && !all {
				continue
			}
			obj := s.listOne(o)
			obj.Custos, obj.Imported = custos, when
			out = append(out, obj)
		}
	}
	return out, nil
}

// listOne computes what check values it can for one object.
func (s *Session) listOne(o objRef) Object {
	kind, kindName := s.kindOf(o.h, o.class)
	obj := Object{Label: o.label, ID: o.id, Class: classNames[o.class],
		Kind: kindName}
	if kind == 0 {
		obj.Notes = append(obj.Notes, "kind not supported by custos")
		return obj
	}
	if kind.IsSecret() {
		obj.Check, obj.Notes = s.secretChecks(o.h, kind)
		return obj
	}
	pubObj, err := s.publicFor(o, kind)
	if err == nil {
		var pub any
		if pub, err = s.publicKey(pubObj, kind); err == nil {
			obj.Check.SPKISHA256, err = spkiHash(pub)
		}
	}
	if err != nil {
		obj.Notes = append(obj.Notes, "spki-sha256: "+err.Error())
	}
	return obj
}

// secretChecks computes the check values of a secret key that its
// attributes and the token's mechanisms allow.
func (s *Session) secretChecks(h pkcs11.ObjectHandle,
	kind Kind) (Check, []string) {

	var c Check
	var notes []string
	try := func(method string, ok bool, f func() ([]byte, error)) []byte {
		if !ok {
			notes = append(notes, method+": key or token does not allow it")
			return nil
		}
		v, err := f()
		if err != nil {
			notes = append(notes, method+": "+err.Error())
			return nil
		}
		return v[:min(len(v), checkLen)]
	}
	can := s.objectAbilities(h)
	if kind == KindHMAC {
		c.HMAC = try(methodHMAC, can.hmac,
			func() ([]byte, error) { return s.hmac(h) })
		return c, notes
	}

	ok, ecb := s.ecbSource(h, can)
	c.ECB = try(methodECB, ok, ecb)
	c.KCV = try(methodCMAC, can.cmac,
		func() ([]byte, error) { return s.cmac(h) })
	return c, notes
}

// objectAbilities reads what an existing secret key may do here.
func (s *Session) objectAbilities(h pkcs11.ObjectHandle) abilities {
	ecb, _ := s.has(pkcs11.CKM_AES_ECB, opEncrypt)
	cmac, _ := s.has(pkcs11.CKM_AES_CMAC, opSign)
	hmac, _ := s.has(pkcs11.CKM_SHA256_HMAC, opSign)
	sign := s.attrBool(h, pkcs11.CKA_SIGN)
	return abilities{
		encrypt: ecb && s.attrBool(h, pkcs11.CKA_ENCRYPT),
		cmac:    cmac && sign,
		hmac:    hmac && sign,
	}
}

// kindOf tells the kind of a key object. Kind is 0 for kinds custos does
// not restore; an AES key whose length the token hides (SoftHSM does for
// unwrapped keys) is KindAES256 with the name "aes".
func (s *Session) kindOf(h pkcs11.ObjectHandle, class uint) (Kind, string) {
	kt, ok := s.attrUint(h, pkcs11.CKA_KEY_TYPE)
	if !ok {
		return 0, "unknown"
	}
	switch {
	case class == pkcs11.CKO_SECRET_KEY && kt == pkcs11.CKK_AES:
		n, _ := s.attrUint(h, pkcs11.CKA_VALUE_LEN)
		k := map[uint]Kind{16: KindAES128, 24: KindAES192, 32: KindAES256}[n]
		if k == 0 {
			return KindAES256, "aes"
		}
		return k, k.String()
	case class == pkcs11.CKO_SECRET_KEY && kt == pkcs11.CKK_GENERIC_SECRET:
		return KindHMAC, KindHMAC.String()
	case class != pkcs11.CKO_PRIVATE_KEY:
		return 0, fmt.Sprintf("key type 0x%X", kt)
	case kt == pkcs11.CKK_RSA:
		n, _ := s.attr(h, pkcs11.CKA_MODULUS)
		return KindRSA, fmt.Sprintf("rsa-%d", bitLen(n))
	}
	params, _ := s.attr(h, pkcs11.CKA_EC_PARAMS)
	switch {
	case kt == pkcs11.CKK_EC && bytes.Equal(params, oidP256):
		return KindECP256, KindECP256.String()
	case kt == pkcs11.CKK_EC && bytes.Equal(params, oidP384):
		return KindECP384, KindECP384.String()
	case kt == ckkECEdwards && (bytes.Equal(params, oidEd25519) ||
		bytes.Contains(params, []byte("edwards25519"))):
		return KindEd25519, KindEd25519.String()
	}
	return 0, fmt.Sprintf("key type 0x%X", kt)
}

func bitLen(n []byte) int {
	n = bytes.TrimLeft(n, "\x00")
	if len(n) == 0 {
		return 0
	}
	bits := 8 * len(n)
	for b := n[0]; b&0x80 == 0; b <<= 1 {
		bits--
	}
	return bits
}

// publicFor finds the public key object paired with a private key: same
// ID, else same label. An RSA private key object carries its public
// values, so it stands in when there is no public key object.
func (s *Session) publicFor(o objRef, kind Kind) (pkcs11.ObjectHandle,
	error) {

	match := pkcs11.NewAttribute(pkcs11.CKA_ID, o.id)
	if len(o.id) == 0 {
		match = pkcs11.NewAttribute(pkcs11.CKA_LABEL, o.label)
	}
	hs, err := s.find(
		pkcs11.NewAttribute(pkcs11.CKA_CLASS, pkcs11.CKO_PUBLIC_KEY),
		pkcs11.NewAttribute(pkcs11.CKA_KEY_TYPE, keyType(kind)), match)
	if err != nil {
		return 0, err
	}
	switch {
	case len(hs) == 1:
		return hs[0], nil
	case len(hs) == 0 && kind == KindRSA:
		return o.h, nil
	case len(hs) == 0:
		return 0, fmt.Errorf("no public key object beside %v", o)
	}
	return 0, fmt.Errorf("%d public key objects match %v", len(hs), o)
}

// ObjectRef selects a key object by label, ID or both.
type ObjectRef struct {
	Label string
	ID    []byte
}

func (r ObjectRef) String() string { return objectName(r.Label, r.ID) }

// VerifyObject proves that a key already on the token matches the
// expected check values: it computes them inside the token (for a private
// key: hashes the public key object's SPKI, then signs a challenge inside
// and verifies it with that public key).
func (s *Session) VerifyObject(ref ObjectRef, expected Check) (Proof,
	error) {

	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.live(); err != nil {
		return Proof{}, fmt.Errorf("verifying %v: %w", ref, err)
	}
	o, err := s.findKey(ref)
	if err != nil {
		return Proof{}, err
	}
	kind, kindName := s.kindOf(o.h, o.class)
	name := o.String()
	if kind == 0 {
		return Proof{}, fmt.Errorf("%v: %s is a %s, which custos does not "+
			"verify", s.info, name, kindName)
	}
	if err := expectFor(kind, expected); err != nil {
		return Proof{}, fmt.Errorf("verifying %s on %v: %w", name, s.info,
			err)
	}

	pr, err := s.proveFound(o, kind, expected)
	pr.Object = name
	return pr, err
}

// proveFound proves a key object VerifyObject found.
func (s *Session) proveFound(o objRef, kind Kind, expected Check) (Proof,
	error) {

	name := o.String()
	if kind.IsSecret() {
		return s.proveSecret(name, kind, o.h, expected,
			s.objectAbilities(o.h))
	}
	if ok, err := s.has(signMech(kind), opSign); err != nil || !ok {
		if err != nil {
			return Proof{}, err
		}
		return Proof{}, &MechanismError{Token: s.info.String(),
			Missing: []string{need{signMech(kind), opSign}.String()}}
	}
	pubObj, err := s.publicFor(o, kind)
	if err != nil {
		return Proof{}, fmt.Errorf("%v: %w", s.info, err)
	}
	return s.provePrivate(name, kind, o.h, pubObj, nil, expected)
}

// expectFor refuses expected values that cannot apply to the kind.
func expectFor(kind Kind, c Check) error {
	switch {
	case kind.IsAES() && len(c.KCV) == 0 && len(c.ECB) == 0:
		return errors.New("an aes key needs an expected kcv or ecb value")
	case kind == KindHMAC && len(c.HMAC) == 0:
		return errors.New("an hmac key needs an expected hmac value")
	case !kind.IsSecret() && len(c.SPKISHA256) != 32:
		return errors.New("a private key needs an expected spki-sha256 " +
			"value of 32 bytes")
	}
	return nil
}

// findKey finds the one secret or private key object ref selects.
func (s *Session) findKey(ref ObjectRef) (objRef, error) {
	if ref.Label == "" && len(ref.ID) == 0 {
		return objRef{}, errors.New("no object named: give object= or " +
			"id= in the URI")
	}
	var found []objRef
	for _, class := range []uint{pkcs11.CKO_SECRET_KEY,
		pkcs11.CKO_PRIVATE_KEY} {
		tmpl := []*pkcs11.Attribute{
			pkcs11.NewAttribute(pkcs11.CKA_CLASS, class)}
		if ref.Label != "" {
			tmpl = append(tmpl,
				pkcs11.NewAttribute(pkcs11.CKA_LABEL, ref.Label))
		}
		if len(ref.ID) > 0 {
			tmpl = append(tmpl, pkcs11.NewAttribute(pkcs11.CKA_ID, ref.ID))
		}
		hs, err := s.find(tmpl...)
		if err != nil {
			return objRef{}, err
		}
		for _, h := range hs {
			o, err := s.describe(h)
			if err != nil {
				return objRef{}, fmt.Errorf("reading %v on %v: %w", ref,
					s.info, err)
			}
			found = append(found, o)
		}
	}

	switch len(found) {
	case 0:
		return objRef{}, fmt.Errorf("%v: %v: %w", s.info, ref,
			ErrObjectNotFound)
	case 1:
		return found[0], nil
	}
	var names []string
	for _, o := range found {
		names = append(names, o.String())
	}
	return objRef{}, fmt.Errorf("%v: %d key objects match %v: %s; name "+
		"one by object= and id=", s.info, len(found), ref,
		strings.Join(names, ", "))
}
