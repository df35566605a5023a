package httpapi

import (
	"net/http"
	"strings"

	"github.com/phivault/phivault/internal/record"
)

// systemSearch serves GET /fhir?_type=... and POST /fhir/_search
// (record.SystemSearch).
func (s *Server) systemSearch(w http.ResponseWriter, r *http.Request) error {
	vals, err := searchValues(r)
	if err != nil {
		return err
	}
	page, err := s.rec.SystemSearch(r.Context(), s.caller(r), vals, record.SearchOptions{Lenient: lenient(r), BaseURL: s.baseURL + "/fhir"})
	if err != nil {
		return err
	}
	writeBody(w, r, http.StatusOK, page.Bundle)
	return nil
}

// compartmentSearch serves GET /fhir/Patient/{id}/{ctype}, ctype a
// resource type of the Patient compartment or "*"
// (record.CompartmentSearch). Other types have no compartments here.
func (s *Server) compartmentSearch(w http.ResponseWriter, r *http.Request) error {
	if strings.HasPrefix(r.PathValue("ctype"), "$") {
		return httpError(http.StatusNotFound, "not-supported", "unknown FHIR operation")
	}
	if r.PathValue("type") != "Patient" {
		return httpError(http.StatusNotFound, "not-supported", "unknown FHIR endpoint or method (only the Patient compartment is supported)")
	}
	id, err := pathID(r)
	if err != nil {
		return err
	}
	vals, err := searchValues(r)
	if err != nil {
		return err
	}
	page, err := s.rec.CompartmentSearch(r.Context(), s.caller(r), id, r.PathValue("ctype"), vals, record.SearchOptions{Lenient: lenient(r), BaseURL: s.baseURL + "/fhir"})
	if err != nil {
		return err
	}
	writeBody(w, r, http.StatusOK, page.Bundle)
	return nil
}
