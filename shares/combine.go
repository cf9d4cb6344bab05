package shares

import (
	"bytes"
	"crypto/ed25519"
	"crypto/hmac"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/hashicorp/vault/shamir"
)

// Expect pins a recovery to one set, usually from its set record. Shares of
// any other set, or signed by another dealer key, are refused by name.
type Expect struct {
	SetID     SetID
	DealerKey ed25519.PublicKey
	Checks    []CheckValue // compared with the rebuilt secret, when given

	// The set's public fields as the record has them; when set, they must
	// equal what the dealer signed into every share.
	Threshold, Count int
	Kind             Kind
	Label            string
}

// RecordMismatchError says the set record disagrees with the shares, whose
// fields the dealer signed: the record was altered, or is another set's.
type RecordMismatchError struct{ Field, Record, Shares string }

func (e *RecordMismatchError) Error() string {
	return fmt.Sprintf("the set record says %s %s, the shares (signed by the dealer) say %s: the record was altered or belongs to another set",
		e.Field, e.Record, e.Shares)
}

// compareRecord checks the record's public fields against a share's.
func (e *Expect) compareRecord(s *Share) error {
	switch {
	case e.Threshold != 0 && e.Threshold != s.Threshold:
		return &RecordMismatchError{"threshold", fmt.Sprintf("%d-of-%d", e.Threshold, e.Count), fmt.Sprintf("%d-of-%d", s.Threshold, s.Count)}
	case e.Count != 0 && e.Count != s.Count:
		return &RecordMismatchError{"count", fmt.Sprintf("%d-of-%d", e.Threshold, e.Count), fmt.Sprintf("%d-of-%d", s.Threshold, s.Count)}
	case e.Kind != 0 && e.Kind != s.Kind:
		return &RecordMismatchError{"kind", e.Kind.String(), s.Kind.String()}
	case e.Threshold != 0 && e.Label != s.Label:
		return &RecordMismatchError{"label", fmt.Sprintf("%q", e.Label), fmt.Sprintf("%q", s.Label)}
	case e.Threshold != 0 && len(e.Checks) > 0 && !EqualChecks(e.Checks, s.Checks):
		// Caught here, before any combine: once the secret is rebuilt, a
		// record edited this way would look like a wrong key.
		return &RecordMismatchError{"check value", formatChecks(e.Checks), formatChecks(s.Checks)}
	}
	return nil
}

// Rejection says why one offered share was not used.
type Rejection struct {
	Share  string // the share's name: "share 3 (Chen, bo.png)" or a file
	Reason string
}

func (r Rejection) String() string { return r.Share + ": " + r.Reason }

// RejectedError is returned when an offered share cannot be used and the
// caller asked for all of them to be good.
type RejectedError struct{ Rejections []Rejection }

func (e *RejectedError) Error() string {
	var s []string
	for _, r := range e.Rejections {
		s = append(s, r.String())
	}
	return strings.Join(s, "; ")
}

// QuorumError says that too few good shares were offered.
type QuorumError struct {
	Need, Have int
	SetID      SetID
	Rejected   []Rejection
}

func (e *QuorumError) Error() string {
	msg := fmt.Sprintf("need %d shares, have %d", e.Need, e.Have)
	if len(e.Rejected) > 0 {
		var s []string
		for _, r := range e.Rejected {
			s = append(s, r.String())
		}
		msg += " (not used: " + strings.Join(s, "; ") + ")"
	}
	return msg
}

// Quorum is a validated group of shares of one set.
type Quorum struct {
	SetID    SetID
	Set      *Share   // one of the shares, for the set-wide fields
	Shares   []*Share // the good shares, in index order
	Rejected []Rejection
	Enough   bool // at least Threshold good shares

	dataKey []byte
}

// Check validates shares without combining them: each alone (Parse
// already did that), then against each other. Shares from another set,
// duplicates and mismatched headers are moved to Rejected, by name. It
// returns an error only when the shares cannot be grouped at all.
func Check(shares []*Share, expect *Expect) (*Quorum, error) {
	if len(shares) == 0 {
		return nil, errors.New("no shares offered")
	}
	q := &Quorum{}
	candidates, err := q.pickSet(shares, expect)
	if err != nil {
		return nil, err
	}
	if expect != nil {
		if err := expect.compareRecord(q.Set); err != nil {
			return nil, err
		}
	}
	q.Shares = q.dedupe(candidates)
	sort.Slice(q.Shares, func(i, j int) bool { return q.Shares[i].Index < q.Shares[j].Index })
	q.Enough = len(q.Shares) >= q.Set.Threshold
	return q, nil
}

// pickSet chooses the set the shares belong to: the expected one, or the
// one most shares agree on. Shares of other sets are rejected by name.
func (q *Quorum) pickSet(shares []*Share, expect *Expect) ([]*Share, error) {
	groups := map[string][]*Share{}
	var order []string
	for _, s := range shares {
		h := string(s.appendSetHeader(nil))
		if groups[h] == nil {
			order = append(order, h)
		}
		groups[h] = append(groups[h], s)
	}

	var best string
	if expect != nil {
		for _, h := range order {
			s := groups[h][0]
			if s.SetID == expect.SetID && bytes.Equal(s.DealerKey, expect.DealerKey) {
				best = h
			}
		}
	} else {
		for _, h := range order {
			if len(groups[h]) > len(groups[best]) {
				best = h
			}
		}
		if ties := tiedSets(groups, order, best); ties != "" {
			return nil, fmt.Errorf("the shares come from different sets (%s); offer one set's shares, or name the set record", ties)
		}
	}

	var chosen *Share
	if best != "" {
		chosen = groups[best][0]
	}
	for _, h := range order {
		if h == best {
			continue
		}
		for _, s := range groups[h] {
			q.reject(s.Name(), mismatch(s, chosen, expect))
		}
	}
	if chosen == nil {
		q.Set = shares[0]
		q.SetID = expect.SetID
		return nil, &QuorumError{Need: shares[0].Threshold, SetID: expect.SetID, Rejected: q.Rejected}
	}
	q.Set, q.SetID = chosen, chosen.SetID
	return groups[best], nil
}

func tiedSets(groups map[string][]*Share, order []string, best string) string {
	var tied []string
	for _, h := range order {
		if len(groups[h]) == len(groups[best]) {
			s := groups[h][0]
			tied = append(tied, fmt.Sprintf("set %s: %s", s.SetID.Short(), namesOf(groups[h])))
		}
	}
	if len(tied) < 2 {
		return ""
	}
	return strings.Join(tied, "; ")
}

func namesOf(shares []*Share) string {
	var n []string
	for _, s := range shares {
		n = append(n, s.Name())
	}
	return strings.Join(n, ", ")
}

// mismatch explains why share s does not belong with the chosen set.
func mismatch(s, chosen *Share, expect *Expect) string {
	if expect != nil && s.SetID != expect.SetID {
		return fmt.Sprintf("belongs to set %s, not %s", s.SetID.Short(), expect.SetID.Short())
	}
	if expect != nil && !bytes.Equal(s.DealerKey, expect.DealerKey) {
		return fmt.Sprintf("is signed by dealer key %s, not the set's %s: it is forged or from another split",
			s.DealerFingerprint(), DealerFingerprint(expect.DealerKey))
	}
	if chosen == nil {
		return "does not match the set record"
	}
	switch {
	case s.SetID != chosen.SetID:
		return fmt.Sprintf("belongs to set %s, not %s", s.SetID.Short(), chosen.SetID.Short())
	case !bytes.Equal(s.DealerKey, chosen.DealerKey):
		return fmt.Sprintf("is signed by dealer key %s, not %s like the others: it is forged or from another split",
			s.DealerFingerprint(), chosen.DealerFingerprint())
	case s.Threshold != chosen.Threshold || s.Count != chosen.Count:
		return fmt.Sprintf("says %d-of-%d, the others %d-of-%d", s.Threshold, s.Count, chosen.Threshold, chosen.Count)
	case s.Label != chosen.Label:
		return fmt.Sprintf("has label %q, the others %q", s.Label, chosen.Label)
	}
	return "its set header differs from the other shares of set " + chosen.SetID.Short()
}

// dedupe drops second copies of a share (the same paper scanned twice) and
// refuses both sides of a conflict (two different shares claiming one index
// or one x coordinate).
func (q *Quorum) dedupe(shares []*Share) []*Share {
	var out []*Share
	byIndex := map[int]*Share{}
	byX := map[byte]*Share{}
	conflicted := map[*Share]bool{}
	for _, s := range shares {
		first := byIndex[s.Index]
		if first == nil {
			first = byX[s.X()]
		}
		switch {
		case first == nil:
			byIndex[s.Index], byX[s.X()] = s, s
			out = append(out, s)
		case first.Fingerprint() == s.Fingerprint():
			q.reject(s.Name(), fmt.Sprintf("is the same share as %s, offered twice", sourceOr(first)))
		default:
			q.reject(s.Name(), fmt.Sprintf("conflicts with %s: two different shares claim index %d", first.Name(), s.Index))
			conflicted[first] = true
		}
	}
	var kept []*Share
	for _, s := range out {
		if conflicted[s] {
			q.reject(s.Name(), "conflicts with another share of the same index")
			continue
		}
		kept = append(kept, s)
	}
	return kept
}

func sourceOr(s *Share) string {
	if s.Source != "" {
		return s.Source
	}
	return s.Name()
}

func (q *Quorum) reject(name, reason string) {
	q.Rejected = append(q.Rejected, Rejection{name, reason})
}

// Combine validates the shares and rebuilds the data key. All good shares
// are used and must agree; a share that disagrees is named in Rejected, and
// recovery still succeeds when Threshold good shares remain.
func Combine(shares []*Share, expect *Expect) (*Quorum, error) {
	q, err := Check(shares, expect)
	if err != nil {
		return nil, err
	}
	if !q.Enough {
		return nil, q.quorumError()
	}
	if err := q.rebuild(); err != nil {
		return nil, err
	}
	return q, nil
}

func (q *Quorum) quorumError() error {
	return &QuorumError{Need: q.Set.Threshold, Have: len(q.Shares), SetID: q.SetID, Rejected: q.Rejected}
}

// maxSubsets bounds the search for a consistent quorum when shares disagree.
const maxSubsets = 20000

func (q *Quorum) rebuild() error {
	if key, ok := q.try(q.Shares); ok {
		q.dataKey = key
		return nil
	}

	// Some share disagrees. Find k shares that give the committed key, then
	// test each other share against k-1 of those.
	k := q.Set.Threshold
	var good []*Share
	tried := 0
	forEachSubset(len(q.Shares), k, func(idx []int) bool {
		tried++
		sub := pick(q.Shares, idx)
		if key, ok := q.try(sub); ok {
			q.dataKey, good = key, sub
			return false
		}
		return tried < maxSubsets
	})
	if good == nil {
		return fmt.Errorf("no %d of the %d shares rebuild set %s's key: the shares disagree (%s)",
			k, len(q.Shares), q.SetID.Short(), namesOf(q.Shares))
	}

	var agreeing []*Share
	for _, s := range q.Shares {
		probe := append(append([]*Share{}, good[:k-1]...), s)
		if contains(good[:k-1], s) {
			probe = good
		}
		if key, ok := q.try(probe); ok && hmac.Equal(key, q.dataKey) {
			agreeing = append(agreeing, s)
		} else {
			q.reject(s.Name(), "its key share disagrees with the others: it does not belong to this quorum")
		}
	}
	q.Shares = agreeing
	if len(agreeing) < k {
		return q.quorumError()
	}
	return nil
}

// try combines the key shares and checks the result against the commitment.
func (q *Quorum) try(shares []*Share) ([]byte, bool) {
	parts := make([][]byte, len(shares))
	for i, s := range shares {
		parts[i] = s.KeyShare
	}
	key, err := shamir.Combine(parts)
	if err != nil {
		return nil, false
	}
	if !hmac.Equal(commitment(key, q.SetID), q.Set.Commit) {
		clear(key)
		return nil, false
	}
	return key, true
}

func contains(list []*Share, s *Share) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func pick(shares []*Share, idx []int) []*Share {
	out := make([]*Share, len(idx))
	for i, j := range idx {
		out[i] = shares[j]
	}
	return out
}

// forEachSubset calls f with each k-subset of 0..n-1 in lexicographic order
// until f returns false.
func forEachSubset(n, k int, f func([]int) bool) {
	if k > n {
		return
	}
	idx := make([]int, k)
	for i := range idx {
		idx[i] = i
	}
	for {
		if !f(idx) {
			return
		}
		i := k - 1
		for i >= 0 && idx[i] == n-k+i {
			i--
		}
		if i < 0 {
			return
		}
		idx[i]++
		for j := i + 1; j < k; j++ {
			idx[j] = idx[j-1] + 1
		}
	}
}

// Secret is a rebuilt secret. Call Wipe when done with it.
type Secret struct {
	Bytes     []byte
	Kind      Kind
	Algorithm string
	Checks    []CheckValue
}

// Wipe clears the secret's bytes.
func (s *Secret) Wipe() { clear(s.Bytes) }

// CheckMismatchError says a rebuilt secret's check value differs from the
// one recorded: the worst case, a wrong key that would look right.
type CheckMismatchError struct {
	Want, Got []CheckValue
}

func (e *CheckMismatchError) Error() string {
	return fmt.Sprintf("check value mismatch: recorded %s, rebuilt %s", formatChecks(e.Want), formatChecks(e.Got))
}

func formatChecks(c []CheckValue) string {
	var s []string
	for _, v := range c {
		s = append(s, v.String())
	}
	return strings.Join(s, ", ")
}

// Open unseals an inline secret and proves it: its check values are
// recomputed and compared with those every share carries and, when given,
// with the expected ones.
func (q *Quorum) Open(expect *Expect) (*Secret, error) {
	if q.dataKey == nil {
		return nil, errors.New("the quorum has not been combined")
	}
	if q.Set.External() {
		return nil, errors.New("the secret is in a separate sealed file; open it with OpenSealed")
	}
	plain, err := openInline(q.dataKey, q.Set)
	if err != nil {
		return nil, fmt.Errorf("the sealed secret of set %s does not open: %w", q.SetID.Short(), err)
	}
	checks, err := q.checksOf(plain)
	if err == nil {
		err = CompareExpected(expect, checks)
	}
	if err != nil {
		clear(plain)
		return nil, err
	}
	return &Secret{Bytes: plain, Kind: q.Set.Kind, Algorithm: q.Set.Algorithm, Checks: checks}, nil
}

func (q *Quorum) checksOf(plain []byte) ([]CheckValue, error) {
	var got []CheckValue
	var err error
	if q.Set.Kind == KindBundle {
		var m *Manifest
		m, err = ReadManifest(bytesReader(plain), checkKey(q.dataKey, q.SetID))
		if m != nil {
			got = []CheckValue{m.Check()}
		}
	} else {
		got, err = CheckValues(plain, q.Set.Kind, checkKey(q.dataKey, q.SetID))
	}
	if err != nil {
		return nil, fmt.Errorf("computing check value of the rebuilt secret: %w", err)
	}
	return got, q.compare(got)
}

func (q *Quorum) compare(got []CheckValue) error {
	if !EqualChecks(q.Set.Checks, got) {
		return &CheckMismatchError{Want: q.Set.Checks, Got: got}
	}
	return nil
}

// CompareExpected compares check values with the set record's.
func CompareExpected(expect *Expect, got []CheckValue) error {
	if expect == nil || len(expect.Checks) == 0 {
		return nil
	}
	if !EqualChecks(expect.Checks, got) {
		return &CheckMismatchError{Want: expect.Checks, Got: got}
	}
	return nil
}

// Wipe clears the rebuilt data key.
func (q *Quorum) Wipe() { clear(q.dataKey) }
