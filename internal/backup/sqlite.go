package backup

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"time"

	_ "modernc.org/sqlite" // the "sqlite" database/sql driver

	"github.com/phivault/phivault/internal/storage/sqlite"
)

// sqliteEntry is the SQLite snapshot's name in the archive.
const sqliteEntry = "db/phivault.db"

// SQLiteSource snapshots a SQLite database while a server may be using
// it: VACUUM INTO, on a read-only connection of its own, writes a
// consistent copy of one read transaction (WAL readers never block the
// writer). The copy is a temporary file (mode 0600) beside the database,
// in the data directory, removed once it is in the archive; it never
// leaves the directory unencrypted.
type SQLiteSource struct {
	Path        string        // the database file
	BusyTimeout time.Duration // default sqlite.DefaultBusyTimeout
}

// Engine is EngineSQLite.
func (s SQLiteSource) Engine() string { return EngineSQLite }

func (s SQLiteSource) snapshot(ctx context.Context, a *archiveWriter, progress Progress) (Manifest, error) {
	abs, err := filepath.Abs(s.Path)
	if err != nil {
		return Manifest{}, fmt.Errorf("backup: %w", err)
	}
	if _, err := os.Stat(abs); err != nil {
		return Manifest{}, fmt.Errorf("backup: the SQLite database: %w", err)
	}
	busy := s.BusyTimeout
	if busy <= 0 {
		busy = sqlite.DefaultBusyTimeout
	}
	tmpDir, done, err := tempDir(filepath.Dir(abs), snapshotPrefix)
	if err != nil {
		return Manifest{}, fmt.Errorf("backup: creating the snapshot directory: %w", err)
	}
	defer done()
	tmpPath := filepath.Join(tmpDir, "snapshot.db")

	progress.phase("snapshot", 0, 1)
	// A connection of its own, not query_only (VACUUM INTO counts as a
	// write for that pragma): it only reads the database, in one read
	// transaction, and writes the copy.
	q := url.Values{}
	q.Add("_pragma", "busy_timeout("+strconv.FormatInt(busy.Milliseconds(), 10)+")")
	db, err := sql.Open("sqlite", (&url.URL{Scheme: "file", Path: abs, RawQuery: q.Encode()}).String())
	if err != nil {
		return Manifest{}, fmt.Errorf("backup: opening %s: %w", filepath.Base(abs), err)
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	if _, err := db.ExecContext(ctx, `VACUUM INTO ?`, tmpPath); err != nil {
		return Manifest{}, fmt.Errorf("backup: snapshotting %s (VACUUM INTO): %w", filepath.Base(abs), err)
	}
	db.Close()
	m, err := sqliteFacts(ctx, tmpPath)
	if err != nil {
		return Manifest{}, err
	}
	progress.phase("snapshot", 1, 1)
	if err := addFile(ctx, a, sqliteEntry, tmpPath, progress); err != nil {
		return Manifest{}, err
	}
	m.Engine = EngineSQLite
	return m, nil
}

// sqliteFacts reads the manifest's facts from a snapshot file.
func sqliteFacts(ctx context.Context, path string) (Manifest, error) {
	db, err := openSnapshot(path)
	if err != nil {
		return Manifest{}, err
	}
	defer db.Close()
	return facts(ctx, func(ctx context.Context, q string, dest ...any) error {
		return db.QueryRowContext(ctx, q).Scan(dest...)
	}, func(err error) bool { return errors.Is(err, sql.ErrNoRows) })
}

// openSnapshot opens a snapshot file read-only and immutable: nothing
// is written to it or beside it (no journal, no WAL).
func openSnapshot(path string) (*sql.DB, error) {
	u := url.URL{Scheme: "file", Path: path, RawQuery: "mode=ro&immutable=1&_pragma=query_only(1)"}
	db, err := sql.Open("sqlite", u.String())
	if err != nil {
		return nil, fmt.Errorf("backup: opening the snapshot: %w", err)
	}
	db.SetMaxOpenConns(1)
	return db, nil
}

// integrityCheck runs PRAGMA integrity_check on a snapshot file.
func integrityCheck(ctx context.Context, path string) error {
	db, err := openSnapshot(path)
	if err != nil {
		return err
	}
	defer db.Close()
	rows, err := db.QueryContext(ctx, `PRAGMA integrity_check`)
	if err != nil {
		return fmt.Errorf("backup: integrity check: %w", err)
	}
	defer rows.Close()
	var problems []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			return fmt.Errorf("backup: integrity check: %w", err)
		}
		if s != "ok" && len(problems) < 10 {
			problems = append(problems, s)
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("backup: integrity check: %w", err)
	}
	if len(problems) > 0 {
		return fmt.Errorf("%w: the SQLite snapshot fails PRAGMA integrity_check: %v", ErrCorrupt, problems)
	}
	return nil
}

// addFile archives the file at path as name.
func addFile(ctx context.Context, a *archiveWriter, name, path string, progress Progress) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	return a.add(name, info.Size(), progress.reader(ctx, "archive", info.Size(), f))
}
