package httpapi_test

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/phivault/phivault/internal/apitest"
	"github.com/phivault/phivault/internal/app"
)

// TestTamperedKeyIsOneEntryPerVersion: one byte changed in one patient's
// wrapped data key (SRE re-test F2). Every version of that patient is
// then tampered: searches, type histories, the system history and a
// batch's search entry serve the other patients' rows plus one
// OperationOutcome entry per such version, instead of answering 503
// (retry forever); a direct read of it answers 500, not 503; the other
// patient's reads and $everything are served.
func TestTamperedKeyIsOneEntryPerVersion(t *testing.T) {
	apitest.Run(t, func(t *testing.T, s *apitest.Server) {
		good := s.Create(t, patient(uniq(), nil))
		goodObs := s.Create(t, observation(good, nil))
		bad := s.Create(t, patient(uniq(), nil))
		badObs := []string{s.Create(t, observation(bad, nil)), s.Create(t, observation(bad, nil))}

		db := rawDB(t, s)
		var wrapped []byte
		if err := db.QueryRowContext(t.Context(), placeholders(s, "SELECT wrapped FROM keys WHERE owner = ?"), "Patient/"+bad).Scan(&wrapped); err != nil {
			t.Fatal(err)
		}
		wrapped[30] ^= 0x01
		if _, err := db.ExecContext(t.Context(), placeholders(s, "UPDATE keys SET wrapped = ? WHERE owner = ?"), wrapped, "Patient/"+bad); err != nil {
			t.Fatal(err)
		}
		// Another process of the fleet (the record cache of this one
		// holds the key record read before the change for a few
		// seconds): every request below goes to it.
		s = secondProcess(t, s)
		badRefs := []string{"Patient/" + bad + "/_history/1", "Observation/" + badObs[0] + "/_history/1", "Observation/" + badObs[1] + "/_history/1"}

		// want checks that entries serve the good resources named and
		// one outcome for each tampered version named.
		want := func(t *testing.T, what string, entries []map[string]any, goodIDs, outcomes []string) {
			t.Helper()
			served := map[string]bool{}
			named := map[string]bool{}
			for _, e := range entries {
				res, _ := e["resource"].(map[string]any)
				if resp, _ := e["response"].(map[string]any); resp != nil {
					if out, ok := resp["outcome"].(map[string]any); ok {
						res = out
					}
				}
				if res["resourceType"] == "OperationOutcome" {
					for _, ref := range badRefs {
						if strings.Contains(jsonText(res), ref) {
							named[ref] = true
						}
					}
					continue
				}
				id, _ := res["id"].(string)
				if id == bad || id == badObs[0] || id == badObs[1] {
					t.Fatalf("%s: a version of the tampered key was served", what)
				}
				served[id] = true
			}
			for _, id := range goodIDs {
				if !served[id] {
					t.Errorf("%s: %s not served: %v", what, id, entries)
				}
			}
			for _, ref := range outcomes {
				if !named[ref] {
					t.Errorf("%s: no outcome entry names %s: %v", what, ref, entries)
				}
			}
		}
		r := s.Do(t, "GET", "/fhir/Patient?_count=100", nil, nil).Want(t, http.StatusOK)
		want(t, "Patient search", r.Entries(), []string{good}, badRefs[:1])
		r = s.Do(t, "GET", "/fhir/Observation?_count=100", nil, nil).Want(t, http.StatusOK)
		want(t, "Observation search", r.Entries(), []string{goodObs}, badRefs[1:])
		r = s.Do(t, "GET", "/fhir/Observation/_history?_count=100", nil, nil).Want(t, http.StatusOK)
		want(t, "type history", r.Entries(), []string{goodObs}, badRefs[1:])
		r = s.Do(t, "GET", "/fhir/_history?_count=1000", nil, nil).Want(t, http.StatusOK)
		want(t, "system history", r.Entries(), []string{good, goodObs}, badRefs)
		batch := map[string]any{"resourceType": "Bundle", "type": "batch", "entry": []any{
			map[string]any{"request": map[string]any{"method": "GET", "url": "Observation?_count=100"}},
		}}
		r = s.Do(t, "POST", "/fhir", batch, nil).Want(t, http.StatusOK)
		inner, _ := r.Entries()[0]["resource"].(map[string]any)
		var innerEntries []map[string]any
		for _, e := range inner["entry"].([]any) {
			innerEntries = append(innerEntries, e.(map[string]any))
		}
		want(t, "batch search entry", innerEntries, []string{goodObs}, badRefs[1:])

		// A direct read of a version of the tampered key is the error
		// (500, like a tampered row), not "retry later".
		s.Do(t, "GET", "/fhir/Patient/"+bad, nil, nil).WantOutcome(t, http.StatusInternalServerError)
		s.Do(t, "GET", "/fhir/Observation/"+badObs[0], nil, nil).WantOutcome(t, http.StatusInternalServerError)
		// The other patient is untouched.
		s.Do(t, "GET", "/fhir/Patient/"+good, nil, nil).Want(t, http.StatusOK)
		r = s.Do(t, "GET", "/fhir/Patient/"+good+"/$everything", nil, nil).Want(t, http.StatusOK)
		want(t, "$everything of the other patient", r.Entries(), []string{good, goodObs}, nil)
	})
}

// secondProcess opens another phivault process on s's database and key
// file, as a fleet runs them, and returns a server for it whose client
// sends s's token.
func secondProcess(t *testing.T, s *apitest.Server) *apitest.Server {
	t.Helper()
	a, err := app.Open(t.Context(), s.App.Config, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatalf("opening a second process: %v", err)
	}
	ts := httptest.NewTLSServer(a.Handler())
	t.Cleanup(func() {
		ts.Close()
		a.Close()
	})
	return apitest.Attach(s, ts.URL, a, ts.Client())
}

// TestTamperedKeyAuthzFailsClosedForItsPatientOnly: a physician on the
// care teams of two patients, one of whose wrapped data key was changed
// in the database. The decisions that read that patient (its Patient,
// its CareTeam) fail closed for that patient alone: the physician still
// reads and searches the other patient's records; nothing of the
// tampered patient is served.
func TestTamperedKeyAuthzFailsClosedForItsPatientOnly(t *testing.T) {
	apitest.Run(t, func(t *testing.T, s *apitest.Server) {
		good := s.Create(t, patient(uniq(), nil))
		bad := s.Create(t, patient(uniq(), nil))
		doc := newActor(t, s, "physician", "")
		careTeam(t, s, good, doc.fhirUser)
		careTeam(t, s, bad, doc.fhirUser)
		goodObs := s.Create(t, observation(good, nil))
		badObs := s.Create(t, observation(bad, nil))

		db := rawDB(t, s)
		var wrapped []byte
		if err := db.QueryRowContext(t.Context(), placeholders(s, "SELECT wrapped FROM keys WHERE owner = ?"), "Patient/"+bad).Scan(&wrapped); err != nil {
			t.Fatal(err)
		}
		wrapped[30] ^= 0x01
		if _, err := db.ExecContext(t.Context(), placeholders(s, "UPDATE keys SET wrapped = ? WHERE owner = ?"), wrapped, "Patient/"+bad); err != nil {
			t.Fatal(err)
		}
		s = secondProcess(t, s)

		s.Do(t, "GET", "/fhir/Observation/"+goodObs, nil, doc.headers).Want(t, http.StatusOK)
		s.Do(t, "GET", "/fhir/Patient/"+good, nil, doc.headers).Want(t, http.StatusOK)
		for _, p := range []string{"/fhir/Observation/" + badObs, "/fhir/Patient/" + bad} {
			if r := s.Do(t, "GET", p, nil, doc.headers); r.Status == http.StatusOK || r.Status == http.StatusServiceUnavailable {
				t.Errorf("GET %s: %s, want a refusal or an error (not served, not 'retry later')", p, r)
			}
		}
		for _, p := range []string{"/fhir/Observation?_count=100", "/fhir/Observation?subject=Patient/" + good, "/fhir/Patient?_count=100"} {
			r := s.Do(t, "GET", p, nil, doc.headers).Want(t, http.StatusOK)
			ids := map[string]bool{}
			for _, e := range r.Entries() {
				res, _ := e["resource"].(map[string]any)
				id, _ := res["id"].(string)
				ids[id] = true
			}
			if ids[bad] || ids[badObs] {
				t.Errorf("GET %s served the tampered patient's records: %v", p, r.Entries())
			}
			if !ids[goodObs] && !ids[good] {
				t.Errorf("GET %s did not serve the other patient's records: %v", p, r.Entries())
			}
		}
	})
}
