package search

import (
	"fmt"
	"math/big"
	"regexp"
	"strconv"
	"strings"
)

// Number and quantity search over a blind index.
//
// A clinical value (a lab result, a probability) next to a blind code
// hash and an owner is a lab result; it is never stored in plaintext.
// Like a birth date (birthdate.go), a number is indexed as blind keys of
// the buckets it falls in, at every precision from its decade to its
// sixth significant digit, and a comparison is answered by the fewest
// buckets that cover the values it accepts.
//
// The grid. A value is first truncated toward zero to [NumDigits]
// significant digits: 5.4371289 is indexed as 5.43712. Every comparison
// is exact on that truncated value (and only on it: 5.4000001 is "equal"
// to 5.4 and not greater), so values of at most six significant digits
// (nearly all measurements) compare exactly. A query value may have at
// most six significant digits (more is refused, not rounded); the
// boundaries of eq, ne and ap may have a seventh. A truncated non-zero value v with decimal
// exponent e (10^e <= |v| < 10^(e+1)), e within [MinNumExp, MaxNumExp],
// and mantissa digits d1..d6 gets the keys
//
//	sign e                 (its decade: 1 key)
//	sign e d1 ... dL       (L = 1..6: 6 keys)
//
// zero gets one key; a value smaller (or larger) in magnitude than the
// exponent range gets one "tiny" (or "huge") key for its sign. All the
// values of the grid are thus numbered in order, and every set of grid
// points a prefix asks for (eq, ne, gt, lt, ge, le, sa, eb, ap) is one
// interval, which is cut into whole decades, then aligned blocks of
// 10^k mantissas (decompose): at most a few hundred keys for an open
// range, a handful for eq.
//
// Prefix semantics on a stored value v (R4 search.html, number; the
// implicit precision applies to eq, ne and ap only, the other prefixes
// compare with arbitrary precision):
//
//	eq 5.4   5.35 <= v < 5.45         ne 5.4   not eq
//	gt 5.4   v > 5.4                  lt 5.4   v < 5.4
//	ge 5.4   v >= 5.4                 le 5.4   v <= 5.4
//	sa 5.4   as gt (a stored value is a point)
//	eb 5.4   as lt
//	ap 5.4   |v - 5.4| <= max(10% of 5.4, 0.05), widened outward to the grid
//
// What the index holder learns (no key is needed to see it): which
// values share a sign and decade, and which share their first 1..6
// significant digits, per parameter and unit; with six digits that is
// close to equality of the values. A range query asks for many keys at
// once, and an observer of many range queries (the database server, or
// anyone who reads its statement log) can learn which keys are adjacent
// and so recover the order of the buckets, and from a known distribution
// of lab values estimate them (leakage-abuse attacks on range-searchable
// encryption). No number is stored in plaintext and no key leaves the
// process unhashed. ADR 0031 records the choice.

// NumDigits is the number of significant digits a number is indexed and
// compared at.
const NumDigits = 6

// The decimal exponents the grid covers: 1e-18 <= |v| < 1e19. Smaller
// and larger magnitudes are indexed as "tiny" and "huge" and cannot be a
// comparison's boundary.
const (
	MinNumExp = -18
	MaxNumExp = 18
)

const (
	numExps    = MaxNumExp - MinNumExp + 1
	mantLo     = 100000 // 10^(NumDigits-1)
	perExp     = 9 * mantLo
	numHuge    = 2 + numExps*perExp // the "huge" point; 1 is "tiny", 0 is zero
	maxNumKeys = 512                // keys of one decomposed comparison (a safety bound)
)

// decimalRE is the R4 decimal (and integer) lexical form.
var decimalRE = regexp.MustCompile(`^(-?)(0|[1-9][0-9]*)(?:\.([0-9]+))?(?:[eE]([+-]?[0-9]{1,4}))?$`)

// decimal is an exact decimal value I × 10^Scale; Scale is the power of
// ten of its last written digit, which gives its implicit precision.
type decimal struct {
	I     *big.Int
	Scale int
}

// parseDecimal parses a FHIR decimal; ok is false for anything else
// (and for more than 64 digits, which no measurement has).
func parseDecimal(s string) (decimal, bool) {
	m := decimalRE.FindStringSubmatch(s)
	if m == nil || len(m[2])+len(m[3]) > 64 {
		return decimal{}, false
	}
	exp := 0
	if m[4] != "" {
		e, err := strconv.Atoi(m[4])
		if err != nil {
			return decimal{}, false
		}
		exp = e
	}
	i, ok := new(big.Int).SetString(m[2]+m[3], 10)
	if !ok {
		return decimal{}, false
	}
	if m[1] == "-" {
		i.Neg(i)
	}
	return decimal{I: i, Scale: exp - len(m[3])}, true
}

// errOutOfRange says a comparison boundary lies outside the grid.
var errOutOfRange = fmt.Errorf("outside the searchable range (magnitudes 1e%d to 1e%d)", MinNumExp, MaxNumExp+1)

// gridPoint locates d on the grid: the index of d truncated toward zero,
// and whether d is exactly a grid point. boundary is true when d is a
// comparison's boundary: a magnitude outside the exponent range is then
// an error (it falls in the tiny or huge bucket, which cannot be split).
func gridPoint(d decimal, boundary bool) (idx int64, exact bool, err error) {
	if d.I.Sign() == 0 {
		return 0, true, nil
	}
	digits := new(big.Int).Abs(d.I).String()
	scale := d.Scale
	for len(digits) > 1 && digits[len(digits)-1] == '0' {
		digits, scale = digits[:len(digits)-1], scale+1
	}
	e := scale + len(digits) - 1
	var abs int64
	switch {
	case e < MinNumExp:
		if boundary {
			return 0, false, errOutOfRange
		}
		abs, exact = 1, false
	case e > MaxNumExp:
		if boundary {
			return 0, false, errOutOfRange
		}
		abs, exact = numHuge, false
	default:
		exact = len(digits) <= NumDigits
		mant := (digits + "000000")[:NumDigits]
		mv, _ := strconv.ParseInt(mant, 10, 64)
		abs = 2 + int64(e-MinNumExp)*perExp + (mv - mantLo)
	}
	if d.I.Sign() < 0 {
		return -abs, exact, nil
	}
	return abs, exact, nil
}

// gridFloor and gridCeil return the largest grid point <= d and the
// smallest >= d (d a boundary).
func gridFloor(d decimal) (int64, error) {
	i, exact, err := gridPoint(d, true)
	if err == nil && !exact && i < 0 {
		i-- // truncation toward zero went up
	}
	return i, err
}

func gridCeil(d decimal) (int64, error) {
	i, exact, err := gridPoint(d, true)
	if err == nil && !exact && i > 0 {
		i++
	}
	return i, err
}

// numKeys returns the index keys of the grid point idx.
func numKeys(idx int64) []string {
	if idx == 0 {
		return []string{"0"}
	}
	sign, a := "+", idx
	if idx < 0 {
		sign, a = "-", -idx
	}
	switch a {
	case 1:
		return []string{sign + "t"}
	case numHuge:
		return []string{sign + "h"}
	}
	e := (a-2)/perExp + MinNumExp
	mant := strconv.FormatInt((a-2)%perExp+mantLo, 10)
	dec := sign + "e" + strconv.FormatInt(e, 10)
	out := make([]string, 0, NumDigits+1)
	out = append(out, dec)
	for l := 1; l <= NumDigits; l++ {
		out = append(out, dec+":"+mant[:l])
	}
	return out
}

// decompose returns the fewest keys whose buckets are exactly the grid
// points lo..hi (inclusive); nil when the interval is empty.
func decompose(lo, hi int64) []string {
	lo, hi = max(lo, -numHuge), min(hi, numHuge)
	if lo > hi {
		return nil
	}
	var out []string
	if lo < 0 {
		// Negative values mirror positive ones: -x is in the bucket of x.
		out = append(out, decomposeAbs("-", max(1, -hi), -lo)...)
	}
	if lo <= 0 && hi >= 0 {
		out = append(out, "0")
	}
	if hi > 0 {
		out = append(out, decomposeAbs("+", max(1, lo), hi)...)
	}
	return out
}

// decomposeAbs covers the magnitudes a..b (1 <= a <= b <= numHuge).
func decomposeAbs(sign string, a, b int64) []string {
	var out []string
	if a > b {
		return nil
	}
	if a == 1 {
		out = append(out, sign+"t")
		a = 2
	}
	if b == numHuge {
		out = append(out, sign+"h")
		b = numHuge - 1
	}
	for a <= b {
		e := (a-2)/perExp + MinNumExp
		first := 2 + (e-MinNumExp)*perExp
		last := first + perExp - 1
		dec := sign + "e" + strconv.FormatInt(e, 10)
		if a == first && last <= b {
			out = append(out, dec)
			a = last + 1
			continue
		}
		end := min(b, last)
		mant := a - first + mantLo
		size, l := int64(mantLo), 1
		for ; l < NumDigits; l, size = l+1, size/10 {
			if mant%size == 0 && a+size-1 <= end {
				break
			}
		}
		if l == NumDigits {
			size = 1
		}
		out = append(out, dec+":"+strconv.FormatInt(mant, 10)[:l])
		a += size
	}
	return out
}

// numberRange returns the grid interval a number comparison accepts and
// whether the predicate is negated (ne). v is the value without prefix.
func numberRange(op DateOp, v string) (lo, hi int64, negate bool, err error) {
	d, ok := parseDecimal(v)
	if !ok {
		return 0, 0, false, errNotNumber
	}
	if len(new(big.Int).Abs(d.I).String()) > NumDigits {
		return 0, 0, false, errTooPrecise
	}
	switch op {
	case OpEq, OpNe:
		// [v - half, v + half): the implicit precision of v.
		x := new(big.Int).Mul(d.I, big.NewInt(10))
		l := decimal{new(big.Int).Sub(x, big.NewInt(5)), d.Scale - 1}
		h := decimal{new(big.Int).Add(x, big.NewInt(5)), d.Scale - 1}
		if lo, err = gridCeil(l); err != nil {
			return
		}
		if hi, err = gridCeil(h); err != nil {
			return
		}
		return lo, hi - 1, op == OpNe, nil
	case OpAp:
		// v ± max(|v|/10, half a unit of its precision), at scale-1.
		x := new(big.Int).Mul(d.I, big.NewInt(10))
		w := new(big.Int).Abs(d.I)
		if w.Cmp(big.NewInt(5)) < 0 {
			w = big.NewInt(5)
		}
		if lo, err = gridFloor(decimal{new(big.Int).Sub(x, w), d.Scale - 1}); err != nil {
			return
		}
		hi, err = gridCeil(decimal{new(big.Int).Add(x, w), d.Scale - 1})
		return lo, hi, false, err
	}
	f, err := gridFloor(d)
	if err != nil {
		return
	}
	c, err := gridCeil(d)
	if err != nil {
		return
	}
	switch op {
	case OpGt, OpSa:
		return f + 1, numHuge, false, nil
	case OpGe:
		return c, numHuge, false, nil
	case OpLt, OpEb:
		return -numHuge, c - 1, false, nil
	case OpLe:
		return -numHuge, f, false, nil
	}
	return 0, 0, false, errNotNumber
}

var (
	errNotNumber  = fmt.Errorf("not a number")
	errTooPrecise = fmt.Errorf("more precise than the index")
)

// numberKeys returns the keys that answer one number comparison (the
// value with its prefix); an empty interval yields a key no value has.
func numberKeys(name, v string) (keys []string, negate bool, err error) {
	op, rest, err := datePrefix(name, v)
	if err != nil {
		return nil, false, err
	}
	lo, hi, negate, err := numberRange(op, rest)
	if err != nil {
		switch err {
		case errOutOfRange:
			return nil, false, fmt.Errorf("parsing search parameter %s: the number is %v: %w", name, errOutOfRange, ErrUnsupported)
		case errTooPrecise:
			return nil, false, fmt.Errorf("parsing search parameter %s: numbers are indexed to %d significant digits; give at most %d: %w", name, NumDigits, NumDigits, ErrUnsupported)
		}
		return nil, false, fmt.Errorf("parsing search parameter %s: not a number: %w", name, ErrInvalidValue)
	}
	keys = decompose(lo, hi)
	if len(keys) == 0 {
		keys = []string{"none"}
	}
	if len(keys) > maxNumKeys {
		return nil, false, fmt.Errorf("parsing search parameter %s: the range needs too many index keys: %w", name, ErrTooComplex)
	}
	return keys, negate, nil
}

// numberValueKeys returns the index keys of a stored decimal (a JSON
// number or its text); ok is false if it is not a decimal.
func numberValueKeys(v any) ([]string, bool) {
	var s string
	switch x := v.(type) {
	case fmt.Stringer: // json.Number
		s = x.String()
	case string:
		s = x
	default:
		return nil, false
	}
	d, ok := parseDecimal(strings.TrimSpace(s))
	if !ok {
		return nil, false
	}
	idx, _, _ := gridPoint(d, false)
	return numKeys(idx), true
}
