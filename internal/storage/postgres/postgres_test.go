package postgres_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/phivault/phivault/internal/bulk"

	"github.com/jackc/pgx/v5"

	"github.com/phivault/phivault/internal/authn/login"
	"github.com/phivault/phivault/internal/authn/session"
	"github.com/phivault/phivault/internal/authz"
	"github.com/phivault/phivault/internal/identity/account"
	"github.com/phivault/phivault/internal/privacy"
	"github.com/phivault/phivault/internal/storage"
	"github.com/phivault/phivault/internal/storage/postgres"
	"github.com/phivault/phivault/internal/storage/postgres/pgtest"
	"github.com/phivault/phivault/internal/storage/sqldb"
	"github.com/phivault/phivault/internal/storage/storagetest"
)

func openURL(t testing.TB, url string, opts postgres.Options) *sqldb.Store {
	t.Helper()
	s, err := postgres.Open(t.Context(), url, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestConformance(t *testing.T) {
	storagetest.Run(t, func(t *testing.T) storage.Store {
		return openURL(t, pgtest.NewDatabase(t), postgres.Options{})
	})
}

func TestBulkConformance(t *testing.T) {
	storagetest.RunBulk(t, func(t *testing.T) bulk.Store { return openURL(t, pgtest.NewDatabase(t), postgres.Options{}).BulkJobs() })
}

func TestIdentityConformance(t *testing.T) {
	storagetest.RunIdentity(t, func(t *testing.T) storagetest.IdentityStores {
		url := pgtest.NewDatabase(t)
		s := openURL(t, url, postgres.Options{})
		db, err := sql.Open("pgx", url) // registered by pgx/v5/stdlib, which postgres imports
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
		url := pgtest.NewDatabase(t)
		s := openURL(t, url, postgres.Options{})
		db, err := sql.Open("pgx", url)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		return storagetest.LogStores{Store: s, Log: s.TLog(), DB: db}
	})
}

func TestLoginConformance(t *testing.T) {
	storagetest.RunLogin(t, func(t *testing.T) storagetest.LoginStores {
		s := openURL(t, pgtest.NewDatabase(t), postgres.Options{})
		return storagetest.LoginStores{Store: s, Users: s.Users(), Sessions: s.Sessions(), Logins: s.Logins(), Tx: sqldb.NewUnit[login.Tx](s),
			Prune: func(ctx context.Context, now time.Time) (int64, int64, error) {
				p, err := s.Prune(ctx, now)
				return p.Sessions, p.LoginFailures, err
			}}
	})
}

// TestTwoProcesses runs two stores with separate pools on one database,
// as two phivault processes would, racing read-modify-write updates of
// the same resources and creates of the same ids.
func TestTwoProcesses(t *testing.T) {
	url := pgtest.NewDatabase(t)
	a := openURL(t, url, postgres.Options{MaxConns: 4})
	b := openURL(t, url, postgres.Options{MaxConns: 4})
	stores := []storage.Store{a, b}
	t.Run("updates", func(t *testing.T) {
		storagetest.ConcurrentRMW(t, stores, "Observation", "hot", 8, 25)
	})
	t.Run("creates", func(t *testing.T) {
		for i := range 10 {
			storagetest.ConcurrentRMW(t, stores, "Patient", fmt.Sprintf("new%d", i), 8, 1)
		}
	})
	t.Run("audit order", func(t *testing.T) {
		done := make(chan error, 8)
		for w := range 8 {
			go func() {
				for i := range 20 {
					if err := stores[w%2].AppendAudit(t.Context(), storage.AuditRecord{Body: fmt.Appendf(nil, "%d-%d", w, i)}); err != nil {
						done <- err
						return
					}
				}
				done <- nil
			}()
		}
		for range 8 {
			if err := <-done; err != nil {
				t.Fatal(err)
			}
		}
		var last int64
		n := 0
		if err := a.ScanAudit(t.Context(), 0, func(seq int64, _ storage.AuditRecord) error {
			if seq <= last {
				return fmt.Errorf("seq %d after %d", seq, last)
			}
			last = seq
			n++
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		if n != 160 {
			t.Errorf("%d audit records, want 160", n)
		}
	})
}

func TestMigrations(t *testing.T) {
	url := pgtest.NewDatabase(t)
	ms, err := sqldb.Migrations(postgres.Dialect())
	if err != nil {
		t.Fatal(err)
	}
	// Concurrent first opens on an empty database serialise on the
	// migration lock; reopening is a no-op.
	errs := make(chan error, 3)
	for range 3 {
		go func() {
			s, err := postgres.Open(t.Context(), url, postgres.Options{MaxConns: 2})
			if err == nil {
				s.Close()
			}
			errs <- err
		}()
	}
	for range 3 {
		if err := <-errs; err != nil {
			t.Fatalf("concurrent open: %v", err)
		}
	}
	s := openURL(t, url, postgres.Options{})
	if v, err := s.SchemaVersion(t.Context()); err != nil || v != ms[len(ms)-1].Version {
		t.Fatalf("schema version %d, %v; want %d", v, err, ms[len(ms)-1].Version)
	}
}

func TestUnreachable(t *testing.T) {
	_, err := postgres.Open(t.Context(), "postgres://nobody@127.0.0.1:1/x?sslmode=disable&connect_timeout=2", postgres.Options{})
	if !errors.Is(err, storage.ErrUnavailable) {
		t.Fatalf("Open of an unreachable server: %v, want ErrUnavailable", err)
	}
}

// TestRefusedSession: when the server refuses to open a session (here
// the database no longer accepts connections: an operator's ALTER
// DATABASE, a failover, a restart), the store's error wraps
// ErrUnavailable, so callers answer 503 and do not take it for a bad
// request or a failed credential. Before, the server's FATAL (SQLSTATE
// 55000) was classified by its code and was not ErrUnavailable.
func TestRefusedSession(t *testing.T) {
	dbURL := pgtest.NewDatabase(t)
	s := openURL(t, dbURL, postgres.Options{})
	admin := os.Getenv(pgtest.EnvURL)
	if admin == "" {
		admin = pgtest.DefaultURL
	}
	db, err := sql.Open("pgx", admin)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	u, err := url.Parse(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	name := strings.TrimPrefix(u.Path, "/")
	exec := func(q string, args ...any) {
		t.Helper()
		if _, err := db.ExecContext(context.WithoutCancel(t.Context()), q, args...); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	exec("ALTER DATABASE " + pgx.Identifier{name}.Sanitize() + " ALLOW_CONNECTIONS false")
	t.Cleanup(func() { exec("ALTER DATABASE " + pgx.Identifier{name}.Sanitize() + " ALLOW_CONNECTIONS true") })
	exec("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()", name)
	// The first call may meet a session the server just ended (57P01);
	// the later ones must open a new session and be refused.
	for range 3 {
		if _, err := s.Current(t.Context(), "Patient", "p1"); !errors.Is(err, storage.ErrUnavailable) {
			t.Fatalf("a read while the database refuses sessions: %v, want ErrUnavailable", err)
		}
	}
}

func BenchmarkPut(b *testing.B) {
	storagetest.BenchPut(b, openURL(b, pgtest.NewDatabase(b), postgres.Options{}))
}

func BenchmarkPutBatch100(b *testing.B) {
	storagetest.BenchPutBatch100(b, openURL(b, pgtest.NewDatabase(b), postgres.Options{}))
}

func BenchmarkCurrent(b *testing.B) {
	storagetest.BenchCurrent(b, openURL(b, pgtest.NewDatabase(b), postgres.Options{}))
}

func TestReportsConformance(t *testing.T) {
	storagetest.RunReports(t, func(t *testing.T) storagetest.ReportStores {
		s := openURL(t, pgtest.NewDatabase(t), postgres.Options{})
		return storagetest.ReportStores{Store: s, Unit: sqldb.NewUnit[privacy.Tx](s)}
	})
}

func TestAmendmentsConformance(t *testing.T) {
	storagetest.RunAmendments(t, func(t *testing.T) storagetest.AmendmentStores {
		s := openURL(t, pgtest.NewDatabase(t), postgres.Options{})
		return storagetest.AmendmentStores{Store: s, Unit: sqldb.NewUnit[privacy.AmendTx](s)}
	})
}

func TestReviewsConformance(t *testing.T) {
	storagetest.RunReviews(t, func(t *testing.T) storagetest.ReviewStores {
		s := openURL(t, pgtest.NewDatabase(t), postgres.Options{})
		return storagetest.ReviewStores{Reviews: s.Authz(), Audit: s, Unit: sqldb.NewUnit[authz.Tx](s)}
	})
}

func TestEpochConformance(t *testing.T) {
	storagetest.RunEpoch(t, func(t *testing.T) storagetest.EpochStores {
		url := pgtest.NewDatabase(t)
		s := openURL(t, url, postgres.Options{})
		o := openURL(t, url, postgres.Options{MaxConns: 4})
		return storagetest.EpochStores{Store: s, Epochs: s.Epochs(), CompactKeys: s.CompactKeys, Other: o}
	})
}

func TestFHIRUserMigration(t *testing.T) {
	db, err := sql.Open("pgx", pgtest.NewDatabase(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	storagetest.RunFHIRUserMigration(t, db, postgres.Dialect())
}

func TestClientApprovalMigration(t *testing.T) {
	db, err := sql.Open("pgx", pgtest.NewDatabase(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	storagetest.RunClientApprovalMigration(t, db, postgres.Dialect())
}

// TestLockTimeout: a table locked by another session makes a store call
// fail with ErrUnavailable after the lock timeout (PostgreSQL
// lock_timeout on every pooled connection, not retried), instead of
// waiting for as long as the lock is held.
func TestLockTimeout(t *testing.T) {
	url := pgtest.NewDatabase(t)
	s := openURL(t, url, postgres.Options{LockTimeout: 200 * time.Millisecond})
	db, err := sql.Open("pgx", url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	holder, err := db.BeginTx(t.Context(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer holder.Rollback()
	if _, err := holder.ExecContext(t.Context(), "LOCK TABLE audit_events IN ACCESS EXCLUSIVE MODE"); err != nil {
		t.Fatal(err)
	}
	// Far longer than the lock timeout; without it the append would wait
	// until this deadline and fail with it instead.
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	err = s.AppendAudit(ctx, storage.AuditRecord{Time: time.Now(), Body: []byte("x")})
	if !errors.Is(err, storage.ErrUnavailable) || ctx.Err() != nil {
		t.Fatalf("append under a held lock: %v (context: %v), want ErrUnavailable from the lock timeout", err, ctx.Err())
	}
	// The URL wins over the option.
	s2 := openURL(t, url+"&lock_timeout=100ms", postgres.Options{LockTimeout: time.Hour})
	ctx2, cancel2 := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel2()
	if err := s2.AppendAudit(ctx2, storage.AuditRecord{Time: time.Now(), Body: []byte("x")}); !errors.Is(err, storage.ErrUnavailable) || ctx2.Err() != nil {
		t.Fatalf("append with the URL's lock_timeout: %v (context: %v)", err, ctx2.Err())
	}
}

// TestCheckIntegrity runs the full check "phivault verify" starts with:
// a sound database (no checksum failures counted) passes.
func TestCheckIntegrity(t *testing.T) {
	s := openURL(t, pgtest.NewDatabase(t), postgres.Options{})
	if err := s.CheckIntegrity(t.Context()); err != nil {
		t.Fatalf("a sound database: %v", err)
	}
}

func TestAnchorMigration(t *testing.T) {
	storagetest.RunAnchorMigration(t, func(t *testing.T) *sql.DB {
		db, err := sql.Open("pgx", pgtest.NewDatabase(t))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		return db
	}, postgres.Dialect())
}
