package httpapi_test

import (
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/phivault/phivault/internal/apitest"
)

func TestE2EMetadata(t *testing.T) {
	apitest.Run(t, func(t *testing.T, s *apitest.Server) {
		r := s.Do(t, http.MethodGet, "/fhir/metadata", nil, apitest.H{"Authorization": apitest.NoAuth}).Want(t, http.StatusOK)
		if got := r.JSON["resourceType"]; got != "CapabilityStatement" {
			t.Fatalf("resourceType: got %v", got)
		}
		if got := r.JSON["fhirVersion"]; got != "4.0.1" {
			t.Errorf("fhirVersion: got %v, want 4.0.1", got)
		}
		rest := r.JSON["rest"].([]any)[0].(map[string]any)
		var patient map[string]any
		for _, x := range rest["resource"].([]any) {
			if m := x.(map[string]any); m["type"] == "Patient" {
				patient = m
			}
		}
		if patient == nil {
			t.Fatal("no Patient in the CapabilityStatement")
		}
		var params, interactions []string
		for _, p := range patient["searchParam"].([]any) {
			params = append(params, p.(map[string]any)["name"].(string))
		}
		for _, p := range patient["interaction"].([]any) {
			interactions = append(interactions, p.(map[string]any)["code"].(string))
		}
		for _, want := range []string{"identifier", "name", "family", "given", "birthdate", "gender", "_id", "_lastUpdated"} {
			if !slices.Contains(params, want) {
				t.Errorf("Patient searchParam lacks %s (has %v)", want, params)
			}
		}
		for _, want := range []string{"read", "vread", "update", "delete", "history-instance", "history-type", "create", "search-type"} {
			if !slices.Contains(interactions, want) {
				t.Errorf("Patient interaction lacks %s (has %v)", want, interactions)
			}
		}
		var obs map[string]any
		for _, x := range rest["resource"].([]any) {
			if m := x.(map[string]any); m["type"] == "Observation" {
				obs = m
			}
		}
		strs := func(v any) []string {
			var out []string
			for _, x := range v.([]any) {
				out = append(out, x.(string))
			}
			return out
		}
		if inc := strs(obs["searchInclude"]); !slices.Contains(inc, "Observation:subject") || !slices.Contains(inc, "*") {
			t.Errorf("Observation searchInclude = %v", inc)
		}
		if rev := strs(patient["searchRevInclude"]); !slices.Contains(rev, "Observation:subject") || slices.Contains(rev, "Observation:encounter") {
			t.Errorf("Patient searchRevInclude = %v", rev)
		}
		if _, ok := patient["searchInclude"]; ok {
			t.Errorf("Patient lists _include values but has no supported reference parameter")
		}
		var system []string
		for _, p := range rest["interaction"].([]any) {
			system = append(system, p.(map[string]any)["code"].(string))
		}
		for _, want := range []string{"transaction", "batch"} {
			if !slices.Contains(system, want) {
				t.Errorf("system interactions lack %s (has %v)", want, system)
			}
		}
	})
}

func TestE2EAuthentication(t *testing.T) {
	apitest.Run(t, func(t *testing.T, s *apitest.Server) {
		pid := s.Create(t, map[string]any{"resourceType": "Patient", "gender": "female"})
		requests := []struct{ method, path, body string }{
			{"GET", "/fhir/Patient/" + pid, ""},
			{"GET", "/fhir/Patient/" + pid + "/_history/1", ""},
			{"GET", "/fhir/Patient?gender=female", ""},
			{"POST", "/fhir/Patient", `{"resourceType":"Patient"}`},
			{"PUT", "/fhir/Patient/" + pid, `{"resourceType":"Patient","id":"` + pid + `"}`},
			{"DELETE", "/fhir/Patient/" + pid, ""},
			{"GET", "/fhir/Patient/" + pid + "/_history", ""},
			{"GET", "/fhir/_history", ""},
			{"GET", "/fhir/Patient/" + pid + "/$everything", ""},
			{"POST", "/fhir/Patient/" + pid + "/$erase", ""},
			{"POST", "/fhir", `{"resourceType":"Bundle","type":"batch","entry":[]}`},
			{"GET", "/fhir/NoSuchType", ""},
		}
		creds := []struct{ name, header string }{
			{"none", apitest.NoAuth},
			{"bad token", "Bearer pvt_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"},
			{"not a phivault token", "Bearer abc"},
			{"basic", "Basic dXNlcjpwYXNz"},
			{"revealed prefix only", "Bearer pvt_"},
		}
		var texts []string
		for _, c := range creds {
			for _, rq := range requests {
				t.Run(c.name+"/"+rq.method+" "+rq.path, func(t *testing.T) {
					var body any
					if rq.body != "" {
						body = rq.body
					}
					r := s.Do(t, rq.method, rq.path, body, apitest.H{"Authorization": c.header}).WantOutcome(t, http.StatusUnauthorized)
					if !strings.HasPrefix(r.Header.Get("WWW-Authenticate"), "Bearer") {
						t.Errorf("WWW-Authenticate: got %q", r.Header.Get("WWW-Authenticate"))
					}
					texts = append(texts, r.JSON["issue"].([]any)[0].(map[string]any)["diagnostics"].(string))
				})
			}
		}
		for _, x := range texts {
			if x != texts[0] {
				t.Errorf("401 texts differ: %q vs %q", x, texts[0])
			}
		}
		// Nothing above changed the patient.
		r := s.Do(t, "GET", "/fhir/Patient/"+pid, nil, nil).Want(t, http.StatusOK)
		if v := r.JSON["meta"].(map[string]any)["versionId"]; v != "1" {
			t.Errorf("after unauthenticated writes, versionId %v, want 1", v)
		}
	})
}
