package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/phivault/phivault/internal/storage/postgres/pgtest"
)

// TestSuite runs the whole suite at a tiny size, on SQLite and on
// PostgreSQL (a database of pgtest as the admin connection, on which the
// suite creates and drops its own): it builds the three binaries,
// generates 10 patients, imports them into phivault twice and into the
// baseline once, runs every mode for one round, and prints the table. It
// checks what a person running it relies on: every row is there with
// positive figures, every measurement had successful requests, the token
// is never printed, and the data directories and the database are gone
// afterwards. It asserts no speed.
func TestSuite(t *testing.T) {
	if testing.Short() {
		t.Skip("builds phivault and runs both servers under load (about a minute)")
	}
	admin := pgtest.NewDatabase(t)
	work := t.TempDir()
	var stdout, stderr bytes.Buffer
	// Each mode ends after 16 requests, however slow the machine (a
	// busy one can take seconds for a Bundle): the test waits on work
	// done, not on a clock. -duration is only a bound.
	args := []string{"-patients", "10", "-requests", "16", "-duration", "2m", "-rounds", "1", "-clients", "4", "-settle", "3s",
		"-bundles", "10", "-ids", "1000", "-work", work, "-postgres", admin}
	if err := run(t.Context(), args, &stdout, &stderr); err != nil {
		t.Fatalf("suite: %v\nstderr:\n%s", err, stderr.String())
	}
	t.Logf("table:\n%s", stdout.String())

	b, err := os.ReadFile(filepath.Join(work, "results.json"))
	if err != nil {
		t.Fatal(err)
	}
	var rep report
	if err := json.Unmarshal(b, &rep); err != nil {
		t.Fatal(err)
	}

	want := []string{"read", "search", "include", "chain", "create", "transaction-sqlite", "transaction-postgres",
		"import-sqlite", "import-growth-sqlite", "import-postgres", "import-growth-postgres", "memory-load", "memory-import"}
	var ids []string
	for _, r := range rep.Rows {
		ids = append(ids, r.ID)
		if r.Value <= 0 {
			t.Errorf("row %s: figure %v, want > 0", r.ID, r.Value)
		}
		switch r.Met {
		case "met", "not met", "stated", "not measured":
		default:
			if !strings.HasPrefix(r.Met, "not met (") {
				t.Errorf("row %s: met? is %q", r.ID, r.Met)
			}
		}
		// Rows compared with something: the baseline, phivault's plain
		// search, or the first tenth of the import.
		if slices.Contains([]string{"read", "search", "include", "chain", "create", "transaction-sqlite", "import-sqlite"}, r.ID) &&
			(r.BaselineValue <= 0 || r.RatioValue <= 0) {
			t.Errorf("row %s: compared with %v, ratio %v; want both > 0", r.ID, r.BaselineValue, r.RatioValue)
		}
		// Ten patients are too few to split an import into tenths
		// (TestTenths covers them): the row says so.
		if strings.HasPrefix(r.ID, "import-growth-") && r.Met == "not measured" && !strings.Contains(r.Phivault, "too few progress points") {
			t.Errorf("row %s: not measured, but does not say why: %q", r.ID, r.Phivault)
		}
		if !strings.Contains(stdout.String(), "| "+esc(r.Operation)+" |") {
			t.Errorf("row %s (%q) is not in the printed table", r.ID, r.Operation)
		}
	}
	if !slices.Equal(ids, want) {
		t.Errorf("rows %v, want %v", ids, want)
	}

	// Every mode ran on phivault (and the baseline where it answers it),
	// with successful requests.
	ran := map[string]bool{}
	for _, r := range rep.Runs {
		ran[r.Server+"/"+r.Store+"/"+r.Mode] = true
		ok := r.Result.Requests - r.Result.Errors
		if ok <= 0 || r.Result.ByStatus["200"]+r.Result.ByStatus["201"] != ok {
			t.Errorf("%s %s %s: %d requests, %d errors, statuses %v: want successful requests",
				r.Server, r.Store, r.Mode, r.Result.Requests, r.Result.Errors, r.Result.ByStatus)
		}
		if r.Server == "phivault" && r.Result.PeakRSSMiB <= 0 {
			t.Errorf("%s %s: no RSS sampled", r.Store, r.Mode)
		}
	}
	for _, m := range suiteModes() {
		if !ran["phivault/sqlite/"+m.name] || m.baseline != ran["baseline/sqlite/"+m.name] {
			t.Errorf("mode %s: runs %v", m.name, ran)
		}
	}
	if !ran["phivault/postgres/transaction"] {
		t.Errorf("no transaction run on PostgreSQL: %v", ran)
	}
	for _, im := range rep.Imports {
		if im.Resources <= 0 || im.ResPerSec <= 0 || im.PeakRSSMiB <= 0 {
			t.Errorf("import %+v: want resources, a rate and a peak RSS", im)
		}
	}

	// The admin token is handed over, never shown.
	if out := stdout.String() + stderr.String() + string(b); strings.Contains(out, "pvt_") {
		t.Error("the output holds an API token")
	}
	// Nothing is left behind but the synthetic data, the logs and the results.
	for _, p := range []string{"phivault-sqlite", "phivault-postgres", "baseline.db"} {
		if _, err := os.Stat(filepath.Join(work, p)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s is still there without -keep (%v)", p, err)
		}
	}
	if rep.Options.PostgresDatabase == "" || databaseExists(t, admin, rep.Options.PostgresDatabase) {
		t.Errorf("PostgreSQL database %q is still there, or was not named", rep.Options.PostgresDatabase)
	}
}

func databaseExists(t *testing.T, admin, name string) bool {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var n int
	if err := conn.QueryRow(ctx, "SELECT count(*) FROM pg_database WHERE datname = $1", name).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n > 0
}
