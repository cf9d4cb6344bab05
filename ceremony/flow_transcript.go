package ceremony

import (
	"fmt"
	"path/filepath"
	"strings"
	"time"
)

// writeTranscript writes the ceremony transcript beside the set record: a
// plain text page that says what was done, for everyone present to sign.
// It holds no secret.
//
// TODO: print it as PDF with printer.WriteTranscriptPDF once that lands;
// the text form is what the room reads and signs meanwhile.
func (r *crun) writeTranscript(dir string, st *splitState, rec *SetRecord) (string, error) {
	var b strings.Builder
	r.transcriptHead(&b, rec)
	if st != nil && st.airgap != nil {
		fmt.Fprintf(&b, "Network:      %s\n", st.airgap)
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

	path := filepath.Join(dir, fmt.Sprintf("transcript-%s-%d.txt", r.name, r.j.Attempt))
	if err := replaceFile(path, []byte(b.String()), 0o644); err != nil {
		return "", fmt.Errorf("writing transcript: %w", err)
	}
	return path, nil
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
	if h, ok := r.Audit.(interface{ Head() string }); ok {
		fmt.Fprintf(b, "\nAudit log head (hash of its last entry before this transcript):\n  %s\n", h.Head())
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
