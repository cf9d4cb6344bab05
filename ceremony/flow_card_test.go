package ceremony

import (
	"bytes"
	"context"
	"crypto/x509"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"custos/printer"
	"custos/shares"
	"custos/smartcard"
	"custos/smartcard/virtual/virtualtest"
)

// cardAnswers answers a card ceremony's questions by their words, in
// whatever order the flow asks them: every card's PIN is pin, its PUK
// puk, and every card is in the reader.
func cardAnswers(pin, puk string) func(q string) (string, bool) {
	return func(q string) (string, bool) {
		switch {
		case strings.Contains(q, "new PIN"), strings.Contains(q, "type the PIN of card"):
			return pin, true
		case strings.Contains(q, "new PUK"):
			return puk, true
		case strings.Contains(q, "in the reader?"):
			return "yes", true
		}
		return "", false
	}
}

// A split onto two virtual cards (one custodian also on paper) and one
// paper custodian, each card enrolled with the custodian's new PIN and
// read back; then recoveries from one card and the paper custodian's
// share, into a new file and into a SoftHSM token.
func TestCardCeremony(t *testing.T) {
	cards := virtualtest.Start(t, 2)
	roots := x509.NewCertPool()
	for _, c := range cards {
		roots.AddCert(c.Card.AttestationCA())
	}
	key := bytes.Repeat([]byte{0x31, 0x7e, 0xa2, 0x04}, 8)
	kf := filepath.Join(t.TempDir(), "master.key")
	if err := os.WriteFile(kf, key, 0o600); err != nil {
		t.Fatal(err)
	}
	pl := &Plan{Label: "card master", Threshold: 2, Paper: printer.A4,
		Key: KeySource{File: kf, Kind: shares.KindAES}, OutDir: filepath.Join(t.TempDir(), "out"),
		Custodians: []PlanCustodian{
			{Name: "Ana", Card: true, Serial: cards[0].Serial},
			{Name: "Bo", Card: true, Paper: true, Serial: cards[1].Serial},
			{Name: "Chen", Paper: true}}}
	pin, puk := "4711"+randomHex(t)[:4], "90817263"
	sc := &Script{Answers: splitAnswers, Fallback: cardAnswers(pin, puk)}
	audit := openTestAudit(t, filepath.Join(t.TempDir(), "audit.log"))
	opt := Options{Prompter: sc, Interfaces: offline, Audit: audit, Roots: roots}
	out, err := Split(context.Background(), pl, opt)
	if err != nil {
		t.Fatalf("%v\n%s", err, sc.Transcript())
	}
	for i, c := range out.Record.Custodians[:2] {
		if c.Card == nil || c.Card.Serial != cards[i].Serial {
			t.Errorf("custodian %s: card %+v, want serial %d", c.Name, c.Card, cards[i].Serial)
		}
	}
	if c := out.Record.Custodians[1]; len(c.Files) != 2 {
		t.Errorf("Bo's paper: %v", c.Files)
	}
	if strings.Contains(sc.Transcript(), pin) {
		t.Error("a PIN appears on a screen")
	}
	noSecretIn(t, pl.OutDir, key)
	recPath := filepath.Join(pl.OutDir, RecordFile)

	// Recovery from Ana's card (her PIN through the prompter) and Chen's
	// typed share, into a new file.
	fromCard := func(pin string) []Answer {
		return []Answer{
			{"Share 1 of the 2", "custodian's card"},
			{"Whose card", "Ana"},
			{"type the PIN of card " + fmt.Sprint(cards[0].Serial), pin},
			{"Share 2 of the 2", "typed share file"},
			{"Path of the typed", filepath.Join(pl.OutDir, "share-3-Chen.txt")},
			{"Place the key", "yes"},
		}
	}
	outFile := filepath.Join(t.TempDir(), "restored.key")
	rs := &Script{Answers: fromCard(pin)}
	opt.Prompter = rs
	if _, err := Recover(context.Background(), RecoveryPlan{Record: recPath, Target: "file:" + outFile}, opt); err != nil {
		t.Fatalf("%v\n%s", err, rs.Transcript())
	}
	if got, err := os.ReadFile(outFile); err != nil || !bytes.Equal(got, key) {
		t.Fatalf("restored %x, %v", got, err)
	}
	if !strings.Contains(rs.Transcript(), "Ana's share is valid") {
		t.Errorf("screens:\n%s", rs.Transcript())
	}

	// The same into SoftHSM; a wrong PIN first is refused by the card,
	// named, and the ceremony goes on.
	tk := newTestToken(t, "vault-cards")
	answers := fromCard("000000")
	answers = append(answers[:3], fromCard(pin)...)
	rs2 := &Script{Answers: answers}
	opt.Prompter = rs2
	res, err := Recover(context.Background(), RecoveryPlan{Record: recPath, Target: tk.uri("card-master", true)}, opt)
	if err != nil {
		t.Fatalf("%v\n%s", err, rs2.Transcript())
	}
	if !strings.Contains(rs2.Transcript(), "the PIN was wrong") {
		t.Errorf("wrong PIN not explained:\n%s", rs2.Transcript())
	}
	kcv := strings.ToUpper(fmt.Sprintf("%x", out.Record.Checks[0].Value))
	if !strings.Contains(res.Placed, kcv) {
		t.Errorf("proof %q lacks KCV %s", res.Placed, kcv)
	}
	if objs := tk.objects(t); !strings.Contains(objs, "card-master") {
		t.Errorf("pkcs11-tool does not show the key:\n%s", objs)
	}

	// set.json does not sign where shares are kept: with Ana's card serial
	// edited to Bo's, a drill refuses Bo's card for Ana before any PIN is
	// asked, and Bo's card keeps every try.
	rec, err := ReadRecord(recPath)
	if err != nil {
		t.Fatal(err)
	}
	writeJSON(t, recPath, rec, func(m map[string]any) {
		ana := m["custodians"].([]any)[0].(map[string]any)
		ana["card"].(map[string]any)["serial"] = cards[1].Serial
	})
	ds := &Script{Answers: []Answer{{"Share 1 of the 2", "custodian's card"}, {"Whose card", "Ana"},
		{"Share 1 of the 2", "no more"}}}
	opt.Prompter = ds
	if _, err := Drill(context.Background(), recPath, opt); err == nil {
		t.Fatalf("the drill went on:\n%s", ds.Transcript())
	}
	if tr := ds.Transcript(); !strings.Contains(tr, "holds Bo's share 2 of this set, not Ana's share 1") || strings.Contains(tr, "PIN of card") {
		t.Errorf("Bo's card given for Ana:\n%s", tr)
	}
	if st := cardInfo(t, cards[1].Serial); st.Credentials.PINRetries != 3 {
		t.Errorf("Bo's card has %d PIN tries left, want 3", st.Credentials.PINRetries)
	}
	if _, err := VerifyLog(audit.Path()); err != nil {
		t.Error(err)
	}
}

// A card enrolled for Bo, given to Ana by the plan, is not written until
// the room says it is Ana's now: no stops before anything is written, yes
// records the share for Ana.
func TestCardCeremonyOtherCustodiansCard(t *testing.T) {
	ins := virtualtest.Start(t, 1)[0]
	roots := x509.NewCertPool()
	roots.AddCert(ins.Card.AttestationCA())
	pin, puk := "4711"+randomHex(t)[:4], "90817263"
	card, err := smartcard.Open(context.Background(), ins.Serial)
	if err != nil {
		t.Fatal(err)
	}
	creds := NewCredentials{Ask: func(_ smartcard.CardID, what string) ([]byte, error) {
		return []byte(map[string]string{"PIN": pin, "PUK": puk}[what]), nil
	}}
	_, err = EnrolCard(card, smartcard.EnrolOptions{Custodian: "Bo", Roots: roots}, creds, Reporter{})
	card.Close()
	if err != nil {
		t.Fatal(err)
	}
	kf := filepath.Join(t.TempDir(), "master.key")
	if err := os.WriteFile(kf, bytes.Repeat([]byte{0x6c}, 32), 0o600); err != nil {
		t.Fatal(err)
	}
	split := func(reply string) (*SplitOutcome, *Script, error) {
		pl := &Plan{Label: "whose card", Threshold: 2, Paper: printer.A4,
			Key: KeySource{File: kf, Kind: shares.KindAES}, OutDir: filepath.Join(t.TempDir(), "out"),
			Custodians: []PlanCustodian{{Name: "Ana", Card: true, Serial: ins.Serial},
				{Name: "Chen", Paper: true}}}
		answers := cardAnswers(pin, puk)
		sc := &Script{Answers: splitAnswers, Fallback: func(q string) (string, bool) {
			if strings.Contains(q, fmt.Sprintf("Is card %d Ana's card now?", ins.Serial)) {
				return reply, true
			}
			return answers(q)
		}}
		out, err := Split(context.Background(), pl, Options{Prompter: sc, Interfaces: offline, Roots: roots})
		return out, sc, err
	}
	slots := func() []smartcard.SlotInfo { return cardInfo(t, ins.Serial).Slots }

	// stepCard words the card's error with %s, so the stop names the
	// room's "no" in words rather than wrapping ErrDeclined.
	_, sc, err := split("no")
	if err == nil || !strings.Contains(err.Error(), "stopped at the room's request") || !strings.Contains(sc.Transcript(),
		fmt.Sprintf("The plan gives card %d to Ana, but it was enrolled for Bo.", ins.Serial)) {
		t.Fatalf("declined: %v\n%s", err, sc.Transcript())
	}
	if s := slots(); len(s) != 1 || s[0].Kind != smartcard.KindEnrolled || s[0].Custodian != "Bo" {
		t.Fatalf("the card after a declined split: %+v", s)
	}

	out, sc, err := split("yes")
	if err != nil {
		t.Fatalf("%v\n%s", err, sc.Transcript())
	}
	if ref := out.Record.Custodians[0].Card; ref == nil || ref.Slot != "82" {
		t.Errorf("Ana's card: %+v, want slot 82", ref)
	}
	if s := slots(); len(s) != 1 || s[0].Kind != smartcard.KindShare || s[0].Custodian != "Ana" {
		t.Errorf("the card after the split: %+v", s)
	}
}

// A custodian who types the PIN at the last-try question does not show
// it: the question says first that the try is the last, reads the answer
// as a secret, and gives up on anything but yes without repeating it.
func TestCardLastTryAnswerHidden(t *testing.T) {
	const pin = "13572468"
	var echo bytes.Buffer
	sc := &Script{Echo: &echo, Answers: []Answer{
		{Ask: "spend the last try of card 58663930", Reply: pin},
		{Ask: "spend the last try of card 58663930", Reply: "yes"},
	}}
	a := pinAsker{p: sc, who: "Ana"}
	card := smartcard.CardID{Serial: 58663930}

	ok, err := a.ConfirmLastTry(card)
	if err != nil || ok {
		t.Fatalf("a PIN typed at the last-try question: ok %v, err %v", ok, err)
	}
	if strings.Contains(echo.String(), pin) || strings.Contains(sc.Transcript(), pin) {
		t.Fatalf("the PIN typed at the last-try question is shown:\n%s", echo.String())
	}
	tr := sc.Transcript()
	if i, j := strings.Index(tr, "it is the last"), strings.Index(tr, "?? "); i < 0 || j < i {
		t.Fatalf("the last try is not said before the question:\n%s", tr)
	}
	if !strings.Contains(tr, "typing is hidden") {
		t.Fatalf("the question does not say typing is hidden:\n%s", tr)
	}
	if ok, err := a.ConfirmLastTry(card); err != nil || !ok {
		t.Fatalf("yes at the last-try question: ok %v, err %v", ok, err)
	}
}
