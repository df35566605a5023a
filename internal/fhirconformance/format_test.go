package fhirconformance_test

import (
	"mime"
	"net/http"
	"strings"
	"testing"

	"github.com/phivault/phivault/internal/apitest"
)

// checkFormats: R4 http.html#mime-type and #general (_format).
// phivault speaks JSON only (docs/fhir.md, "Formats"): XML is a 406 for
// responses and a 415 for request bodies, which is how R4 has a server
// refuse a format it does not support.
func checkFormats(t *testing.T, s *apitest.Server) {
	id := s.Create(t, patientRes(newSystem(), "f1", nil))
	path := "/fhir/Patient/" + id
	wantJSON := func(t *testing.T, r *apitest.Response) {
		t.Helper()
		r.Want(t, http.StatusOK)
		// application/fhir+json, or application/json to a client that
		// asked for exactly that (server-driven negotiation).
		mt, params, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
		if err != nil || (mt != "application/fhir+json" && mt != "application/json") {
			t.Errorf("Content-Type %q, want application/fhir+json", r.Header.Get("Content-Type"))
		}
		// "requests and responses SHALL explicitly set the character
		// encoding to UTF-8 using the charset parameter".
		if !strings.EqualFold(params["charset"], "utf-8") {
			t.Errorf("Content-Type %q: no charset=utf-8", r.Header.Get("Content-Type"))
		}
		if r.ID() != id && r.JSON["type"] != "searchset" {
			t.Errorf("body: %s", r)
		}
	}
	t.Run("Accept", func(t *testing.T) {
		// "Servers SHALL support server-driven content negotiation".
		for _, accept := range []string{"application/fhir+json", "application/json", "application/fhir+json; fhirVersion=4.0", "*/*", "application/fhir+xml;q=0.5, application/fhir+json"} {
			t.Run(accept, func(t *testing.T) { wantJSON(t, s.Do(t, "GET", path, nil, apitest.H{"Accept": accept})) })
		}
		r := s.Do(t, "GET", path, nil, apitest.H{"Accept": "application/fhir+xml"}).Want(t, http.StatusNotAcceptable)
		wantOutcomeBody(t, r)
	})
	t.Run("_format", func(t *testing.T) {
		// "_format=[mime-type]": json, application/json,
		// application/fhir+json; it overrides the Accept header.
		for _, f := range []string{"json", "application/json", "application/fhir+json"} {
			t.Run(f, func(t *testing.T) {
				wantJSON(t, s.Do(t, "GET", path+"?"+query("_format", f), nil, apitest.H{"Accept": "application/fhir+xml"}))
			})
		}
		for _, f := range []string{"xml", "application/fhir+xml", "text/turtle"} {
			t.Run(f, func(t *testing.T) {
				s.Do(t, "GET", path+"?"+query("_format", f), nil, nil).Want(t, http.StatusNotAcceptable)
			})
		}
		wantJSON(t, s.Do(t, "GET", "/fhir/Patient?"+query("_id", id, "_format", "json"), nil, nil))
	})
	t.Run("Content-Type of request bodies", func(t *testing.T) {
		// "The correct mime type SHALL be used by clients and servers";
		// a body the server cannot read is 415 Unsupported Media Type.
		xml := `<Patient xmlns="http://hl7.org/fhir"><gender value="male"/></Patient>`
		r := s.Do(t, "POST", "/fhir/Patient", xml, apitest.H{"Content-Type": "application/fhir+xml"}).Want(t, http.StatusUnsupportedMediaType)
		wantOutcomeBody(t, r)
		s.Do(t, "POST", "/fhir/Patient", `{"resourceType":"Patient"}`, apitest.H{"Content-Type": "text/plain"}).Want(t, http.StatusUnsupportedMediaType)
		s.Do(t, "POST", "/fhir/Patient", `{"resourceType":"Patient"}`, apitest.H{"Content-Type": "application/json"}).Want(t, http.StatusCreated)
		s.Do(t, "POST", "/fhir/Patient", `{"resourceType":"Patient"}`, apitest.H{"Content-Type": "application/fhir+json; charset=utf-8"}).Want(t, http.StatusCreated)
	})
}
