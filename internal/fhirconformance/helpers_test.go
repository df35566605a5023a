package fhirconformance_test

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/phivault/phivault/internal/apitest"
)

// newKey returns a fresh value, so checks sharing one server never see
// each other's data.
func newKey() string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// newSystem returns an identifier system of its own for one check.
func newSystem() string { return "urn:conformance:" + newKey() }

func patientRes(system, value string, more map[string]any) map[string]any {
	p := map[string]any{
		"resourceType": "Patient",
		"identifier":   []any{map[string]any{"system": system, "value": value}},
	}
	for k, v := range more {
		p[k] = v
	}
	return p
}

func observationRes(pid string, more map[string]any) map[string]any {
	o := map[string]any{
		"resourceType": "Observation",
		"status":       "final",
		"code":         map[string]any{"coding": []any{map[string]any{"system": "http://loinc.org", "code": "8302-2"}}},
		"subject":      map[string]any{"reference": "Patient/" + pid},
	}
	for k, v := range more {
		o[k] = v
	}
	return o
}

func encounterRes(pid string, more map[string]any) map[string]any {
	e := map[string]any{
		"resourceType": "Encounter",
		"status":       "finished",
		"class":        map[string]any{"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
		"subject":      map[string]any{"reference": "Patient/" + pid},
	}
	for k, v := range more {
		e[k] = v
	}
	return e
}

func ref(s string) map[string]any { return map[string]any{"reference": s} }

func metaOf(res map[string]any) map[string]any {
	m, _ := res["meta"].(map[string]any)
	return m
}

func versionOf(res map[string]any) string {
	v, _ := metaOf(res)["versionId"].(string)
	return v
}

func lastUpdated(t *testing.T, res map[string]any) time.Time {
	t.Helper()
	s, _ := metaOf(res)["lastUpdated"].(string)
	lu, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		t.Fatalf("meta.lastUpdated: got %q, want an instant (%v)", s, err)
	}
	return lu
}

// wantVersionHeaders checks R4 http.html#versioning: the version id is
// the weak ETag W/"vid" and meta.lastUpdated the Last-Modified header.
func wantVersionHeaders(t *testing.T, r *apitest.Response, vid string) {
	t.Helper()
	if got := r.Header.Get("ETag"); got != `W/"`+vid+`"` {
		t.Errorf("ETag: got %q, want W/%q", got, vid)
	}
	lm, err := http.ParseTime(r.Header.Get("Last-Modified"))
	if err != nil {
		t.Errorf("Last-Modified: got %q (%v)", r.Header.Get("Last-Modified"), err)
		return
	}
	if r.JSON != nil && r.JSON["meta"] != nil {
		lu := lastUpdated(t, r.JSON)
		if d := lu.Sub(lm); d < 0 || d >= time.Second {
			t.Errorf("Last-Modified %v is not meta.lastUpdated %v (to the second)", lm, lu)
		}
	}
}

// wantResourceMeta checks R4 resource.html#metadata as a server fills
// it: id, meta.versionId and meta.lastUpdated present.
func wantResourceMeta(t *testing.T, res map[string]any, typ, id, vid string) {
	t.Helper()
	if res["resourceType"] != typ || res["id"] != id {
		t.Errorf("resource: got %v/%v, want %s/%s", res["resourceType"], res["id"], typ, id)
	}
	if got := versionOf(res); got != vid {
		t.Errorf("meta.versionId: got %q, want %q", got, vid)
	}
	lastUpdated(t, res)
}

// query encodes search parameters in order (values may repeat).
func query(kv ...string) string {
	var b strings.Builder
	for i := 0; i+1 < len(kv); i += 2 {
		if b.Len() > 0 {
			b.WriteByte('&')
		}
		b.WriteString(url.QueryEscape(kv[i]))
		b.WriteByte('=')
		b.WriteString(url.QueryEscape(kv[i+1]))
	}
	return b.String()
}

// search GETs path and requires a searchset Bundle.
func search(t *testing.T, s *apitest.Server, path string) *apitest.Response {
	t.Helper()
	r := s.Do(t, "GET", path, nil, nil).Want(t, http.StatusOK)
	if r.JSON["resourceType"] != "Bundle" || r.JSON["type"] != "searchset" {
		t.Fatalf("GET %s: got %s, want a searchset Bundle", path, r)
	}
	return r
}

// matches returns "Type/id" of the entries with search.mode match.
func matches(r *apitest.Response) []string {
	return byMode(r, "match")
}

func byMode(r *apitest.Response, mode string) []string {
	var out []string
	for _, e := range r.Entries() {
		sm, _ := e["search"].(map[string]any)
		res, _ := e["resource"].(map[string]any)
		if sm["mode"] == mode && res != nil {
			out = append(out, apitest.Ref(res))
		}
	}
	return out
}

// allMatches follows next links from path and returns every match.
func allMatches(t *testing.T, s *apitest.Server, path string) []string {
	t.Helper()
	var out []string
	for _, p := range s.SearchAll(t, path) {
		out = append(out, matches(p)...)
	}
	return out
}

// sameSet fails unless got and want hold the same strings, each once.
func sameSet(t *testing.T, what string, got, want []string) {
	t.Helper()
	g, w := slices.Clone(got), slices.Clone(want)
	slices.Sort(g)
	slices.Sort(w)
	if len(slices.Compact(slices.Clone(g))) != len(g) {
		t.Errorf("%s: duplicates in %v", what, got)
	}
	if !slices.Equal(g, w) {
		t.Errorf("%s: got %v, want %v", what, g, w)
	}
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func entryRequest(e map[string]any) map[string]any {
	m, _ := e["request"].(map[string]any)
	return m
}

func entryResponse(e map[string]any) map[string]any {
	m, _ := e["response"].(map[string]any)
	return m
}

// wantOutcomeBody checks R4 http.html#return: a failure SHOULD carry an
// OperationOutcome.
func wantOutcomeBody(t *testing.T, r *apitest.Response) {
	t.Helper()
	if r.JSON["resourceType"] != "OperationOutcome" {
		t.Errorf("status %d body: got %s, want an OperationOutcome", r.Status, r)
	}
}

// hasTag reports whether res carries meta.tag system|code.
func hasTag(res map[string]any, system, code string) bool {
	tags, _ := metaOf(res)["tag"].([]any)
	for _, tg := range tags {
		m, _ := tg.(map[string]any)
		if m["system"] == system && m["code"] == code {
			return true
		}
	}
	return false
}
