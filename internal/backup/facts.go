package backup

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
)

// queryRow runs a query that returns one row into dest; no row is
// sql.ErrNoRows (or pgx.ErrNoRows, mapped by the caller).
type queryRow func(ctx context.Context, q string, dest ...any) error

// facts reads what the manifest says about a snapshot, from inside the
// snapshot (SQLite: the copy; PostgreSQL: the snapshot's transaction),
// so the manifest describes exactly what was copied. The SQL is the
// same for both engines.
func facts(ctx context.Context, q queryRow, noRows func(error) bool) (Manifest, error) {
	var m Manifest
	var schema sql.NullInt64
	if err := q(ctx, `SELECT MAX(version) FROM schema_migrations`, &schema); err != nil {
		return m, fmt.Errorf("backup: reading the schema version: %w", err)
	}
	if !schema.Valid {
		return m, errors.New("backup: the database has no schema (not a phivault database?)")
	}
	m.Schema = int(schema.Int64)
	var size int64
	var root, note []byte
	err := q(ctx, `SELECT size, root, note FROM tlog_checkpoints ORDER BY size DESC LIMIT 1`, &size, &root, &note)
	switch {
	case err == nil:
		m.Checkpoint = Checkpoint{Size: size, Root: root, Note: string(note)}
	case noRows(err):
	default:
		return m, fmt.Errorf("backup: reading the audit log's checkpoint: %w", err)
	}
	// Key ids are few (one per KEK key ever primary); a large number
	// means something else, and a manifest stays small.
	const maxKEKIDs = 1024
	ids := make([]uint32, 0, 4)
	for i := 0; ; i++ {
		var id sql.NullInt64
		err := q(ctx, `SELECT MIN(kek_id) FROM keys WHERE wrapped IS NOT NULL AND kek_id > `+fmt.Sprint(lastID(ids)), &id)
		if err != nil {
			return m, fmt.Errorf("backup: reading key ids: %w", err)
		}
		if !id.Valid {
			break
		}
		if i == maxKEKIDs || id.Int64 < 0 || id.Int64 > 1<<32-1 {
			return m, errors.New("backup: the keys table holds implausible KEK ids")
		}
		ids = append(ids, uint32(id.Int64))
	}
	m.KEKIDs = ids
	counts := []struct {
		dst *int64
		sql string
	}{
		{&m.Counts.Resources, `SELECT COUNT(*) FROM resources WHERE NOT deleted`},
		{&m.Counts.Patients, `SELECT COUNT(*) FROM resources WHERE NOT deleted AND type = 'Patient'`},
		{&m.Counts.AuditPending, `SELECT COUNT(*) FROM audit_events WHERE leaf_index IS NULL`},
	}
	for _, c := range counts {
		if err := q(ctx, c.sql, c.dst); err != nil {
			return m, fmt.Errorf("backup: counting: %w", err)
		}
	}
	m.Counts.AuditEvents = m.Checkpoint.Size
	return m, nil
}

// lastID is the largest id found so far (-1 before the first): the key
// ids are walked in order with MIN so that both engines run one plain
// query shape.
func lastID(ids []uint32) int64 {
	if len(ids) == 0 {
		return -1
	}
	return int64(slices.Max(ids))
}

// MissingKEKIDs returns the ids of want that have is lacks, in order.
func MissingKEKIDs(want, have []uint32) []uint32 {
	var out []uint32
	for _, id := range want {
		if !slices.Contains(have, id) {
			out = append(out, id)
		}
	}
	return out
}
