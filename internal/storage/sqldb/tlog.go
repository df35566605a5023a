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

// tlogChunk bounds the rows of one multi-row statement: 200 rows of two
// parameters stay far below SQLite's and PostgreSQL's parameter limits.
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
	// The body is read only for legacy records without a leaf hash: the
	// integrator needs no decryption otherwise.
	const q = `SELECT seq, recorded_at, CASE WHEN leaf_hash IS NULL THEN body END, leaf_hash FROM audit_events WHERE leaf_index IS NULL ORDER BY seq LIMIT ?`
	rows, err := x.t.query(ctx, q, limit)
	if err != nil {
		return nil, x.t.s.translate("pending audit", err)
	}
	defer rows.Close()
	var out []storage.LogLeaf
	for rows.Next() {
		l := storage.LogLeaf{Index: -1}
		var at int64
		if err := rows.Scan(&l.Seq, &at, &l.Body, &l.LeafHash); err != nil {
			return nil, x.t.s.translate("pending audit", err)
		}
		l.Time = fromMicros(at)
		out = append(out, l)
	}
	return out, x.t.s.translate("pending audit", rows.Err())
}

func (x *logTx) ReadHashes(ctx context.Context, ids []int64) ([][]byte, error) {
	return readHashes(ctx, x.t, ids)
}

// Assign sets leaf indexes with one UPDATE per run of consecutive
// sequence numbers (usually one per batch), each guarded by
// "leaf_index IS NULL" and checked for the number of rows it changed.
func (x *logTx) Assign(ctx context.Context, first int64, seqs []int64) error {
	const q = `UPDATE audit_events SET leaf_index = seq + ? WHERE seq >= ? AND seq <= ? AND leaf_index IS NULL`
	for i := 0; i < len(seqs); {
		j := i + 1
		for j < len(seqs) && seqs[j] == seqs[j-1]+1 {
			j++
		}
		res, err := x.t.exec(ctx, q, first+int64(i)-seqs[i], seqs[i], seqs[j-1])
		if err != nil {
			return x.t.s.translate("assign leaf indexes", err)
		}
		n, err := res.RowsAffected()
		if err != nil {
			return x.t.s.translate("assign leaf indexes", err)
		}
		if n != int64(j-i) {
			return fmt.Errorf("assign leaf indexes: %d of records %d..%d changed, want %d: %w", n, seqs[i], seqs[j-1], j-i, storage.ErrConflict)
		}
		i = j
	}
	return nil
}

func (x *logTx) PutHashes(ctx context.Context, first int64, hashes [][]byte) error {
	for len(hashes) > 0 {
		n := min(len(hashes), tlogChunk)
		q := multiRow(`INSERT INTO tlog_hashes (id, hash) VALUES `, 2, n)
		args := make([]any, 0, 2*n)
		for i, h := range hashes[:n] {
			args = append(args, first+int64(i), h)
		}
		if _, err := x.t.exec(ctx, q, args...); err != nil {
			return x.t.s.translate("put tree hashes", err)
		}
		first += int64(n)
		hashes = hashes[n:]
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

// ReadHashes implements storage.LogReader.
func (l *TLog) ReadHashes(ctx context.Context, ids []int64) ([][]byte, error) {
	return readHashes(ctx, l.s.r(), ids)
}

// leafScanBatch is the rows per query of ScanLeaves: verification reads
// the whole log, so bigger pages mean fewer round trips (about 300 KiB
// of sealed events per page).
const leafScanBatch = 1024

// ScanLeaves implements storage.LogReader.
func (l *TLog) ScanLeaves(ctx context.Context, from, to int64, fn func(storage.LogLeaf) error) error {
	const q = `SELECT seq, leaf_index, recorded_at, body, leaf_hash FROM audit_events
WHERE leaf_index >= ? AND leaf_index < ? ORDER BY leaf_index LIMIT ?`
	for from < to {
		rows, err := l.s.r().query(ctx, q, from, to, leafScanBatch)
		if err != nil {
			return l.s.translate("scan leaves", err)
		}
		var batch []storage.LogLeaf
		for rows.Next() {
			var lf storage.LogLeaf
			var at int64
			if err := rows.Scan(&lf.Seq, &lf.Index, &at, &lf.Body, &lf.LeafHash); err != nil {
				rows.Close()
				return l.s.translate("scan leaves", err)
			}
			lf.Time = fromMicros(at)
			batch = append(batch, lf)
		}
		if err := errors.Join(rows.Err(), rows.Close()); err != nil {
			return l.s.translate("scan leaves", err)
		}
		for _, lf := range batch {
			if err := fn(lf); err != nil {
				return err
			}
		}
		if len(batch) < leafScanBatch {
			return nil
		}
		from = batch[len(batch)-1].Index + 1
	}
	return nil
}

// hashScanBatch is the rows per query of ScanHashes (40 bytes each).
const hashScanBatch = 4096

// ScanHashes implements storage.LogReader.
func (l *TLog) ScanHashes(ctx context.Context, from, to int64, fn func(id int64, hash []byte) error) error {
	const q = `SELECT id, hash FROM tlog_hashes WHERE id >= ? AND id < ? ORDER BY id LIMIT ?`
	type row struct {
		id int64
		h  []byte
	}
	for from < to {
		rows, err := l.s.r().query(ctx, q, from, to, hashScanBatch)
		if err != nil {
			return l.s.translate("scan tree hashes", err)
		}
		var batch []row
		for rows.Next() {
			var r row
			if err := rows.Scan(&r.id, &r.h); err != nil {
				rows.Close()
				return l.s.translate("scan tree hashes", err)
			}
			batch = append(batch, r)
		}
		if err := errors.Join(rows.Err(), rows.Close()); err != nil {
			return l.s.translate("scan tree hashes", err)
		}
		for _, r := range batch {
			if err := fn(r.id, r.h); err != nil {
				return err
			}
		}
		if len(batch) < hashScanBatch {
			return nil
		}
		from = batch[len(batch)-1].id + 1
	}
	return nil
}

// ScanPending implements storage.LogReader.
func (l *TLog) ScanPending(ctx context.Context, fn func(storage.LogLeaf) error) error {
	const q = `SELECT seq, recorded_at, body, leaf_hash FROM audit_events WHERE leaf_index IS NULL AND seq > ? ORDER BY seq LIMIT ?`
	after := int64(-1 << 62)
	for {
		rows, err := l.s.r().query(ctx, q, after, scanBatch)
		if err != nil {
			return l.s.translate("scan pending", err)
		}
		var batch []storage.LogLeaf
		for rows.Next() {
			lf := storage.LogLeaf{Index: -1}
			var at int64
			if err := rows.Scan(&lf.Seq, &at, &lf.Body, &lf.LeafHash); err != nil {
				rows.Close()
				return l.s.translate("scan pending", err)
			}
			lf.Time = fromMicros(at)
			batch = append(batch, lf)
		}
		if err := errors.Join(rows.Err(), rows.Close()); err != nil {
			return l.s.translate("scan pending", err)
		}
		for _, lf := range batch {
			if err := fn(lf); err != nil {
				return err
			}
		}
		if len(batch) < scanBatch {
			return nil
		}
		after = batch[len(batch)-1].Seq
	}
}

// CountPending implements storage.LogReader.
func (l *TLog) CountPending(ctx context.Context) (int64, error) {
	const q = `SELECT COUNT(*) FROM audit_events WHERE leaf_index IS NULL`
	rows, err := l.s.r().query(ctx, q)
	if err != nil {
		return 0, l.s.translate("count pending", err)
	}
	defer rows.Close()
	var n int64
	if rows.Next() {
		if err := rows.Scan(&n); err != nil {
			return 0, l.s.translate("count pending", err)
		}
	}
	return n, l.s.translate("count pending", rows.Err())
}

// LeafIndexOf implements storage.LogReader.
func (l *TLog) LeafIndexOf(ctx context.Context, seq int64) (int64, error) {
	const q = `SELECT leaf_index FROM audit_events WHERE seq = ?`
	rows, err := l.s.r().query(ctx, q, seq)
	if err != nil {
		return 0, l.s.translate("leaf index", err)
	}
	defer rows.Close()
	if !rows.Next() {
		if err := rows.Err(); err != nil {
			return 0, l.s.translate("leaf index", err)
		}
		return 0, wrapOp("leaf index", storage.ErrNotFound)
	}
	var idx *int64
	if err := rows.Scan(&idx); err != nil {
		return 0, l.s.translate("leaf index", err)
	}
	if idx == nil {
		return -1, nil
	}
	return *idx, nil
}

func logSize(ctx context.Context, r runner) (int64, error) {
	const q = `SELECT COALESCE(MAX(leaf_index) + 1, 0) FROM audit_events`
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

// readHashes reads ids (in any order) with IN-list queries of tlogChunk
// ids and returns the hashes in the order of ids.
func readHashes(ctx context.Context, r runner, ids []int64) ([][]byte, error) {
	out := make([][]byte, len(ids))
	pos := make(map[int64][]int, len(ids))
	for i, id := range ids {
		pos[id] = append(pos[id], i)
	}
	uniq := make([]int64, 0, len(pos))
	for id := range pos {
		uniq = append(uniq, id)
	}
	for len(uniq) > 0 {
		n := min(len(uniq), tlogChunk)
		b := &builder{dollar: false}
		b.sql(`SELECT id, hash FROM tlog_hashes WHERE id IN `)
		list(b, uniq[:n], func(v int64) any { return v })
		rows, err := queryUncached(ctx, r, b.String(), b.args...)
		if err != nil {
			return nil, r.store().translate("read tree hashes", err)
		}
		for rows.Next() {
			var id int64
			var h []byte
			if err := rows.Scan(&id, &h); err != nil {
				rows.Close()
				return nil, r.store().translate("read tree hashes", err)
			}
			for _, i := range pos[id] {
				out[i] = h
			}
		}
		if err := errors.Join(rows.Err(), rows.Close()); err != nil {
			return nil, r.store().translate("read tree hashes", err)
		}
		uniq = uniq[n:]
	}
	for i, h := range out {
		if h == nil {
			return nil, fmt.Errorf("read tree hashes: hash %d: %w", ids[i], storage.ErrNotFound)
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
