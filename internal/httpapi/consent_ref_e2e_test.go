package httpapi_test

import (
	"net/http"
	"testing"

	"github.com/phivault/phivault/internal/apitest"
)

// TestConsentPatientSpellings (penetration test, issue 15): a deny
// Consent whose patient was written as this server's absolute URL or
// with a version suffix was stored under the patient and never
// enforced; written "patient/<id>" it was stored as the organisation's.
// Each spelling the record resolves is enforced; one it cannot resolve
// is refused.
func TestConsentPatientSpellings(t *testing.T) {
	apitest.Run(t, func(t *testing.T, s *apitest.Server) {
		for _, spell := range []struct {
			name string
			ref  func(pid string) string
		}{
			{"absolute URL of this server", func(pid string) string { return s.URL + "/fhir/Patient/" + pid }},
			{"absolute URL of another server", func(pid string) string { return "https://other.example.org/fhir/Patient/" + pid }},
			{"version suffix", func(pid string) string { return "Patient/" + pid + "/_history/1" }},
		} {
			t.Run(spell.name, func(t *testing.T) {
				pid, obs, doc := patientInCare(t, s)
				s.Do(t, http.MethodGet, "/fhir/Observation/"+obs, nil, doc.headers).Want(t, http.StatusOK)
				c := consentDeny(pid, doc.fhirUser)
				c["patient"] = map[string]any{"reference": spell.ref(pid)}
				s.Create(t, c)
				s.Do(t, http.MethodGet, "/fhir/Observation/"+obs, nil, doc.headers).WantOutcome(t, http.StatusForbidden, http.StatusNotFound)
				s.Do(t, http.MethodGet, "/fhir/Patient/"+pid, nil, doc.headers).WantOutcome(t, http.StatusForbidden, http.StatusNotFound)
			})
		}
		t.Run("lowercase type is refused", func(t *testing.T) {
			pid := s.Create(t, map[string]any{"resourceType": "Patient"})
			c := consentDeny(pid, "Practitioner/x")
			c["patient"] = map[string]any{"reference": "patient/" + pid}
			s.Do(t, http.MethodPost, "/fhir/Consent", c, nil).WantOutcome(t, http.StatusBadRequest, http.StatusUnprocessableEntity)
		})
	})
}
