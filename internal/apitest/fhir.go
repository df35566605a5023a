package apitest

import (
	"encoding/json"
	"net/http"
	"strconv"
	"testing"
)

// Run runs fn once per driver as the subtests "sqlite" and "postgres",
// each with a server of its own that fn may share across its subtests.
func Run(t *testing.T, fn func(t *testing.T, s *Server)) {
	t.Helper()
	for _, d := range Drivers {
		t.Run(d, func(t *testing.T) {
			fn(t, Start(t, d))
		})
	}
}

// Create POSTs res to /fhir/<resourceType>, requires 201 and returns the
// new id.
func (s *Server) Create(t testing.TB, res map[string]any) string {
	t.Helper()
	typ, _ := res["resourceType"].(string)
	r := s.Do(t, http.MethodPost, "/fhir/"+typ, res, nil).Want(t, http.StatusCreated)
	if r.ID() == "" {
		t.Fatalf("create %s: no id in %s", typ, r)
	}
	return r.ID()
}

// Entries returns Bundle.entry of the body.
func (r *Response) Entries() []map[string]any {
	raw, _ := r.JSON["entry"].([]any)
	out := make([]map[string]any, 0, len(raw))
	for _, e := range raw {
		if m, ok := e.(map[string]any); ok {
			out = append(out, m)
		}
	}
	return out
}

// Resources returns the entry resources of a Bundle body.
func (r *Response) Resources() []map[string]any {
	var out []map[string]any
	for _, e := range r.Entries() {
		if m, ok := e["resource"].(map[string]any); ok {
			out = append(out, m)
		}
	}
	return out
}

// IDs returns "Type/id" of each entry resource, in order.
func (r *Response) IDs() []string {
	var out []string
	for _, m := range r.Resources() {
		out = append(out, Ref(m))
	}
	return out
}

// Ref returns "Type/id" of a resource.
func Ref(res map[string]any) string {
	typ, _ := res["resourceType"].(string)
	id, _ := res["id"].(string)
	return typ + "/" + id
}

// Link returns the URL of the Bundle link with relation rel, or "".
func (r *Response) Link(rel string) string {
	links, _ := r.JSON["link"].([]any)
	for _, l := range links {
		m, _ := l.(map[string]any)
		if m["relation"] == rel {
			u, _ := m["url"].(string)
			return u
		}
	}
	return ""
}

// Links returns the URLs of every Bundle link.
func (r *Response) Links() []string {
	var out []string
	links, _ := r.JSON["link"].([]any)
	for _, l := range links {
		m, _ := l.(map[string]any)
		if u, ok := m["url"].(string); ok {
			out = append(out, u)
		}
	}
	return out
}

// Total returns Bundle.total and whether it is present.
func (r *Response) Total() (int, bool) {
	n, ok := r.JSON["total"].(json.Number)
	if !ok {
		return 0, false
	}
	v, err := strconv.Atoi(n.String())
	return v, err == nil
}

// maxPages bounds SearchAll against a server whose next links never end.
const maxPages = 1000

// SearchAll GETs path, which must answer 200, follows every next link
// and returns the pages in order.
func (s *Server) SearchAll(t testing.TB, path string) []*Response {
	t.Helper()
	var pages []*Response
	for u := path; u != ""; {
		if len(pages) == maxPages {
			t.Fatalf("more than %d pages from %s", maxPages, path)
		}
		r := s.Do(t, http.MethodGet, u, nil, nil).Want(t, http.StatusOK)
		pages = append(pages, r)
		u = r.Link("next")
	}
	return pages
}
