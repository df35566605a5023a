package sqldb

import (
	"context"
	"errors"
	"strings"

	"github.com/phivault/phivault/internal/audit/index"
	"github.com/phivault/phivault/internal/storage"
)

var _ index.Store = (*Store)(nil)

// This file holds the audit index (table audit_terms, migration
// 0012_audit_followers): blind-index terms of each integrated audit
// event, by leaf index, written by the index follower, and the searches
// on them.

// PutAuditTerms implements index.Store. Rows already stored are
// skipped, so indexing a batch twice is harmless.
func (s *Store) PutAuditTerms(ctx context.Context, rows []index.Row) error {
	if len(rows) == 0 {
		return nil
	}
	return s.Update(ctx, func(stx storage.Tx) error {
		t := stx.(*tx)
		for len(rows) > 0 {
			n := min(len(rows), insertChunk)
			q := multiRow(`INSERT INTO audit_terms (term, leaf) VALUES `, 2, n) + ` ON CONFLICT DO NOTHING`
			args := make([]any, 0, 2*n)
			for _, r := range rows[:n] {
				args = append(args, r.Term, r.Index)
			}
			if _, err := t.exec(ctx, q, args...); err != nil {
				return t.s.translate("index audit", err)
			}
			rows = rows[n:]
		}
		return nil
	})
}

// SearchAudit implements index.Store: it drives the query from the
// first term's index range (term, leaf), newest first.
func (s *Store) SearchAudit(ctx context.Context, q index.Query) ([]index.Hit, error) {
	if q.Limit <= 0 {
		return nil, errors.New("search audit: limit must be positive")
	}
	var (
		b    strings.Builder
		args []any
		pos  = "e.leaf_index"
	)
	if len(q.Terms) > 0 {
		pos = "t0.leaf"
		b.WriteString(`SELECT e.leaf_index, e.recorded_at, e.body FROM audit_terms t0 JOIN audit_events e ON e.leaf_index = t0.leaf WHERE t0.term = ?`)
		args = append(args, q.Terms[0])
		for _, t := range q.Terms[1:] {
			b.WriteString(` AND EXISTS (SELECT 1 FROM audit_terms tn WHERE tn.term = ? AND tn.leaf = t0.leaf)`)
			args = append(args, t)
		}
	} else {
		b.WriteString(`SELECT e.leaf_index, e.recorded_at, e.body FROM audit_events e WHERE e.leaf_index IS NOT NULL`)
	}
	if !q.Since.IsZero() {
		b.WriteString(` AND e.recorded_at >= ?`)
		args = append(args, q.Since.UnixMicro())
	}
	if !q.Until.IsZero() {
		b.WriteString(` AND e.recorded_at < ?`)
		args = append(args, q.Until.UnixMicro())
	}
	if q.Before >= 0 {
		b.WriteString(` AND ` + pos + ` < ?`)
		args = append(args, q.Before)
	}
	b.WriteString(` ORDER BY ` + pos + ` DESC LIMIT ?`)
	args = append(args, q.Limit)
	rows, err := s.r().query(ctx, b.String(), args...)
	if err != nil {
		return nil, s.translate("search audit", err)
	}
	defer rows.Close()
	var out []index.Hit
	for rows.Next() {
		var h index.Hit
		var at int64
		if err := rows.Scan(&h.Index, &at, &h.Rec.Body); err != nil {
			return nil, s.translate("search audit", err)
		}
		h.Rec.Time = fromMicros(at)
		out = append(out, h)
	}
	return out, s.translate("search audit", rows.Err())
}

// AuditByIndex implements index.Store.
func (s *Store) AuditByIndex(ctx context.Context, index int64) (storage.AuditRecord, error) {
	rows, err := s.r().query(ctx, `SELECT recorded_at, body FROM audit_events WHERE leaf_index = ?`, index)
	if err != nil {
		return storage.AuditRecord{}, s.translate("audit by index", err)
	}
	defer rows.Close()
	if !rows.Next() {
		if err := rows.Err(); err != nil {
			return storage.AuditRecord{}, s.translate("audit by index", err)
		}
		return storage.AuditRecord{}, wrapOp("audit by index", storage.ErrNotFound)
	}
	var rec storage.AuditRecord
	var at int64
	if err := rows.Scan(&at, &rec.Body); err != nil {
		return storage.AuditRecord{}, s.translate("audit by index", err)
	}
	rec.Time = fromMicros(at)
	return rec, nil
}
