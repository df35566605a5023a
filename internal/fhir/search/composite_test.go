package search

import (
	"net/url"
	"testing"

	"github.com/phivault/phivault/internal/fhir"
)

// compositeFixtures are Observations that stress the composites: several
// codings, a component with the resource's own code, codes without a
// system, units without a code, values without a number, and coded
// values.
var compositeFixtures = []string{
	// A panel: no value of its own, two components.
	`{"resourceType":"Observation","status":"final","code":{"coding":[{"system":"http://loinc.org","code":"85354-9"},{"code":"bp"}]},
	  "component":[{"code":{"coding":[{"system":"http://loinc.org","code":"8480-6"}]},"valueQuantity":{"value":120,"unit":"mmHg","system":"http://unitsofmeasure.org","code":"mm[Hg]"}},
	               {"code":{"coding":[{"system":"http://loinc.org","code":"8462-4"}]},"valueQuantity":{"value":80,"unit":"mmHg","system":"http://unitsofmeasure.org","code":"mm[Hg]"}}]}`,
	// A value of its own and a component with the same code and another value.
	`{"resourceType":"Observation","status":"final","code":{"coding":[{"system":"http://loinc.org","code":"2339-0"},{"system":"http://snomed.info/sct","code":"33747003"}]},
	  "valueQuantity":{"value":95,"unit":"mg/dL","system":"http://unitsofmeasure.org","code":"mg/dL"},
	  "component":[{"code":{"coding":[{"system":"http://loinc.org","code":"2339-0"}]},"valueQuantity":{"value":200,"unit":"mg/dL","system":"http://unitsofmeasure.org","code":"mg/dL"}},
	               {"code":{"coding":[{"system":"http://loinc.org","code":"8480-6"}]},"valueQuantity":{"value":95,"unit":"mmHg"}}]}`,
	// A code without a system, a unit without a code.
	`{"resourceType":"Observation","status":"final","code":{"coding":[{"code":"2339-0"}]},"valueQuantity":{"value":80,"unit":"mmHg"}}`,
	// An empty system (|code), a value with a comparator and no unit.
	`{"resourceType":"Observation","status":"final","code":{"coding":[{"system":"","code":"8480-6"}]},"valueQuantity":{"value":120,"comparator":"<"}}`,
	// A coded value and a coded component.
	`{"resourceType":"Observation","status":"final","code":{"coding":[{"system":"http://loinc.org","code":"72166-2"}]},
	  "valueCodeableConcept":{"coding":[{"system":"http://snomed.info/sct","code":"8517006"},{"code":"former"}]},
	  "component":[{"code":{"coding":[{"system":"http://loinc.org","code":"8480-6"}]},"valueCodeableConcept":{"coding":[{"system":"http://snomed.info/sct","code":"8517006"}]}}]}`,
	// No coding on the code: no pair.
	`{"resourceType":"Observation","status":"final","code":{"text":"glucose"},"valueQuantity":{"value":95,"unit":"mg/dL","system":"http://unitsofmeasure.org","code":"mg/dL"}}`,
	// A quantity without a number: no pair.
	`{"resourceType":"Observation","status":"final","code":{"coding":[{"system":"http://loinc.org","code":"2339-0"}]},"valueQuantity":{"unit":"mg/dL"}}`,
	// A string value, components only with quantities.
	`{"resourceType":"Observation","status":"final","code":{"coding":[{"system":"http://loinc.org","code":"2339-0"}]},"valueString":"95",
	  "component":[{"code":{"coding":[{"system":"http://loinc.org","code":"2339-0"},{"code":"glu"}]},"valueQuantity":{"value":0.95,"unit":"g/L","system":"http://unitsofmeasure.org","code":"g/L"}}]}`,
}

var (
	compositeCodes = []string{
		"http://loinc.org|2339-0", "2339-0", "|2339-0", "http://snomed.info/sct|33747003", "http://loinc.org|8480-6", "8480-6", "|8480-6",
		"http://loinc.org|8462-4", "http://loinc.org|85354-9", "bp", "|bp", "http://loinc.org|72166-2", "glu", "http://loinc.org|9999-9",
	}
	compositeQuantities = []string{
		"95", "80", "120", "200", "gt94", "lt96", "ge120", "le80", "gt100", "lt100", "ap100", "eq95", "sa90", "eb100", "lt0",
		"95||mg/dL", "80||mmHg", "120||mm[Hg]", "0.95|http://unitsofmeasure.org|g/L", "200|http://unitsofmeasure.org|mg/dL",
		"lt1|http://unitsofmeasure.org|g/L", "95|http://unitsofmeasure.org|mg/dL", "80|http://unitsofmeasure.org|mm[Hg]",
	}
	compositeConcepts = []string{
		"http://snomed.info/sct|8517006", "8517006", "|8517006", "former", "|former", "http://snomed.info/sct|former", "x",
	}
)

// pairKeys returns the keys the composite p was indexed with before ADR
// 0042: one per (code key, value key) of each repetition, of each part
// for a combo (the keys do not depend on the parameter).
func pairKeys(t *testing.T, p *Param, res fhir.Resource) map[string]bool {
	t.Helper()
	parts := p.Union()
	if parts == nil {
		parts = []*Param{p}
	}
	out := map[string]bool{}
	for _, u := range parts {
		n := 0
		for _, it := range evaluate(u.expr, res) {
			vs, err := u.compositeValues(nil, Value{Param: u.Code, Type: Composite}, it, &n)
			if err != nil {
				t.Fatal(err)
			}
			for _, v := range vs {
				for _, tm := range v.terms {
					out[tm.Key] = true
				}
			}
		}
	}
	return out
}

// pairMatch answers p=value the way it was answered before ADR 0042: a
// pair key of one alternative among the resource's pair keys.
func pairMatch(t *testing.T, p *Param, keys map[string]bool, value string) bool {
	t.Helper()
	for _, a := range splitEscaped(value, ',') {
		code, vals, err := compositeQueryKeys(p, p.Code, a)
		if err != nil {
			t.Fatalf("%s=%s: %v", p.Code, value, err)
		}
		for _, v := range vals {
			if keys[compositeKey(code, v)] {
				return true
			}
		}
	}
	return false
}

// TestDerivedCompositesAnswerAsPairKeys checks that the composites with
// no rows of their own (code-value-quantity, code-value-concept,
// combo-code-value-quantity) answer every query of codes × values, single
// and as two alternatives, and :missing, exactly as their pair keys did.
func TestDerivedCompositesAnswerAsPairKeys(t *testing.T) {
	r := testRegistry(t)
	params := map[string][]string{
		"code-value-quantity":       compositeQuantities,
		"combo-code-value-quantity": compositeQuantities,
		"code-value-concept":        compositeConcepts,
	}
	checked, hits := 0, 0
	for i, body := range compositeFixtures {
		res := decode(t, body)
		for code, values := range params {
			p, ok := r.Lookup("Observation", code)
			if !ok || p.indexed() {
				t.Fatalf("%s is not a derived composite", code)
			}
			keys := pairKeys(t, p, res)
			var queries []string
			for _, c := range compositeCodes {
				for _, v := range values {
					queries = append(queries, c+"$"+v)
				}
			}
			for j := 0; j+7 < len(queries); j += 7 {
				queries = append(queries, queries[j]+","+queries[j+7])
			}
			for _, q := range queries {
				want := pairMatch(t, p, keys, q)
				got := matches(t, "Observation", body, url.Values{code: {q}}.Encode())
				if got != want {
					t.Errorf("fixture %d, %s=%s: match %v, pair keys say %v", i, code, q, got, want)
				}
				checked++
				if want {
					hits++
				}
			}
			for _, missing := range []bool{true, false} {
				want := (len(keys) == 0) == missing
				q := url.Values{code + ":missing": {map[bool]string{true: "true", false: "false"}[missing]}}.Encode()
				if got := matches(t, "Observation", body, q); got != want {
					t.Errorf("fixture %d, %s: match %v, pair keys say %v", i, q, got, want)
				}
			}
		}
	}
	// The fixtures and queries must exercise both answers.
	if hits < 50 || checked-hits < 50 {
		t.Errorf("%d queries, %d matches: not a meaningful comparison", checked, hits)
	}
}

// TestDerivedCompositesHaveNoRows checks that the three derived
// composites add no index rows while the composite over components
// keeps its own.
func TestDerivedCompositesHaveNoRows(t *testing.T) {
	r := testRegistry(t)
	vals, err := r.Extract(decode(t, compositeFixtures[1]))
	if err != nil {
		t.Fatal(err)
	}
	cols := map[string]int{}
	for _, tm := range Terms(vals) {
		cols[tm.Param]++
	}
	for _, c := range []string{"code-value-quantity", "code-value-concept", "combo-code-value-quantity"} {
		if cols[c] != 0 {
			t.Errorf("%s has %d rows", c, cols[c])
		}
	}
	if cols["component-code-value-quantity"] == 0 || cols["code"] == 0 || cols["value-quantity"] == 0 {
		t.Errorf("rows by column %v: the parts that answer the composites are missing", cols)
	}
}
