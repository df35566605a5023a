package sqldb

import (
	"context"
	"database/sql"
	"time"

	"github.com/phivault/phivault/internal/storage"
)

// Records of scheduled backups and restore drills (tables backup_runs
// and backup_drills, migration 0034, ADR 0051).

var _ storage.BackupRecords = (*Store)(nil)

// RecordBackupRun implements storage.BackupRecords.
func (s *Store) RecordBackupRun(ctx context.Context, r storage.BackupRun, recs ...storage.AuditRecord) error {
	return s.Update(ctx, func(stx storage.Tx) error {
		t := stx.(*tx)
		_, err := t.exec(ctx, `INSERT INTO backup_runs (id, name, destination, started, finished, size, pruned, outcome, error)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`, r.ID, r.Name, r.Destination, r.Started.UnixMicro(), r.Finished.UnixMicro(),
			r.Size, int64(r.Pruned), r.Outcome, capText(r.Error))
		if err != nil {
			return t.s.translate("record backup run", err)
		}
		return t.AppendAudit(ctx, recs...)
	})
}

// RecordBackupDrill implements storage.BackupRecords.
func (s *Store) RecordBackupDrill(ctx context.Context, d storage.BackupDrill, recs ...storage.AuditRecord) error {
	return s.Update(ctx, func(stx storage.Tx) error {
		t := stx.(*tx)
		_, err := t.exec(ctx, `INSERT INTO backup_drills (id, backup, started, finished, recovery_ms, point_ms, outcome, error)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?)`, d.ID, d.Backup, d.Started.UnixMicro(), d.Finished.UnixMicro(),
			d.RecoveryTime.Milliseconds(), d.RecoveryPoint.Milliseconds(), d.Outcome, capText(d.Error))
		if err != nil {
			return t.s.translate("record backup drill", err)
		}
		return t.AppendAudit(ctx, recs...)
	})
}

// capText bounds a stored error message (at a rune boundary).
func capText(s string) string {
	if len(s) <= storage.MaxBackupError {
		return s
	}
	s = s[:storage.MaxBackupError]
	for len(s) > 0 && s[len(s)-1]&0xc0 == 0x80 {
		s = s[:len(s)-1]
	}
	if len(s) > 0 && s[len(s)-1] >= 0xc0 {
		s = s[:len(s)-1]
	}
	return s
}

func backupLimit(limit int) int {
	if limit <= 0 || limit > storage.MaxBackupRows {
		return storage.MaxBackupRows
	}
	return limit
}

// BackupRuns implements storage.BackupReader.
func (s *Store) BackupRuns(ctx context.Context, outcome string, limit int) ([]storage.BackupRun, error) {
	q := `SELECT id, name, destination, started, finished, size, pruned, outcome, error FROM backup_runs`
	args := []any{}
	if outcome != "" {
		q += ` WHERE outcome = ?`
		args = append(args, outcome)
	}
	q += ` ORDER BY started DESC, id DESC LIMIT ?`
	args = append(args, backupLimit(limit))
	return scanAll(ctx, s, "backup runs", q, args, func(rows *sql.Rows) (storage.BackupRun, error) {
		var r storage.BackupRun
		var started, finished, pruned int64
		err := rows.Scan(&r.ID, &r.Name, &r.Destination, &started, &finished, &r.Size, &pruned, &r.Outcome, &r.Error)
		r.Started, r.Finished, r.Pruned = fromMicros(started), fromMicros(finished), int(pruned)
		return r, err
	})
}

// BackupDrills implements storage.BackupReader.
func (s *Store) BackupDrills(ctx context.Context, outcome string, limit int) ([]storage.BackupDrill, error) {
	q := `SELECT id, backup, started, finished, recovery_ms, point_ms, outcome, error FROM backup_drills`
	args := []any{}
	if outcome != "" {
		q += ` WHERE outcome = ?`
		args = append(args, outcome)
	}
	q += ` ORDER BY started DESC, id DESC LIMIT ?`
	args = append(args, backupLimit(limit))
	return scanAll(ctx, s, "backup drills", q, args, func(rows *sql.Rows) (storage.BackupDrill, error) {
		var d storage.BackupDrill
		var started, finished, rto, rpo int64
		err := rows.Scan(&d.ID, &d.Backup, &started, &finished, &rto, &rpo, &d.Outcome, &d.Error)
		d.Started, d.Finished = fromMicros(started), fromMicros(finished)
		d.RecoveryTime, d.RecoveryPoint = time.Duration(rto)*time.Millisecond, time.Duration(rpo)*time.Millisecond
		return d, err
	})
}

// scanAll runs a read query and scans every row with scan.
func scanAll[T any](ctx context.Context, s *Store, op, q string, args []any, scan func(*sql.Rows) (T, error)) ([]T, error) {
	rows, err := s.r().query(ctx, q, args...)
	if err != nil {
		return nil, s.translate(op, err)
	}
	defer rows.Close()
	var out []T
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, s.translate(op, err)
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		return nil, s.translate(op, err)
	}
	return out, nil
}
