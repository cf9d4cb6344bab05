package hsm

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"
)

// URI is a parsed PKCS#11 URI (RFC 7512). It names a module, a token in it
// and, optionally, one object on that token. An empty field does not
// constrain the match.
//
// Slot numbers are not accepted (slot-id is refused): tokens move between
// slots, SoftHSM moves one as soon as it is initialised. pin-value is
// refused too, so a PIN never sits in argv or shell history.
type URI struct {
	// Token attributes (CK_TOKEN_INFO).
	Token        string
	Manufacturer string
	Serial       string
	Model        string

	// Library attributes (CK_INFO).
	LibraryManufacturer string
	LibraryDescription  string
	LibraryVersion      string

	// Slot attributes (CK_SLOT_INFO), other than the slot number.
	SlotDescription  string
	SlotManufacturer string

	// Object attributes.
	Object string // CKA_LABEL
	Type   string // public, private, cert, secret-key or data
	ID     []byte // CKA_ID

	// Query attributes.
	ModuleName string
	ModulePath string
	PINSource  string

	// Vendor holds x- attributes, path then query, in URI order. They are
	// kept for String and otherwise ignored.
	Vendor []VendorAttr
}

// VendorAttr is one vendor-specific (x-) attribute of a URI.
type VendorAttr struct {
	Query bool // in the query component rather than the path
	Name  string
	Value string
}

const uriScheme = "pkcs11:"

// uriField ties an attribute name to its URI field.
type uriField struct {
	name  string
	query bool
	str   func(*URI) *string
}

var uriFields = []uriField{
	{"token", false, func(u *URI) *string { return &u.Token }},
	{"manufacturer", false, func(u *URI) *string { return &u.Manufacturer }},
	{"serial", false, func(u *URI) *string { return &u.Serial }},
	{"model", false, func(u *URI) *string { return &u.Model }},
	{"library-manufacturer", false,
		func(u *URI) *string { return &u.LibraryManufacturer }},
	{"library-description", false,
		func(u *URI) *string { return &u.LibraryDescription }},
	{"library-version", false,
		func(u *URI) *string { return &u.LibraryVersion }},
	{"slot-description", false,
		func(u *URI) *string { return &u.SlotDescription }},
	{"slot-manufacturer", false,
		func(u *URI) *string { return &u.SlotManufacturer }},
	{"object", false, func(u *URI) *string { return &u.Object }},
	{"type", false, func(u *URI) *string { return &u.Type }},
	{"id", false, nil},
	{"module-name", true, func(u *URI) *string { return &u.ModuleName }},
	{"module-path", true, func(u *URI) *string { return &u.ModulePath }},
	{"pin-source", true, func(u *URI) *string { return &u.PINSource }},
}

var uriTypes = map[string]bool{
	"public": true, "private": true, "cert": true,
	"secret-key": true, "data": true,
}

// ParseURI parses a PKCS#11 URI. It refuses what RFC 7512 forbids
// (duplicate attributes, bad percent-encoding) and what custos will not
// use: unknown standard attributes, slot-id, and pin-value.
func ParseURI(s string) (*URI, error) {
	if len(s) < len(uriScheme) ||
		!strings.EqualFold(s[:len(uriScheme)], uriScheme) {
		return nil, fmt.Errorf("parsing %q: not a pkcs11: URI", short(s))
	}
	rest := s[len(uriScheme):]
	path, query, hasQuery := strings.Cut(rest, "?")

	u := &URI{}
	seen := map[string]bool{}
	if err := u.parseComponent(path, ";", false, seen); err != nil {
		return nil, fmt.Errorf("parsing %q: %w", short(s), err)
	}
	if hasQuery {
		if err := u.parseComponent(query, "&", true, seen); err != nil {
			return nil, fmt.Errorf("parsing %q: %w", short(s), err)
		}
	}
	return u, nil
}

// short cuts a URI for an error message. A refused URI may hold a PIN
// (pin-value), so the query is never echoed.
func short(s string) string {
	if i := strings.IndexByte(s, '?'); i >= 0 {
		s = s[:i] + "?…"
	}
	if len(s) > 120 {
		s = s[:117] + "…"
	}
	return s
}

func (u *URI) parseComponent(c, sep string, query bool,
	seen map[string]bool) error {

	if c == "" {
		return nil
	}
	for _, attr := range strings.Split(c, sep) {
		name, raw, ok := strings.Cut(attr, "=")
		if !ok || name == "" {
			return fmt.Errorf("attribute %q has no name=value form", attr)
		}
		if err := checkRaw(raw, query); err != nil {
			return fmt.Errorf("attribute %s: %w", name, err)
		}
		val, err := pctDecode(raw)
		if err != nil {
			return fmt.Errorf("attribute %s: %w", name, err)
		}
		if err := u.set(name, val, query, seen); err != nil {
			return err
		}
	}
	return nil
}

func (u *URI) set(name string, val []byte, query bool,
	seen map[string]bool) error {

	if strings.HasPrefix(name, "x-") {
		if !validVendorName(name) {
			return fmt.Errorf("vendor attribute %q: bad name", name)
		}
		u.Vendor = append(u.Vendor, VendorAttr{query, name, string(val)})
		return nil
	}
	switch name {
	case "pin-value":
		return fmt.Errorf("%w: a PIN in a URI ends up in argv and "+
			"shell history; use pin-source=file:/path or let custos "+
			"ask for it", ErrPINInURI)
	case "slot-id":
		return errors.New("slot-id is refused: slot numbers change " +
			"when tokens are initialised; name the token with token= " +
			"or serial=")
	}
	f, ok := findField(name)
	if !ok || f.query != query {
		where := "path"
		if query {
			where = "query"
		}
		return fmt.Errorf("unknown %s attribute %q", where, name)
	}
	if seen[name] {
		return fmt.Errorf("attribute %s appears twice", name)
	}
	seen[name] = true
	return u.setField(f, val)
}

func (u *URI) setField(f uriField, val []byte) error {
	if f.str == nil {
		u.ID = nil
		if len(val) > 0 {
			u.ID = val
		}
		return nil
	}
	if !utf8.Valid(val) {
		return fmt.Errorf("attribute %s is not UTF-8", f.name)
	}
	s := string(val)
	switch {
	case f.name == "type" && !uriTypes[s]:
		return fmt.Errorf("type %q is not public, private, cert, "+
			"secret-key or data", s)
	case f.name == "library-version" && !validVersion(s):
		return fmt.Errorf("library-version %q is not M or M.m", s)
	}
	*f.str(u) = s
	return nil
}

func findField(name string) (uriField, bool) {
	for _, f := range uriFields {
		if f.name == name {
			return f, true
		}
	}
	return uriField{}, false
}

func validVendorName(name string) bool {
	if len(name) < 3 {
		return false
	}
	for _, c := range name[2:] {
		if !isAlnum(c) && c != '-' && c != '_' {
			return false
		}
	}
	return true
}

func validVersion(s string) bool {
	major, minor, dot := strings.Cut(s, ".")
	if !digits(major) {
		return false
	}
	return !dot || digits(minor)
}

func digits(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

func isAlnum(c rune) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' ||
		c >= '0' && c <= '9'
}

// unreserved is RFC 3986 unreserved; pathExtra and queryExtra are the
// further characters RFC 7512 lets stand unencoded in each component.
const (
	pathExtra  = ":[]@!$'()*+,=&"
	queryExtra = ":[]@!$'()*+,=/?|;"
)

func isUnreserved(c byte) bool {
	return isAlnum(rune(c)) || strings.IndexByte("-._~", c) >= 0
}

// checkRaw refuses characters that must be percent-encoded.
func checkRaw(raw string, query bool) error {
	extra := pathExtra
	if query {
		extra = queryExtra
	}
	for i := 0; i < len(raw); i++ {
		c := raw[i]
		if c == '%' || isUnreserved(c) || strings.IndexByte(extra, c) >= 0 {
			continue
		}
		return fmt.Errorf("character %q must be percent-encoded", c)
	}
	return nil
}

func pctDecode(s string) ([]byte, error) {
	out := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		if s[i] != '%' {
			out = append(out, s[i])
			continue
		}
		if i+2 >= len(s) || !isHex(s[i+1]) || !isHex(s[i+2]) {
			return nil, errors.New("bad percent-encoding")
		}
		out = append(out, unhex(s[i+1])<<4|unhex(s[i+2]))
		i += 2
	}
	return out, nil
}

func isHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' ||
		c >= 'A' && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case c >= 'a':
		return c - 'a' + 10
	case c >= 'A':
		return c - 'A' + 10
	}
	return c - '0'
}

// String formats the URI with attributes in a fixed order: the path
// attributes, then module and PIN source, vendor attributes last. Text
// values are percent-encoded where RFC 7512 requires, the ID entirely.
func (u *URI) String() string {
	var path, query []string
	for _, f := range uriFields {
		if f.str == nil {
			if len(u.ID) > 0 {
				path = append(path, "id="+pctEncodeAll(u.ID))
			}
			continue
		}
		v := *f.str(u)
		if v == "" {
			continue
		}
		if f.query {
			query = append(query, f.name+"="+pctEncode(v, queryExtraOut))
		} else {
			path = append(path, f.name+"="+pctEncode(v, pathExtraOut))
		}
	}
	for _, v := range u.Vendor {
		if v.Query {
			query = append(query, v.Name+"="+pctEncode(v.Value, queryExtraOut))
		} else {
			path = append(path, v.Name+"="+pctEncode(v.Value, pathExtraOut))
		}
	}

	s := uriScheme + strings.Join(path, ";")
	if len(query) > 0 {
		s += "?" + strings.Join(query, "&")
	}
	return s
}

// The characters String leaves unencoded besides unreserved: fewer than
// the parser accepts, so the output reads the same to stricter parsers.
const (
	pathExtraOut  = ":@!$'()*+,"
	queryExtraOut = ":@!$'()*+,/"
)

func pctEncode(s, extra string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if isUnreserved(c) || strings.IndexByte(extra, c) >= 0 {
			b.WriteByte(c)
			continue
		}
		fmt.Fprintf(&b, "%%%02X", c)
	}
	return b.String()
}

func pctEncodeAll(p []byte) string {
	var b strings.Builder
	for _, c := range p {
		fmt.Fprintf(&b, "%%%02X", c)
	}
	return b.String()
}

// tokenSelector describes the token attributes of the URI for messages.
func (u *URI) tokenSelector() string {
	var parts []string
	add := func(name, v string) {
		if v != "" {
			parts = append(parts, fmt.Sprintf("%s=%q", name, v))
		}
	}
	add("token", u.Token)
	add("serial", u.Serial)
	add("manufacturer", u.Manufacturer)
	add("model", u.Model)
	add("slot-description", u.SlotDescription)
	add("slot-manufacturer", u.SlotManufacturer)
	return strings.Join(parts, " ")
}
