package ceremony

import (
	"os"
	"path/filepath"
	"testing"

	"custos/shares"
)

// FuzzReadRecord feeds set records to the reader: it must refuse what is
// not a valid record, with an error, and never panic.
func FuzzReadRecord(f *testing.F) {
	d, err := shares.Split([]byte("seed"), shares.Policy{Threshold: 2, Count: 2, Custodians: []string{"a", "b"}})
	if err != nil {
		f.Fatal(err)
	}
	good, err := NewRecord(d).Marshal()
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add([]byte(`{"custos_set_record": 1}`))
	f.Add([]byte(`{`))
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, b []byte) {
		path := filepath.Join(dir, "set.json")
		if err := os.WriteFile(path, b, 0o600); err != nil {
			t.Fatal(err)
		}
		r, err := ReadRecord(path)
		if err != nil {
			return
		}
		if r.Expect() == nil || len(r.DealerKey) != 32 || len(r.Checks) == 0 {
			t.Fatal("ReadRecord accepted a record without dealer key or check value")
		}
	})
}
