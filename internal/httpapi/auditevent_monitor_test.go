package httpapi_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/phivault/phivault/internal/apitest"
	"github.com/phivault/phivault/internal/monitor"
	"github.com/phivault/phivault/internal/monitor/alerts"
)

// A patient's view of the log (GET /fhir/AuditEvent) holds no
// monitoring event, though an alert's event names them: an open alert
// stays the privacy office's (pen test: the patient read the
// monitor-alert event of an open alert on their record). The auditor
// still finds it by patient.
func TestPatientSeesNoMonitoringEvent(t *testing.T) {
	apitest.Run(t, func(t *testing.T, s *apitest.Server) {
		mine := s.Create(t, patient(uniq(), nil))
		s.Do(t, http.MethodGet, "/fhir/Patient/"+mine, nil, nil).Want(t, http.StatusOK)
		me := newActor(t, s, "patient", mine)
		svc, err := s.App.Monitor()
		if err != nil {
			t.Fatal(err)
		}
		now := time.Now().UTC()
		a := monitor.Alert{Key: "family|" + mine, Source: alerts.SourcePhivault, User: "User/usr_someone", Patients: []string{"Patient/" + mine},
			Category: monitor.CatFamily, Categories: []monitor.Category{monitor.CatFamily}, Score: 0.9, Severity: monitor.SeverityHigh,
			Explanation: "read 1 patient who shares the user's surname", First: now.Add(-time.Minute), Last: now}
		if _, err := svc.Save(t.Context(), []monitor.Alert{a}); err != nil {
			t.Fatal(err)
		}

		aud := auditorHeaders(t, s)
		r := s.Do(t, http.MethodGet, "/fhir/AuditEvent?patient="+mine+"&subtype=monitor-alert", nil, aud).Want(t, http.StatusOK)
		if len(r.Resources()) != 1 {
			t.Fatalf("the auditor finds %d monitor-alert events on the patient, want 1", len(r.Resources()))
		}
		alertEvent := r.Resources()[0]["id"].(string)

		got := s.Do(t, http.MethodGet, "/fhir/AuditEvent", nil, me.headers).Want(t, http.StatusOK).Resources()
		if len(got) == 0 {
			t.Fatal("the patient sees no event at all (the read and the create are theirs)")
		}
		for _, ae := range got {
			if c := subtypeCode(ae); len(c) >= 8 && c[:8] == "monitor-" {
				t.Errorf("the patient sees the monitoring event %s (%s)", ae["id"], c)
			}
		}
		s.Do(t, http.MethodGet, "/fhir/AuditEvent?subtype=monitor-alert", nil, me.headers).Want(t, http.StatusOK)
		if n := len(s.Do(t, http.MethodGet, "/fhir/AuditEvent?subtype=monitor-alert", nil, me.headers).Resources()); n != 0 {
			t.Errorf("the patient's search by subtype finds %d monitoring events", n)
		}
		s.Do(t, http.MethodGet, "/fhir/AuditEvent/"+alertEvent, nil, me.headers).WantOutcome(t, http.StatusNotFound)
		s.Do(t, http.MethodGet, "/fhir/AuditEvent/"+alertEvent+"/$proof", nil, me.headers).WantOutcome(t, http.StatusNotFound)
	})
}
