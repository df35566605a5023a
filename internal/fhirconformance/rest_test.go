package fhirconformance_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/phivault/phivault/internal/apitest"
)

// checkRead: R4 http.html#read, #vread, #cread.
func checkRead(t *testing.T, s *apitest.Server) {
	sys := newSystem()
	id := s.Create(t, patientRes(sys, "r1", map[string]any{"gender": "female"}))
	upd := patientRes(sys, "r1", map[string]any{"id": id, "gender": "male"})
	s.Do(t, "PUT", "/fhir/Patient/"+id, upd, nil).Want(t, http.StatusOK)

	t.Run("read answers 200 with ETag, Last-Modified, id and meta", func(t *testing.T) {
		// http.html#read: "GET [base]/[type]/[id]"; #versioning: ETag
		// W/"vid" and Last-Modified from meta.lastUpdated.
		r := s.Do(t, "GET", "/fhir/Patient/"+id, nil, nil).Want(t, http.StatusOK)
		wantResourceMeta(t, r.JSON, "Patient", id, "2")
		wantVersionHeaders(t, r, "2")
		if r.JSON["gender"] != "male" {
			t.Errorf("read returns an old version: %s", r)
		}
	})
	t.Run("read of an unknown id is 404", func(t *testing.T) {
		// http.html#read: "A GET for an unknown resource returns 404 Not
		// Found"; #return: failures carry an OperationOutcome.
		r := s.Do(t, "GET", "/fhir/Patient/unknown-"+newKey(), nil, nil).Want(t, http.StatusNotFound)
		wantOutcomeBody(t, r)
	})
	t.Run("read of an unsupported type is 404", func(t *testing.T) {
		// http.html#read (and #search): a type the server does not
		// support answers 404.
		s.Do(t, "GET", "/fhir/NoSuchType/1", nil, nil).Want(t, http.StatusNotFound)
	})
	t.Run("vread answers each version", func(t *testing.T) {
		// http.html#vread: "GET [base]/[type]/[id]/_history/[vid]",
		// with the version's ETag.
		for vid, gender := range map[string]string{"1": "female", "2": "male"} {
			r := s.Do(t, "GET", "/fhir/Patient/"+id+"/_history/"+vid, nil, nil).Want(t, http.StatusOK)
			wantResourceMeta(t, r.JSON, "Patient", id, vid)
			wantVersionHeaders(t, r, vid)
			if r.JSON["gender"] != gender {
				t.Errorf("vread %s: gender %v, want %s", vid, r.JSON["gender"], gender)
			}
		}
		r := s.Do(t, "GET", "/fhir/Patient/"+id+"/_history/99", nil, nil).Want(t, http.StatusNotFound)
		wantOutcomeBody(t, r)
	})
	t.Run("read and vread of a deleted resource are 410", func(t *testing.T) {
		// http.html#read: "A GET for a deleted resource returns a 410
		// Gone status code"; #vread: "If the version referred to is
		// actually one where the resource was deleted, the server should
		// return a 410 status code".
		did := s.Create(t, patientRes(sys, "r2", nil))
		s.Do(t, "DELETE", "/fhir/Patient/"+did, nil, nil).Want(t, http.StatusOK, http.StatusNoContent)
		r := s.Do(t, "GET", "/fhir/Patient/"+did, nil, nil).Want(t, http.StatusGone)
		wantOutcomeBody(t, r)
		s.Do(t, "GET", "/fhir/Patient/"+did+"/_history/2", nil, nil).Want(t, http.StatusGone)
		s.Do(t, "GET", "/fhir/Patient/"+did+"/_history/1", nil, nil).Want(t, http.StatusOK)
	})
	t.Run("conditional read", func(t *testing.T) {
		// http.html#cread: with If-None-Match or If-Modified-Since a
		// server returns 304 when the content is unchanged, or the full
		// content. phivault claims no conditionalRead in its
		// CapabilityStatement beyond what works here (see checkCapabilities).
		r := s.Do(t, "GET", "/fhir/Patient/"+id, nil, apitest.H{"If-None-Match": `W/"2"`})
		if r.Status != http.StatusNotModified || len(r.Body) != 0 {
			t.Errorf("If-None-Match of the current version: got %s, want 304 without a body", r)
		}
		r = s.Do(t, "GET", "/fhir/Patient/"+id, nil, apitest.H{"If-None-Match": `W/"1"`}).Want(t, http.StatusOK)
		if versionOf(r.JSON) != "2" {
			t.Errorf("If-None-Match of an old version: got %s", r)
		}
		future := time.Now().Add(time.Hour).UTC().Format(http.TimeFormat)
		r = s.Do(t, "GET", "/fhir/Patient/"+id, nil, apitest.H{"If-Modified-Since": future})
		if r.Status != http.StatusNotModified && (r.Status != http.StatusOK || versionOf(r.JSON) != "2") {
			t.Errorf("If-Modified-Since after the last change: got %s, want 304 or the full content", r)
		}
		past := time.Now().Add(-24 * time.Hour).UTC().Format(http.TimeFormat)
		r = s.Do(t, "GET", "/fhir/Patient/"+id, nil, apitest.H{"If-Modified-Since": past}).Want(t, http.StatusOK)
		if versionOf(r.JSON) != "2" {
			t.Errorf("If-Modified-Since before the last change: got %s", r)
		}
	})
}

// checkCreate: R4 http.html#create, #ccreate, #return (Prefer).
func checkCreate(t *testing.T, s *apitest.Server) {
	sys := newSystem()
	t.Run("201 with Location, ETag, Last-Modified; body id and meta ignored", func(t *testing.T) {
		// http.html#create: "The server returns a 201 Created HTTP status
		// code, and SHALL also return a Location header which contains
		// the new Logical Id and Version Id of the created resource
		// version: Location: [base]/[type]/[id]/_history/[vid]"; "If an
		// id is provided, the server SHALL ignore it"; "If the request
		// body includes a meta, the server SHALL ignore the existing
		// versionId and lastUpdated values"; "servers SHOULD return an
		// ETag header ... and a Last-Modified header".
		body := patientRes(sys, "c1", map[string]any{
			"id":   "client-" + newKey(),
			"meta": map[string]any{"versionId": "42", "lastUpdated": "2001-01-01T00:00:00Z"},
		})
		r := s.Do(t, "POST", "/fhir/Patient", body, apitest.H{"Prefer": "return=representation"}).Want(t, http.StatusCreated)
		id := r.ID()
		if id == "" || id == body["id"] {
			t.Fatalf("id: got %q, want a server-assigned id (not the body's %v)", id, body["id"])
		}
		if loc, want := r.Header.Get("Location"), s.URL+"/fhir/Patient/"+id+"/_history/1"; loc != want {
			t.Errorf("Location: got %q, want %q", loc, want)
		}
		wantResourceMeta(t, r.JSON, "Patient", id, "1")
		wantVersionHeaders(t, r, "1")
		if lu := lastUpdated(t, r.JSON); time.Since(lu) > time.Hour {
			t.Errorf("meta.lastUpdated %v was taken from the body", lu)
		}
		s.Do(t, "GET", "/fhir/Patient/"+body["id"].(string), nil, nil).Want(t, http.StatusNotFound)
	})
	t.Run("Prefer return=minimal, representation, OperationOutcome", func(t *testing.T) {
		// http.html#return: "Prefer: return=minimal" asks for no body,
		// "return=representation" for the full resource,
		// "return=OperationOutcome" for an OperationOutcome; "Servers
		// SHOULD honor this header".
		r := s.Do(t, "POST", "/fhir/Patient", patientRes(sys, "c2", nil), apitest.H{"Prefer": "return=minimal"}).Want(t, http.StatusCreated)
		if len(r.Body) != 0 {
			t.Errorf("return=minimal: got a body %s", r)
		}
		if r.Header.Get("Location") == "" || r.Header.Get("ETag") != `W/"1"` {
			t.Errorf("return=minimal: Location %q ETag %q", r.Header.Get("Location"), r.Header.Get("ETag"))
		}
		r = s.Do(t, "POST", "/fhir/Patient", patientRes(sys, "c3", nil), apitest.H{"Prefer": "return=representation"}).Want(t, http.StatusCreated)
		if r.JSON["resourceType"] != "Patient" || r.ID() == "" {
			t.Errorf("return=representation: got %s", r)
		}
		r = s.Do(t, "POST", "/fhir/Patient", patientRes(sys, "c4", nil), apitest.H{"Prefer": "return=OperationOutcome"}).Want(t, http.StatusCreated)
		if r.JSON["resourceType"] != "OperationOutcome" {
			t.Errorf("return=OperationOutcome: got %s", r)
		}
		if r.Header.Get("Location") == "" {
			t.Error("return=OperationOutcome: no Location")
		}
	})
	t.Run("conditional create If-None-Exist", func(t *testing.T) {
		// http.html#ccreate: no matches: create (201); one match: "The
		// server ignores the post and returns 200 OK"; multiple matches:
		// "412 Precondition Failed".
		cond := apitest.H{"If-None-Exist": query("identifier", sys+"|cc")}
		r := s.Do(t, "POST", "/fhir/Patient", patientRes(sys, "cc", nil), cond).Want(t, http.StatusCreated)
		first := r.ID()
		r = s.Do(t, "POST", "/fhir/Patient", patientRes(sys, "cc", map[string]any{"gender": "other"}), cond).Want(t, http.StatusOK)
		if r.JSON != nil && r.ID() != first {
			t.Errorf("one match: returned %q, want the existing %q", r.ID(), first)
		}
		g := s.Do(t, "GET", "/fhir/Patient/"+first, nil, nil).Want(t, http.StatusOK)
		if versionOf(g.JSON) != "1" || g.JSON["gender"] != nil {
			t.Errorf("one match: the existing resource changed: %s", g)
		}
		if n := len(allMatches(t, s, "/fhir/Patient?"+query("identifier", sys+"|cc"))); n != 1 {
			t.Errorf("one match: %d resources with the identifier, want 1", n)
		}
		s.Create(t, patientRes(sys, "cc", nil))
		r = s.Do(t, "POST", "/fhir/Patient", patientRes(sys, "cc", nil), cond).Want(t, http.StatusPreconditionFailed)
		wantOutcomeBody(t, r)
		if n := len(allMatches(t, s, "/fhir/Patient?"+query("identifier", sys+"|cc"))); n != 2 {
			t.Errorf("multiple matches: %d resources with the identifier, want 2 (nothing created)", n)
		}
	})
	t.Run("a body of another type is refused", func(t *testing.T) {
		// http.html#create (the body is a resource of [type]) and
		// #Status-Codes: 400 "resource could not be parsed or failed
		// basic FHIR validation rules", 422 for business rules.
		r := s.Do(t, "POST", "/fhir/Patient", encounterRes("x", nil), nil).Want(t, http.StatusBadRequest, http.StatusUnprocessableEntity)
		wantOutcomeBody(t, r)
		r = s.Do(t, "POST", "/fhir/Patient", `{"resourceType":"Patient",`, nil).Want(t, http.StatusBadRequest)
		wantOutcomeBody(t, r)
	})
}

// checkUpdate: R4 http.html#update, #concurrency, #delete (update
// after delete).
func checkUpdate(t *testing.T, s *apitest.Server) {
	sys := newSystem()
	id := s.Create(t, patientRes(sys, "u1", nil))
	t.Run("200 with the next version; body meta ignored", func(t *testing.T) {
		// http.html#update: "200 OK HTTP status code if the resource was
		// updated"; "If the request body includes a meta, the server SHALL
		// ignore the existing versionId and lastUpdated values"; ETag and
		// Last-Modified as for create.
		body := patientRes(sys, "u1", map[string]any{"id": id, "gender": "female", "meta": map[string]any{"versionId": "77"}})
		r := s.Do(t, "PUT", "/fhir/Patient/"+id, body, apitest.H{"Prefer": "return=representation"}).Want(t, http.StatusOK)
		wantResourceMeta(t, r.JSON, "Patient", id, "2")
		wantVersionHeaders(t, r, "2")
		if r.JSON["gender"] != "female" {
			t.Errorf("update: got %s", r)
		}
	})
	t.Run("If-Match", func(t *testing.T) {
		// http.html#concurrency: the client sends If-Match with the
		// ETag; "If the version id given in the If-Match header does not
		// match, the server returns a 412 Precondition Failed status code".
		body := patientRes(sys, "u1", map[string]any{"id": id, "gender": "male"})
		r := s.Do(t, "PUT", "/fhir/Patient/"+id, body, apitest.H{"If-Match": `W/"1"`}).Want(t, http.StatusPreconditionFailed)
		wantOutcomeBody(t, r)
		r = s.Do(t, "PUT", "/fhir/Patient/"+id, body, apitest.H{"If-Match": `W/"2"`, "Prefer": "return=representation"}).Want(t, http.StatusOK)
		if versionOf(r.JSON) != "3" || r.JSON["gender"] != "male" {
			t.Errorf("update with the right If-Match: got %s", r)
		}
	})
	t.Run("id missing or different from the URL is 400", func(t *testing.T) {
		// http.html#update: "If no id element is provided, or the id
		// disagrees with the id in the URL, the server SHALL respond with
		// an HTTP 400 Bad Request error code, and SHOULD provide an
		// OperationOutcome".
		for name, body := range map[string]map[string]any{
			"no id":        patientRes(sys, "u1", nil),
			"different id": patientRes(sys, "u1", map[string]any{"id": "other-" + newKey()}),
		} {
			t.Run(name, func(t *testing.T) {
				r := s.Do(t, "PUT", "/fhir/Patient/"+id, body, nil).Want(t, http.StatusBadRequest)
				wantOutcomeBody(t, r)
			})
		}
		g := s.Do(t, "GET", "/fhir/Patient/"+id, nil, nil).Want(t, http.StatusOK)
		if versionOf(g.JSON) != "3" {
			t.Errorf("a refused update made a version: %s", g)
		}
	})
	t.Run("update as create", func(t *testing.T) {
		// http.html#upsert (CapabilityStatement updateCreate=true): a
		// PUT to an id that does not exist creates it with that id, 201.
		cid := "uac-" + newKey()
		r := s.Do(t, "PUT", "/fhir/Patient/"+cid, patientRes(sys, "u2", map[string]any{"id": cid}), apitest.H{"Prefer": "return=representation"}).Want(t, http.StatusCreated)
		wantResourceMeta(t, r.JSON, "Patient", cid, "1")
		wantVersionHeaders(t, r, "1")
		s.Do(t, "GET", "/fhir/Patient/"+cid, nil, nil).Want(t, http.StatusOK)
	})
	t.Run("update after delete brings the resource back", func(t *testing.T) {
		// http.html#delete: "Resources that have been deleted may be
		// 'brought back to life' by a subsequent update interaction".
		did := s.Create(t, patientRes(sys, "u3", nil))
		s.Do(t, "DELETE", "/fhir/Patient/"+did, nil, nil).Want(t, http.StatusOK, http.StatusNoContent)
		r := s.Do(t, "PUT", "/fhir/Patient/"+did, patientRes(sys, "u3", map[string]any{"id": did}), apitest.H{"Prefer": "return=representation"}).
			Want(t, http.StatusOK, http.StatusCreated)
		if versionOf(r.JSON) != "3" {
			t.Errorf("update after delete: version %q, want 3 (after create and delete)", versionOf(r.JSON))
		}
		s.Do(t, "GET", "/fhir/Patient/"+did, nil, nil).Want(t, http.StatusOK)
	})
}

// checkConditionalUpdate: R4 http.html#cond-update.
func checkConditionalUpdate(t *testing.T, s *apitest.Server) {
	sys := newSystem()
	put := func(t *testing.T, value string, body map[string]any) *apitest.Response {
		t.Helper()
		return s.Do(t, "PUT", "/fhir/Patient?"+query("identifier", sys+"|"+value), body, apitest.H{"Prefer": "return=representation"})
	}
	t.Run("no match, no id: create", func(t *testing.T) {
		// "No matches, no id provided: The server performs a create
		// interaction".
		r := put(t, "n1", patientRes(sys, "n1", nil)).Want(t, http.StatusCreated)
		if r.ID() == "" || versionOf(r.JSON) != "1" {
			t.Errorf("got %s", r)
		}
		if got := allMatches(t, s, "/fhir/Patient?"+query("identifier", sys+"|n1")); len(got) != 1 {
			t.Errorf("matches after the create: %v", got)
		}
	})
	t.Run("no match, id: update as create", func(t *testing.T) {
		// "No matches, id provided: The server treats the interaction as
		// an Update as Create interaction".
		cid := "cu-" + newKey()
		r := put(t, "n2", patientRes(sys, "n2", map[string]any{"id": cid})).Want(t, http.StatusCreated)
		if r.ID() != cid {
			t.Errorf("id: got %q, want %q", r.ID(), cid)
		}
	})
	t.Run("one match: update it", func(t *testing.T) {
		// "One Match, no resource id provided OR (resource id provided
		// and it matches the found resource): The server performs the
		// update against the matching resource".
		id := s.Create(t, patientRes(sys, "o1", nil))
		r := put(t, "o1", patientRes(sys, "o1", map[string]any{"gender": "female"})).Want(t, http.StatusOK)
		if r.ID() != id || versionOf(r.JSON) != "2" || r.JSON["gender"] != "female" {
			t.Errorf("no id: got %s, want version 2 of %s", r, id)
		}
		r = put(t, "o1", patientRes(sys, "o1", map[string]any{"id": id, "gender": "male"})).Want(t, http.StatusOK)
		if r.ID() != id || versionOf(r.JSON) != "3" {
			t.Errorf("matching id: got %s, want version 3 of %s", r, id)
		}
	})
	t.Run("one match, another id: 400", func(t *testing.T) {
		// "One Match, resource id provided but does not match resource
		// found: The server returns a 400 Bad Request error".
		id := s.Create(t, patientRes(sys, "o2", nil))
		r := put(t, "o2", patientRes(sys, "o2", map[string]any{"id": "other-" + newKey()})).Want(t, http.StatusBadRequest)
		wantOutcomeBody(t, r)
		g := s.Do(t, "GET", "/fhir/Patient/"+id, nil, nil).Want(t, http.StatusOK)
		if versionOf(g.JSON) != "1" {
			t.Errorf("refused conditional update changed the match: %s", g)
		}
	})
	t.Run("multiple matches: 412", func(t *testing.T) {
		// "Multiple matches: The server returns a 412 Precondition Failed
		// error indicating the client's criteria were not selective enough".
		s.Create(t, patientRes(sys, "m", nil))
		s.Create(t, patientRes(sys, "m", nil))
		r := put(t, "m", patientRes(sys, "m", map[string]any{"gender": "other"})).Want(t, http.StatusPreconditionFailed)
		wantOutcomeBody(t, r)
		if got := allMatches(t, s, "/fhir/Patient?"+query("identifier", sys+"|m", "gender", "other")); len(got) != 0 {
			t.Errorf("a refused conditional update changed %v", got)
		}
	})
}

// checkDelete: R4 http.html#delete, #cdelete.
func checkDelete(t *testing.T, s *apitest.Server) {
	sys := newSystem()
	t.Run("delete, then 410, no search match, delete again", func(t *testing.T) {
		// #delete: success is "200 OK if the response contains a payload,
		// or a 204 No Content"; afterwards "Subsequent non-version
		// specific reads of a resource return a 410 HTTP status code and
		// the resource is no longer found through search interactions";
		// "Performing this interaction on a resource that is already
		// deleted has no effect" (200 or 204).
		id := s.Create(t, patientRes(sys, "d1", nil))
		r := s.Do(t, "DELETE", "/fhir/Patient/"+id, nil, nil).Want(t, http.StatusOK, http.StatusNoContent)
		if r.Status == http.StatusNoContent && len(r.Body) != 0 {
			t.Errorf("204 with a body: %s", r)
		}
		s.Do(t, "GET", "/fhir/Patient/"+id, nil, nil).Want(t, http.StatusGone)
		if got := allMatches(t, s, "/fhir/Patient?"+query("identifier", sys+"|d1")); len(got) != 0 {
			t.Errorf("search finds the deleted resource: %v", got)
		}
		if got := allMatches(t, s, "/fhir/Patient?"+query("_id", id)); len(got) != 0 {
			t.Errorf("_id search finds the deleted resource: %v", got)
		}
		s.Do(t, "DELETE", "/fhir/Patient/"+id, nil, nil).Want(t, http.StatusOK, http.StatusNoContent)
		h := s.Do(t, "GET", "/fhir/Patient/"+id+"/_history", nil, nil).Want(t, http.StatusOK)
		if n := len(h.Entries()); n != 2 {
			t.Errorf("history after a repeated delete: %d entries, want 2 (create, delete: the second delete has no effect)", n)
		}
	})
	t.Run("delete of an unknown id", func(t *testing.T) {
		// #delete: a server answers the delete of a resource that does not
		// exist with 200/204 or 404 Not Found (phivault: 404).
		r := s.Do(t, "DELETE", "/fhir/Patient/unknown-"+newKey(), nil, nil).Want(t, http.StatusOK, http.StatusNoContent, http.StatusNotFound)
		if r.Status == http.StatusNotFound {
			wantOutcomeBody(t, r)
		}
	})
	t.Run("conditional delete", func(t *testing.T) {
		// #cdelete (CapabilityStatement conditionalDelete=single): one
		// match: "The server performs an ordinary delete on the matching
		// resource"; multiple matches: "412 Precondition Failed" when
		// multiple deletes are not supported; no match: an ordinary delete
		// of nothing (200, 204 or 404).
		id := s.Create(t, patientRes(sys, "cd1", nil))
		s.Do(t, "DELETE", "/fhir/Patient?"+query("identifier", sys+"|cd1"), nil, nil).Want(t, http.StatusOK, http.StatusNoContent)
		s.Do(t, "GET", "/fhir/Patient/"+id, nil, nil).Want(t, http.StatusGone)
		s.Do(t, "DELETE", "/fhir/Patient?"+query("identifier", sys+"|none"), nil, nil).Want(t, http.StatusOK, http.StatusNoContent, http.StatusNotFound)
		a := s.Create(t, patientRes(sys, "cd2", nil))
		b := s.Create(t, patientRes(sys, "cd2", nil))
		r := s.Do(t, "DELETE", "/fhir/Patient?"+query("identifier", sys+"|cd2"), nil, nil).Want(t, http.StatusPreconditionFailed)
		wantOutcomeBody(t, r)
		s.Do(t, "GET", "/fhir/Patient/"+a, nil, nil).Want(t, http.StatusOK)
		s.Do(t, "GET", "/fhir/Patient/"+b, nil, nil).Want(t, http.StatusOK)
	})
}

// checkPatch: R4 http.html#patch and fhirpatch.html.
func checkPatch(t *testing.T, s *apitest.Server) {
	sys := newSystem()
	id := s.Create(t, patientRes(sys, "p1", map[string]any{"gender": "female", "birthDate": "1970-01-01"}))
	jsonPatch := apitest.H{"Content-Type": "application/json-patch+json", "Prefer": "return=representation"}
	t.Run("JSON Patch", func(t *testing.T) {
		// http.html#patch: "PATCH [base]/[type]/[id]" with a JSON Patch
		// (RFC 6902, application/json-patch+json); the result is a new
		// version, as for update.
		ops := []any{
			map[string]any{"op": "test", "path": "/gender", "value": "female"},
			map[string]any{"op": "replace", "path": "/gender", "value": "male"},
			map[string]any{"op": "add", "path": "/active", "value": true},
		}
		r := s.Do(t, "PATCH", "/fhir/Patient/"+id, ops, jsonPatch).Want(t, http.StatusOK)
		wantResourceMeta(t, r.JSON, "Patient", id, "2")
		wantVersionHeaders(t, r, "2")
		if r.JSON["gender"] != "male" || r.JSON["active"] != true || r.JSON["birthDate"] != "1970-01-01" {
			t.Errorf("JSON Patch result: %s", r)
		}
	})
	t.Run("FHIRPath Patch", func(t *testing.T) {
		// fhirpatch.html: a Parameters resource (application/fhir+json)
		// with "operation" parameters of parts type, path, name, value,
		// index; types add, insert, delete, replace, move.
		op := func(parts ...map[string]any) map[string]any {
			ps := make([]any, len(parts))
			for i, p := range parts {
				ps[i] = p
			}
			return map[string]any{"name": "operation", "part": ps}
		}
		code := func(n, v string) map[string]any { return map[string]any{"name": n, "valueCode": v} }
		str := func(n, v string) map[string]any { return map[string]any{"name": n, "valueString": v} }
		params := map[string]any{"resourceType": "Parameters", "parameter": []any{
			op(code("type", "replace"), str("path", "Patient.birthDate"), map[string]any{"name": "value", "valueDate": "1971-02-03"}),
			op(code("type", "delete"), str("path", "Patient.active")),
			op(code("type", "add"), str("path", "Patient"), str("name", "telecom"), map[string]any{"name": "value", "part": []any{
				code("system", "phone"), str("value", "555-0100"),
			}}),
			op(code("type", "insert"), str("path", "Patient.identifier"), map[string]any{"name": "index", "valueInteger": 0},
				map[string]any{"name": "value", "valueIdentifier": map[string]any{"system": sys, "value": "p1-first"}}),
		}}
		r := s.Do(t, "PATCH", "/fhir/Patient/"+id, params, apitest.H{"Prefer": "return=representation"}).Want(t, http.StatusOK)
		if versionOf(r.JSON) != "3" || r.JSON["birthDate"] != "1971-02-03" || r.JSON["active"] != nil {
			t.Errorf("FHIRPath Patch replace/delete: %s", r)
		}
		tel, _ := r.JSON["telecom"].([]any)
		if len(tel) != 1 || tel[0].(map[string]any)["value"] != "555-0100" {
			t.Errorf("FHIRPath Patch add: telecom %v", r.JSON["telecom"])
		}
		ids, _ := r.JSON["identifier"].([]any)
		if len(ids) != 2 || ids[0].(map[string]any)["value"] != "p1-first" {
			t.Errorf("FHIRPath Patch insert at 0: identifier %v", r.JSON["identifier"])
		}
	})
	t.Run("If-Match", func(t *testing.T) {
		// http.html#patch: "PATCH ... SHOULD be version aware (If-Match)",
		// and #concurrency: a wrong version is 412.
		ops := []any{map[string]any{"op": "replace", "path": "/gender", "value": "other"}}
		h := apitest.H{"Content-Type": "application/json-patch+json", "If-Match": `W/"1"`}
		r := s.Do(t, "PATCH", "/fhir/Patient/"+id, ops, h).Want(t, http.StatusPreconditionFailed)
		wantOutcomeBody(t, r)
		h["If-Match"] = `W/"3"`
		s.Do(t, "PATCH", "/fhir/Patient/"+id, ops, h).Want(t, http.StatusOK)
	})
	t.Run("a bad patch is a 4xx with an OperationOutcome and changes nothing", func(t *testing.T) {
		// http.html#patch: a patch that cannot be applied is an error
		// (400 for a malformed patch, 422 for one that fails to apply or
		// yields an invalid resource), reported with an OperationOutcome.
		cases := map[string]struct {
			body    any
			headers apitest.H
		}{
			"unknown JSON Patch op":        {[]any{map[string]any{"op": "frobnicate", "path": "/gender"}}, jsonPatch},
			"failed JSON Patch test":       {[]any{map[string]any{"op": "test", "path": "/gender", "value": "female"}}, jsonPatch},
			"JSON Patch changing the id":   {[]any{map[string]any{"op": "replace", "path": "/id", "value": "x" + newKey()}}, jsonPatch},
			"JSON Patch making it invalid": {[]any{map[string]any{"op": "replace", "path": "/gender", "value": 7}}, jsonPatch},
			"FHIRPath Patch unknown type": {map[string]any{"resourceType": "Parameters", "parameter": []any{map[string]any{"name": "operation", "part": []any{
				map[string]any{"name": "type", "valueCode": "frobnicate"}, map[string]any{"name": "path", "valueString": "Patient.gender"},
			}}}}, nil},
			"not a patch": {map[string]any{"resourceType": "Patient"}, nil},
		}
		for name, c := range cases {
			t.Run(name, func(t *testing.T) {
				r := s.Do(t, "PATCH", "/fhir/Patient/"+id, c.body, c.headers)
				if r.Status != http.StatusBadRequest && r.Status != http.StatusUnprocessableEntity {
					t.Fatalf("got %s, want 400 or 422", r)
				}
				wantOutcomeBody(t, r)
			})
		}
		g := s.Do(t, "GET", "/fhir/Patient/"+id, nil, nil).Want(t, http.StatusOK)
		if versionOf(g.JSON) != "4" {
			t.Errorf("refused patches changed the resource: %s", g)
		}
	})
	t.Run("patch of an unknown or deleted resource", func(t *testing.T) {
		// http.html#patch acts on an existing resource: unknown is 404,
		// deleted 410 (as read).
		ops := []any{map[string]any{"op": "replace", "path": "/gender", "value": "other"}}
		h := apitest.H{"Content-Type": "application/json-patch+json"}
		s.Do(t, "PATCH", "/fhir/Patient/unknown-"+newKey(), ops, h).Want(t, http.StatusNotFound)
		did := s.Create(t, patientRes(sys, "p2", nil))
		s.Do(t, "DELETE", "/fhir/Patient/"+did, nil, nil).Want(t, http.StatusOK, http.StatusNoContent)
		s.Do(t, "PATCH", "/fhir/Patient/"+did, ops, h).Want(t, http.StatusGone, http.StatusNotFound)
	})
}
