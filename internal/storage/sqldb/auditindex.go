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
			q := multiRow(`INSERT INTO audit_terms (term, leaf, at) VALUES `, 3, n) + ` ON CONFLICT DO NOTHING`
			args := make([]any, 0, 3*n)
			for _, r := range rows[:n] {
				args = append(args, r.Term, r.Index, r.At.UnixMicro())
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
func (s *Store) SearchAudit(ctx context.Context, q index.Query) ([]int64, error) {
	if q.Limit <= 0 || len(q.Terms) == 0 {
		return nil, errors.New("search audit: a term and a positive limit are required")
	}
	var b strings.Builder
	args := []any{q.Terms[0]}
	b.WriteString(`SELECT t0.leaf FROM audit_terms t0 WHERE t0.term = ?`)
	for _, t := range q.Terms[1:] {
		b.WriteString(` AND EXISTS (SELECT 1 FROM audit_terms tn WHERE tn.term = ? AND tn.leaf = t0.leaf)`)
		args = append(args, t)
	}
	if !q.Since.IsZero() {
		b.WriteString(` AND t0.at >= ?`)
		args = append(args, q.Since.UnixMicro())
	}
	if !q.Until.IsZero() {
		b.WriteString(` AND t0.at < ?`)
		args = append(args, q.Until.UnixMicro())
	}
	if q.Before >= 0 {
		b.WriteString(` AND t0.leaf < ?`)
		args = append(args, q.Before)
	}
	b.WriteString(` ORDER BY t0.leaf DESC LIMIT ?`)
	args = append(args, q.Limit)
	rows, err := s.r().query(ctx, b.String(), args...)
	if err != nil {
		return nil, s.translate("search audit", err)
	}
	defer rows.Close()
	var out []int64
	for rows.Next() {
		var i int64
		if err := rows.Scan(&i); err != nil {
			return nil, s.translate("search audit", err)
		}
		out = append(out, i)
	}
	return out, s.translate("search audit", rows.Err())
}
