package app_test

import (
	"crypto/sha256"
	"database/sql"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/phivault/phivault/internal/app"
	"github.com/phivault/phivault/internal/config"
)

// TestAuthRowsKeyDeletedRefused: a database writer who deletes the
// auth-rows key and every MAC (and inserts a token of their own) would
// have the next start create a new key and bless every row (ADR 0022).
// The key's check value kept beside the key file makes that start fail
// closed; a replaced or unreadable check value does too; removing the
// file is the operator's deliberate acceptance.
func TestAuthRowsKeyDeletedRefused(t *testing.T) {
	for _, driver := range []string{"sqlite", "postgres"} {
		t.Run(driver, func(t *testing.T) {
			c := freshConfig(t, driver)
			open := func() (*app.App, error) {
				return app.Open(t.Context(), c, slog.New(slog.DiscardHandler))
			}
			a, err := open()
			if err != nil {
				t.Fatal(err)
			}
			if _, err := a.Tokens().Create(t.Context(), "ops", []string{"system"}); err != nil {
				t.Fatal(err)
			}
			a.Close()
			check := filepath.Join(filepath.Dir(c.Audit.CheckpointFile), "auth-rows-key-check")
			kept, err := os.ReadFile(check)
			if err != nil {
				t.Fatalf("the first start keeps no check value: %v", err)
			}

			// A second start with the same key: fine.
			if a, err = open(); err != nil {
				t.Fatalf("restart: %v", err)
			}
			a.Close()

			// The attack: the key and every MAC gone, a token inserted.
			db := rawSQL(t, c)
			h := sha256.Sum256([]byte("pvt_" + strings.Repeat("x", 43)))
			for _, q := range []string{
				`DELETE FROM keys WHERE owner = 'system/auth-rows'`,
				`UPDATE api_tokens SET mac = NULL`,
				`UPDATE users SET mac = NULL`,
			} {
				if _, err := db.ExecContext(t.Context(), q); err != nil {
					t.Fatalf("%s: %v", q, err)
				}
			}
			ins := `INSERT INTO api_tokens (id, name, hash, hash_kind, roles, created, revoked) VALUES (?, ?, ?, 'sha256', 'system', ?, 0)`
			if driver == "postgres" {
				ins = `INSERT INTO api_tokens (id, name, hash, hash_kind, roles, created, revoked) VALUES ($1, $2, $3, 'sha256', 'system', $4, 0)`
			}
			if _, err := db.ExecContext(t.Context(), ins, "tok-forged", "ops2", h[:], time.Now().UnixMicro()); err != nil {
				t.Fatal(err)
			}
			_, err = open()
			if err == nil || !strings.Contains(err.Error(), "integrity alarm") || !strings.Contains(err.Error(), "auth-rows key is missing") {
				t.Fatalf("start after the key was deleted: %v, want an integrity alarm", err)
			}
			var n int
			if err := db.QueryRowContext(t.Context(), `SELECT COUNT(*) FROM api_tokens WHERE mac IS NOT NULL`).Scan(&n); err != nil {
				t.Fatal(err)
			}
			if n != 0 {
				t.Fatalf("the refused start MACed %d token rows", n)
			}

			// A check value that is not one is refused, not ignored.
			if err := os.WriteFile(check, []byte("garbage\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			if _, err := open(); err == nil || !strings.Contains(err.Error(), "integrity alarm") {
				t.Fatalf("start with a damaged check value: %v, want an integrity alarm", err)
			}

			// The operator removes the file (a database restored from
			// before the key): the start accepts and keeps the new key's.
			if err := os.Remove(check); err != nil {
				t.Fatal(err)
			}
			if a, err = open(); err != nil {
				t.Fatalf("start after the operator removed the check value: %v", err)
			}
			a.Close()
			now, err := os.ReadFile(check)
			if err != nil {
				t.Fatal(err)
			}
			if string(now) == string(kept) {
				t.Fatal("a new key kept the old check value")
			}

			// A key replaced by another database's (here: the original
			// check value put back over the new key's) is refused too.
			if err := os.WriteFile(check, kept, 0o600); err != nil {
				t.Fatal(err)
			}
			if _, err := open(); err == nil || !strings.Contains(err.Error(), "not the one") {
				t.Fatalf("start with another key's check value: %v, want an integrity alarm", err)
			}
		})
	}
}

func rawSQL(t *testing.T, c config.Config) *sql.DB {
	t.Helper()
	name, dsn := "sqlite", c.Storage.SQLitePath
	if c.Storage.Driver == "postgres" {
		name, dsn = "pgx", c.Storage.PostgresURL
	}
	db, err := sql.Open(name, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}
