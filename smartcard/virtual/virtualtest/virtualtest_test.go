package virtualtest

import (
	"reflect"
	"testing"
)

func TestParsePorts(t *testing.T) {
	got, err := parsePorts("35963=Virtual PCD 00 00, 35964=Virtual PCD 00 01,,35965 = Virtual PCD B 00 00")
	if err != nil {
		t.Fatal(err)
	}
	want := []reader{{35963, "Virtual PCD 00 00"}, {35964, "Virtual PCD 00 01"}, {35965, "Virtual PCD B 00 00"}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	for _, bad := range []string{"", "35963", "x=Reader", "0=Reader", "70000=Reader", "35963=", ","} {
		if _, err := parsePorts(bad); err == nil {
			t.Errorf("parsed %q", bad)
		}
	}
}

// Readers taken by one holder are not given to another until freed.
func TestReaderLocks(t *testing.T) {
	t.Setenv(EnvLockDir, t.TempDir())
	readers := []reader{{1, "a"}, {2, "b"}, {3, "c"}}
	first := lockReaders(t, readers, 2)
	if first[0].port != 1 || first[1].port != 2 {
		t.Fatalf("took %v", first)
	}
	second := lockReaders(t, readers, 1)
	if second[0].port != 3 {
		t.Fatalf("second holder took reader %d, held by the first", second[0].port)
	}
	first[0].lock.Close()
	third := lockReaders(t, readers, 1)
	if third[0].port != 1 {
		t.Fatalf("freed reader not reused: got %d", third[0].port)
	}
	for _, h := range append(append(first[1:], second...), third...) {
		h.lock.Close()
	}
}

func TestPullAfterCounting(t *testing.T) {
	s := &slot{}
	s.pullAfter.Store(-1)
	if !s.before(nil) || s.commands.Load() != 1 {
		t.Fatal("unarmed fault pulled the card")
	}
	s.pullAfter.Store(2)
	for i, want := range []bool{true, true, false} {
		if got := s.before(nil); got != want {
			t.Fatalf("command %d after PullAfter(2): answered %v, want %v", i+1, got, want)
		}
	}
	if !s.faulted.Load() {
		t.Fatal("fault not recorded")
	}
	if !s.before(nil) {
		t.Fatal("fault fired twice")
	}
}
