package postgres

import (
	"database/sql/driver"
	"embed"
	"errors"
	"io/fs"
	"net"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/phivault/phivault/internal/storage"
	"github.com/phivault/phivault/internal/storage/sqldb"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// Dialect returns the PostgreSQL dialect of sqldb.
//
// Transactions run at READ COMMITTED. Correctness of concurrent writers
// (several processes on one database) rests on three things, each
// proven by the two-store test:
//   - Tx.Current takes FOR UPDATE on the resource's pointer row, so a
//     read-modify-write of an existing resource is serialised;
//   - Put moves the pointer with UPDATE ... WHERE version = v-1 (or
//     INSERT ... ON CONFLICT DO NOTHING for v = 1), which re-checks the
//     row after waiting for a concurrent writer, so a stale write changes
//     nothing and returns ErrConflict (retried when it lost a create race);
//   - Lock and AppendAudit take transaction-scoped advisory locks keyed
//     by a 64-bit FNV hash computed in Go (hashtext is only 32 bits).
func Dialect() sqldb.Dialect {
	sub, err := fs.Sub(migrationFiles, "migrations")
	if err != nil {
		panic("postgres: embedded migrations missing: " + err.Error()) // programmer error
	}
	return sqldb.Dialect{
		Name:     "postgres",
		Dollar:   true,
		LockRows: " FOR UPDATE OF r",
		LockSQL:  "SELECT pg_advisory_xact_lock(?)",
		// Key writes take the epoch lock shared, a KEK epoch's fence
		// takes it exclusively (sqldb/epoch.go).
		LockSharedSQL: "SELECT pg_advisory_xact_lock_shared(?)",
		// VACUUM removes the dead tuples of re-wrapped and shredded key
		// records from the heap (it cannot reach the WAL, replicas or
		// backups: only the destroyed KEK keys answer those, ADR 0015).
		CompactKeys: []string{"VACUUM keys"},
		// Pages are checked against their checksums as they are read;
		// walking every page is pg_amcheck's job (docs/operations.md).
		IntegrityCheck: `SELECT CASE WHEN COALESCE(checksum_failures, 0) = 0 THEN 'ok' ELSE checksum_failures || ' data checksum failures counted in pg_stat_database (check with pg_amcheck)' END FROM pg_stat_database WHERE datname = current_database()`,
		Migrations:     sub,
		// Every row of a transaction that was running at the previous
		// poll, or began since, has an xid at least that poll's xmin.
		ChangesSince: `SELECT c.seq, c.owner, s.xmin FROM (SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint AS xmin) s
LEFT JOIN authz_changes c ON c.xid >= (?::bigint)::text::xid8 ORDER BY c.seq LIMIT ?`,
		NowMicros: "(extract(epoch from clock_timestamp()) * 1000000)::bigint",
		Classify:  classify,
	}
}

// classify maps SQLSTATEs (https://www.postgresql.org/docs/current/errcodes-appendix.html)
// and connection failures.
func classify(err error) (kind error, retry bool) {
	var pe *pgconn.PgError
	var ce *pgconn.ConnectError
	if errors.As(err, &pe) {
		if errors.As(err, &ce) {
			// The server refused to open a session (the database not
			// accepting connections, a role or database gone, a
			// restart): unavailable, whatever the code says.
			return storage.ErrUnavailable, false
		}
		switch {
		case pe.Code == "40001", pe.Code == "40P01": // serialization_failure, deadlock_detected
			return storage.ErrUnavailable, true
		case pe.Code == "23505": // unique_violation
			return storage.ErrConflict, false
		case pe.Code == "55P03", pe.Code == "57014":
			// lock_not_available (lock_timeout expired) and
			// query_canceled (statement_timeout, or a cancelled
			// context): the wait was already as long as allowed, so
			// running the transaction again would only multiply it.
			return storage.ErrUnavailable, false
		case len(pe.Code) == 5 && (pe.Code[:2] == "08" || pe.Code[:2] == "53" || pe.Code[:2] == "57"):
			// connection exception, insufficient resources, operator
			// intervention (shutdown, cancel by admin).
			return storage.ErrUnavailable, false
		}
		return nil, false
	}
	var ne net.Error
	switch {
	case errors.Is(err, driver.ErrBadConn), errors.As(err, &ne), pgconn.Timeout(err):
		return storage.ErrUnavailable, pgconn.SafeToRetry(err)
	case pgconn.SafeToRetry(err):
		return storage.ErrUnavailable, true
	}
	if errors.As(err, &ce) {
		return storage.ErrUnavailable, false
	}
	return nil, false
}
