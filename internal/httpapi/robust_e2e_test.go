package httpapi_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	_ "github.com/jackc/pgx/v5/stdlib" // "pgx" for the raw handle of lock tests

	"github.com/phivault/phivault/internal/apitest"
	"github.com/phivault/phivault/internal/audit"
	"github.com/phivault/phivault/internal/config"
	"github.com/phivault/phivault/internal/storage/postgres/pgtest"
)

// TestAttemptFlood: unauthenticated requests from one address are
// recorded one by one up to the burst, then answered 429 (Retry-After)
// and only counted; the count reaches the log as one rate-limit event
// for the address. Authenticated requests from the same address are
// not limited.
func TestAttemptFlood(t *testing.T) {
	apitestRun(t, func(c *config.Config) { c.Limits.AttemptBurst, c.Limits.AttemptsPerMinute = 5, 1 }, func(t *testing.T, s *apitest.Server) {
		noAuth := apitest.H{"Authorization": apitest.NoAuth}
		var recorded, refused []*apitest.Response
		for range 20 {
			r := s.Do(t, "GET", "/fhir/Patient", nil, noAuth)
			switch r.Status {
			case http.StatusUnauthorized:
				recorded = append(recorded, r)
			case http.StatusTooManyRequests:
				if r.Header.Get("Retry-After") == "" || r.JSON["resourceType"] != "OperationOutcome" {
					t.Fatalf("429 without Retry-After or OperationOutcome: %s", r)
				}
				refused = append(refused, r)
			default:
				t.Fatalf("unauthenticated flood: got %s", r)
			}
		}
		if len(recorded) != 5 || len(refused) != 15 {
			t.Fatalf("got %d answered 401 and %d refused 429, want 5 and 15", len(recorded), len(refused))
		}
		// The service still serves authenticated callers from the address.
		s.Do(t, "GET", "/fhir/Patient", nil, nil).Want(t, http.StatusOK)

		if err := s.App.ReportAttempts(t.Context()); err != nil {
			t.Fatal(err)
		}
		evs := auditEvents(t, s)
		for _, r := range recorded {
			if len(eventsOf(t, evs, r)) != 1 {
				t.Fatalf("a 401 within the burst has no event of its own")
			}
		}
		for _, r := range refused {
			if n := len(eventsOf(t, evs, r)); n != 0 {
				t.Fatalf("a refused request has %d events of its own, want them counted only", n)
			}
		}
		i := slices.IndexFunc(evs, func(ev audit.Event) bool {
			return ev.Action == audit.ActionRateLimit && ev.Agent.Address == "127.0.0.1" && slices.Contains(ev.Policies, "count=15")
		})
		if i < 0 {
			t.Fatalf("no rate-limit event counting the 15 refusals of 127.0.0.1")
		}
		if ev := evs[i]; ev.Outcome != audit.OutcomeDenied || ev.Status != http.StatusTooManyRequests {
			t.Fatalf("rate-limit event: %+v", ev)
		}
	})
}

// apitestRun is apitest.Run with the configuration edited.
func apitestRun(t *testing.T, edit func(*config.Config), fn func(t *testing.T, s *apitest.Server)) {
	t.Helper()
	for _, d := range apitest.Drivers {
		t.Run(d, func(t *testing.T) { fn(t, apitest.StartWith(t, d, edit)) })
	}
}

// rawDB opens the server's database as another client would (an
// operator's session, an attacker with database access).
func rawDB(t *testing.T, s *apitest.Server) *sql.DB {
	t.Helper()
	return storageDB(t, s.App.Config.Storage)
}

// storageDB opens the database c names with plain SQL.
func storageDB(t *testing.T, c config.Storage) *sql.DB {
	t.Helper()
	var db *sql.DB
	var err error
	if c.Driver == "postgres" {
		db, err = sql.Open("pgx", c.PostgresURL)
	} else {
		db, err = sql.Open("sqlite", "file:"+c.SQLitePath+"?_pragma=busy_timeout(10000)")
	}
	if err != nil {
		t.Fatal(err)
	}
	db.SetMaxOpenConns(1)
	t.Cleanup(func() { db.Close() })
	return db
}

// placeholders rewrites q's ? as $1, $2, ... on PostgreSQL.
func placeholders(s *apitest.Server, q string) string { return rebindFor(s.Driver, q) }

func rebindFor(driver, q string) string {
	if driver != "postgres" {
		return q
	}
	for i := 1; strings.Contains(q, "?"); i++ {
		q = strings.Replace(q, "?", "$"+strconv.Itoa(i), 1)
	}
	return q
}

// TestTamperedRowIsOneEntry: one stored version whose ciphertext was
// changed in the database makes an OperationOutcome entry naming it
// (type, id, version: no content) in a search, a type history, a
// patient's $everything and a batch's search entry, instead of turning
// each into a 500; the other rows are served; the server logs the row.
func TestTamperedRowIsOneEntry(t *testing.T) {
	apitest.Run(t, func(t *testing.T, s *apitest.Server) {
		pid := s.Create(t, patient(uniq(), nil))
		var obs []string
		for range 3 {
			obs = append(obs, s.Create(t, observation(pid, nil)))
		}
		db := rawDB(t, s)
		bad := obs[1]
		res, err := db.ExecContext(t.Context(), placeholders(s, "UPDATE resource_versions SET ciphertext = ? WHERE type = 'Observation' AND id = ? AND version = 1"),
			[]byte("not the ciphertext of this row, not even close to it"), bad)
		if err != nil {
			t.Fatal(err)
		}
		if n, _ := res.RowsAffected(); n != 1 {
			t.Fatalf("tampered %d rows, want 1", n)
		}
		ref := "Observation/" + bad + "/_history/1"

		// wantOutcome checks that entries hold the two good observations
		// and one OperationOutcome naming the tampered row.
		wantOutcome := func(t *testing.T, what string, entries []map[string]any) {
			t.Helper()
			var good, outcomes int
			for _, e := range entries {
				res, _ := e["resource"].(map[string]any)
				resp, _ := e["response"].(map[string]any)
				if out, ok := resp["outcome"].(map[string]any); ok {
					res = out
				}
				switch {
				case res["resourceType"] == "OperationOutcome":
					if !strings.Contains(jsonText(res), ref) {
						t.Fatalf("%s: the outcome does not name %s: %v", what, ref, res)
					}
					outcomes++
				case res["resourceType"] == "Observation":
					if res["id"] == bad {
						t.Fatalf("%s: the tampered row was served", what)
					}
					good++
				}
			}
			if good != 2 || outcomes != 1 {
				t.Fatalf("%s: %d observations and %d outcomes, want 2 and 1: %v", what, good, outcomes, entries)
			}
		}
		r := s.Do(t, "GET", "/fhir/Observation?subject=Patient/"+pid, nil, nil).Want(t, http.StatusOK)
		wantOutcome(t, "search", r.Entries())
		for _, e := range r.Entries() {
			if m, _ := e["search"].(map[string]any); e["resource"].(map[string]any)["resourceType"] == "OperationOutcome" && m["mode"] != "outcome" {
				t.Fatalf("search: the outcome entry has search.mode %v, want outcome", m["mode"])
			}
		}
		r = s.Do(t, "GET", "/fhir/Observation/_history", nil, nil).Want(t, http.StatusOK)
		wantOutcome(t, "type history", r.Entries())
		r = s.Do(t, "GET", "/fhir/Patient/"+pid+"/$everything", nil, nil).Want(t, http.StatusOK)
		var fromEverything []map[string]any
		for _, e := range r.Entries() {
			if res, _ := e["resource"].(map[string]any); res["resourceType"] != "Patient" {
				fromEverything = append(fromEverything, e)
			}
		}
		wantOutcome(t, "$everything", fromEverything)
		batch := map[string]any{"resourceType": "Bundle", "type": "batch", "entry": []any{
			map[string]any{"request": map[string]any{"method": "GET", "url": "Observation?subject=Patient/" + pid}},
		}}
		r = s.Do(t, "POST", "/fhir", batch, nil).Want(t, http.StatusOK)
		inner, _ := r.Entries()[0]["resource"].(map[string]any)
		var innerEntries []map[string]any
		for _, e := range inner["entry"].([]any) {
			innerEntries = append(innerEntries, e.(map[string]any))
		}
		wantOutcome(t, "batch search entry", innerEntries)
		// The read of that row itself is the error.
		s.Do(t, "GET", "/fhir/Observation/"+bad, nil, nil).WantOutcome(t, http.StatusInternalServerError)

		if n := strings.Count(s.Logs(), `"resource":"`+ref+`"`); n != 1 {
			t.Fatalf("the server logged the tampered row %d times, want once", n)
		}
	})
}

// TestDatabaseLockAnswers503: a lock held by another database session
// (an operator's LOCK TABLE, a stuck migration, an attacker with
// database access) makes a request wait at most the lock timeout, then
// answers 503 with Retry-After, instead of waiting as long as the lock
// is held. With the audit table locked nothing can be recorded, so the
// read fails closed; with the resource table locked (PostgreSQL) the
// failure is itself audited. A request waits for the lock once, however
// many events it would record: once an event could not be recorded, the
// others fail at once (the read and then its generic event, or the
// entries of a batch, each waited the whole lock timeout before).
func TestDatabaseLockAnswers503(t *testing.T) {
	const lockTimeout = time.Second
	apitestRun(t, func(c *config.Config) { c.Timeouts.Lock = config.Duration(lockTimeout) }, func(t *testing.T, s *apitest.Server) {
		pid := s.Create(t, patient(uniq(), nil))
		db := rawDB(t, s)
		// The lock holder keeps its transaction until the test ends.
		lock := func(t *testing.T, stmt string) func() {
			t.Helper()
			conn, err := db.Conn(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			if _, err := conn.ExecContext(t.Context(), "BEGIN"+map[bool]string{true: "", false: " EXCLUSIVE"}[s.Driver == "postgres"]); err != nil {
				t.Fatal(err)
			}
			if stmt != "" {
				if _, err := conn.ExecContext(t.Context(), stmt); err != nil {
					t.Fatal(err)
				}
			}
			var once sync.Once
			unlock := func() {
				once.Do(func() {
					_, _ = conn.ExecContext(context.WithoutCancel(t.Context()), "ROLLBACK")
					conn.Close()
				})
			}
			t.Cleanup(unlock) // also when the test fails with the lock held
			return unlock
		}
		// The request is given far longer than the lock timeout, but far
		// less than the 30 s the audit batch would otherwise wait.
		//
		// The elapsed time is checked against a generous bound, twice the
		// lock timeout: it counts the lock waits (one fits, two do not),
		// it does not measure speed.
		sendOnce := func(t *testing.T, method, path string, body any) *apitest.Response {
			t.Helper()
			ctx, cancel := context.WithTimeout(t.Context(), 15*time.Second)
			defer cancel()
			start := time.Now()
			r, err := s.Send(ctx, method, path, body, nil)
			if err != nil {
				t.Fatalf("%s %s did not answer while the lock was held: %v", method, path, err)
			}
			if d := time.Since(start); d >= 2*lockTimeout {
				t.Fatalf("%s %s waited for the lock more than once (%v with a lock timeout of %v): %s", method, path, d, lockTimeout, r)
			}
			return r
		}
		send := func(t *testing.T) *apitest.Response {
			t.Helper()
			return sendOnce(t, "GET", "/fhir/Patient/"+pid, nil)
		}
		t.Run("audit table", func(t *testing.T) {
			stmt := "" // SQLite: BEGIN EXCLUSIVE holds the one write lock
			if s.Driver == "postgres" {
				stmt = "LOCK TABLE audit_events IN ACCESS EXCLUSIVE MODE"
			}
			unlock := lock(t, stmt)
			r := send(t)
			var entries []any
			for range 4 {
				entries = append(entries, map[string]any{"request": map[string]any{"method": "GET", "url": "Patient/" + pid}})
			}
			rb := sendOnce(t, "POST", "/fhir", map[string]any{"resourceType": "Bundle", "type": "batch", "entry": entries})
			// A batch of writes: before, each entry was retried in a
			// transaction of its own after the shared one met the lock.
			var writes []any
			for range 3 {
				writes = append(writes, map[string]any{"resource": patient(uniq(), nil), "request": map[string]any{"method": "POST", "url": "Patient"}})
			}
			wb := sendOnce(t, "POST", "/fhir", map[string]any{"resourceType": "Bundle", "type": "batch", "entry": writes})
			unlock()
			if wb.Status != http.StatusServiceUnavailable && wb.Status != http.StatusOK {
				t.Fatalf("a batch of writes while the audit table was locked: %s", wb)
			}
			if wb.Status == http.StatusOK {
				for _, e := range wb.Entries() {
					if st, _ := e["response"].(map[string]any)["status"].(string); !strings.HasPrefix(st, "503") {
						t.Fatalf("a write entry while the audit table was locked: %s", jsonText(e))
					}
				}
			}
			for _, r := range []*apitest.Response{r, rb} {
				r.WantOutcome(t, http.StatusServiceUnavailable)
				if r.Header.Get("Retry-After") == "" || strings.Contains(string(r.Body), "family") {
					t.Fatalf("503 without Retry-After, or with the resource: %s", r)
				}
			}
		})
		if s.Driver != "postgres" {
			return // SQLite readers are never blocked by a writer (WAL)
		}
		t.Run("resource table", func(t *testing.T) {
			unlock := lock(t, "LOCK TABLE resources IN ACCESS EXCLUSIVE MODE")
			r := send(t)
			unlock()
			r.WantOutcome(t, http.StatusServiceUnavailable)
			evs := eventsOf(t, auditEvents(t, s), r)
			if !slices.ContainsFunc(evs, func(ev audit.Event) bool {
				return ev.Action == audit.ActionRead && ev.Outcome == audit.OutcomeError && ev.Status == http.StatusServiceUnavailable
			}) {
				t.Fatalf("the 503 of a lock timeout left no event: %+v", evs)
			}
		})
		// Once the locks are gone, the read works again.
		s.Do(t, "GET", "/fhir/Patient/"+pid, nil, nil).Want(t, http.StatusOK)
	})
}

// TestDatabaseOutageIsNot429: while PostgreSQL is unreachable, requests
// with a valid bearer token are answered 503 with Retry-After and an
// OperationOutcome, however many there are: the failed credential
// lookup is the server's failure, not the caller's, and is not charged
// to the address's attempt budget (before the fix they were answered 429
// once the burst was spent). Once PostgreSQL is back they are served.
func TestDatabaseOutageIsNot429(t *testing.T) {
	s := apitest.StartWith(t, "postgres", func(c *config.Config) { c.Limits.AttemptBurst, c.Limits.AttemptsPerMinute = 3, 1 })
	// A token never used yet, so no cached check stands in for the
	// database.
	secret, err := s.App.Tokens().Create(t.Context(), "outage", []string{"system"})
	if err != nil {
		t.Fatal(err)
	}
	bearer := apitest.H{"Authorization": "Bearer " + secret.Reveal()}
	admin := os.Getenv(pgtest.EnvURL)
	if admin == "" {
		admin = pgtest.DefaultURL
	}
	u, err := url.Parse(s.App.Config.Storage.PostgresURL)
	if err != nil {
		t.Fatal(err)
	}
	name := pgx.Identifier{strings.TrimPrefix(u.Path, "/")}.Sanitize()
	db, err := sql.Open("pgx", admin)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	exec := func(q string, args ...any) {
		t.Helper()
		if _, err := db.ExecContext(context.WithoutCancel(t.Context()), q, args...); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	// The outage: no new session may open, the server's are ended.
	exec("ALTER DATABASE " + name + " ALLOW_CONNECTIONS false")
	t.Cleanup(func() { exec("ALTER DATABASE " + name + " ALLOW_CONNECTIONS true") })
	exec("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()", strings.TrimPrefix(u.Path, "/"))

	for i := range 12 { // four times the burst
		r := s.Do(t, "GET", "/fhir/Patient", nil, bearer)
		if r.Status == http.StatusTooManyRequests {
			t.Fatalf("request %d with a valid token during the outage was answered 429: %s", i, r)
		}
		r.WantOutcome(t, http.StatusServiceUnavailable)
		if r.Header.Get("Retry-After") == "" {
			t.Fatalf("503 without Retry-After: %s", r)
		}
		// The administration API checks credentials the same way.
		if r := s.Do(t, "GET", "/admin/api/users", nil, bearer); r.Status != http.StatusServiceUnavailable {
			t.Fatalf("administration request %d with a valid token during the outage: %s, want 503", i, r)
		}
	}
	exec("ALTER DATABASE " + name + " ALLOW_CONNECTIONS true")
	// The pool may still hold a dead session or two: a few 503s are
	// expected while they are found and replaced, never a 429.
	for i := 0; ; i++ {
		r := s.Do(t, "GET", "/fhir/Patient", nil, bearer)
		if r.Status == http.StatusOK {
			break
		}
		if r.Status != http.StatusServiceUnavailable || i == 20 {
			t.Fatalf("after the outage: %s", r)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func jsonText(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// TestTamperedInstanceHistory (SRE fault test 4): the instance history
// of a resource whose only version was tampered with answered 500,
// while searches and type history serve an OperationOutcome entry
// naming the row (docs/threat-model.md, "one tampered row denying
// service"). The history is decided on the current version: tampered,
// its labels are unknown, so the history is a Bundle with the outcome
// entry for a caller the policies admit to that owner whatever the
// content, and a denial for anyone else (fail closed). The read of the
// row itself stays a 500.
func TestTamperedInstanceHistory(t *testing.T) {
	apitest.Run(t, func(t *testing.T, s *apitest.Server) {
		pid := s.Create(t, patient(uniq(), nil))
		db := rawDB(t, s)
		tamper := func(typ, id string, version int) string {
			t.Helper()
			res, err := db.ExecContext(t.Context(), placeholders(s, "UPDATE resource_versions SET ciphertext = ? WHERE type = ? AND id = ? AND version = ?"),
				[]byte("not the ciphertext of this row, not even close to it"), typ, id, version)
			if err != nil {
				t.Fatal(err)
			}
			if n, _ := res.RowsAffected(); n != 1 {
				t.Fatalf("tampered %d rows, want 1", n)
			}
			return fmt.Sprintf("%s/%s/_history/%d", typ, id, version)
		}
		// history returns the versions served and the refs the outcome
		// entries name.
		history := func(t *testing.T, id string) (served []string, outcomes []string) {
			t.Helper()
			r := s.Do(t, "GET", "/fhir/Observation/"+id+"/_history", nil, nil).Want(t, http.StatusOK)
			for _, e := range r.Entries() {
				resp, _ := e["response"].(map[string]any)
				if out, ok := resp["outcome"].(map[string]any); ok && out["resourceType"] == "OperationOutcome" {
					outcomes = append(outcomes, jsonText(out))
					continue
				}
				if res, ok := e["resource"].(map[string]any); ok {
					meta, _ := res["meta"].(map[string]any)
					served = append(served, fmt.Sprint(meta["versionId"]))
				}
			}
			return served, outcomes
		}

		// One version, tampered.
		one := s.Create(t, observation(pid, nil))
		ref := tamper("Observation", one, 1)
		served, outcomes := history(t, one)
		if len(served) != 0 || len(outcomes) != 1 || !strings.Contains(outcomes[0], ref) {
			t.Errorf("history of a single tampered version: served %v, outcomes %v; want one outcome naming %s", served, outcomes, ref)
		}
		s.Do(t, "GET", "/fhir/Observation/"+one, nil, nil).WantOutcome(t, http.StatusInternalServerError)
		s.Do(t, "GET", "/fhir/Observation/"+one+"/_history/1", nil, nil).WantOutcome(t, http.StatusInternalServerError)

		// Two versions, the current one tampered: the first is served.
		two := s.Create(t, observation(pid, nil))
		s.Do(t, "PUT", "/fhir/Observation/"+two, observation(pid, map[string]any{"id": two, "status": "amended"}), nil).Want(t, http.StatusOK)
		ref = tamper("Observation", two, 2)
		served, outcomes = history(t, two)
		if len(served) != 1 || served[0] != "1" || len(outcomes) != 1 || !strings.Contains(outcomes[0], ref) {
			t.Errorf("history with the current version tampered: served %v, outcomes %v; want version 1 and one outcome naming %s", served, outcomes, ref)
		}

		// The vread of the intact version is decided on the current one
		// by the same rule; the tampered one's is the read of the row.
		s.Do(t, "GET", "/fhir/Observation/"+two+"/_history/1", nil, nil).Want(t, http.StatusOK)
		s.Do(t, "GET", "/fhir/Observation/"+two+"/_history/2", nil, nil).WantOutcome(t, http.StatusInternalServerError)

		// Type history: an intact older version of a resource whose
		// current version is tampered no longer fails the whole history.
		r := s.Do(t, "GET", "/fhir/Observation/_history?_count=1000", nil, nil).Want(t, http.StatusOK)
		var v1, named bool
		for _, e := range r.Entries() {
			resp, _ := e["response"].(map[string]any)
			if out, ok := resp["outcome"].(map[string]any); ok && strings.Contains(jsonText(out), ref) {
				named = true
			}
			if res, ok := e["resource"].(map[string]any); ok && res["id"] == two {
				if meta, _ := res["meta"].(map[string]any); meta["versionId"] == "1" {
					v1 = true
				}
			}
		}
		if !v1 || !named {
			t.Errorf("type history: version 1 of %s served %v, outcome naming %s %v; want both", two, v1, ref, named)
		}

		// A deleted resource whose last version is tampered: its history
		// names the row and serves the delete marker.
		gone := s.Create(t, observation(pid, nil))
		s.Do(t, "DELETE", "/fhir/Observation/"+gone, nil, nil).Want(t, http.StatusOK, http.StatusNoContent)
		goneRef := tamper("Observation", gone, 1)
		r = s.Do(t, "GET", "/fhir/Observation/"+gone+"/_history", nil, nil).Want(t, http.StatusOK)
		var marker, goneNamed bool
		for _, e := range r.Entries() {
			resp, _ := e["response"].(map[string]any)
			req, _ := e["request"].(map[string]any)
			if out, ok := resp["outcome"].(map[string]any); ok && strings.Contains(jsonText(out), goneRef) {
				goneNamed = true
			}
			if req["method"] == "DELETE" {
				marker = true
			}
		}
		if !marker || !goneNamed {
			t.Errorf("history of a deleted resource whose last version is tampered: delete marker %v, outcome naming %s %v; want both", marker, goneRef, goneNamed)
		}
		s.Do(t, "GET", "/fhir/Observation/_history?_count=1000", nil, nil).Want(t, http.StatusOK)

		// A caller the policies do not admit to the patient's records is
		// denied, as for an intact resource (never served the outcome).
		res, err := s.App.Tokens().Create(t.Context(), "study", []string{"researcher"})
		if err != nil {
			t.Fatal(err)
		}
		as := apitest.H{"Authorization": "Bearer " + res.Reveal()}
		intact := s.Create(t, observation(pid, nil))
		want := s.Do(t, "GET", "/fhir/Observation/"+intact+"/_history", nil, as).Status
		if want == http.StatusOK {
			t.Fatalf("a researcher reads a patient's observation history")
		}
		if got := s.Do(t, "GET", "/fhir/Observation/"+one+"/_history", nil, as).Status; got != want {
			t.Errorf("a researcher's history of a tampered observation answers %d, want %d as for an intact one", got, want)
		}
		// A physician on the patient's care team, whom label rules bind
		// (42 CFR Part 2 records are hidden), reads the intact history;
		// the tampered one's labels are unknown: denied, never served.
		doc := newActor(t, s, "physician", "")
		careTeam(t, s, pid, doc.fhirUser)
		s.Do(t, "GET", "/fhir/Observation/"+intact+"/_history", nil, doc.headers).Want(t, http.StatusOK)
		s.Do(t, "GET", "/fhir/Observation/"+one+"/_history", nil, doc.headers).WantOutcome(t, http.StatusForbidden)
		s.Do(t, "GET", "/fhir/Observation/"+two+"/_history", nil, doc.headers).WantOutcome(t, http.StatusForbidden)
		s.Do(t, "GET", "/fhir/Observation/"+two+"/_history/1", nil, doc.headers).WantOutcome(t, http.StatusForbidden)
		r = s.Do(t, "GET", "/fhir/Observation/_history?_count=1000", nil, doc.headers).Want(t, http.StatusOK)
		for _, e := range r.Entries() {
			if res, ok := e["resource"].(map[string]any); ok && res["id"] == two {
				t.Errorf("type history served the physician a version of %s, whose current version's labels are unknown", two)
			}
		}
	})
}
