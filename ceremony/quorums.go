package ceremony

import (
	"math/big"
	"math/rand/v2"
	"sort"
)

// quorumSubsets returns the k-subsets of n shares to prove. When there are
// at most max of them it returns them all and true. Otherwise it returns
// every run of k consecutive shares (wrapping around, so each share is in k
// of them) and random subsets up to max, and false.
func quorumSubsets(n, k, max int) ([][]int, bool) {
	if b := binomial(n, k); b.IsInt64() && b.Int64() <= int64(max) {
		var all [][]int
		forEachSubset(n, k, func(idx []int) {
			all = append(all, append([]int(nil), idx...))
		})
		return all, true
	}
	seen := map[string]bool{}
	var out [][]int
	add := func(idx []int) {
		sort.Ints(idx)
		key := string(intsKey(idx))
		if !seen[key] {
			seen[key] = true
			out = append(out, idx)
		}
	}
	for start := 0; start < n; start++ {
		idx := make([]int, k)
		for j := range idx {
			idx[j] = (start + j) % n
		}
		add(idx)
	}
	for len(out) < max {
		add(rand.Perm(n)[:k])
	}
	return out, false
}

func intsKey(idx []int) []byte {
	b := make([]byte, len(idx))
	for i, v := range idx {
		b[i] = byte(v)
	}
	return b
}

func binomial(n, k int) *big.Int { return new(big.Int).Binomial(int64(n), int64(k)) }

func binomialString(n, k int) string { return binomial(n, k).String() }

// forEachSubset calls f with each k-subset of 0..n-1, in order.
func forEachSubset(n, k int, f func([]int)) {
	idx := make([]int, k)
	var rec func(pos, from int)
	rec = func(pos, from int) {
		if pos == k {
			f(idx)
			return
		}
		for i := from; i <= n-(k-pos); i++ {
			idx[pos] = i
			rec(pos+1, i+1)
		}
	}
	rec(0, 0)
}
