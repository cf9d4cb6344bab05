package scan

import "errors"

// Reed-Solomon decoding with erasures over GF(256), as QR codes use it
// (ISO/IEC 18004, 7.5.2: field polynomial x^8+x^4+x^3+x^2+1, generator
// roots α^0 ... α^(n-1)). gozxing's decoder corrects errors only: t errors
// in a block with 2t check codewords. Knowing which codewords are damaged
// (erasures) doubles that, since 2·errors + erasures <= check codewords
// is enough; a torn or covered part of a code is such knowledge.

var gfExp [512]byte
var gfLog [256]int

func init() {
	x := 1
	for i := 0; i < 255; i++ {
		gfExp[i] = byte(x)
		gfLog[x] = i
		x <<= 1
		if x&0x100 != 0 {
			x ^= 0x11d
		}
	}
	for i := 255; i < 512; i++ {
		gfExp[i] = gfExp[i-255]
	}
}

func gfMul(a, b byte) byte {
	if a == 0 || b == 0 {
		return 0
	}
	return gfExp[gfLog[a]+gfLog[b]]
}

func gfDiv(a, b byte) byte {
	if a == 0 {
		return 0
	}
	return gfExp[gfLog[a]+255-gfLog[b]]
}

// gfPow returns α^e.
func gfPow(e int) byte { return gfExp[((e%255)+255)%255] }

// poly is a polynomial over GF(256), lowest degree first.
type poly []byte

func (p poly) eval(x byte) byte {
	var y byte
	for i := len(p) - 1; i >= 0; i-- {
		y = gfMul(y, x) ^ p[i]
	}
	return y
}

func (p poly) mul(q poly) poly {
	out := make(poly, len(p)+len(q)-1)
	for i, a := range p {
		for j, b := range q {
			out[i+j] ^= gfMul(a, b)
		}
	}
	return out
}

var errTooManyErrors = errors.New("too many damaged codewords")

// rsCorrect corrects block in place. block holds data then check
// codewords, first codeword first; nsym is the number of check codewords
// and erasures the indexes of codewords known to be unreliable. It
// returns errTooManyErrors when the damage is beyond what nsym allows.
func rsCorrect(block []byte, nsym int, erasures []int) error {
	n := len(block)
	if n > 255 || nsym >= n || len(erasures) > nsym {
		return errTooManyErrors
	}
	// Codeword i is the coefficient of x^(n-1-i); its locator is
	// α^(n-1-i).
	loc := func(i int) byte { return gfPow(n - 1 - i) }

	synd := make(poly, nsym)
	clean := true
	for j := range synd {
		var s byte
		x := gfPow(j)
		for _, c := range block {
			s = gfMul(s, x) ^ c
		}
		synd[j] = s
		clean = clean && s == 0
	}
	if clean {
		return nil
	}

	lambda := berlekampMassey(synd, erasures, loc)
	if lambda == nil {
		return errTooManyErrors
	}

	// Chien search: the roots of lambda are the inverse locators.
	var positions []int
	for i := 0; i < n; i++ {
		if lambda.eval(gfDiv(1, loc(i))) == 0 {
			positions = append(positions, i)
		}
	}
	if len(positions) != degree(lambda) {
		return errTooManyErrors
	}

	// Forney: e = X·Ω(X⁻¹) / Λ'(X⁻¹), with Ω = S·Λ mod x^nsym.
	omega := synd.mul(lambda)[:nsym]
	deriv := make(poly, len(lambda))
	for i := 1; i < len(lambda); i += 2 {
		deriv[i-1] = lambda[i]
	}
	fixed := append([]byte(nil), block...)
	for _, i := range positions {
		xinv := gfDiv(1, loc(i))
		d := deriv.eval(xinv)
		if d == 0 {
			return errTooManyErrors
		}
		fixed[i] ^= gfMul(loc(i), gfDiv(omega.eval(xinv), d))
	}

	for j := 0; j < nsym; j++ {
		if poly(reversed(fixed)).eval(gfPow(j)) != 0 {
			return errTooManyErrors
		}
	}
	copy(block, fixed)
	return nil
}

// berlekampMassey finds the errata locator, starting from the erasure
// locator so that only the unknown errors are searched for. It returns
// nil when 2·errors + erasures exceeds the syndromes' length.
func berlekampMassey(synd poly, erasures []int, loc func(int) byte) poly {
	lambda := poly{1}
	for _, i := range erasures {
		lambda = lambda.mul(poly{1, loc(i)})
	}
	b := append(poly(nil), lambda...)
	f := len(erasures)
	l := f

	for k := f; k < len(synd); k++ {
		var delta byte
		for i := 0; i <= l && i < len(lambda); i++ {
			if k-i >= 0 {
				delta ^= gfMul(lambda[i], synd[k-i])
			}
		}
		b = append(poly{0}, b...) // b·x
		if delta == 0 {
			continue
		}
		next := make(poly, max(len(lambda), len(b)))
		copy(next, lambda)
		for i, c := range b {
			next[i] ^= gfMul(delta, c)
		}
		if 2*l <= k+f {
			l = k + f + 1 - l
			b = make(poly, len(lambda))
			for i, c := range lambda {
				b[i] = gfDiv(c, delta)
			}
		}
		lambda = next
	}

	lambda = lambda[:degree(lambda)+1]
	if 2*(l-f)+f > len(synd) || degree(lambda) != l {
		return nil
	}
	return lambda
}

func degree(p poly) int {
	for i := len(p) - 1; i > 0; i-- {
		if p[i] != 0 {
			return i
		}
	}
	return 0
}

func reversed(b []byte) []byte {
	out := make([]byte, len(b))
	for i, c := range b {
		out[len(b)-1-i] = c
	}
	return out
}
