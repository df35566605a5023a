package httpapi_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/phivault/phivault/internal/apitest"
	"github.com/phivault/phivault/internal/app"
	"github.com/phivault/phivault/internal/bulk"
)

// deletedLines downloads the manifest's deleted files and returns the
// request URLs of their DELETE entries, checking the IG's shape: each
// line a transaction Bundle, each entry a DELETE of Type/id.
func deletedLines(t *testing.T, s *apitest.Server, h apitest.H, m bulkManifest) []string {
	t.Helper()
	var out []string
	for _, f := range m.Deleted {
		if f.Type != "Bundle" {
			t.Fatalf("deleted file of type %q, want Bundle", f.Type)
		}
		r := s.Do(t, "GET", f.URL, nil, mergeH(h, apitest.H{"Accept": "application/fhir+ndjson"})).Want(t, http.StatusOK)
		n := 0
		sc := bufio.NewScanner(bytes.NewReader(r.Body))
		for sc.Scan() {
			var b struct {
				ResourceType string `json:"resourceType"`
				Type         string `json:"type"`
				Entry        []struct {
					Request struct {
						Method string `json:"method"`
						URL    string `json:"url"`
					} `json:"request"`
				} `json:"entry"`
			}
			if err := json.Unmarshal(sc.Bytes(), &b); err != nil || b.ResourceType != "Bundle" || b.Type != "transaction" || len(b.Entry) == 0 {
				t.Fatalf("a deleted line is not a transaction Bundle: %s", sc.Bytes())
			}
			for _, e := range b.Entry {
				if e.Request.Method != "DELETE" {
					t.Fatalf("a deleted entry with method %q", e.Request.Method)
				}
				out = append(out, e.Request.URL)
			}
			n++
		}
		if n != f.Count {
			t.Fatalf("deleted file: %d lines, manifest count %d", n, f.Count)
		}
	}
	return out
}

// TestBulkExportDeleted: with _since, the manifest's deleted files list
// the resources of the exported types deleted after _since that the
// client could have received, and nothing else: not a resource deleted
// before _since, not one of a patient whose consent refuses the
// client's purpose, not a 42 CFR Part 2 record, not one of a type left
// out, not one deleted and written again. The files are sealed under the
// job key. Patient-level exports, and exports without _since, list none.
func TestBulkExportDeleted(t *testing.T) {
	apitest.Run(t, func(t *testing.T, s *apitest.Server) {
		open, denying := s.Create(t, patient(uniq(), nil)), s.Create(t, patient(uniq(), nil))
		s.Create(t, consentDenyPurpose(denying, "HPAYMT"))
		early := s.Create(t, observation(open, nil))
		gone := s.Create(t, observation(open, nil))
		back := s.Create(t, observation(open, nil))
		hidden := s.Create(t, observation(denying, nil))
		part2 := s.Create(t, labelled(observation(open, nil), "42CFRPart2"))
		cond := s.Create(t, map[string]any{"resourceType": "Condition", "subject": map[string]any{"reference": "Patient/" + open}})
		del := func(typ, id string) {
			s.Do(t, "DELETE", "/fhir/"+typ+"/"+id, nil, nil).Want(t, http.StatusNoContent)
		}
		del("Observation", early)
		// _since is after every write above (the server stamps versions
		// with its clock; the storage keeps microseconds).
		since := time.Now().UTC().Truncate(time.Microsecond)
		for !time.Now().After(since.Add(time.Microsecond)) { //nolint:revive // wait out the microsecond of _since
		}
		del("Observation", gone)
		del("Observation", back)
		del("Observation", hidden)
		del("Observation", part2)
		del("Condition", cond)
		res := observation(open, nil)
		res["id"] = back
		s.Do(t, "PUT", "/fhir/Observation/"+back, res, nil).Want(t, http.StatusOK, http.StatusCreated)
		fresh := s.Create(t, observation(open, nil))

		payer, _ := bulkClient(t, s, "HPAYMT", "system/*.rs")
		sinceQ := url.QueryEscape(since.Format(time.RFC3339Nano))
		status := kickoff(t, s, payer, "/fhir/$export?_type=Patient,Observation&_since="+sinceQ)
		m := finish(t, s, payer, status)
		if got := download(t, s, payer, m); got["Observation/"+fresh] == nil || got["Observation/"+back] == nil {
			t.Fatalf("the _since export misses the resources written after _since: %v", keysOf(got))
		}
		if len(m.Deleted) != 1 {
			t.Fatalf("manifest deleted files: %d, want 1", len(m.Deleted))
		}
		if got := deletedLines(t, s, payer, m); !slices.Equal(got, []string{"Observation/" + gone}) {
			t.Fatalf("deleted entries %v, want only Observation/%s", got, gone)
		}
		// Sealed like the outputs: the stored bytes do not hold the id.
		job := status[strings.LastIndex(status, "=")+1:]
		files, err := s.App.BulkJobs().Files(t.Context(), job)
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range files {
			ct, err := s.App.BulkJobs().FileData(t.Context(), job, f.N)
			if err != nil {
				t.Fatal(err)
			}
			if bytes.Contains(ct, []byte(gone)) {
				t.Fatalf("file %d (%s) is stored in the clear", f.N, f.Kind)
			}
		}

		// Without _since, and at the Patient level (where the
		// compartment of a deleted resource cannot be decided), none.
		for _, path := range []string{"/fhir/$export?_type=Observation", "/fhir/Patient/$export?_type=Observation&_since=" + sinceQ} {
			m := finish(t, s, payer, kickoff(t, s, payer, path))
			if len(m.Deleted) != 0 {
				t.Fatalf("%s: %d deleted files, want none", path, len(m.Deleted))
			}
		}
	})
}

// progressStore is the real job store, recording the X-Progress the
// status URL serves each time the runner renews its lease.
type progressStore struct {
	bulk.Store
	mu   sync.Mutex
	poll func(id string) string
	seen []string
}

func (p *progressStore) RenewLease(ctx context.Context, id, holder string, until time.Time, progress string) error {
	if err := p.Store.RenewLease(ctx, id, holder, until, progress); err != nil {
		return err
	}
	if p.poll != nil {
		x := p.poll(id)
		p.mu.Lock()
		p.seen = append(p.seen, x)
		p.mu.Unlock()
	}
	return nil
}

// TestBulkExportProgress: while an export runs, its status reports
// real progress (phase, resource and patient counts), recorded in the
// job row with the lease renewals, not "queued".
func TestBulkExportProgress(t *testing.T) {
	for _, d := range apitest.Drivers {
		t.Run(d, func(t *testing.T) {
			ps := &progressStore{}
			s := apitest.Start(t, d, app.WithBulkOptions(func(o *bulk.Options) {
				ps.Store = o.Store
				o.Store = ps
				o.PageSize = 2
			}))
			pids := []string{s.Create(t, patient(uniq(), nil)), s.Create(t, patient(uniq(), nil))}
			for _, pid := range pids {
				for range 3 {
					s.Create(t, observation(pid, nil))
				}
			}
			h, _ := bulkClient(t, s, "HOPERAT", "system/*.rs")
			var status string
			ps.poll = func(string) string {
				r := s.Do(t, "GET", status, nil, h).Want(t, http.StatusAccepted)
				return r.Header.Get("X-Progress")
			}
			body := map[string]any{"resourceType": "Parameters", "parameter": []any{
				map[string]any{"name": "_type", "valueString": "Observation"},
				map[string]any{"name": "patient", "valueReference": map[string]any{"reference": "Patient/" + pids[0]}},
				map[string]any{"name": "patient", "valueReference": map[string]any{"reference": "Patient/" + pids[1]}},
			}}
			r := s.Do(t, "POST", "/fhir/Patient/$export", body, mergeH(asyncHeaders(h), apitest.H{"Content-Type": "application/fhir+json"})).Want(t, http.StatusAccepted)
			status = r.Header.Get("Content-Location")
			if x := s.Do(t, "GET", status, nil, h).Want(t, http.StatusAccepted).Header.Get("X-Progress"); x != "queued" {
				t.Fatalf("X-Progress before the run %q, want queued", x)
			}
			finish(t, s, h, status)
			ps.mu.Lock()
			defer ps.mu.Unlock()
			if len(ps.seen) < 2 {
				t.Fatalf("progress seen %q: want it reported as the run goes", ps.seen)
			}
			for _, x := range ps.seen {
				if x == "queued" || x == "" {
					t.Fatalf("X-Progress %q while running (all: %q)", x, ps.seen)
				}
			}
			want := "exporting Observation of patient compartments: 6 resources, 2 of 2 patients"
			if !slices.Contains(ps.seen, "writing the last files: 6 resources, 2 of 2 patients") && !slices.Contains(ps.seen, want) {
				t.Fatalf("X-Progress never showed the counts; seen %q", ps.seen)
			}
			if !slices.ContainsFunc(ps.seen, func(x string) bool { return strings.HasPrefix(x, "exporting Observation") }) {
				t.Fatalf("X-Progress never named the type being exported; seen %q", ps.seen)
			}
		})
	}
}
