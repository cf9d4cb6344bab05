package ceremony

import (
	"bytes"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"custos/printer"
)

// writeTranscript writes the ceremony transcript beside the set record: a
// PDF page for everyone present to sign (printer.WriteTranscriptPDF), and
// the same in plain text for the room to read on screen. Both name the
// audit log's last entry before the transcript, so the signed paper pins
// the log. Neither holds a secret. It returns the PDF's path.
func (r *crun) writeTranscript(dir string, st *splitState, rec *SetRecord) (string, error) {
	base := filepath.Join(dir, fmt.Sprintf("transcript-%s-%d", r.name, r.j.Attempt))
	if err := replaceFile(base+".txt", []byte(r.transcriptText(st, rec)), 0o644); err != nil {
		return "", fmt.Errorf("writing transcript %s.txt: %w", base, err)
	}
	var pdf bytes.Buffer
	if err := printer.WriteTranscriptPDF(&pdf, r.transcriptPDF(st, rec)); err != nil {
		return "", fmt.Errorf("printing transcript: %w", err)
	}
	if err := replaceFile(base+".pdf", pdf.Bytes(), 0o644); err != nil {
		return "", fmt.Errorf("writing transcript %s.pdf: %w", base, err)
	}
	return base + ".pdf", nil
}

// transcriptPDF lays the ceremony out for printer.WriteTranscriptPDF.
func (r *crun) transcriptPDF(st *splitState, rec *SetRecord) printer.Transcript {
	t := printer.Transcript{Paper: printer.A4, Kind: printer.CeremonySplit,
		SetID: rec.SetID.String(), Label: rec.Label, Threshold: rec.Threshold,
		Count: rec.Count, Date: r.j.Started}
	switch r.name {
	case "recover":
		t.Kind = printer.CeremonyRecovery
	case "drill":
		t.Kind = printer.CeremonyDrill
	}
	for _, c := range rec.Checks {
		t.CheckValues = append(t.CheckValues, c.String())
	}
	var notes []string
	if st != nil {
		t.Paper = st.plan.paper()
		if st.airgap != nil {
			notes = append(notes, "Network: "+st.airgap.String())
		}
		notes = append(notes, "Key source: "+keySourceText(st.plan.Key))
	}
	notes = append(notes, fmt.Sprintf("Key: %s (%s). Dealer key: %s.", rec.Algorithm, rec.Kind, rec.DealerFP))
	t.Notes = strings.Join(notes, "\n")

	t.People = append(t.People, printer.Participant{Name: "Operator", Role: printer.RoleOperator})
	for _, c := range rec.Custodians {
		if r.present != nil && !r.present[c.Index] {
			continue
		}
		t.People = append(t.People, printer.Participant{Name: c.Name, Role: printer.RoleCustodian,
			Share: c.Index, Detail: mediaText(c)})
	}
	if st != nil {
		for _, w := range st.plan.Witnesses {
			t.People = append(t.People, printer.Participant{Name: w, Role: printer.RoleWitness})
		}
	}
	for _, s := range r.j.Steps {
		what := stepWords(s.Name)
		if s.Detail != "" {
			what += ": " + s.Detail
		}
		t.Steps = append(t.Steps, printer.TranscriptStep{Time: s.At, What: what, Outcome: "ok"})
	}
	if t.Date.IsZero() && len(t.Steps) > 0 {
		t.Date = t.Steps[0].Time
	}
	if l, ok := r.Audit.(*AuditLog); ok {
		t.AuditLog, t.AuditSeq, t.AuditHead = filepath.Base(l.Path()), l.Seq(), l.Head()
	}
	return t
}

// transcriptText is the transcript in plain text.
func (r *crun) transcriptText(st *splitState, rec *SetRecord) string {
	var b strings.Builder
	r.transcriptHead(&b, rec)
	if st != nil && st.airgap != nil {
		fmt.Fprintf(&b, "Network:      %s\n", st.airgap)
	}
	if st != nil {
		fmt.Fprintf(&b, "Key source:   %s\n", keySourceText(st.plan.Key))
	}
	if st != nil && len(st.plan.Witnesses) > 0 {
		fmt.Fprintf(&b, "Witnesses:    %s\n", strings.Join(st.plan.Witnesses, ", "))
	}
	fmt.Fprintf(&b, "\nCustodians:\n")
	for _, c := range rec.Custodians {
		fmt.Fprintf(&b, "  %3d  %-24s %s\n", c.Index, c.Name, mediaText(c))
	}
	fmt.Fprintf(&b, "\nSteps:\n")
	for _, s := range r.j.Steps {
		fmt.Fprintf(&b, "  %s  %-12s %s\n", s.At.Format(time.TimeOnly), s.Name, s.Detail)
	}
	r.transcriptFoot(&b, st)
	return b.String()
}

func (r *crun) transcriptHead(b *strings.Builder, rec *SetRecord) {
	fmt.Fprintf(b, "custos %s ceremony transcript\n\n", r.name)
	fmt.Fprintf(b, "Set:          %s\n", rec.SetID)
	fmt.Fprintf(b, "Label:        %s\n", rec.Label)
	fmt.Fprintf(b, "Policy:       any %d of %d custodians\n", rec.Threshold, rec.Count)
	fmt.Fprintf(b, "Key:          %s (%s)\n", rec.Algorithm, rec.Kind)
	fmt.Fprintf(b, "Check value:  %s\n", checksText(rec.Checks))
	fmt.Fprintf(b, "Dealer key:   %s\n", rec.DealerFP)
	fmt.Fprintf(b, "Created:      %s\n", rec.Created.Format(time.RFC3339))
}

func (r *crun) transcriptFoot(b *strings.Builder, st *splitState) {
	if l, ok := r.Audit.(*AuditLog); ok {
		fmt.Fprintf(b, "\nAudit log %s, entry %d (its hash, the head before this transcript):\n  %s\n",
			filepath.Base(l.Path()), l.Seq(), l.Head())
	}
	fmt.Fprintf(b, "\nSigned by everyone present:\n\n")
	names := []string{}
	if st != nil {
		names = append(names, st.plan.names()...)
		names = append(names, st.plan.Witnesses...)
	}
	for _, n := range names {
		fmt.Fprintf(b, "  %-24s ______________________________\n\n", n)
	}
	if len(names) == 0 {
		fmt.Fprintf(b, "  ________________________  ______________________________\n\n")
	}
}

// keySourceText says where a split's key came from, and for a file that
// custos left it in place.
func keySourceText(k KeySource) string {
	if k.Generate {
		return "generated inside custos; it existed only in memory"
	}
	return "read from " + k.File + "; custos did not delete that file"
}

func mediaText(c Custodian) string {
	var s []string
	if c.Card != nil {
		s = append(s, fmt.Sprintf("card %d slot %s", c.Card.Serial, c.Card.Slot))
	}
	if len(c.Files) > 0 {
		s = append(s, "paper")
	}
	if len(s) == 0 {
		return "-"
	}
	return strings.Join(s, " + ")
}
