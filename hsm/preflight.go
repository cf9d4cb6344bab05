package hsm

import (
	"fmt"
)

// A recovery ceremony calls custodians one by one before it has any key to
// import, and a custodian's time is dear: what can refuse the import later
// is checked first, on a session opened for the purpose. The checks below
// need no key material; keys passed to them carry only what they read.

// CheckFree refuses keys whose label or ID the token already holds, as
// Import would for keys that Refuse conflicts: the first key in the way
// is named in an *ObjectExistsError. It reads only each key's Label and
// ID (an empty ID is not checked) and changes nothing on the token.
func (s *Session) CheckFree(keys []Key) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.live(); err != nil {
		return fmt.Errorf("checking labels: %w", err)
	}
	idx, err := s.index()
	if err != nil {
		return err
	}
	for i := range keys {
		k := &keys[i]
		in := idx.conflicts(k.Label, k.ID)
		if len(in) == 0 || k.OnConflict != Refuse {
			continue
		}
		var names []string
		for _, o := range in {
			names = append(names, o.String())
		}
		return &ObjectExistsError{Token: s.info.String(), Key: k.name(),
			Existing: names}
	}
	return nil
}

// Taken reports whether the token holds an object with the key's label,
// and one with its ID (never, for a key without one). A caller that found
// a conflict with CheckFree learns from it what a person can change: a
// label can be chosen, an ID derived from the key's set usually cannot.
func (s *Session) Taken(k Key) (label, id bool, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.live(); err != nil {
		return false, false, fmt.Errorf("checking labels: %w", err)
	}
	idx, err := s.index()
	if err != nil {
		return false, false, err
	}
	return len(idx.byLabel[k.Label]) > 0, len(k.ID) > 0 && len(idx.byID[string(k.ID)]) > 0, nil
}

// CheckMechanisms fails with a *MechanismError when the token lacks a
// mechanism that importing and proving keys by opts would need. It reads
// each key's Kind, Expect and Usage, never its material. What only the
// transport key's own calls find out (an OAEP hash the token refuses, a
// named transport key that is missing) is still found by Import.
func (s *Session) CheckMechanisms(keys []Key, opts Options) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.live(); err != nil {
		return fmt.Errorf("checking mechanisms: %w", err)
	}
	r := &importRun{s: s, opts: opts, keys: keys}
	if err := s.require(r.needs()); err != nil {
		return err
	}
	return s.requireProofs(keys)
}

// PINFile returns the path of the URI's pin-source file, "" when the URI
// has no pin-source, or an error for a pin-source custos does not read.
func (u *URI) PINFile() (string, error) {
	if u.PINSource == "" {
		return "", nil
	}
	return pinSourcePath(u.PINSource)
}
