package merkle_test

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib"
	"golang.org/x/mod/sumdb/note"

	"github.com/phivault/phivault/internal/audit"
	"github.com/phivault/phivault/internal/audit/merkle"
	"github.com/phivault/phivault/internal/ident"
	"github.com/phivault/phivault/internal/keys"
	"github.com/phivault/phivault/internal/storage"
	"github.com/phivault/phivault/internal/storage/postgres"
	"github.com/phivault/phivault/internal/storage/postgres/pgtest"
	"github.com/phivault/phivault/internal/storage/sqldb"
	"github.com/phivault/phivault/internal/storage/sqlite"
)

const testOrigin = "test.phivault.example/audit"

// crypt is a keyring with the audit key and a log signer.
type crypt struct {
	kr     *keys.Keyring
	log    *audit.Log
	signer *keys.LogSigner
}

func newCrypt(t testing.TB) *crypt {
	t.Helper()
	kf := filepath.Join(t.TempDir(), "kek.json")
	if err := keys.CreateKeyFile(kf); err != nil {
		t.Fatal(err)
	}
	kek, err := keys.OpenKEK(context.Background(), keys.KEKSource{KeyFile: kf}, nil)
	if err != nil {
		t.Fatal(err)
	}
	kr := keys.NewKeyring(kek, keys.Options{})
	rec := func(name ident.Owner) storage.KeyRecord {
		r, err := kr.NewSystemKey(name, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	if err := kr.LoadSystemKeys(rec(keys.SystemBlindIndex), rec(keys.SystemToken), rec(keys.SystemAudit)); err != nil {
		t.Fatal(err)
	}
	s, err := kr.LoadLogSigner(rec(keys.SystemLogSigner), testOrigin)
	if err != nil {
		t.Fatal(err)
	}
	return &crypt{kr: kr, log: audit.NewLog(kr), signer: s}
}

// db is one store plus a raw SQL handle for tampering.
type db struct {
	name string
	st   *sqldb.Store
	raw  *sql.DB
	url  string // PostgreSQL only
	path string // SQLite only
}

// drivers runs fn once per database driver.
func drivers(t *testing.T, fn func(t *testing.T, open func(t testing.TB) *db)) {
	t.Run("sqlite", func(t *testing.T) { fn(t, openSQLite) })
	t.Run("postgres", func(t *testing.T) {
		fn(t, func(t testing.TB) *db { return openPostgres(t, pgtest.NewDatabase(t)) })
	})
}

func openSQLite(t testing.TB) *db {
	t.Helper()
	path := filepath.Join(t.TempDir(), "phivault.db")
	st, err := sqlite.Open(context.Background(), path, sqlite.Options{MapReaders: true}) // as the verify commands open it
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	raw, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { raw.Close() })
	return &db{name: "sqlite", st: st, raw: raw, path: path}
}

func openPostgres(t testing.TB, url string) *db {
	t.Helper()
	st, err := postgres.Open(context.Background(), url, postgres.Options{MaxConns: 4})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	raw, err := sql.Open("pgx", url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { raw.Close() })
	return &db{name: "postgres", st: st, raw: raw, url: url}
}

// exec runs a tampering statement written with ? placeholders.
func (d *db) exec(t testing.TB, q string, args ...any) {
	t.Helper()
	if d.name == "postgres" {
		n := 0
		out := make([]byte, 0, len(q))
		for i := 0; i < len(q); i++ {
			if q[i] == '?' {
				n++
				out = append(out, fmt.Sprintf("$%d", n)...)
				continue
			}
			out = append(out, q[i])
		}
		q = string(out)
	}
	if _, err := d.raw.Exec(q, args...); err != nil {
		t.Fatalf("tampering: %s: %v", q, err)
	}
}

func event(i int) audit.Event {
	return audit.Event{
		Time: time.Unix(1_700_000_000+int64(i), 0).UTC(), Action: audit.ActionRead, Outcome: audit.OutcomeSuccess,
		Agent:    audit.Agent{User: fmt.Sprintf("user-%d", i%7), Role: "physician", Client: "token"},
		Patients: []string{fmt.Sprintf("Patient/p%d", i%13)}, Entities: []string{fmt.Sprintf("Observation/o%d/_history/1", i)},
		RequestID: fmt.Sprintf("req-%d", i),
	}
}

// appendEvents seals and appends events [from, to) in one transaction.
func (c *crypt) appendEvents(t testing.TB, st storage.Store, from, to int) {
	t.Helper()
	recs := make([]storage.AuditRecord, 0, to-from)
	for i := from; i < to; i++ {
		r, err := c.log.Seal(event(i))
		if err != nil {
			t.Fatal(err)
		}
		recs = append(recs, r)
	}
	if err := st.AppendAudit(context.Background(), recs...); err != nil {
		t.Fatal(err)
	}
}

func (c *crypt) integrator(t testing.TB, st *sqldb.Store) *merkle.Integrator {
	t.Helper()
	in, err := merkle.NewIntegrator(merkle.IntegratorOptions{Store: st.TLog(), Signer: c.signer, Origin: testOrigin, Opener: c.log, Verifier: c.verifier(t)})
	if err != nil {
		t.Fatal(err)
	}
	return in
}

func (c *crypt) verify(t testing.TB, st *sqldb.Store, vkey string) (merkle.VerifyReport, error) {
	t.Helper()
	v, err := merkle.NewVerifier(vkey)
	if err != nil {
		t.Fatal(err)
	}
	return merkle.Verify(context.Background(), merkle.VerifyOptions{Store: st.TLog(), Opener: c.log, Verifier: v, Origin: testOrigin})
}

// verifier is the log's own checkpoint verifier.
func (c *crypt) verifier(t testing.TB) note.Verifier {
	t.Helper()
	v, err := merkle.NewVerifier(c.signer.VerifierKey())
	if err != nil {
		t.Fatal(err)
	}
	return v
}
