package app_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/phivault/phivault/internal/app"
	"github.com/phivault/phivault/internal/config"
	"github.com/phivault/phivault/internal/keys"
	"github.com/phivault/phivault/internal/storage"
	"github.com/phivault/phivault/internal/storage/postgres/pgtest"
)

type secClient struct {
	t     *testing.T
	base  string
	token string
	hc    *http.Client
}

func (c secClient) do(method, path string, body []byte, hdr ...string) (int, http.Header, []byte, error) {
	req, err := http.NewRequestWithContext(c.t.Context(), method, c.base+"/fhir/"+path, bytes.NewReader(body))
	if err != nil {
		return 0, nil, nil, err
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	req.Header.Set("Accept", "application/fhir+json")
	req.Header.Set("Content-Type", "application/fhir+json")
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return 0, nil, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, b, err
}

// TestTwoProcessesOnePostgres runs two phivault instances (two app.Open,
// two connection pools, two HTTP servers) on one PostgreSQL database.
// Sixteen clients race read-modify-write updates (If-Match, retry on
// 412) of the same five resources and conditional creates with the same
// identifiers. No update may be lost, versions must be contiguous, the
// data must verify, and each conditional identifier must exist once.
func TestTwoProcessesOnePostgres(t *testing.T) {
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "keys"), 0o700); err != nil {
		t.Fatal(err)
	}
	c := config.Default(dir)
	c.Storage = config.Storage{Driver: "postgres", PostgresURL: pgtest.NewDatabase(t)}
	c.Keys.KeyFile = filepath.Join(dir, "keys", "kek.json")
	if err := keys.CreateKeyFile(c.Keys.KeyFile); err != nil {
		t.Fatal(err)
	}
	logger := slog.New(slog.DiscardHandler)
	var apps []*app.App
	var clients []secClient
	for i := range 2 {
		a, err := app.Open(t.Context(), c, logger)
		if err != nil {
			t.Fatalf("instance %d: %v", i, err)
		}
		t.Cleanup(func() { a.Close() })
		ts := httptest.NewServer(a.Handler())
		t.Cleanup(ts.Close)
		tok, err := a.Tokens().Create(t.Context(), fmt.Sprint("client", i), []string{"system"})
		if err != nil {
			t.Fatal(err)
		}
		apps = append(apps, a)
		clients = append(clients, secClient{t: t, base: ts.URL, token: tok.Reveal(), hc: ts.Client()})
	}

	const nRes, perInstance, rounds, nCond = 5, 8, 6, 5
	ids := make([]string, nRes)
	for i := range ids {
		st, h, b, err := clients[0].do(http.MethodPost, "Patient", []byte(fmt.Sprintf(`{"resourceType":"Patient","gender":"unknown","name":[{"family":"Shared%d"}]}`, i)))
		if err != nil || st != http.StatusCreated {
			t.Fatalf("seeding: %d %s %v", st, b, err)
		}
		var p struct{ ID string }
		_ = json.Unmarshal(b, &p)
		if p.ID == "" {
			loc := h.Get("Location")
			t.Fatalf("no id in the create response (Location %q)", loc)
		}
		ids[i] = p.ID
	}

	var updates [nRes]atomic.Int64
	var retries, failures atomic.Int64
	var firstErr atomic.Value
	fail := func(format string, a ...any) {
		failures.Add(1)
		firstErr.CompareAndSwap(nil, fmt.Sprintf(format, a...))
	}
	var wg sync.WaitGroup
	for inst := range 2 {
		for w := range perInstance {
			wg.Add(1)
			go func() {
				defer wg.Done()
				cl := clients[inst]
				for r := range rounds {
					i := (w + r + inst) % nRes
					for attempt := 0; ; attempt++ {
						if attempt == 200 {
							fail("update of %s never won", ids[i])
							break
						}
						st, h, body, err := cl.do(http.MethodGet, "Patient/"+ids[i], nil)
						if err != nil || st != http.StatusOK {
							fail("GET: %d %.200s %v", st, body, err)
							break
						}
						var p map[string]any
						if err := json.Unmarshal(body, &p); err != nil {
							fail("GET body: %v", err)
							break
						}
						p["gender"] = []string{"male", "female", "other", "unknown"}[(inst+w+r)%4]
						nb, _ := json.Marshal(p)
						st, _, body, err = cl.do(http.MethodPut, "Patient/"+ids[i], nb, "If-Match", h.Get("ETag"))
						if err != nil {
							fail("PUT: %v", err)
							break
						}
						if st == http.StatusPreconditionFailed {
							retries.Add(1)
							continue
						}
						if st != http.StatusOK {
							fail("PUT: %d %.300s", st, body)
							break
						}
						updates[i].Add(1)
						break
					}
					k := (w + r) % nCond
					body := fmt.Sprintf(`{"resourceType":"Patient","identifier":[{"system":"urn:sec:cond","value":"k%d"}]}`, k)
					st, _, rb, err := cl.do(http.MethodPost, "Patient", []byte(body), "If-None-Exist", fmt.Sprintf("identifier=urn:sec:cond|k%d", k))
					if err != nil || (st != http.StatusCreated && st != http.StatusOK) {
						fail("conditional create k%d: %d %.300s %v", k, st, rb, err)
					}
				}
			}()
		}
	}
	wg.Wait()
	if n := failures.Load(); n > 0 {
		t.Errorf("%d requests failed; first: %v", n, firstErr.Load())
	}
	t.Logf("%d conflicting updates retried after 412", retries.Load())

	for i, id := range ids {
		cur, err := apps[1].Store.Current(t.Context(), "Patient", id)
		if err != nil {
			t.Fatal(err)
		}
		if want := 1 + updates[i].Load(); cur.Version != want {
			t.Errorf("Patient/%s is at version %d after %d successful updates: want %d (lost update)", id, cur.Version, updates[i].Load(), want)
		}
	}
	var prev storage.VersionRef
	if err := apps[0].Store.ScanVersions(t.Context(), storage.VersionRef{}, func(v storage.Version) error {
		want := int64(1)
		if v.Type == prev.Type && v.ID == prev.ID {
			want = prev.Version + 1
		}
		if v.Version != want {
			t.Errorf("%s/%s: version %d follows %d", v.Type, v.ID, v.Version, prev.Version)
		}
		prev = storage.VersionRef{Type: v.Type, ID: v.ID, Version: v.Version}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	// Each instance followed the records it appended until another one
	// (or itself) integrated them: no false alarm.
	for i, a := range apps {
		if _, err := a.Transparency().Integrate(t.Context()); err != nil {
			t.Fatal(err)
		}
		if err := a.Transparency().CheckAppended(t.Context()); err != nil || a.Transparency().Alarm() != nil {
			t.Errorf("instance %d raised an alarm: %v, %v", i, err, a.Transparency().Alarm())
		}
	}
	rep, err := apps[0].Ledger().Verify(t.Context(), nil)
	if err != nil || !rep.OK() {
		t.Errorf("verify: %v %s %+v", err, rep.LogDivergence, rep.Data.Problems)
	}
	for k := range nCond {
		st, _, b, err := clients[k%2].do(http.MethodGet, fmt.Sprintf("Patient?identifier=urn:sec:cond|k%d&_total=accurate", k), nil)
		if err != nil || st != http.StatusOK {
			t.Fatalf("search k%d: %d %s %v", k, st, b, err)
		}
		var bundle struct {
			Total int `json:"total"`
			Entry []any
		}
		_ = json.Unmarshal(b, &bundle)
		if len(bundle.Entry) != 1 {
			t.Errorf("identifier k%d: %d resources, want exactly 1", k, len(bundle.Entry))
		}
	}
	counts, err := apps[0].Store.Counts(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if counts["Patient"] != nRes+nCond {
		t.Errorf("%d patients stored, want %d", counts["Patient"], nRes+nCond)
	}
	var total int64
	for i := range updates {
		total += updates[i].Load()
	}
	t.Logf("%d updates and %d conditional creates by 16 clients on 2 instances; %d versions verified", total, 2*perInstance*rounds, rep.Data.Verified)
}
