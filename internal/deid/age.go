package deid

import (
	"encoding/json"
	"math/big"
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
// greatest possible age is over 89. An unreadable birth date counts as
// over 89 (it is dropped either way). The export's time is used even
// for a deceased person: it is never earlier than the death, so the
// rule only errs towards removing more.
func (t *Transformer) over89(in map[string]any, elem string) bool {
	s, present := in[elem].(string)
	if !present {
		return false
	}
	b, ok := parseBirth(s)
	return !ok || b.maxAge(t.opts.Now) > oldestKeptAge
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

// capAge aggregates a Quantity, Age or Duration of 90 years or more (in
// any time unit) into "90 years or older": value 90, comparator ">=",
// unit "a". It applies to every such quantity, not only Age: an
// Observation of the patient's age is a Quantity in years, and a
// duration that long reveals an age over 89 as well.
func (w *walk) capAge(q map[string]any) {
	num, ok := q["value"].(json.Number)
	if !ok {
		return
	}
	unit, _ := q["code"].(string)
	if unit == "" {
		unit, _ = q["unit"].(string)
	}
	limit, ok := ageUnitLimit(unit)
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
	q["value"] = json.Number("90")
	q["comparator"] = ">="
	q["unit"] = "a"
	if _, ok := q["system"]; ok || q["code"] != nil {
		q["system"] = "http://unitsofmeasure.org"
		q["code"] = "a"
	}
}
