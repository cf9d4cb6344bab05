package hsm

import (
	"fmt"

	"github.com/miekg/pkcs11"
)

// objRef is an object found on the token.
type objRef struct {
	h     pkcs11.ObjectHandle
	class uint
	label string
	id    []byte
}

var classNames = map[uint]string{
	pkcs11.CKO_DATA:        "data object",
	pkcs11.CKO_CERTIFICATE: "certificate",
	pkcs11.CKO_PUBLIC_KEY:  "public key",
	pkcs11.CKO_PRIVATE_KEY: "private key",
	pkcs11.CKO_SECRET_KEY:  "secret key",
}

func (o objRef) String() string {
	class, ok := classNames[o.class]
	if !ok {
		class = fmt.Sprintf("object of class 0x%X", o.class)
	}
	if len(o.id) == 0 {
		return fmt.Sprintf("%s %q", class, o.label)
	}
	return fmt.Sprintf("%s %q (id %s)", class, o.label, idHex(o.id))
}

// tokenIndex maps the labels and IDs of the token's objects. It is built
// in one pass, so a bundle of many keys checks its conflicts in memory
// instead of one search per key.
type tokenIndex struct {
	byLabel map[string][]objRef
	byID    map[string][]objRef
}

// conflicts lists the objects holding label or id, each once.
func (x *tokenIndex) conflicts(label string, id []byte) []objRef {
	var out []objRef
	seen := map[pkcs11.ObjectHandle]bool{}
	for _, o := range append(x.byLabel[label], x.byID[string(id)]...) {
		if !seen[o.h] {
			seen[o.h] = true
			out = append(out, o)
		}
	}
	return out
}

// index reads the class, label and ID of every token object. Objects are
// found class by class so that each costs one C_GetAttributeValue: a
// token's objects may number tens of thousands, and SoftHSM answers each
// call in a few hundred microseconds.
func (s *Session) index() (*tokenIndex, error) {
	x := &tokenIndex{byLabel: map[string][]objRef{},
		byID: map[string][]objRef{}}
	for _, class := range []uint{pkcs11.CKO_SECRET_KEY,
		pkcs11.CKO_PRIVATE_KEY, pkcs11.CKO_PUBLIC_KEY,
		pkcs11.CKO_CERTIFICATE, pkcs11.CKO_DATA} {
		hs, err := s.find(pkcs11.NewAttribute(pkcs11.CKA_TOKEN, true),
			pkcs11.NewAttribute(pkcs11.CKA_CLASS, class))
		if err != nil {
			return nil, err
		}
		for _, h := range hs {
			o, err := s.describeAs(h, class)
			if err != nil {
				return nil, fmt.Errorf("reading objects of %v: %w",
					s.info, err)
			}
			x.add(o)
		}
	}
	// TODO: objects of other classes (domain parameters, vendor
	// classes) are not indexed; custos never gives its keys such labels.
	return x, nil
}

func (x *tokenIndex) add(o objRef) {
	x.byLabel[o.label] = append(x.byLabel[o.label], o)
	if len(o.id) > 0 {
		x.byID[string(o.id)] = append(x.byID[string(o.id)], o)
	}
}

// describe reads an object's class, label and ID.
func (s *Session) describe(h pkcs11.ObjectHandle) (objRef, error) {
	a, err := s.attrs(h, pkcs11.CKA_CLASS)
	if err != nil {
		return objRef{}, err
	}
	return s.describeAs(h, bytesToUint(a[0]))
}

// describeAs reads the label and ID of an object of a known class. Only
// keys and certificates have an ID; asking a data object for one fails
// the whole call.
func (s *Session) describeAs(h pkcs11.ObjectHandle,
	class uint) (objRef, error) {

	o := objRef{h: h, class: class}
	switch class {
	case pkcs11.CKO_SECRET_KEY, pkcs11.CKO_PRIVATE_KEY,
		pkcs11.CKO_PUBLIC_KEY, pkcs11.CKO_CERTIFICATE:
		a, err := s.attrs(h, pkcs11.CKA_LABEL, pkcs11.CKA_ID)
		if err != nil {
			return o, err
		}
		o.label, o.id = string(a[0]), a[1]
	default:
		a, err := s.attrs(h, pkcs11.CKA_LABEL)
		if err != nil {
			return o, err
		}
		o.label = string(a[0])
	}
	return o, nil
}

// find lists the objects matching a template.
func (s *Session) find(tmpl ...*pkcs11.Attribute) ([]pkcs11.ObjectHandle,
	error) {

	if err := s.p.FindObjectsInit(s.sh, tmpl); err != nil {
		return nil, fmt.Errorf("searching %v: %w", s.info, err)
	}
	var out []pkcs11.ObjectHandle
	for {
		hs, _, err := s.p.FindObjects(s.sh, 1024)
		if err != nil {
			s.p.FindObjectsFinal(s.sh)
			return nil, fmt.Errorf("searching %v: %w", s.info, err)
		}
		if len(hs) == 0 {
			break
		}
		out = append(out, hs...)
	}
	if err := s.p.FindObjectsFinal(s.sh); err != nil {
		return nil, fmt.Errorf("searching %v: %w", s.info, err)
	}
	return out, nil
}
