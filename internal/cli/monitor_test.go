package cli_test

import (
	"bytes"
	"database/sql"
	"encoding/json"
	"encoding/pem"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/phivault/phivault/internal/monitor"
	"github.com/phivault/phivault/internal/monitor/alerts"
)

// The ingested input of the monitoring tests; the names and ids below
// appear in it and must never appear in the clear in the database.
var (
	monitorContext = filepath.Join("..", "monitor", "alerts", "testdata", "context.json")
	monitorEvents  = filepath.Join("..", "monitor", "alerts", "testdata", "events.ndjson")
	monitorClear   = []string{"Quillfeatherby", "Ostrowinska", "Larkspur", "pat-kin", "pat-care"}
)

// familyLine is the alert the ingest of testdata raises: Practitioner/p1
// opens the chart of a patient with the same surname and address, with
// no relationship, once outside the roster.
const familyLine = "Practitioner/p1\tPatient/pat-kin\tfamily\t0.999\topened this patient's record 2 times; the patient shares the user's surname and address; " +
	"no care team, encounter, order, billing or break-the-glass relation explains it; 1 outside the user's rostered hours\n"

// TestMonitorOffline runs "monitor ingest" and "monitor alerts" on a
// data directory, on SQLite and PostgreSQL: the ingest is stored sealed
// and audited, and the alerts print as TSV (one line per user and
// patient, an empty patient for an attack) and as JSON.
func TestMonitorOffline(t *testing.T) {
	for _, d := range secDrivers {
		t.Run(d.name, func(t *testing.T) {
			dir, _ := secInit(t, d.initArgs(t)...)
			db := secDB(t, dir)
			before := secCount(t, dir, db, secAuditCount)
			r := secMustRun(t, "monitor", "ingest", "--data", dir, "--context", monitorContext, "--events", monitorEvents, "--source", "his", "--quiet")
			if !strings.Contains(r.stdout, "ingested 3 events") || !strings.Contains(r.stdout, `from "his"`) {
				t.Errorf("ingest said %q", r.stdout)
			}
			if n := secCount(t, dir, db, "SELECT COUNT(*) FROM monitor_runs WHERE state = 'done' AND events = 3"); n != 1 {
				t.Errorf("%d finished runs of 3 events", n)
			}
			if secCount(t, dir, db, secAuditCount) <= before {
				t.Error("the ingest was not audited")
			}
			noClear(t, dir, db)

			// The ingest raised the family alert (the patient shares the
			// user's surname and address); two more are saved as the
			// engine would raise them.
			saveAlerts(t, dir)
			r = secMustRun(t, "monitor", "alerts", "--data", dir, "--since", "1h")
			want := familyLine +
				"Practitioner/p1\tPatient/a\tbrowsing\t0.900\tread 2 patients without explanation\n" +
				"Practitioner/p1\tPatient/b\tbrowsing\t0.900\tread 2 patients without explanation\n" +
				"\t\tcredential\t0.700\t40 failed sign-ins on 12 accounts from one address\n"
			if r.stdout != want {
				t.Errorf("tsv:\n%s\nwant:\n%s", r.stdout, want)
			}
			r = secMustRun(t, "monitor", "alerts", "--data", dir, "--format", "json")
			var out struct{ Alerts []alerts.JSON }
			if err := json.Unmarshal([]byte(r.stdout), &out); err != nil || len(out.Alerts) != 3 || out.Alerts[0].Status != "open" || len(out.Alerts[0].Evidence.Accesses) != 2 {
				t.Errorf("json: %v %+v", err, out)
			}
			if r := secRun(t, "monitor", "alerts", "--data", dir, "--since", "yesterday"); r.code == 0 || !strings.Contains(r.stderr, "--since") {
				t.Errorf("a bad --since: exit %d %q", r.code, r.stderr)
			}
			if r := secRun(t, "monitor", "ingest", "--data", dir, "--context", monitorContext); r.code != 2 {
				t.Errorf("ingest without events: exit %d %q", r.code, r.stderr)
			}
		})
	}
}

// TestMonitorThroughServer runs both commands with --url against a
// running server: a token without the privacy-officer role is refused
// (403, audited), one with it ingests and lists.
func TestMonitorThroughServer(t *testing.T) {
	for _, d := range secDrivers {
		t.Run(d.name, func(t *testing.T) {
			dir, sysToken := secInit(t, d.initArgs(t)...)
			srv := secOpenApp(t, dir)
			ts := httptest.NewTLSServer(srv.Handler())
			t.Cleanup(ts.Close)
			ca := filepath.Join(t.TempDir(), "ca.crt")
			if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ts.Certificate().Raw}), 0o644); err != nil {
				t.Fatal(err)
			}
			db := secDB(t, dir)
			ingest := []string{"monitor", "ingest", "--url", ts.URL, "--cacert", ca, "--context", monitorContext, "--events", monitorEvents, "--source", "his", "--quiet"}

			t.Setenv("PHIVAULT_TOKEN", sysToken)
			denied := secCount(t, dir, db, secAuditCount)
			r := secRun(t, ingest...)
			if r.code != 1 || !strings.Contains(r.stderr, "403") || !strings.Contains(r.stderr, "privacy-officer") {
				t.Fatalf("ingest with a system token: exit %d %q", r.code, r.stderr)
			}
			if secCount(t, dir, db, secAuditCount) <= denied {
				t.Error("the refusal was not audited")
			}
			if n := secCount(t, dir, db, "SELECT COUNT(*) FROM monitor_runs"); n != 0 {
				t.Errorf("a refused ingest left %d runs", n)
			}

			po, err := srv.Tokens().Create(t.Context(), "privacy office", []string{"privacy-officer"})
			if err != nil {
				t.Fatal(err)
			}
			t.Setenv("PHIVAULT_TOKEN", po.Reveal())
			r = secMustRun(t, ingest...)
			if !strings.Contains(r.stdout, "ingested 3 events") {
				t.Errorf("ingest said %q", r.stdout)
			}
			noClear(t, dir, db)
			svc, err := srv.Monitor()
			if err != nil {
				t.Fatal(err)
			}
			if _, err := svc.Save(t.Context(), testAlerts()); err != nil {
				t.Fatal(err)
			}
			r = secMustRun(t, "monitor", "alerts", "--url", ts.URL, "--cacert", ca, "--since", time.Now().Add(-time.Hour).UTC().Format(time.RFC3339))
			if lines := strings.Split(strings.TrimSpace(r.stdout), "\n"); len(lines) != 4 || lines[0]+"\n" != familyLine || !strings.HasPrefix(lines[1], "Practitioner/p1\tPatient/a\tbrowsing\t0.900\t") {
				t.Errorf("tsv through the server:\n%s", r.stdout)
			}
			t.Setenv("PHIVAULT_TOKEN", sysToken)
			if r := secRun(t, "monitor", "alerts", "--url", ts.URL, "--cacert", ca); r.code != 1 || !strings.Contains(r.stderr, "403") {
				t.Errorf("alerts with a system token: exit %d %q", r.code, r.stderr)
			}
		})
	}
}

func testAlerts() []monitor.Alert {
	now := time.Now().UTC()
	return []monitor.Alert{
		{Key: "k1", Source: "his", User: "Practitioner/p1", Patients: []string{"Patient/b", "Patient/a"}, Category: monitor.CatBrowsing,
			Score: 0.9, Severity: monitor.SeverityHigh, Explanation: "read 2 patients without explanation", First: now.Add(-time.Hour), Last: now,
			Evidence: monitor.Evidence{Accesses: []monitor.AccessRef{{Time: now, Patient: "Patient/a", Ref: "AuditEvent/1"}, {Time: now, Patient: "Patient/b", Ref: "AuditEvent/2"}}}},
		{Key: "k2", Source: "his", Address: "10.1.2.3", Category: monitor.CatCredential, Score: 0.7, Severity: monitor.SeverityHigh,
			Explanation: "40 failed sign-ins on 12 accounts\tfrom one address", First: now.Add(-time.Hour), Last: now},
	}
}

// saveAlerts stores testAlerts in dir as the engine would.
func saveAlerts(t *testing.T, dir string) {
	t.Helper()
	a := secOpenApp(t, dir)
	svc, err := a.Monitor()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Save(t.Context(), testAlerts()); err != nil {
		t.Fatal(err)
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
}

// noClear fails if the database holds an ingested name or id in the
// clear: in any file of the data directory (SQLite: the database, its
// WAL), and in any sealed column of the monitoring tables (both engines).
func noClear(t *testing.T, dir string, db *sql.DB) {
	t.Helper()
	if secConfig(t, dir).Storage.Driver != "postgres" {
		schema := false // the walk reads the database as it is on disk
		err := filepath.WalkDir(dir, func(p string, e os.DirEntry, err error) error {
			if err != nil || e.IsDir() {
				return err
			}
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			schema = schema || bytes.Contains(b, []byte("CREATE TABLE monitor_data"))
			for _, w := range monitorClear {
				if bytes.Contains(b, []byte(w)) {
					t.Errorf("%s holds an ingested value in the clear", filepath.Base(p))
				}
			}
			return nil
		})
		if err != nil || !schema {
			t.Fatalf("walking the data directory: %v (schema found: %v)", err, schema)
		}
	}
	n := 0
	for _, q := range []string{"SELECT body FROM monitor_data", "SELECT body FROM monitor_alerts", "SELECT body FROM monitor_notes"} {
		rows, err := db.Query(q)
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var b []byte
			if err := rows.Scan(&b); err != nil {
				t.Fatal(err)
			}
			n++
			for _, w := range monitorClear {
				if bytes.Contains(b, []byte(w)) {
					t.Errorf("%s: a row holds an ingested value in the clear", q)
				}
			}
		}
		rows.Close()
	}
	if n == 0 {
		t.Error("no sealed monitoring data to check")
	}
}
