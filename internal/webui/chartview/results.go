package chartview

import "strings"

// Results in plain words, for the patient: the usual range a result is
// compared with (the Observation's referenceRange, as the lab sent it)
// and what its flag means (its interpretation, HL7 v3
// ObservationInterpretation: H, L, A, …). When the lab sent a range
// but no flag, a number outside the range is flagged here, in the same
// unit only. Nothing is invented: no range and no flag, no words.

// interpretationWords says the common interpretation codes.
var interpretationWords = map[string]string{
	"H":   "high: above the usual range",
	"HH":  "very high: well above the usual range",
	"HU":  "very high: well above the usual range",
	"L":   "low: below the usual range",
	"LL":  "very low: well below the usual range",
	"LU":  "very low: well below the usual range",
	"N":   "normal: within the usual range",
	"A":   "outside the usual range",
	"AA":  "far outside the usual range",
	"POS": "positive: the test found what it looks for",
	"NEG": "negative: the test did not find what it looks for",
	"DET": "detected",
	"ND":  "not detected",
}

// Explained is a result's explanation: the usual range and the flag in
// words, each "" when the lab sent none.
type Explained struct {
	Range string // "usual range 70 to 99 mg/dL"
	Flag  string // "high: above the usual range"
	// Alert says the flag is not normal (the page marks it).
	Alert bool
}

// String is the explanation in one sentence, or "".
func (e Explained) String() string {
	var parts []string
	if e.Flag != "" {
		parts = append(parts, "This result is "+e.Flag+".")
	}
	if e.Range != "" {
		r := strings.ToUpper(e.Range[:1]) + e.Range[1:]
		parts = append(parts, r+".")
	}
	if e.Alert {
		parts = append(parts, "Ask your care team what it means for you: a result outside the usual range is not always a problem.")
	}
	return strings.Join(parts, " ")
}

// ExplainResult explains an Observation for its patient.
func ExplainResult(o Obj) Explained {
	var e Explained
	var low, high Obj
	if rr := o.List("referenceRange"); len(rr) > 0 {
		low, high = rr[0].Obj("low"), rr[0].Obj("high")
		lo, hi := quantity(low), quantity(high)
		switch {
		case lo != "" && hi != "":
			e.Range = "usual range " + trimUnit(lo, hi) + " to " + hi
		case lo != "":
			e.Range = "usual range " + lo + " or more"
		case hi != "":
			e.Range = "usual range up to " + hi
		case rr[0].Str("text") != "":
			e.Range = "usual range " + rr[0].Str("text")
		}
	}
	code := ""
	if is := o.List("interpretation"); len(is) > 0 {
		for _, c := range is[0].List("coding") {
			if code = strings.ToUpper(c.Str("code")); code != "" {
				break
			}
		}
		if code == "" {
			if t := is[0].Str("text"); t != "" {
				e.Flag, e.Alert = strings.ToLower(t), true
				return e
			}
		}
	}
	if code == "" {
		code = flagFromRange(o.Obj("valueQuantity"), low, high)
	}
	if w, ok := interpretationWords[code]; ok {
		e.Flag = w
		e.Alert = code != "N" && code != "NEG" && code != "ND"
	}
	return e
}

// trimUnit drops lo's unit when hi has the same one ("70 to 99 mg/dL").
func trimUnit(lo, hi string) string {
	ln, lu, _ := strings.Cut(lo, " ")
	_, hu, _ := strings.Cut(hi, " ")
	if lu == hu {
		return ln
	}
	return lo
}

// flagFromRange compares a quantity with the range's bounds in the same
// unit: "H", "L", "N", or "" when it cannot tell.
func flagFromRange(v, low, high Obj) string {
	x, ok := Number(v["value"])
	if !ok || (low == nil && high == nil) {
		return ""
	}
	unit := func(q Obj) string {
		if u := q.Str("code"); u != "" {
			return u
		}
		return q.Str("unit")
	}
	if lo, ok := Number(low["value"]); ok && low != nil {
		if unit(low) != unit(v) {
			return ""
		}
		if x < lo {
			return "L"
		}
	}
	if hi, ok := Number(high["value"]); ok && high != nil {
		if unit(high) != unit(v) {
			return ""
		}
		if x > hi {
			return "H"
		}
	}
	return "N"
}
