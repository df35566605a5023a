package cli_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestEraseFleetReadsGone runs two processes of a fleet on one database
// (two app.Open, two key-record caches, two HTTP servers). The second
// reads an Observation of a patient (so it caches the patient's key
// record), the first erases the patient, and the second, at once, must
// answer every read of the patient's versions as erased: vread 410,
// history without them, a Bundle entry 410, search and $everything
// without them. It used to serve the old versions from its cached key
// for up to 5 s; the erasure now also empties the ciphertext of every
// version of the patient, in the transaction that destroys the key.
func TestEraseFleetReadsGone(t *testing.T) {
	for _, drv := range secDrivers {
		t.Run(drv.name, func(t *testing.T) {
			dir, token := secImportSynth(t, 3, drv.initArgs(t)...)
			db := secDB(t, dir)
			victim := secRows(t, dir, db, "Patient", 1)[0].id
			owner := "Patient/" + victim
			var obs string
			if err := db.QueryRowContext(t.Context(), secPH(dir, t,
				"SELECT id FROM resources WHERE type = 'Observation' AND owner = ? ORDER BY id LIMIT 1"), owner).Scan(&obs); err != nil {
				t.Fatalf("the victim has no Observation: %v", err)
			}
			var fleet []secFHIR
			for range 2 {
				a := secOpenApp(t, dir)
				ts := httptest.NewServer(a.Handler())
				t.Cleanup(ts.Close)
				fleet = append(fleet, secFHIR{t: t, base: ts.URL, token: token, client: ts.Client()})
			}
			p1, p2 := fleet[0], fleet[1]
			vread := "Observation/" + obs + "/_history/1"
			batch := []byte(fmt.Sprintf(`{"resourceType":"Bundle","type":"batch","entry":[{"request":{"method":"GET","url":%q}}]}`, vread))
			if resp, body := p2.do(http.MethodGet, vread, nil); resp.StatusCode != http.StatusOK {
				t.Fatalf("vread on process 2 before the erasure: %s %.200s", resp.Status, body)
			}
			if resp, body := p1.do(http.MethodPost, "Patient/"+victim+"/$erase", nil); resp.StatusCode != http.StatusOK {
				t.Fatalf("$erase on process 1: %s %.200s", resp.Status, body)
			}
			if n := secCount(t, dir, db, "SELECT COUNT(*) FROM resource_versions WHERE owner = ? AND ciphertext IS NOT NULL", owner); n != 0 {
				t.Errorf("%d versions of the erased patient keep their ciphertext", n)
			}

			// Process 2 still caches the patient's key record.
			if resp, body := p2.do(http.MethodGet, vread, nil); resp.StatusCode != http.StatusGone {
				t.Errorf("vread on process 2 after the erasure: %s %.200s, want 410", resp.Status, body)
			}
			if resp, body := p2.do(http.MethodGet, "Observation/"+obs, nil); resp.StatusCode != http.StatusGone {
				t.Errorf("read on process 2 after the erasure: %s %.200s, want 410", resp.Status, body)
			}
			resp, body := p2.do(http.MethodGet, "Observation/"+obs+"/_history", nil)
			if resp.StatusCode == http.StatusOK && strings.Contains(string(body), `"resource"`) {
				t.Errorf("history on process 2 after the erasure serves a version: %.300s", body)
			} else if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusGone {
				t.Errorf("history on process 2 after the erasure: %s %.200s", resp.Status, body)
			}
			resp, body = p2.do(http.MethodPost, "", batch)
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("batch on process 2: %s %.200s", resp.Status, body)
			}
			var b struct {
				Entry []struct {
					Resource json.RawMessage `json:"resource"`
					Response struct{ Status string }
				}
			}
			if err := json.Unmarshal(body, &b); err != nil || len(b.Entry) != 1 {
				t.Fatalf("batch response: %v %.300s", err, body)
			}
			if !strings.HasPrefix(b.Entry[0].Response.Status, "410") || strings.Contains(string(b.Entry[0].Resource), `"Observation"`) {
				t.Errorf("batch vread on process 2 after the erasure: %s %.300s, want 410", b.Entry[0].Response.Status, b.Entry[0].Resource)
			}
			for _, path := range []string{"Observation?patient=" + victim, "Observation?_id=" + obs} {
				resp, body := p2.do(http.MethodGet, path, nil)
				if resp.StatusCode != http.StatusOK || strings.Contains(string(body), `"resourceType":"Observation"`) {
					t.Errorf("search %s on process 2 after the erasure: %s %.300s", path, resp.Status, body)
				}
			}
			if resp, body := p2.do(http.MethodGet, "Patient/"+victim+"/$everything", nil); resp.StatusCode != http.StatusGone {
				t.Errorf("$everything on process 2 after the erasure: %s %.200s, want 410", resp.Status, body)
			}
			rep, err := secOpenApp(t, dir).Ledger().Verify(t.Context(), nil)
			if err != nil || !rep.OK() {
				t.Errorf("verify after the erasure: %+v %v", rep.Data.Problems, err)
			}

			// An empty ciphertext is accepted only where the log erased the
			// owner: emptied in a live patient's version it is tampering.
			other := secRows(t, dir, db, "Patient", 3)
			for _, r := range other {
				if r.id == victim {
					continue
				}
				secExec(t, dir, db, "UPDATE resource_versions SET ciphertext = NULL WHERE type = 'Patient' AND id = ? AND version = ?", r.id, r.version)
				rep, err = secOpenApp(t, dir).Ledger().Verify(t.Context(), nil)
				if err != nil || rep.OK() || !strings.Contains(fmt.Sprint(rep.Data.Problems), "Patient/"+r.id) ||
					!strings.Contains(fmt.Sprint(rep.Data.Problems), "ciphertext") {
					t.Errorf("verify after emptying a live patient's ciphertext: %+v %v, want a ciphertext problem", rep.Data.Problems, err)
				}
				break
			}
		})
	}
}
