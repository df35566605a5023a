package deid

import (
	"encoding/json"
	"math/big"
	"strings"
)

// Ages over 89 (§164.514(b)(2)(i)(C)): "all ages over 89 and all
// elements of dates (including year) indicative of such age, except
// that such ages and elements may be aggregated into a single category
// of age 90 or older".
const (
	// oldestKeptAge is the greatest age kept as it is.
	oldestKeptAge = 89
	// Over90URL is the extension phivault puts on a Patient (or
	// RelatedPerson, Person, Practitioner, FamilyMemberHistory) whose
	// birth date was removed because the person is 90 or older
	// (valueBoolean true): the "90 or older" category of the rule. The
	// birth date is absent and its _birthDate (_bornDate) carries a
	// data-absent-reason "masked".
	Over90URL = "https://phivault.dev/fhir/StructureDefinition/deid-age-90-or-older"
	// dataAbsentReasonURL is the core extension that says why a value
	// is absent.
	dataAbsentReasonURL = "http://hl7.org/fhir/StructureDefinition/data-absent-reason"
)

// birthElement names the element holding the birth date of the person
// a resource describes: the patient, and also their relatives and
// household (RelatedPerson, Person, FamilyMemberHistory), to whom the
// rule applies as well, and practitioners, to be conservative. "" for
// other types.
func birthElement(rt string) string {
	switch rt {
	case "Patient", "RelatedPerson", "Person", "Practitioner":
		return "birthDate"
	case "FamilyMemberHistory":
		return "bornDate"
	}
	return ""
}

// over89 reports whether the person of resource in (birth date in
// element elem) is 90 or older at the export's time: the birth date's
// greatest possible age is over 89, or its year is one that indicates
// an age over 89 (over89Year: someone born late in that year is still
// 89, but the year is removed all the same, so the person goes into
// the one category the rule allows). An unreadable birth date counts as
// over 89 (it is dropped either way). The export's time is used even
// for a deceased person: it is never earlier than the death, so the
// rule only errs towards removing more.
func (t *Transformer) over89(in map[string]any, elem string) bool {
	s, present := in[elem].(string)
	if !present {
		return false
	}
	b, ok := parseBirth(s)
	return !ok || b.maxAge(t.opts.Now) > oldestKeptAge || t.over89Year(s[:4])
}

// markOver89 puts the "90 or older" category on a de-identified
// resource whose birth date element elem was removed.
func markOver89(r map[string]any, elem string) {
	ext, _ := r["extension"].([]any)
	r["extension"] = append(ext, map[string]any{"url": Over90URL, "valueBoolean": true})
	r["_"+elem] = map[string]any{"extension": []any{
		map[string]any{"url": dataAbsentReasonURL, "valueCode": "masked"},
	}}
}

// ageUnitLimit returns, for a UCUM (or spelled-out) time unit, the
// number of that unit that makes 90 years (UCUM: a = 365.25 d, mo = a/12,
// wk = 7 d).
func ageUnitLimit(unit string) (*big.Rat, bool) {
	switch unit {
	case "a", "yr", "year", "years", "y":
		return big.NewRat(90, 1), true
	case "mo", "month", "months":
		return big.NewRat(90*12, 1), true
	case "wk", "week", "weeks":
		return big.NewRat(4696, 1), true // 90 a = 4696.07 wk; rounded down, so the rule errs towards capping
	case "d", "day", "days":
		return big.NewRat(32872, 1), true // 90 a = 32872.5 d, rounded down
	}
	return nil, false
}

// quantity applies the rules of a Quantity (Age, Duration, Count,
// Distance) whose other elements the walk has kept in out (in is the
// input): system and code stay only when they are a UCUM code of UCUM
// syntax; unit, a free string, stays only when it is the same as the
// kept code; then an age of 90 years or more is aggregated (capAge).
func (w *walk) quantity(in, out map[string]any) {
	sys, _ := out["system"].(string)
	code, hasCode := out["code"].(string)
	if hasCode && (sys != ucumSystem || !w.t.terms.standard(sys, code)) {
		w.count(reasonUnitLocal)
		delete(out, "code")
		delete(out, "system")
		code = ""
	} else if !hasCode {
		delete(out, "system")
	}
	if u, ok := in["unit"].(string); ok {
		if code != "" && u == code {
			out["unit"] = u
		} else {
			w.count(reasonUnitText)
		}
	}
	w.capAge(in, out)
}

// ucumSystem is the system of UCUM units.
const ucumSystem = "http://unitsofmeasure.org"

// capAge aggregates a Quantity, Age or Duration of 90 years or more (in
// any time unit) into "90 years or older": value 90, comparator ">=",
// unit "a". It applies to every such quantity, not only Age: an
// Observation of the patient's age is a Quantity in years, and a
// duration that long reveals an age over 89 as well. The unit is read
// from the input (in), so a unit written as text ("years") counts even
// though the text itself is not kept.
func (w *walk) capAge(in, q map[string]any) {
	num, ok := q["value"].(json.Number)
	if !ok {
		return
	}
	unit, _ := in["code"].(string)
	if _, ok := ageUnitLimit(unit); !ok {
		unit, _ = in["unit"].(string)
	}
	limit, ok := ageUnitLimit(strings.ToLower(strings.TrimSpace(unit)))
	if !ok {
		return
	}
	v, ok := new(big.Rat).SetString(string(num))
	if !ok || v.Cmp(limit) < 0 {
		// Below 90 years: kept. (A value of exactly 89.x years is an
		// age of 89, which the rule keeps.)
		return
	}
	w.count(reasonAge90)
	setAge90(q)
}

// setAge90 writes the "90 years or older" category into quantity q.
func setAge90(q map[string]any) {
	q["value"] = json.Number("90")
	q["comparator"] = ">="
	q["unit"] = "a"
	q["system"] = ucumSystem
	q["code"] = "a"
}

// ageCodes are the codes of an observation (or component) whose value
// is the age of a person: LOINC 30525-0 Age, 21612-7 Age - Reported,
// 29553-5 Age calculated, 21611-9 Age - Estimated, 63900-5 Current age
// or age at death, 39016-1 Age at death; SNOMED CT 397659008 Age,
// 424144002 Current chronological age.
var ageCodes = map[string]bool{
	"http://loinc.org|30525-0": true, "http://loinc.org|21612-7": true, "http://loinc.org|29553-5": true,
	"http://loinc.org|21611-9": true, "http://loinc.org|63900-5": true, "http://loinc.org|39016-1": true,
	"http://snomed.info/sct|397659008": true, "http://snomed.info/sct|424144002": true,
}

// ageAnswer aggregates the value of an Observation or component coded
// as an age (ageCodes) when it is 90 or more: a valueInteger becomes
// the valueQuantity ">= 90 a" (an integer cannot say "or older"), and a
// valueQuantity of no time unit is read as years and capped. A bare
// integer without such a code (a questionnaire answer, whose question
// text is removed) cannot be told from any other number: see the
// residual risks in docs/deidentification.md.
func (w *walk) ageAnswer(in, out map[string]any) {
	if !isAgeConcept(in["code"]) {
		return
	}
	if n, ok := out["valueInteger"].(json.Number); ok {
		if v, ok := new(big.Rat).SetString(string(n)); !ok || v.Cmp(big.NewRat(90, 1)) >= 0 {
			delete(out, "valueInteger")
			q := map[string]any{}
			setAge90(q)
			out["valueQuantity"] = q
			w.count(reasonAgeAnswer)
		}
	}
	if q, ok := out["valueQuantity"].(map[string]any); ok {
		iq, _ := in["valueQuantity"].(map[string]any)
		code, _ := iq["code"].(string)
		unit, _ := iq["unit"].(string)
		if _, timeUnit := ageUnitLimit(code); timeUnit {
			return // capped already by capAge if 90 or more
		}
		if _, timeUnit := ageUnitLimit(strings.ToLower(strings.TrimSpace(unit))); timeUnit {
			return
		}
		if n, ok := q["value"].(json.Number); ok {
			if v, ok := new(big.Rat).SetString(string(n)); !ok || v.Cmp(big.NewRat(90, 1)) >= 0 {
				setAge90(q)
				w.count(reasonAgeAnswer)
			}
		}
	}
}

// isAgeConcept reports whether a CodeableConcept (input) has a coding
// of ageCodes.
func isAgeConcept(v any) bool {
	cc, _ := v.(map[string]any)
	codings, _ := cc["coding"].([]any)
	for _, c := range codings {
		m, _ := c.(map[string]any)
		sys, _ := m["system"].(string)
		code, _ := m["code"].(string)
		if ageCodes[sys+"|"+code] {
			return true
		}
	}
	return false
}
