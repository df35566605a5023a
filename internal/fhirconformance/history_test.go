package fhirconformance_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/phivault/phivault/internal/apitest"
)

// checkHistory: R4 http.html#history.
func checkHistory(t *testing.T, s *apitest.Server) {
	sys := newSystem()
	// Four versions of one Patient, a few milliseconds apart:
	// create (1), update (2), update (3), delete (4).
	id := s.Create(t, patientRes(sys, "h1", nil))
	var stamps []time.Time
	r := s.Do(t, "GET", "/fhir/Patient/"+id, nil, nil).Want(t, http.StatusOK)
	stamps = append(stamps, lastUpdated(t, r.JSON))
	for _, g := range []string{"female", "male"} {
		time.Sleep(30 * time.Millisecond)
		r := s.Do(t, "PUT", "/fhir/Patient/"+id, patientRes(sys, "h1", map[string]any{"id": id, "gender": g}), apitest.H{"Prefer": "return=representation"}).Want(t, http.StatusOK)
		stamps = append(stamps, lastUpdated(t, r.JSON))
	}
	time.Sleep(30 * time.Millisecond)
	s.Do(t, "DELETE", "/fhir/Patient/"+id, nil, nil).Want(t, http.StatusOK, http.StatusNoContent)

	versions := func(r *apitest.Response) []string {
		var out []string
		for _, e := range r.Entries() {
			etag, _ := entryResponse(e)["etag"].(string)
			out = append(out, etag)
		}
		return out
	}

	t.Run("instance history", func(t *testing.T) {
		// "The return content is a Bundle with type set to history
		// containing the specified version history, sorted with oldest
		// versions last, and including deleted resources"; each entry has
		// a request (method, url) and a response (status); "If the
		// entry.request.method is a PUT or a POST, the entry SHALL contain
		// a resource"; a delete has none.
		r := s.Do(t, "GET", "/fhir/Patient/"+id+"/_history", nil, nil).Want(t, http.StatusOK)
		if r.JSON["resourceType"] != "Bundle" || r.JSON["type"] != "history" {
			t.Fatalf("got %s, want a history Bundle", r)
		}
		var methods []string
		for i, e := range r.Entries() {
			req, resp := entryRequest(e), entryResponse(e)
			m, _ := req["method"].(string)
			methods = append(methods, m)
			if u, _ := req["url"].(string); !strings.Contains(u, "Patient") {
				t.Errorf("entry %d: request.url %q", i, u)
			}
			if st, _ := resp["status"].(string); st == "" {
				t.Errorf("entry %d: no response.status", i)
			}
			res, _ := e["resource"].(map[string]any)
			switch m {
			case "POST", "PUT":
				if res == nil || res["id"] != id {
					t.Errorf("entry %d (%s): resource %v", i, m, res)
				}
			case "DELETE":
				if res != nil {
					t.Errorf("entry %d: a DELETE entry carries a resource", i)
				}
			}
		}
		if got := strings.Join(methods, ","); got != "DELETE,PUT,PUT,POST" {
			t.Errorf("methods: got %s, want DELETE,PUT,PUT,POST (newest first)", got)
		}
		if got := strings.Join(versions(r), ","); got != `W/"4",W/"3",W/"2",W/"1"` {
			t.Errorf("versions: got %s, want newest first", got)
		}
		s.Do(t, "GET", "/fhir/Patient/unknown-"+newKey()+"/_history", nil, nil).Want(t, http.StatusNotFound)
	})
	t.Run("_count pages with working next links", func(t *testing.T) {
		// "_count: The maximum number of search results on a page"; paging
		// as for search (http.html#paging, search.html#count).
		pages := s.SearchAll(t, "/fhir/Patient/"+id+"/_history?_count=1")
		var all []string
		for _, p := range pages {
			if p.JSON["type"] != "history" || len(p.Entries()) > 1 {
				t.Errorf("page: type %v, %d entries", p.JSON["type"], len(p.Entries()))
			}
			all = append(all, versions(p)...)
		}
		if got := strings.Join(all, ","); got != `W/"4",W/"3",W/"2",W/"1"` {
			t.Errorf("pages of _count=1: got %s", got)
		}
	})
	t.Run("_since", func(t *testing.T) {
		// "_since: Only include resource versions that were created at or
		// after the given instant in time".
		since := stamps[1].UTC().Format(time.RFC3339Nano)
		r := s.Do(t, "GET", "/fhir/Patient/"+id+"/_history?"+query("_since", since), nil, nil).Want(t, http.StatusOK)
		if got := strings.Join(versions(r), ","); got != `W/"4",W/"3",W/"2"` {
			t.Errorf("_since=%s (version 2's lastUpdated): got %s, want versions 4, 3, 2", since, got)
		}
		future := time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
		r = s.Do(t, "GET", "/fhir/Patient/"+id+"/_history?"+query("_since", future), nil, nil).Want(t, http.StatusOK)
		if n := len(r.Entries()); n != 0 {
			t.Errorf("_since in the future: %d entries", n)
		}
	})
	t.Run("_at", func(t *testing.T) {
		// "_at: Only include resource versions that were current at some
		// point during the time period specified in the date time value".
		mid := stamps[1].Add(stamps[2].Sub(stamps[1]) / 2).UTC().Format("2006-01-02T15:04:05.000Z07:00")
		r := s.Do(t, "GET", "/fhir/Patient/"+id+"/_history?"+query("_at", mid), nil, nil).Want(t, http.StatusOK)
		if got := strings.Join(versions(r), ","); got != `W/"2"` {
			t.Errorf("_at=%s (between versions 2 and 3): got %s, want version 2", mid, got)
		}
	})
	t.Run("type and system history", func(t *testing.T) {
		// "GET [base]/[type]/_history" and "GET [base]/_history": history
		// Bundles, newest first, over every resource of the type / system.
		oid := s.Create(t, observationRes(s.Create(t, patientRes(sys, "h2", nil)), nil))
		for _, path := range []string{"/fhir/Observation/_history?_count=5", "/fhir/_history?_count=5"} {
			r := s.Do(t, "GET", path, nil, nil).Want(t, http.StatusOK)
			if r.JSON["type"] != "history" {
				t.Fatalf("%s: got %s", path, r)
			}
			es := r.Entries()
			if len(es) == 0 || len(es) > 5 {
				t.Fatalf("%s: %d entries", path, len(es))
			}
			res, _ := es[0]["resource"].(map[string]any)
			if res == nil || apitest.Ref(res) != "Observation/"+oid {
				t.Errorf("%s: first entry %v, want the newest change Observation/%s", path, es[0], oid)
			}
			var prev time.Time
			for i, e := range es {
				lm, _ := entryResponse(e)["lastModified"].(string)
				if lm == "" {
					if res, ok := e["resource"].(map[string]any); ok {
						lm, _ = metaOf(res)["lastUpdated"].(string)
					}
				}
				at, err := time.Parse(time.RFC3339Nano, lm)
				if err != nil {
					continue
				}
				if i > 0 && at.After(prev) {
					t.Errorf("%s: entry %d (%v) is newer than entry %d (%v)", path, i, at, i-1, prev)
				}
				prev = at
			}
		}
	})
}
