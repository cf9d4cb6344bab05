package main

import (
	"errors"
	"io"

	"custos/ceremony"
	"custos/hsm"
	"custos/shares"
)

// hsmTarget is the token "custos recover --hsm" restores into: opened,
// logged in and checked before any share is combined, and kept open for
// the import.
type hsmTarget struct {
	s      *hsm.Session
	uri    *hsm.URI
	opts   hsm.Options
	prefix string // a bundle's label prefix, from object=
}

// openHSMTarget checks everything about the target that can be checked
// before the key exists, so that a recovery fails while nothing has been
// rebuilt and no card PIN has been asked: the URI (no pin-value, a PIN
// file only its owner reads, a module), the module and the token, the
// user PIN, the mechanisms the import needs, and that the key's label and
// ID are free. It says which label the key will have, and why.
func openHSMTarget(uriText string, record *ceremony.SetRecord, opts hsm.Options) (*hsmTarget, error) {
	if record.Kind == shares.KindBundle {
		if err := checkManifest(record); err != nil {
			return nil, err
		}
	}
	u, err := hsmParseURI(uriText)
	if err != nil {
		return nil, err
	}
	t := &hsmTarget{uri: u, opts: opts}
	if record.Kind == shares.KindBundle {
		if t.prefix, err = ceremony.HSMBundlePrefix(u); err != nil {
			return nil, usagef("%v", err)
		}
	}
	keys, skipped, err := ceremony.PlanHSMKeys(u, record)
	if err != nil {
		return nil, withHint(errorf("set %s cannot go into an HSM: %w", record.SetID.Short(), err),
			"recover it to a file with --out instead; nothing was read or changed")
	}

	if t.s, err = hsm.Open(u, hsmPrompt(interrupted)); err != nil {
		return nil, hsmHints(err)
	}
	if err := t.check(keys); err != nil {
		t.close()
		return nil, hsmHints(err)
	}
	t.announce(record, keys, skipped)
	return t, nil
}

// check refuses, before any key exists, what would refuse the import: a
// mechanism the token lacks, or a label or ID already taken.
func (t *hsmTarget) check(keys []hsm.Key) error {
	if err := t.s.CheckMechanisms(keys, t.opts); err != nil {
		return err
	}
	return t.s.CheckFree(keys)
}

// announce says where the keys will go and under which labels.
func (t *hsmTarget) announce(record *ceremony.SetRecord, keys []hsm.Key, skipped []string) {
	if record.Kind != shares.KindBundle {
		n := ceremony.NameHSMKey(t.uri, record)
		info("%v is ready: the key will be labelled %q (from %s), id %x", t.s.Info(), n.Label, n.From, n.ID)
		return
	}
	how := "under their names in the bundle"
	if t.prefix != "" {
		how = "under their names after the prefix " + quote(t.prefix) + " (object= in the URI)"
	}
	info("%v is ready: %s will be labelled %s", t.s.Info(), nounCount(len(keys), "key", "keys"), how)
	for _, s := range skipped {
		warning("not restored into the HSM: %s", s)
	}
}

func quote(s string) string { return "\"" + s + "\"" }

// close ends the session; the last one finalises the module.
func (t *hsmTarget) close() error {
	if t.s == nil {
		return nil
	}
	return t.s.Close()
}

// recoverToHSM rebuilds the secret and imports it into the token, proven
// inside the token against the set record's check values. The secret
// never touches the disk; on any failure the import is rolled back and
// the token left as it was.
func recoverToHSM(t *hsmTarget, in *recoveryInput) error {
	record := in.record
	var bundle *ceremony.BundleKeys
	var out io.Writer = io.Discard
	if record.Kind == shares.KindBundle {
		bundle = &ceremony.BundleKeys{SetID: record.SetID, Manifest: record.Manifest, Prefix: t.prefix}
		out = bundle
	}

	rec, err := ceremony.Rebuild(interrupted, ceremony.RecoverRequest{
		Offered: in.offered, Record: record, Sealed: in.sealed, Out: out,
	}, reporter())
	if bundle != nil {
		defer bundle.Wipe()
		if derr := bundle.Done(); err == nil {
			err = derr
		}
	}
	if err != nil {
		return recoverHints(err, in)
	}
	defer rec.Wipe()
	printChecks("rebuilt secret's check value: ", rec.Checks)

	keys, err := t.keysOf(rec, record, bundle)
	if err != nil {
		return err
	}
	if err := t.restore(keys); err != nil {
		return err
	}
	info("the key is in the HSM, non-extractable, and proven there against set %s's check values", record.SetID.Short())
	return nil
}

// keysOf turns the rebuilt secret into the keys to import, named as
// openHSMTarget announced.
func (t *hsmTarget) keysOf(rec *ceremony.Recovery, record *ceremony.SetRecord, bundle *ceremony.BundleKeys) ([]hsm.Key, error) {
	if bundle == nil {
		if rec.Secret == nil {
			return nil, errorf("set %s's secret is in a sealed file: no key for an HSM", record.SetID.Short())
		}
		k, err := ceremony.HSMKeyFor(rec.Secret, t.uri, record)
		if err != nil {
			return nil, errorf("preparing the key for the HSM: %w", err)
		}
		return []hsm.Key{k}, nil
	}
	if rec.Secret != nil {
		if err := bundle.Read(bytesReader(rec.Secret.Bytes)); err != nil {
			return nil, err
		}
	}
	if len(bundle.Keys) == 0 {
		return nil, errorf("the bundle holds no key an HSM takes")
	}
	return bundle.Keys, nil
}

// restore imports the keys and proves them. Interrupting it (Ctrl-C)
// rolls the import back; the session is still closed by the caller.
func (t *hsmTarget) restore(keys []hsm.Key) error {
	info("restoring %d %s into %v", len(keys), plural(len(keys), "key", "keys"), t.s.Info())
	out, err := t.s.Import(interrupted, keys, t.opts)
	if err != nil {
		return importHints(err)
	}
	for _, im := range out {
		info("%s %q proven inside the token: %s", im.Kind, im.Label,
			hsmCheckText(im.Proof.Got))
	}
	if err := t.close(); err != nil {
		return errorf("closing the token session: %w", err)
	}
	return nil
}

// importHints says what to do after a failed import. An import is all or
// nothing: unless removing what it created failed too (a RollbackError,
// which names what is left), the token is as it was.
func importHints(err error) error {
	var re *hsm.RollbackError
	switch {
	case errors.As(err, &re):
		return hsmHints(err)
	case errors.Is(err, hsm.ErrObjectExists):
		return hsmHints(err) // its advice says nothing was changed
	}
	return withHint(hsmHints(err),
		"the token is as it was: custos removed everything this import had created")
}

// checkManifest refuses a record whose manifest is not the one its check
// value names: per-key proofs would then prove nothing.
func checkManifest(r *ceremony.SetRecord) error {
	if r.Manifest == nil {
		return errorf("%v", ceremony.ErrNoManifest)
	}
	if !shares.EqualChecks(r.Checks, []shares.CheckValue{r.Manifest.Check()}) {
		return errorf("the set record's bundle manifest does not match its check value: the record was altered")
	}
	return nil
}
