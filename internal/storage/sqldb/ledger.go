package sqldb

import (
	"context"
	"database/sql"
	"errors"

	"github.com/phivault/phivault/internal/storage"
)

var _ storage.LedgerReader = (*Store)(nil)

// indexScanBatch is how many index rows ScanIndex reads per query: a
// resource has about ten, so a batch holds a few hundred resources.
const indexScanBatch = 4096

// ScanCurrent implements storage.LedgerReader.
func (s *Store) ScanCurrent(ctx context.Context, fn func(storage.Current) error) error {
	const q = `SELECT type, id, version, owner, deleted, last_updated FROM resources
WHERE (type, id) > (?, ?) ORDER BY type, id LIMIT ?`
	var afterType, afterID string
	for {
		rows, err := s.r().query(ctx, q, afterType, afterID, scanBatch)
		if err != nil {
			return s.translate("scan current", err)
		}
		var batch []storage.Current
		for rows.Next() {
			var c storage.Current
			var lu int64
			if err := rows.Scan(&c.Type, &c.ID, &c.Version, &c.Owner, &c.Deleted, &lu); err != nil {
				rows.Close()
				return s.translate("scan current", err)
			}
			c.LastUpdated = fromMicros(lu)
			batch = append(batch, c)
		}
		if err := errors.Join(rows.Err(), rows.Close()); err != nil {
			return s.translate("scan current", err)
		}
		for _, c := range batch {
			if err := fn(c); err != nil {
				return err
			}
		}
		if len(batch) < scanBatch {
			return nil
		}
		last := batch[len(batch)-1]
		afterType, afterID = last.Type, last.ID
	}
}

// indexRow is one scanned row of search_index.
type indexRow struct {
	typ, id string
	row     storage.IndexRow
}

// ScanIndex implements storage.LedgerReader. SQLite reads the table in
// rowid order, about four times faster than through the (type, id)
// index, which costs a table lookup per row.
func (s *Store) ScanIndex(ctx context.Context, fn func(typ, id string, rows []storage.IndexRow) error) error {
	if s.d.Name == "sqlite" {
		return s.scanIndexByRowid(ctx, fn)
	}
	return s.scanIndexOrdered(ctx, fn)
}

// scanIndexByRowid passes runs of consecutive rows of one resource, in
// rowid order.
func (s *Store) scanIndexByRowid(ctx context.Context, fn func(typ, id string, rows []storage.IndexRow) error) error {
	const q = `SELECT rowid, type, id, param, h, lo, hi FROM search_index WHERE rowid > ? ORDER BY rowid LIMIT ?`
	var after int64
	var run []storage.IndexRow
	var runType, runID string
	flush := func() error {
		if len(run) == 0 {
			return nil
		}
		err := fn(runType, runID, run)
		run = nil
		return err
	}
	for {
		rows, err := s.r().query(ctx, q, after, indexScanBatch)
		if err != nil {
			return s.translate("scan index", err)
		}
		batch, last, err := scanIndexRowsWithID(rows)
		if err != nil {
			return s.translate("scan index", err)
		}
		for _, r := range batch {
			if r.typ != runType || r.id != runID {
				if err := flush(); err != nil {
					return err
				}
				runType, runID = r.typ, r.id
			}
			run = append(run, r.row)
		}
		if len(batch) < indexScanBatch {
			return flush()
		}
		after = last
	}
}

// scanIndexOrdered passes each resource's rows in one run, in (type, id)
// order. A batch that ends inside a resource's rows is cut before that
// resource, which the next batch reads whole; a resource with more rows
// than a batch is read alone.
func (s *Store) scanIndexOrdered(ctx context.Context, fn func(typ, id string, rows []storage.IndexRow) error) error {
	const q = `SELECT type, id, param, h, lo, hi FROM search_index
WHERE (type, id) > (?, ?) ORDER BY type, id LIMIT ?`
	const qOne = `SELECT type, id, param, h, lo, hi FROM search_index WHERE type = ? AND id = ?`
	var afterType, afterID string
	for {
		rows, err := s.r().query(ctx, q, afterType, afterID, indexScanBatch)
		if err != nil {
			return s.translate("scan index", err)
		}
		batch, err := scanIndexRows(rows)
		if err != nil {
			return s.translate("scan index", err)
		}
		full := len(batch) == indexScanBatch
		if full {
			// The last resource may continue past the batch.
			last := batch[len(batch)-1]
			cut := len(batch)
			for cut > 0 && batch[cut-1].typ == last.typ && batch[cut-1].id == last.id {
				cut--
			}
			if cut == 0 {
				rows, err := s.r().query(ctx, qOne, last.typ, last.id)
				if err != nil {
					return s.translate("scan index", err)
				}
				if batch, err = scanIndexRows(rows); err != nil {
					return s.translate("scan index", err)
				}
				cut = len(batch)
			}
			batch = batch[:cut]
		}
		for i := 0; i < len(batch); {
			j := i
			var group []storage.IndexRow
			for j < len(batch) && batch[j].typ == batch[i].typ && batch[j].id == batch[i].id {
				group = append(group, batch[j].row)
				j++
			}
			if err := fn(batch[i].typ, batch[i].id, group); err != nil {
				return err
			}
			i = j
		}
		if !full {
			return nil
		}
		last := batch[len(batch)-1]
		afterType, afterID = last.typ, last.id
	}
}

// scanIndexRowsWithID reads and closes rows of (rowid, type, id,
// param, h, lo, hi) and returns the last rowid.
func scanIndexRowsWithID(rows *sql.Rows) ([]indexRow, int64, error) {
	defer rows.Close()
	out := make([]indexRow, 0, indexScanBatch)
	var typ, id, param, h sql.RawBytes
	var lo, hi sql.NullInt64
	var r indexRow
	var rowid int64
	params := map[string]string{}
	arena := make([]byte, 0, indexScanBatch*16) // the batch's hashes: one allocation
	for rows.Next() {
		if err := rows.Scan(&rowid, &typ, &id, &param, &h, &lo, &hi); err != nil {
			return nil, 0, err
		}
		r.fill(typ, id, param, nil, lo, hi, params)
		if h != nil {
			if cap(arena)-len(arena) < len(h) {
				arena = make([]byte, 0, max(len(h), indexScanBatch*16))
			}
			arena = append(arena, h...)
			r.row.Hash = arena[len(arena)-len(h) : len(arena) : len(arena)]
			if !lo.Valid && !hi.Valid {
				r.row.IsDate, r.row.Lo, r.row.Hi = false, 0, 0
			}
		}
		out = append(out, r)
	}
	return out, rowid, rows.Err()
}

// fill sets r from scanned columns, making strings only when they change.
func (r *indexRow) fill(typ, id, param, h sql.RawBytes, lo, hi sql.NullInt64, params map[string]string) {
	if string(typ) != r.typ {
		r.typ = string(typ)
	}
	if string(id) != r.id {
		r.id = string(id)
	}
	p, ok := params[string(param)]
	if !ok {
		p = string(param)
		params[p] = p
	}
	r.row = storage.IndexRow{Param: p}
	if h != nil {
		r.row.Hash = append([]byte(nil), h...)
	}
	// A row with both a hash and a range (or neither) was not written
	// by Put: it is read as a date row, whose commitment then differs
	// from the one of the row Put wrote.
	if h == nil || lo.Valid || hi.Valid {
		r.row.IsDate, r.row.Lo, r.row.Hi = true, lo.Int64, hi.Int64
	}
}

// scanIndexRows reads and closes rows of (type, id, param, h, lo, hi).
// Type, id and param repeat from row to row: they are scanned as raw
// bytes and a string is made only when one changes (a full scan reads
// millions of rows).
func scanIndexRows(rows *sql.Rows) ([]indexRow, error) {
	defer rows.Close()
	out := make([]indexRow, 0, indexScanBatch)
	var typ, id, param, h sql.RawBytes
	var lo, hi sql.NullInt64
	var r indexRow
	params := map[string]string{}
	for rows.Next() {
		if err := rows.Scan(&typ, &id, &param, &h, &lo, &hi); err != nil {
			return nil, err
		}
		r.fill(typ, id, param, h, lo, hi, params)
		out = append(out, r)
	}
	return out, rows.Err()
}

// Resource implements storage.LedgerReader: three queries in one
// read-only transaction (a snapshot: REPEATABLE READ on PostgreSQL, a
// WAL read transaction on SQLite).
func (s *Store) Resource(ctx context.Context, typ, id string) (storage.ResourceState, error) {
	opts := &sql.TxOptions{ReadOnly: true}
	if s.d.Dollar {
		opts.Isolation = sql.LevelRepeatableRead
	}
	tx, err := s.reader.BeginTx(ctx, opts)
	if err != nil {
		return storage.ResourceState{}, s.translate("resource", err)
	}
	defer tx.Rollback()
	var st storage.ResourceState
	q := func(query string, args ...any) (*sql.Rows, error) {
		return tx.QueryContext(ctx, rebind(s.d.Dollar, query), args...)
	}
	rows, err := q(`SELECT type, id, version, owner, deleted, last_updated, ciphertext FROM resource_versions
WHERE type = ? AND id = ? ORDER BY version`, typ, id)
	if err != nil {
		return st, s.translate("resource", err)
	}
	if st.Versions, err = scanVersions(rows); err != nil {
		return st, s.translate("resource", err)
	}
	rows, err = q(`SELECT type, id, version, owner, deleted, last_updated FROM resources WHERE type = ? AND id = ?`, typ, id)
	if err != nil {
		return st, s.translate("resource", err)
	}
	for rows.Next() {
		var c storage.Current
		var lu int64
		if err := rows.Scan(&c.Type, &c.ID, &c.Version, &c.Owner, &c.Deleted, &lu); err != nil {
			rows.Close()
			return st, s.translate("resource", err)
		}
		c.LastUpdated = fromMicros(lu)
		st.Current = &c
	}
	if err := errors.Join(rows.Err(), rows.Close()); err != nil {
		return st, s.translate("resource", err)
	}
	rows, err = q(`SELECT type, id, param, h, lo, hi FROM search_index WHERE type = ? AND id = ?`, typ, id)
	if err != nil {
		return st, s.translate("resource", err)
	}
	ix, err := scanIndexRows(rows)
	if err != nil {
		return st, s.translate("resource", err)
	}
	for _, r := range ix {
		st.Index = append(st.Index, r.row)
	}
	return st, s.translate("resource", tx.Commit())
}
