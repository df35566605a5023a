package httpapi_test

import (
	"net/http"
	"testing"

	"github.com/phivault/phivault/internal/apitest"
	"github.com/phivault/phivault/internal/audit"
)

// TestPurposeOnlyWhereUsed: after a physician broke the glass on one
// patient, the events of their ordinary access to another patient on
// their care team carry TREAT, not ETREAT; only what the grant reached
// is recorded as emergency access (issue 11 item 14, the audit side).
func TestPurposeOnlyWhereUsed(t *testing.T) {
	apitest.Run(t, func(t *testing.T, s *apitest.Server) {
		doc := newActor(t, s, "physician", "")
		emergency, mine := s.Create(t, patient(uniq(), nil)), s.Create(t, patient(uniq(), nil))
		careTeam(t, s, mine, doc.fhirUser)
		s.Create(t, observation(emergency, nil))
		s.Create(t, observation(mine, nil))
		s.Do(t, "POST", "/fhir/Patient/"+emergency+"/$break-glass", breakGlassBody("x"), doc.wheaders).Want(t, http.StatusCreated)

		purpose := func(t *testing.T, path string) string {
			t.Helper()
			r := s.Do(t, "GET", path, nil, doc.headers).Want(t, http.StatusOK)
			evs := eventsOf(t, auditEvents(t, s), r)
			if len(evs) != 1 || evs[0].Outcome != audit.OutcomeSuccess {
				t.Fatalf("GET %s: events %+v, want one success", path, evs)
			}
			return evs[0].Purpose
		}
		for _, p := range []string{
			"/fhir/Patient/" + mine,
			"/fhir/Observation?subject=Patient/" + mine,
			"/fhir/Patient/" + mine + "/$everything",
			"/fhir/Patient/" + mine + "/_history",
		} {
			if got := purpose(t, p); got != "TREAT" {
				t.Errorf("GET %s (care team): purpose %q, want TREAT", p, got)
			}
		}
		for _, p := range []string{
			"/fhir/Patient/" + emergency,
			"/fhir/Observation?subject=Patient/" + emergency,
		} {
			if got := purpose(t, p); got != "ETREAT" {
				t.Errorf("GET %s (under the grant): purpose %q, want ETREAT", p, got)
			}
		}
		// A search whose matches were reached both ways is recorded as
		// one event per purpose, each patient under its own.
		r := s.Do(t, "GET", "/fhir/Observation?_count=100", nil, doc.headers).Want(t, http.StatusOK)
		got := map[string]string{}
		for _, ev := range eventsOf(t, auditEvents(t, s), r) {
			for _, p := range ev.Patients {
				if prev, ok := got[p]; ok && prev != ev.Purpose {
					t.Fatalf("%s is under both %s and %s", p, prev, ev.Purpose)
				}
				got[p] = ev.Purpose
			}
		}
		if got["Patient/"+mine] != "TREAT" || got["Patient/"+emergency] != "ETREAT" {
			t.Fatalf("mixed search: purposes %v, want TREAT for the care-team patient and ETREAT for the other", got)
		}
	})
}
