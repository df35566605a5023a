package httpapi_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/phivault/phivault/internal/apitest"
)

const ssn = "999-45-6789"

// subsetted reports whether res carries the meta.tag SUBSETTED.
func subsetted(res map[string]any) bool {
	m, _ := res["meta"].(map[string]any)
	tags, _ := m["tag"].([]any)
	for _, x := range tags {
		c, _ := x.(map[string]any)
		if c["code"] == "SUBSETTED" && c["system"] == "http://terminology.hl7.org/CodeSystem/v3-ObservationValue" {
			return true
		}
	}
	return false
}

func memberNames(res map[string]any) []string {
	var out []string
	for k := range res {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// TestE2ESummaryAndElements: _summary and _elements on read, vread and
// search, tagged SUBSETTED; bad values are refused.
func TestE2ESummaryAndElements(t *testing.T) {
	apitest.Run(t, func(t *testing.T, s *apitest.Server) {
		pid := s.Create(t, patient(uniq(), map[string]any{
			"text":    map[string]any{"status": "generated", "div": `<div xmlns="http://www.w3.org/1999/xhtml">x</div>`},
			"name":    []any{map[string]any{"family": "Summary"}},
			"contact": []any{map[string]any{"name": map[string]any{"family": "NotSummary"}}}}))
		oid := s.Create(t, observation(pid, map[string]any{"note": []any{map[string]any{"text": "private note"}},
			"valueQuantity": map[string]any{"value": 4.50, "unit": "mg"}}))
		cases := []struct {
			name, query string
			want        []string
		}{
			{"summary true", "_summary=true", []string{"id", "identifier", "meta", "name", "resourceType"}},
			{"summary text", "_summary=text", []string{"id", "meta", "resourceType", "text"}},
			{"summary data", "_summary=data", []string{"contact", "id", "identifier", "meta", "name", "resourceType"}},
			{"elements", "_elements=name", []string{"id", "meta", "name", "resourceType"}},
			{"elements typed", "_elements=Patient.contact", []string{"contact", "id", "meta", "resourceType"}},
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				for _, path := range []string{"/fhir/Patient/" + pid + "?", "/fhir/Patient/" + pid + "/_history/1?"} {
					r := s.Do(t, "GET", path+c.query, nil, nil).Want(t, http.StatusOK)
					if got := memberNames(r.JSON); !slices.Equal(got, c.want) {
						t.Errorf("%s%s: members %v, want %v", path, c.query, got, c.want)
					}
					if !subsetted(r.JSON) {
						t.Errorf("%s%s: no SUBSETTED tag", path, c.query)
					}
				}
				r := s.Do(t, "GET", "/fhir/Patient?_id="+pid+"&"+c.query, nil, nil).Want(t, http.StatusOK)
				res := r.Resources()
				if len(res) != 1 || !slices.Equal(memberNames(res[0]), c.want) || !subsetted(res[0]) {
					t.Errorf("search %s: %s", c.query, r)
				}
			})
		}
		t.Run("full", func(t *testing.T) {
			r := s.Do(t, "GET", "/fhir/Patient/"+pid+"?_summary=false", nil, nil).Want(t, http.StatusOK)
			if subsetted(r.JSON) || r.JSON["contact"] == nil {
				t.Errorf("_summary=false is the full resource: %s", r)
			}
		})
		t.Run("observation summary", func(t *testing.T) {
			r := s.Do(t, "GET", "/fhir/Observation/"+oid+"?_summary=true", nil, nil).Want(t, http.StatusOK)
			if strings.Contains(string(r.Body), "private note") || !strings.Contains(string(r.Body), `"value":4.5`) {
				t.Errorf("summary of an Observation: %s", r.Body)
			}
			r = s.Do(t, "GET", "/fhir/Observation?_id="+oid+"&_elements=subject", nil, nil).Want(t, http.StatusOK)
			if got := memberNames(r.Resources()[0]); !slices.Equal(got, []string{"code", "id", "meta", "resourceType", "status", "subject"}) {
				t.Errorf("_elements keeps the mandatory elements: %v", got)
			}
		})
		t.Run("paging keeps the subset", func(t *testing.T) {
			s.Create(t, observation(pid, nil))
			pages := s.SearchAll(t, "/fhir/Observation?subject=Patient/"+pid+"&_count=1&_elements=subject")
			if len(pages) < 2 {
				t.Fatalf("pages: %d", len(pages))
			}
			for _, p := range pages {
				for _, res := range p.Resources() {
					if !subsetted(res) || res["note"] != nil {
						t.Errorf("a later page lost _elements: %v", res)
					}
				}
			}
		})
		t.Run("refused", func(t *testing.T) {
			for _, q := range []string{
				"/fhir/Patient/" + pid + "?_summary=count",
				"/fhir/Patient/" + pid + "?_summary=maybe",
				"/fhir/Patient/" + pid + "?_elements=name.family.x",
				"/fhir/Patient/" + pid + "?_summary=true&_elements=name",
				"/fhir/Patient?_summary=maybe",
				"/fhir/Patient?_elements=" + url.QueryEscape("<b>"),
			} {
				r := s.Do(t, "GET", q, nil, nil).WantOutcome(t, http.StatusBadRequest)
				if strings.Contains(string(r.Body), "<b>") || strings.Contains(string(r.Body), "maybe") {
					t.Errorf("%s: the error echoes the input: %s", q, r.Body)
				}
			}
		})
	})
}

// TestE2ESubsetAfterMasking: front desk may not see government
// identifiers; asking for them with _elements or _summary does not
// bring them back.
func TestE2ESubsetAfterMasking(t *testing.T) {
	apitest.Run(t, func(t *testing.T, s *apitest.Server) {
		pid := s.Create(t, patient(uniq(), map[string]any{"identifier": []any{
			map[string]any{"system": testSystem, "value": uniq()},
			map[string]any{"system": "http://hl7.org/fhir/sid/us-ssn", "value": ssn}}}))
		desk := newActor(t, s, "front-desk", "")
		for _, q := range []string{"_elements=identifier", "_summary=true", "_summary=data", "_elements=Patient.identifier"} {
			for _, path := range []string{"/fhir/Patient/" + pid + "?", "/fhir/Patient/" + pid + "/_history/1?", "/fhir/Patient?_id=" + pid + "&",
				"/fhir?_type=Patient&_id=" + pid + "&", "/fhir/Patient/" + pid + "/Patient?"} {
				r := s.Do(t, "GET", path+q, nil, desk.headers).Want(t, http.StatusOK)
				if strings.Contains(string(r.Body), ssn) {
					t.Errorf("%s%s shows the SSN to front desk", path, q)
				}
				if !strings.Contains(string(r.Body), `"REDACTED"`) {
					t.Errorf("%s%s: the REDACTED label is gone: %s", path, q, r.Body)
				}
			}
		}
		// The unmasked caller does get it.
		r := s.Do(t, "GET", "/fhir/Patient/"+pid+"?_elements=identifier", nil, nil).Want(t, http.StatusOK)
		if !strings.Contains(string(r.Body), ssn) {
			t.Errorf("the system caller's _elements=identifier lacks the SSN: %s", r.Body)
		}
	})
}

// TestE2ESystemAndCompartmentSearch covers the search forms, their
// parameters and paging.
func TestE2ESystemAndCompartmentSearch(t *testing.T) {
	apitest.Run(t, func(t *testing.T, s *apitest.Server) {
		pa := s.Create(t, patient(uniq(), nil))
		pb := s.Create(t, patient(uniq(), nil))
		var obsA []string
		for range 3 {
			obsA = append(obsA, "Observation/"+s.Create(t, observation(pa, nil)))
		}
		condA := "Condition/" + s.Create(t, map[string]any{"resourceType": "Condition", "subject": ref("Patient/" + pa), "code": coding("http://snomed.info/sct", "44054006")})
		obsB := "Observation/" + s.Create(t, observation(pb, nil))

		t.Run("system", func(t *testing.T) {
			ids := strings.Join([]string{pa, pb, strings.TrimPrefix(obsB, "Observation/")}, ",")
			r := s.Do(t, "GET", "/fhir?_type=Patient,Observation&_id="+ids, nil, nil).Want(t, http.StatusOK)
			sameSet(t, "system search", r.IDs(), []string{"Patient/" + pa, "Patient/" + pb, obsB})
			if n, _ := r.Total(); n != 3 {
				t.Errorf("total %d, want 3", n)
			}
			r = s.Do(t, "GET", "/fhir/?_type=Patient&_type=Observation&_id="+ids+"&_summary=count", nil, nil).Want(t, http.StatusOK)
			if n, _ := r.Total(); n != 3 || len(r.Entries()) != 0 {
				t.Errorf("_summary=count: %s", r)
			}
			r = s.Do(t, "POST", "/fhir/_search", "_type=Observation&subject=Patient/"+pa, apitest.H{"Content-Type": "application/x-www-form-urlencoded"}).Want(t, http.StatusOK)
			sameSet(t, "one type, its parameters", r.IDs(), obsA)
			var got []string
			pages := s.SearchAll(t, "/fhir?_type=Observation,Condition,Patient&_id="+strings.Join([]string{pa, strings.TrimPrefix(condA, "Condition/"), strings.TrimPrefix(obsA[0], "Observation/"), strings.TrimPrefix(obsA[1], "Observation/")}, ",")+"&_count=1")
			for _, p := range pages {
				got = append(got, p.IDs()...)
			}
			sameSet(t, "paged system search", got, []string{"Patient/" + pa, condA, obsA[0], obsA[1]})
			if len(pages) != 4 {
				t.Errorf("%d pages, want 4", len(pages))
			}
		})
		t.Run("system parameters", func(t *testing.T) {
			s.Do(t, "GET", "/fhir?_id="+pa, nil, nil).WantOutcome(t, http.StatusBadRequest)
			s.Do(t, "GET", "/fhir?_type=Patient,Observation&subject=Patient/"+pa, nil, nil).WantOutcome(t, http.StatusBadRequest)
			s.Do(t, "GET", "/fhir?_type=Patient,Observation&_sort=_lastUpdated", nil, nil).WantOutcome(t, http.StatusBadRequest)
			s.Do(t, "GET", "/fhir?_type=Bot", nil, nil).WantOutcome(t, http.StatusBadRequest)
			s.Do(t, "GET", "/fhir?_type=AuditEvent", nil, nil).WantOutcome(t, http.StatusBadRequest)
			r := s.Do(t, "GET", "/fhir?_type=Patient,Observation&_id="+pa+"&subject=Patient/"+pa, nil, apitest.H{"Prefer": "handling=lenient"}).Want(t, http.StatusOK)
			sameSet(t, "lenient", r.IDs(), []string{"Patient/" + pa, "OperationOutcome/"})
			if !outcomeNames(r, "subject") {
				t.Errorf("the ignored parameter is not in an outcome entry: %s", r)
			}
		})
		t.Run("compartment", func(t *testing.T) {
			r := s.Do(t, "GET", "/fhir/Patient/"+pa+"/Observation", nil, nil).Want(t, http.StatusOK)
			sameSet(t, "Patient/a/Observation", r.IDs(), obsA)
			r = s.Do(t, "GET", "/fhir/Patient/"+pa+"/Observation?_id="+strings.TrimPrefix(obsB, "Observation/"), nil, nil).Want(t, http.StatusOK)
			sameSet(t, "B's observation is not in A's compartment", r.IDs(), nil)
			r = s.Do(t, "GET", "/fhir/Patient/"+pa+"/*", nil, nil).Want(t, http.StatusOK)
			sameSet(t, "Patient/a/*", r.IDs(), append([]string{"Patient/" + pa, condA}, obsA...))
			var got []string
			for _, p := range s.SearchAll(t, "/fhir/Patient/"+pa+"/*?_count=2") {
				got = append(got, p.IDs()...)
			}
			sameSet(t, "paged Patient/a/*", got, append([]string{"Patient/" + pa, condA}, obsA...))
			r = s.Do(t, "GET", "/fhir/Patient/nosuch-"+pa+"/Observation", nil, nil).Want(t, http.StatusOK)
			sameSet(t, "no such patient", r.IDs(), nil)
			s.Do(t, "GET", "/fhir/Patient/"+pa+"/Practitioner", nil, nil).WantOutcome(t, http.StatusBadRequest)
			s.Do(t, "GET", "/fhir/Observation/"+pa+"/Observation", nil, nil).WantOutcome(t, http.StatusNotFound)
			page := s.Do(t, "GET", "/fhir/Patient/"+pa+"/Observation?_count=1", nil, nil).Want(t, http.StatusOK).Link("next")
			u, _ := url.Parse(page)
			s.Do(t, "GET", "/fhir/Patient/"+pb+"/Observation?"+u.RawQuery, nil, nil).WantOutcome(t, http.StatusBadRequest)
		})
	})
}

// outcomeNames reports whether r has an outcome entry naming param.
func outcomeNames(r *apitest.Response, param string) bool {
	for _, e := range r.Entries() {
		sr, _ := e["search"].(map[string]any)
		res, _ := e["resource"].(map[string]any)
		if sr["mode"] == "outcome" && res["resourceType"] == "OperationOutcome" && strings.Contains(apitestJSON(res), param) {
			return true
		}
	}
	return false
}

// TestE2EPatientSeesNoOtherPatient: compartment and system search show
// exactly what the caller's plain searches show (the same narrowing);
// for a patient, nothing of another patient, with the same answer as for
// a patient that does not exist.
func TestE2EPatientSeesNoOtherPatient(t *testing.T) {
	apitest.Run(t, func(t *testing.T, s *apitest.Server) {
		own := s.Create(t, patient(uniq(), nil))
		other := s.Create(t, patient(uniq(), nil))
		ownObs := "Observation/" + s.Create(t, observation(own, nil))
		otherObs := s.Create(t, observation(other, nil))
		pat := newActor(t, s, "patient", own)
		for _, role := range []string{"patient", "physician", "researcher", "billing", "front-desk"} {
			a := pat
			if role != "patient" {
				a = newActor(t, s, role, "")
			}
			t.Run(role, func(t *testing.T) {
				var plain []string
				for _, q := range []string{"/fhir/Patient?_id=" + other, "/fhir/Observation?subject=Patient/" + other} {
					plain = append(plain, s.Do(t, "GET", q, nil, a.headers).Want(t, http.StatusOK).IDs()...)
				}
				if role == "patient" && len(plain) != 0 {
					t.Fatalf("a patient's plain search shows another patient: %v", plain)
				}
				for _, c := range []struct {
					path string
					want []string
				}{
					{"/fhir/Patient/" + other + "/Observation", filterRefs(plain, "Observation/")},
					{"/fhir/Patient/" + other + "/*", plain},
					{"/fhir/Patient/" + other + "/Patient", filterRefs(plain, "Patient/")},
					{"/fhir?_type=Patient,Observation&_id=" + other + "," + otherObs, plain},
					{"/fhir?_type=Observation&subject=Patient/" + other, filterRefs(plain, "Observation/")},
				} {
					r := s.Do(t, "GET", c.path, nil, a.headers).Want(t, http.StatusOK)
					sameSet(t, c.path, r.IDs(), c.want)
					n := s.Do(t, "GET", c.path+sep(c.path)+"_summary=count", nil, a.headers).Want(t, http.StatusOK)
					if got, _ := n.Total(); got != len(c.want) {
						t.Errorf("%s: _summary=count total %d, want %d", c.path, got, len(c.want))
					}
					if len(c.want) == 0 {
						missing := s.Do(t, "GET", strings.Replace(c.path, other, "nosuch"+uniq(), 1), nil, a.headers)
						if missing.Status != r.Status || len(missing.Entries()) != len(r.Entries()) {
							t.Errorf("%s: a hidden patient answers unlike a missing one: %d vs %d", c.path, r.Status, missing.Status)
						}
					}
				}
			})
		}
		r := s.Do(t, "GET", "/fhir/Patient/"+own+"/*", nil, pat.headers).Want(t, http.StatusOK)
		sameSet(t, "the patient's own compartment", r.IDs(), []string{"Patient/" + own, ownObs})
		r = s.Do(t, "GET", "/fhir?_type=Patient,Observation", nil, pat.headers).Want(t, http.StatusOK)
		sameSet(t, "the patient's system search", r.IDs(), []string{"Patient/" + own, ownObs})
	})
}

func filterRefs(refs []string, prefix string) []string {
	var out []string
	for _, r := range refs {
		if strings.HasPrefix(r, prefix) {
			out = append(out, r)
		}
	}
	return out
}

func sep(path string) string {
	if strings.Contains(path, "?") {
		return "&"
	}
	return "?"
}

func apitestJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}
