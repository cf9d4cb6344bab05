package ceremony

import (
	"context"
	"errors"
	"fmt"
)

// CustodianDrill is what a per-custodian drill proved.
type CustodianDrill struct {
	Custodian string
	Index     int
	Source    string
}

// DrillCustodian lets one custodian prove that their card or paper still
// holds a valid share of the live set: the share is read, its signature
// checked, and its set, dealer key and index compared with set.json.
// Nothing is rebuilt. The drill is recorded in set.json and the audit log.
func DrillCustodian(ctx context.Context, recordPath string, opt Options) (*CustodianDrill, error) {
	r := newRun(ctx, "custodian-drill", opt)
	out, err := r.drillOne(recordPath)
	if err != nil {
		return nil, r.stop(err)
	}
	return out, r.finish()
}

func (r *crun) drillOne(path string) (*CustodianDrill, error) {
	rec, err := ReadRecord(path)
	if err != nil {
		return nil, err
	}
	r.setID = rec.SetID
	st := &recoverState{record: rec}
	r.state = func() []string { return []string{"no card or file was changed; set.json is unchanged"} }
	if err := r.begin("custodian", Screen{Title: "Custodian drill", Lines: []string{
		fmt.Sprintf("One custodian proves their share of set %s (%q) is still good.", rec.SetID.Short(), rec.Label),
		"Nothing is rebuilt: custos only reads and checks the share."}}); err != nil {
		return nil, err
	}
	for {
		want, err := r.whoDrills(rec)
		if err != nil {
			return nil, err
		}
		s, err := r.offerOne(st)
		if errors.Is(err, errNoMore) {
			return nil, errNoDrill
		}
		if err != nil {
			return nil, err
		}
		if s == nil {
			continue // offerOne said what was wrong
		}
		if s.Index != want.Index {
			r.reject(fmt.Errorf("that is share %d (%s), not %s's share %d", s.Index, s.Custodian, want.Name, want.Index))
			continue
		}
		return r.recordCustodianDrill(path, rec, s.Index, want.Name, s.Source)
	}
}

// errNoDrill is why a custodian drill stops with no share proven.
var errNoDrill = errors.New("no custodian's share was proven: the room stopped the drill")

// whoDrills asks which custodian is drilling, or stops the drill.
func (r *crun) whoDrills(rec *SetRecord) (Custodian, error) {
	var names []string
	for _, c := range rec.Custodians {
		names = append(names, fmt.Sprintf("%s (share %d)", c.Name, c.Index))
	}
	names = append(names, "nobody else: stop the drill")
	i, err := r.Prompter.Select("Which custodian is drilling?", names)
	if err != nil {
		return Custodian{}, err
	}
	if i == len(rec.Custodians) {
		return Custodian{}, errNoDrill
	}
	return rec.Custodians[i], nil
}

func (r *crun) recordCustodianDrill(path string, rec *SetRecord, index int, name, source string) (*CustodianDrill, error) {
	now := r.now()
	rec.Custodian(index).LastDrill = &now
	if err := rec.Save(path); err != nil {
		return nil, err
	}
	r.audit(AuditEntry{Event: EventDrillRecorded, Share: index, Custodian: name, Source: source,
		Detail: "custodian drill: share valid"})
	r.Prompter.Show(Screen{Title: fmt.Sprintf("%s's share is good", name), Lines: []string{
		fmt.Sprintf("Share %d from %s is valid, signed by this set's dealer, and is %s's.", index, source, name),
		"The drill is recorded in set.json and the audit log."}})
	return &CustodianDrill{Custodian: name, Index: index, Source: source}, r.done("custodian", source)
}
