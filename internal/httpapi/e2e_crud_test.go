package httpapi_test

import (
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/phivault/phivault/internal/apitest"
)

func TestE2ECRUD(t *testing.T) {
	apitest.Run(t, func(t *testing.T, s *apitest.Server) {
		ident := uniq()
		body := patient(ident, map[string]any{"id": "client-chosen-" + ident, "gender": "male", "name": []any{map[string]any{"family": "Crud" + ident}}})
		var id string

		t.Run("create", func(t *testing.T) {
			r := s.Do(t, "POST", "/fhir/Patient", body, nil).Want(t, http.StatusCreated)
			id = r.ID()
			if id == "" || id == "client-chosen-"+ident {
				t.Fatalf("id: got %q, want a server-assigned id", id)
			}
			loc := r.Header.Get("Location")
			if want := s.URL + "/fhir/Patient/" + id + "/_history/1"; loc != want {
				t.Errorf("Location: got %q, want %q", loc, want)
			}
			if got := r.Header.Get("ETag"); got != `W/"1"` {
				t.Errorf("ETag: got %q", got)
			}
			lm, err := http.ParseTime(r.Header.Get("Last-Modified"))
			if err != nil || time.Since(lm) > time.Hour || time.Until(lm) > time.Minute {
				t.Errorf("Last-Modified: got %q (%v)", r.Header.Get("Last-Modified"), err)
			}
			m := meta(r.JSON)
			if m["versionId"] != "1" {
				t.Errorf("meta.versionId: got %v", m["versionId"])
			}
			lu, _ := m["lastUpdated"].(string)
			if _, err := time.Parse(time.RFC3339Nano, lu); err != nil {
				t.Errorf("meta.lastUpdated: got %q", lu)
			}
			s.Do(t, "GET", "/fhir/Patient/client-chosen-"+ident, nil, nil).WantOutcome(t, http.StatusNotFound)
		})
		if id == "" {
			t.FailNow()
		}
		t.Run("read", func(t *testing.T) {
			r := s.Do(t, "GET", "/fhir/Patient/"+id, nil, nil).Want(t, http.StatusOK)
			if r.ID() != id || r.JSON["gender"] != "male" || r.Header.Get("ETag") != `W/"1"` {
				t.Errorf("read: got %s ETag %q", r, r.Header.Get("ETag"))
			}
			s.Do(t, "GET", "/fhir/Patient/"+id, nil, apitest.H{"If-None-Match": `W/"1"`}).Want(t, http.StatusNotModified)
		})
		t.Run("vread", func(t *testing.T) {
			r := s.Do(t, "GET", "/fhir/Patient/"+id+"/_history/1", nil, nil).Want(t, http.StatusOK)
			if meta(r.JSON)["versionId"] != "1" {
				t.Errorf("vread: %s", r)
			}
			s.Do(t, "GET", "/fhir/Patient/"+id+"/_history/9", nil, nil).WantOutcome(t, http.StatusNotFound)
			s.Do(t, "GET", "/fhir/Patient/"+id+"/_history/x", nil, nil).WantOutcome(t, http.StatusBadRequest)
		})
		t.Run("update If-Match", func(t *testing.T) {
			upd := patient(ident, map[string]any{"id": id, "gender": "female", "name": []any{map[string]any{"family": "Crud" + ident}}})
			r := s.Do(t, "PUT", "/fhir/Patient/"+id, upd, apitest.H{"If-Match": `W/"1"`}).Want(t, http.StatusOK)
			if meta(r.JSON)["versionId"] != "2" || r.Header.Get("ETag") != `W/"2"` || r.JSON["gender"] != "female" {
				t.Errorf("update: got %s ETag %q", r, r.Header.Get("ETag"))
			}
			s.Do(t, "PUT", "/fhir/Patient/"+id, upd, apitest.H{"If-Match": `W/"1"`}).WantOutcome(t, http.StatusPreconditionFailed)
			s.Do(t, "PUT", "/fhir/Patient/"+id, upd, apitest.H{"If-Match": `garbage`}).WantOutcome(t, http.StatusBadRequest)
			r = s.Do(t, "GET", "/fhir/Patient/"+id, nil, nil).Want(t, http.StatusOK)
			if meta(r.JSON)["versionId"] != "2" {
				t.Errorf("a refused update changed the resource: %s", r)
			}
		})
		t.Run("update mismatches", func(t *testing.T) {
			cases := []struct {
				name string
				body map[string]any
			}{
				{"body id differs", patient(ident, map[string]any{"id": "other-" + ident})},
				{"body without id", patient(ident, nil)},
				{"type differs", map[string]any{"resourceType": "Practitioner", "id": id}},
			}
			for _, c := range cases {
				t.Run(c.name, func(t *testing.T) {
					s.Do(t, "PUT", "/fhir/Patient/"+id, c.body, nil).WantOutcome(t, http.StatusBadRequest)
				})
			}
		})
		t.Run("update as create", func(t *testing.T) {
			cid := "client-" + ident
			r := s.Do(t, "PUT", "/fhir/Patient/"+cid, patient(uniq(), map[string]any{"id": cid}), nil).Want(t, http.StatusCreated)
			if r.ID() != cid || r.Header.Get("Location") != s.URL+"/fhir/Patient/"+cid+"/_history/1" {
				t.Errorf("update-as-create: got %s Location %q", r, r.Header.Get("Location"))
			}
			s.Do(t, "GET", "/fhir/Patient/"+cid, nil, nil).Want(t, http.StatusOK)
			s.Do(t, "PUT", "/fhir/Patient/new-"+ident, patient(uniq(), map[string]any{"id": "new-" + ident}), apitest.H{"If-Match": `W/"1"`}).
				WantOutcome(t, http.StatusPreconditionFailed)
		})
		t.Run("delete", func(t *testing.T) {
			s.Do(t, "DELETE", "/fhir/Patient/"+id, nil, nil).Want(t, http.StatusNoContent)
			r := s.Do(t, "GET", "/fhir/Patient/"+id, nil, nil).WantOutcome(t, http.StatusGone)
			if r.Header.Get("ETag") != `W/"3"` {
				t.Errorf("read after delete: ETag %q, want W/\"3\"", r.Header.Get("ETag"))
			}
			s.Do(t, "GET", "/fhir/Patient/"+id+"/_history/1", nil, nil).Want(t, http.StatusOK)
			s.Do(t, "GET", "/fhir/Patient/"+id+"/_history/2", nil, nil).Want(t, http.StatusOK)
			s.Do(t, "GET", "/fhir/Patient/"+id+"/_history/3", nil, nil).WantOutcome(t, http.StatusGone)
			s.Do(t, "DELETE", "/fhir/Patient/"+id, nil, nil).Want(t, http.StatusNoContent) // idempotent
			s.Do(t, "DELETE", "/fhir/Patient/nosuch-"+ident, nil, nil).WantOutcome(t, http.StatusNotFound)
			r = s.Do(t, "GET", "/fhir/Patient?identifier="+testSystem+"|"+ident, nil, nil).Want(t, http.StatusOK)
			if len(r.Entries()) != 0 {
				t.Errorf("search finds the deleted patient: %v", r.IDs())
			}
		})
		t.Run("instance history", func(t *testing.T) {
			r := s.Do(t, "GET", "/fhir/Patient/"+id+"/_history", nil, nil).Want(t, http.StatusOK)
			if r.JSON["type"] != "history" {
				t.Errorf("type: %v", r.JSON["type"])
			}
			var methods, etags []string
			for _, e := range r.Entries() {
				methods = append(methods, e["request"].(map[string]any)["method"].(string))
				etags = append(etags, e["response"].(map[string]any)["etag"].(string))
			}
			if strings.Join(methods, ",") != "DELETE,PUT,POST" || strings.Join(etags, ",") != `W/"3",W/"2",W/"1"` {
				t.Errorf("history: methods %v etags %v, want newest first DELETE,PUT,POST", methods, etags)
			}
			s.Do(t, "GET", "/fhir/Patient/nosuch-"+ident+"/_history", nil, nil).WantOutcome(t, http.StatusNotFound)
		})
		t.Run("type history paging", func(t *testing.T) {
			typ := "Basic"
			var want []string
			for range 5 {
				bid := s.Create(t, map[string]any{"resourceType": typ, "code": map[string]any{"text": "history " + ident}})
				want = append(want, typ+"/"+bid)
			}
			pages := s.SearchAll(t, "/fhir/"+typ+"/_history?_count=2")
			if len(pages) != 3 {
				t.Errorf("pages: got %d, want 3 for 5 versions at _count=2", len(pages))
			}
			var got []string
			for _, p := range pages {
				if n := len(p.Entries()); n > 2 {
					t.Errorf("a page of _count=2 has %d entries", n)
				}
				for _, e := range p.Entries() {
					got = append(got, strings.TrimPrefix(e["fullUrl"].(string), s.URL+"/fhir/"))
				}
			}
			// The newest first: the last one created comes first.
			if len(got) > 0 && got[0] != want[len(want)-1] {
				t.Errorf("type history starts with %s, want the newest %s", got[0], want[len(want)-1])
			}
			sameSet(t, "type history", got, want)
			r := s.Do(t, "GET", "/fhir/_history?_count=1", nil, nil).Want(t, http.StatusOK)
			if len(r.Entries()) != 1 || r.Link("next") == "" {
				t.Errorf("system history _count=1: %d entries, next %q", len(r.Entries()), r.Link("next"))
			}
			s.Do(t, "GET", "/fhir/Basic/_history?_count=0", nil, nil).WantOutcome(t, http.StatusBadRequest)
			s.Do(t, "GET", "/fhir/Basic/_history?_page=forged", nil, nil).WantOutcome(t, http.StatusBadRequest)
		})
		t.Run("conditional create", func(t *testing.T) {
			ci := uniq()
			cond := apitest.H{"If-None-Exist": "identifier=" + testSystem + "|" + ci}
			r := s.Do(t, "POST", "/fhir/Patient", patient(ci, nil), cond).Want(t, http.StatusCreated)
			first := r.ID()
			r = s.Do(t, "POST", "/fhir/Patient", patient(ci, nil), cond).Want(t, http.StatusOK)
			if r.ID() != first {
				t.Errorf("conditional create with one match returned %q, want %q", r.ID(), first)
			}
			s.Create(t, patient(ci, nil))
			s.Do(t, "POST", "/fhir/Patient", patient(ci, nil), cond).WantOutcome(t, http.StatusPreconditionFailed)
			r = s.Do(t, "GET", "/fhir/Patient?identifier="+testSystem+"|"+ci+"&_total=accurate", nil, nil).Want(t, http.StatusOK)
			if n, _ := r.Total(); n != 2 {
				t.Errorf("after conditional creates, %d patients with the identifier, want 2", n)
			}
			s.Do(t, "POST", "/fhir/Patient", patient(ci, nil), apitest.H{"If-None-Exist": "nosuchparam=1"}).WantOutcome(t, http.StatusBadRequest)
		})
		t.Run("unknown", func(t *testing.T) {
			cases := []struct {
				name, method, path string
				want               int
			}{
				{"unknown id", "GET", "/fhir/Patient/nosuch-" + ident, http.StatusNotFound},
				{"unknown type", "GET", "/fhir/Bot/1", http.StatusNotFound},
				{"lower-case type", "GET", "/fhir/patient/1", http.StatusNotFound},
				{"invalid id", "GET", "/fhir/Patient/a_b", http.StatusBadRequest},
				{"unknown operation", "GET", "/fhir/Patient/1/$nosuch", http.StatusNotFound},
				{"PATCH without a patch body", "PATCH", "/fhir/Patient/1", http.StatusUnsupportedMediaType},
				{"GET the base without _type", "GET", "/fhir", http.StatusBadRequest},
				{"DELETE the base", "DELETE", "/fhir/", http.StatusNotFound},
			}
			for _, c := range cases {
				t.Run(c.name, func(t *testing.T) {
					s.Do(t, c.method, c.path, nil, nil).WantOutcome(t, c.want)
				})
			}
		})
	})
}

var historyLocation = regexp.MustCompile(`^https://127\.0\.0\.1:\d+/fhir/Patient/[A-Za-z0-9.-]+/_history/1$`)

func TestE2EPreferAndFormats(t *testing.T) {
	apitest.Run(t, func(t *testing.T, s *apitest.Server) {
		t.Run("Prefer", func(t *testing.T) {
			cases := []struct {
				prefer   string
				wantType string // "" means an empty body
			}{
				{"return=minimal", ""},
				{"return=representation", "Patient"},
				{"return=OperationOutcome", "OperationOutcome"},
				{"", "Patient"},
			}
			for _, c := range cases {
				t.Run(c.prefer, func(t *testing.T) {
					h := apitest.H{}
					if c.prefer != "" {
						h["Prefer"] = c.prefer
					}
					r := s.Do(t, "POST", "/fhir/Patient", patient(uniq(), nil), h).Want(t, http.StatusCreated)
					if !historyLocation.MatchString(r.Header.Get("Location")) || r.Header.Get("ETag") != `W/"1"` {
						t.Errorf("create headers: Location %q ETag %q", r.Header.Get("Location"), r.Header.Get("ETag"))
					}
					checkPreferBody(t, r, c.wantType)
					id := strings.Split(strings.TrimPrefix(r.Header.Get("Location"), s.URL+"/fhir/Patient/"), "/")[0]
					r = s.Do(t, "PUT", "/fhir/Patient/"+id, patient(uniq(), map[string]any{"id": id}), h).Want(t, http.StatusOK)
					if r.Header.Get("ETag") != `W/"2"` {
						t.Errorf("update ETag %q", r.Header.Get("ETag"))
					}
					checkPreferBody(t, r, c.wantType)
				})
			}
		})
		t.Run("formats", func(t *testing.T) {
			pid := s.Create(t, patient(uniq(), nil))
			cases := []struct {
				name, method, path string
				body               any
				headers            apitest.H
				want               int
				wantType           string
			}{
				{"fhir+json body", "POST", "/fhir/Patient", patient(uniq(), nil), apitest.H{"Content-Type": "application/fhir+json"}, 201, "application/fhir+json"},
				{"json body", "POST", "/fhir/Patient", patient(uniq(), nil), apitest.H{"Content-Type": "application/json"}, 201, "application/fhir+json"},
				{"json body with charset", "POST", "/fhir/Patient", patient(uniq(), nil), apitest.H{"Content-Type": "application/json; charset=utf-8"}, 201, "application/fhir+json"},
				{"Accept json", "GET", "/fhir/Patient/" + pid, nil, apitest.H{"Accept": "application/json"}, 200, "application/json"},
				{"Accept fhir+json", "GET", "/fhir/Patient/" + pid, nil, apitest.H{"Accept": "application/fhir+json"}, 200, "application/fhir+json"},
				{"Accept any", "GET", "/fhir/Patient/" + pid, nil, apitest.H{"Accept": "*/*"}, 200, "application/fhir+json"},
				{"_format=json", "GET", "/fhir/Patient/" + pid + "?_format=json", nil, nil, 200, "application/fhir+json"},
				{"_format=json on search", "GET", "/fhir/Patient?_id=" + pid + "&_format=json", nil, nil, 200, "application/fhir+json"},
				{"_format=application/json", "GET", "/fhir/Patient/" + pid + "?_format=application/json", nil, nil, 200, "application/json"},
				{"_format=xml", "GET", "/fhir/Patient/" + pid + "?_format=xml", nil, nil, 406, ""},
				{"_format=xml on metadata", "GET", "/fhir/metadata?_format=xml", nil, nil, 406, ""},
				{"Accept xml", "GET", "/fhir/Patient/" + pid, nil, apitest.H{"Accept": "application/fhir+xml"}, 406, ""},
				{"text/plain body", "POST", "/fhir/Patient", patient(uniq(), nil), apitest.H{"Content-Type": "text/plain"}, 415, ""},
				{"xml body", "PUT", "/fhir/Patient/" + pid, "<Patient/>", apitest.H{"Content-Type": "application/fhir+xml"}, 415, ""},
				{"form body outside _search", "POST", "/fhir/Patient", "gender=male", apitest.H{"Content-Type": "application/x-www-form-urlencoded"}, 415, ""},
			}
			for _, c := range cases {
				t.Run(c.name, func(t *testing.T) {
					r := s.Do(t, c.method, c.path, c.body, c.headers)
					if c.wantType == "" {
						r.WantOutcome(t, c.want)
						return
					}
					r.Want(t, c.want)
					if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, c.wantType+";") && ct != c.wantType {
						t.Errorf("Content-Type: got %q, want %s", ct, c.wantType)
					}
				})
			}
		})
	})
}

func checkPreferBody(t *testing.T, r *apitest.Response, wantType string) {
	t.Helper()
	if wantType == "" {
		if len(r.Body) != 0 {
			t.Errorf("return=minimal: body %q, want none", r.Body)
		}
		return
	}
	if r.JSON["resourceType"] != wantType {
		t.Errorf("body: got %s, want a %s", r, wantType)
	}
}
