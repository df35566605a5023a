package httpapi_test

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/phivault/phivault/internal/apitest"
	"github.com/phivault/phivault/internal/audit"
	"github.com/phivault/phivault/internal/record"
	"github.com/phivault/phivault/internal/storage"
)

const ucum = "http://unitsofmeasure.org"

func qty(v any, code string) map[string]any {
	return map[string]any{"value": v, "unit": code, "system": ucum, "code": code}
}

// TestE2ESearchParamTypes covers number, quantity, composite, uri and
// the meta parameters, and the token modifiers :text, :of-type, :in,
// :not-in and system|, through the REST API against the real store.
func TestE2ESearchParamTypes(t *testing.T) {
	apitest.Run(t, func(t *testing.T, s *apitest.Server) {
		u := uniq()
		pid := s.Create(t, patient("pt-"+u, nil))
		sub := "subject=Patient/" + pid
		ids := map[string]string{}
		create := func(sym string, res map[string]any) {
			t.Helper()
			ids[sym] = res["resourceType"].(string) + "/" + s.Create(t, res)
		}
		tag := "tag-" + u
		create("Glu95", observation(pid, map[string]any{
			"code":          map[string]any{"coding": []any{map[string]any{"system": loinc, "code": "2339-0", "display": "Glucose [Mass/volume] in Blood"}}, "text": "Blood sugar"},
			"valueQuantity": qty(95, "mg/dL"),
			"identifier":    []any{map[string]any{"type": coding("http://terminology.hl7.org/CodeSystem/v2-0203", "FILL"), "system": testSystem, "value": "F-" + u}},
			"meta":          map[string]any{"tag": []any{map[string]any{"system": testSystem, "code": tag}}, "profile": []any{"http://acme.org/fhir/StructureDefinition/glucose"}, "source": "http://acme.org/lab#" + u},
		}))
		create("Glu140", observation(pid, map[string]any{"code": coding(loinc, "2339-0"), "valueQuantity": qty(1.4, "g/L")}))
		create("BP", observation(pid, map[string]any{"code": coding(loinc, "85354-9"), "component": []any{
			map[string]any{"code": coding(loinc, "8480-6"), "valueQuantity": qty(150, "mm[Hg]")},
			map[string]any{"code": coding(loinc, "8462-4"), "valueQuantity": qty(85, "mm[Hg]")},
		}}))
		create("Neg", observation(pid, map[string]any{"code": coding(loinc, "94500-6"), "valueCodeableConcept": map[string]any{
			"coding": []any{map[string]any{"system": "http://snomed.info/sct", "code": "260385009", "display": "Negative"}}}}))
		create("Risk", map[string]any{"resourceType": "RiskAssessment", "status": "final", "subject": ref("Patient/" + pid),
			"prediction": []any{map[string]any{"probabilityDecimal": 0.025}}})
		vsURL := "http://acme.org/fhir/ValueSet/glucose-" + u
		create("VS", map[string]any{"resourceType": "ValueSet", "status": "active", "url": vsURL, "version": "1", "name": "Glucose" + u,
			"compose": map[string]any{"include": []any{map[string]any{"system": loinc, "concept": []any{map[string]any{"code": "2339-0"}, map[string]any{"code": "8480-6"}}}}}})
		create("VSsys", map[string]any{"resourceType": "ValueSet", "status": "active", "url": vsURL + "-snomed", "version": "1",
			"compose": map[string]any{"include": []any{map[string]any{"system": "http://snomed.info/sct"}}}})
		create("VSfilter", map[string]any{"resourceType": "ValueSet", "status": "active", "url": vsURL + "-filter",
			"compose": map[string]any{"include": []any{map[string]any{"system": loinc, "filter": []any{map[string]any{"property": "concept", "op": "is-a", "value": "x"}}}}}})
		create("CS", map[string]any{"resourceType": "CodeSystem", "status": "draft", "content": "complete", "url": "http://acme.org/fhir/CodeSystem/c-" + u, "name": "C" + u,
			"concept": []any{map[string]any{"code": "a"}}})

		cases := []searchCase{
			{"quantity eq", "Observation?" + sub + "&value-quantity=95", []string{"Glu95"}, false},
			{"quantity implicit range", "Observation?" + sub + "&value-quantity=95.4", nil, false},
			{"quantity gt any unit", "Observation?" + sub + "&value-quantity=gt50", []string{"Glu95"}, false},
			{"quantity ucum converted", "Observation?" + sub + "&value-quantity=" + url.QueryEscape("lt1|"+ucum+"|g/L"), []string{"Glu95"}, false},
			{"quantity ucum converted both", "Observation?" + sub + "&value-quantity=" + url.QueryEscape("ge90|"+ucum+"|mg/dL"), []string{"Glu95", "Glu140"}, false},
			{"quantity code only", "Observation?" + sub + "&value-quantity=" + url.QueryEscape("95||mg/dL"), []string{"Glu95"}, false},
			{"quantity ne", "Observation?" + sub + "&code=" + url.QueryEscape(loinc+"|2339-0") + "&value-quantity=ne95", []string{"Glu140"}, false},
			{"quantity ap", "Observation?" + sub + "&value-quantity=ap100", []string{"Glu95"}, false},
			{"component value", "Observation?" + sub + "&component-value-quantity=gt140", []string{"BP"}, false},
			{"composite pairs one component", "Observation?" + sub + "&component-code-value-quantity=" + url.QueryEscape(loinc+"|8462-4$gt100"), nil, false},
			{"composite pairs one component 2", "Observation?" + sub + "&component-code-value-quantity=" + url.QueryEscape(loinc+"|8480-6$gt100"), []string{"BP"}, false},
			{"code-value-quantity", "Observation?" + sub + "&code-value-quantity=" + url.QueryEscape(loinc+"|2339-0$gt1|"+ucum+"|g/L"), []string{"Glu140"}, false},
			{"code-value-concept", "Observation?" + sub + "&code-value-concept=" + url.QueryEscape(loinc+"|94500-6$http://snomed.info/sct|260385009"), []string{"Neg"}, false},
			// Composites answered from other parameters' rows (ADR 0042).
			{"code-value-quantity two values of one code", "Observation?" + sub + "&code-value-quantity=" + url.QueryEscape(loinc+"|2339-0$95,"+loinc+"|2339-0$gt1|"+ucum+"|g/L"), []string{"Glu95", "Glu140"}, false},
			{"code-value-quantity not a component's code", "Observation?" + sub + "&code-value-quantity=" + url.QueryEscape(loinc+"|8480-6$gt100"), nil, false},
			{"code-value-quantity not another code's value", "Observation?" + sub + "&code-value-quantity=" + url.QueryEscape(loinc+"|85354-9$gt100"), nil, false},
			{"code-value-quantity missing", "Observation?" + sub + "&code-value-quantity:missing=true", []string{"BP", "Neg"}, false},
			{"code-value-quantity present", "Observation?" + sub + "&code-value-quantity:missing=false", []string{"Glu95", "Glu140"}, false},
			{"code-value-concept present", "Observation?" + sub + "&code-value-concept:missing=false", []string{"Neg"}, false},
			{"code-value-concept other value", "Observation?" + sub + "&code-value-concept=" + url.QueryEscape(loinc+"|94500-6$http://snomed.info/sct|10828004"), nil, false},
			{"combo on a component", "Observation?" + sub + "&combo-code-value-quantity=" + url.QueryEscape(loinc+"|8480-6$gt100"), []string{"BP"}, false},
			{"combo pairs one component", "Observation?" + sub + "&combo-code-value-quantity=" + url.QueryEscape(loinc+"|8462-4$gt100"), nil, false},
			{"combo on the observation", "Observation?" + sub + "&combo-code-value-quantity=" + url.QueryEscape("2339-0$gt100|"+ucum+"|mg/dL"), []string{"Glu140"}, false},
			{"combo both", "Observation?" + sub + "&combo-code-value-quantity=" + url.QueryEscape(loinc+"|8480-6$gt100,"+loinc+"|2339-0$lt100|"+ucum+"|mg/dL"), []string{"BP", "Glu95"}, false},
			{"combo missing", "Observation?" + sub + "&combo-code-value-quantity:missing=true", []string{"Neg"}, false},
			{"combo present", "Observation?" + sub + "&combo-code-value-quantity:missing=false", []string{"Glu95", "Glu140", "BP"}, false},
			{"number", "RiskAssessment?" + sub + "&probability=lt0.05", []string{"Risk"}, false},
			{"number eq precision", "RiskAssessment?" + sub + "&probability=0.03", []string{"Risk"}, false},
			{"number no", "RiskAssessment?" + sub + "&probability=gt0.5", nil, false},
			{"uri", "ValueSet?url=" + url.QueryEscape(vsURL), []string{"VS"}, false},
			{"uri below", "ValueSet?url:below=" + url.QueryEscape(vsURL) + "&version=1", []string{"VS"}, false},
			{"uri below prefix", "ValueSet?url:below=" + url.QueryEscape("http://acme.org/fhir/ValueSet") + "&name=Glucose" + u, []string{"VS"}, false},
			{"uri above", "ValueSet?url:above=" + url.QueryEscape(vsURL+"/child/x"), []string{"VS"}, false},
			{"codesystem", "CodeSystem?url=" + url.QueryEscape("http://acme.org/fhir/CodeSystem/c-"+u) + "&code=a", []string{"CS"}, false},
			{"_tag", "Observation?_tag=" + url.QueryEscape(testSystem+"|"+tag), []string{"Glu95"}, false},
			{"_tag any system", "Observation?_tag=" + tag, []string{"Glu95"}, false},
			{"_profile", "Observation?" + sub + "&_profile=" + url.QueryEscape("http://acme.org/fhir/StructureDefinition/glucose"), []string{"Glu95"}, false},
			{"_source", "Observation?_source=" + url.QueryEscape("http://acme.org/lab#"+u), []string{"Glu95"}, false},
			{"token :text", "Observation?" + sub + "&code:text=glucose", []string{"Glu95"}, false},
			{"token :text on text", "Observation?" + sub + "&code:text=" + url.QueryEscape("blood SUG"), []string{"Glu95"}, false},
			{"token :of-type", "Observation?identifier:of-type=" + url.QueryEscape("http://terminology.hl7.org/CodeSystem/v2-0203|FILL|F-"+u), []string{"Glu95"}, false},
			{"token system|", "Observation?" + sub + "&value-concept=" + url.QueryEscape("http://snomed.info/sct|"), []string{"Neg"}, false},
			{"token :in", "Observation?" + sub + "&code:in=" + url.QueryEscape(vsURL), []string{"Glu95", "Glu140"}, false},
			{"token :in version", "Observation?" + sub + "&code:in=" + url.QueryEscape(vsURL+"|1"), []string{"Glu95", "Glu140"}, false},
			{"token :in component", "Observation?" + sub + "&component-code:in=" + url.QueryEscape(vsURL), []string{"BP"}, false},
			{"token :not-in", "Observation?" + sub + "&code:not-in=" + url.QueryEscape(vsURL), []string{"BP", "Neg"}, false},
			{"token :in whole system", "Observation?" + sub + "&value-concept:in=" + url.QueryEscape(vsURL+"-snomed"), []string{"Neg"}, false},
		}
		cases = append(cases, searchCase{"_tag across types", "?_type=Observation,RiskAssessment&_tag=" + tag, []string{"Glu95"}, false})
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				r := s.Do(t, "GET", "/fhir/"+c.query, nil, nil).Want(t, http.StatusOK)
				var want []string
				for _, w := range c.want {
					want = append(want, ids[w])
				}
				sameSet(t, c.query, r.IDs(), want)
			})
		}
		for _, q := range []string{
			"Observation?value-quantity=abc",
			"Observation?value-quantity=1.2345678",
			"Observation?code:in=" + url.QueryEscape(vsURL+"-filter"),
			"Observation?code:in=" + url.QueryEscape(vsURL+"-absent"),
			"Observation?code:below=" + url.QueryEscape(loinc+"|2339-0"),
			"Observation?_text=glucose",
			"Observation?_content=glucose",
			"Patient?name:contains=ann",
			"ValueSet?url:contains=acme",
		} {
			t.Run("refused "+q, func(t *testing.T) {
				r := s.Do(t, "GET", "/fhir/"+q, nil, nil).WantOutcome(t, http.StatusBadRequest)
				if strings.Contains(string(r.Body), "glucose-"+u) || strings.Contains(string(r.Body), "1.2345678") {
					t.Errorf("the refusal echoes the value: %s", r.Body)
				}
			})
		}
	})
}

// TestE2ESearchParamsAuthz checks that the new parameters narrow like
// every other: a physician on patient A's care team finds A's
// quantities, never B's nor A's 42 CFR Part 2 one, whatever the
// predicate (including _security, which names the hidden label), and
// cannot use a ValueSet it may not read for :in.
func TestE2ESearchParamsAuthz(t *testing.T) {
	apitest.Run(t, func(t *testing.T, s *apitest.Server) {
		e := newLeakEnv(t, s)
		u := uniq()
		mk := func(pid, label string) string {
			o := observation(pid, map[string]any{"code": map[string]any{"coding": []any{map[string]any{"system": testSystem, "code": "q" + u, "display": "Quantity Q" + u}}}, "valueQuantity": qty(7.5, "mmol/L"),
				"meta": map[string]any{"tag": []any{map[string]any{"system": testSystem, "code": "t" + u}}}})
			if label != "" {
				o["meta"].(map[string]any)["security"] = []any{map[string]any{"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": label}}
			}
			return s.Create(t, o)
		}
		a, _, _ := mk(e.a, ""), mk(e.b, ""), mk(e.a, "42CFRPart2")
		onlyA := []string{"Observation/" + a}
		code := url.QueryEscape(testSystem + "|q" + u)
		for _, q := range []string{
			"Observation?code=" + code + "&value-quantity=7.5",
			"Observation?value-quantity=" + url.QueryEscape("ge7|"+ucum+"|mmol/L") + "&_tag=t" + u,
			"Observation?code-value-quantity=" + url.QueryEscape(testSystem+"|q"+u+"$7.5"),
			"Observation?_tag=" + url.QueryEscape(testSystem+"|t"+u),
			"Observation?code:text=" + url.QueryEscape("quantity q"+u) + "&_tag=t" + u,
		} {
			t.Run(q, func(t *testing.T) {
				r := e.search(t, s, q+"&_total=accurate", e.doc.headers).Want(t, http.StatusOK)
				sameSet(t, q, r.IDs(), onlyA)
				if fmt.Sprint(r.JSON["total"]) != "1" {
					t.Errorf("total %v, want 1", r.JSON["total"])
				}
			})
		}
		t.Run("_security names the hidden label", func(t *testing.T) {
			r := e.search(t, s, "Observation?_tag=t"+u+"&_security=42CFRPart2&_total=accurate", e.doc.headers).Want(t, http.StatusOK)
			if len(r.IDs()) != 0 || fmt.Sprint(r.JSON["total"]) != "0" {
				t.Fatalf("_security search revealed hidden resources: %v total %v", r.IDs(), r.JSON["total"])
			}
			// The administrator (no such restriction here) finds it: the
			// predicate itself works.
			r = s.Do(t, "GET", "/fhir/Observation?_tag=t"+u+"&_security=42CFRPart2", nil, nil).Want(t, http.StatusOK)
			if len(r.IDs()) != 1 {
				t.Fatalf("admin: %v", r.IDs())
			}
		})
		t.Run(":in with a ValueSet the caller may not read", func(t *testing.T) {
			vsURL := "http://acme.org/fhir/ValueSet/hidden-" + u
			vs := map[string]any{"resourceType": "ValueSet", "status": "active", "url": vsURL,
				"compose": map[string]any{"include": []any{map[string]any{"system": testSystem, "concept": []any{map[string]any{"code": "q" + u}}}}}}
			s.Create(t, labelled(vs, "42CFRPart2"))
			q := "Observation?code:in=" + url.QueryEscape(vsURL)
			r := s.Do(t, "GET", "/fhir/"+q, nil, nil).Want(t, http.StatusOK) // the admin may read it
			if len(r.IDs()) != 3 {
				t.Fatalf("admin :in: %v", r.IDs())
			}
			e.search(t, s, q, e.doc.headers).WantOutcome(t, http.StatusBadRequest)
		})
	})
}

// TestE2ESearchParamsReindex: data indexed before this release has no
// rows for the new parameters; the reindex (phivault reindex) adds them.
func TestE2ESearchParamsReindex(t *testing.T) {
	apitest.Run(t, func(t *testing.T, s *apitest.Server) {
		pid := s.Create(t, patient(uniq(), nil))
		obs := s.Create(t, observation(pid, map[string]any{"valueQuantity": qty(42.5, "kg")}))
		q := "/fhir/Observation?subject=Patient/" + pid + "&value-quantity=" + url.QueryEscape("42.5|"+ucum+"|kg")
		sameSet(t, "before", s.Do(t, "GET", q, nil, nil).Want(t, http.StatusOK).IDs(), []string{"Observation/" + obs})
		// An index written by an older release: no quantity rows.
		if err := s.App.Store.Update(t.Context(), func(tx storage.Tx) error {
			return tx.ReplaceIndex(t.Context(), "Observation", obs, 1, nil)
		}); err != nil {
			t.Fatal(err)
		}
		sameSet(t, "old index", s.Do(t, "GET", q, nil, nil).Want(t, http.StatusOK).IDs(), nil)
		if _, err := s.App.Record.Reindex(t.Context(), record.Caller{Agent: audit.Agent{Client: "test"}, Guard: record.Offline()}, nil); err != nil {
			t.Fatal(err)
		}
		sameSet(t, "reindexed", s.Do(t, "GET", q, nil, nil).Want(t, http.StatusOK).IDs(), []string{"Observation/" + obs})
	})
}

// TestE2ECapabilityParamTypes: the CapabilityStatement lists the new
// parameters with their types and what they support.
func TestE2ECapabilityParamTypes(t *testing.T) {
	apitest.Run(t, func(t *testing.T, s *apitest.Server) {
		r := s.Do(t, http.MethodGet, "/fhir/metadata", nil, apitest.H{"Authorization": apitest.NoAuth}).Want(t, http.StatusOK)
		got := map[string]string{}
		for _, x := range r.JSON["rest"].([]any)[0].(map[string]any)["resource"].([]any) {
			m := x.(map[string]any)
			for _, p := range m["searchParam"].([]any) {
				pm := p.(map[string]any)
				got[m["type"].(string)+":"+pm["name"].(string)] = pm["type"].(string)
				if pm["name"] != "_id" && pm["name"] != "_lastUpdated" && pm["documentation"] == "" {
					t.Errorf("%s:%s has no documentation", m["type"], pm["name"])
				}
			}
		}
		for k, want := range map[string]string{
			"Observation:value-quantity": "quantity", "Observation:code-value-quantity": "composite",
			"RiskAssessment:probability": "number", "ValueSet:url": "uri", "CodeSystem:url": "uri",
			"Observation:_tag": "token", "Patient:_security": "token", "Encounter:_profile": "uri", "Medication:_source": "uri",
		} {
			if got[k] != want {
				t.Errorf("%s: type %q, want %q", k, got[k], want)
			}
		}
		for _, k := range []string{"Patient:_text", "Patient:_content"} {
			if _, ok := got[k]; ok {
				t.Errorf("%s is listed but refused", k)
			}
		}
	})
}
