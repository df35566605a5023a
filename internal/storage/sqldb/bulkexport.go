package sqldb

import (
	"context"
	"errors"
	"time"

	"github.com/phivault/phivault/internal/bulk"
	"github.com/phivault/phivault/internal/storage"
)

// Bulk export jobs (tables bulk_jobs and bulk_files, migration
// 0035_bulk_export): package bulk's job queue and sealed output files.

var _ bulk.Store = (*BulkJobs)(nil)

// BulkJobs implements bulk.Store.
type BulkJobs struct{ s *Store }

// BulkJobs returns the bulk export store of this database.
func (s *Store) BulkJobs() *BulkJobs { return &BulkJobs{s: s} }

const bulkJobCols = `id, client, state, params, job_key, created, tx_time, expires, holder, lease_until, attempts, progress, error`

func scanBulkJob(rows interface{ Scan(...any) error }) (bulk.Job, error) {
	var j bulk.Job
	var state string
	var created, txTime, expires, lease, attempts int64
	err := rows.Scan(&j.ID, &j.Client, &state, &j.Params, &j.Key, &created, &txTime, &expires, &j.Holder, &lease, &attempts, &j.Progress, &j.Error)
	j.State, j.Created, j.TxTime, j.Expires, j.LeaseUntil, j.Attempts = bulk.State(state), fromMicros(created), fromMicros(txTime), fromMicros(expires), fromMicros(lease), int(attempts)
	return j, err
}

// CreateJob implements bulk.Store. The count and the insert share one
// write transaction: two kick-offs of one client cannot both pass.
func (x *BulkJobs) CreateJob(ctx context.Context, j bulk.Job, max int) error {
	const op = "create bulk job"
	for _, f := range []string{j.ID, j.Client, string(j.State)} {
		if err := validText(op, f); err != nil {
			return err
		}
	}
	return x.s.Update(ctx, func(stx storage.Tx) error {
		t := stx.(*tx)
		rows, err := t.query(ctx, `SELECT COUNT(*) FROM bulk_jobs WHERE client = ? AND state IN ('queued', 'running')`, j.Client)
		if err != nil {
			return t.s.translate(op, err)
		}
		var n int64
		if rows.Next() {
			err = rows.Scan(&n)
		}
		if err := errors.Join(err, rows.Err(), rows.Close()); err != nil {
			return t.s.translate(op, err)
		}
		if n >= int64(max) {
			return bulk.ErrTooManyJobs
		}
		_, err = t.exec(ctx, `INSERT INTO bulk_jobs (`+bulkJobCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			j.ID, j.Client, string(j.State), j.Params, j.Key, j.Created.UnixMicro(), j.TxTime.UnixMicro(), j.Expires.UnixMicro(),
			j.Holder, j.LeaseUntil.UnixMicro(), int64(j.Attempts), j.Progress, j.Error)
		return t.s.translate(op, err)
	})
}

// Job implements bulk.Store.
func (x *BulkJobs) Job(ctx context.Context, id string) (bulk.Job, error) {
	rows, err := x.s.r().query(ctx, `SELECT `+bulkJobCols+` FROM bulk_jobs WHERE id = ?`, id)
	if err != nil {
		return bulk.Job{}, x.s.translate("bulk job", err)
	}
	defer rows.Close()
	if !rows.Next() {
		if err := rows.Err(); err != nil {
			return bulk.Job{}, x.s.translate("bulk job", err)
		}
		return bulk.Job{}, wrapOp("bulk job", storage.ErrNotFound)
	}
	j, err := scanBulkJob(rows)
	return j, x.s.translate("bulk job", err)
}

// ClaimJob implements bulk.Store: a conditional update of the candidate
// read first, so of two processes claiming one job only one succeeds.
func (x *BulkJobs) ClaimJob(ctx context.Context, holder string, now, leaseUntil time.Time) (bulk.Job, bool, error) {
	const op = "claim bulk job"
	if err := validText(op, holder); err != nil {
		return bulk.Job{}, false, err
	}
	rows, err := x.s.r().query(ctx, `SELECT id FROM bulk_jobs WHERE state = 'queued' OR (state = 'running' AND lease_until < ?)
		ORDER BY created, id LIMIT 8`, now.UnixMicro())
	if err != nil {
		return bulk.Job{}, false, x.s.translate(op, err)
	}
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return bulk.Job{}, false, x.s.translate(op, err)
		}
		ids = append(ids, id)
	}
	if err := errors.Join(rows.Err(), rows.Close()); err != nil {
		return bulk.Job{}, false, x.s.translate(op, err)
	}
	for _, id := range ids {
		var claimed bool
		err := x.s.Update(ctx, func(stx storage.Tx) error {
			t := stx.(*tx)
			res, err := t.exec(ctx, `UPDATE bulk_jobs SET state = 'running', holder = ?, lease_until = ?, attempts = attempts + 1
				WHERE id = ? AND (state = 'queued' OR (state = 'running' AND lease_until < ?))`,
				holder, leaseUntil.UnixMicro(), id, now.UnixMicro())
			if err != nil {
				return t.s.translate(op, err)
			}
			n, err := res.RowsAffected()
			claimed = n == 1
			return t.s.translate(op, err)
		})
		if err != nil {
			return bulk.Job{}, false, err
		}
		if claimed {
			j, err := x.Job(ctx, id)
			return j, err == nil, err
		}
	}
	return bulk.Job{}, false, nil
}

// held runs a write of holder on running job id; ErrLeaseLost when the
// job is gone, finished or another's.
func (x *BulkJobs) held(ctx context.Context, op, id, holder string, fn func(t *tx) error) error {
	return x.s.Update(ctx, func(stx storage.Tx) error {
		t := stx.(*tx)
		rows, err := t.query(ctx, `SELECT 1 FROM bulk_jobs r WHERE r.id = ? AND r.holder = ? AND r.state = 'running'`+t.s.d.LockRows, id, holder)
		if err != nil {
			return t.s.translate(op, err)
		}
		ok := rows.Next()
		if err := errors.Join(rows.Err(), rows.Close()); err != nil {
			return t.s.translate(op, err)
		}
		if !ok {
			return bulk.ErrLeaseLost
		}
		return fn(t)
	})
}

// RenewLease implements bulk.Store.
func (x *BulkJobs) RenewLease(ctx context.Context, id, holder string, until time.Time, progress string) error {
	const op = "renew bulk job lease"
	return x.held(ctx, op, id, holder, func(t *tx) error {
		_, err := t.exec(ctx, `UPDATE bulk_jobs SET lease_until = ?, progress = ? WHERE id = ?`, until.UnixMicro(), progress, id)
		return t.s.translate(op, err)
	})
}

// ResetFiles implements bulk.Store.
func (x *BulkJobs) ResetFiles(ctx context.Context, id, holder string) error {
	const op = "reset bulk files"
	return x.held(ctx, op, id, holder, func(t *tx) error {
		_, err := t.exec(ctx, `DELETE FROM bulk_files WHERE job = ?`, id)
		return t.s.translate(op, err)
	})
}

// PutFile implements bulk.Store.
func (x *BulkJobs) PutFile(ctx context.Context, id, holder string, f bulk.File, data []byte) error {
	const op = "put bulk file"
	for _, s := range []string{f.Kind, f.Type} {
		if err := validText(op, s); err != nil {
			return err
		}
	}
	return x.held(ctx, op, id, holder, func(t *tx) error {
		_, err := t.exec(ctx, `INSERT INTO bulk_files (job, n, kind, res_type, count, data) VALUES (?, ?, ?, ?, ?, ?)`,
			id, int64(f.N), f.Kind, f.Type, int64(f.Count), data)
		return t.s.translate(op, err)
	})
}

// FinishJob implements bulk.Store.
func (x *BulkJobs) FinishJob(ctx context.Context, id, holder string, state bulk.State, errText string, expires time.Time) error {
	const op = "finish bulk job"
	return x.held(ctx, op, id, holder, func(t *tx) error {
		_, err := t.exec(ctx, `UPDATE bulk_jobs SET state = ?, error = ?, expires = ?, holder = '', lease_until = 0 WHERE id = ?`,
			string(state), errText, expires.UnixMicro(), id)
		return t.s.translate(op, err)
	})
}

// Files implements bulk.Store.
func (x *BulkJobs) Files(ctx context.Context, id string) ([]bulk.File, error) {
	rows, err := x.s.r().query(ctx, `SELECT n, kind, res_type, count FROM bulk_files WHERE job = ? ORDER BY n`, id)
	if err != nil {
		return nil, x.s.translate("bulk files", err)
	}
	defer rows.Close()
	var out []bulk.File
	for rows.Next() {
		var f bulk.File
		var n, count int64
		if err := rows.Scan(&n, &f.Kind, &f.Type, &count); err != nil {
			return nil, x.s.translate("bulk files", err)
		}
		f.N, f.Count = int(n), int(count)
		out = append(out, f)
	}
	return out, x.s.translate("bulk files", rows.Err())
}

// FileData implements bulk.Store.
func (x *BulkJobs) FileData(ctx context.Context, id string, n int) ([]byte, error) {
	var data []byte
	rows, err := x.s.r().query(ctx, `SELECT data FROM bulk_files WHERE job = ? AND n = ?`, id, int64(n))
	if err != nil {
		return nil, x.s.translate("bulk file", err)
	}
	defer rows.Close()
	if !rows.Next() {
		if err := rows.Err(); err != nil {
			return nil, x.s.translate("bulk file", err)
		}
		return nil, wrapOp("bulk file", storage.ErrNotFound)
	}
	err = rows.Scan(&data)
	return data, x.s.translate("bulk file", err)
}

// DeleteJob implements bulk.Store: the files, then the row with its
// wrapped key, in one transaction. The key is overwritten before the
// row goes, so the live row never holds it again.
func (x *BulkJobs) DeleteJob(ctx context.Context, id string) error {
	const op = "delete bulk job"
	return x.s.Update(ctx, func(stx storage.Tx) error {
		t := stx.(*tx)
		if _, err := t.exec(ctx, `DELETE FROM bulk_files WHERE job = ?`, id); err != nil {
			return t.s.translate(op, err)
		}
		if _, err := t.exec(ctx, `UPDATE bulk_jobs SET job_key = NULL, params = ? WHERE id = ?`, []byte{}, id); err != nil {
			return t.s.translate(op, err)
		}
		res, err := t.exec(ctx, `DELETE FROM bulk_jobs WHERE id = ?`, id)
		if err != nil {
			return t.s.translate(op, err)
		}
		if n, err := res.RowsAffected(); err != nil || n == 0 {
			return errors.Join(t.s.translate(op, err), wrapOp(op, storage.ErrNotFound))
		}
		return nil
	})
}

// Expired implements bulk.Store.
func (x *BulkJobs) Expired(ctx context.Context, now time.Time, limit int) ([]string, error) {
	rows, err := x.s.r().query(ctx, `SELECT id FROM bulk_jobs WHERE expires < ? ORDER BY expires LIMIT ?`, now.UnixMicro(), limit)
	if err != nil {
		return nil, x.s.translate("expired bulk jobs", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, x.s.translate("expired bulk jobs", err)
		}
		out = append(out, id)
	}
	return out, x.s.translate("expired bulk jobs", rows.Err())
}
