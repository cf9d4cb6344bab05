package hsm

import (
	"fmt"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/miekg/pkcs11"
)

// BenchmarkBulkImport restores a bundle of 10,000 AES-256 keys into
// SoftHSM, each proven inside (ECB and CMAC), by both paths, and times
// beside each a bare loop of C_CreateObject (or C_UnwrapKey) calls with
// the same templates on the same token. The figures that matter are the
// ratios; the target is 1.5 or less. Run it once:
//
//	go test ./hsm -run '^$' -bench BulkImport -benchtime 1x
//
// SoftHSM slows as a token fills, so whichever loop runs second on a token
// is handicapped. Each path therefore uses two tokens, one with the bare
// loop first and one with the import first, and the ratio is of the sums.
// The import that runs second also reads the label and ID of each object
// already there, to refuse conflicts; index-µs/object reports that cost.
// CUSTOS_BENCH_KEYS sets another bundle size for a quick look.
func BenchmarkBulkImport(b *testing.B) {
	n := 10000
	if v, err := strconv.Atoi(os.Getenv("CUSTOS_BENCH_KEYS")); err == nil &&
		v > 0 {
		n = v
	}
	h := newSoftHSM(b)
	var r benchResult
	b.StopTimer()
	for i := 0; i < b.N; i++ {
		for _, path := range []Path{PathCreate, PathUnwrap} {
			for _, bareFirst := range []bool{true, false} {
				label := fmt.Sprintf("%v-%d-%v", path, i, bareFirst)
				h.initToken(label)
				s := h.open(label)
				r.run(b, s, n, path, bareFirst)
				s.Close()
			}
		}
	}

	perKey := func(d time.Duration) float64 {
		return float64(d.Microseconds()) / float64(2*n*b.N)
	}
	b.ReportMetric(perKey(r.bare[PathCreate]), "bare-create-µs/key")
	b.ReportMetric(perKey(r.imp[PathCreate]), "import-create-µs/key")
	b.ReportMetric(r.ratio(PathCreate), "create-ratio")
	b.ReportMetric(perKey(r.bare[PathUnwrap]), "bare-unwrap-µs/key")
	b.ReportMetric(perKey(r.imp[PathUnwrap]), "import-unwrap-µs/key")
	b.ReportMetric(r.ratio(PathUnwrap), "unwrap-ratio")
	b.ReportMetric(float64(r.index.Microseconds())/float64(r.indexed),
		"index-µs/object")
}

type benchResult struct {
	bare, imp map[Path]time.Duration
	index     time.Duration
	indexed   int
}

func (r *benchResult) ratio(p Path) float64 {
	return float64(r.imp[p]) / float64(r.bare[p])
}

// run times one bare loop and one import of n keys on the token s.
func (r *benchResult) run(b *testing.B, s *Session, n int, path Path,
	bareFirst bool) {

	if r.bare == nil {
		r.bare, r.imp = map[Path]time.Duration{}, map[Path]time.Duration{}
	}
	bare := func() {
		keys := bundle(b, n, "bare")
		if path == PathCreate {
			r.bare[path] += timeBare(b, s, keys)
		} else {
			r.bare[path] += timeBareUnwrap(b, s, keys)
		}
	}
	if bareFirst {
		bare()
		start := time.Now()
		if _, err := s.index(); err != nil {
			b.Fatal(err)
		}
		r.index += time.Since(start)
		r.indexed += n
	}
	r.imp[path] += timeImport(b, s, bundle(b, n, "import"),
		Options{Path: path})
	if !bareFirst {
		bare()
	}
}

// timeBare creates the keys with bare C_CreateObject calls.
func timeBare(b *testing.B, s *Session, keys []Key) time.Duration {
	templates := make([]attrs, len(keys))
	for i := range keys {
		t, _, err := secretValues(&keys[i], secretTemplate(&keys[i]))
		if err != nil {
			b.Fatal(err)
		}
		templates[i] = t
	}
	b.StartTimer()
	start := time.Now()
	for _, t := range templates {
		if _, err := s.p.CreateObject(s.sh, t); err != nil {
			b.Fatal(err)
		}
	}
	d := time.Since(start)
	b.StopTimer()
	return d
}

// timeImport imports the keys with proof and checks every one is proven.
func timeImport(b *testing.B, s *Session, keys []Key,
	opts Options) time.Duration {

	b.StartTimer()
	start := time.Now()
	out, err := s.Import(bg, keys, opts)
	d := time.Since(start)
	b.StopTimer()
	if err != nil {
		b.Fatal(err)
	}
	for _, im := range out {
		if len(im.Proof.Proven) != 2 {
			b.Fatalf("%s proven by %v", im.Label, im.Proof.Proven)
		}
	}
	if len(out) != len(keys) {
		b.Fatalf("%d of %d keys imported", len(out), len(keys))
	}
	return d
}

// timeBareUnwrap unwraps the keys with bare C_UnwrapKey calls under a
// transport key, wrapped beforehand, with the templates Import uses.
func timeBareUnwrap(b *testing.B, s *Session, keys []Key) time.Duration {
	t, err := s.newTransport(Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer s.closeTransport(t)
	wrapped := make([][]byte, len(keys))
	for i := range keys {
		if wrapped[i], err = kwpWrap(t.key, keys[i].Secret); err != nil {
			b.Fatal(err)
		}
	}
	m := []*pkcs11.Mechanism{
		pkcs11.NewMechanism(pkcs11.CKM_AES_KEY_WRAP_PAD, nil)}

	b.StartTimer()
	start := time.Now()
	for i := range keys {
		_, err := s.p.UnwrapKey(s.sh, m, t.aes, wrapped[i],
			secretTemplate(&keys[i]))
		if err != nil {
			b.Fatal(err)
		}
	}
	d := time.Since(start)
	b.StopTimer()
	return d
}
