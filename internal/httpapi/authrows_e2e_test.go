package httpapi_test

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/base64"
	"strings"
	"testing"
	"time"

	"github.com/phivault/phivault/internal/apitest"
	"github.com/phivault/phivault/internal/app"
	"github.com/phivault/phivault/internal/config"
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
		weak, err := s.App.CreateToken(ctx, "weak", []string{"reader"})
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

// TestAPITokenUpgrade: a token stored before ADR 0022 (plain SHA-256, no
// MAC) keeps working after the upgrade, which MACs it once at the first
// start; a row inserted the same way after that start is refused.
func TestAPITokenUpgrade(t *testing.T) {
	for _, d := range apitest.Drivers {
		t.Run(d, func(t *testing.T) {
			old, oldHash := attackerToken(t) // here: an operator's token from before the upgrade
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
				// Exactly what migration 0022 leaves of an older row.
				if _, err := db.ExecContext(ctx, q, "tok-old", "old", oldHash, "system", time.Now().UnixMicro()); err != nil {
					t.Fatal(err)
				}
			})
			if r := s.Do(t, "GET", "/fhir/Patient", nil, bearer(old)); r.Status != 200 {
				t.Fatalf("token from before the upgrade: %d %s", r.Status, r.Body)
			}
			if !strings.Contains(s.Logs(), "auth rows: first start") {
				t.Errorf("the upgrade pass was not logged")
			}
			db := rawDB(t, s)
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
