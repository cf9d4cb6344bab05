package ceremony

import (
	"bytes"
	"crypto"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"strings"

	"custos/hsm"
	"custos/shares"
)

// HSMName is what a restored key is called on a token.
type HSMName struct {
	Label string // CKA_LABEL
	ID    []byte // CKA_ID
	// From says where the label came from, for the message that names
	// it: "object= in the URI", "the set's label" or "custos's default
	// for a set made without --label".
	From string
}

// NameHSMKey names the key of set rec on the token u selects. The URI's
// object= is its label and its id= its CKA_ID when given. Otherwise the
// label is the set's label, or "custos-" and the short set ID for a set
// made without one, and the CKA_ID is the set ID, by which "custos hsm
// verify --set" finds the key again. The recovery ceremony and "custos
// recover --hsm" both name keys here, so they agree.
func NameHSMKey(u *hsm.URI, rec *SetRecord) HSMName {
	n := HSMName{Label: rec.Label, ID: bytes.Clone(rec.SetID[:]),
		From: "the set's label"}
	switch {
	case u != nil && u.Object != "":
		n.Label, n.From = u.Object, "object= in the URI"
	case n.Label == "":
		n.Label = DefaultHSMLabel(rec.SetID)
		n.From = "custos's default for a set made without --label"
	}
	if u != nil && len(u.ID) > 0 {
		n.ID = bytes.Clone(u.ID)
	}
	return n
}

// DefaultHSMLabel is the label of a key restored from a set that has no
// label of its own, when the URI gives no object=.
func DefaultHSMLabel(id shares.SetID) string {
	return "custos-" + strings.ToLower(id.Short())
}

// HSMKeyFor turns a rebuilt secret of set rec into the key an import into
// u's token takes, named by NameHSMKey, with the record's check values.
func HSMKeyFor(sec *shares.Secret, u *hsm.URI, rec *SetRecord) (hsm.Key, error) {
	n := NameHSMKey(u, rec)
	k, err := HSMKey(sec, rec.SetID, n.Label, rec.Checks)
	if err != nil {
		return hsm.Key{}, err
	}
	k.ID = n.ID
	return k, nil
}

// HSMBundlePrefix reads how a URI names the keys of a bundle: object= is
// a prefix put before every entry's name (object=2026- gives
// "2026-payments.aes"). id= is refused: one CKA_ID cannot name many keys,
// and each key's ID is derived from the set ID and its entry name.
func HSMBundlePrefix(u *hsm.URI) (string, error) {
	if u != nil && len(u.ID) > 0 {
		return "", errors.New("id= in the URI cannot name the keys of a bundle: each key's id comes from the set ID and its name; leave id= out (object= is a prefix for their labels)")
	}
	if u == nil {
		return "", nil
	}
	return u.Object, nil
}

// BundleKeyID is the CKA_ID of a bundle entry's key: the first 16 bytes
// of SHA-256 over the set ID and the entry name. It does not depend on
// the label prefix, so the key can be found again by ID alone.
func BundleKeyID(id shares.SetID, name string) []byte {
	sum := sha256.Sum256(append(bytes.Clone(id[:]), name...))
	return sum[:16]
}

// PlanHSMKeys lists the keys a recovery of set rec into u's token will
// import, named as the import will name them and with the check values it
// will prove, but without key material: for hsm.Session.CheckFree and
// CheckMechanisms, before any share is combined. For a bundle they are
// the manifest entries an HSM takes; the others are named in skipped,
// with why.
func PlanHSMKeys(u *hsm.URI, rec *SetRecord) (keys []hsm.Key, skipped []string, err error) {
	if rec.Kind != shares.KindBundle {
		if rec.Sealed != nil {
			// TODO: a key too large to ride inside the shares would be
			// read into memory from its sealed file; no HSM key is that
			// large (4096-bit RSA is 3 KB of PEM), so it is refused.
			return nil, nil, fmt.Errorf("a %s secret of more than %d bytes, kept in a sealed file, is not a key an HSM takes",
				rec.Kind, shares.InlineLimit)
		}
		kind, err := hsmKindOf(rec.Kind, rec.Algorithm)
		if err != nil {
			return nil, nil, err
		}
		n := NameHSMKey(u, rec)
		return []hsm.Key{{Label: n.Label, ID: n.ID, Kind: kind, Expect: hsmCheck(rec.Checks)}}, nil, nil
	}
	prefix, err := HSMBundlePrefix(u)
	if err != nil {
		return nil, nil, err
	}
	if rec.Manifest == nil {
		return nil, nil, ErrNoManifest
	}
	for _, e := range rec.Manifest.Entries {
		kind, err := hsmKindOf(e.Kind, e.Algorithm)
		if err != nil {
			skipped = append(skipped, fmt.Sprintf("%s (%v)", e.Name, err))
			continue
		}
		keys = append(keys, hsm.Key{Label: prefix + e.Name, ID: BundleKeyID(rec.SetID, e.Name),
			Kind: kind, Expect: hsmCheck(e.Checks)})
	}
	if len(keys) == 0 {
		return nil, skipped, errors.New("the bundle holds no key an HSM takes")
	}
	return keys, skipped, nil
}

// hsmKindOf maps a custos secret kind and algorithm, as a set record or
// a bundle manifest has them, to an HSM key kind.
func hsmKindOf(kind shares.Kind, alg string) (hsm.Kind, error) {
	switch kind {
	case shares.KindAES:
		k := map[string]hsm.Kind{"AES-128": hsm.KindAES128, "AES-192": hsm.KindAES192, "AES-256": hsm.KindAES256}[alg]
		if k == 0 {
			return 0, fmt.Errorf("an AES key of algorithm %q", alg)
		}
		return k, nil
	case shares.KindHMAC:
		return hsm.KindHMAC, nil
	case shares.KindPrivateKey:
		k := map[string]hsm.Kind{"EC P-256": hsm.KindECP256, "EC P-384": hsm.KindECP384, "Ed25519": hsm.KindEd25519}[alg]
		if k == 0 && strings.HasPrefix(alg, "RSA-") {
			k = hsm.KindRSA
		}
		if k == 0 {
			return 0, fmt.Errorf("a %s private key has no HSM key type here", alg)
		}
		return k, nil
	}
	return 0, fmt.Errorf("a %s secret is not a key an HSM takes", kind)
}

// HSMKey turns a rebuilt secret into the key an HSM import takes: its
// type, label, CKA_ID (the set ID) and the check values from the set
// record, which the import proves inside the token.
func HSMKey(sec *shares.Secret, setID shares.SetID, label string, checks []shares.CheckValue) (hsm.Key, error) {
	k := hsm.Key{Label: label, ID: bytes.Clone(setID[:]), Expect: hsmCheck(checks)}
	var err error
	k.Kind, k.Secret, k.Private, err = hsmMaterial(sec.Kind, sec.Algorithm, sec.Bytes)
	if err != nil {
		return hsm.Key{}, err
	}
	return k, nil
}

// hsmMaterial maps a custos secret kind to an HSM key kind and material.
func hsmMaterial(kind shares.Kind, alg string, b []byte) (hsm.Kind, []byte, crypto.Signer, error) {
	switch kind {
	case shares.KindAES:
		k := map[int]hsm.Kind{16: hsm.KindAES128, 24: hsm.KindAES192, 32: hsm.KindAES256}[len(b)]
		if k == 0 {
			return 0, nil, nil, fmt.Errorf("an AES key of %d bytes", len(b))
		}
		return k, b, nil, nil
	case shares.KindHMAC:
		return hsm.KindHMAC, b, nil, nil
	case shares.KindPrivateKey:
		key, alg, err := shares.ParsePrivateKey(b)
		if err != nil {
			return 0, nil, nil, err
		}
		signer, _ := key.(crypto.Signer)
		k, err := hsmKindOf(kind, alg)
		if err == nil && signer == nil {
			err = fmt.Errorf("a %s private key has no HSM key type here", alg)
		}
		if err != nil {
			return 0, nil, nil, err
		}
		return k, nil, signer, nil
	}
	_, err := hsmKindOf(kind, alg)
	return 0, nil, nil, err
}

// HSMCheck picks the check values an HSM can prove from a set record's.
func HSMCheck(checks []shares.CheckValue) hsm.Check { return hsmCheck(checks) }

func hsmCheck(checks []shares.CheckValue) hsm.Check {
	var c hsm.Check
	for _, v := range checks {
		switch v.Method {
		case shares.CheckKCV:
			c.KCV = v.Value
		case shares.CheckECB:
			c.ECB = v.Value
		case shares.CheckHMAC:
			c.HMAC = v.Value
		case shares.CheckSPKI:
			c.SPKISHA256 = v.Value
		}
	}
	return c
}

// BundleKeys collects the keys of a bundle archive for an HSM import,
// each proven against its manifest entry. Entries that are not keys an
// HSM takes (raw bytes) are skipped and named in skipped. Labels are the
// entry names after Prefix; each CKA_ID is BundleKeyID of the set ID and
// the name.
type BundleKeys struct {
	SetID    shares.SetID
	Manifest *shares.Manifest
	// Prefix goes before every entry name in the labels: the URI's
	// object=, as HSMBundlePrefix reads it.
	Prefix  string
	Keys    []hsm.Key
	Skipped []string

	pw   *io.PipeWriter
	done chan error
}

// Write parses the archive as it streams past; use it as the output of a
// sealed recovery, then call Done.
func (b *BundleKeys) Write(p []byte) (int, error) {
	if b.pw == nil {
		b.start()
	}
	return b.pw.Write(p)
}

// Done waits for the archive to be read and returns the first error.
func (b *BundleKeys) Done() error {
	if b.pw == nil {
		b.start()
	}
	b.pw.Close()
	return <-b.done
}

// Wipe clears the key material collected.
func (b *BundleKeys) Wipe() {
	for _, k := range b.Keys {
		clear(k.Secret)
	}
}

func (b *BundleKeys) start() {
	pr, pw := io.Pipe()
	b.pw, b.done = pw, make(chan error, 1)
	go func() {
		err := b.Read(pr)
		io.Copy(io.Discard, pr)
		b.done <- err
	}()
}

// Read collects the keys of an archive read whole.
func (b *BundleKeys) Read(r io.Reader) error {
	checks := map[string][]shares.CheckValue{}
	if b.Manifest != nil {
		for _, e := range b.Manifest.Entries {
			checks[e.Name] = e.Checks
		}
	}
	return shares.ReadBundleKeys(r, func(k shares.BundleKey) error {
		kind, secret, signer, err := hsmMaterial(k.Kind, k.Algorithm, k.Bytes)
		if err != nil {
			b.Skipped = append(b.Skipped, fmt.Sprintf("%s (%v)", k.Name, err))
			return nil
		}
		want, ok := checks[k.Name]
		if !ok {
			return fmt.Errorf("bundle entry %q is not in the set record's manifest", k.Name)
		}
		b.Keys = append(b.Keys, hsm.Key{Label: b.Prefix + k.Name, ID: BundleKeyID(b.SetID, k.Name), Kind: kind,
			Secret: bytes.Clone(secret), Private: signer, Expect: hsmCheck(want)})
		return nil
	})
}

// ErrNoManifest says a bundle cannot be restored without its manifest.
var ErrNoManifest = errors.New("the set record has no bundle manifest to prove the keys against")
