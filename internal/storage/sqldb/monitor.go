package sqldb

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/phivault/phivault/internal/storage"
)

// Privacy and intrusion monitoring (migration 0033, ADR 0046): alerts,
// notes, suppression rules, ingest runs and their sealed data, cursors.
// Every PHI-bearing column arrives sealed and every reference as a MAC;
// the audited changes are written by internal/monitor/alerts through the
// unit of work (storage.MonitorTx).

var (
	_ storage.MonitorTx     = (*tx)(nil)
	_ storage.MonitorReader = (*Store)(nil)
)

const alertColumns = `id, dedup, source, category, severity, score, status, suppressed, assignee, created, updated, first_at, last_at, body`

// MonitorAlerts implements storage.MonitorReader.
func (s *Store) MonitorAlerts(ctx context.Context, f storage.MonitorFilter) ([]storage.MonitorAlert, error) {
	const op = "monitor alerts"
	limit := f.Limit
	if limit <= 0 || limit > storage.MaxMonitorAlerts {
		limit = storage.MaxMonitorAlerts
	}
	var where []string
	var args []any
	if !f.Since.IsZero() {
		where, args = append(where, "updated >= ?"), append(args, f.Since.UnixMicro())
	}
	if f.Status != "" {
		where, args = append(where, "status = ?"), append(args, f.Status)
	}
	if f.Source != "" {
		where, args = append(where, "source = ?"), append(args, f.Source)
	}
	if f.MinScore > 0 {
		where, args = append(where, "score >= ?"), append(args, f.MinScore)
	}
	if !f.Suppressed {
		where = append(where, "suppressed = ''")
	}
	q := `SELECT ` + alertColumns + ` FROM monitor_alerts`
	if len(where) > 0 {
		q += ` WHERE ` + strings.Join(where, " AND ")
	}
	q += ` ORDER BY score DESC, id LIMIT ?`
	args = append(args, limit)
	out, err := queryAlerts(ctx, s.r(), q, args...)
	if err != nil {
		return nil, s.translate(op, err)
	}
	if err := alertPatients(ctx, s.r(), out); err != nil {
		return nil, s.translate(op, err)
	}
	return out, nil
}

// MonitorAlert implements storage.MonitorReader.
func (s *Store) MonitorAlert(ctx context.Context, id string) (storage.MonitorAlert, error) {
	return oneAlert(ctx, s.r(), "monitor alert", `SELECT `+alertColumns+` FROM monitor_alerts WHERE id = ?`, id)
}

// MonitorAlertsOfPatient implements storage.MonitorReader.
func (s *Store) MonitorAlertsOfPatient(ctx context.Context, patient []byte, status string) ([]storage.MonitorAlert, error) {
	const op = "monitor alerts of patient"
	out, err := queryAlerts(ctx, s.r(), `SELECT `+prefixed("a.", alertColumns)+` FROM monitor_alerts a
		JOIN monitor_alert_patients p ON p.alert = a.id WHERE p.patient = ? AND a.status = ? ORDER BY a.created, a.id LIMIT ?`,
		patient, status, storage.MaxMonitorRows)
	if err != nil {
		return nil, s.translate(op, err)
	}
	if err := alertPatients(ctx, s.r(), out); err != nil {
		return nil, s.translate(op, err)
	}
	return out, nil
}

// MonitorAlertByDedup implements storage.MonitorReader.
func (s *Store) MonitorAlertByDedup(ctx context.Context, dedup []byte) (storage.MonitorAlert, error) {
	return oneAlert(ctx, s.r(), "monitor alert by key", `SELECT `+alertColumns+` FROM monitor_alerts WHERE dedup = ?`, dedup)
}

// MonitorAlertByDedup implements storage.MonitorTx.
func (t *tx) MonitorAlertByDedup(ctx context.Context, dedup []byte) (storage.MonitorAlert, error) {
	return oneAlert(ctx, t, "monitor alert by key", `SELECT `+alertColumns+` FROM monitor_alerts WHERE dedup = ?`, dedup)
}

// PutMonitorAlert implements storage.MonitorTx.
func (t *tx) PutMonitorAlert(ctx context.Context, a storage.MonitorAlert) error {
	const op = "put monitor alert"
	if a.ID == "" || len(a.Dedup) == 0 || len(a.Body) == 0 {
		return errors.New("put monitor alert: empty id, key or body")
	}
	status := a.Status
	if status == "" {
		status = storage.AlertOpen
	}
	res, err := t.exec(ctx, `UPDATE monitor_alerts SET dedup = ?, source = ?, category = ?, severity = ?, score = ?, status = ?,
		suppressed = ?, assignee = ?, created = ?, updated = ?, first_at = ?, last_at = ?, body = ? WHERE id = ?`,
		a.Dedup, a.Source, a.Category, a.Severity, a.Score, status, a.Suppressed, a.Assignee,
		a.Created.UnixMicro(), a.Updated.UnixMicro(), a.First.UnixMicro(), a.Last.UnixMicro(), a.Body, a.ID)
	if err != nil {
		return t.s.translate(op, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return t.s.translate(op, err)
	}
	if n == 0 {
		if _, err := t.exec(ctx, `INSERT INTO monitor_alerts (`+alertColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			a.ID, a.Dedup, a.Source, a.Category, a.Severity, a.Score, status, a.Suppressed, a.Assignee,
			a.Created.UnixMicro(), a.Updated.UnixMicro(), a.First.UnixMicro(), a.Last.UnixMicro(), a.Body); err != nil {
			return t.s.translate(op, err)
		}
	} else if _, err := t.exec(ctx, `DELETE FROM monitor_alert_patients WHERE alert = ?`, a.ID); err != nil {
		return t.s.translate(op, err)
	}
	seen := map[string]bool{}
	for _, p := range a.Patients {
		if len(p) == 0 || seen[string(p)] {
			continue
		}
		seen[string(p)] = true
		if _, err := t.exec(ctx, `INSERT INTO monitor_alert_patients (alert, patient) VALUES (?, ?)`, a.ID, p); err != nil {
			return t.s.translate(op, err)
		}
	}
	return nil
}

// SetMonitorAlertStatus implements storage.MonitorTx.
func (t *tx) SetMonitorAlertStatus(ctx context.Context, id, status string, at time.Time) error {
	switch status {
	case storage.AlertOpen, storage.AlertConfirmed, storage.AlertFalsePositive, storage.AlertNeedsInterview:
	default:
		return errors.New("set monitor alert status: unknown status")
	}
	return t.updateAlert(ctx, "set monitor alert status", `UPDATE monitor_alerts SET status = ?, updated = ? WHERE id = ?`, status, at.UnixMicro(), id)
}

// SetMonitorAlertAssignee implements storage.MonitorTx.
func (t *tx) SetMonitorAlertAssignee(ctx context.Context, id, assignee string, at time.Time) error {
	return t.updateAlert(ctx, "assign monitor alert", `UPDATE monitor_alerts SET assignee = ?, updated = ? WHERE id = ?`, assignee, at.UnixMicro(), id)
}

func (t *tx) updateAlert(ctx context.Context, op, q string, args ...any) error {
	res, err := t.exec(ctx, q, args...)
	if err != nil {
		return t.s.translate(op, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return t.s.translate(op, err)
	}
	if n == 0 {
		return wrapOp(op, storage.ErrNotFound)
	}
	return nil
}

// InsertMonitorNote implements storage.MonitorTx.
func (t *tx) InsertMonitorNote(ctx context.Context, n storage.MonitorNote) error {
	const op = "add monitor note"
	if len(n.Body) == 0 {
		return errors.New("add monitor note: empty body")
	}
	ok, err := exists(ctx, t, `SELECT 1 FROM monitor_alerts WHERE id = ?`, n.Alert)
	if err != nil {
		return t.s.translate(op, err)
	}
	if !ok {
		return wrapOp(op, storage.ErrNotFound)
	}
	_, err = t.exec(ctx, `INSERT INTO monitor_notes (id, alert, author, created, body) VALUES (?, ?, ?, ?, ?)`,
		n.ID, n.Alert, n.Author, n.Created.UnixMicro(), n.Body)
	return t.s.translate(op, err)
}

// MonitorNotes implements storage.MonitorReader.
func (s *Store) MonitorNotes(ctx context.Context, alert string) ([]storage.MonitorNote, error) {
	const op = "monitor notes"
	rows, err := s.r().query(ctx, `SELECT id, alert, author, created, body FROM monitor_notes WHERE alert = ? ORDER BY created, id LIMIT ?`,
		alert, storage.MaxMonitorRows)
	if err != nil {
		return nil, s.translate(op, err)
	}
	defer rows.Close()
	var out []storage.MonitorNote
	for rows.Next() {
		var n storage.MonitorNote
		var created int64
		if err := rows.Scan(&n.ID, &n.Alert, &n.Author, &created, &n.Body); err != nil {
			return nil, s.translate(op, err)
		}
		n.Created = fromMicros(created)
		out = append(out, n)
	}
	return out, s.translate(op, rows.Err())
}

// InsertMonitorSuppression implements storage.MonitorTx.
func (t *tx) InsertMonitorSuppression(ctx context.Context, r storage.MonitorSuppression) error {
	if len(r.Body) == 0 {
		return errors.New("add suppression rule: empty body")
	}
	_, err := t.exec(ctx, `INSERT INTO monitor_suppressions (id, source, user_mac, patient, category, author, created, alert, body)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`, r.ID, r.Source, nullBytes(nonEmpty(r.User)), nullBytes(nonEmpty(r.Patient)),
		r.Category, r.Author, r.Created.UnixMicro(), r.Alert, r.Body)
	return t.s.translate("add suppression rule", err)
}

// MonitorSuppressions implements storage.MonitorReader.
func (s *Store) MonitorSuppressions(ctx context.Context, source string) ([]storage.MonitorSuppression, error) {
	const op = "suppression rules"
	rows, err := s.r().query(ctx, `SELECT id, source, user_mac, patient, category, author, created, alert, body
		FROM monitor_suppressions WHERE source = ? ORDER BY created, id LIMIT ?`, source, storage.MaxMonitorRows)
	if err != nil {
		return nil, s.translate(op, err)
	}
	defer rows.Close()
	var out []storage.MonitorSuppression
	for rows.Next() {
		var r storage.MonitorSuppression
		var created int64
		if err := rows.Scan(&r.ID, &r.Source, &r.User, &r.Patient, &r.Category, &r.Author, &created, &r.Alert, &r.Body); err != nil {
			return nil, s.translate(op, err)
		}
		r.Created = fromMicros(created)
		out = append(out, r)
	}
	return out, s.translate(op, rows.Err())
}

// InsertMonitorRun implements storage.MonitorTx.
func (t *tx) InsertMonitorRun(ctx context.Context, r storage.MonitorRun) error {
	state := r.State
	if state == "" {
		state = "running"
	}
	_, err := t.exec(ctx, `INSERT INTO monitor_runs (id, source, actor, started, finished, state, events, alerts, suppressed, bytes)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, r.ID, r.Source, r.Actor, r.Started.UnixMicro(), micros(r.Finished), state,
		r.Events, r.Alerts, r.Suppressed, r.Bytes)
	return t.s.translate("add monitor run", err)
}

// FinishMonitorRun implements storage.MonitorTx.
func (t *tx) FinishMonitorRun(ctx context.Context, r storage.MonitorRun) error {
	return t.updateAlert(ctx, "finish monitor run", `UPDATE monitor_runs SET finished = ?, state = ?, events = ?, alerts = ?, suppressed = ?, bytes = ?
		WHERE id = ?`, micros(r.Finished), r.State, r.Events, r.Alerts, r.Suppressed, r.Bytes, r.ID)
}

// MonitorRuns implements storage.MonitorReader.
func (s *Store) MonitorRuns(ctx context.Context, limit int) ([]storage.MonitorRun, error) {
	const op = "monitor runs"
	if limit <= 0 || limit > storage.MaxMonitorRows {
		limit = storage.MaxMonitorRows
	}
	rows, err := s.r().query(ctx, `SELECT id, source, actor, started, finished, state, events, alerts, suppressed, bytes
		FROM monitor_runs ORDER BY started DESC, id LIMIT ?`, limit)
	if err != nil {
		return nil, s.translate(op, err)
	}
	defer rows.Close()
	var out []storage.MonitorRun
	for rows.Next() {
		var r storage.MonitorRun
		var started, finished int64
		if err := rows.Scan(&r.ID, &r.Source, &r.Actor, &started, &finished, &r.State, &r.Events, &r.Alerts, &r.Suppressed, &r.Bytes); err != nil {
			return nil, s.translate(op, err)
		}
		r.Started = fromMicros(started)
		if finished != 0 {
			r.Finished = fromMicros(finished)
		}
		out = append(out, r)
	}
	return out, s.translate(op, rows.Err())
}

// PutMonitorChunk implements storage.MonitorTx.
func (t *tx) PutMonitorChunk(ctx context.Context, c storage.MonitorChunk) error {
	if len(c.Body) == 0 {
		return errors.New("put monitor chunk: empty body")
	}
	_, err := t.exec(ctx, `INSERT INTO monitor_data (run, seq, kind, body) VALUES (?, ?, ?, ?)`, c.Run, c.Seq, c.Kind, c.Body)
	return t.s.translate("put monitor chunk", err)
}

// MonitorChunks implements storage.MonitorReader. It reads a page of
// chunks at a time, so fn may run other queries.
func (s *Store) MonitorChunks(ctx context.Context, run string, fn func(storage.MonitorChunk) error) error {
	const op = "monitor chunks"
	const page = 64
	next := int64(-1 << 62)
	for {
		rows, err := s.r().query(ctx, `SELECT run, seq, kind, body FROM monitor_data WHERE run = ? AND seq > ? ORDER BY seq LIMIT ?`, run, next, page)
		if err != nil {
			return s.translate(op, err)
		}
		var got []storage.MonitorChunk
		for rows.Next() {
			var c storage.MonitorChunk
			if err := rows.Scan(&c.Run, &c.Seq, &c.Kind, &c.Body); err != nil {
				rows.Close()
				return s.translate(op, err)
			}
			got = append(got, c)
		}
		err = rows.Err()
		rows.Close()
		if err != nil {
			return s.translate(op, err)
		}
		for _, c := range got {
			if err := fn(c); err != nil {
				return err
			}
			next = c.Seq
		}
		if len(got) < page {
			return nil
		}
	}
}

// SetMonitorCursor implements storage.MonitorTx.
func (t *tx) SetMonitorCursor(ctx context.Context, name string, pos int64, at time.Time) error {
	const op = "set monitor cursor"
	res, err := t.exec(ctx, `UPDATE monitor_cursors SET pos = ?, updated = ? WHERE name = ?`, pos, at.UnixMicro(), name)
	if err != nil {
		return t.s.translate(op, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return t.s.translate(op, err)
	} else if n == 1 {
		return nil
	}
	_, err = t.exec(ctx, `INSERT INTO monitor_cursors (name, pos, updated) VALUES (?, ?, ?)`, name, pos, at.UnixMicro())
	return t.s.translate(op, err)
}

// MonitorCursor implements storage.MonitorReader.
func (s *Store) MonitorCursor(ctx context.Context, name string) (int64, error) {
	const op = "monitor cursor"
	rows, err := s.r().query(ctx, `SELECT pos FROM monitor_cursors WHERE name = ?`, name)
	if err != nil {
		return 0, s.translate(op, err)
	}
	defer rows.Close()
	var pos int64
	if rows.Next() {
		if err := rows.Scan(&pos); err != nil {
			return 0, s.translate(op, err)
		}
	}
	return pos, s.translate(op, rows.Err())
}

func queryAlerts(ctx context.Context, r runner, q string, args ...any) ([]storage.MonitorAlert, error) {
	rows, err := r.query(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []storage.MonitorAlert
	for rows.Next() {
		var a storage.MonitorAlert
		var created, updated, first, last int64
		if err := rows.Scan(&a.ID, &a.Dedup, &a.Source, &a.Category, &a.Severity, &a.Score, &a.Status, &a.Suppressed, &a.Assignee,
			&created, &updated, &first, &last, &a.Body); err != nil {
			return nil, err
		}
		a.Created, a.Updated, a.First, a.Last = fromMicros(created), fromMicros(updated), fromMicros(first), fromMicros(last)
		out = append(out, a)
	}
	return out, rows.Err()
}

func oneAlert(ctx context.Context, r runner, op, q string, args ...any) (storage.MonitorAlert, error) {
	s := r.store()
	out, err := queryAlerts(ctx, r, q, args...)
	if err != nil {
		return storage.MonitorAlert{}, s.translate(op, err)
	}
	if len(out) == 0 {
		return storage.MonitorAlert{}, wrapOp(op, storage.ErrNotFound)
	}
	if err := alertPatients(ctx, r, out[:1]); err != nil {
		return storage.MonitorAlert{}, s.translate(op, err)
	}
	return out[0], nil
}

// alertPatients fills the patients of as, a bounded batch at a time.
func alertPatients(ctx context.Context, r runner, as []storage.MonitorAlert) error {
	const batch = 200
	for lo := 0; lo < len(as); lo += batch {
		part := as[lo:min(lo+batch, len(as))]
		byID := make(map[string]int, len(part))
		args := make([]any, 0, len(part))
		for i, a := range part {
			byID[a.ID] = lo + i
			args = append(args, a.ID)
		}
		rows, err := r.query(ctx, `SELECT alert, patient FROM monitor_alert_patients WHERE alert IN (?`+
			strings.Repeat(", ?", len(part)-1)+`) ORDER BY alert, patient`, args...)
		if err != nil {
			return err
		}
		for rows.Next() {
			var id string
			var p []byte
			if err := rows.Scan(&id, &p); err != nil {
				rows.Close()
				return err
			}
			if i, ok := byID[id]; ok {
				as[i].Patients = append(as[i].Patients, p)
			}
		}
		err = rows.Err()
		rows.Close()
		if err != nil {
			return err
		}
	}
	return nil
}

func exists(ctx context.Context, r runner, q string, args ...any) (bool, error) {
	rows, err := r.query(ctx, q, args...)
	if err != nil {
		return false, err
	}
	defer rows.Close()
	ok := rows.Next()
	return ok, rows.Err()
}

// prefixed qualifies each column of a column list with p.
func prefixed(p, cols string) string {
	parts := strings.Split(cols, ", ")
	return p + strings.Join(parts, ", "+p)
}
