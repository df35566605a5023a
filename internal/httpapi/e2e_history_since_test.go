package httpapi_test

import (
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/phivault/phivault/internal/apitest"
)

// TestE2EHistorySinceInclusive: R4 _since keeps the versions written "at
// or after" the instant, so _since set to a version's own lastUpdated
// returns that version. A client that pages history by the last
// lastUpdated it saw (fhir-kit-client's request, in internal/interop)
// got nothing back while the bound was exclusive.
func TestE2EHistorySinceInclusive(t *testing.T) {
	apitest.Run(t, func(t *testing.T, s *apitest.Server) {
		ident := uniq()
		id := s.Do(t, "POST", "/fhir/Patient", patient(ident, nil), nil).Want(t, http.StatusCreated).ID()
		upd := patient(ident, map[string]any{"id": id, "gender": "female"})
		r := s.Do(t, "PUT", "/fhir/Patient/"+id, upd, nil).Want(t, http.StatusOK)
		v2, _ := meta(r.JSON)["lastUpdated"].(string)
		if v2 == "" {
			t.Fatalf("no meta.lastUpdated: %s", r)
		}
		since := "_since=" + url.QueryEscape(v2)

		versions := func(r *apitest.Response) []string {
			var out []string
			for _, res := range r.Resources() {
				if res["id"] == id {
					v, _ := meta(res)["versionId"].(string)
					out = append(out, v)
				}
			}
			return out
		}
		r = s.Do(t, "GET", "/fhir/Patient/"+id+"/_history?"+since, nil, nil).Want(t, http.StatusOK)
		if got := versions(r); !slices.Equal(got, []string{"2"}) {
			t.Errorf("instance history _since=v2's lastUpdated: versions %v, want [2]", got)
		}
		r = s.Do(t, "GET", "/fhir/Patient/_history?_count=1000&"+since, nil, nil).Want(t, http.StatusOK)
		if got := versions(r); !slices.Equal(got, []string{"2"}) {
			t.Errorf("type history _since=v2's lastUpdated: versions %v, want [2]", got)
		}
	})
}

// TestE2EHistoryUnknownParameters: a history parameter the server does
// not understand (Medplum's readHistory sends _offset) is refused in
// strict mode, and in lenient mode ignored and named, never silently
// ignored (a client asking for a later page must not get the first).
func TestE2EHistoryUnknownParameters(t *testing.T) {
	apitest.Run(t, func(t *testing.T, s *apitest.Server) {
		id := s.Do(t, "POST", "/fhir/Patient", patient(uniq(), nil), nil).Want(t, http.StatusCreated).ID()
		for _, path := range []string{"/fhir/Patient/" + id + "/_history", "/fhir/Patient/_history", "/fhir/_history"} {
			r := s.Do(t, "GET", path+"?_offset=20", nil, nil).WantOutcome(t, http.StatusBadRequest)
			if !strings.Contains(string(r.Body), "_offset") {
				t.Errorf("%s: the refusal does not name the parameter: %s", path, r)
			}
			r = s.Do(t, "GET", path+"?_offset=20&zz%3Cscript%3E=1", nil, apitest.H{"Prefer": "handling=lenient", "Authorization": "Bearer " + s.Token()}).Want(t, http.StatusOK)
			if !strings.Contains(string(r.Body), "ignored: (unprintable), _offset") || strings.Contains(string(r.Body), "<script>") {
				t.Errorf("%s lenient: the Bundle does not name what it ignored, or echoes it: %.400s", path, r.Body)
			}
		}
		s.Do(t, "GET", "/fhir/Patient/_history?_count=5&_pretty=true", nil, nil).Want(t, http.StatusOK)
	})
}
