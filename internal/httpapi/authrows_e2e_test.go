package httpapi_test

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/base64"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/phivault/phivault/internal/apitest"
	"github.com/phivault/phivault/internal/app"
	"github.com/phivault/phivault/internal/authn/session"
	"github.com/phivault/phivault/internal/config"
	"github.com/phivault/phivault/internal/httpapi"
	"github.com/phivault/phivault/internal/identity"
	"github.com/phivault/phivault/internal/storage/sqldb"
	"github.com/phivault/phivault/internal/web"
)

// Authenticated auth rows (ADR 0022): an attacker who can write the
// database but does not hold the key file plays here with plain SQL.

// attackerToken is a bearer secret the attacker chose, with the plain
// SHA-256 they can compute.
func attackerToken(t *testing.T) (string, []byte) {
	t.Helper()
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	secret := "pvt_" + base64.RawURLEncoding.EncodeToString(b[:])
	h := sha256.Sum256([]byte(secret))
	return secret, h[:]
}

func bearer(secret string) apitest.H { return apitest.H{"Authorization": "Bearer " + secret} }

func execSQL(t *testing.T, s *apitest.Server, db *sql.DB, q string, args ...any) {
	t.Helper()
	if _, err := db.ExecContext(t.Context(), placeholders(s, q), args...); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
}

// waitAlert waits until the integrity alert of table/id is in the
// console's alert table (it is recorded off the request's path).
func waitAlert(t *testing.T, s *apitest.Server, db *sql.DB, table, id string) {
	t.Helper()
	ref := table + "/" + id
	for deadline := time.Now().Add(30 * time.Second); ; {
		var n int
		err := db.QueryRowContext(t.Context(), placeholders(s, `SELECT COUNT(*) FROM authz_alerts WHERE kind = 'auth-row-tampered' AND priority = 'high' AND ref = ?`), ref).Scan(&n)
		if err != nil {
			t.Fatal(err)
		}
		if n == 1 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no integrity alert for %s", ref)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func wantAlarmLogged(t *testing.T, s *apitest.Server, table, id string) {
	t.Helper()
	for _, line := range strings.Split(s.Logs(), "\n") {
		if strings.Contains(line, "integrity alarm") && strings.Contains(line, `"table":"`+table+`"`) && strings.Contains(line, `"row":"`+id+`"`) {
			return
		}
	}
	t.Fatalf("no integrity alarm logged for %s/%s", table, id)
}

// TestForgedAPITokenRefused: an api_tokens row inserted or edited with
// SQL, without the key, is no credential: a row with the attacker's
// plain SHA-256 (the pre-ADR-0022 form), one claiming a keyed hash, one
// wearing a valid MAC copied from another row, and a real token whose
// roles were raised all get 401, with an integrity alarm naming the
// row; the server's own tokens keep working.
func TestForgedAPITokenRefused(t *testing.T) {
	apitest.Run(t, func(t *testing.T, s *apitest.Server) {
		ctx := t.Context()
		db := rawDB(t, s)
		if r := s.Do(t, "GET", "/fhir/Patient", nil, nil); r.Status != 200 {
			t.Fatalf("legitimate token: %d %s", r.Status, r.Body)
		}
		now := time.Now().UnixMicro()

		// Plain SHA-256, the kind the upgrade accepts on its own rows.
		sec1, h1 := attackerToken(t)
		execSQL(t, s, db, `INSERT INTO api_tokens (id, name, hash, hash_kind, roles, created, revoked) VALUES (?, ?, ?, 'sha256', 'system', ?, 0)`,
			"tok-forged1", "ops", h1, now)
		if r := s.Do(t, "GET", "/fhir/Patient", nil, bearer(sec1)); r.Status != 401 {
			t.Fatalf("forged sha256 row: %d, want 401", r.Status)
		}
		wantAlarmLogged(t, s, "api_tokens", "tok-forged1")
		waitAlert(t, s, db, "api_tokens", "tok-forged1")

		// A MAC copied from a real row does not move to another row.
		var realMAC []byte
		if err := db.QueryRowContext(ctx, `SELECT mac FROM api_tokens WHERE name = 'apitest'`).Scan(&realMAC); err != nil {
			t.Fatal(err)
		}
		if len(realMAC) != 32 {
			t.Fatalf("the server's own token has a %d-byte MAC, want 32", len(realMAC))
		}
		sec2, h2 := attackerToken(t)
		execSQL(t, s, db, `INSERT INTO api_tokens (id, name, hash, hash_kind, roles, created, revoked, mac) VALUES (?, ?, ?, 'hmac', 'system', ?, 0, ?)`,
			"tok-forged2", "apitest", h2, now, realMAC)
		if r := s.Do(t, "GET", "/fhir/Patient", nil, bearer(sec2)); r.Status != 401 {
			t.Fatalf("forged row with a copied MAC: %d, want 401", r.Status)
		}
		wantAlarmLogged(t, s, "api_tokens", "tok-forged2")

		// A real token whose roles were raised in the database.
		weak, err := s.App.Tokens().Create(ctx, "weak", []string{"reader"})
		if err != nil {
			t.Fatal(err)
		}
		execSQL(t, s, db, `UPDATE api_tokens SET roles = 'system' WHERE name = 'weak'`)
		if r := s.Do(t, "GET", "/fhir/Patient", nil, bearer(weak.Reveal())); r.Status != 401 {
			t.Fatalf("token with roles raised in the database: %d, want 401", r.Status)
		}

		// New tokens are stored under a keyed hash, not SHA-256.
		var kind string
		var stored []byte
		if err := db.QueryRowContext(ctx, `SELECT hash_kind, hash FROM api_tokens WHERE name = 'apitest'`).Scan(&kind, &stored); err != nil {
			t.Fatal(err)
		}
		plain := sha256.Sum256([]byte(s.Token()))
		if kind != "hmac" || string(stored) == string(plain[:]) {
			t.Fatalf("new token stored as %q (plain SHA-256: %v), want a keyed hash", kind, string(stored) == string(plain[:]))
		}
		if r := s.Do(t, "GET", "/fhir/Patient", nil, nil); r.Status != 200 {
			t.Fatalf("legitimate token after the attacks: %d", r.Status)
		}
	})
}

// TestAuthRowsUpgrade: a token (plain SHA-256, no MAC) and an account
// stored before ADR 0022 keep working after the upgrade, which MACs
// them once at the first start; rows inserted the same way after that
// start are refused.
func TestAuthRowsUpgrade(t *testing.T) {
	for _, d := range apitest.Drivers {
		t.Run(d, func(t *testing.T) {
			old, oldHash := attackerToken(t) // here: an operator's token from before the upgrade
			oldEnrol := "pve_" + strings.Repeat("A", 43)
			oldSess, oldSessHash := sessionToken(t)
			oldKey := newBackendKey(t)
			oldAccess := "pva_" + strings.Repeat("B", 43)
			s := apitest.StartWith(t, d, func(c *config.Config) {
				ctx := context.Background()
				st, err := app.OpenStore(ctx, c.Storage, c.Timeouts) // migrates to head
				if err != nil {
					t.Fatal(err)
				}
				st.Close()
				var db *sql.DB
				q := `INSERT INTO api_tokens (id, name, hash, roles, created, revoked) VALUES (?, ?, ?, ?, ?, 0)`
				if c.Storage.Driver == "postgres" {
					db, err = sql.Open("pgx", c.Storage.PostgresURL)
					q = `INSERT INTO api_tokens (id, name, hash, roles, created, revoked) VALUES ($1, $2, $3, $4, $5, 0)`
				} else {
					db, err = sql.Open("sqlite", c.Storage.SQLitePath)
				}
				if err != nil {
					t.Fatal(err)
				}
				defer db.Close()
				// Exactly what migration 0022 leaves of older rows.
				if _, err := db.ExecContext(ctx, q, "tok-old", "old", oldHash, "system", time.Now().UnixMicro()); err != nil {
					t.Fatal(err)
				}
				if _, err := db.ExecContext(ctx, oldUser(c.Storage.Driver), "usr_old", "old.admin", time.Now().UnixMicro()); err != nil {
					t.Fatal(err)
				}
				qe := `INSERT INTO enrolment_secrets (user_id, hash, created, expires) VALUES (?, ?, ?, ?)`
				if c.Storage.Driver == "postgres" {
					qe = `INSERT INTO enrolment_secrets (user_id, hash, created, expires) VALUES ($1, $2, $3, $4)`
				}
				qs := `INSERT INTO sessions (id, user_id, token_hash, created, last_seen, expires_absolute, idle_seconds, revoked, mfa, address)
VALUES (?, ?, ?, ?, ?, ?, 3600, FALSE, TRUE, '')`
				if c.Storage.Driver == "postgres" {
					qs = `INSERT INTO sessions (id, user_id, token_hash, created, last_seen, expires_absolute, idle_seconds, revoked, mfa, address)
VALUES ($1, $2, $3, $4, $5, $6, 3600, FALSE, TRUE, '')`
				}
				n := time.Now()
				if _, err := db.ExecContext(ctx, qs, "ses-old", "usr_old", oldSessHash, n.UnixMicro(), n.UnixMicro(), n.Add(time.Hour).UnixMicro()); err != nil {
					t.Fatal(err)
				}
				qc := `INSERT INTO smart_clients (id, name, type, jwks, jwks_url, redirect_uris, scopes, created, disabled, approval, registered_by, approved_by)
VALUES ('old-client', 'old', 'backend', ?, '', '[]', 'system/*.rs', ?, FALSE, 'legacy', '', '')`
				if c.Storage.Driver == "postgres" {
					qc = strings.Replace(strings.Replace(qc, "?", "$1", 1), "?", "$2", 1)
				}
				if _, err := db.ExecContext(ctx, qc, oldKey.jwks, n.UnixMicro()); err != nil {
					t.Fatal(err)
				}
				qa := `INSERT INTO smart_access_tokens (token_hash, client_id, scopes, issued, expires, revoked, authz_id) VALUES (?, 'old-client', 'system/*.rs', ?, ?, FALSE, '')`
				if c.Storage.Driver == "postgres" {
					qa = `INSERT INTO smart_access_tokens (token_hash, client_id, scopes, issued, expires, revoked, authz_id) VALUES ($1, 'old-client', 'system/*.rs', $2, $3, FALSE, '')`
				}
				oah := sha256.Sum256([]byte(oldAccess))
				if _, err := db.ExecContext(ctx, qa, oah[:], n.UnixMicro(), n.Add(time.Hour).UnixMicro()); err != nil {
					t.Fatal(err)
				}
				// Second factors, an SSO link and a break-the-glass grant.
				blob := func(h string) string { return "X'" + h + "'" }
				if c.Storage.Driver == "postgres" {
					blob = func(h string) string { return `'\x` + h + `'::bytea` }
				}
				for _, q := range []string{
					`INSERT INTO recovery_codes (user_id, hash) VALUES ('usr_old', ` + blob("01020304") + `)`,
					`INSERT INTO webauthn_credentials (id, user_id, credential_id, public_key, sign_count, aaguid, transports, backup_eligible, backup_state, user_verified, name, created, last_used)
VALUES ('pk-old', 'usr_old', ` + blob("0a0b") + `, ` + blob("0c0d") + `, 0, ` + blob("") + `, '', FALSE, FALSE, TRUE, 'old', 1, 1)`,
					`INSERT INTO sso_links (issuer, subject, user_id, created) VALUES ('https://idp.example', 'sub-old', 'usr_old', 1)`,
				} {
					if _, err := db.ExecContext(ctx, q); err != nil {
						t.Fatalf("%s: %v", q, err)
					}
				}
				qg := `INSERT INTO authz_grants (id, user_id, patient, reason, note, created, expires) VALUES ('grant-old', 'usr_old', 'Patient/p-old', 'ETREAT', NULL, ?, ?)`
				if c.Storage.Driver == "postgres" {
					qg = `INSERT INTO authz_grants (id, user_id, patient, reason, note, created, expires) VALUES ('grant-old', 'usr_old', 'Patient/p-old', 'ETREAT', NULL, $1, $2)`
				}
				if _, err := db.ExecContext(ctx, qg, n.UnixMicro(), n.Add(time.Hour).UnixMicro()); err != nil {
					t.Fatal(err)
				}
				eh := sha256.Sum256([]byte(oldEnrol))
				if _, err := db.ExecContext(ctx, qe, "usr_old", eh[:], time.Now().UnixMicro(), time.Now().Add(time.Hour).UnixMicro()); err != nil {
					t.Fatal(err)
				}
			})
			if r := s.Do(t, "GET", "/fhir/Patient", nil, bearer(old)); r.Status != 200 {
				t.Fatalf("token from before the upgrade: %d %s", r.Status, r.Body)
			}
			if !strings.Contains(s.Logs(), "auth rows: first start") {
				t.Errorf("the upgrade pass was not logged")
			}
			e := newSoD(t, s)
			s.Do(t, "GET", "/admin/api/users", nil, withSession(oldSess)).Want(t, http.StatusOK)
			oldKey.token(t, s, "old-client").Want(t, http.StatusOK)
			s.Do(t, "GET", "/fhir/Patient", nil, bearer(oldAccess)).Want(t, http.StatusOK)
			sq := s.App.Store.(*sqldb.Store)
			if rs, err := sq.Logins().RecoveryHashes(t.Context(), "usr_old"); err != nil || len(rs) != 1 {
				t.Errorf("recovery codes from before the upgrade: %d, %v", len(rs), err)
			}
			if pks, err := sq.Logins().Passkeys(t.Context(), "usr_old"); err != nil || len(pks) != 1 {
				t.Errorf("passkeys from before the upgrade: %d, %v", len(pks), err)
			}
			if u, err := sq.Users().LinkedUser(t.Context(), "https://idp.example", "sub-old"); err != nil || u.ID != "usr_old" {
				t.Errorf("SSO link from before the upgrade: %v, %v", u.ID, err)
			}
			if gs, err := sq.Authz().ActiveGrants(t.Context(), "usr_old", time.Now()); err != nil || len(gs) != 1 {
				t.Errorf("grants from before the upgrade: %d, %v", len(gs), err)
			}
			s.Do(t, "GET", "/admin/api/users", nil, e.as(t, identity.User{ID: "usr_old"})).Want(t, http.StatusOK)
			pub := apitest.H{"Authorization": apitest.NoAuth, "Content-Type": "application/json"}
			s.Do(t, "POST", "/auth/enrol", map[string]any{"username": "old.admin", "enrolment_secret": oldEnrol, "password": "correct horse battery staple 9"}, pub).Want(t, http.StatusOK)
			db := rawDB(t, s)
			if _, err := db.ExecContext(t.Context(), oldUser(d), "usr_late", "late.admin", time.Now().UnixMicro()); err != nil {
				t.Fatal(err)
			}
			s.Do(t, "GET", "/admin/api/users", nil, e.as(t, identity.User{ID: "usr_late"})).Want(t, http.StatusUnauthorized)
			wantAlarmLogged(t, s, "users", "usr_late")
			late, lateHash := attackerToken(t)
			execSQL(t, s, db, `INSERT INTO api_tokens (id, name, hash, roles, created, revoked) VALUES (?, ?, ?, ?, ?, 0)`,
				"tok-late", "late", lateHash, "system", time.Now().UnixMicro())
			if r := s.Do(t, "GET", "/fhir/Patient", nil, bearer(late)); r.Status != 401 {
				t.Fatalf("pre-upgrade-style row inserted after the upgrade: %d, want 401", r.Status)
			}
			wantAlarmLogged(t, s, "api_tokens", "tok-late")
		})
	}
}

// TestForgedUserRowRefused: roles raised, a disabled account
// re-enabled, a FHIR user rebound, a password hash replaced, and an
// account inserted, all with SQL: each account is unknown to the server
// from then on (its session gets 401, login finds no such user), with
// an integrity alarm; accounts changed through the server keep working.
func TestForgedUserRowRefused(t *testing.T) {
	apitest.Run(t, func(t *testing.T, s *apitest.Server) {
		ctx := t.Context()
		db := rawDB(t, s)
		e := newSoD(t, s)
		alice := e.account(t, "admin.alice", "", identity.RoleSecurityAdmin)
		asAlice := e.as(t, alice)
		s.Do(t, "GET", "/admin/api/users", nil, asAlice).Want(t, http.StatusOK)

		// Roles raised in the database.
		mallory := e.account(t, "mallory", "", identity.RoleResearcher)
		asMallory := e.as(t, mallory)
		s.Do(t, "GET", "/admin/api/users", nil, asMallory).Want(t, http.StatusForbidden)
		execSQL(t, s, db, `UPDATE users SET roles = 'security-admin' WHERE id = ?`, mallory.ID)
		s.Do(t, "GET", "/admin/api/users", nil, asMallory).Want(t, http.StatusUnauthorized)
		wantAlarmLogged(t, s, "users", mallory.ID)
		waitAlert(t, s, db, "users", mallory.ID)

		// A disabled account re-enabled in the database.
		bob := e.account(t, "bob", "", identity.RoleResearcher)
		s.Do(t, "POST", "/admin/api/users/"+bob.ID+"/disable", nil, asAlice).Want(t, http.StatusOK)
		execSQL(t, s, db, `UPDATE users SET disabled = ? WHERE id = ?`, false, bob.ID)
		s.Do(t, "GET", "/fhir/Patient", nil, e.as(t, bob)).Want(t, http.StatusUnauthorized)
		wantAlarmLogged(t, s, "users", bob.ID)

		// A patient account rebound to another patient.
		pat, _, err := e.acc.AddBreakGlass(ctx, cliAgent, identity.User{Username: "pat", FHIRUser: "Patient/p-1", Roles: []identity.Role{identity.RolePatient}})
		if err != nil {
			t.Fatal(err)
		}
		execSQL(t, s, db, `UPDATE users SET fhir_user = 'Patient/p-2' WHERE id = ?`, pat.ID)
		s.Do(t, "GET", "/fhir/Patient", nil, e.as(t, pat)).Want(t, http.StatusUnauthorized)

		// A password hash replaced: sign-in finds no such account.
		carol := e.account(t, "carol", "", identity.RoleResearcher)
		execSQL(t, s, db, `UPDATE users SET password_hash = 'x' WHERE id = ?`, carol.ID)
		if _, err := e.acc.Directory().ByUsername(ctx, "carol"); !errors.Is(err, identity.ErrNotFound) {
			t.Fatalf("login lookup of an account whose password hash was replaced: %v, want not found", err)
		}

		// An inserted account, even with a copied MAC.
		var aliceMAC []byte
		if err := db.QueryRowContext(ctx, placeholders(s, `SELECT mac FROM users WHERE id = ?`), alice.ID).Scan(&aliceMAC); err != nil {
			t.Fatal(err)
		}
		now := time.Now().UnixMicro()
		execSQL(t, s, db, `INSERT INTO users (id, username, display_name, fhir_user, roles, disabled, mfa_enrolled, password_hash, created, updated, mac)
VALUES ('usr_forged', 'eve', 'Eve', '', 'security-admin', ?, ?, '', ?, ?, ?)`, false, true, now, now, aliceMAC)
		s.Do(t, "GET", "/admin/api/users", nil, e.as(t, identity.User{ID: "usr_forged"})).Want(t, http.StatusUnauthorized)
		wantAlarmLogged(t, s, "users", "usr_forged")

		// Accounts changed through the server still work.
		s.Do(t, "GET", "/admin/api/users", nil, asAlice).Want(t, http.StatusOK)
		dave := e.account(t, "dave", "", identity.RoleResearcher)
		s.Do(t, "POST", "/admin/api/users/"+dave.ID+"/disable", nil, asAlice).Want(t, http.StatusOK)
		s.Do(t, "POST", "/admin/api/users/"+dave.ID+"/enable", nil, asAlice).Want(t, http.StatusOK)
		if r := s.Do(t, "GET", "/fhir/Patient", nil, e.as(t, dave)); r.Status == http.StatusUnauthorized {
			t.Fatalf("an account disabled and enabled through the server: %d", r.Status)
		}
	})
}

// oldUser inserts a security administrator as stored before ADR 0022
// (no MAC): args id, username, time.
func oldUser(driver string) string {
	if driver == "postgres" {
		return `INSERT INTO users (id, username, display_name, fhir_user, roles, disabled, mfa_enrolled, password_hash, created, updated)
VALUES ($1, $2, 'Old', '', 'security-admin', false, true, '', $3, $3)`
	}
	return `INSERT INTO users (id, username, display_name, fhir_user, roles, disabled, mfa_enrolled, password_hash, created, updated)
VALUES (?1, ?2, 'Old', '', 'security-admin', 0, 1, '', ?3, ?3)`
}

// TestForgedEnrolmentRefused: an enrolment secret inserted with SQL for
// a security administrator (the SHA-256 of a secret the attacker chose,
// the form before ADR 0022) does not set the account's password: the
// stored hash is keyed.
func TestForgedEnrolmentRefused(t *testing.T) {
	apitest.Run(t, func(t *testing.T, s *apitest.Server) {
		db := rawDB(t, s)
		e := newSoD(t, s)
		alice := e.account(t, "admin.alice", "", identity.RoleSecurityAdmin)
		var b [32]byte
		if _, err := rand.Read(b[:]); err != nil {
			t.Fatal(err)
		}
		secret := "pve_" + base64.RawURLEncoding.EncodeToString(b[:])
		h := sha256.Sum256([]byte(secret))
		execSQL(t, s, db, `DELETE FROM enrolment_secrets WHERE user_id = ?`, alice.ID)
		now := time.Now()
		execSQL(t, s, db, `INSERT INTO enrolment_secrets (user_id, hash, created, expires) VALUES (?, ?, ?, ?)`,
			alice.ID, h[:], now.UnixMicro(), now.Add(time.Hour).UnixMicro())
		pub := apitest.H{"Authorization": apitest.NoAuth, "Content-Type": "application/json"}
		wantAPIError(t, s.Do(t, "POST", "/auth/enrol", map[string]any{"username": "admin.alice", "enrolment_secret": secret, "password": "correct horse battery staple 9"}, pub),
			http.StatusBadRequest, "the enrolment secret is not valid")
		u, err := e.acc.Directory().ByID(t.Context(), alice.ID)
		if err != nil {
			t.Fatal(err)
		}
		if u.PasswordHash != "" {
			t.Fatal("a forged enrolment secret set the administrator's password")
		}
		wantAlarmLogged(t, s, "enrolment_secrets", alice.ID)

		// A real secret (of an account the attacker may enrol) moved to
		// the administrator's account.
		_, own, err := e.acc.AddBreakGlass(t.Context(), cliAgent, identity.User{Username: "mallory", DisplayName: "Mallory", Roles: []identity.Role{identity.RoleResearcher}})
		if err != nil {
			t.Fatal(err)
		}
		execSQL(t, s, db, `DELETE FROM enrolment_secrets WHERE user_id = ?`, alice.ID)
		execSQL(t, s, db, `UPDATE enrolment_secrets SET user_id = ? WHERE user_id <> ?`, alice.ID, alice.ID)
		wantAPIError(t, s.Do(t, "POST", "/auth/enrol", map[string]any{"username": "admin.alice", "enrolment_secret": own.Reveal(), "password": "correct horse battery staple 9"}, pub),
			http.StatusBadRequest, "the enrolment secret is not valid")
		if u, err := e.acc.Directory().ByID(t.Context(), alice.ID); err != nil || u.PasswordHash != "" {
			t.Fatalf("a moved enrolment secret set the administrator's password (%v)", err)
		}
	})
}

// sessionToken is a session token the attacker chose and its SHA-256
// (the stored form before ADR 0022).
func sessionToken(t *testing.T) (string, []byte) {
	t.Helper()
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	secret := "pvs_" + base64.RawURLEncoding.EncodeToString(b[:])
	h := sha256.Sum256([]byte(secret))
	return secret, h[:]
}

func withSession(secret string) apitest.H {
	return apitest.H{"Authorization": apitest.NoAuth, "Cookie": web.SessionCookie + "=" + secret,
		httpapi.CSRFHeader: session.CSRFToken(secret), "Content-Type": "application/json"}
}

// TestForgedSessionRefused: a session row inserted with SQL for a
// security administrator (plain SHA-256 of a token the attacker chose,
// or a keyed kind with a MAC copied from a real session), a session
// whose second factor was set in SQL, one un-revoked and one whose
// expiry was extended: all get 401, with an integrity alarm; real
// sessions keep working.
func TestForgedSessionRefused(t *testing.T) {
	apitest.Run(t, func(t *testing.T, s *apitest.Server) {
		ctx := t.Context()
		db := rawDB(t, s)
		e := newSoD(t, s)
		alice := e.account(t, "admin.alice", "", identity.RoleSecurityAdmin)
		asAlice := e.as(t, alice)
		s.Do(t, "GET", "/admin/api/users", nil, asAlice).Want(t, http.StatusOK)
		now := time.Now()
		insert := func(id string, hash []byte, kind string, mac []byte) {
			t.Helper()
			execSQL(t, s, db, `INSERT INTO sessions (id, user_id, token_hash, created, last_seen, expires_absolute, idle_seconds, revoked, mfa, address, hash_kind, mac)
VALUES (?, ?, ?, ?, ?, ?, 3600, FALSE, TRUE, '', ?, ?)`, id, alice.ID, hash, now.UnixMicro(), now.UnixMicro(), now.Add(time.Hour).UnixMicro(), kind, mac)
		}

		sec1, h1 := sessionToken(t)
		insert("ses-forged1", h1, "sha256", nil)
		s.Do(t, "GET", "/admin/api/users", nil, withSession(sec1)).Want(t, http.StatusUnauthorized)
		wantAlarmLogged(t, s, "sessions", "ses-forged1")
		waitAlert(t, s, db, "sessions", "ses-forged1")

		var realMAC []byte
		if err := db.QueryRowContext(ctx, placeholders(s, `SELECT mac FROM sessions WHERE user_id = ? AND NOT revoked`), alice.ID).Scan(&realMAC); err != nil {
			t.Fatal(err)
		}
		sec2, h2 := sessionToken(t)
		insert("ses-forged2", h2, "sha256", realMAC)
		s.Do(t, "GET", "/admin/api/users", nil, withSession(sec2)).Want(t, http.StatusUnauthorized)
		wantAlarmLogged(t, s, "sessions", "ses-forged2")

		// A second factor claimed in SQL.
		noMFA, x, err := e.m.Create(ctx, alice.ID, false, "192.0.2.30")
		if err != nil {
			t.Fatal(err)
		}
		if r := s.Do(t, "GET", "/admin/api/users", nil, withSession(noMFA.Reveal())); r.Status == http.StatusOK {
			t.Fatalf("a session without a second factor reached the admin API")
		}
		execSQL(t, s, db, `UPDATE sessions SET mfa = ? WHERE id = ?`, true, x.ID)
		s.Do(t, "GET", "/admin/api/users", nil, withSession(noMFA.Reveal())).Want(t, http.StatusUnauthorized)
		wantAlarmLogged(t, s, "sessions", x.ID)

		// Revoked, then un-revoked in SQL.
		rev, rx, err := e.m.Create(ctx, alice.ID, true, "192.0.2.31")
		if err != nil {
			t.Fatal(err)
		}
		s.Do(t, "GET", "/admin/api/users", nil, withSession(rev.Reveal())).Want(t, http.StatusOK)
		if err := e.m.Revoke(ctx, rx.ID); err != nil {
			t.Fatal(err)
		}
		s.Do(t, "GET", "/admin/api/users", nil, withSession(rev.Reveal())).Want(t, http.StatusUnauthorized)
		execSQL(t, s, db, `UPDATE sessions SET revoked = ? WHERE id = ?`, false, rx.ID)
		s.Do(t, "GET", "/admin/api/users", nil, withSession(rev.Reveal())).Want(t, http.StatusUnauthorized)

		// Expiry extended in SQL.
		old, ox, err := e.m.Create(ctx, alice.ID, true, "192.0.2.32")
		if err != nil {
			t.Fatal(err)
		}
		execSQL(t, s, db, `UPDATE sessions SET expires_absolute = ? WHERE id = ?`, now.Add(1000*time.Hour).UnixMicro(), ox.ID)
		s.Do(t, "GET", "/admin/api/users", nil, withSession(old.Reveal())).Want(t, http.StatusUnauthorized)

		// The stored hash is keyed, and real sessions work.
		var stored []byte
		var kind string
		if err := db.QueryRowContext(ctx, placeholders(s, `SELECT token_hash, hash_kind FROM sessions WHERE id = ?`), ox.ID).Scan(&stored, &kind); err != nil {
			t.Fatal(err)
		}
		plain := sha256.Sum256([]byte(old.Reveal()))
		if kind != "hmac" || string(stored) == string(plain[:]) {
			t.Errorf("session hash stored as %q (plain: %v), want keyed", kind, string(stored) == string(plain[:]))
		}
		s.Do(t, "GET", "/admin/api/users", nil, asAlice).Want(t, http.StatusOK)
	})
}
