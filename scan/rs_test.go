package scan

import (
	"errors"
	"math/rand/v2"
	"testing"
)

// rsEncode appends nsym check codewords to data: the remainder of
// data·x^nsym divided by the generator Π (x - α^i), i < nsym.
func rsEncode(data []byte, nsym int) []byte {
	gen := poly{1}
	for i := 0; i < nsym; i++ {
		gen = gen.mul(poly{gfPow(i), 1})
	}
	// gen is lowest degree first; long division works highest first.
	g := reversed(gen)
	rem := make([]byte, len(data)+nsym)
	copy(rem, data)
	for i := range data {
		c := rem[i]
		if c == 0 {
			continue
		}
		for j := 1; j < len(g); j++ {
			rem[i+j] ^= gfMul(g[j], c)
		}
	}
	return append(append([]byte(nil), data...), rem[len(data):]...)
}

func TestRSCorrect(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	const k, nsym = 15, 30 // a version 32-H block
	for trial := 0; trial < 300; trial++ {
		data := make([]byte, k)
		for i := range data {
			data[i] = byte(rng.IntN(256))
		}
		code := rsEncode(data, nsym)
		if err := rsCorrect(append([]byte(nil), code...), nsym, nil); err != nil {
			t.Fatalf("clean block rejected: %v", err)
		}

		erasures := rng.IntN(nsym + 1)
		errs := (nsym - erasures) / 2
		got := append([]byte(nil), code...)
		perm := rng.Perm(len(code))
		var marked []int
		for _, i := range perm[:erasures] {
			got[i] ^= byte(rng.IntN(256)) // an erasure may be right by luck
			marked = append(marked, i)
		}
		for _, i := range perm[erasures : erasures+errs] {
			got[i] ^= byte(1 + rng.IntN(255))
		}
		if err := rsCorrect(got, nsym, marked); err != nil {
			t.Fatalf("trial %d: %d erasures + %d errors: %v", trial,
				erasures, errs, err)
		}
		if string(got) != string(code) {
			t.Fatalf("trial %d: %d erasures + %d errors miscorrected",
				trial, erasures, errs)
		}
	}
}

func TestRSBeyondCapacity(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	const k, nsym = 16, 30
	refused, wrong := 0, 0
	for trial := 0; trial < 200; trial++ {
		data := make([]byte, k)
		for i := range data {
			data[i] = byte(rng.IntN(256))
		}
		code := rsEncode(data, nsym)
		got := append([]byte(nil), code...)
		for _, i := range rng.Perm(len(code))[:nsym/2+1] {
			got[i] ^= byte(1 + rng.IntN(255))
		}
		err := rsCorrect(got, nsym, nil)
		switch {
		case errors.Is(err, errTooManyErrors):
			refused++
		case err == nil && string(got) == string(code):
			t.Fatal("corrected more errors than the code allows")
		default:
			wrong++ // decoded to another codeword: possible, and rare
		}
	}
	if refused < 190 {
		t.Errorf("refused %d of 200 overloaded blocks, %d miscorrected",
			refused, wrong)
	}
}

func FuzzRSCorrect(f *testing.F) {
	f.Add([]byte("custos"), uint8(10), []byte{1, 3})
	f.Fuzz(func(t *testing.T, block []byte, nsym uint8, er []byte) {
		var erasures []int
		for _, e := range er {
			if int(e) < len(block) {
				erasures = append(erasures, int(e))
			}
		}
		rsCorrect(block, int(nsym), erasures) // must not panic
	})
}
