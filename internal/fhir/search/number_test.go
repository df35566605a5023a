package search

import (
	"errors"
	"fmt"
	"math/big"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

// ratOf is an independent reading of a decimal string.
func ratOf(t *testing.T, s string) *big.Rat {
	t.Helper()
	r, ok := new(big.Rat).SetString(s)
	if !ok {
		t.Fatalf("bad decimal %q", s)
	}
	return r
}

// truncated is what the index compares: s truncated toward zero to
// NumDigits significant digits (computed with big.Rat, not the grid).
func truncated(t *testing.T, s string) *big.Rat {
	r := ratOf(t, s)
	if r.Sign() == 0 {
		return r
	}
	a := new(big.Rat).Abs(r)
	// Find e with 10^e <= a < 10^(e+1).
	e := 0
	ten := big.NewRat(10, 1)
	p := big.NewRat(1, 1)
	for a.Cmp(p) < 0 {
		p.Quo(p, ten)
		e--
	}
	for new(big.Rat).Mul(p, ten).Cmp(a) <= 0 {
		p.Mul(p, ten)
		e++
	}
	if e < MinNumExp || e > MaxNumExp {
		return r // tiny or huge: never split by a boundary
	}
	unit := new(big.Rat).Set(p)
	for range NumDigits - 1 {
		unit.Quo(unit, ten)
	}
	q := new(big.Rat).Quo(a, unit)
	n := new(big.Int).Quo(q.Num(), q.Denom())
	out := new(big.Rat).Mul(new(big.Rat).SetInt(n), unit)
	if r.Sign() < 0 {
		out.Neg(out)
	}
	return out
}

func randDecimal(rng *rand.Rand, maxDigits int, minExp, maxExp int) string {
	n := 1 + rng.IntN(maxDigits)
	var sb strings.Builder
	sb.WriteByte(byte('1' + rng.IntN(9)))
	for range n - 1 {
		sb.WriteByte(byte('0' + rng.IntN(10)))
	}
	e := minExp + rng.IntN(maxExp-minExp+1)
	s := sb.String() + "e" + fmt.Sprint(e-(n-1))
	if rng.IntN(4) == 0 {
		s = "-" + s
	}
	if rng.IntN(20) == 0 {
		s = "0"
	}
	// The plain form, as a client would write it.
	r, _ := new(big.Rat).SetString(s)
	prec := max(0, (n-1)-e)
	return r.FloatString(prec)
}

// TestNumberKeysAgreeWithArithmetic checks, for random stored values
// and queries, that the blind bucket keys match exactly when R4's
// prefix semantics hold on the truncated value.
func TestNumberKeysAgreeWithArithmetic(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	ops := []string{"", "eq", "ne", "gt", "lt", "ge", "le", "sa", "eb", "ap"}
	for i := range 20000 {
		// Values cluster near the query so that boundaries are exercised.
		qs := randDecimal(rng, NumDigits, -3, 4)
		var vs string
		switch i % 3 {
		case 0:
			vs = randDecimal(rng, 9, -3, 4)
		case 1:
			q := ratOf(t, qs)
			d := ratOf(t, randDecimal(rng, 3, -4, 0))
			vs = new(big.Rat).Add(q, d).FloatString(8)
		default:
			vs = qs
		}
		op := ops[rng.IntN(len(ops))]
		keys, neg, err := numberKeys("n", op+qs)
		if err != nil {
			t.Fatalf("%s%s: %v", op, qs, err)
		}
		d, ok := parseDecimal(vs)
		if !ok {
			t.Fatalf("bad stored value %q", vs)
		}
		idx, _, _ := gridPoint(d, false)
		match := false
		for _, k := range numKeys(idx) {
			match = match || slices.Contains(keys, k)
		}
		if neg {
			match = !match
		}
		tv, q := truncated(t, vs), ratOf(t, qs)
		qd, _ := parseDecimal(qs)
		half := new(big.Rat).SetFrac(big.NewInt(5), big.NewInt(1))
		for range 1 - qd.Scale {
			half.Quo(half, big.NewRat(10, 1))
		}
		for range qd.Scale - 1 {
			half.Mul(half, big.NewRat(10, 1))
		}
		c := tv.Cmp(q)
		var want bool
		switch op {
		case "", "eq", "ne":
			lo, hi := new(big.Rat).Sub(q, half), new(big.Rat).Add(q, half)
			want = tv.Cmp(lo) >= 0 && tv.Cmp(hi) < 0
			if op == "ne" {
				want = !want
			}
		case "gt", "sa":
			want = c > 0
		case "lt", "eb":
			want = c < 0
		case "ge":
			want = c >= 0
		case "le":
			want = c <= 0
		case "ap":
			w := new(big.Rat).Quo(new(big.Rat).Abs(q), big.NewRat(10, 1))
			if w.Cmp(half) < 0 {
				w = half
			}
			lo, hi := new(big.Rat).Sub(q, w), new(big.Rat).Add(q, w)
			in := tv.Cmp(lo) >= 0 && tv.Cmp(hi) <= 0
			// Outward rounding to the grid may add one grid point each side.
			slack := new(big.Rat).Quo(new(big.Rat).Add(new(big.Rat).Abs(q), half), big.NewRat(1000, 1))
			far := tv.Cmp(new(big.Rat).Sub(lo, slack)) < 0 || tv.Cmp(new(big.Rat).Add(hi, slack)) > 0
			if in && !match || far && match {
				t.Fatalf("ap%s vs %s: match %v", qs, vs, match)
			}
			continue
		}
		if match != want {
			t.Fatalf("%s%s vs stored %s (truncated %s): match %v, want %v (keys %q)", op, qs, vs, tv.FloatString(10), match, want, keys)
		}
	}
}

func TestNumberDecomposeIsMinimalAndBounded(t *testing.T) {
	// Whole positive range: t, every decade, h.
	keys := decompose(1, numHuge)
	if len(keys) != numExps+2 {
		t.Errorf("positive half: %d keys, want %d", len(keys), numExps+2)
	}
	for _, q := range []string{"gt0.000123456", "lt-98765.4", "ge1", "le-1e-17", "ap5.4", "eq100"} {
		ks, _, err := numberKeys("n", q)
		if err != nil {
			t.Fatal(q, err)
		}
		if len(ks) > maxNumKeys/2 {
			t.Errorf("%s: %d keys", q, len(ks))
		}
	}
	// eq 5.4 is [5.35, 5.45): 5.35..5.39999 and 5.4..5.44999.
	ks, _, _ := numberKeys("n", "5.4")
	want := []string{"+e0:535", "+e0:536", "+e0:537", "+e0:538", "+e0:539", "+e0:540", "+e0:541", "+e0:542", "+e0:543", "+e0:544"}
	if !slices.Equal(ks, want) {
		t.Errorf("eq5.4: %q, want %q", ks, want)
	}
	// eq100 is [99.5, 100.5): across a decade.
	ks, _, _ = numberKeys("n", "100")
	want = []string{"+e1:995", "+e1:996", "+e1:997", "+e1:998", "+e1:999", "+e2:1000", "+e2:1001", "+e2:1002", "+e2:1003", "+e2:1004"}
	if !slices.Equal(ks, want) {
		t.Errorf("eq100: %q, want %q", ks, want)
	}
}

func TestNumberErrors(t *testing.T) {
	for _, q := range []string{"", "abc", "5,4", "1.234567", "gt5.40000000", "1e99999", "gt1e-30", "lt1e40", "xx5", "5.", ".5", "+5", "0x10", "NaN", "Inf"} {
		_, _, err := numberKeys("n", q)
		if err == nil {
			t.Errorf("%q: no error", q)
			continue
		}
		if !errors.Is(err, ErrInvalidValue) && !errors.Is(err, ErrUnsupported) && !errors.Is(err, ErrTooComplex) {
			t.Errorf("%q: %v wraps no sentinel", q, err)
		}
		if q != "" && strings.Contains(err.Error(), q) {
			t.Errorf("%q: error echoes the value: %v", q, err)
		}
	}
	// Stored values outside the grid are still indexed (tiny, huge).
	for s, want := range map[string]string{"1e-30": "+t", "-1e40": "-h", "0": "0", "0.000": "0"} {
		ks, ok := numberValueKeys(s)
		if !ok || len(ks) != 1 || ks[0] != want {
			t.Errorf("%s: %q", s, ks)
		}
	}
}
