package storagetest

import (
	"database/sql"
	"io/fs"
	"strconv"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/phivault/phivault/internal/storage"
	"github.com/phivault/phivault/internal/storage/sqldb"
)

// RunClientApprovalMigration checks migration 0020 on db, an empty
// database of dialect d. In a database written before it:
//
//   - a backend client that one administrator registered in the console
//     after migration 0019 (it has a "client-backend-registered" alert,
//     the penetration test's finding F2) is suspended: pending, its
//     registrar recorded from the alert, with a high alert;
//   - every other client (the offline CLI's, apps, disabled ones) is
//     "legacy" and keeps working, and each enabled one is raised for
//     review with a medium alert.
func RunClientApprovalMigration(t *testing.T, db *sql.DB, d sqldb.Dialect) {
	ctx := t.Context()
	migrateBelow(t, db, d, 20)
	q := d.Rebind
	client := func(id, typ string, disabled bool) {
		t.Helper()
		if _, err := db.ExecContext(ctx, q(`INSERT INTO smart_clients (id, name, type, jwks, jwks_url, redirect_uris, scopes, created, disabled)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`), id, id, typ, "", "https://keys.example/"+id, "[]", "system/*.rs", 1000, disabled); err != nil {
			t.Fatal(err)
		}
	}
	client("cli-feed", "backend", false)     // phivault client add, before 0020
	client("console-feed", "backend", false) // one admin, in the console, after 0019
	client("old-app", "public", false)
	client("gone", "backend", true)
	if _, err := db.ExecContext(ctx, q(`INSERT INTO authz_alerts (id, kind, priority, user_id, patient, ref, created) VALUES (?, ?, ?, ?, ?, ?, ?)`),
		"alr_client_console-feed", "client-backend-registered", "high", "usr_sam", "", "Client/console-feed", 2000); err != nil {
		t.Fatal(err)
	}

	if err := sqldb.Migrate(ctx, db, d); err != nil {
		t.Fatalf("migrating to head: %v", err)
	}
	for _, want := range []struct{ id, approval, registeredBy string }{
		{"cli-feed", "legacy", ""},
		{"console-feed", "pending", "usr_sam"},
		{"old-app", "legacy", ""},
		{"gone", "legacy", ""},
	} {
		var approval, registeredBy, approvedBy string
		if err := db.QueryRowContext(ctx, q(`SELECT approval, registered_by, approved_by FROM smart_clients WHERE id = ?`), want.id).
			Scan(&approval, &registeredBy, &approvedBy); err != nil {
			t.Fatal(err)
		}
		if approval != want.approval || registeredBy != want.registeredBy || approvedBy != "" {
			t.Errorf("%s: approval %q by %q (approved by %q), want %q by %q", want.id, approval, registeredBy, approvedBy, want.approval, want.registeredBy)
		}
	}
	alerts := map[string]string{}
	rows, err := db.QueryContext(ctx, `SELECT ref, kind, priority, user_id FROM authz_alerts WHERE id LIKE 'mig0020-%'`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var ref, kind, prio, user string
		if err := rows.Scan(&ref, &kind, &prio, &user); err != nil {
			t.Fatal(err)
		}
		alerts[ref] = kind + "/" + prio + "/" + user
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"Client/console-feed": "client-suspended-unapproved/high/usr_sam",
		"Client/cli-feed":     "client-legacy-review/medium/",
		"Client/old-app":      "client-legacy-review/medium/",
	}
	if len(alerts) != len(want) {
		t.Errorf("migration alerts %v, want %v", alerts, want)
	}
	for ref, w := range want {
		if alerts[ref] != w {
			t.Errorf("alert on %s: %q, want %q", ref, alerts[ref], w)
		}
	}
}

// RunAnchorMigration checks migration 0024 (the kept checkpoint's
// state, ADR 0016): a database whose log was signed before is marked
// "upgrade" (the first integration keeps its latest checkpoint); a new
// one "new".
func RunAnchorMigration(t *testing.T, newDB func(t *testing.T) *sql.DB, d sqldb.Dialect) {
	ctx := t.Context()
	before := fstest.MapFS{}
	names, err := fs.Glob(d.Migrations, "*.sql")
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range names {
		if v, _ := strconv.Atoi(strings.SplitN(n, "_", 2)[0]); v < 24 {
			b, err := fs.ReadFile(d.Migrations, n)
			if err != nil {
				t.Fatal(err)
			}
			before[n] = &fstest.MapFile{Data: b}
		}
	}
	old := d
	old.Migrations = before
	for _, signed := range []bool{true, false} {
		db := newDB(t)
		if err := sqldb.Migrate(ctx, db, old); err != nil {
			t.Fatalf("migrating to the migration before 0024: %v", err)
		}
		if signed {
			if _, err := db.ExecContext(ctx, `INSERT INTO tlog_checkpoints (size, root, note, created_at) VALUES (0, 'r', 'n', 1)`); err != nil {
				t.Fatal(err)
			}
		}
		if err := sqldb.Migrate(ctx, db, d); err != nil {
			t.Fatalf("migrating to head: %v", err)
		}
		var state string
		if err := db.QueryRowContext(ctx, `SELECT state FROM tlog_anchor WHERE id = 1`).Scan(&state); err != nil {
			t.Fatal(err)
		}
		if want := map[bool]string{true: storage.AnchorUpgrade, false: storage.AnchorNew}[signed]; state != want {
			t.Errorf("anchor state after migrating a database with a signed log %v: %q, want %q", signed, state, want)
		}
	}
}
