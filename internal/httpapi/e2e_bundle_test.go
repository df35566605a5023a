package httpapi_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/phivault/phivault/internal/apitest"
)

// entry builds one Bundle entry; res may be nil (GET, DELETE).
func entry(fullURL, method, url string, res map[string]any, req map[string]any) map[string]any {
	r := map[string]any{"method": method, "url": url}
	for k, v := range req {
		r[k] = v
	}
	e := map[string]any{"request": r}
	if fullURL != "" {
		e["fullUrl"] = fullURL
	}
	if res != nil {
		e["resource"] = res
	}
	return e
}

func bundle(kind string, entries ...map[string]any) map[string]any {
	es := make([]any, len(entries))
	for i, e := range entries {
		es[i] = e
	}
	return map[string]any{"resourceType": "Bundle", "type": kind, "entry": es}
}

// statuses returns entry.response.status of a response Bundle.
func statuses(r *apitest.Response) []string {
	var out []string
	for _, e := range r.Entries() {
		resp, _ := e["response"].(map[string]any)
		st, _ := resp["status"].(string)
		out = append(out, st)
	}
	return out
}

// locationID returns the id in entry.response.location of entry i.
func locationID(t *testing.T, r *apitest.Response, i int) string {
	t.Helper()
	es := r.Entries()
	if i >= len(es) {
		t.Fatalf("no entry %d in %s", i, r)
	}
	loc, _ := es[i]["response"].(map[string]any)["location"].(string)
	parts := strings.Split(loc, "/")
	if len(parts) < 2 {
		t.Fatalf("entry %d: location %q", i, loc)
	}
	return parts[1]
}

func countByIdentifier(t *testing.T, s *apitest.Server, typ, ident string) int {
	t.Helper()
	r := s.Do(t, "GET", "/fhir/"+typ+"?identifier="+testSystem+"|"+ident+"&_total=accurate", nil, nil).Want(t, http.StatusOK)
	n, _ := r.Total()
	return n
}

func TestE2ETransaction(t *testing.T) {
	apitest.Run(t, func(t *testing.T, s *apitest.Server) {
		npiValue := "npi-" + uniq()
		practID := s.Create(t, map[string]any{"resourceType": "Practitioner", "identifier": []any{map[string]any{"system": npi, "value": npiValue}}})
		existingIdent := uniq()
		existing := s.Create(t, patient(existingIdent, nil))

		t.Run("atomic", func(t *testing.T) {
			cases := []struct {
				name string
				bad  map[string]any
				want int
			}{
				{"schema-invalid resource", entry("", "POST", "Observation", map[string]any{"resourceType": "Observation", "status": 7, "code": map[string]any{}}, nil), 422},
				{"stale ifMatch", entry("", "PUT", "Patient/"+existing, patient(existingIdent, map[string]any{"id": existing}), map[string]any{"ifMatch": `W/"9"`}), 412},
				{"unknown fullUrl reference", entry("", "POST", "Observation", observation("x", map[string]any{"subject": ref("urn:uuid:00000000-0000-0000-0000-000000000000")}), nil), 400},
				{"conditional reference without match", entry("", "POST", "Encounter", map[string]any{"resourceType": "Encounter", "status": "finished", "class": map[string]any{"code": "AMB"},
					"participant": []any{map[string]any{"individual": ref("Practitioner?identifier=" + npi + "|nosuch-" + npiValue)}}}, nil), 412},
				{"delete unknown", entry("", "DELETE", "Patient/nosuch-"+existing, nil, nil), 404},
				{"type mismatch", entry("", "POST", "Observation", patient("x", nil), nil), 400},
				{"missing request", map[string]any{"resource": patient("x", nil)}, 400},
				{"unknown type", entry("", "POST", "Bot", map[string]any{"resourceType": "Bot"}, nil), 400},
			}
			// The control proves the checks below would see the bundle's data.
			cases = append(cases, struct {
				name string
				bad  map[string]any
				want int
			}{"control without a bad entry", nil, 200})
			for _, c := range cases {
				t.Run(c.name, func(t *testing.T) {
					ident := uniq()
					victim := s.Create(t, patient(uniq(), nil))
					entries := []map[string]any{
						entry("urn:uuid:11111111-1111-1111-1111-"+ident, "POST", "Patient", patient(ident, nil), nil),
						entry("", "POST", "Observation", observation("x", map[string]any{"subject": ref("urn:uuid:11111111-1111-1111-1111-" + ident),
							"code": coding(testSystem, ident)}), nil),
						c.bad,
						entry("", "PUT", "Patient/put-"+ident, patient(ident, map[string]any{"id": "put-" + ident}), nil),
						entry("", "DELETE", "Patient/"+victim, nil, nil),
					}
					if c.bad == nil {
						entries = append(entries[:2], entries[3:]...)
					}
					r := s.Do(t, "POST", "/fhir", bundle("transaction", entries...), nil)
					wantN, wantRead, wantVictim := 0, http.StatusNotFound, http.StatusOK
					if c.want == 200 {
						r.Want(t, http.StatusOK)
						wantN, wantRead, wantVictim = 2, http.StatusOK, http.StatusGone
					} else {
						r.WantOutcome(t, c.want)
						if !strings.Contains(string(r.Body), "Bundle.entry[2]") {
							t.Errorf("the outcome does not name the failing entry: %s", r)
						}
					}
					if n := countByIdentifier(t, s, "Patient", ident); n != wantN {
						t.Errorf("%d patients of the transaction exist, want %d", n, wantN)
					}
					s.Do(t, "GET", "/fhir/Patient/put-"+ident, nil, nil).Want(t, wantRead)
					r = s.Do(t, "GET", "/fhir/Observation?code="+testSystem+"|"+ident, nil, nil).Want(t, http.StatusOK)
					if len(r.Entries()) != wantN/2 {
						t.Errorf("%d observations of the transaction exist, want %d", len(r.Entries()), wantN/2)
					}
					s.Do(t, "GET", "/fhir/Patient/"+victim, nil, nil).Want(t, wantVictim) // the DELETE was rolled back
				})
			}
		})

		t.Run("references rewritten", func(t *testing.T) {
			ident := uniq()
			pURL, eURL := "urn:uuid:22222222-2222-2222-2222-"+ident, "urn:uuid:33333333-3333-3333-3333-"+ident
			b := bundle("transaction",
				entry("", "POST", "Observation", observation("x", map[string]any{"subject": ref(pURL), "encounter": ref(eURL),
					"performer": []any{ref("Practitioner?identifier=" + npi + "|" + npiValue)}}), nil),
				entry(eURL, "POST", "Encounter", map[string]any{"resourceType": "Encounter", "status": "finished", "class": map[string]any{"code": "AMB"},
					"subject": ref(pURL), "participant": []any{map[string]any{"individual": ref("Practitioner?identifier=" + npi + "|" + npiValue)}}}, nil),
				entry(pURL, "POST", "Patient", patient(ident, nil), nil),
			)
			r := s.Do(t, "POST", "/fhir", b, nil).Want(t, http.StatusOK)
			if r.JSON["type"] != "transaction-response" || strings.Join(statuses(r), ",") != "201 Created,201 Created,201 Created" {
				t.Fatalf("response: %s", r)
			}
			obsID, encID, pid := locationID(t, r, 0), locationID(t, r, 1), locationID(t, r, 2)
			o := s.Do(t, "GET", "/fhir/Observation/"+obsID, nil, nil).Want(t, http.StatusOK)
			if got := o.JSON["subject"].(map[string]any)["reference"]; got != "Patient/"+pid {
				t.Errorf("Observation.subject: got %v, want Patient/%s", got, pid)
			}
			if got := o.JSON["encounter"].(map[string]any)["reference"]; got != "Encounter/"+encID {
				t.Errorf("Observation.encounter: got %v, want Encounter/%s", got, encID)
			}
			if got := o.JSON["performer"].([]any)[0].(map[string]any)["reference"]; got != "Practitioner/"+practID {
				t.Errorf("conditional reference: got %v, want Practitioner/%s", got, practID)
			}
			e := s.Do(t, "GET", "/fhir/Encounter/"+encID, nil, nil).Want(t, http.StatusOK)
			if got := e.JSON["participant"].([]any)[0].(map[string]any)["individual"].(map[string]any)["reference"]; got != "Practitioner/"+practID {
				t.Errorf("Encounter participant: got %v", got)
			}
			ev := s.Do(t, "GET", "/fhir/Patient/"+pid+"/$everything", nil, nil).Want(t, http.StatusOK)
			sameSet(t, "$everything of the new patient", ev.IDs(), []string{"Patient/" + pid, "Observation/" + obsID, "Encounter/" + encID})
			so := s.Do(t, "GET", "/fhir/Observation?patient="+pid, nil, nil).Want(t, http.StatusOK)
			sameSet(t, "search by the rewritten reference", so.IDs(), []string{"Observation/" + obsID})
		})

		t.Run("ifNoneExist", func(t *testing.T) {
			pURL := "urn:uuid:44444444-4444-4444-4444-" + uniq()[:12]
			ident := uniq()
			b := bundle("transaction",
				entry(pURL, "POST", "Patient", patient(existingIdent, nil), map[string]any{"ifNoneExist": "identifier=" + testSystem + "|" + existingIdent}),
				entry("", "POST", "Observation", observation("x", map[string]any{"subject": ref(pURL)}), nil),
				entry("", "POST", "Patient", patient(ident, nil), map[string]any{"ifNoneExist": "identifier=" + testSystem + "|" + ident}),
			)
			r := s.Do(t, "POST", "/fhir", b, nil).Want(t, http.StatusOK)
			if got := strings.Join(statuses(r), ","); got != "200 OK,201 Created,201 Created" {
				t.Fatalf("statuses: %s", got)
			}
			if id := locationID(t, r, 0); id != existing {
				t.Errorf("ifNoneExist matched %s, want the existing %s", id, existing)
			}
			o := s.Do(t, "GET", "/fhir/Observation/"+locationID(t, r, 1), nil, nil).Want(t, http.StatusOK)
			if got := o.JSON["subject"].(map[string]any)["reference"]; got != "Patient/"+existing {
				t.Errorf("reference to a matched ifNoneExist entry: got %v, want Patient/%s", got, existing)
			}
			if n := countByIdentifier(t, s, "Patient", existingIdent); n != 1 {
				t.Errorf("%d patients with the existing identifier, want 1", n)
			}
			if n := countByIdentifier(t, s, "Patient", ident); n != 1 {
				t.Errorf("%d patients with the new identifier, want 1", n)
			}
		})

		t.Run("PUT DELETE GET", func(t *testing.T) {
			ident := uniq()
			victim := s.Create(t, patient(uniq(), nil))
			updated := s.Create(t, patient(ident, map[string]any{"gender": "male"}))
			cid := "tx-" + ident
			b := bundle("transaction",
				entry("", "GET", "Patient/"+updated, nil, nil),
				entry("", "GET", "Patient?identifier="+testSystem+"|"+ident, nil, nil),
				entry("", "PUT", "Patient/"+cid, patient(uniq(), map[string]any{"id": cid}), nil),
				entry("", "PUT", "Patient/"+updated, patient(ident, map[string]any{"id": updated, "gender": "female"}), map[string]any{"ifMatch": `W/"1"`}),
				entry("", "DELETE", "Patient/"+victim, nil, nil),
				entry("", "PUT", "Patient?identifier="+testSystem+"|cond-"+ident, patient("cond-"+ident, nil), nil),
			)
			r := s.Do(t, "POST", "/fhir", b, nil).Want(t, http.StatusOK)
			if got := strings.Join(statuses(r), ","); got != "200 OK,200 OK,201 Created,200 OK,204 No Content,201 Created" {
				t.Errorf("statuses: %s", got)
			}
			es := r.Entries()
			if len(es) == 6 {
				// GETs run after the writes (R4 §3.1.0.11.2), so they see the update.
				if g := es[0]["resource"].(map[string]any); g["gender"] != "female" {
					t.Errorf("GET entry: got %v", g)
				}
				if g := es[1]["resource"].(map[string]any); g["resourceType"] != "Bundle" || len(g["entry"].([]any)) != 1 {
					t.Errorf("GET search entry: got %v", g)
				}
			}
			s.Do(t, "GET", "/fhir/Patient/"+cid, nil, nil).Want(t, http.StatusOK)
			s.Do(t, "GET", "/fhir/Patient/"+victim, nil, nil).WantOutcome(t, http.StatusGone)
			p := s.Do(t, "GET", "/fhir/Patient/"+updated, nil, nil).Want(t, http.StatusOK)
			if meta(p.JSON)["versionId"] != "2" {
				t.Errorf("updated patient: %s", p)
			}
			if n := countByIdentifier(t, s, "Patient", "cond-"+ident); n != 1 {
				t.Errorf("conditional PUT created %d patients, want 1", n)
			}
		})

		t.Run("not a transaction", func(t *testing.T) {
			cases := []struct {
				name string
				body any
			}{
				{"searchset", map[string]any{"resourceType": "Bundle", "type": "searchset"}},
				{"collection", map[string]any{"resourceType": "Bundle", "type": "collection", "entry": []any{}}},
				{"no type", map[string]any{"resourceType": "Bundle"}},
				{"entry not an array", map[string]any{"resourceType": "Bundle", "type": "batch", "entry": map[string]any{}}},
				{"a Patient", patient("x", nil)},
			}
			for _, c := range cases {
				t.Run(c.name, func(t *testing.T) {
					s.Do(t, "POST", "/fhir", c.body, nil).WantOutcome(t, http.StatusBadRequest, http.StatusUnprocessableEntity)
				})
			}
		})
	})
}

func TestE2EBatch(t *testing.T) {
	apitest.Run(t, func(t *testing.T, s *apitest.Server) {
		ident := uniq()
		existing := s.Create(t, patient(uniq(), nil))
		b := bundle("batch",
			entry("", "POST", "Patient", patient(ident, nil), nil),
			entry("", "POST", "Observation", map[string]any{"resourceType": "Observation", "status": 7, "code": map[string]any{}}, nil),
			entry("", "PUT", "Patient/batch-"+ident, patient(ident, map[string]any{"id": "batch-" + ident}), nil),
			entry("", "GET", "Patient/nosuch-"+ident, nil, nil),
			entry("", "PUT", "Patient/"+existing, patient(uniq(), map[string]any{"id": existing}), map[string]any{"ifMatch": `W/"7"`}),
			entry("", "DELETE", "Patient/nosuch-"+ident, nil, nil),
			map[string]any{"request": map[string]any{"method": "PATCH", "url": "Patient/" + existing}},
			entry("", "GET", "Patient/"+existing, nil, nil),
		)
		r := s.Do(t, "POST", "/fhir", b, nil).Want(t, http.StatusOK)
		if r.JSON["type"] != "batch-response" {
			t.Fatalf("type: %v", r.JSON["type"])
		}
		want := []string{"201", "422", "201", "404", "412", "404", "400", "200"}
		got := statuses(r)
		if len(got) != len(want) {
			t.Fatalf("statuses: got %v, want %v", got, want)
		}
		for i, e := range r.Entries() {
			if !strings.HasPrefix(got[i], want[i]+" ") {
				t.Errorf("entry %d: status %q, want %s", i, got[i], want[i])
			}
			resp := e["response"].(map[string]any)
			oo, _ := resp["outcome"].(map[string]any)
			if failed := want[i][0] != '2'; failed != (oo != nil) {
				t.Errorf("entry %d (%s): outcome %v", i, got[i], oo)
			} else if failed && oo["resourceType"] != "OperationOutcome" {
				t.Errorf("entry %d: outcome is %v", i, oo["resourceType"])
			}
		}
		if n := countByIdentifier(t, s, "Patient", ident); n != 2 {
			t.Errorf("%d patients from the batch's good entries, want 2", n)
		}
		p := s.Do(t, "GET", "/fhir/Patient/"+existing, nil, nil).Want(t, http.StatusOK)
		if meta(p.JSON)["versionId"] != "1" {
			t.Errorf("a failed batch entry changed the patient: %s", p)
		}
		for _, base := range []string{"/fhir", "/fhir/"} {
			r := s.Do(t, "POST", base, bundle("batch"), nil).Want(t, http.StatusOK)
			if r.JSON["type"] != "batch-response" {
				t.Errorf("POST %s: %s", base, r)
			}
		}
	})
}
