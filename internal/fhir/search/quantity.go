package search

import (
	"fmt"
	"strconv"
	"strings"
)

// Quantity search. A Quantity's value is indexed on the number grid
// (number.go) in three key families, so that the three forms of a query
// find it:
//
//	value                 every quantity, whatever its unit ("v|")
//	value||code           the unit code, or the unit text, in any system
//	value|system|code     the system and code; for UCUM, after conversion
//
// UCUM (http://unitsofmeasure.org) codes are converted to a canonical
// unit when the conversion is a power of ten, which the grid does
// exactly (it only moves the decimal exponent): a metric prefix on g, L
// (l), m, mol, eq, s, U, Pa, Hz, and quotients of two such units. mg/dL
// is indexed as g/L (× 10^-2), so value-quantity=lt0.8|http://unitsofmeasure.org|g/L
// finds 70 mg/dL. Nothing else is converted: not between molar and mass
// units (mmol/L vs mg/dL: needs a molar mass), not customary units
// ([lb_av], [in_i], [degF]), not time (min, h, d), not temperature (Cel,
// K), not annotations ({cells}), powers (m2) or 10*3 factors: those
// match only the identical code. The ||code and value forms never
// convert. A Quantity's comparator (<, >=) is ignored: its value is
// indexed as a point, as HAPI FHIR does.

// ucumSystem is the UCUM code system.
const ucumSystem = "http://unitsofmeasure.org"

// quantity families of keys.
func qAnyKey(k string) string        { return "v|" + k }
func qCodeKey(code, k string) string { return "c" + strconv.Itoa(len(code)) + "|" + code + "|" + k }
func qSystemKey(system, code, k string) string {
	return "s" + strconv.Itoa(len(system)) + "|" + system + "|" + strconv.Itoa(len(code)) + "|" + code + "|" + k
}

// ucumPrefixes are UCUM's metric prefixes and their powers of ten.
var ucumPrefixes = map[string]int{
	"Y": 24, "Z": 21, "E": 18, "P": 15, "T": 12, "G": 9, "M": 6, "k": 3, "h": 2, "da": 1,
	"": 0, "d": -1, "c": -2, "m": -3, "u": -6, "n": -9, "p": -12, "f": -15, "a": -18, "z": -21, "y": -24,
}

// ucumBases are the metric UCUM units phivault converts between
// prefixes of (l is UCUM's alternative spelling of L).
var ucumBases = map[string]string{"g": "g", "L": "L", "l": "L", "m": "m", "mol": "mol", "eq": "eq", "s": "s", "U": "U", "Pa": "Pa", "Hz": "Hz"}

// ucumAtom splits a prefixed metric unit ("mg") into its base ("g") and
// power of ten (-3).
func ucumAtom(u string) (string, int, bool) {
	for base, canon := range ucumBases {
		if p, ok := strings.CutSuffix(u, base); ok {
			if e, ok := ucumPrefixes[p]; ok {
				return canon, e, true
			}
		}
	}
	return "", 0, false
}

// ucumCanonical returns the canonical unit of a UCUM code and the power
// of ten that converts a value in code to it; code itself and 0 when
// phivault does not convert it.
func ucumCanonical(code string) (string, int) {
	num, den, quotient := strings.Cut(code, "/")
	if strings.Contains(den, "/") {
		return code, 0
	}
	nb, ne, ok := ucumAtom(num)
	if !ok {
		return code, 0
	}
	if !quotient {
		return nb, ne
	}
	db, de, ok := ucumAtom(den)
	if !ok {
		return code, 0
	}
	return nb + "/" + db, ne - de
}

// shift multiplies d by 10^e exactly.
func (d decimal) shift(e int) decimal { return decimal{I: d.I, Scale: d.Scale + e} }

// quantityValueKeys returns the index keys of a Quantity (a JSON
// object); none for a Quantity without a decimal value.
func quantityValueKeys(m map[string]any) []string {
	d, ok := jsonDecimal(m["value"])
	if !ok {
		return nil
	}
	idx, _, _ := gridPoint(d, false)
	base := numKeys(idx)
	var out []string
	for _, k := range base {
		out = append(out, qAnyKey(k))
	}
	code, _ := m["code"].(string)
	unit, _ := m["unit"].(string)
	system, _ := m["system"].(string)
	for i, c := range []string{code, unit} {
		if c == "" || (i == 1 && c == code) {
			continue
		}
		for _, k := range base {
			out = append(out, qCodeKey(c, k))
		}
	}
	if system != "" && code != "" {
		canon, e, sk := code, 0, base
		if system == ucumSystem {
			if canon, e = ucumCanonical(code); e != 0 {
				ci, _, _ := gridPoint(d.shift(e), false)
				sk = numKeys(ci)
			}
		}
		for _, k := range sk {
			out = append(out, qSystemKey(system, canon, k))
		}
	}
	return out
}

// jsonDecimal reads a decimal element (json.Number, as fhir.Decode
// leaves numbers).
func jsonDecimal(v any) (decimal, bool) {
	s, ok := v.(fmt.Stringer)
	if !ok {
		return decimal{}, false
	}
	return parseDecimal(s.String())
}

// quantityKeys returns the keys that answer one quantity search value
// ([prefix]number[|system|code]) and whether the predicate is negated.
func quantityKeys(name, v string) ([]string, bool, error) {
	parts := splitEscaped(v, '|')
	switch len(parts) {
	case 1, 3:
	default:
		return nil, false, fmt.Errorf("parsing search parameter %s: want [prefix]number, [prefix]number|system|code or [prefix]number||code: %w", name, ErrInvalidValue)
	}
	num := unescape(parts[0])
	var system, code string
	if len(parts) == 3 {
		system, code = unescape(parts[1]), unescape(parts[2])
		if code == "" {
			return nil, false, fmt.Errorf("parsing search parameter %s: a unit system without a code is not supported: %w", name, ErrUnsupported)
		}
	}
	wrap := func(keys []string, f func(string) string) []string {
		for i, k := range keys {
			keys[i] = f(k)
		}
		return keys
	}
	switch {
	case code == "":
		keys, neg, err := numberKeys(name, num)
		return wrap(keys, qAnyKey), neg, err
	case system == "":
		keys, neg, err := numberKeys(name, num)
		return wrap(keys, func(k string) string { return qCodeKey(code, k) }), neg, err
	}
	canon, e := code, 0
	if system == ucumSystem {
		canon, e = ucumCanonical(code)
	}
	if e != 0 {
		// Convert the number (and its implicit precision) to the
		// canonical unit: moving the exponent keeps every digit.
		op, rest, err := datePrefix(name, num)
		if err != nil {
			return nil, false, err
		}
		d, ok := parseDecimal(rest)
		if !ok {
			return nil, false, fmt.Errorf("parsing search parameter %s: not a number: %w", name, ErrInvalidValue)
		}
		num = string(op) + decimalString(d.shift(e))
	}
	keys, neg, err := numberKeys(name, num)
	return wrap(keys, func(k string) string { return qSystemKey(system, canon, k) }), neg, err
}

// decimalString writes d in FHIR decimal form with its precision
// (I and an exponent).
func decimalString(d decimal) string {
	return d.I.String() + "e" + strconv.Itoa(d.Scale)
}
