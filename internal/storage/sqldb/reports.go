package sqldb

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/phivault/phivault/internal/privacy"
	"github.com/phivault/phivault/internal/storage"
)

// Access reports (table access_reports, migration 0013_access_reports):
// a patient's "I don't recognise this access", and its closing by the
// privacy officer. Comments arrive sealed. The changes are written by
// package privacy through the unit of work (privacy.Tx, ADR 0024).

// MaxAccessReports bounds one listing of open reports (STYLE rule 24).
const MaxAccessReports = 500

var _ privacy.Tx = (*tx)(nil)

// InsertAccessReport implements privacy.Tx: r, open. A second report
// with the same id is storage.ErrConflict.
func (t *tx) InsertAccessReport(ctx context.Context, r storage.AccessReport) error {
	_, err := t.exec(ctx, `INSERT INTO access_reports (id, patient, leaf, reporter, created, comment, closed, closer, close_note)
		VALUES (?, ?, ?, ?, ?, ?, 0, '', NULL)`, r.ID, r.Patient, r.Leaf, r.Reporter, r.Created.UnixMicro(), nullBytes(nonEmpty(r.Comment)))
	return t.s.translate("create access report", err)
}

// OpenAccessReports returns up to limit (at most MaxAccessReports) open
// reports, oldest first.
func (s *Store) OpenAccessReports(ctx context.Context, limit int) ([]storage.AccessReport, error) {
	if limit <= 0 || limit > MaxAccessReports {
		limit = MaxAccessReports
	}
	rows, err := s.r().query(ctx, `SELECT id, patient, leaf, reporter, created, comment, closed, closer, close_note
		FROM access_reports WHERE closed = ? ORDER BY created, id LIMIT ?`, int64(0), limit)
	if err != nil {
		return nil, s.translate("open access reports", err)
	}
	defer rows.Close()
	var out []storage.AccessReport
	for rows.Next() {
		r, err := scanReport(rows)
		if err != nil {
			return nil, s.translate("open access reports", err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, s.translate("open access reports", err)
	}
	return out, nil
}

// AccessReport returns the report id, or storage.ErrNotFound.
func (s *Store) AccessReport(ctx context.Context, id string) (storage.AccessReport, error) {
	rows, err := s.r().query(ctx, `SELECT id, patient, leaf, reporter, created, comment, closed, closer, close_note
		FROM access_reports WHERE id = ?`, id)
	if err != nil {
		return storage.AccessReport{}, s.translate("access report", err)
	}
	defer rows.Close()
	if !rows.Next() {
		if err := rows.Err(); err != nil {
			return storage.AccessReport{}, s.translate("access report", err)
		}
		return storage.AccessReport{}, wrapOp("access report", storage.ErrNotFound)
	}
	r, err := scanReport(rows)
	if err != nil {
		return storage.AccessReport{}, s.translate("access report", err)
	}
	return r, nil
}

// CloseAccessReport implements privacy.Tx: it closes the open report
// id at at, by closer, with a sealed note (or nil). It returns
// storage.ErrNotFound for no such report and storage.ErrConflict for
// one already closed.
func (t *tx) CloseAccessReport(ctx context.Context, id, closer string, at time.Time, note []byte) error {
	if at.IsZero() || at.UnixMicro() == 0 {
		return errors.New("close access report: zero time")
	}
	res, err := t.exec(ctx, `UPDATE access_reports SET closed = ?, closer = ?, close_note = ? WHERE id = ? AND closed = 0`,
		at.UnixMicro(), closer, nullBytes(nonEmpty(note)), id)
	if err != nil {
		return t.s.translate("close access report", err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return t.s.translate("close access report", err)
	} else if n == 1 {
		return nil
	}
	rows, err := t.query(ctx, `SELECT closed FROM access_reports WHERE id = ?`, id)
	if err != nil {
		return t.s.translate("close access report", err)
	}
	defer rows.Close()
	if rows.Next() {
		return wrapOp("close access report", storage.ErrConflict)
	}
	return wrapOp("close access report", storage.ErrNotFound)
}

func scanReport(rows *sql.Rows) (storage.AccessReport, error) {
	var r storage.AccessReport
	var created, closed int64
	if err := rows.Scan(&r.ID, &r.Patient, &r.Leaf, &r.Reporter, &created, &r.Comment, &closed, &r.Closer, &r.CloseNote); err != nil {
		return r, err
	}
	r.Created = fromMicros(created)
	if closed != 0 {
		r.Closed = fromMicros(closed)
	}
	return r, nil
}

// nonEmpty stores an empty sealed value as NULL.
func nonEmpty(b []byte) []byte {
	if len(b) == 0 {
		return nil
	}
	return b
}
