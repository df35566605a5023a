package httpapi_test

import (
	"net/http"
	"slices"
	"testing"

	"github.com/phivault/phivault/internal/apitest"
	"github.com/phivault/phivault/internal/audit"
	"github.com/phivault/phivault/internal/monitor/ownlog"
)

// What the privacy monitor reads in the log (issue 16): a refused bearer
// token is told from a request without credentials, and a FHIR access
// made in a session names the session (a session used from two
// addresses is an attack signal).
func TestMonitorSignalsInTheLog(t *testing.T) {
	apitest.Run(t, func(t *testing.T, s *apitest.Server) {
		_, obs, doc := patientInCare(t, s)
		bad := s.Do(t, http.MethodGet, "/fhir/Observation/"+obs, nil, apitest.H{"Authorization": "Bearer pvt_not-a-token"}).WantOutcome(t, http.StatusUnauthorized)
		none := s.Do(t, http.MethodGet, "/fhir/Observation/"+obs, nil, apitest.H{"Authorization": apitest.NoAuth}).WantOutcome(t, http.StatusUnauthorized)
		read := s.Do(t, http.MethodGet, "/fhir/Observation/"+obs, nil, doc.headers).Want(t, http.StatusOK)
		evs := auditEvents(t, s)
		refused := func(r *apitest.Response) bool {
			return slices.ContainsFunc(eventsOf(t, evs, r), func(ev audit.Event) bool { return slices.Contains(ev.Policies, ownlog.RefusedToken) })
		}
		if !refused(bad) {
			t.Errorf("a refused bearer token is not marked %q: %+v", ownlog.RefusedToken, eventsOf(t, evs, bad))
		}
		if refused(none) {
			t.Error("a request without credentials is marked as a refused token")
		}
		got := eventsOf(t, evs, read)
		if i := slices.IndexFunc(got, func(ev audit.Event) bool { return ev.Action == audit.ActionRead }); i < 0 || got[i].Agent.Session == "" {
			t.Errorf("the session's read names no session: %+v", got)
		}
	})
}
