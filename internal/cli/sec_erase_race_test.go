package cli_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
)

// TestEraseRacingWritesLeavesNothing erases a patient while writers on
// two processes of a fleet (two app.Open on one database) create and
// update the patient's Observations (single writes and transaction
// Bundles). A write that raced the erasure used
// to commit after it on PostgreSQL (it had read the key record before
// the erasure destroyed it): live versions with ciphertext, emptied
// versions without a delete marker, index rows, and "phivault verify"
// reporting tampering. Now every write checks and locks the owner's key
// record in its transaction: it commits before the erasure and is erased
// with the rest, or it is refused with 410.
func TestEraseRacingWritesLeavesNothing(t *testing.T) {
	for _, drv := range secDrivers {
		t.Run(drv.name, func(t *testing.T) {
			dir, token := secImportSynth(t, 2, drv.initArgs(t)...)
			db := secDB(t, dir)
			victim := secRows(t, dir, db, "Patient", 1)[0].id
			owner := "Patient/" + victim
			var fleet []secFHIR
			for range 2 {
				a := secOpenApp(t, dir)
				ts := httptest.NewServer(a.Handler())
				t.Cleanup(ts.Close)
				fleet = append(fleet, secFHIR{t: t, base: ts.URL, token: token, client: ts.Client()})
			}
			obs := fmt.Sprintf(`{"resourceType":"Observation","status":"final","code":{"coding":[{"system":"http://loinc.org","code":"8302-2"}]},"subject":{"reference":%q}}`, owner)

			entry := fmt.Sprintf(`{"resource":%s,"request":{"method":"POST","url":"Observation"}}`, obs)
			txBundle := `{"resourceType":"Bundle","type":"transaction","entry":[` + entry + `,` + entry + `]}`

			// send is secFHIR.do without t.Fatal (it runs in goroutines).
			send := func(f secFHIR, method, path string, body []byte) (int, []byte, error) {
				req, err := http.NewRequestWithContext(t.Context(), method, f.base+"/fhir/"+path, bytes.NewReader(body))
				if err != nil {
					return 0, nil, err
				}
				req.Header.Set("Authorization", "Bearer "+f.token)
				req.Header.Set("Accept", "application/fhir+json")
				req.Header.Set("Content-Type", "application/fhir+json")
				resp, err := f.client.Do(req)
				if err != nil {
					return 0, nil, err
				}
				defer resp.Body.Close()
				var buf bytes.Buffer
				_, err = buf.ReadFrom(resp.Body)
				return resp.StatusCode, buf.Bytes(), err
			}

			const writers = 6
			var (
				erased, ok, gone, unrefused atomic.Int64
				wg                          sync.WaitGroup
				mu                          sync.Mutex
				problems                    []string
			)
			started := make(chan struct{}, writers)
			for w := range writers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					f := fleet[w%2]
					var mine string // an Observation this writer created, updated in turn
					refusals, notified := 0, false
					for i := 0; refusals < 3 && i < 2000; i++ {
						method, path, body := http.MethodPost, "Observation", []byte(obs)
						switch {
						case i%3 == 2:
							// A transaction Bundle: two creates in one transaction.
							method, path, body = http.MethodPost, "", []byte(txBundle)
						case mine != "" && i%3 == 1:
							method, path = http.MethodPut, "Observation/"+mine
							var m map[string]any
							_ = json.Unmarshal(body, &m)
							m["id"] = mine
							body, _ = json.Marshal(m)
						}
						code, resp, err := send(f, method, path, body)
						switch {
						case err != nil:
							mu.Lock()
							problems = append(problems, fmt.Sprintf("%s %s: %v", method, path, err))
							mu.Unlock()
							return
						case code == http.StatusCreated || code == http.StatusOK:
							ok.Add(1)
							if method == http.MethodPost && path != "" {
								var r struct{ ID string }
								if json.Unmarshal(resp, &r) == nil {
									mine = r.ID
								}
							}
							if !notified {
								notified = true
								started <- struct{}{}
							}
						case code == http.StatusGone:
							if erased.Load() == 0 {
								mu.Lock()
								problems = append(problems, fmt.Sprintf("%s %s answered 410 before the erasure", method, path))
								mu.Unlock()
							}
							refusals++
							gone.Add(1)
						case code == http.StatusServiceUnavailable:
							// A lock wait out of its budget: allowed, not a write.
						default:
							mu.Lock()
							problems = append(problems, fmt.Sprintf("%s %s: %d %.200s", method, path, code, resp))
							mu.Unlock()
							return
						}
					}
					if !notified {
						started <- struct{}{}
					}
					if refusals == 0 {
						unrefused.Add(1)
					}
				}()
			}
			for range writers {
				<-started
			}
			erased.Store(1) // from now on, 410 is a right answer
			before := ok.Load()
			code, body, err := send(fleet[0], http.MethodPost, "Patient/"+victim+"/$erase", nil)
			during := ok.Load() - before
			if err != nil || code != http.StatusOK {
				t.Fatalf("$erase during the writes: %d %v %.300s", code, err, body)
			}
			wg.Wait()
			for _, p := range problems {
				t.Error(p)
			}
			t.Logf("%d writes succeeded, %d while the erasure ran; %d refused as erased", ok.Load(), during, gone.Load())
			if n := unrefused.Load(); n > 0 {
				// They ran out of writes before the erasure could commit:
				// it waited behind them for as long as they wrote.
				t.Errorf("%d of %d writers never had a write refused as erased: the erasure did not commit while writes went on", n, writers)
			}

			if n := secCount(t, dir, db, "SELECT COUNT(*) FROM resource_versions WHERE owner = ? AND ciphertext IS NOT NULL", owner); n != 0 {
				t.Errorf("%d versions of the erased patient keep their ciphertext", n)
			}
			if n := secCount(t, dir, db, "SELECT COUNT(*) FROM resources WHERE owner = ? AND NOT deleted", owner); n != 0 {
				t.Errorf("%d resources of the erased patient are live", n)
			}
			if n := secCount(t, dir, db, `SELECT COUNT(*) FROM resources r JOIN resource_versions v ON v.type = r.type AND v.id = r.id AND v.version = r.version
WHERE r.owner = ? AND NOT v.deleted`, owner); n != 0 {
				t.Errorf("%d resources of the erased patient have no delete marker as their current version", n)
			}
			if n := secCount(t, dir, db, `SELECT COUNT(*) FROM search_index i JOIN resources r ON r.type = i.type AND r.id = i.id WHERE r.owner = ?`, owner); n != 0 {
				t.Errorf("%d index rows name the erased patient's resources", n)
			}
			for i, f := range fleet {
				if code, body, err := send(f, http.MethodPost, "Observation", []byte(obs)); err != nil || code != http.StatusGone {
					t.Errorf("create for the erased patient on process %d: %d %v %.200s, want 410", i+1, code, err, body)
				}
			}
			rep, err := secOpenApp(t, dir).Ledger().Verify(t.Context(), nil)
			if err != nil || !rep.OK() {
				t.Errorf("verify after an erasure that raced writes: %+v %v", rep.Data.Problems, err)
			}
		})
	}
}
