package ceremony

import (
	"bytes"
	"crypto"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"

	"custos/hsm"
	"custos/shares"
)

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
		k := map[string]hsm.Kind{"EC P-256": hsm.KindECP256, "EC P-384": hsm.KindECP384, "Ed25519": hsm.KindEd25519}[alg]
		if k == 0 && len(alg) > 4 && alg[:4] == "RSA-" {
			k = hsm.KindRSA
		}
		if k == 0 || signer == nil {
			return 0, nil, nil, fmt.Errorf("a %s private key has no HSM key type here", alg)
		}
		return k, nil, signer, nil
	}
	return 0, nil, nil, fmt.Errorf("a %s secret is not a key an HSM takes; recover it to a file with --out", kind)
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
// entry names; each CKA_ID is derived from the set ID and the name.
type BundleKeys struct {
	SetID    shares.SetID
	Manifest *shares.Manifest
	Keys     []hsm.Key
	Skipped  []string

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
		id := sha256.Sum256(append(b.SetID[:], k.Name...))
		b.Keys = append(b.Keys, hsm.Key{Label: k.Name, ID: id[:16], Kind: kind,
			Secret: bytes.Clone(secret), Private: signer, Expect: hsmCheck(want)})
		return nil
	})
}

// ErrNoManifest says a bundle cannot be restored without its manifest.
var ErrNoManifest = errors.New("the set record has no bundle manifest to prove the keys against")
