package sqldb

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/phivault/phivault/internal/storage"
)

// integratorLock is the Lock name Integrate takes: exactly one log
// integrator at a time across every process sharing the database.
// It is a transaction-scoped advisory lock on PostgreSQL, so a crashed
// integrator releases it with its connection; READ COMMITTED gives the
// statements after the lock a snapshot that includes the previous
// integrator's commit.
const integratorLock = "tlog-integrator"

// tlogChunk bounds the values of one IN list: 400 parameters stay far
// below SQLite's and PostgreSQL's limits.
const tlogChunk = 400

var (
	_ storage.LogStore = (*TLog)(nil)
	_ storage.LogTx    = (*logTx)(nil)
)

// TLog implements storage.LogStore on the same database.
type TLog struct{ s *Store }

// TLog returns the transparency log store.
func (s *Store) TLog() *TLog { return &TLog{s: s} }

// Integrate implements storage.LogStore.
func (l *TLog) Integrate(ctx context.Context, fn func(storage.LogTx) error) error {
	return l.s.Update(ctx, func(t storage.Tx) error {
		tt, ok := t.(*tx)
		if !ok {
			return errors.New("integrate: not a sqldb transaction")
		}
		if err := tt.Lock(ctx, integratorLock); err != nil {
			return err
		}
		return fn(&logTx{t: tt})
	})
}

type logTx struct{ t *tx }

func (x *logTx) Size(ctx context.Context) (int64, error) {
	return logSize(ctx, x.t)
}

func (x *logTx) Latest(ctx context.Context) (storage.Checkpoint, error) {
	return latestCheckpoint(ctx, x.t)
}

func (x *logTx) Pending(ctx context.Context, limit int) ([]storage.LogLeaf, error) {
	const q = `SELECT seq, recorded_at, body, leaf_hash FROM audit_events WHERE leaf_index IS NULL ORDER BY seq LIMIT ?`
	return scanLogLeaves(ctx, x.t, "pending audit", false, q, limit)
}

func (x *logTx) Legacy(ctx context.Context, from int64, limit int) ([]storage.LogLeaf, error) {
	const q = `SELECT seq, recorded_at, body, leaf_hash, leaf_index FROM audit_events
WHERE leaf_index >= ? ORDER BY leaf_index LIMIT ?`
	return scanLogLeaves(ctx, x.t, "legacy audit", true, q, from, limit)
}

// scanLogLeaves runs q and scans (seq, recorded_at, body, leaf_hash)
// and, if indexed, leaf_index.
func scanLogLeaves(ctx context.Context, r runner, op string, indexed bool, q string, args ...any) ([]storage.LogLeaf, error) {
	rows, err := r.query(ctx, q, args...)
	if err != nil {
		return nil, r.store().translate(op, err)
	}
	defer rows.Close()
	var out []storage.LogLeaf
	for rows.Next() {
		l := storage.LogLeaf{Index: -1}
		var at int64
		dst := []any{&l.Seq, &at, &l.Body, &l.LeafHash}
		if indexed {
			dst = append(dst, &l.Index)
		}
		if err := rows.Scan(dst...); err != nil {
			return nil, r.store().translate(op, err)
		}
		l.Time = fromMicros(at)
		out = append(out, l)
	}
	return out, r.store().translate(op, rows.Err())
}

func (x *logTx) Bundle(ctx context.Context, n int64) (storage.Bundle, error) {
	var out []storage.Bundle
	err := scanBundles(ctx, x.t, n, n+1, func(b storage.Bundle) error { out = append(out, b); return nil })
	if err != nil {
		return storage.Bundle{}, err
	}
	if len(out) == 0 {
		return storage.Bundle{}, wrapOp("read bundle", storage.ErrNotFound)
	}
	return out[0], nil
}

func (x *logTx) ReadTiles(ctx context.Context, refs []storage.TileRef) ([]storage.Tile, error) {
	return readTiles(ctx, x.t, refs)
}

// PutBundle replaces the row of b.N only with a wider bundle: the
// last, partial bundle grows with each integration.
func (x *logTx) PutBundle(ctx context.Context, b storage.Bundle) error {
	const q = `INSERT INTO tlog_bundles (n, width, body) VALUES (?, ?, ?)
ON CONFLICT (n) DO UPDATE SET width = excluded.width, body = excluded.body WHERE tlog_bundles.width < excluded.width`
	res, err := x.t.exec(ctx, q, b.N, b.Width, b.Sealed)
	if err != nil {
		return x.t.s.translate("put bundle", err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return x.t.s.translate("put bundle", err)
	} else if n != 1 {
		return fmt.Errorf("put bundle %d: not wider than the stored one: %w", b.N, storage.ErrConflict)
	}
	return nil
}

func (x *logTx) PutTiles(ctx context.Context, tiles []storage.Tile) error {
	const q = `INSERT INTO tlog_tiles (level, n, width, data) VALUES (?, ?, ?, ?)
ON CONFLICT (level, n) DO UPDATE SET width = excluded.width, data = excluded.data WHERE tlog_tiles.width < excluded.width`
	for _, t := range tiles {
		res, err := x.t.exec(ctx, q, t.Level, t.N, t.Width, t.Data)
		if err != nil {
			return x.t.s.translate("put tiles", err)
		}
		if n, err := res.RowsAffected(); err != nil {
			return x.t.s.translate("put tiles", err)
		} else if n != 1 {
			return fmt.Errorf("put tile %d/%d: not wider than the stored one: %w", t.Level, t.N, storage.ErrConflict)
		}
	}
	return nil
}

// Remove deletes with one DELETE per run of consecutive sequence
// numbers (usually one per batch), each guarded by the record's state
// and checked for the number of rows it removed.
func (x *logTx) Remove(ctx context.Context, seqs []int64, legacy bool) error {
	q := `DELETE FROM audit_events WHERE seq >= ? AND seq <= ? AND leaf_index IS NULL`
	if legacy {
		q = `DELETE FROM audit_events WHERE seq >= ? AND seq <= ? AND leaf_index IS NOT NULL`
	}
	for i := 0; i < len(seqs); {
		j := i + 1
		for j < len(seqs) && seqs[j] == seqs[j-1]+1 {
			j++
		}
		res, err := x.t.exec(ctx, q, seqs[i], seqs[j-1])
		if err != nil {
			return x.t.s.translate("remove integrated records", err)
		}
		n, err := res.RowsAffected()
		if err != nil {
			return x.t.s.translate("remove integrated records", err)
		}
		if n != int64(j-i) {
			return fmt.Errorf("remove integrated records: %d of records %d..%d removed, want %d: %w", n, seqs[i], seqs[j-1], j-i, storage.ErrConflict)
		}
		i = j
	}
	return nil
}

func (x *logTx) DropLegacyHashes(ctx context.Context) error {
	if _, err := x.t.exec(ctx, `DELETE FROM tlog_hashes`); err != nil {
		return x.t.s.translate("drop legacy tree hashes", err)
	}
	return nil
}

func (x *logTx) AnchorState(ctx context.Context) (string, error) {
	rows, err := x.t.query(ctx, `SELECT state FROM tlog_anchor WHERE id = 1`)
	if err != nil {
		return "", x.t.s.translate("read anchor state", err)
	}
	defer rows.Close()
	state := storage.AnchorKept
	if rows.Next() {
		if err := rows.Scan(&state); err != nil {
			return "", x.t.s.translate("read anchor state", err)
		}
	}
	if err := rows.Err(); err != nil {
		return "", x.t.s.translate("read anchor state", err)
	}
	switch state {
	case storage.AnchorNew, storage.AnchorUpgrade:
		return state, nil
	}
	return storage.AnchorKept, nil
}

func (x *logTx) SetAnchorState(ctx context.Context, state string) error {
	switch state {
	case storage.AnchorNew, storage.AnchorUpgrade, storage.AnchorKept:
	default:
		return fmt.Errorf("set anchor state: unknown state %q", state)
	}
	const q = `INSERT INTO tlog_anchor (id, state) VALUES (1, ?) ON CONFLICT (id) DO UPDATE SET state = excluded.state`
	if _, err := x.t.exec(ctx, q, state); err != nil {
		return x.t.s.translate("set anchor state", err)
	}
	return nil
}

func (x *logTx) PutCheckpoint(ctx context.Context, c storage.Checkpoint) error {
	const q = `INSERT INTO tlog_checkpoints (size, root, note, created_at) VALUES (?, ?, ?, ?)`
	if _, err := x.t.exec(ctx, q, c.Size, c.Root, c.Note, c.Created.UnixMicro()); err != nil {
		return x.t.s.translate("put checkpoint", err)
	}
	return nil
}

// LatestCheckpoint implements storage.LogReader.
func (l *TLog) LatestCheckpoint(ctx context.Context) (storage.Checkpoint, error) {
	return latestCheckpoint(ctx, l.s.r())
}

// CheckpointAt implements storage.LogReader.
func (l *TLog) CheckpointAt(ctx context.Context, size int64) (storage.Checkpoint, error) {
	const q = `SELECT size, root, note, created_at FROM tlog_checkpoints WHERE size = ?`
	return oneCheckpoint(ctx, l.s.r(), "checkpoint at", q, size)
}

// ScanCheckpoints implements storage.LogReader.
func (l *TLog) ScanCheckpoints(ctx context.Context, fn func(storage.Checkpoint) error) error {
	const q = `SELECT size, root, note, created_at FROM tlog_checkpoints WHERE size > ? ORDER BY size LIMIT ?`
	after := int64(-1)
	for {
		rows, err := l.s.r().query(ctx, q, after, scanBatch)
		if err != nil {
			return l.s.translate("scan checkpoints", err)
		}
		cs, err := scanCheckpoints(rows)
		if err != nil {
			return l.s.translate("scan checkpoints", err)
		}
		for _, c := range cs {
			if err := fn(c); err != nil {
				return err
			}
		}
		if len(cs) < scanBatch {
			return nil
		}
		after = cs[len(cs)-1].Size
	}
}

// ReadTiles implements storage.LogReader.
func (l *TLog) ReadTiles(ctx context.Context, refs []storage.TileRef) ([]storage.Tile, error) {
	return readTiles(ctx, l.s.r(), refs)
}

// tileScanBatch is the tiles per query of ScanTiles (8 KiB each).
const tileScanBatch = 256

// ScanTiles implements storage.LogReader.
func (l *TLog) ScanTiles(ctx context.Context, level int, from, to int64, fn func(storage.Tile) error) error {
	const q = `SELECT n, width, data FROM tlog_tiles WHERE level = ? AND n >= ? AND n < ? ORDER BY n LIMIT ?`
	for from < to {
		rows, err := l.s.r().query(ctx, q, level, from, to, tileScanBatch)
		if err != nil {
			return l.s.translate("scan tiles", err)
		}
		var batch []storage.Tile
		for rows.Next() {
			t := storage.Tile{Level: level}
			if err := rows.Scan(&t.N, &t.Width, &t.Data); err != nil {
				rows.Close()
				return l.s.translate("scan tiles", err)
			}
			batch = append(batch, t)
		}
		if err := errors.Join(rows.Err(), rows.Close()); err != nil {
			return l.s.translate("scan tiles", err)
		}
		for _, t := range batch {
			if err := fn(t); err != nil {
				return err
			}
		}
		if len(batch) < tileScanBatch {
			return nil
		}
		from = batch[len(batch)-1].N + 1
	}
	return nil
}

// ScanBundles implements storage.LogReader.
func (l *TLog) ScanBundles(ctx context.Context, from, to int64, fn func(storage.Bundle) error) error {
	return scanBundles(ctx, l.s.r(), from, to, fn)
}

// bundleScanBatch is the bundles per query of ScanBundles: a full
// bundle is about 70 KiB sealed, so a page is a few MiB.
const bundleScanBatch = 32

func scanBundles(ctx context.Context, r runner, from, to int64, fn func(storage.Bundle) error) error {
	const q = `SELECT n, width, body FROM tlog_bundles WHERE n >= ? AND n < ? ORDER BY n LIMIT ?`
	for from < to {
		rows, err := r.query(ctx, q, from, to, bundleScanBatch)
		if err != nil {
			return r.store().translate("scan bundles", err)
		}
		var batch []storage.Bundle
		for rows.Next() {
			var b storage.Bundle
			if err := rows.Scan(&b.N, &b.Width, &b.Sealed); err != nil {
				rows.Close()
				return r.store().translate("scan bundles", err)
			}
			batch = append(batch, b)
		}
		if err := errors.Join(rows.Err(), rows.Close()); err != nil {
			return r.store().translate("scan bundles", err)
		}
		for _, b := range batch {
			if err := fn(b); err != nil {
				return err
			}
		}
		if len(batch) < bundleScanBatch {
			return nil
		}
		from = batch[len(batch)-1].N + 1
	}
	return nil
}

// ScanPending implements storage.LogReader.
func (l *TLog) ScanPending(ctx context.Context, fn func(storage.LogLeaf) error) error {
	const q = `SELECT seq, recorded_at, body, leaf_hash FROM audit_events WHERE leaf_index IS NULL AND seq > ? ORDER BY seq LIMIT ?`
	after := int64(-1 << 62)
	for {
		batch, err := scanLogLeaves(ctx, l.s.r(), "scan pending", false, q, after, leafScanBatch)
		if err != nil {
			return err
		}
		for _, lf := range batch {
			if err := fn(lf); err != nil {
				return err
			}
		}
		if len(batch) < leafScanBatch {
			return nil
		}
		after = batch[len(batch)-1].Seq
	}
}

// leafScanBatch is the rows per query of ScanPending.
const leafScanBatch = 1024

// CountPending implements storage.LogReader.
func (l *TLog) CountPending(ctx context.Context) (int64, error) {
	return count(ctx, l.s.r(), "count pending", `SELECT COUNT(*) FROM audit_events WHERE leaf_index IS NULL`)
}

// CountLegacy implements storage.LogReader.
func (l *TLog) CountLegacy(ctx context.Context) (int64, error) {
	return count(ctx, l.s.r(), "count legacy", `SELECT COUNT(*) FROM audit_events WHERE leaf_index IS NOT NULL`)
}

// FirstLegacy implements storage.LogReader.
func (l *TLog) FirstLegacy(ctx context.Context) (storage.LogLeaf, error) {
	const q = `SELECT seq, recorded_at, body, leaf_hash, leaf_index FROM audit_events
WHERE leaf_index IS NOT NULL ORDER BY leaf_index LIMIT 1`
	got, err := scanLogLeaves(ctx, l.s.r(), "first legacy audit", true, q)
	if err != nil {
		return storage.LogLeaf{}, err
	}
	if len(got) == 0 {
		return storage.LogLeaf{}, wrapOp("first legacy audit", storage.ErrNotFound)
	}
	return got[0], nil
}

// StoredSize implements storage.LogReader.
func (l *TLog) StoredSize(ctx context.Context) (int64, error) {
	return logSize(ctx, l.s.r())
}

func count(ctx context.Context, r runner, op, q string) (int64, error) {
	rows, err := r.query(ctx, q)
	if err != nil {
		return 0, r.store().translate(op, err)
	}
	defer rows.Close()
	var n int64
	if rows.Next() {
		if err := rows.Scan(&n); err != nil {
			return 0, r.store().translate(op, err)
		}
	}
	return n, r.store().translate(op, rows.Err())
}

func logSize(ctx context.Context, r runner) (int64, error) {
	const q = `SELECT COALESCE(MAX(n * 256 + width), 0) FROM tlog_bundles`
	rows, err := r.query(ctx, q)
	if err != nil {
		return 0, r.store().translate("log size", err)
	}
	defer rows.Close()
	var n int64
	if rows.Next() {
		if err := rows.Scan(&n); err != nil {
			return 0, r.store().translate("log size", err)
		}
	}
	return n, r.store().translate("log size", rows.Err())
}

func latestCheckpoint(ctx context.Context, r runner) (storage.Checkpoint, error) {
	const q = `SELECT size, root, note, created_at FROM tlog_checkpoints ORDER BY size DESC LIMIT 1`
	return oneCheckpoint(ctx, r, "latest checkpoint", q)
}

func oneCheckpoint(ctx context.Context, r runner, op, q string, args ...any) (storage.Checkpoint, error) {
	rows, err := r.query(ctx, q, args...)
	if err != nil {
		return storage.Checkpoint{}, r.store().translate(op, err)
	}
	cs, err := scanCheckpoints(rows)
	if err != nil {
		return storage.Checkpoint{}, r.store().translate(op, err)
	}
	if len(cs) == 0 {
		return storage.Checkpoint{}, wrapOp(op, storage.ErrNotFound)
	}
	return cs[0], nil
}

func scanCheckpoints(rows interface {
	Next() bool
	Scan(...any) error
	Err() error
	Close() error
}) ([]storage.Checkpoint, error) {
	defer rows.Close()
	var out []storage.Checkpoint
	for rows.Next() {
		var c storage.Checkpoint
		var at int64
		if err := rows.Scan(&c.Size, &c.Root, &c.Note, &at); err != nil {
			return nil, err
		}
		c.Created = fromMicros(at)
		out = append(out, c)
	}
	return out, rows.Err()
}

// readTiles reads refs (in any order) with one query per level and
// returns the tiles in the order of refs.
func readTiles(ctx context.Context, r runner, refs []storage.TileRef) ([]storage.Tile, error) {
	out := make([]storage.Tile, len(refs))
	found := make([]bool, len(refs))
	byLevel := make(map[int][]int64)
	for _, ref := range refs {
		byLevel[ref.Level] = append(byLevel[ref.Level], ref.N)
	}
	for level, ns := range byLevel {
		for len(ns) > 0 {
			k := min(len(ns), tlogChunk)
			b := &builder{dollar: false}
			b.sql(`SELECT n, width, data FROM tlog_tiles WHERE level = `)
			b.arg(level)
			b.sql(` AND n IN `)
			list(b, ns[:k], func(v int64) any { return v })
			rows, err := queryUncached(ctx, r, b.String(), b.args...)
			if err != nil {
				return nil, r.store().translate("read tiles", err)
			}
			for rows.Next() {
				t := storage.Tile{Level: level}
				if err := rows.Scan(&t.N, &t.Width, &t.Data); err != nil {
					rows.Close()
					return nil, r.store().translate("read tiles", err)
				}
				for i, ref := range refs {
					if ref.Level == level && ref.N == t.N {
						out[i], found[i] = t, true
					}
				}
			}
			if err := errors.Join(rows.Err(), rows.Close()); err != nil {
				return nil, r.store().translate("read tiles", err)
			}
			ns = ns[k:]
		}
	}
	for i, ok := range found {
		if !ok {
			return nil, fmt.Errorf("read tiles: tile %d/%d: %w", refs[i].Level, refs[i].N, storage.ErrNotFound)
		}
	}
	return out, nil
}

// queryUncached runs q without the prepared-statement cache: IN lists
// of every length would each take a cache slot.
func queryUncached(ctx context.Context, r runner, q string, args ...any) (*sql.Rows, error) {
	q = rebind(r.store().d.Dollar, q)
	switch r := r.(type) {
	case *tx:
		return r.tx.QueryContext(r.stmtCtx(ctx), q, args...)
	case readRunner:
		return r.s.reader.QueryContext(ctx, q, args...)
	}
	return nil, errors.New("sqldb: unknown runner")
}
