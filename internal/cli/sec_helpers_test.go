package cli_test

// Shared helpers of the security tests (sec_*_test.go). They run the real
// CLI in-process through cli.Main and open data directories with app.Open,
// exactly as the phivault binary does.

import (
	"bytes"
	"database/sql"
	"encoding/json"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	_ "github.com/jackc/pgx/v5/stdlib" // "pgx" driver for raw tampering SQL
	_ "modernc.org/sqlite"             // "sqlite" driver for raw tampering SQL

	"github.com/phivault/phivault/internal/app"
	"github.com/phivault/phivault/internal/cli"
	"github.com/phivault/phivault/internal/config"
	"github.com/phivault/phivault/internal/storage/postgres/pgtest"
)

// secSyntheaDir is the Synthea sample (14 patients, 3 incremental ones,
// hospital and practitioner bundles).
const secSyntheaDir = "/work/shared/data/synthea"

// secResult is one CLI run.
type secResult struct {
	stdout, stderr string
	code           int
}

// secRun runs the CLI in-process with args and returns its output.
func secRun(t *testing.T, args ...string) secResult {
	t.Helper()
	var out, errb bytes.Buffer
	code := cli.Main(t.Context(), args, strings.NewReader(""), &out, &errb)
	return secResult{stdout: out.String(), stderr: errb.String(), code: code}
}

// secMustRun runs the CLI and fails the test unless it exits 0.
func secMustRun(t *testing.T, args ...string) secResult {
	t.Helper()
	r := secRun(t, args...)
	if r.code != 0 {
		t.Fatalf("phivault %s: exit %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), r.code, r.stdout, secTail(r.stderr, 2000))
	}
	return r
}

func secTail(s string, n int) string {
	if len(s) > n {
		return "..." + s[len(s)-n:]
	}
	return s
}

// secDriver is one storage engine the security claims are checked on.
type secDriver struct {
	name string
	// initArgs are extra "init" flags (PostgreSQL: --postgres URL).
	initArgs func(t *testing.T) []string
}

var secDrivers = []secDriver{
	{name: "sqlite", initArgs: func(*testing.T) []string { return nil }},
	{name: "postgres", initArgs: func(t *testing.T) []string { return []string{"--postgres", pgtest.NewDatabase(t)} }},
}

var secTokenRE = regexp.MustCompile(`pvt_[A-Za-z0-9_-]+`)

// secInit creates a data directory with "phivault init" and returns it and
// the admin token printed once.
func secInit(t *testing.T, extra ...string) (dir, token string) {
	t.Helper()
	dir = filepath.Join(t.TempDir(), "data")
	r := secMustRun(t, append([]string{"init", "--data", dir}, extra...)...)
	token = secTokenRE.FindString(r.stdout)
	if token == "" {
		t.Fatalf("init printed no token:\n%s", r.stdout)
	}
	return dir, token
}

// secConfig loads the configuration of dir as the CLI does.
func secConfig(t *testing.T, dir string) config.Config {
	t.Helper()
	c, err := config.Load(dir, func(string) string { return "" }, config.Overrides{})
	if err != nil {
		t.Fatalf("loading config of %s: %v", dir, err)
	}
	return c
}

// secOpenApp opens dir's instance; it is closed when the test ends.
func secOpenApp(t *testing.T, dir string) *app.App {
	t.Helper()
	a, err := app.Open(t.Context(), secConfig(t, dir), secDiscardLogger())
	if err != nil {
		t.Fatalf("app.Open(%s): %v", dir, err)
	}
	t.Cleanup(func() { a.Close() })
	return a
}

// secDB opens a raw database/sql handle on dir's database, for what an
// attacker with database access (or a backup) can do.
func secDB(t *testing.T, dir string) *sql.DB {
	t.Helper()
	c := secConfig(t, dir)
	var db *sql.DB
	var err error
	if c.Storage.Driver == "postgres" {
		db, err = sql.Open("pgx", c.Storage.PostgresURL)
	} else {
		db, err = sql.Open("sqlite", "file:"+c.Storage.SQLitePath+"?_pragma=busy_timeout(10000)")
	}
	if err != nil {
		t.Fatal(err)
	}
	db.SetMaxOpenConns(1)
	t.Cleanup(func() { db.Close() })
	return db
}

// secPH rewrites "?" placeholders to $n for PostgreSQL.
func secPH(dir string, t *testing.T, q string) string {
	if secConfig(t, dir).Storage.Driver != "postgres" {
		return q
	}
	var b strings.Builder
	n := 0
	for _, r := range q {
		if r == '?' {
			n++
			b.WriteString("$" + strconv.Itoa(n))
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

// secExec runs one statement on dir's database and returns rows affected.
func secExec(t *testing.T, dir string, db *sql.DB, q string, args ...any) int64 {
	t.Helper()
	res, err := db.ExecContext(t.Context(), secPH(dir, t, q), args...)
	if err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	n, _ := res.RowsAffected()
	return n
}

// secCount returns a COUNT(*) query's value.
func secCount(t *testing.T, dir string, db *sql.DB, q string, args ...any) int64 {
	t.Helper()
	var n int64
	if err := db.QueryRowContext(t.Context(), secPH(dir, t, q), args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return n
}

// secTally parses the per-type table that "import" prints.
func secTally(t *testing.T, out string) (input, accepted map[string]int) {
	t.Helper()
	input, accepted = map[string]int{}, map[string]int{}
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) < 3 || f[0] == "resource" {
			continue
		}
		in, err1 := strconv.Atoi(f[1])
		ok, err2 := strconv.Atoi(f[2])
		if err1 != nil || err2 != nil {
			continue
		}
		input[f[0]], accepted[f[0]] = in, ok
	}
	if len(input) == 0 {
		t.Fatalf("no import table in output:\n%s", out)
	}
	return input, accepted
}

// secRateRE matches the import summary "(14.7s, 928 resources/s)".
var secRateRE = regexp.MustCompile(`\(([0-9.]+)s, ([0-9]+) resources/s\)`)

// secInputCounts counts the entries per resource type of the Bundles
// under dir (recursively), as independent ground truth.
func secInputCounts(t *testing.T, root string) map[string]int {
	t.Helper()
	counts := map[string]int{}
	secWalkBundles(t, root, func(_ string, b secBundle) {
		for _, e := range b.Entry {
			var h struct {
				ResourceType string `json:"resourceType"`
			}
			if err := json.Unmarshal(e.Resource, &h); err != nil {
				t.Fatal(err)
			}
			counts[h.ResourceType]++
		}
	})
	return counts
}

type secBundle struct {
	Entry []struct {
		Resource json.RawMessage `json:"resource"`
	} `json:"entry"`
}

func secWalkBundles(t *testing.T, root string, fn func(path string, b secBundle)) {
	t.Helper()
	err := filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(p, ".json") {
			return err
		}
		raw, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		var b secBundle
		if err := json.Unmarshal(raw, &b); err != nil {
			return err
		}
		fn(p, b)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// secAssertCounts checks that the store holds exactly want per type.
func secAssertCounts(t *testing.T, a *app.App, want map[string]int) {
	t.Helper()
	got, err := a.Store.Counts(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	for typ, n := range want {
		if got[typ] != int64(n) {
			t.Errorf("stored %s = %d, input has %d", typ, got[typ], n)
		}
	}
	for typ, n := range got {
		if _, ok := want[typ]; !ok {
			t.Errorf("stored %d %s resources absent from the input", n, typ)
		}
	}
}

// secFHIR is a small FHIR client for an httptest server.
type secFHIR struct {
	t      *testing.T
	base   string
	token  string
	client *http.Client
}

func (c secFHIR) do(method, path string, body []byte, hdr ...string) (*http.Response, []byte) {
	c.t.Helper()
	req, err := http.NewRequestWithContext(c.t.Context(), method, c.base+"/fhir/"+path, bytes.NewReader(body))
	if err != nil {
		c.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	req.Header.Set("Accept", "application/fhir+json")
	if body != nil {
		req.Header.Set("Content-Type", "application/fhir+json")
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := c.client.Do(req)
	if err != nil {
		c.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	var buf bytes.Buffer
	if _, err := buf.ReadFrom(resp.Body); err != nil {
		c.t.Fatal(err)
	}
	return resp, buf.Bytes()
}

func secDiscardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

// secAuditCount counts every stored audit event in one statement (one
// snapshot): the pending records plus the leaves in the entry bundles
// (ADR 0014: the integrator moves records into bundles).
const secAuditCount = `SELECT (SELECT COUNT(*) FROM audit_events) + COALESCE((SELECT MAX(n * 256 + width) FROM tlog_bundles), 0)`
