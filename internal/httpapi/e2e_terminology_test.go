package httpapi_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/phivault/phivault/internal/apitest"
	"github.com/phivault/phivault/internal/audit"
)

const termData = "../fhir/terminology/testdata/r4/"

const (
	clinicalCS = "http://terminology.hl7.org/CodeSystem/condition-clinical"
	clinicalVS = "http://hl7.org/fhir/ValueSet/condition-clinical"
	predicate  = "http://terminology.hl7.org/ValueSet/v3-ActMoodPredicate"
	heartRate  = "http://hl7.org/fhir/StructureDefinition/heartrate"
)

func r4Example(t *testing.T, name string) map[string]any {
	t.Helper()
	b, err := os.ReadFile(termData + name + ".json")
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	delete(m, "id")
	return m
}

// paramValue returns the first value of Parameters parameter name.
func paramValue(r *apitest.Response, name string) any {
	list, _ := r.JSON["parameter"].([]any)
	for _, e := range list {
		m, _ := e.(map[string]any)
		if m["name"] != name {
			continue
		}
		for k, v := range m {
			if strings.HasPrefix(k, "value") {
				return v
			}
		}
	}
	return nil
}

func expansionCodes(r *apitest.Response) (codes []string, total string) {
	e, _ := r.JSON["expansion"].(map[string]any)
	for _, c := range e["contains"].([]any) {
		codes = append(codes, c.(map[string]any)["code"].(string))
	}
	n, _ := e["total"].(json.Number)
	return codes, n.String()
}

func outcomeIssues(t *testing.T, r *apitest.Response) (errs []string, all string) {
	t.Helper()
	if r.JSON["resourceType"] != "OperationOutcome" {
		t.Fatalf("not an OperationOutcome: %s", r)
	}
	for _, i := range r.JSON["issue"].([]any) {
		m := i.(map[string]any)
		if m["severity"] == "error" {
			var path string
			if ex, ok := m["expression"].([]any); ok && len(ex) > 0 {
				path = ex[0].(string)
			}
			errs = append(errs, m["code"].(string)+"@"+path)
		}
	}
	return errs, string(r.Body)
}

// TestTerminologyOperations: $lookup, $expand and $validate-code over
// R4 code systems and value sets stored by a service account, as a
// physician (who may read terminology), a patient (who may not) and the
// service account; a code system labelled restricted, with the same url
// as a readable one, changes nothing for those who may not read it.
func TestTerminologyOperations(t *testing.T) {
	apitest.Run(t, func(t *testing.T, s *apitest.Server) {
		for _, n := range []string{"CodeSystem-condition-clinical", "ValueSet-condition-clinical", "CodeSystem-v3-ActMood", "ValueSet-v3-ActMoodPredicate"} {
			s.Create(t, r4Example(t, n))
		}
		vsID := s.Do(t, http.MethodGet, "/fhir/ValueSet", nil, nil).Want(t, 200).IDs()
		pid := s.Create(t, patient(uniq(), nil))
		doc := newActor(t, s, "physician", "")
		pat := newActor(t, s, "patient", pid)
		sys := newActor(t, s, "system", "")

		q := func(kv ...string) string {
			v := url.Values{}
			for i := 0; i+1 < len(kv); i += 2 {
				v.Set(kv[i], kv[i+1])
			}
			return v.Encode()
		}
		t.Run("lookup", func(t *testing.T) {
			r := s.Do(t, http.MethodGet, "/fhir/CodeSystem/$lookup?"+q("system", clinicalCS, "code", "relapse"), nil, doc.headers).Want(t, 200)
			if paramValue(r, "display") != "Relapse" || paramValue(r, "name") != "Condition Clinical Status Codes" || paramValue(r, "version") != "4.0.1" {
				t.Fatalf("lookup: %s", r)
			}
			if !strings.Contains(string(r.Body), `"valueCode":"active"`) {
				t.Fatalf("no parent property: %s", r)
			}
			// POST with a coding.
			body := map[string]any{"resourceType": "Parameters", "parameter": []any{
				map[string]any{"name": "coding", "valueCoding": map[string]any{"system": clinicalCS, "code": "remission"}}}}
			r = s.Do(t, http.MethodPost, "/fhir/CodeSystem/$lookup", body, doc.wheaders).Want(t, 200)
			if paramValue(r, "display") != "Remission" {
				t.Fatalf("lookup by coding: %s", r)
			}
			s.Do(t, http.MethodGet, "/fhir/CodeSystem/$lookup?"+q("system", clinicalCS, "code", "dormant"), nil, doc.headers).WantOutcome(t, 404)
			s.Do(t, http.MethodGet, "/fhir/CodeSystem/$lookup?"+q("code", "relapse"), nil, doc.headers).WantOutcome(t, 400)
			s.Do(t, http.MethodGet, "/fhir/CodeSystem/$lookup?"+q("system", clinicalCS, "code", "relapse", "date", "2020"), nil, doc.headers).WantOutcome(t, 400)
			// Patients may not read code systems: as if there were none.
			s.Do(t, http.MethodGet, "/fhir/CodeSystem/$lookup?"+q("system", clinicalCS, "code", "relapse"), nil, pat.headers).WantOutcome(t, 404)
		})
		t.Run("expand", func(t *testing.T) {
			r := s.Do(t, http.MethodGet, "/fhir/ValueSet/$expand?"+q("url", predicate), nil, doc.headers).Want(t, 200)
			codes, total := expansionCodes(r)
			if total != "11" || len(codes) != 11 || slices.Contains(codes, "_ActMoodPredicate") || !slices.Contains(codes, "PRMS.CRT") {
				t.Fatalf("expansion: %v (total %s)", codes, total)
			}
			if _, ok := r.JSON["compose"]; ok {
				t.Fatal("the expansion kept the compose")
			}
			body := map[string]any{"resourceType": "Parameters", "parameter": []any{
				map[string]any{"name": "url", "valueUri": predicate},
				map[string]any{"name": "count", "valueInteger": 3}, map[string]any{"name": "offset", "valueInteger": 9}}}
			r = s.Do(t, http.MethodPost, "/fhir/ValueSet/$expand", body, doc.wheaders).Want(t, 200)
			if codes, total := expansionCodes(r); len(codes) != 2 || total != "11" {
				t.Fatalf("page: %v (total %s)", codes, total)
			}
			for _, id := range vsID {
				r := s.Do(t, http.MethodGet, "/fhir/"+id+"/$expand?filter=re", nil, doc.headers).Want(t, 200)
				if r.JSON["url"] == clinicalVS {
					if codes, _ := expansionCodes(r); !slices.Equal(codes, []string{"recurrence", "relapse", "remission", "resolved"}) {
						t.Fatalf("instance expansion with filter: %v", codes)
					}
				}
			}
			s.Do(t, http.MethodGet, "/fhir/ValueSet/$expand?"+q("url", "http://example.org/none"), nil, doc.headers).WantOutcome(t, 404)
			s.Do(t, http.MethodGet, "/fhir/ValueSet/$expand?"+q("url", predicate, "count", "-1"), nil, doc.headers).WantOutcome(t, 400)
			s.Do(t, http.MethodGet, "/fhir/ValueSet/$expand?"+q("url", predicate), nil, pat.headers).WantOutcome(t, 404)
		})
		t.Run("validate-code", func(t *testing.T) {
			cases := []struct {
				path   string
				result bool
			}{
				{"/fhir/ValueSet/$validate-code?" + q("url", clinicalVS, "system", clinicalCS, "code", "relapse"), true},
				{"/fhir/ValueSet/$validate-code?" + q("url", clinicalVS, "code", "bogus"), false},
				{"/fhir/ValueSet/$validate-code?" + q("url", clinicalVS, "system", clinicalCS, "code", "active", "display", "Nope"), false},
				{"/fhir/CodeSystem/$validate-code?" + q("url", clinicalCS, "code", "resolved"), true},
				{"/fhir/CodeSystem/$validate-code?" + q("url", clinicalCS, "code", "Resolved"), false},
			}
			for _, c := range cases {
				r := s.Do(t, http.MethodGet, c.path, nil, doc.headers).Want(t, 200)
				if paramValue(r, "result") != c.result {
					t.Fatalf("%s: %s", c.path, r)
				}
				if !c.result && (paramValue(r, "message") == nil || strings.Contains(string(r.Body), "bogus") || strings.Contains(string(r.Body), "Nope")) {
					t.Fatalf("%s: message missing or echoing: %s", c.path, r)
				}
			}
			cc := map[string]any{"resourceType": "Parameters", "parameter": []any{
				map[string]any{"name": "url", "valueUri": clinicalVS},
				map[string]any{"name": "codeableConcept", "valueCodeableConcept": map[string]any{"coding": []any{
					map[string]any{"system": "http://snomed.info/sct", "code": "1"}, map[string]any{"system": clinicalCS, "code": "inactive"}}}}}}
			r := s.Do(t, http.MethodPost, "/fhir/ValueSet/$validate-code", cc, doc.wheaders).Want(t, 200)
			if paramValue(r, "result") != true || paramValue(r, "display") != "Inactive" {
				t.Fatalf("codeableConcept: %s", r)
			}
		})
		t.Run("hidden terminology does not influence", func(t *testing.T) {
			// A restricted code system with the same url, newer, and a
			// code of its own: the service account sees it, the
			// physician's answers stay those of the readable one.
			cs := r4Example(t, "CodeSystem-condition-clinical")
			cs["concept"] = append(cs["concept"].([]any), map[string]any{"code": "hidden-code", "display": "Hidden"})
			s.Create(t, labelled(cs, "R"))
			path := "/fhir/CodeSystem/$lookup?" + q("system", clinicalCS, "code", "hidden-code")
			s.Do(t, http.MethodGet, path, nil, sys.headers).Want(t, 200)
			s.Do(t, http.MethodGet, path, nil, doc.headers).WantOutcome(t, 404)
			r := s.Do(t, http.MethodGet, "/fhir/ValueSet/$expand?"+q("url", clinicalVS), nil, doc.headers).Want(t, 200)
			if _, total := expansionCodes(r); total != "6" {
				t.Fatalf("physician's expansion: %s", r)
			}
			r = s.Do(t, http.MethodGet, "/fhir/ValueSet/$expand?"+q("url", clinicalVS), nil, sys.headers).Want(t, 200)
			if _, total := expansionCodes(r); total != "7" {
				t.Fatalf("service account's expansion: %s", r)
			}
			r = s.Do(t, http.MethodGet, "/fhir/ValueSet/$validate-code?"+q("url", clinicalVS, "code", "hidden-code"), nil, doc.headers).Want(t, 200)
			if paramValue(r, "result") != false {
				t.Fatalf("hidden code validated for the physician: %s", r)
			}
		})
		t.Run("capability statement", func(t *testing.T) {
			r := s.Do(t, http.MethodGet, "/fhir/metadata", nil, nil).Want(t, 200)
			ops := map[string][]string{}
			for _, res := range r.JSON["rest"].([]any)[0].(map[string]any)["resource"].([]any) {
				m := res.(map[string]any)
				for _, o := range m["operation"].([]any) {
					ops[m["type"].(string)] = append(ops[m["type"].(string)], o.(map[string]any)["name"].(string))
				}
			}
			for typ, want := range map[string][]string{"CodeSystem": {"lookup", "validate-code", "validate"}, "ValueSet": {"expand", "validate-code", "validate"}, "Observation": {"validate"}} {
				for _, w := range want {
					if !slices.Contains(ops[typ], w) {
						t.Errorf("%s lacks $%s: %v", typ, w, ops[typ])
					}
				}
			}
			if slices.Contains(ops["AuditEvent"], "validate") || slices.Contains(ops["Observation"], "expand") {
				t.Errorf("operations listed where they are not served: %v %v", ops["AuditEvent"], ops["Observation"])
			}
		})
		t.Run("audited as reads of terminology", func(t *testing.T) {
			r := s.Do(t, http.MethodGet, "/fhir/ValueSet/$expand?"+q("url", clinicalVS), nil, doc.headers).Want(t, 200)
			var search []audit.Event
			for _, ev := range eventsOf(t, auditEvents(t, s), r) {
				if ev.Action == audit.ActionSearch && ev.Outcome == audit.OutcomeSuccess {
					search = append(search, ev)
				}
			}
			var ents []string
			for _, ev := range search {
				if ev.Agent.User != doc.userID || (ev.Query != "ValueSet?url" && ev.Query != "CodeSystem?url") {
					t.Fatalf("event %+v", ev)
				}
				ents = append(ents, ev.Entities...)
			}
			if len(ents) != 2 || !strings.HasPrefix(ents[0], "ValueSet/") || !strings.HasPrefix(ents[1], "CodeSystem/") {
				t.Fatalf("entities %v", ents)
			}
			for _, e := range ents {
				if strings.Contains(e, clinicalCS) || strings.Contains(e, "relapse") {
					t.Fatalf("a value in the audit trail: %v", ents)
				}
			}
		})
	})
}

// TestValidateOperation: $validate against base R4 and stored profiles
// (the R4 heart-rate profile and the vital-signs one it derives from,
// with its required binding), with modes decided as the writes they
// simulate, nothing stored, and hidden ids answered as missing ones.
func TestValidateOperation(t *testing.T) {
	apitest.Run(t, func(t *testing.T, s *apitest.Server) {
		for _, n := range []string{"CodeSystem-observation-status", "ValueSet-observation-status", "StructureDefinition-vitalsigns", "StructureDefinition-heartrate"} {
			s.Create(t, r4Example(t, n))
		}
		mine, other := s.Create(t, patient(uniq(), nil)), s.Create(t, patient(uniq(), nil))
		doc := newActor(t, s, "physician", "")
		careTeam(t, s, mine, doc.fhirUser)
		pat := newActor(t, s, "patient", mine)
		otherObs := s.Create(t, observation(other, nil))
		obs := func(pid string, edit func(map[string]any)) map[string]any {
			o := r4Example(t, "Observation-heart-rate")
			o["subject"] = map[string]any{"reference": "Patient/" + pid}
			if edit != nil {
				edit(o)
			}
			return o
		}
		params := func(res map[string]any, mode, profile string) map[string]any {
			ps := []any{map[string]any{"name": "resource", "resource": res}}
			if mode != "" {
				ps = append(ps, map[string]any{"name": "mode", "valueCode": mode})
			}
			if profile != "" {
				ps = append(ps, map[string]any{"name": "profile", "valueUri": profile})
			}
			return map[string]any{"resourceType": "Parameters", "parameter": ps}
		}

		t.Run("conforming and failing resources", func(t *testing.T) {
			r := s.Do(t, http.MethodPost, "/fhir/Observation/$validate?profile="+url.QueryEscape(heartRate), obs(mine, nil), doc.wheaders).Want(t, 200)
			if errs, all := outcomeIssues(t, r); len(errs) != 0 {
				t.Fatalf("conforming: %s", all)
			}
			bad := obs(mine, func(o map[string]any) {
				o["status"] = "Zyxwvut"
				o["valueQuantity"].(map[string]any)["code"] = "Qwertzu"
				delete(o, "code")
			})
			r = s.Do(t, http.MethodPost, "/fhir/Observation/$validate", params(bad, "create", heartRate), doc.wheaders).Want(t, 200)
			errs, all := outcomeIssues(t, r)
			slices.Sort(errs)
			want := []string{"code-invalid@Observation.status", "invalid@Observation.code", "value@Observation.valueQuantity.code"}
			for _, w := range want {
				if !slices.Contains(errs, w) {
					t.Fatalf("missing %s in %v: %s", w, errs, all)
				}
			}
			if strings.Contains(all, "Zyxwvut") || strings.Contains(all, "Qwertzu") {
				t.Fatalf("the outcome echoes resource values: %s", all)
			}
			// meta.profile is followed too (the example claims vitalsigns).
			r = s.Do(t, http.MethodPost, "/fhir/Observation/$validate", obs(mine, func(o map[string]any) { delete(o, "category") }), doc.wheaders).Want(t, 200)
			if errs, all := outcomeIssues(t, r); !slices.Equal(errs, []string{"required@Observation.category"}) {
				t.Fatalf("meta.profile: %s", all)
			}
			// A named profile that is not stored is an error.
			r = s.Do(t, http.MethodPost, "/fhir/Observation/$validate?profile=http://example.org/none", obs(mine, nil), doc.wheaders).Want(t, 200)
			if errs, _ := outcomeIssues(t, r); !slices.Equal(errs, []string{"not-found@Observation"}) {
				t.Fatalf("missing profile: %s", r)
			}
			s.Do(t, http.MethodPost, "/fhir/Observation/$validate?mode=merge", obs(mine, nil), doc.wheaders).WantOutcome(t, 400)
			s.Do(t, http.MethodPost, "/fhir/Patient/$validate", obs(mine, nil), doc.wheaders).WantOutcome(t, 400)
		})
		t.Run("nothing is stored", func(t *testing.T) {
			idv := "validate-" + uniq()
			p := patient(idv, nil)
			s.Do(t, http.MethodPost, "/fhir/Patient/$validate?mode=create", p, nil).Want(t, 200)
			r := s.Do(t, http.MethodGet, "/fhir/Patient?identifier="+url.QueryEscape(testSystem+"|"+idv), nil, nil).Want(t, 200)
			if len(r.IDs()) != 0 {
				t.Fatalf("$validate stored the resource: %s", r)
			}
		})
		t.Run("modes are decided as the writes", func(t *testing.T) {
			// The physician may create on their patient, not on another.
			s.Do(t, http.MethodPost, "/fhir/Observation/$validate?mode=create", obs(mine, nil), doc.wheaders).Want(t, 200)
			s.Do(t, http.MethodPost, "/fhir/Observation/$validate?mode=create", obs(other, nil), doc.wheaders).WantOutcome(t, 403)
			// Patients write nothing clinical.
			s.Do(t, http.MethodPost, "/fhir/Observation/$validate?mode=create", obs(mine, nil), pat.wheaders).WantOutcome(t, 403)
			// An id the caller may not read answers as a missing one.
			hidden := s.Do(t, http.MethodPost, "/fhir/Observation/"+otherObs+"/$validate?mode=delete", nil, doc.wheaders).WantOutcome(t, 404)
			missing := s.Do(t, http.MethodPost, "/fhir/Observation/"+uniq()+"/$validate?mode=delete", nil, doc.wheaders).WantOutcome(t, 404)
			if hidden.JSON["issue"].([]any)[0].(map[string]any)["diagnostics"] != missing.JSON["issue"].([]any)[0].(map[string]any)["diagnostics"] {
				t.Fatalf("hidden %s vs missing %s", hidden, missing)
			}
			upd := obs(other, nil)
			upd["id"] = otherObs
			s.Do(t, http.MethodPost, "/fhir/Observation/"+otherObs+"/$validate?mode=update", upd, doc.wheaders).WantOutcome(t, 404)
			// The service account may; the stored resource validates.
			s.Do(t, http.MethodPost, "/fhir/Observation/"+otherObs+"/$validate?mode=delete", nil, nil).Want(t, 200)
			r := s.Do(t, http.MethodPost, "/fhir/Observation/"+otherObs+"/$validate", nil, nil).Want(t, 200)
			if errs, all := outcomeIssues(t, r); len(errs) != 0 {
				t.Fatalf("stored: %s", all)
			}
			s.Do(t, http.MethodPost, "/fhir/Observation/"+otherObs+"/$validate?mode=update", upd, nil).Want(t, 200)
			s.Do(t, http.MethodPost, "/fhir/Observation/$validate?mode=update", upd, nil).WantOutcome(t, 400)
		})
		t.Run("profiles the caller may not read are not used", func(t *testing.T) {
			// The patient may not read StructureDefinitions: the named
			// profile is as absent for them as an unknown one.
			r := s.Do(t, http.MethodPost, "/fhir/Observation/$validate?profile="+url.QueryEscape(heartRate), obs(mine, nil), pat.wheaders).Want(t, 200)
			if errs, _ := outcomeIssues(t, r); !slices.Equal(errs, []string{"not-found@Observation"}) {
				t.Fatalf("patient: %s", r)
			}
		})
	})
}
