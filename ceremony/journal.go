package ceremony

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"
)

// Journal is the public diary of one ceremony, kept in its output
// directory so that a rerun after an interruption continues where the last
// run stopped instead of doing a step twice. It is rewritten atomically
// after every step and never holds a secret: only step names, card
// serials, file names and the public set record.
type Journal struct {
	Ceremony   string             `json:"ceremony"` // "split" or "recover"
	Attempt    int                `json:"attempt"`
	SetID      string             `json:"set_id,omitempty"`
	Started    time.Time          `json:"started"`
	Steps      []JournalStep      `json:"steps"`
	Stopped    *JournalStep       `json:"stopped,omitempty"`
	Done       bool               `json:"done"`
	Custodians []JournalCustodian `json:"custodians,omitempty"`
	// Record is the split's public record, kept once every share is out
	// and proven, so that a rerun can finish without the secret.
	Record *SetRecord `json:"record,omitempty"`
	// Abandoned lists the sets of earlier attempts that stopped before
	// every share was out; their card shares may be overwritten.
	Abandoned []string `json:"abandoned,omitempty"`
	// Exported names the recovery target the key was placed in.
	Exported string `json:"exported,omitempty"`

	path string
}

// JournalStep is one finished (or interrupted) step.
type JournalStep struct {
	Name   string    `json:"name"`
	At     time.Time `json:"at"`
	Detail string    `json:"detail,omitempty"`
}

// JournalCustodian is the state of one custodian's media.
type JournalCustodian struct {
	Index int    `json:"index"`
	Name  string `json:"name"`
	Card  uint32 `json:"card,omitempty"`
	// CardState is "", "written" (holds this attempt's verified share)
	// or "collected" (read at a recovery).
	CardState string   `json:"card_state,omitempty"`
	Paper     []string `json:"paper,omitempty"` // files written
}

// JournalFile returns the journal path of a ceremony in dir.
func JournalFile(dir, ceremony string) string {
	return filepath.Join(dir, "ceremony-"+ceremony+".journal.json")
}

// OpenJournal reads the journal at path, or returns nil when none exists.
func OpenJournal(path string) (*Journal, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading journal: %w", err)
	}
	var j Journal
	if err := json.Unmarshal(b, &j); err != nil {
		return nil, fmt.Errorf("journal %s is damaged (%v); move it aside to start afresh", path, err)
	}
	j.path = path
	return &j, nil
}

// NewJournal starts a journal at path for a ceremony; attempt counts the
// runs.
func NewJournal(path, ceremony string, attempt int, now time.Time) *Journal {
	return &Journal{Ceremony: ceremony, Attempt: attempt, Started: now, path: path}
}

// Save writes the journal atomically.
func (j *Journal) Save() error {
	b, err := json.MarshalIndent(j, "", "  ")
	if err != nil {
		return err
	}
	if err := replaceFile(j.path, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("saving journal: %w", err)
	}
	return nil
}

// Has says whether step name is done.
func (j *Journal) Has(name string) bool {
	for _, s := range j.Steps {
		if s.Name == name {
			return true
		}
	}
	return false
}

// Custodian returns the journal entry of share index, adding it.
func (j *Journal) Custodian(index int, name string) *JournalCustodian {
	for i := range j.Custodians {
		if j.Custodians[i].Index == index {
			return &j.Custodians[i]
		}
	}
	j.Custodians = append(j.Custodians, JournalCustodian{Index: index, Name: name})
	return &j.Custodians[len(j.Custodians)-1]
}

// Last returns the last finished step, or "".
func (j *Journal) Last() string {
	if len(j.Steps) == 0 {
		return ""
	}
	return j.Steps[len(j.Steps)-1].Name
}

// abandonedSets returns the sets earlier attempts gave up.
func (j *Journal) abandonedSets() []string {
	return append([]string(nil), j.Abandoned...)
}
