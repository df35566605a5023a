package sqlite_test

import (
	"context"
	"database/sql"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/phivault/phivault/internal/bulk"

	"github.com/phivault/phivault/internal/authn/login"
	"github.com/phivault/phivault/internal/authn/session"
	"github.com/phivault/phivault/internal/authz"
	"github.com/phivault/phivault/internal/identity/account"
	"github.com/phivault/phivault/internal/privacy"
	"github.com/phivault/phivault/internal/storage"
	"github.com/phivault/phivault/internal/storage/sqldb"
	"github.com/phivault/phivault/internal/storage/sqlite"
	"github.com/phivault/phivault/internal/storage/storagetest"
)

func open(t testing.TB) *sqldb.Store {
	t.Helper()
	s, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "phivault.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestConformance(t *testing.T) {
	storagetest.Run(t, func(t *testing.T) storage.Store { return open(t) })
}

func TestBulkConformance(t *testing.T) {
	storagetest.RunBulk(t, func(t *testing.T) bulk.Store { return open(t).BulkJobs() })
}

func TestIdentityConformance(t *testing.T) {
	storagetest.RunIdentity(t, func(t *testing.T) storagetest.IdentityStores {
		path := filepath.Join(t.TempDir(), "phivault.db")
		s, err := sqlite.Open(t.Context(), path, sqlite.Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		db, err := sql.Open("sqlite", sqlite.DSN(path, sqlite.DefaultBusyTimeout, false))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		return storagetest.IdentityStores{Users: s.Users(), Sessions: s.Sessions(), DB: db,
			Accounts: sqldb.NewUnit[account.Tx](s), Revoker: sqldb.NewUnit[session.Tx](s)}
	})
}

func TestLogConformance(t *testing.T) {
	storagetest.RunLog(t, func(t *testing.T) storagetest.LogStores {
		path := filepath.Join(t.TempDir(), "phivault.db")
		s, err := sqlite.Open(t.Context(), path, sqlite.Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		// A writer connection: the legacy case sets leaf indexes by hand.
		db, err := sql.Open("sqlite", sqlite.DSN(path, sqlite.DefaultBusyTimeout, true))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		return storagetest.LogStores{Store: s, Log: s.TLog(), DB: db}
	})
}

func TestLoginConformance(t *testing.T) {
	storagetest.RunLogin(t, func(t *testing.T) storagetest.LoginStores {
		s, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "phivault.db"), sqlite.Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return storagetest.LoginStores{Store: s, Users: s.Users(), Sessions: s.Sessions(), Logins: s.Logins(), Tx: sqldb.NewUnit[login.Tx](s),
			Prune: func(ctx context.Context, now time.Time) (int64, int64, error) {
				p, err := s.Prune(ctx, now)
				return p.Sessions, p.LoginFailures, err
			}}
	})
}

func TestMigrations(t *testing.T) {
	path := filepath.Join(t.TempDir(), "phivault.db")
	ms, err := sqldb.Migrations(sqlite.Dialect())
	if err != nil {
		t.Fatal(err)
	}
	for range 2 { // empty to head, then head to head
		s, err := sqlite.Open(t.Context(), path, sqlite.Options{})
		if err != nil {
			t.Fatal(err)
		}
		if v, err := s.SchemaVersion(t.Context()); err != nil || v != ms[len(ms)-1].Version {
			t.Fatalf("schema version %d, %v; want %d", v, err, ms[len(ms)-1].Version)
		}
		put := storage.Version{Type: "Patient", ID: "p1", Version: 1, Owner: "org", LastUpdated: time.Unix(1, 0).UTC(), Ciphertext: []byte("x")}
		err = s.Update(t.Context(), func(tx storage.Tx) error { return tx.Put(t.Context(), put, nil) })
		if v, _ := s.Current(t.Context(), "Patient", "p1"); v.Version != 1 {
			t.Fatalf("data lost across reopen: %v", err)
		}
		s.Close()
	}
	for _, name := range []string{"phivault.db", "phivault.db-wal"} {
		fi, err := os.Stat(filepath.Join(filepath.Dir(path), name))
		if err == nil && fi.Mode().Perm() != 0o600 {
			t.Errorf("%s has mode %v, want 0600", name, fi.Mode().Perm())
		}
		if name == "phivault.db" && err != nil {
			t.Fatal(err)
		}
	}

	// A schema from the future is refused rather than written to.
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`INSERT INTO schema_migrations (version, name, applied_at) VALUES (999, 'future', 0)`); err != nil {
		t.Fatal(err)
	}
	db.Close()
	if s, err := sqlite.Open(t.Context(), path, sqlite.Options{}); err == nil {
		s.Close()
		t.Fatal("Open accepted a database migrated by a newer binary")
	}
}

// TestDurabilitySettings checks the PRAGMAs each connection runs with:
// these are what make an acknowledged write survive power loss.
func TestDurabilitySettings(t *testing.T) {
	path := filepath.Join(t.TempDir(), "phivault.db")
	s, err := sqlite.Open(t.Context(), path, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for _, tc := range []struct {
		writer bool
		pragma string
		want   string
	}{
		{true, "journal_mode", "wal"},
		{true, "synchronous", "2"}, // FULL
		{true, "foreign_keys", "1"},
		{true, "busy_timeout", "5000"},
		{false, "synchronous", "2"},
		{false, "query_only", "1"},
		{false, "mmap_size", "2147418112"}, // readers map the file (entry bundles, ADR 0014)
		{true, "mmap_size", "0"},           // the writer does not
	} {
		db, err := sql.Open("sqlite", sqlite.DSN(path, sqlite.DefaultBusyTimeout, tc.writer))
		if err != nil {
			t.Fatal(err)
		}
		var got string
		if err := db.QueryRow("PRAGMA " + tc.pragma).Scan(&got); err != nil {
			t.Fatal(err)
		}
		db.Close()
		if got != tc.want {
			t.Errorf("writer=%v: PRAGMA %s = %s, want %s", tc.writer, tc.pragma, got, tc.want)
		}
	}
}

func BenchmarkPut(b *testing.B)         { storagetest.BenchPut(b, open(b)) }
func BenchmarkPutBatch100(b *testing.B) { storagetest.BenchPutBatch100(b, open(b)) }
func BenchmarkCurrent(b *testing.B)     { storagetest.BenchCurrent(b, open(b)) }
func BenchmarkUpdate(b *testing.B)      { storagetest.BenchUpdate(b, open(b)) }

func TestReportsConformance(t *testing.T) {
	storagetest.RunReports(t, func(t *testing.T) storagetest.ReportStores {
		s := open(t)
		return storagetest.ReportStores{Store: s, Unit: sqldb.NewUnit[privacy.Tx](s)}
	})
}

func TestAmendmentsConformance(t *testing.T) {
	storagetest.RunAmendments(t, func(t *testing.T) storagetest.AmendmentStores {
		s := open(t)
		return storagetest.AmendmentStores{Store: s, Unit: sqldb.NewUnit[privacy.AmendTx](s)}
	})
}

func TestReviewsConformance(t *testing.T) {
	storagetest.RunReviews(t, func(t *testing.T) storagetest.ReviewStores {
		s := open(t)
		return storagetest.ReviewStores{Reviews: s.Authz(), Audit: s, Unit: sqldb.NewUnit[authz.Tx](s)}
	})
}

func TestEpochConformance(t *testing.T) {
	storagetest.RunEpoch(t, func(t *testing.T) storagetest.EpochStores {
		path := filepath.Join(t.TempDir(), "phivault.db")
		s, err := sqlite.Open(t.Context(), path, sqlite.Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		// A second process on the same file (the CLI beside the server).
		o, err := sqlite.Open(t.Context(), path, sqlite.Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { o.Close() })
		return storagetest.EpochStores{Store: s, Epochs: s.Epochs(), CompactKeys: s.CompactKeys, Other: o}
	})
}

func TestFHIRUserMigration(t *testing.T) {
	path := filepath.Join(t.TempDir(), "phivault.db")
	db, err := sql.Open("sqlite", sqlite.DSN(path, sqlite.DefaultBusyTimeout, true))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	storagetest.RunFHIRUserMigration(t, db, sqlite.Dialect())
}

func TestClientApprovalMigration(t *testing.T) {
	path := filepath.Join(t.TempDir(), "phivault.db")
	db, err := sql.Open("sqlite", sqlite.DSN(path, sqlite.DefaultBusyTimeout, true))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	storagetest.RunClientApprovalMigration(t, db, sqlite.Dialect())
}

func TestAnchorMigration(t *testing.T) {
	storagetest.RunAnchorMigration(t, func(t *testing.T) *sql.DB {
		db, err := sql.Open("sqlite", sqlite.DSN(filepath.Join(t.TempDir(), "phivault.db"), sqlite.DefaultBusyTimeout, true))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		return db
	}, sqlite.Dialect())
}
