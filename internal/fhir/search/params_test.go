package search

import (
	"errors"
	"net/url"
	"strings"
	"testing"

	"github.com/phivault/phivault/internal/fhir"
)

// matches evaluates a parsed query against one resource's index terms
// the way the store does for key terms: each predicate needs one of its
// terms among the resource's (none, when negated), :missing needs no
// term in the parameter's column; all predicates must hold.
func matches(t *testing.T, typ, body, query string) bool {
	t.Helper()
	r := testRegistry(t)
	vals, err := r.Extract(decode(t, body))
	if err != nil {
		t.Fatal(err)
	}
	index := map[Term]bool{}
	cols := map[string]bool{}
	for _, term := range Terms(vals) {
		index[term] = true
		cols[term.Param] = true
	}
	qv, err := url.ParseQuery(query)
	if err != nil {
		t.Fatal(err)
	}
	q, err := r.ParseQuery(typ, qv, false)
	if err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	for _, p := range q.Preds {
		if p.Missing != nil {
			if hasValue(p.Param, cols) == !*p.Missing {
				continue
			}
			return false
		}
		if hit := predHit(p, index); hit == p.Negate {
			return false
		}
	}
	return true
}

// hasValue reports whether a resource with index columns cols has a
// value of p, as the store answers :missing: a composite over the
// resource itself when both its parameters have rows, a combo when one
// of its parts has.
func hasValue(p *Param, cols map[string]bool) bool {
	if a, b, ok := p.Pair(); ok {
		return cols[a.Code] && cols[b.Code]
	}
	if u := p.Union(); u != nil {
		return hasValue(u[0], cols) || hasValue(u[1], cols)
	}
	return cols[p.Code]
}

// predHit reports whether one of p's terms, or both sides of one of its
// pairs, are in index.
func predHit(p Pred, index map[Term]bool) bool {
	found := func(ts []Term) bool {
		for _, t := range ts {
			if index[t] {
				return true
			}
		}
		return false
	}
	if found(p.Terms) {
		return true
	}
	for _, pr := range p.Pairs {
		if found(pr.First) && found(pr.Second) {
			return true
		}
	}
	return false
}

func TestQuantitySearch(t *testing.T) {
	obs := `{"resourceType":"Observation","status":"final","code":{"coding":[{"system":"http://loinc.org","code":"2339-0","display":"Glucose [Mass/volume] in Blood"}],"text":"Glucose"},
		"valueQuantity":{"value":95.0,"unit":"mg/dL","system":"http://unitsofmeasure.org","code":"mg/dL"},
		"component":[{"code":{"coding":[{"system":"http://loinc.org","code":"8480-6"}]},"valueQuantity":{"value":120,"unit":"mmHg","system":"http://unitsofmeasure.org","code":"mm[Hg]"}},
		             {"code":{"coding":[{"system":"http://loinc.org","code":"8462-4"}]},"valueQuantity":{"value":80,"unit":"mmHg","system":"http://unitsofmeasure.org","code":"mm[Hg]"}}]}`
	for q, want := range map[string]bool{
		"value-quantity=95":                                               true,
		"value-quantity=95.0":                                             true,
		"value-quantity=95.1":                                             false,
		"value-quantity=9.5e1":                                            true,
		"value-quantity=ne95":                                             false,
		"value-quantity=ne96":                                             true,
		"value-quantity=gt94.99":                                          true,
		"value-quantity=gt95":                                             false,
		"value-quantity=ge95":                                             true,
		"value-quantity=lt95":                                             false,
		"value-quantity=le95":                                             true,
		"value-quantity=sa90":                                             true,
		"value-quantity=eb90":                                             false,
		"value-quantity=ap100":                                            true,
		"value-quantity=ap110":                                            false,
		"value-quantity=lt100,gt200":                                      true,
		"value-quantity=gt100,lt20":                                       false,
		"value-quantity=95||mg/dL":                                        true,
		"value-quantity=95||mg":                                           false,
		"value-quantity=95|http://unitsofmeasure.org|mg/dL":               true,
		"value-quantity=0.95|http://unitsofmeasure.org|g/L":               true,
		"value-quantity=lt1|http://unitsofmeasure.org|g/L":                true,
		"value-quantity=gt1|http://unitsofmeasure.org|g/L":                false,
		"value-quantity=950|http://unitsofmeasure.org|mg/L":               true,
		"value-quantity=950|http://unitsofmeasure.org|ug/mL":              true, // µg/mL = mg/L
		"value-quantity=95|http://unitsofmeasure.org|mmol/L":              false,
		"value-quantity=95|http://example.org/units|mg/dL":                false,
		"value-quantity:missing=false":                                    true,
		"component-value-quantity=80":                                     true,
		"component-value-quantity=gt119|http://unitsofmeasure.org|mm[Hg]": true,
		"component-value-quantity=gt120":                                  false,
		"code-value-quantity=http://loinc.org|2339-0$lt100":               true,
		"code-value-quantity=2339-0$gt100":                                false,
		"code-value-quantity=http://loinc.org|2339-0$95||mg/dL":           true,
		"code-value-quantity=http://loinc.org|8480-6$95":                  false,
		// Pairing within one component: 8480-6 is 120, 8462-4 is 80.
		"component-code-value-quantity=http://loinc.org|8480-6$120": true,
		"component-code-value-quantity=http://loinc.org|8480-6$80":  false,
		"component-code-value-quantity=http://loinc.org|8462-4$80":  true,
		"component-code-value-quantity=8462-4$gt100":                false,
		"combo-code-value-quantity=8462-4$80":                       true,
		"combo-code-value-quantity=2339-0$95":                       true,
		"combo-code-value-quantity=2339-0$80":                       false,
	} {
		if got := matches(t, "Observation", obs, q); got != want {
			t.Errorf("%s: match %v, want %v", q, got, want)
		}
	}
}

func TestNumberParam(t *testing.T) {
	ra := `{"resourceType":"RiskAssessment","status":"final","subject":{"reference":"Patient/p"},"prediction":[{"probabilityDecimal":0.025},{"probabilityRange":{"low":{"value":0.5}}}]}`
	for q, want := range map[string]bool{
		"probability=0.025":   true,
		"probability=0.02":    false, // [0.015, 0.025)
		"probability=0.03":    true,  // [0.025, 0.035)
		"probability=gt0.02":  true,
		"probability=gt0.5":   false,
		"probability=lt0":     false,
		"probability=ge-1":    true,
		"probability=ap0.024": true,
	} {
		if got := matches(t, "RiskAssessment", ra, q); got != want {
			t.Errorf("%s: match %v, want %v", q, got, want)
		}
	}
}

func TestURISearch(t *testing.T) {
	vs := `{"resourceType":"ValueSet","status":"active","url":"http://acme.org/fhir/ValueSet/blood-glucose","version":"1.0.0","name":"BloodGlucose",
		"meta":{"profile":["http://hl7.org/fhir/StructureDefinition/shareablevalueset"],"source":"http://acme.org/feed#x","tag":[{"system":"http://acme.org/tags","code":"lab"}],"security":[{"system":"http://terminology.hl7.org/CodeSystem/v3-Confidentiality","code":"N"}]},
		"compose":{"include":[{"system":"http://loinc.org","concept":[{"code":"2339-0"}]}]}}`
	for q, want := range map[string]bool{
		"url=http://acme.org/fhir/ValueSet/blood-glucose":          true,
		"url=http://acme.org/fhir/ValueSet/Blood-glucose":          false,
		"url=http://acme.org/fhir/ValueSet":                        false,
		"url:below=http://acme.org/fhir":                           true,
		"url:below=http://acme.org/fhir/":                          true,
		"url:below=http://acme.org/fh":                             false,
		"url:below=http://acme.org":                                true,
		"url:above=http://acme.org/fhir/ValueSet/blood-glucose/v2": true,
		"url:above=http://acme.org/fhir/ValueSet/other":            false,
		"version=1.0.0":              true,
		"name=blood":                 true,
		"status=active":              true,
		"reference=http://loinc.org": true,
		"code=2339-0":                true,
		"_profile=http://hl7.org/fhir/StructureDefinition/shareablevalueset": true,
		"_profile:below=http://hl7.org/fhir":                                 true,
		"_source=http://acme.org/feed#x":                                     true,
		"_tag=http://acme.org/tags|lab":                                      true,
		"_tag=lab":                                                           true,
		"_tag=http://acme.org/tags|":                                         true,
		"_tag:not=lab":                                                       false,
		"_security=N":                                                        true,
		"_security=R":                                                        false,
		"_tag:missing=true":                                                  false,
	} {
		if got := matches(t, "ValueSet", vs, q); got != want {
			t.Errorf("%s: match %v, want %v", q, got, want)
		}
	}
}

func TestTokenModifiers(t *testing.T) {
	obs := `{"resourceType":"Observation","status":"final","code":{"coding":[{"system":"http://loinc.org","code":"2339-0","display":"Glucose [Mass/volume] in Blood"}],"text":"Blood sugar"},
		"identifier":[{"type":{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/v2-0203","code":"FILL"}]},"system":"http://lab.example","value":"A-17"}],
		"valueCodeableConcept":{"coding":[{"system":"http://snomed.info/sct","code":"260385009","display":"Negative"}]}}`
	for q, want := range map[string]bool{
		"code:text=glucose":                  true,
		"code:text=GLUCOSE [mass":            true,
		"code:text=blood sug":                true,
		"code:text=sugar":                    false,
		"code=http://loinc.org|":             true,
		"code=http://snomed.info/sct|":       false,
		"value-concept:text=neg":             true,
		"value-concept=260385009":            true,
		"identifier=http://lab.example|A-17": true,
		"identifier:of-type=http://terminology.hl7.org/CodeSystem/v2-0203|FILL|A-17": true,
		"identifier:of-type=http://terminology.hl7.org/CodeSystem/v2-0203|PLAC|A-17": false,
		"identifier:of-type=http://terminology.hl7.org/CodeSystem/v2-0203|FILL|A-18": false,
	} {
		if got := matches(t, "Observation", obs, q); got != want {
			t.Errorf("%s: match %v, want %v", q, got, want)
		}
	}
}

func TestNewParamErrors(t *testing.T) {
	r := testRegistry(t)
	for _, tc := range []struct {
		typ, q string
		want   error
	}{
		{"Observation", "value-quantity=abc", ErrInvalidValue},
		{"Observation", "value-quantity=5|http://unitsofmeasure.org", ErrInvalidValue},
		{"Observation", "value-quantity=5|http://unitsofmeasure.org|", ErrUnsupported},
		{"Observation", "value-quantity=1.2345678", ErrUnsupported},
		{"Observation", "value-quantity=gt1e-40", ErrUnsupported},
		{"Observation", "value-quantity=ne5,ne6", ErrUnsupported},
		{"Observation", "value-quantity:exact=5", ErrUnsupported},
		{"Observation", "code-value-quantity=http://loinc.org|1", ErrInvalidValue},
		{"Observation", "code-value-quantity=http://loinc.org|1$ne5", ErrUnsupported},
		{"Observation", "code-value-quantity=http://loinc.org|$5", ErrUnsupported},
		{"Observation", "code:above=http://loinc.org|1", ErrUnsupported},
		{"Observation", "code:below=http://loinc.org|1", ErrUnsupported},
		{"Observation", "code:in=a,b", ErrInvalidValue},
		{"Observation", "status:text=fin", ErrUnsupported},
		{"Observation", "identifier:of-type=a|b", ErrInvalidValue},
		{"ValueSet", "url:contains=acme", ErrUnsupported},
		{"Patient", "name:contains=ann", ErrUnsupported},
		{"Patient", "_text=diabetes", ErrUnsupported},
		{"Patient", "_content=diabetes", ErrUnsupported},
	} {
		qv, _ := url.ParseQuery(tc.q)
		_, err := r.ParseQuery(tc.typ, qv, false)
		if !errors.Is(err, tc.want) {
			t.Errorf("%s?%s: err = %v, want %v", tc.typ, tc.q, err, tc.want)
			continue
		}
		if _, v, _ := strings.Cut(tc.q, "="); len(v) > 3 && strings.Contains(err.Error(), v) {
			t.Errorf("%s: error echoes the value: %v", tc.q, err)
		}
	}
	qv, _ := url.ParseQuery("code:not-in=http://acme.org/fhir/ValueSet/x|2")
	q, err := r.ParseQuery("Observation", qv, false)
	if err != nil || q.Preds[0].ValueSet != "http://acme.org/fhir/ValueSet/x|2" || !q.Preds[0].Negate || len(q.Preds[0].Terms) != 0 {
		t.Errorf("code:not-in: %+v, %v", q, err)
	}
}

func TestCompositeBounded(t *testing.T) {
	var sb strings.Builder
	sb.WriteString(`{"resourceType":"Observation","status":"final","code":{"text":"x"},"component":[`)
	for i := range maxCompositeItems + 1 {
		if i > 0 {
			sb.WriteByte(',')
		}
		sb.WriteString(`{"code":{"coding":[{"system":"s","code":"c"}]},"valueQuantity":{"value":1}}`)
	}
	sb.WriteString(`]}`)
	if _, err := testRegistry(t).Extract(decode(t, sb.String())); err == nil {
		t.Error("no error for too many composite repetitions")
	}
}

func TestComputedTermsBounded(t *testing.T) {
	var sb strings.Builder
	sb.WriteString(`{"resourceType":"Observation","status":"final","code":{"coding":[`)
	for i := range 520 { // 520 displays × 32 :text prefixes
		if i > 0 {
			sb.WriteByte(',')
		}
		sb.WriteString(`{"system":"s","code":"c` + strings.Repeat("x", i%7) + `","display":"` + strings.Repeat("d", 40) + `"}`)
	}
	sb.WriteString(`]},"valueQuantity":{"value":1.5,"unit":"mg","system":"http://unitsofmeasure.org","code":"mg"}}`)
	_, err := testRegistry(t).Extract(decode(t, sb.String()))
	if !errors.Is(err, fhir.ErrTooLarge) {
		t.Errorf("err = %v, want ErrTooLarge", err)
	}
}
