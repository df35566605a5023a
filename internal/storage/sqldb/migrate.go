package sqldb

import (
	"context"
	"database/sql"
	"fmt"
	"io/fs"
	"slices"
	"strconv"
	"strings"
	"time"
)

// migrationLock serialises Migrate across processes sharing a database.
const migrationLock = "schema-migrations"

// Migration is one embedded schema step.
type Migration struct {
	Version int    // from the NNNN_ file name prefix
	Name    string // the file name
	SQL     string
}

// Migrations lists the dialect's migrations in version order. File names
// must look like 0001_init.sql; versions must be unique and start at 1.
// Numbers may skip (work merged from parallel branches reserves its
// numbers ahead), so Migrate applies every version not yet recorded
// rather than everything above the highest one.
func Migrations(d Dialect) ([]Migration, error) {
	if d.Migrations == nil {
		return nil, fmt.Errorf("%s migrations: no migration files", d.Name)
	}
	names, err := fs.Glob(d.Migrations, "*.sql")
	if err != nil {
		return nil, fmt.Errorf("%s migrations: %w", d.Name, err)
	}
	var ms []Migration
	for _, name := range names {
		prefix, _, ok := strings.Cut(name, "_")
		v, err := strconv.Atoi(prefix)
		if !ok || err != nil || v <= 0 {
			return nil, fmt.Errorf("%s migrations: file %s is not named NNNN_description.sql", d.Name, name)
		}
		body, err := fs.ReadFile(d.Migrations, name)
		if err != nil {
			return nil, fmt.Errorf("%s migrations: %w", d.Name, err)
		}
		ms = append(ms, Migration{Version: v, Name: name, SQL: string(body)})
	}
	slices.SortFunc(ms, func(a, b Migration) int { return a.Version - b.Version })
	if len(ms) == 0 {
		return nil, fmt.Errorf("%s migrations: no migration files", d.Name)
	}
	if ms[0].Version != 1 {
		return nil, fmt.Errorf("%s migrations: expected version 1 first, found %s", d.Name, ms[0].Name)
	}
	for i := 1; i < len(ms); i++ {
		if ms[i].Version == ms[i-1].Version {
			return nil, fmt.Errorf("%s migrations: %s and %s share a version", d.Name, ms[i-1].Name, ms[i].Name)
		}
	}
	return ms, nil
}

// Migrate brings the schema of db to head in one transaction, recording
// each applied step in schema_migrations. It is forward-only and
// idempotent; concurrent callers (several processes starting at once)
// serialise on the dialect's lock. A database whose schema is newer than
// this binary knows is refused, so an old binary never writes to it.
func Migrate(ctx context.Context, db *sql.DB, d Dialect) error {
	ms, err := Migrations(d)
	if err != nil {
		return err
	}
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("migrate %s: begin: %w", d.Name, err)
	}
	defer tx.Rollback()
	if d.LockSQL != "" {
		if _, err := tx.ExecContext(ctx, rebind(d.Dollar, d.LockSQL), lockKey(migrationLock)); err != nil {
			return fmt.Errorf("migrate %s: lock: %w", d.Name, err)
		}
	}
	const create = `CREATE TABLE IF NOT EXISTS schema_migrations (
	version BIGINT PRIMARY KEY,
	name TEXT NOT NULL,
	applied_at BIGINT NOT NULL
)`
	if _, err := tx.ExecContext(ctx, create); err != nil {
		return fmt.Errorf("migrate %s: creating schema_migrations: %w", d.Name, err)
	}
	applied := make(map[int]bool)
	rows, err := tx.QueryContext(ctx, `SELECT version FROM schema_migrations`)
	if err != nil {
		return fmt.Errorf("migrate %s: reading versions: %w", d.Name, err)
	}
	for rows.Next() {
		var v int
		if err := rows.Scan(&v); err != nil {
			rows.Close()
			return fmt.Errorf("migrate %s: reading versions: %w", d.Name, err)
		}
		applied[v] = true
	}
	if err := rows.Err(); err != nil {
		rows.Close()
		return fmt.Errorf("migrate %s: reading versions: %w", d.Name, err)
	}
	rows.Close()
	known := make(map[int]bool, len(ms))
	for _, m := range ms {
		known[m.Version] = true
	}
	for v := range applied {
		if !known[v] {
			return fmt.Errorf("migrate %s: database schema version %d is unknown to this binary (newest %d)", d.Name, v, ms[len(ms)-1].Version)
		}
	}
	for _, m := range ms {
		if applied[m.Version] {
			continue
		}
		if _, err := tx.ExecContext(ctx, m.SQL); err != nil {
			return fmt.Errorf("migrate %s: applying %s: %w", d.Name, m.Name, err)
		}
		ins := rebind(d.Dollar, `INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)`)
		if _, err := tx.ExecContext(ctx, ins, m.Version, m.Name, time.Now().UnixMicro()); err != nil {
			return fmt.Errorf("migrate %s: recording %s: %w", d.Name, m.Name, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("migrate %s: commit: %w", d.Name, err)
	}
	return nil
}

// SchemaVersion returns the highest applied migration (0 for an empty
// database).
func SchemaVersion(ctx context.Context, db *sql.DB) (int, error) {
	var v int
	err := db.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&v)
	if err != nil {
		return 0, fmt.Errorf("schema version: %w", err)
	}
	return v, nil
}
