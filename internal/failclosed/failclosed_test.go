// Package failclosed_test proves, end to end through the HTTP handler,
// that phivault fails closed when its audit log cannot be appended
// (DESIGN rule 28): no PHI leaves the server, and no write commits
// without its audit event.
//
// The app is assembled here the way internal/app does it, except that
// the store is wrapped so that AppendAudit (both Store.AppendAudit, used
// by the read batcher, and Tx.AppendAudit, used by writes) can be
// switched to fail.
package failclosed_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/phivault/phivault/internal/audit"
	"github.com/phivault/phivault/internal/authn"
	"github.com/phivault/phivault/internal/authz"
	"github.com/phivault/phivault/internal/fhir"
	"github.com/phivault/phivault/internal/fhir/search"
	"github.com/phivault/phivault/internal/httpapi"
	"github.com/phivault/phivault/internal/ident"
	"github.com/phivault/phivault/internal/keys"
	"github.com/phivault/phivault/internal/record"
	"github.com/phivault/phivault/internal/storage"
	"github.com/phivault/phivault/internal/storage/sqlite"
)

// errAuditDown is what the broken audit table answers. It is
// deliberately not a storage sentinel: whatever the cause, a request
// whose audit event cannot be made durable must fail closed.
var errAuditDown = errors.New("injected: audit table unwritable")

// auditSwitch is a storage.Store whose audit appends fail while down is set.
type auditSwitch struct {
	storage.Store
	down    atomic.Bool
	appends atomic.Int64 // successful audit appends, both paths
}

var _ storage.Store = (*auditSwitch)(nil)

func (s *auditSwitch) AppendAudit(ctx context.Context, recs ...storage.AuditRecord) error {
	if s.down.Load() {
		return errAuditDown
	}
	if err := s.Store.AppendAudit(ctx, recs...); err != nil {
		return err
	}
	s.appends.Add(1)
	return nil
}

func (s *auditSwitch) Update(ctx context.Context, fn func(storage.Tx) error) error {
	return s.Store.Update(ctx, func(tx storage.Tx) error { return fn(&auditSwitchTx{Tx: tx, s: s}) })
}

type auditSwitchTx struct {
	storage.Tx
	s *auditSwitch
}

func (t *auditSwitchTx) AppendAudit(ctx context.Context, recs ...storage.AuditRecord) error {
	if t.s.down.Load() {
		return errAuditDown
	}
	if err := t.Tx.AppendAudit(ctx, recs...); err != nil {
		return err
	}
	t.s.appends.Add(1)
	return nil
}

// server is a running phivault over an auditSwitch.
type server struct {
	url   string
	token string
	store *auditSwitch
	ids   *idSource
	logs  *syncBuffer
}

// idSource hands out predictable resource ids and remembers the last.
type idSource struct {
	mu   sync.Mutex
	n    int
	last string
}

func (s *idSource) next() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.n++
	s.last = fmt.Sprintf("fc-%04d", s.n)
	return s.last
}

func (s *idSource) lastID() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.last
}

type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func start(t *testing.T) *server {
	t.Helper()
	ctx := t.Context()
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "kek.json")
	if err := keys.CreateKeyFile(keyFile); err != nil {
		t.Fatal(err)
	}
	kek, err := keys.OpenKEK(ctx, keys.KEKSource{KeyFile: keyFile}, nil)
	if err != nil {
		t.Fatal(err)
	}
	db, err := sqlite.Open(ctx, filepath.Join(dir, "phivault.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	st := &auditSwitch{Store: db}
	kr := keys.NewKeyring(kek, keys.Options{})

	sys := map[ident.Owner]storage.KeyRecord{}
	err = st.Update(ctx, func(tx storage.Tx) error {
		for _, name := range []ident.Owner{keys.SystemBlindIndex, keys.SystemToken, keys.SystemAudit, keys.SystemLedger} {
			rec, err := kr.NewSystemKey(name, time.Now())
			if err != nil {
				return err
			}
			if err := tx.PutKey(ctx, rec); err != nil {
				return err
			}
			sys[name] = rec
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := kr.LoadSystemKeys(sys[keys.SystemBlindIndex], sys[keys.SystemToken], sys[keys.SystemAudit]); err != nil {
		t.Fatal(err)
	}
	ledger, err := kr.LoadLedgerKey(sys[keys.SystemLedger])
	if err != nil {
		t.Fatal(err)
	}
	secret, tok, err := authn.NewToken("failclosed", []string{"system"}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Update(ctx, func(tx storage.Tx) error { return tx.PutToken(ctx, tok) }); err != nil {
		t.Fatal(err)
	}
	reg, err := search.New()
	if err != nil {
		t.Fatal(err)
	}
	batcher := audit.NewBatcher(st, audit.BatcherOptions{})
	ids := &idSource{}
	rec := record.New(record.Deps{
		Store:     st,
		Keys:      kr,
		Validator: fhir.NewValidator(),
		Registry:  reg,
		Log:       audit.NewLog(kr),
		Batcher:   batcher,
		Now:       time.Now,
		NewID:     ids.next,
		Ledger:    ledger,
	})
	// The default authorization policies (the system token reaches
	// everything), over the same store: the FHIR API refuses to serve
	// without an authorizer.
	pol, err := authz.Defaults()
	if err != nil {
		t.Fatal(err)
	}
	az, err := authz.New(authz.Options{Policies: pol, Source: record.NewAuthzSource(rec), Users: db.Users(), Grants: db.Authz()})
	if err != nil {
		t.Fatal(err)
	}
	rec.SetWriteHook(az.Changed)
	logs := &syncBuffer{}
	h := httpapi.New(httpapi.Options{
		Authorizer:    az,
		Record:        rec,
		Authenticator: authn.NewAuthenticator(st, nil),
		Logger:        slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Now:           time.Now,
		MaxBodyBytes:  1 << 20,
		Version:       "test",
		Ready:         func(context.Context) error { return nil },
		LogAudit:      recorder{log: audit.NewLog(kr), batch: batcher},
	}).Handler()
	ts := httptest.NewServer(h)
	// Shutdown order as in app: stop HTTP, drain the batcher, close the DB.
	t.Cleanup(func() {
		ts.Close()
		batcher.Close()
		if err := db.Close(); err != nil {
			t.Errorf("closing database: %v", err)
		}
	})
	return &server{url: ts.URL, token: secret.Reveal(), store: st, ids: ids, logs: logs}
}

// recorder is how app records the HTTP layer's own events (attempts,
// gate refusals): sealed with the log key, durable through the batcher.
type recorder struct {
	log   *audit.Log
	batch *audit.Batcher
}

func (r recorder) Record(ctx context.Context, ev audit.Event) error {
	rec, err := r.log.Seal(ev)
	if err != nil {
		return err
	}
	return r.batch.Record(ctx, rec)
}

type response struct {
	status int
	header http.Header
	body   string
	json   map[string]any
}

func (s *server) do(t *testing.T, method, path, body string) response {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(t.Context(), method, s.url+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if s.token != "" {
		req.Header.Set("Authorization", "Bearer "+s.token)
	}
	req.Header.Set("Accept", "application/fhir+json")
	if body != "" {
		req.Header.Set("Content-Type", "application/fhir+json")
	}
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	r := response{status: resp.StatusCode, header: resp.Header, body: string(b)}
	_ = json.Unmarshal(b, &r.json)
	return r
}

// Planted values: distinctive strings that appear nowhere but in the
// patients the tests create.
const (
	plantedFamily = "Quorvalenski"
	plantedGiven  = "Ysmeralda"
	plantedMRN    = "MRN-PLANTED-77031"
	plantedPhone  = "555-0199-4242"
)

func patientJSON(family, id string) string {
	idField := ""
	if id != "" {
		idField = fmt.Sprintf(`"id":%q,`, id)
	}
	return fmt.Sprintf(`{"resourceType":"Patient",%s"name":[{"family":%q,"given":[%q]}],`+
		`"identifier":[{"system":"urn:oid:2.16.840.1.113883.4.1","value":%q}],`+
		`"telecom":[{"system":"phone","value":%q}],"birthDate":"1958-11-02"}`,
		idField, family, plantedGiven, plantedMRN, plantedPhone)
}

// wantFailedClosed asserts a 503 OperationOutcome with Retry-After and
// no trace of any planted value (nor extra, e.g. the resource id).
func wantFailedClosed(t *testing.T, r response, extra ...string) {
	t.Helper()
	if r.status != http.StatusServiceUnavailable {
		t.Errorf("status: got %d, want 503; body %s", r.status, r.body)
	}
	if r.header.Get("Retry-After") == "" {
		t.Errorf("503 without a Retry-After header")
	}
	if r.json["resourceType"] != "OperationOutcome" {
		t.Errorf("body is not an OperationOutcome: %s", r.body)
	}
	for _, v := range append([]string{plantedFamily, plantedGiven, plantedMRN, plantedPhone, "1958-11-02"}, extra...) {
		if strings.Contains(r.body, v) {
			t.Errorf("the 503 body leaks %q: %s", v, r.body)
		}
	}
}

func TestAuditOutageFailsClosed(t *testing.T) {
	s := start(t)

	// A patient stored while the audit log was healthy.
	created := s.do(t, "POST", "/fhir/Patient", patientJSON(plantedFamily, ""))
	if created.status != http.StatusCreated {
		t.Fatalf("create with healthy audit: %d %s", created.status, created.body)
	}
	pid, _ := created.json["id"].(string)
	if pid == "" {
		t.Fatalf("created patient has no id: %s", created.body)
	}

	s.store.down.Store(true)

	reads := []struct {
		name, path string
	}{
		{"read", "/fhir/Patient/" + pid},
		{"vread", "/fhir/Patient/" + pid + "/_history/1"},
		{"search by name", "/fhir/Patient?family=" + plantedFamily},
		{"search by identifier", "/fhir/Patient?identifier=" + plantedMRN},
		{"search all", "/fhir/Patient"},
		{"everything", "/fhir/Patient/" + pid + "/$everything"},
		{"history", "/fhir/Patient/" + pid + "/_history"},
	}
	for _, tt := range reads {
		t.Run("audit down/"+tt.name, func(t *testing.T) {
			wantFailedClosed(t, s.do(t, "GET", tt.path, ""), pid)
		})
	}

	writes := []struct {
		name         string
		method, path string
		body         func() string
		// id returns the id the failed write would have created.
		id func() string
	}{
		{"create", "POST", "/fhir/Patient", func() string { return patientJSON("Createfailowicz", "") }, s.ids.lastID},
		{"update as create", "PUT", "/fhir/Patient/fc-put-1", func() string { return patientJSON("Putfailowicz", "fc-put-1") }, func() string { return "fc-put-1" }},
		{"transaction", "POST", "/fhir", func() string {
			return `{"resourceType":"Bundle","type":"transaction","entry":[{"fullUrl":"urn:uuid:0b9f0f39-1111-4a3c-9d6e-2f0c8b1a0001",` +
				`"resource":` + patientJSON("Bundlefailowicz", "") + `,"request":{"method":"POST","url":"Patient"}}]}`
		}, s.ids.lastID},
	}
	for _, tt := range writes {
		t.Run("audit down/"+tt.name, func(t *testing.T) {
			before := s.ids.lastID()
			r := s.do(t, tt.method, tt.path, tt.body())
			wantFailedClosed(t, r)
			id := tt.id()
			if tt.method == "POST" && id == before {
				t.Fatalf("the write never reached the store (no id was assigned): %d %s", r.status, r.body)
			}
			// With the audit log back, the write must not be there: it
			// rolled back together with its audit event.
			s.store.down.Store(false)
			defer s.store.down.Store(true)
			got := s.do(t, "GET", "/fhir/Patient/"+id, "")
			if got.status != http.StatusNotFound {
				t.Errorf("after a %s failed for want of an audit event, Patient/%s: got %d, want 404: %s",
					tt.name, id, got.status, got.body)
			}
		})
	}

	if strings.Contains(s.logs.String(), plantedFamily) || strings.Contains(s.logs.String(), plantedMRN) {
		t.Errorf("the server log carries planted PHI")
	}

	t.Run("audit healthy again", func(t *testing.T) {
		s.store.down.Store(false)
		appends := s.store.appends.Load()
		r := s.do(t, "GET", "/fhir/Patient/"+pid, "")
		if r.status != http.StatusOK || !strings.Contains(r.body, plantedFamily) {
			t.Fatalf("read after recovery: %d %s", r.status, r.body)
		}
		r = s.do(t, "GET", "/fhir/Patient?family="+plantedFamily, "")
		if r.status != http.StatusOK || !strings.Contains(r.body, pid) {
			t.Fatalf("search after recovery: %d %s", r.status, r.body)
		}
		for _, fam := range []string{"Createfailowicz", "Putfailowicz", "Bundlefailowicz"} {
			r = s.do(t, "GET", "/fhir/Patient?family="+fam+"&_total=accurate", "")
			if r.status != http.StatusOK || fmt.Sprint(r.json["total"]) != "0" {
				t.Errorf("search for the family of a failed write (%s): got %d %s, want an empty Bundle", fam, r.status, r.body)
			}
		}
		r = s.do(t, "POST", "/fhir/Patient", patientJSON("Recoverowicz", ""))
		if r.status != http.StatusCreated {
			t.Fatalf("create after recovery: %d %s", r.status, r.body)
		}
		if got := s.store.appends.Load(); got <= appends {
			t.Errorf("audit appends did not grow after recovery (%d -> %d)", appends, got)
		}
	})
}

// TestAttemptsFailClosed: a request that no handler audits (refused
// before any decision, or for an id that does not exist) needs its
// generic event like any other: while the audit log cannot be appended
// it is answered 503, never its 401, 404 or 400 (issue 11 item 13).
func TestAttemptsFailClosed(t *testing.T) {
	s := start(t)
	s.store.down.Store(true)
	for _, tt := range []struct {
		name, method, path, body string
		noAuth                   bool
	}{
		{"read of an unknown id", "GET", "/fhir/Patient/fc-missing", "", false},
		{"delete of an unknown id", "DELETE", "/fhir/Patient/fc-missing", "", false},
		{"malformed body", "POST", "/fhir/Patient", "{", false},
		{"unknown route", "GET", "/fhir/NotAType", "", false},
		{"no credential", "GET", "/fhir/Patient", "", true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			tok := s.token
			if tt.noAuth {
				s.token = ""
				defer func() { s.token = tok }()
			}
			wantFailedClosed(t, s.do(t, tt.method, tt.path, tt.body))
		})
	}
	s.store.down.Store(false)
	if r := s.do(t, "GET", "/fhir/Patient/fc-missing", ""); r.status != http.StatusNotFound {
		t.Fatalf("with the audit log back, an unknown id: %d, want 404", r.status)
	}
}
