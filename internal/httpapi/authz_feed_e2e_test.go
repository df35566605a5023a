package httpapi_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/phivault/phivault/internal/apitest"
	"github.com/phivault/phivault/internal/app"
)

// TestAuthzFeedAcrossProcesses (ADR 0043): two processes of a fleet on
// one database. A physician on the patient's care team reads through
// process 2, which caches the patient's facts; a Consent denying that
// physician is then written through process 1. Process 2's authorizer
// clock is frozen, so its cache never expires: only the change feed can
// make it deny, and it must. A third process, frozen the same way but
// not watching the feed, keeps serving: what the feed changes.
func TestAuthzFeedAcrossProcesses(t *testing.T) {
	apitest.Run(t, func(t *testing.T, s *apitest.Server) {
		pid, obs, doc := patientInCare(t, s)

		frozen := time.Now()
		clock := func() time.Time { return frozen }
		open := func() *apitest.Server {
			a, err := app.Open(t.Context(), s.App.Config, slog.New(slog.NewTextHandler(io.Discard, nil)), app.WithAuthzClock(clock))
			if err != nil {
				t.Fatalf("opening another process: %v", err)
			}
			ts := httptest.NewTLSServer(a.Handler())
			t.Cleanup(func() {
				ts.Close()
				a.Close()
			})
			return apitest.Attach(s, ts.URL, a, ts.Client())
		}
		p2, p3 := open(), open()
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan struct{})
		go func() {
			defer close(done)
			p2.App.WatchAuthz(ctx)
		}()
		t.Cleanup(func() {
			cancel()
			<-done
		})
		read := "/fhir/Observation/" + obs
		p2.Do(t, http.MethodGet, read, nil, doc.headers).Want(t, http.StatusOK)
		p3.Do(t, http.MethodGet, read, nil, doc.headers).Want(t, http.StatusOK)

		s.Create(t, consentDeny(pid, doc.fhirUser))
		// Process 1 heard its own write.
		s.Do(t, http.MethodGet, read, nil, doc.headers).WantOutcome(t, http.StatusForbidden, http.StatusNotFound)
		deadline := time.Now().Add(30 * time.Second)
		for {
			r := p2.Do(t, http.MethodGet, read, nil, doc.headers)
			if r.Status != http.StatusOK {
				r.WantOutcome(t, http.StatusForbidden, http.StatusNotFound)
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("process 2 still serves the read 30 s after the Consent was written through process 1")
			}
			time.Sleep(100 * time.Millisecond)
		}
		// Without the feed, a frozen cache serves the stale permit: the
		// feed is what closed it.
		p3.Do(t, http.MethodGet, read, nil, doc.headers).Want(t, http.StatusOK)
	})
}

// patientInCare creates a patient with an Observation and a physician on
// the patient's care team, who may read both.
func patientInCare(t *testing.T, s *apitest.Server) (pid, obs string, doc actor) {
	t.Helper()
	pid = s.Create(t, map[string]any{"resourceType": "Patient", "name": []any{map[string]any{"family": "InCare"}}})
	obs = s.Create(t, map[string]any{"resourceType": "Observation", "status": "final",
		"code":    map[string]any{"coding": []any{map[string]any{"system": "http://loinc.org", "code": "8867-4"}}},
		"subject": map[string]any{"reference": "Patient/" + pid}})
	doc = newActor(t, s, "physician", "")
	s.Create(t, map[string]any{"resourceType": "CareTeam", "status": "active", "subject": map[string]any{"reference": "Patient/" + pid},
		"participant": []any{map[string]any{"member": map[string]any{"reference": doc.fhirUser}}}})
	return pid, obs, doc
}
