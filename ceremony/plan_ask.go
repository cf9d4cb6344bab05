package ceremony

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"custos/printer"
)

// AskPlan fills in what a split plan lacks by asking the room, one
// question at a time. A nil plan is asked for in full.
func AskPlan(p Prompter, pl *Plan) (*Plan, error) {
	if pl == nil {
		pl = &Plan{}
	}
	if len(pl.missing()) == 0 {
		return pl, nil
	}
	p.Show(Screen{Title: "Planning the split", Lines: []string{
		"No plan file gives everything this split needs, so custos asks.",
		"Answer each question; nothing is written until every answer is in.",
	}})
	steps := []func(Prompter, *Plan) error{askLabel, askCustodians, askThreshold, askKey, askOut}
	for _, step := range steps {
		if err := step(p, pl); err != nil {
			return nil, err
		}
	}
	if pl.Paper == 0 {
		pl.Paper = printer.A4
	}
	if err := pl.check(); err != nil {
		return nil, fmt.Errorf("checking the answers: %w", err)
	}
	return pl, nil
}

func notEmpty(s string) error {
	if strings.TrimSpace(s) == "" {
		return errors.New("please type something")
	}
	return nil
}

func askLabel(p Prompter, pl *Plan) error {
	if pl.Label != "" {
		return nil
	}
	var err error
	pl.Label, err = p.Input("What is the key called (printed on every share)?", notEmpty)
	return err
}

func askCustodians(p Prompter, pl *Plan) error {
	if len(pl.Custodians) > 0 {
		return nil
	}
	n, err := askNumber(p, "How many custodians will hold a share?", 2, 255)
	if err != nil {
		return err
	}
	for i := 1; i <= n; i++ {
		c, err := askCustodian(p, i, pl.Custodians)
		if err != nil {
			return err
		}
		pl.Custodians = append(pl.Custodians, c)
	}
	return nil
}

func askCustodian(p Prompter, i int, before []PlanCustodian) (PlanCustodian, error) {
	name, err := p.Input(fmt.Sprintf("Name of custodian %d?", i), func(s string) error {
		if err := notEmpty(s); err != nil {
			return err
		}
		for _, c := range before {
			if c.Name == strings.TrimSpace(s) {
				return fmt.Errorf("%s is already custodian", c.Name)
			}
		}
		return nil
	})
	if err != nil {
		return PlanCustodian{}, err
	}
	c := PlanCustodian{Name: name}
	media := []string{"paper only", "card only", "card and paper"}
	m, err := p.Select(fmt.Sprintf("How does %s keep their share?", name), media)
	if err != nil {
		return c, err
	}
	c.Paper, c.Card = m != 1, m != 0
	if c.Card {
		s, err := askNumber(p, fmt.Sprintf("Serial number of %s's card (printed on it)?", name), 1, 1<<32-1)
		if err != nil {
			return c, err
		}
		c.Serial = uint32(s)
	}
	return c, nil
}

func askNumber(p Prompter, q string, lo, hi int) (int, error) {
	s, err := p.Input(q, func(s string) error {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < lo || n > hi {
			return fmt.Errorf("give a number from %d to %d", lo, hi)
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(strings.TrimSpace(s))
}

func askThreshold(p Prompter, pl *Plan) error {
	if pl.Threshold != 0 {
		return nil
	}
	n := len(pl.Custodians)
	var err error
	pl.Threshold, err = askNumber(p, fmt.Sprintf("How many of the %d custodians must come together to rebuild the key?", n), 2, n)
	return err
}

func askKey(p Prompter, pl *Plan) error {
	if pl.Key.Generate || pl.Key.File != "" {
		return nil
	}
	i, err := p.Select("Where does the master key come from?",
		[]string{"generate a new AES-256 key inside custos", "read it from a file"})
	if err != nil || i == 0 {
		pl.Key.Generate = err == nil
		return err
	}
	pl.Key.File, err = p.Input("Path of the key file?", notEmpty)
	return err
}

func askOut(p Prompter, pl *Plan) error {
	if pl.OutDir != "" {
		return nil
	}
	var err error
	pl.OutDir, err = p.Input("Directory for the set record and paper shares?", notEmpty)
	return err
}
