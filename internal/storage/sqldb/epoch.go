package sqldb

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/phivault/phivault/internal/storage"
)

// epochLock is the lock that orders key writes against a KEK epoch's
// fence: Tx.PutKey and Tx.ReplaceKey take it shared before checking the
// fence, UpdateEpoch takes it exclusively. On PostgreSQL these are
// transaction-scoped advisory locks, so a key write that checked the
// fence before an epoch retired its key commits before the epoch's
// transaction does, and the epoch's re-wrap scan (which starts after
// that commit) sees it. On SQLite the single writer serialises both.
const epochLock = "kek-epoch"

var (
	_ storage.EpochStore = (*Epochs)(nil)
	_ storage.EpochTx    = (*epochTx)(nil)
)

// Epochs implements storage.EpochStore on the same database.
type Epochs struct{ s *Store }

// Epochs returns the KEK epoch store.
func (s *Store) Epochs() *Epochs { return &Epochs{s: s} }

// Epochs implements storage.EpochStore.
func (e *Epochs) Epochs(ctx context.Context) ([]storage.KEKEpoch, error) {
	return scanEpochs(ctx, e.s.r(), `SELECT `+epochCols+` FROM kek_epochs ORDER BY epoch`)
}

// RetiredKEKs implements storage.EpochStore.
func (e *Epochs) RetiredKEKs(ctx context.Context) ([]storage.RetiredKEK, error) {
	rows, err := e.s.r().query(ctx, `SELECT kek_id, epoch, destroyed FROM kek_retired ORDER BY epoch, kek_id`)
	if err != nil {
		return nil, e.s.translate("retired keks", err)
	}
	defer rows.Close()
	var out []storage.RetiredKEK
	for rows.Next() {
		var r storage.RetiredKEK
		var id, destroyed int64
		if err := rows.Scan(&id, &r.Epoch, &destroyed); err != nil {
			return nil, e.s.translate("retired keks", err)
		}
		r.KEKID, r.Destroyed = uint32(id), optMicros(destroyed)
		out = append(out, r)
	}
	return out, e.s.translate("retired keks", rows.Err())
}

// UpdateEpoch implements storage.EpochStore.
func (e *Epochs) UpdateEpoch(ctx context.Context, fn func(storage.EpochTx) error) error {
	return e.s.Update(ctx, func(t storage.Tx) error {
		tt, ok := t.(*tx)
		if !ok {
			return errors.New("update epoch: not a sqldb transaction")
		}
		if err := tt.Lock(ctx, epochLock); err != nil {
			return err
		}
		return fn(&epochTx{t: tt})
	})
}

type epochTx struct{ t *tx }

const epochCols = `epoch, state, kek_id, prev_primary, started, rewrapped, destroy_after, completed, erasures, holder, heartbeat`

func (x *epochTx) Latest(ctx context.Context) (storage.KEKEpoch, error) {
	es, err := scanEpochs(ctx, x.t, `SELECT `+epochCols+` FROM kek_epochs ORDER BY epoch DESC LIMIT 1`)
	if err != nil {
		return storage.KEKEpoch{}, err
	}
	if len(es) == 0 {
		return storage.KEKEpoch{}, wrapOp("latest epoch", storage.ErrNotFound)
	}
	return es[0], nil
}

func (x *epochTx) PutEpoch(ctx context.Context, e storage.KEKEpoch) error {
	if e.Epoch < 1 {
		return fmt.Errorf("put epoch: epoch %d is not positive", e.Epoch)
	}
	switch e.State {
	case storage.EpochAdding, storage.EpochRewrapping, storage.EpochRetained, storage.EpochComplete:
	default:
		return fmt.Errorf("put epoch: unknown state %q", e.State)
	}
	if err := validText("put epoch: holder", e.Holder); err != nil {
		return err
	}
	const q = `INSERT INTO kek_epochs (` + epochCols + `) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (epoch) DO UPDATE SET state = excluded.state, kek_id = excluded.kek_id, prev_primary = excluded.prev_primary,
started = excluded.started, rewrapped = excluded.rewrapped, destroy_after = excluded.destroy_after,
completed = excluded.completed, erasures = excluded.erasures, holder = excluded.holder, heartbeat = excluded.heartbeat`
	_, err := x.t.exec(ctx, q, e.Epoch, string(e.State), int64(e.KEKID), int64(e.PrevPrimary), micros(e.Started),
		micros(e.Rewrapped), micros(e.DestroyAfter), micros(e.Completed), e.Erasures, e.Holder, micros(e.Heartbeat))
	return x.t.s.translate("put epoch", err)
}

func (x *epochTx) Retire(ctx context.Context, epoch int64, ids []uint32) error {
	const q = `INSERT INTO kek_retired (kek_id, epoch, destroyed) VALUES (?, ?, 0) ON CONFLICT (kek_id) DO NOTHING`
	for _, id := range ids {
		if id == 0 {
			return errors.New("retire kek: id 0 (a KMS KEK) cannot be retired")
		}
		if _, err := x.t.exec(ctx, q, int64(id), epoch); err != nil {
			return x.t.s.translate("retire kek", err)
		}
	}
	return nil
}

func (x *epochTx) MarkDestroyed(ctx context.Context, ids []uint32, at time.Time) error {
	const q = `UPDATE kek_retired SET destroyed = ? WHERE kek_id = ? AND destroyed = 0`
	for _, id := range ids {
		if _, err := x.t.exec(ctx, q, micros(at), int64(id)); err != nil {
			return x.t.s.translate("mark kek destroyed", err)
		}
	}
	return nil
}

func (x *epochTx) CountNotUnder(ctx context.Context, kekID uint32) (int64, error) {
	const q = `SELECT COUNT(*) FROM keys WHERE NOT shredded AND kek_id <> ?`
	rows, err := x.t.query(ctx, q, int64(kekID))
	if err != nil {
		return 0, x.t.s.translate("count keys", err)
	}
	defer rows.Close()
	var n int64
	if rows.Next() {
		if err := rows.Scan(&n); err != nil {
			return 0, x.t.s.translate("count keys", err)
		}
	}
	return n, x.t.s.translate("count keys", rows.Err())
}

func (x *epochTx) AppendAudit(ctx context.Context, recs ...storage.AuditRecord) error {
	return x.t.AppendAudit(ctx, recs...)
}

// checkFence refuses a key record wrapped under a retired KEK key. It
// takes the epoch lock shared first (see epochLock).
func (t *tx) checkFence(ctx context.Context, op string, kekID uint32) error {
	if kekID == 0 {
		return nil // a KMS KEK: Vault keeps its versions itself
	}
	if t.s.d.LockSharedSQL != "" {
		if _, err := t.exec(ctx, t.s.d.LockSharedSQL, lockKey(epochLock)); err != nil {
			return t.s.translate(op, err)
		}
	}
	rows, err := t.query(ctx, `SELECT epoch FROM kek_retired WHERE kek_id = ?`, int64(kekID))
	if err != nil {
		return t.s.translate(op, err)
	}
	retired := rows.Next()
	if err := errors.Join(rows.Err(), rows.Close()); err != nil {
		return t.s.translate(op, err)
	}
	if retired {
		return wrapOp(op, &dbError{kind: storage.ErrUnavailable,
			err: fmt.Errorf("%w %d: this process must reload the key file of the KEK epoch in force", storage.ErrRetiredKEK, kekID)})
	}
	return nil
}

// CompactKeys runs the dialect's CompactKeys statements outside any
// transaction: on SQLite a WAL checkpoint that truncates the WAL (it
// retries while readers hold old snapshots, up to ctx), on PostgreSQL a
// VACUUM of the keys table. Run it after a KEK epoch.
func (s *Store) CompactKeys(ctx context.Context) error {
	for _, q := range s.d.CompactKeys {
		for attempt := 0; ; attempt++ {
			busy, err := compactOnce(ctx, s.writer, q)
			if err != nil {
				return fmt.Errorf("compacting keys (%s): %w", q, s.translate("compact", err))
			}
			if !busy {
				break
			}
			if attempt == 50 {
				return fmt.Errorf("compacting keys (%s): %w: readers kept old snapshots", q, storage.ErrUnavailable)
			}
			t := time.NewTimer(20 * time.Millisecond)
			select {
			case <-ctx.Done():
				t.Stop()
				return ctx.Err()
			case <-t.C:
			}
		}
	}
	return nil
}

// compactOnce runs q and reports whether it answered busy (SQLite's
// wal_checkpoint returns busy, log pages, checkpointed pages).
func compactOnce(ctx context.Context, db *sql.DB, q string) (busy bool, err error) {
	rows, err := db.QueryContext(ctx, q)
	if err != nil {
		return false, err
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil || len(cols) == 0 {
		return false, err
	}
	if rows.Next() {
		vals := make([]any, len(cols))
		var b int64
		vals[0] = &b
		for i := 1; i < len(vals); i++ {
			vals[i] = new(any)
		}
		if err := rows.Scan(vals...); err != nil {
			return false, err
		}
		busy = b != 0
	}
	return busy, rows.Err()
}

func scanEpochs(ctx context.Context, r runner, q string) ([]storage.KEKEpoch, error) {
	rows, err := r.query(ctx, q)
	if err != nil {
		return nil, r.store().translate("epochs", err)
	}
	defer rows.Close()
	var out []storage.KEKEpoch
	for rows.Next() {
		var e storage.KEKEpoch
		var state string
		var kek, prev, started, rewrapped, destroyAfter, completed, heartbeat int64
		if err := rows.Scan(&e.Epoch, &state, &kek, &prev, &started, &rewrapped, &destroyAfter, &completed, &e.Erasures, &e.Holder, &heartbeat); err != nil {
			return nil, r.store().translate("epochs", err)
		}
		e.State, e.KEKID, e.PrevPrimary = storage.EpochState(state), uint32(kek), uint32(prev)
		e.Started, e.Rewrapped, e.DestroyAfter = optMicros(started), optMicros(rewrapped), optMicros(destroyAfter)
		e.Completed, e.Heartbeat = optMicros(completed), optMicros(heartbeat)
		out = append(out, e)
	}
	return out, r.store().translate("epochs", rows.Err())
}

// micros stores a time as unix microseconds, the zero time as 0.
func micros(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMicro()
}

// optMicros is the inverse of micros.
func optMicros(us int64) time.Time {
	if us == 0 {
		return time.Time{}
	}
	return fromMicros(us)
}
