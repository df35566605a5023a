package sqldb

import (
	"context"
	"fmt"

	"github.com/phivault/phivault/internal/audit/export"
	"github.com/phivault/phivault/internal/storage"
)

var _ export.Cursors = (*ExportCursors)(nil)

// ExportCursors implements export.Cursors on the audit_export_cursors
// table (migration 0012_audit_followers): per follower of the log (SIEM
// sinks, the audit index), the index of the next leaf to send.
type ExportCursors struct{ s *Store }

// ExportCursors returns the SIEM export cursors of this database.
func (s *Store) ExportCursors() *ExportCursors { return &ExportCursors{s: s} }

// Cursor implements export.Cursors.
func (c *ExportCursors) Cursor(ctx context.Context, sink string) (int64, error) {
	if err := validText("export cursor: sink", sink); err != nil {
		return 0, err
	}
	rows, err := c.s.r().query(ctx, `SELECT next FROM audit_export_cursors WHERE sink = ?`, sink)
	if err != nil {
		return 0, c.s.translate("export cursor", err)
	}
	defer rows.Close()
	var seq int64
	if rows.Next() {
		if err := rows.Scan(&seq); err != nil {
			return 0, c.s.translate("export cursor", err)
		}
	}
	return seq, c.s.translate("export cursor", rows.Err())
}

// Advance implements export.Cursors: a compare-and-set, so two
// processes exporting to one sink cannot move its cursor backwards or
// skip a batch.
func (c *ExportCursors) Advance(ctx context.Context, sink string, from, to int64) error {
	if err := validText("export cursor: sink", sink); err != nil {
		return err
	}
	if to <= from {
		return fmt.Errorf("export cursor %s: advance from %d to %d is not forward", sink, from, to)
	}
	now := c.s.now().UnixMicro()
	return c.s.Update(ctx, func(stx storage.Tx) error {
		t := stx.(*tx)
		q := `UPDATE audit_export_cursors SET next = ?, updated = ? WHERE sink = ? AND next = ?`
		args := []any{to, now, sink, from}
		if from == 0 {
			q = `INSERT INTO audit_export_cursors (sink, next, updated) VALUES (?, ?, ?) ON CONFLICT DO NOTHING`
			args = []any{sink, to, now}
		}
		res, err := t.exec(ctx, q, args...)
		if err != nil {
			return t.s.translate("advance export cursor", err)
		}
		n, err := res.RowsAffected()
		if err != nil {
			return t.s.translate("advance export cursor", err)
		}
		if n == 0 {
			return fmt.Errorf("export cursor %s: %w", sink, export.ErrMoved)
		}
		return nil
	})
}
