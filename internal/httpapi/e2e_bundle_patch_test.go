package httpapi_test

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/phivault/phivault/internal/apitest"
	"github.com/phivault/phivault/internal/audit"
)

// binaryPatch is a PATCH entry's resource for a JSON Patch: a Binary
// (R4 http.html#transaction).
func binaryPatch(t *testing.T, ops ...map[string]any) map[string]any {
	t.Helper()
	b, err := json.Marshal(jsonPatch(ops...))
	if err != nil {
		t.Fatal(err)
	}
	return map[string]any{"resourceType": "Binary", "contentType": "application/json-patch+json", "data": base64.StdEncoding.EncodeToString(b)}
}

// entryOutcome is the diagnostics of entry i's response.outcome.
func entryOutcome(r *apitest.Response, i int) string {
	es := r.Entries()
	if i >= len(es) {
		return ""
	}
	resp, _ := es[i]["response"].(map[string]any)
	b, _ := json.Marshal(resp["outcome"])
	return string(b)
}

func version(t *testing.T, s *apitest.Server, ref string) string {
	t.Helper()
	r := s.Do(t, "GET", "/fhir/"+ref, nil, nil).Want(t, http.StatusOK)
	v, _ := meta(r.JSON)["versionId"].(string)
	return v
}

// TestE2EBundlePatch: PATCH entries (JSON Patch in a Binary, FHIRPath
// Patch in a Parameters) in transactions and batches, decided exactly
// as the REST PATCH.
func TestE2EBundlePatch(t *testing.T) {
	apitest.Run(t, func(t *testing.T, s *apitest.Server) {
		e := newPatchEnv(t, s)
		replace := func(v string) map[string]any { return map[string]any{"op": "replace", "path": "/status", "value": v} }

		t.Run("transaction: JSON Patch, FHIRPath Patch with a urn:uuid reference, order, representation", func(t *testing.T) {
			pid := s.Create(t, patient(uniq(), nil))
			obs := s.Create(t, observation(e.a, nil))
			pract := "urn:uuid:6d1f8a52-3c1b-4b4e-9c53-0a1b2c3d4e5f"
			b := bundle("transaction",
				// The GET comes first but runs last: it sees the patch.
				entry("", "GET", "Observation/"+obs, nil, nil),
				entry("", "PATCH", "Observation/"+obs, binaryPatch(t, replace("amended"), map[string]any{"op": "test", "path": "/status", "value": "amended"}), map[string]any{"ifMatch": `W/"1"`}),
				entry("", "PATCH", "Patient/"+pid, fpPatch(fpOp("add", "Patient", map[string]any{"name": "name", "valueString": "generalPractitioner"},
					map[string]any{"name": "value", "valueReference": map[string]any{"reference": pract}})), nil),
				entry(pract, "POST", "Practitioner", map[string]any{"resourceType": "Practitioner", "name": []any{map[string]any{"family": "Bundle"}}}, nil),
			)
			r := s.Do(t, "POST", "/fhir", b, apitest.H{"Prefer": "return=representation"}).Want(t, http.StatusOK)
			got := statuses(r)
			if strings.Join(got, ",") != "200 OK,200 OK,200 OK,201 Created" {
				t.Fatalf("statuses %v: %s", got, r)
			}
			es := r.Entries()
			if res, _ := es[0]["resource"].(map[string]any); res["status"] != "amended" || meta(res)["versionId"] != "2" {
				t.Errorf("the GET entry (processed after the PATCH) read %v", res)
			}
			if res, _ := es[1]["resource"].(map[string]any); res["status"] != "amended" {
				t.Errorf("PATCH entry representation: %v", res)
			}
			if etag := es[1]["response"].(map[string]any)["etag"]; etag != `W/"2"` {
				t.Errorf("PATCH entry etag %v", etag)
			}
			practID := locationID(t, r, 3)
			p := s.Do(t, "GET", "/fhir/Patient/"+pid, nil, nil).Want(t, http.StatusOK)
			gps, _ := p.JSON["generalPractitioner"].([]any)
			if len(gps) != 1 || gps[0].(map[string]any)["reference"] != "Practitioner/"+practID {
				t.Errorf("the FHIRPath Patch's urn:uuid reference: generalPractitioner %v, want Practitioner/%s", gps, practID)
			}
			wantAudited(t, s, audit.ActionUpdate, audit.OutcomeSuccess, "Observation/"+obs+"/_history/2")
		})

		t.Run("transaction: a failing PATCH fails it all", func(t *testing.T) {
			obs := s.Create(t, observation(e.a, nil))
			del := s.Create(t, patient(uniq(), nil))
			ident := uniq()
			for _, bad := range []map[string]any{
				entry("", "PATCH", "Observation/"+obs, binaryPatch(t, map[string]any{"op": "test", "path": "/status", "value": "preliminary"}), nil), // 422
				entry("", "PATCH", "Observation/"+obs, binaryPatch(t, replace("amended")), map[string]any{"ifMatch": `W/"7"`}),                       // 412
				entry("", "PATCH", "Observation/nosuch"+uniq(), binaryPatch(t, replace("amended")), nil),                                             // 404
				entry("", "PATCH", "Observation?code="+url.QueryEscape(testSystem+"|none"+uniq()), binaryPatch(t, replace("amended")), nil),          // 404
				entry("", "PATCH", "Observation/"+obs, fpPatch(fpOp("delete", "Observation.status")), nil),                                           // 422: invalid result
			} {
				b := bundle("transaction",
					entry("", "POST", "Patient", patient(ident, nil), nil),
					entry("", "DELETE", "Patient/"+del, nil, nil),
					entry("", "PATCH", "Patient/"+e.a, binaryPatch(t, map[string]any{"op": "add", "path": "/active", "value": true}), nil),
					bad,
				)
				r := s.Do(t, "POST", "/fhir", b, nil)
				r.WantOutcome(t, http.StatusNotFound, http.StatusPreconditionFailed, http.StatusUnprocessableEntity)
				if !strings.Contains(string(r.Body), "Bundle.entry[3]") {
					t.Errorf("the outcome does not name the failing entry: %s", r)
				}
			}
			if n := countByIdentifier(t, s, "Patient", ident); n != 0 {
				t.Errorf("a failed transaction's POST persisted (%d)", n)
			}
			s.Do(t, "GET", "/fhir/Patient/"+del, nil, nil).Want(t, http.StatusOK)
			if v := version(t, s, "Observation/"+obs); v != "1" {
				t.Errorf("a failed PATCH changed the observation: version %s", v)
			}
			if p := s.Do(t, "GET", "/fhir/Patient/"+e.a, nil, nil).Want(t, http.StatusOK); p.JSON["active"] != nil {
				t.Errorf("a failed transaction's PATCH persisted: %s", p)
			}
		})

		t.Run("transaction: entries acting on one resource", func(t *testing.T) {
			obs := s.Create(t, observation(e.a, nil))
			cur := s.Do(t, "GET", "/fhir/Observation/"+obs, nil, nil).Want(t, http.StatusOK).JSON
			for name, other := range map[string]map[string]any{
				"PATCH twice":            entry("", "PATCH", "Observation/"+obs, fpPatch(fpOp("replace", "Observation.status", map[string]any{"name": "value", "valueCode": "amended"})), nil),
				"PUT and PATCH":          entry("", "PUT", "Observation/"+obs, cur, nil),
				"DELETE and PATCH":       entry("", "DELETE", "Observation/"+obs, nil, nil),
				"conditional PATCH too":  entry("", "PATCH", "Observation?_id="+obs, binaryPatch(t, replace("corrected")), nil),
				"conditional DELETE too": entry("", "DELETE", "Observation?_id="+obs, nil, nil),
			} {
				b := bundle("transaction", entry("", "PATCH", "Observation/"+obs, binaryPatch(t, replace("amended")), nil), other)
				// 400 for the overlap; 410 when the DELETE (processed
				// first) leaves the PATCH a deleted resource.
				s.Do(t, "POST", "/fhir", b, nil).WantOutcome(t, http.StatusBadRequest, http.StatusGone)
				if v := version(t, s, "Observation/"+obs); v != "1" {
					t.Fatalf("%s: the observation is now version %s", name, v)
				}
			}
		})

		t.Run("batch: each PATCH entry on its own", func(t *testing.T) {
			idv := "bp-" + uniq()
			obs := s.Create(t, observation(e.a, coded(idv)))
			other := s.Create(t, observation(e.a, nil))
			missing := "Observation/nosuch" + uniq()
			b := bundle("batch",
				entry("", "PATCH", "Observation?code="+url.QueryEscape(testSystem+"|"+idv), binaryPatch(t, replace("amended")), map[string]any{"ifMatch": `W/"1"`}),
				entry("", "PATCH", "Observation/"+other, binaryPatch(t, replace("amended")), map[string]any{"ifMatch": `W/"3"`}),
				entry("", "PATCH", missing, binaryPatch(t, replace("amended")), nil),
				entry("", "PATCH", "Observation/"+other, map[string]any{"resourceType": "Binary", "contentType": "application/json", "data": "W10="}, nil),
				entry("", "PATCH", "Observation/"+other, map[string]any{"resourceType": "Binary", "contentType": "application/json-patch+json", "data": "not base64!"}, nil),
				entry("", "PATCH", "Observation/"+other, fpPatch(fpOp("delete", "Observation.subject.resolve()")), nil),
				entry("", "PATCH", "Observation/"+other, patient(uniq(), nil), nil),
				entry("", "PATCH", "Observation", binaryPatch(t, replace("amended")), nil),
				entry("", "PATCH", "Observation/"+other, binaryPatch(t, map[string]any{"op": "test", "path": "/valueString", "value": secretValue}), nil),
				entry("", "PATCH", "Observation/"+other, fpPatch(fpOp("replace", "Observation.status", map[string]any{"name": "value", "valueCode": "corrected"})), nil),
			)
			r := s.Do(t, "POST", "/fhir", b, nil).Want(t, http.StatusOK)
			noPatchLeak(t, r)
			want := []string{"200", "412", "404", "400", "400", "400", "400", "400", "422", "200"}
			got := statuses(r)
			if len(got) != len(want) {
				t.Fatalf("statuses %v, want %v", got, want)
			}
			for i := range want {
				if !strings.HasPrefix(got[i], want[i]+" ") {
					t.Errorf("entry %d: %s, want %s (%s)", i, got[i], want[i], entryOutcome(r, i))
				}
			}
			if v := version(t, s, "Observation/"+obs); v != "2" {
				t.Errorf("conditional PATCH entry: version %s", v)
			}
			o := s.Do(t, "GET", "/fhir/Observation/"+other, nil, nil).Want(t, http.StatusOK)
			if o.JSON["status"] != "corrected" || meta(o.JSON)["versionId"] != "2" {
				t.Errorf("FHIRPath PATCH entry after failed ones: %s", o)
			}
			// The miss is an attempt, audited as the REST PATCH's is.
			wantAudited(t, s, audit.ActionUpdate, audit.OutcomeError, missing)
		})

		// Concealment and the roles: a PATCH entry answers as the REST
		// PATCH of the same resource by the same caller; where the policy
		// conceals the resource, exactly as a missing id (status and
		// outcome), in a batch and in a transaction, If-Match or not.
		for _, tc := range []struct {
			name string
			who  func() actor
			id   func() string
		}{
			{"clinician outside the care team (403: break-the-glass is possible)", func() actor { return e.doc }, func() string { return e.obsB }},
			{"clinician, consent-hidden", func() actor { return e.doc }, func() string { return e.obsC }},
			{"clinician, sensitive", func() actor { return e.doc }, func() string { return e.obs2 }},
			{"patient, another's record", func() actor { return e.pat }, func() string { return e.obsB }},
			{"clinician on the care team", func() actor { return e.doc }, func() string { return e.obsA }},
		} {
			t.Run("roles: "+tc.name, func(t *testing.T) {
				a, id := tc.who(), tc.id()
				missing := "Observation/nosuch" + uniq()
				concealed := s.Do(t, "GET", "/fhir/Observation/"+id, nil, a.headers).Status == http.StatusNotFound
				for _, im := range []string{"", `W/"1"`, `W/"9"`} {
					before := version(t, s, "Observation/"+id)
					req := map[string]any{}
					if im != "" {
						req["ifMatch"] = im
					}
					op := map[string]any{"op": "add", "path": "/language", "value": "en"}
					batch := s.Do(t, "POST", "/fhir", bundle("batch",
						entry("", "PATCH", "Observation/"+id, binaryPatch(t, op), req),
						entry("", "PATCH", missing, binaryPatch(t, op), req),
					), a.wheaders).Want(t, http.StatusOK)
					st := statuses(batch)
					if len(st) != 2 {
						t.Fatalf("statuses %v", st)
					}
					after := version(t, s, "Observation/"+id)
					if strings.HasPrefix(st[0], "200 ") {
						if concealed || (im != "" && im != `W/"`+before+`"`) || after == before {
							t.Fatalf("If-Match %q: PATCH entry %s (concealed %v, version %s → %s)", im, st[0], concealed, before, after)
						}
						continue
					}
					noPatchLeak(t, batch)
					if after != before {
						t.Fatalf("a refused PATCH entry changed the resource: version %s, was %s", after, before)
					}
					// The REST PATCH of the same resource, in the same state.
					rest := s.Do(t, "PATCH", "/fhir/Observation/"+id, jsonPatch(op), with(a.wheaders, "Content-Type", "application/json-patch+json", "If-Match", im))
					if !strings.HasPrefix(st[0], strconv.Itoa(rest.Status)+" ") {
						t.Errorf("If-Match %q: batch entry %s, REST PATCH %d", im, st[0], rest.Status)
					}
					if !concealed {
						continue
					}
					if st[0] != st[1] || !strings.HasPrefix(st[0], "404 ") {
						t.Errorf("If-Match %q: hidden %s, missing %s (want 404 both)", im, st[0], st[1])
					}
					if h, m := entryOutcome(batch, 0), entryOutcome(batch, 1); h != m {
						t.Errorf("If-Match %q: hidden and missing outcomes differ:\n%s\n%s", im, h, m)
					}
					fp := fpPatch(fpOp("replace", "Observation.status", map[string]any{"name": "value", "valueCode": "cancelled"}))
					hidden := s.Do(t, "POST", "/fhir", bundle("transaction", entry("", "PATCH", "Observation/"+id, fp, req)), a.wheaders)
					absent := s.Do(t, "POST", "/fhir", bundle("transaction", entry("", "PATCH", missing, fp, req)), a.wheaders)
					hidden.WantOutcome(t, http.StatusNotFound)
					noPatchLeak(t, hidden)
					if hidden.Status != absent.Status || !reflect.DeepEqual(hidden.JSON["issue"], absent.JSON["issue"]) {
						t.Errorf("If-Match %q: transaction: hidden %s, missing %s", im, hidden, absent)
					}
					wantAudited(t, s, audit.ActionUpdate, audit.OutcomeDenied, "Observation/"+id+"/_history/1")
					wantAudited(t, s, audit.ActionUpdate, audit.OutcomeError, missing)
				}
				if v := version(t, s, "Observation/"+id); concealed && v != "1" {
					t.Fatalf("a hidden resource was patched: version %s", v)
				}
				if !concealed {
					return
				}
				// A DELETE entry conceals the same way (it used to say "the
				// resource to delete does not exist" for a missing id only).
				missing = "Observation/nosuch" + uniq()
				batch := s.Do(t, "POST", "/fhir", bundle("batch",
					entry("", "DELETE", "Observation/"+id, nil, nil),
					entry("", "DELETE", missing, nil, nil),
				), a.wheaders).Want(t, http.StatusOK)
				if st := statuses(batch); len(st) != 2 || st[0] != st[1] || !strings.HasPrefix(st[0], "404 ") {
					t.Errorf("DELETE entries: hidden and missing %v (want 404 both)", st)
				}
				if h, m := entryOutcome(batch, 0), entryOutcome(batch, 1); h != m {
					t.Errorf("DELETE entries: hidden and missing outcomes differ:\n%s\n%s", h, m)
				}
				hidden := s.Do(t, "POST", "/fhir", bundle("transaction", entry("", "DELETE", "Observation/"+id, nil, nil)), a.wheaders)
				absent := s.Do(t, "POST", "/fhir", bundle("transaction", entry("", "DELETE", missing, nil, nil)), a.wheaders)
				if hidden.Status != http.StatusNotFound || hidden.Status != absent.Status || !reflect.DeepEqual(hidden.JSON["issue"], absent.JSON["issue"]) {
					t.Errorf("DELETE transaction: hidden %s, missing %s", hidden, absent)
				}
				wantAudited(t, s, audit.ActionDelete, audit.OutcomeError, missing)
				if v := version(t, s, "Observation/"+id); v != "1" {
					t.Fatalf("a hidden resource was deleted: version %s", v)
				}
			})
		}
	})
}
