package httpapi_test

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/phivault/phivault/internal/apitest"
	"github.com/phivault/phivault/internal/audit"
)

// patchEnv: a physician on patient A's care team; patient B unrelated;
// patient C has the physician on the care team but a Consent denying
// them; A also has a 42 CFR Part 2 Observation. The patient account is
// A's.
type patchEnv struct {
	doc, pat               actor
	a, b, c                string
	obsA, obsB, obsC, obs2 string // obs2: A's Part 2 observation
}

const secretValue = "SECRET-PATCH-VALUE"

func newPatchEnv(t *testing.T, s *apitest.Server) patchEnv {
	t.Helper()
	e := patchEnv{a: s.Create(t, patient(uniq(), nil)), b: s.Create(t, patient(uniq(), nil)), c: s.Create(t, patient(uniq(), nil))}
	e.doc = newActor(t, s, "physician", "")
	e.pat = newActor(t, s, "patient", e.a)
	careTeam(t, s, e.a, e.doc.fhirUser)
	careTeam(t, s, e.c, e.doc.fhirUser)
	s.Create(t, consentDeny(e.c, e.doc.fhirUser))
	obs := func(pid, label string) string {
		return s.Create(t, labelled(observation(pid, map[string]any{"valueString": secretValue + pid,
			"identifier": []any{map[string]any{"system": testSystem, "value": "id-" + uniq()}}}), label))
	}
	e.obsA, e.obsB, e.obsC, e.obs2 = obs(e.a, ""), obs(e.b, ""), obs(e.c, ""), obs(e.a, "42CFRPart2")
	return e
}

// coded is an Observation's code of the test system (searchable).
func coded(code string) map[string]any {
	return map[string]any{"code": map[string]any{"coding": []any{map[string]any{"system": testSystem, "code": code}}}}
}

// with returns h plus the extra headers (an empty value is left out).
func with(h apitest.H, kv ...string) apitest.H {
	out := apitest.H{}
	for k, v := range h {
		out[k] = v
	}
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] != "" {
			out[kv[i]] = kv[i+1]
		}
	}
	return out
}

func jsonPatch(ops ...map[string]any) []any {
	out := make([]any, len(ops))
	for i, o := range ops {
		out[i] = o
	}
	return out
}

// fpOp is one FHIRPath Patch operation.
func fpOp(typ, path string, more ...map[string]any) map[string]any {
	parts := []any{map[string]any{"name": "type", "valueCode": typ}, map[string]any{"name": "path", "valueString": path}}
	for _, m := range more {
		parts = append(parts, m)
	}
	return map[string]any{"name": "operation", "part": parts}
}

func fpPatch(ops ...map[string]any) map[string]any {
	ps := make([]any, len(ops))
	for i, o := range ops {
		ps[i] = o
	}
	return map[string]any{"resourceType": "Parameters", "parameter": ps}
}

func metaParams(label string) map[string]any {
	return map[string]any{"resourceType": "Parameters", "parameter": []any{map[string]any{"name": "meta",
		"valueMeta": map[string]any{"security": []any{map[string]any{"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": label}}}}}}
}

var jsonPatchCT = apitest.H{"Content-Type": "application/json-patch+json"}

// noLeak fails if r carries resource content.
func noPatchLeak(t *testing.T, r *apitest.Response) {
	t.Helper()
	if strings.Contains(string(r.Body), secretValue) {
		t.Fatalf("the answer carries resource content: %s", r)
	}
}

// TestE2EPatch: PATCH with JSON Patch and FHIRPath Patch, If-Match, the
// path subset's refusals, and the decisions on the current version and
// the result.
func TestE2EPatch(t *testing.T) {
	apitest.Run(t, func(t *testing.T, s *apitest.Server) {
		e := newPatchEnv(t, s)
		path := "/fhir/Observation/" + e.obsA

		t.Run("json patch", func(t *testing.T) {
			r := s.Do(t, "PATCH", path, jsonPatch(map[string]any{"op": "replace", "path": "/status", "value": "amended"},
				map[string]any{"op": "test", "path": "/status", "value": "amended"}), with(e.doc.wheaders, "Content-Type", "application/json-patch+json")).Want(t, http.StatusOK)
			if r.JSON["status"] != "amended" || r.Header.Get("ETag") != `W/"2"` {
				t.Fatalf("patched: %s etag %s", r, r.Header.Get("ETag"))
			}
			got := s.Do(t, "GET", path, nil, nil).Want(t, http.StatusOK)
			if got.JSON["status"] != "amended" || meta(got.JSON)["versionId"] != "2" {
				t.Fatalf("read after patch: %s", got)
			}
			wantAudited(t, s, audit.ActionUpdate, audit.OutcomeSuccess, "Observation/"+e.obsA+"/_history/2")
		})
		t.Run("json patch test fails", func(t *testing.T) {
			r := s.Do(t, "PATCH", path, jsonPatch(map[string]any{"op": "test", "path": "/valueString", "value": "guess"}), jsonPatchCT).WantOutcome(t, http.StatusUnprocessableEntity)
			noPatchLeak(t, r)
		})
		t.Run("fhirpath patch", func(t *testing.T) {
			idv := "new-" + uniq()
			p := fpPatch(
				fpOp("replace", "Observation.status", map[string]any{"name": "value", "valueCode": "corrected"}),
				fpOp("add", "Observation", map[string]any{"name": "name", "valueString": "note"},
					map[string]any{"name": "value", "part": []any{map[string]any{"name": "text", "valueString": "added by patch"}}}),
				fpOp("insert", "Observation.identifier", map[string]any{"name": "index", "valueInteger": 0},
					map[string]any{"name": "value", "valueIdentifier": map[string]any{"system": testSystem, "value": idv}}),
				fpOp("move", "Observation.identifier", map[string]any{"name": "source", "valueInteger": 0}, map[string]any{"name": "destination", "valueInteger": 1}),
				fpOp("replace", "Observation.identifier.where(value = '"+idv+"').system", map[string]any{"name": "value", "valueUri": "urn:other"}),
				fpOp("delete", "Observation.identifier[0]"),
				fpOp("delete", "Observation.interpretation"), // nothing there: not an error
			)
			r := s.Do(t, "PATCH", path, p, nil).Want(t, http.StatusOK)
			ids, _ := r.JSON["identifier"].([]any)
			notes, _ := r.JSON["note"].([]any)
			if r.JSON["status"] != "corrected" || len(notes) != 1 || len(ids) != 1 {
				t.Fatalf("fhirpath patch: %s", r)
			}
			if id := ids[0].(map[string]any); id["value"] != idv || id["system"] != "urn:other" {
				t.Fatalf("identifier after insert, move, replace, delete: %v", id)
			}
		})
		t.Run("if-match", func(t *testing.T) {
			cur := s.Do(t, "GET", path, nil, nil).Want(t, http.StatusOK)
			stale := s.Do(t, "PATCH", path, jsonPatch(map[string]any{"op": "replace", "path": "/status", "value": "final"}), with(jsonPatchCT, "If-Match", `W/"1"`))
			stale.WantOutcome(t, http.StatusPreconditionFailed)
			ok := s.Do(t, "PATCH", path, jsonPatch(map[string]any{"op": "replace", "path": "/status", "value": "final"}), with(jsonPatchCT, "If-Match", cur.Header.Get("ETag")))
			ok.Want(t, http.StatusOK)
		})
		t.Run("path subset refusals", func(t *testing.T) {
			for _, p := range []string{"Observation.identifier.first()", "Observation.subject.resolve()", "Observation.identifier.where(value = '" + secretValue + "' or true)",
				"Observation.value as Quantity", "identifier", "Observation..status", "Observation.identifier[-1]"} {
				r := s.Do(t, "PATCH", path, fpPatch(fpOp("delete", p)), nil).WantOutcome(t, http.StatusBadRequest)
				noPatchLeak(t, r)
			}
			r := s.Do(t, "PATCH", path, fpPatch(fpOp("explode", "Observation")), nil).WantOutcome(t, http.StatusBadRequest)
			noPatchLeak(t, r)
		})
		t.Run("invalid result", func(t *testing.T) {
			r := s.Do(t, "PATCH", path, jsonPatch(map[string]any{"op": "remove", "path": "/status"}), jsonPatchCT).WantOutcome(t, http.StatusUnprocessableEntity)
			noPatchLeak(t, r)
			s.Do(t, "PATCH", path, jsonPatch(map[string]any{"op": "replace", "path": "/id", "value": "other"}), jsonPatchCT).WantOutcome(t, http.StatusUnprocessableEntity)
			s.Do(t, "PATCH", path, jsonPatch(map[string]any{"op": "replace", "path": "/resourceType", "value": "Condition"}), jsonPatchCT).WantOutcome(t, http.StatusUnprocessableEntity, http.StatusBadRequest)
			s.Do(t, "PATCH", path, `[{"op":`, jsonPatchCT).WantOutcome(t, http.StatusBadRequest)
			s.Do(t, "PATCH", path, "x", apitest.H{"Content-Type": "text/plain"}).WantOutcome(t, http.StatusUnsupportedMediaType)
		})
		t.Run("cannot move to an unrelated patient", func(t *testing.T) {
			r := s.Do(t, "PATCH", path, jsonPatch(map[string]any{"op": "replace", "path": "/subject/reference", "value": "Patient/" + e.b}), with(e.doc.wheaders, "Content-Type", "application/json-patch+json"))
			if r.Status == http.StatusOK {
				t.Fatalf("a patch moved a resource to an unrelated patient: %s", r)
			}
			noPatchLeak(t, r)
			got := s.Do(t, "GET", path, nil, nil).Want(t, http.StatusOK)
			if ref := got.JSON["subject"].(map[string]any)["reference"]; ref != "Patient/"+e.a {
				t.Fatalf("subject is now %v", ref)
			}
		})
		// Concealment: a resource the caller may not see answers exactly
		// as one that does not exist, If-Match or not.
		missing := "/fhir/Observation/nosuch" + uniq()
		for _, tc := range []struct {
			name string
			who  func() actor
			id   func() string
		}{
			{"unrelated patient (403: break-the-glass is possible)", func() actor { return e.doc }, func() string { return e.obsB }},
			{"consent-hidden", func() actor { return e.doc }, func() string { return e.obsC }},
			{"sensitive", func() actor { return e.doc }, func() string { return e.obs2 }},
			{"patient, another's record", func() actor { return e.pat }, func() string { return e.obsB }},
		} {
			t.Run("denied: "+tc.name, func(t *testing.T) {
				a := tc.who()
				before := s.Do(t, "GET", "/fhir/Observation/"+tc.id(), nil, nil).Want(t, http.StatusOK)
				// A PATCH answers as a PUT of the same resource would; where
				// the policy conceals (a GET answers 404), as a missing id.
				concealed := s.Do(t, "GET", "/fhir/Observation/"+tc.id(), nil, a.headers).Status == http.StatusNotFound
				for _, im := range []string{"", `W/"1"`, `W/"9"`} {
					h := with(a.wheaders, "Content-Type", "application/json-patch+json")
					if im != "" {
						h["If-Match"] = im
					}
					body := jsonPatch(map[string]any{"op": "replace", "path": "/status", "value": "cancelled"})
					hidden := s.Do(t, "PATCH", "/fhir/Observation/"+tc.id(), body, h)
					absent := s.Do(t, "PATCH", missing, body, h)
					noPatchLeak(t, hidden)
					upd := before.JSON
					upd["status"] = "cancelled"
					put := s.Do(t, "PUT", "/fhir/Observation/"+tc.id(), upd, with(a.wheaders, "If-Match", im))
					switch {
					case concealed && (hidden.Status != absent.Status || hidden.Status != http.StatusNotFound):
						t.Fatalf("If-Match %q: concealed %d, missing %d (want 404)", im, hidden.Status, absent.Status)
					case !concealed && (hidden.Status == http.StatusOK || hidden.Status != put.Status):
						// (A PUT with If-Match of a concealed id decides on
						// creating its body, as for a missing id; a PATCH has
						// no body to create: 404 for both.)
						t.Fatalf("If-Match %q: PATCH %d, PUT %d", im, hidden.Status, put.Status)
					}
					fp := fpPatch(fpOp("replace", "Observation.status", map[string]any{"name": "value", "valueCode": "cancelled"}))
					h["Content-Type"] = "application/fhir+json"
					if x := s.Do(t, "PATCH", "/fhir/Observation/"+tc.id(), fp, h); x.Status != hidden.Status {
						t.Fatalf("FHIRPath Patch %d, JSON Patch %d", x.Status, hidden.Status)
					}
				}
				after := s.Do(t, "GET", "/fhir/Observation/"+tc.id(), nil, nil).Want(t, http.StatusOK)
				if meta(after.JSON)["versionId"] != meta(before.JSON)["versionId"] {
					t.Fatal("a hidden resource was patched")
				}
			})
		}
		t.Run("patient cannot patch own record's observation beyond policy", func(t *testing.T) {
			own := s.Do(t, "PATCH", "/fhir/Observation/"+e.obsA, jsonPatch(map[string]any{"op": "replace", "path": "/status", "value": "cancelled"}), with(e.pat.wheaders, "Content-Type", "application/json-patch+json"))
			put := s.Do(t, "GET", "/fhir/Observation/"+e.obsA, nil, nil).Want(t, http.StatusOK)
			upd := s.Do(t, "PUT", "/fhir/Observation/"+e.obsA, put.JSON, e.pat.wheaders)
			if (own.Status == http.StatusOK) != (upd.Status == http.StatusOK) {
				t.Fatalf("patch %d and update %d of the same resource disagree", own.Status, upd.Status)
			}
		})
		t.Run("conditional patch", func(t *testing.T) {
			idv := "cp-" + uniq()
			id := s.Create(t, observation(e.a, coded(idv)))
			q := "/fhir/Observation?code=" + url.QueryEscape(testSystem+"|"+idv)
			r := s.Do(t, "PATCH", q, jsonPatch(map[string]any{"op": "replace", "path": "/status", "value": "amended"}), jsonPatchCT).Want(t, http.StatusOK)
			if r.JSON["id"] != id || r.JSON["status"] != "amended" {
				t.Fatalf("conditional patch: %s", r)
			}
			s.Do(t, "PATCH", "/fhir/Observation?code=nomatch"+uniq(), jsonPatch(map[string]any{"op": "remove", "path": "/status"}), jsonPatchCT).WantOutcome(t, http.StatusNotFound)
			s.Do(t, "PATCH", "/fhir/Observation", jsonPatch(map[string]any{"op": "remove", "path": "/status"}), jsonPatchCT).WantOutcome(t, http.StatusBadRequest)
			// A hidden resource is not matched.
			s.Do(t, "PATCH", "/fhir/Observation?_id="+e.obsB, jsonPatch(map[string]any{"op": "replace", "path": "/status", "value": "cancelled"}),
				with(e.doc.wheaders, "Content-Type", "application/json-patch+json")).WantOutcome(t, http.StatusNotFound)
		})
	})
}

// TestE2EConditionalWrites: PUT and DELETE of Type?query, narrowed by
// the caller's authorization.
func TestE2EConditionalWrites(t *testing.T) {
	apitest.Run(t, func(t *testing.T, s *apitest.Server) {
		e := newPatchEnv(t, s)
		idv := "cu-" + uniq()
		q := "/fhir/Observation?code=" + url.QueryEscape(testSystem+"|"+idv)
		body := observation(e.a, coded(idv))
		var id string
		t.Run("update: no match creates, one match updates", func(t *testing.T) {
			r := s.Do(t, "PUT", q, body, e.doc.wheaders).Want(t, http.StatusCreated)
			id = r.JSON["id"].(string)
			body["status"] = "amended"
			r = s.Do(t, "PUT", q, body, e.doc.wheaders).Want(t, http.StatusOK)
			if r.JSON["id"] != id || meta(r.JSON)["versionId"] != "2" {
				t.Fatalf("second conditional PUT: %s", r)
			}
			body["id"] = "other" + uniq()
			s.Do(t, "PUT", q, body, e.doc.wheaders).WantOutcome(t, http.StatusBadRequest)
			delete(body, "id")
			s.Do(t, "PUT", q, body, with(e.doc.wheaders, "If-Match", `W/"1"`)).WantOutcome(t, http.StatusPreconditionFailed)
		})
		t.Run("update: several matches", func(t *testing.T) {
			s.Create(t, body)
			s.Do(t, "PUT", q, body, nil).WantOutcome(t, http.StatusPreconditionFailed)
		})
		t.Run("update: no match with a client id is an update-as-create", func(t *testing.T) {
			cid := "cid" + uniq()
			b := observation(e.a, map[string]any{"id": cid})
			s.Do(t, "PUT", "/fhir/Observation?code=none"+uniq(), b, nil).Want(t, http.StatusCreated)
			s.Do(t, "GET", "/fhir/Observation/"+cid, nil, nil).Want(t, http.StatusOK)
		})
		t.Run("update: a hidden resource is not matched", func(t *testing.T) {
			r := s.Do(t, "PUT", "/fhir/Observation?_id="+e.obsB, observation(e.a, nil), e.doc.wheaders).Want(t, http.StatusCreated)
			if r.JSON["id"] == e.obsB {
				t.Fatal("a conditional PUT updated a hidden resource")
			}
			got := s.Do(t, "GET", "/fhir/Observation/"+e.obsB, nil, nil).Want(t, http.StatusOK)
			if meta(got.JSON)["versionId"] != "1" {
				t.Fatal("the hidden resource changed")
			}
		})
		t.Run("delete", func(t *testing.T) {
			r := s.Do(t, "DELETE", "/fhir/Observation?_id="+e.obs2, nil, e.doc.wheaders).Want(t, http.StatusNoContent)
			_ = r
			s.Do(t, "GET", "/fhir/Observation/"+e.obs2, nil, nil).Want(t, http.StatusOK)
			s.Do(t, "DELETE", "/fhir/Observation?_id="+e.obsC, nil, e.doc.wheaders).Want(t, http.StatusNoContent)
			s.Do(t, "GET", "/fhir/Observation/"+e.obsC, nil, nil).Want(t, http.StatusOK)
			s.Do(t, "DELETE", q, nil, nil).WantOutcome(t, http.StatusPreconditionFailed)
			s.Do(t, "DELETE", "/fhir/Observation?_id="+id, nil, e.doc.wheaders).Want(t, http.StatusNoContent)
			s.Do(t, "GET", "/fhir/Observation/"+id, nil, nil).WantOutcome(t, http.StatusGone)
			wantAudited(t, s, audit.ActionDelete, audit.OutcomeSuccess, "Observation/"+id+"/_history/3")
			s.Do(t, "DELETE", "/fhir/Observation", nil, nil).WantOutcome(t, http.StatusBadRequest)
		})
	})
}

// TestE2EMeta: $meta, $meta-add, $meta-delete; security labels feed
// authorization, so unlabelling is decided as a write of the result.
func TestE2EMeta(t *testing.T) {
	apitest.Run(t, func(t *testing.T, s *apitest.Server) {
		e := newPatchEnv(t, s)
		t.Run("instance", func(t *testing.T) {
			r := s.Do(t, "GET", "/fhir/Observation/"+e.obs2+"/$meta", nil, nil).Want(t, http.StatusOK)
			if !strings.Contains(string(r.Body), "42CFRPart2") || r.JSON["resourceType"] != "Parameters" {
				t.Fatalf("$meta: %s", r)
			}
			noPatchLeak(t, r)
		})
		t.Run("hidden answers as missing", func(t *testing.T) {
			for _, id := range []string{e.obs2, e.obsB, e.obsC} {
				read := s.Do(t, "GET", "/fhir/Observation/"+id, nil, e.doc.headers)
				hidden := s.Do(t, "GET", "/fhir/Observation/"+id+"/$meta", nil, e.doc.headers)
				absent := s.Do(t, "GET", "/fhir/Observation/nosuch"+uniq()+"/$meta", nil, e.doc.headers)
				if hidden.Status != read.Status || hidden.Status == http.StatusOK {
					t.Fatalf("$meta %d, read %d of a resource the physician may not read", hidden.Status, read.Status)
				}
				if read.Status == http.StatusNotFound && absent.Status != http.StatusNotFound {
					t.Fatalf("$meta of a concealed resource %d, of a missing one %d", hidden.Status, absent.Status)
				}
				noPatchLeak(t, hidden)
			}
		})
		t.Run("cannot unlabel what one cannot read", func(t *testing.T) {
			for _, a := range []actor{e.doc, e.pat} {
				concealed := s.Do(t, "GET", "/fhir/Observation/"+e.obs2, nil, a.headers).Status == http.StatusNotFound
				hidden := s.Do(t, "POST", "/fhir/Observation/"+e.obs2+"/$meta-delete", metaParams("42CFRPart2"), a.wheaders)
				absent := s.Do(t, "POST", "/fhir/Observation/nosuch"+uniq()+"/$meta-delete", metaParams("42CFRPart2"), a.wheaders)
				if hidden.Status == http.StatusOK || concealed && hidden.Status != absent.Status {
					t.Fatalf("%s: $meta-delete of a label %d (concealed %v), of a missing resource %d", a.role, hidden.Status, concealed, absent.Status)
				}
				noPatchLeak(t, hidden)
			}
			got := s.Do(t, "GET", "/fhir/Observation/"+e.obs2, nil, nil).Want(t, http.StatusOK)
			if meta(got.JSON)["versionId"] != "1" || !strings.Contains(string(got.Body), "42CFRPart2") {
				t.Fatalf("the label was removed: %s", got)
			}
		})
		t.Run("a label added hides the resource", func(t *testing.T) {
			id := s.Create(t, observation(e.a, nil))
			s.Do(t, "GET", "/fhir/Observation/"+id, nil, e.doc.headers).Want(t, http.StatusOK)
			r := s.Do(t, "POST", "/fhir/Observation/"+id+"/$meta-add", metaParams("42CFRPart2"), nil).Want(t, http.StatusOK)
			if !strings.Contains(string(r.Body), "42CFRPart2") {
				t.Fatalf("$meta-add: %s", r)
			}
			s.Do(t, "GET", "/fhir/Observation/"+id, nil, e.doc.headers).WantOutcome(t, http.StatusNotFound)
			wantAudited(t, s, audit.ActionUpdate, audit.OutcomeSuccess, "Observation/"+id+"/_history/2")
			// And removed by one who may: readable again.
			s.Do(t, "POST", "/fhir/Observation/"+id+"/$meta-delete", metaParams("42CFRPart2"), nil).Want(t, http.StatusOK)
			s.Do(t, "GET", "/fhir/Observation/"+id, nil, e.doc.headers).Want(t, http.StatusOK)
		})
		t.Run("type and system list only what the caller may see", func(t *testing.T) {
			for _, p := range []string{"/fhir/Observation/$meta", "/fhir/$meta"} {
				all := s.Do(t, "GET", p, nil, nil).Want(t, http.StatusOK)
				if !strings.Contains(string(all.Body), "42CFRPart2") {
					t.Fatalf("%s for the system token: %s", p, all)
				}
				doc := s.Do(t, "GET", p, nil, e.doc.headers).Want(t, http.StatusOK)
				if strings.Contains(string(doc.Body), "42CFRPart2") {
					t.Fatalf("%s revealed a label on a resource the physician may not see: %s", p, doc)
				}
			}
		})
		t.Run("bad parameters", func(t *testing.T) {
			s.Do(t, "POST", "/fhir/Observation/"+e.obsA+"/$meta-add", map[string]any{"resourceType": "Parameters"}, nil).WantOutcome(t, http.StatusBadRequest)
		})
	})
}

// TestE2EHistoryAtAndEverythingFilters: _history?_at and $everything's
// _since, _type, start, end, _count.
func TestE2EHistoryAtAndEverythingFilters(t *testing.T) {
	apitest.Run(t, func(t *testing.T, s *apitest.Server) {
		e := newPatchEnv(t, s)
		id := s.Create(t, observation(e.a, nil))
		v1 := s.Do(t, "GET", "/fhir/Observation/"+id, nil, nil).Want(t, http.StatusOK)
		at1 := meta(v1.JSON)["lastUpdated"].(string)
		time.Sleep(5 * time.Millisecond)
		v1.JSON["status"] = "amended"
		s.Do(t, "PUT", "/fhir/Observation/"+id, v1.JSON, nil).Want(t, http.StatusOK)
		versions := func(r *apitest.Response) []string {
			var out []string
			for _, en := range r.Entries() {
				if res, ok := en["resource"].(map[string]any); ok && res["id"] == id {
					out = append(out, fmt.Sprint(meta(res)["versionId"]))
				}
			}
			return out
		}
		t.Run("_at", func(t *testing.T) {
			for _, p := range []string{"/fhir/Observation/" + id + "/_history", "/fhir/Observation/_history", "/fhir/_history"} {
				r := s.Do(t, "GET", p+"?_at="+url.QueryEscape(at1), nil, nil).Want(t, http.StatusOK)
				if got := versions(r); !slices.Equal(got, []string{"1"}) {
					t.Fatalf("%s?_at=v1's time: versions %v", p, got)
				}
				r = s.Do(t, "GET", p+"?_at="+time.Now().UTC().Format(time.RFC3339Nano), nil, nil).Want(t, http.StatusOK)
				if got := versions(r); !slices.Equal(got, []string{"2"}) {
					t.Fatalf("%s?_at=now: versions %v", p, got)
				}
			}
			s.Do(t, "GET", "/fhir/Observation/"+id+"/_history?_at=gt2020", nil, nil).WantOutcome(t, http.StatusBadRequest)
			// Narrowed as history is: the physician sees no hidden version.
			r := s.Do(t, "GET", "/fhir/Observation/_history?_at="+url.QueryEscape(time.Now().UTC().Format(time.RFC3339Nano)), nil, e.doc.headers).Want(t, http.StatusOK)
			for _, en := range r.Entries() {
				if res, ok := en["resource"].(map[string]any); ok && (res["id"] == e.obs2 || res["id"] == e.obsB || res["id"] == e.obsC) {
					t.Fatalf("type history _at revealed %v", res["id"])
				}
			}
		})
		t.Run("everything", func(t *testing.T) {
			pid := s.Create(t, patient(uniq(), nil))
			old := s.Create(t, observation(pid, map[string]any{"effectiveDateTime": "2020-01-01"}))
			recent := s.Create(t, observation(pid, map[string]any{"effectiveDateTime": "2023-06-01"}))
			undated := s.Create(t, observation(pid, nil))
			cov := s.Create(t, coverage(pid))
			ids := func(q string) []string {
				r := s.Do(t, "GET", "/fhir/Patient/"+pid+"/$everything"+q, nil, nil).Want(t, http.StatusOK)
				return r.IDs()
			}
			sameSet(t, "_type", ids("?_type=Observation"), []string{"Observation/" + old, "Observation/" + recent, "Observation/" + undated})
			sameSet(t, "start", ids("?_type=Observation,Coverage&start=2023-01-01"), []string{"Observation/" + recent, "Observation/" + undated, "Coverage/" + cov})
			sameSet(t, "end", ids("?_type=Observation&end=2021"), []string{"Observation/" + old, "Observation/" + undated})
			sameSet(t, "start and end", ids("?_type=Observation&start=2019&end=2020-06"), []string{"Observation/" + old, "Observation/" + undated})
			since := time.Now().UTC().Format(time.RFC3339Nano)
			time.Sleep(5 * time.Millisecond)
			later := s.Create(t, observation(pid, nil))
			sameSet(t, "_since", ids("?_since="+url.QueryEscape(since)), []string{"Observation/" + later})
			// Paging keeps the filters.
			r := s.Do(t, "GET", "/fhir/Patient/"+pid+"/$everything?_type=Observation&_count=2", nil, nil).Want(t, http.StatusOK)
			got := r.IDs()
			next := r.Link("next")
			if next == "" || strings.Contains(next, "Observation") {
				t.Fatalf("next link %q", next)
			}
			got = append(got, s.Do(t, "GET", next, nil, nil).Want(t, http.StatusOK).IDs()...)
			for _, g := range got {
				if !strings.HasPrefix(g, "Observation/") {
					t.Fatalf("page 2 lost _type: %v", got)
				}
			}
			if len(got) != 4 {
				t.Fatalf("two pages of 2: %v", got)
			}
			s.Do(t, "GET", "/fhir/Patient/"+pid+"/$everything?_type=Nope", nil, nil).WantOutcome(t, http.StatusBadRequest)
			s.Do(t, "GET", "/fhir/Patient/"+pid+"/$everything?start=yesterday", nil, nil).WantOutcome(t, http.StatusBadRequest)
		})
	})
}
