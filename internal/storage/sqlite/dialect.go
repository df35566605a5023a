package sqlite

import (
	"embed"
	"errors"
	"io/fs"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/phivault/phivault/internal/storage"
	"github.com/phivault/phivault/internal/storage/sqldb"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// Dialect returns the SQLite dialect of sqldb. With one writer
// connection there is nothing to lock: Lock is a no-op and Current takes
// no row locks.
func Dialect() sqldb.Dialect {
	sub, err := fs.Sub(migrationFiles, "migrations")
	if err != nil {
		panic("sqlite: embedded migrations missing: " + err.Error()) // programmer error
	}
	return sqldb.Dialect{
		Name:       "sqlite",
		Migrations: sub,
		// One writer: seq is the commit order.
		ChangesSince: `SELECT seq, owner, seq FROM authz_changes WHERE seq > ? ORDER BY seq LIMIT ?`,
		NowMicros:    "CAST((julianday('now') - 2440587.5) * 86400000000 AS INTEGER)",
		Classify:     classify,
		GroupCommit:  true,
		InsertIndex:  "INSERT OR FAIL INTO", // no statement journal (sqldb.Dialect.InsertIndex)
		// With secure_delete on (sqlite.go), freed cells and pages are
		// zeroed in the pages written to the WAL; the checkpoint copies
		// them into the database file and TRUNCATE empties the WAL, so
		// no older page image with a destroyed wrapped key stays in
		// either file (ADR 0015).
		CompactKeys: []string{"PRAGMA wal_checkpoint(TRUNCATE)"},
		// The full check, beyond the quick_check at open: each index
		// against its table, UNIQUE and NOT NULL constraints.
		IntegrityCheck: "PRAGMA integrity_check(5)",
		Corrupt:        corrupt,
	}
}

// corrupt reports an error by which SQLite says the file is damaged.
func corrupt(err error) bool {
	var e *sqlite.Error
	return errors.As(err, &e) && (e.Code()&0xff == sqlite3.SQLITE_CORRUPT || e.Code()&0xff == sqlite3.SQLITE_NOTADB)
}

// classify maps SQLite result codes (extended codes are enabled by the
// driver; the primary code is the low byte).
func classify(err error) (kind error, retry bool) {
	var e *sqlite.Error
	if !errors.As(err, &e) {
		return nil, false
	}
	switch e.Code() & 0xff {
	case sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED:
		// Another process held the write lock for all of busy_timeout:
		// running the transaction again would only wait as long again
		// (config timeouts.lock), so the request is answered 503 now.
		// A stale snapshot, though, succeeds when the transaction runs
		// again at once.
		return storage.ErrUnavailable, e.Code() == sqlite3.SQLITE_BUSY_SNAPSHOT
	case sqlite3.SQLITE_CONSTRAINT:
		switch e.Code() {
		case sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY, sqlite3.SQLITE_CONSTRAINT_UNIQUE:
			return storage.ErrConflict, false
		}
	case sqlite3.SQLITE_IOERR, sqlite3.SQLITE_FULL, sqlite3.SQLITE_CANTOPEN,
		sqlite3.SQLITE_READONLY, sqlite3.SQLITE_NOMEM, sqlite3.SQLITE_PROTOCOL:
		return storage.ErrUnavailable, false
	}
	return nil, false
}
