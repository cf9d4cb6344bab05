package main

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"

	"custos/ceremony"
	"custos/shares"
)

const verifyUsage = `usage: custos verify [--set set.json] [--sealed FILE] SHARE...

Checks each share alone (its format, its line checks and the dealer's
signature) and says whether they form a quorum, without rebuilding
anything. --set pins them to a set record; --sealed also checks a large
secret's sealed file against the digest every share binds.

    $ custos verify shares/share-1-Ana.txt shares/share-3-Chen.txt
    $ custos verify --set shares/set.json scan-of-bo.jpg
`

const inspectUsage = `usage: custos inspect [--json] SHARE

Shows the public fields of one share: set, index, policy, label, kind,
check values, dealer key and creation time. Nothing secret is shown.

    $ custos inspect shares/share-1-Ana.txt
    $ custos inspect --json scan-of-bo.jpg
`

func cmdVerify(args []string) error {
	fs := newFlags("verify")
	setPath := fs.String("set", "", "")
	sealed := fs.String("sealed", "", "")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(pos) == 0 {
		return usagef("verify needs one or more SHARE files")
	}
	var expect *shares.Expect
	if *setPath != "" {
		record, err := readRecord(*setPath)
		if err != nil {
			return err
		}
		expect = record.Expect()
	}

	bad := 0
	var good []*shares.Share
	for _, o := range ceremony.ReadShareFiles(pos) {
		if o.Err != nil {
			bad++
			info("BAD  %s: %v", o.Source, o.Err)
			continue
		}
		good = append(good, o.Share)
	}
	if len(good) == 0 {
		return errorf("none of the %d offered shares is valid", bad)
	}
	q, err := shares.Check(good, expect)
	if err != nil {
		return err
	}
	for _, s := range q.Shares {
		info("ok   %s: share %d of %d of set %s (%q), signed by dealer %s", s.Source, s.Index, s.Count, s.SetID.Short(), s.Label, s.DealerFingerprint())
	}
	for _, r := range q.Rejected {
		bad++
		info("BAD  %s: %s", r.Share, r.Reason)
	}
	if *sealed != "" {
		if err := verifySealedFile(*sealed, q.Set); err != nil {
			return err
		}
	}
	if !q.Enough {
		return errorf("not a quorum: need %d shares of set %s, have %d valid", q.Set.Threshold, q.SetID.Short(), len(q.Shares))
	}
	info("quorum: %d valid shares of set %s, %d needed (nothing was rebuilt)", len(q.Shares), q.SetID.Short(), q.Set.Threshold)
	if bad > 0 {
		return errorf("%d of the offered shares are not valid (listed above)", bad)
	}
	return nil
}

func verifySealedFile(path string, s *shares.Share) error {
	f, err := os.Open(path)
	if err != nil {
		return withHint(errorf("sealed file %s: %w", path, unwrapPathError(err)), sealedHint)
	}
	defer f.Close()
	if err := shares.VerifySealed(f, s); err != nil {
		return withHint(errorf("%s: %w", path, err), sealedHint)
	}
	info("ok   %s: its set, size and chunk tags are those every share binds; its contents are proven only when a quorum opens it", path)
	return nil
}

func cmdInspect(args []string) error {
	fs := newFlags("inspect")
	asJSON := fs.Bool("json", false, "")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usagef("inspect takes one SHARE file")
	}
	offered := ceremony.ReadShareFiles(pos)
	if len(offered) != 1 || offered[0].Err != nil {
		var errs []string
		for _, o := range offered {
			if o.Err != nil {
				errs = append(errs, o.Err.Error())
			}
		}
		return errorf("%s", strings.Join(errs, "; "))
	}
	s := offered[0].Share
	pub := publicFields(s)
	if *asJSON {
		b, _ := json.MarshalIndent(pub, "", "  ")
		fmt.Println(string(b))
		return nil
	}
	fmt.Printf("share        %d of %d (any %d rebuild the secret)\n", s.Index, s.Count, s.Threshold)
	fmt.Printf("custodian    %s\n", s.Custodian)
	fmt.Printf("label        %s\n", s.Label)
	fmt.Printf("set          %s\n", s.SetID)
	fmt.Printf("kind         %s (%s)\n", s.Kind, s.Algorithm)
	for _, c := range s.Checks {
		fmt.Printf("check value  %s\n", c)
	}
	fmt.Printf("dealer key   %s\n", s.DealerFingerprint())
	fmt.Printf("created      %s\n", s.Created.Format("2006-01-02 15:04:05 UTC"))
	if s.External() {
		fmt.Printf("sealed file  %d bytes, bound by digest\n", s.SealedSize)
	} else {
		fmt.Printf("secret       sealed inside the share\n")
	}
	fmt.Printf("format       version %d\n", s.Version)
	return nil
}

// shareInfo is the public part of a share as inspect --json shows it.
type shareInfo struct {
	Version           int                 `json:"version"`
	SetID             shares.SetID        `json:"set_id"`
	Index             int                 `json:"index"`
	Threshold         int                 `json:"threshold"`
	Count             int                 `json:"count"`
	Custodian         string              `json:"custodian"`
	Label             string              `json:"label"`
	Kind              shares.Kind         `json:"kind"`
	Algorithm         string              `json:"algorithm"`
	Checks            []shares.CheckValue `json:"checks"`
	DealerFingerprint string              `json:"dealer_fingerprint"`
	Created           string              `json:"created"`
	SealedFileSize    uint64              `json:"sealed_file_size,omitempty"`
}

func publicFields(s *shares.Share) shareInfo {
	return shareInfo{
		Version: s.Version, SetID: s.SetID, Index: s.Index, Threshold: s.Threshold, Count: s.Count,
		Custodian: s.Custodian, Label: s.Label, Kind: s.Kind, Algorithm: s.Algorithm, Checks: s.Checks,
		DealerFingerprint: s.DealerFingerprint(), Created: s.Created.Format("2006-01-02T15:04:05Z"),
		SealedFileSize: s.SealedSize,
	}
}
