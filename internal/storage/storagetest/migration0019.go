package storagetest

import (
	"database/sql"
	"testing"

	"github.com/phivault/phivault/internal/storage/sqldb"
)

// RunFHIRUserMigration checks migration 0019 on db, an empty database
// of dialect d: a database written before it, where two enabled
// accounts were bound to one FHIR user (one person's sign-in then read as another's patient),
// is migrated by disabling the newer account, revoking its sessions and
// raising an alert naming it; the older account is untouched.
func RunFHIRUserMigration(t *testing.T, db *sql.DB, d sqldb.Dialect) {
	ctx := t.Context()
	migrateBelow(t, db, d, 19)
	q := d.Rebind
	user := func(id, name, fhirUser string, created int64) {
		t.Helper()
		if _, err := db.ExecContext(ctx, q(`INSERT INTO users (id, username, display_name, fhir_user, roles, disabled, mfa_enrolled, password_hash, created, updated)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`), id, name, name, fhirUser, "physician", false, true, "", created, created); err != nil {
			t.Fatal(err)
		}
	}
	user("usr_real", "dr.real", "Practitioner/pr-1", 1000)
	user("usr_copy", "dr.copy", "Practitioner/pr-1", 2000)
	user("usr_other", "dr.other", "Practitioner/pr-2", 3000)
	if _, err := db.ExecContext(ctx, q(`INSERT INTO sessions (id, user_id, token_hash, created, last_seen, expires_absolute, idle_seconds, revoked, mfa, address)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`), "ses_copy", "usr_copy", []byte("hash-of-a-token-of-32-bytes-long"), 2000, 2000, 9e15, 900, false, true, ""); err != nil {
		t.Fatal(err)
	}

	if err := sqldb.Migrate(ctx, db, d); err != nil {
		t.Fatalf("migrating to head: %v", err)
	}
	disabled := func(id string) bool {
		var v bool
		if err := db.QueryRowContext(ctx, q(`SELECT disabled FROM users WHERE id = ?`), id).Scan(&v); err != nil {
			t.Fatal(err)
		}
		return v
	}
	if disabled("usr_real") || !disabled("usr_copy") || disabled("usr_other") {
		t.Errorf("after the migration: real %v, copy %v, other %v disabled; want only the copy", disabled("usr_real"), disabled("usr_copy"), disabled("usr_other"))
	}
	var revoked bool
	if err := db.QueryRowContext(ctx, `SELECT revoked FROM sessions WHERE id = 'ses_copy'`).Scan(&revoked); err != nil || !revoked {
		t.Errorf("the copy's session: revoked %v (%v), want revoked", revoked, err)
	}
	var kind, ref string
	if err := db.QueryRowContext(ctx, `SELECT kind, ref FROM authz_alerts WHERE user_id = 'usr_copy'`).Scan(&kind, &ref); err != nil ||
		kind != "fhir-user-duplicate-disabled" || ref != "Practitioner/pr-1" {
		t.Errorf("alert %q %q (%v), want fhir-user-duplicate-disabled for Practitioner/pr-1", kind, ref, err)
	}
	// And from now on the index holds.
	if _, err := db.ExecContext(ctx, q(`UPDATE users SET disabled = ? WHERE id = ?`), false, "usr_copy"); err == nil {
		t.Error("re-enabling the copy by hand was accepted: no unique index")
	}
}
