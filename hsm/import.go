package hsm

import (
	"context"
	"crypto"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"

	"github.com/miekg/pkcs11"
)

// Path is how key material enters the token.
type Path int

const (
	// PathCreate puts the key in a C_CreateObject template. Simple, and
	// refused by HSMs in FIPS mode.
	PathCreate Path = iota
	// PathUnwrap wraps the key outside under a transport key the token
	// holds and has the token unwrap it (C_UnwrapKey). See the package
	// documentation for how the transport key gets in.
	PathUnwrap
)

func (p Path) String() string {
	if p == PathUnwrap {
		return "unwrap"
	}
	return "create"
}

// Options tune an import. The zero value creates objects plainly.
type Options struct {
	Path Path

	// OAEPHash is the hash of the RSA-OAEP step that brings the transport
	// key in (PathUnwrap): crypto.SHA1 (the default; SoftHSM 2.6 offers
	// only SHA-1) or crypto.SHA256.
	OAEPHash crypto.Hash

	// TransportLabel names an RSA key pair already on the token, allowed
	// to unwrap, to bring the transport key in with. Empty generates a
	// session key pair that vanishes with the import.
	TransportLabel string

	// TransportBits is the size of a generated transport RSA key; 3072
	// if zero.
	TransportBits int

	// Require lists further mechanisms the token must offer before
	// anything is created, for a policy that demands them.
	Require []uint

	// Progress, if set, is called after each key is proven.
	Progress func(done, total int)
}

// Imported reports one key restored and proven.
type Imported struct {
	Label string
	ID    []byte
	Kind  Kind
	Path  Path
	Proof Proof
}

// created is an object this import made, for rollback.
type created struct {
	h    pkcs11.ObjectHandle
	name string
}

// importRun is the state of one Import call.
type importRun struct {
	s         *Session
	opts      Options
	keys      []Key
	created   []created
	replaced  []objRef
	transport *transport
}

// ImportKey imports one key; see Import.
func (s *Session) ImportKey(ctx context.Context, k Key,
	opts Options) (Imported, error) {

	out, err := s.Import(ctx, []Key{k}, opts)
	if len(out) == 1 {
		return out[0], err
	}
	return Imported{}, err
}

// Import restores keys into the token as sensitive, non-extractable token
// objects and proves each one inside the token against its expected check
// values. It is all or nothing: on any failure, or when ctx is cancelled,
// it destroys every object it created and returns the error (a
// RollbackError if some could not be destroyed). Objects that keys with
// OnConflict Replace displace are destroyed only after every key is
// proven; if that last step fails, the keys stay imported and the error
// says which old objects remain.
//
// A successful import also leaves one data object (CKA_APPLICATION
// "custos") recording what was imported, which List reads.
//
// Import copies key material only as long as it needs it and clears its
// copies; the keys passed in stay the caller's to clear. Progress runs
// with the session locked and must not call it.
func (s *Session) Import(ctx context.Context, keys []Key,
	opts Options) ([]Imported, error) {

	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.live(); err != nil {
		return nil, fmt.Errorf("importing: %w", err)
	}
	r := &importRun{s: s, opts: opts, keys: append([]Key(nil), keys...)}
	if err := r.prepare(); err != nil {
		return nil, err
	}
	out, err := r.run(ctx)
	if err != nil {
		return nil, r.rollback(err)
	}
	return out, r.removeReplaced()
}

// prepare checks everything that can be checked before the token is
// changed: the keys, the mechanisms, and the labels and IDs in use.
func (r *importRun) prepare() error {
	if len(r.keys) == 0 {
		return errors.New("importing: no keys")
	}
	if err := r.checkKeys(); err != nil {
		return fmt.Errorf("importing into %v: %w", r.s.info, err)
	}
	if err := r.s.require(r.needs()); err != nil {
		return err
	}
	if err := r.s.requireProofs(r.keys); err != nil {
		return err
	}
	return r.checkConflicts()
}

// checkKeys validates every key and its usage, gives IDs to keys without
// one, and refuses labels or IDs repeated within the bundle.
func (r *importRun) checkKeys() error {
	labels := map[string]bool{}
	ids := map[string]bool{}
	for i := range r.keys {
		k := &r.keys[i]
		if len(k.ID) == 0 {
			k.ID = make([]byte, 16)
			if _, err := rand.Read(k.ID); err != nil {
				return fmt.Errorf("choosing an id: %w", err)
			}
		}
		if err := k.validate(); err != nil {
			return err
		}
		if err := k.validateUsage(); err != nil {
			return fmt.Errorf("%s: %w", k.name(), err)
		}
		id := string(k.ID)
		if labels[k.Label] || ids[id] {
			return fmt.Errorf("%s: label or id appears twice in the "+
				"bundle", k.name())
		}
		labels[k.Label], ids[id] = true, true
	}
	return nil
}

// needs lists the mechanisms every key and the path require.
func (r *importRun) needs() []need {
	var needs []need
	for _, m := range r.opts.Require {
		needs = append(needs, need{m, 0})
	}
	for i := range r.keys {
		switch k := &r.keys[i]; {
		case k.Kind == KindHMAC:
			needs = append(needs, need{pkcs11.CKM_SHA256_HMAC, opSign})
		case !k.Kind.IsSecret():
			needs = append(needs, need{signMech(k.Kind), opSign})
		}
	}
	if r.opts.Path == PathUnwrap {
		needs = append(needs,
			need{pkcs11.CKM_RSA_PKCS_OAEP, opUnwrap},
			need{pkcs11.CKM_AES_KEY_WRAP_PAD, opUnwrap})
		if r.opts.TransportLabel == "" {
			needs = append(needs,
				need{pkcs11.CKM_RSA_PKCS_KEY_PAIR_GEN, opKeyGen})
		}
	}
	return needs
}

// requireProofs checks that each AES key can be proven by at least one
// of ECB and CMAC on this token.
func (s *Session) requireProofs(keys []Key) error {
	ecb, err := s.has(pkcs11.CKM_AES_ECB, opEncrypt)
	if err != nil {
		return err
	}
	cmac, err := s.has(pkcs11.CKM_AES_CMAC, opSign)
	if err != nil {
		return err
	}
	for i := range keys {
		k := &keys[i]
		if !k.Kind.IsAES() {
			continue
		}
		can := k.abilities(ecb, cmac)
		if !can.encrypt && !can.cmac {
			return &MechanismError{Token: s.info.String(),
				Missing: []string{
					need{pkcs11.CKM_AES_ECB, opEncrypt}.String() + " or " +
						need{pkcs11.CKM_AES_CMAC, opSign}.String() +
						" to prove " + k.name(),
				}}
		}
	}
	return nil
}

// abilities says which proofs the key's usage and expected values allow,
// given the token's mechanisms.
func (k *Key) abilities(ecb, cmac bool) abilities {
	u := k.usage()
	return abilities{
		encrypt: ecb && u.Encrypt && len(k.Expect.ECB) > 0,
		cmac:    cmac && u.Sign && len(k.Expect.KCV) > 0,
		hmac:    u.Sign,
	}
}

// checkConflicts refuses keys whose label or ID is taken, unless they
// say otherwise, and notes what Replace keys will displace.
func (r *importRun) checkConflicts() error {
	idx, err := r.s.index()
	if err != nil {
		return err
	}
	for i := range r.keys {
		k := &r.keys[i]
		in := idx.conflicts(k.Label, k.ID)
		if len(in) == 0 {
			continue
		}
		switch k.OnConflict {
		case Refuse:
			var names []string
			for _, o := range in {
				names = append(names, o.String())
			}
			return &ObjectExistsError{Token: r.s.info.String(),
				Key: k.name(), Existing: names}
		case Replace:
			r.replaced = append(r.replaced, in...)
		}
	}
	return nil
}

// run creates and proves every key, then writes the import record.
func (r *importRun) run(ctx context.Context) ([]Imported, error) {
	if r.opts.Path == PathUnwrap {
		t, err := r.s.newTransport(r.opts)
		if err != nil {
			return nil, err
		}
		r.transport = t
		defer r.s.closeTransport(t)
	}

	ecb, err := r.s.has(pkcs11.CKM_AES_ECB, opEncrypt)
	if err != nil {
		return nil, err
	}
	cmac, err := r.s.has(pkcs11.CKM_AES_CMAC, opSign)
	if err != nil {
		return nil, err
	}

	out := make([]Imported, 0, len(r.keys))
	for i := range r.keys {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("importing into %v: stopped after %d "+
				"of %d keys: %w", r.s.info, i, len(r.keys), err)
		}
		k := &r.keys[i]
		pr, err := r.importOne(k, k.abilities(ecb, cmac))
		if err != nil {
			return nil, err
		}
		out = append(out, Imported{Label: k.Label, ID: k.ID, Kind: k.Kind,
			Path: r.opts.Path, Proof: pr})
		if r.opts.Progress != nil {
			r.opts.Progress(i+1, len(r.keys))
		}
	}

	if err := r.writeRecord(out); err != nil {
		return nil, err
	}
	return out, nil
}

// importOne creates one key (and its public key) and proves it.
func (r *importRun) importOne(k *Key, can abilities) (Proof, error) {
	name := k.name()
	if k.Kind.IsSecret() {
		h, err := r.put(k, secretTemplate(k))
		if err != nil {
			return Proof{}, err
		}
		return r.s.proveSecret(name, k.Kind, h, k.Expect, can)
	}

	priv, err := r.put(k, privateTemplate(k))
	if err != nil {
		return Proof{}, err
	}
	pubT, err := publicTemplate(k)
	if err != nil {
		return Proof{}, fmt.Errorf("%s: %w", name, err)
	}
	pub, err := r.create(pubT, "public "+name)
	if err != nil {
		return Proof{}, err
	}
	return r.s.provePrivate(name, k.Kind, priv, pub, k.Private.Public(),
		k.Expect)
}

// put brings the key's material in by the chosen path.
func (r *importRun) put(k *Key, t attrs) (pkcs11.ObjectHandle, error) {
	if r.opts.Path == PathUnwrap {
		return r.unwrap(k, t)
	}
	t, secrets, err := secretValues(k, t)
	defer clearAll(secrets)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", k.name(), err)
	}
	return r.create(t, k.name())
}

// create makes one object and remembers it for rollback.
func (r *importRun) create(t attrs, name string) (pkcs11.ObjectHandle, error) {
	h, err := r.s.p.CreateObject(r.s.sh, t)
	if err != nil {
		return 0, fmt.Errorf("creating %s on %v: %w", name, r.s.info, err)
	}
	r.created = append(r.created, created{h, name})
	return h, nil
}

// rollback destroys what this import created, newest first.
func (r *importRun) rollback(cause error) error {
	var left []string
	for i := len(r.created) - 1; i >= 0; i-- {
		c := r.created[i]
		if err := r.s.p.DestroyObject(r.s.sh, c.h); err != nil {
			left = append(left, c.name)
		}
	}
	r.created = nil
	if len(left) > 0 {
		return &RollbackError{Token: r.s.info.String(), Left: left,
			Err: cause}
	}
	return cause
}

// removeReplaced destroys the objects Replace keys displaced.
func (r *importRun) removeReplaced() error {
	var errs []error
	done := map[pkcs11.ObjectHandle]bool{}
	for _, o := range r.replaced {
		if done[o.h] {
			continue
		}
		done[o.h] = true
		if err := r.s.p.DestroyObject(r.s.sh, o.h); err != nil {
			errs = append(errs, fmt.Errorf("%v: %w", o, err))
		}
	}
	if len(errs) == 0 {
		return nil
	}
	return fmt.Errorf("keys imported and proven on %v, but removing the "+
		"objects they replace failed: %w", r.s.info, errors.Join(errs...))
}

// idHex is an ID as the import record writes it.
func idHex(id []byte) string { return hex.EncodeToString(id) }
