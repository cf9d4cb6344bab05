package main

import (
	"io"

	"custos/ceremony"
	"custos/hsm"
	"custos/shares"
)

// recoverToHSM rebuilds the secret and imports it into the HSM token the
// URI names, proven inside the token against the set record's check
// values. The secret never touches the disk; on any failure the import is
// rolled back and the token left as it was.
func recoverToHSM(uri string, offered []ceremony.Offered, record *ceremony.SetRecord, sealed string, path hsm.Path) error {
	if record == nil {
		return withHint(usagef("--hsm needs the set record (--set set.json)"),
			"the import is proven against the check values the set record holds")
	}
	var bundle *ceremony.BundleKeys
	var out io.Writer = io.Discard
	if record.Kind == shares.KindBundle {
		if err := checkManifest(record); err != nil {
			return err
		}
		bundle = &ceremony.BundleKeys{SetID: record.SetID, Manifest: record.Manifest}
		out = bundle
	}

	rec, err := ceremony.Rebuild(interrupted, ceremony.RecoverRequest{
		Offered: offered, Record: record, Sealed: sealed, Out: out,
	}, reporter())
	if bundle != nil {
		defer bundle.Wipe()
		if derr := bundle.Done(); err == nil {
			err = derr
		}
	}
	if err != nil {
		return recoverHints(err)
	}
	defer rec.Wipe()
	printChecks("rebuilt secret's check value: ", rec.Checks)

	keys, err := hsmKeysOf(rec, record, bundle)
	if err != nil {
		return err
	}
	if _, err := hsmRestore(uri, keys, hsm.Options{Path: path}); err != nil {
		return err
	}
	info("the key is in the HSM, non-extractable, and proven there against set %s's check values", record.SetID.Short())
	return nil
}

func hsmKeysOf(rec *ceremony.Recovery, record *ceremony.SetRecord, bundle *ceremony.BundleKeys) ([]hsm.Key, error) {
	if bundle != nil {
		if rec.Secret != nil {
			if err := bundle.Read(bytesReader(rec.Secret.Bytes)); err != nil {
				return nil, err
			}
		}
		for _, s := range bundle.Skipped {
			warning("not restored into the HSM: %s", s)
		}
		if len(bundle.Keys) == 0 {
			return nil, errorf("the bundle holds no key an HSM takes")
		}
		return bundle.Keys, nil
	}
	k, err := ceremony.HSMKey(rec.Secret, record.SetID, record.Label, record.Checks)
	if err != nil {
		return nil, err
	}
	return []hsm.Key{k}, nil
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
