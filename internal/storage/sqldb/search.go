package sqldb

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/phivault/phivault/internal/ident"
	"github.com/phivault/phivault/internal/storage"
)

// querier is *sql.DB or *sql.Tx.
type querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// search compiles q and runs it (and its count) on db.
func search(ctx context.Context, s *Store, db querier, q storage.Query) (storage.Result, error) {
	if err := checkQuery(q); err != nil {
		return storage.Result{}, err
	}
	res := storage.Result{Total: -1}
	if q.Total {
		b := &builder{dollar: s.d.Dollar}
		cq := q
		b.sql("SELECT COUNT(*) FROM ")
		driven := from(b, &cq)
		b.sql(" WHERE ")
		where(b, cq, driven)
		rows, err := db.QueryContext(ctx, b.String(), b.args...)
		if err != nil {
			return storage.Result{}, s.translate("search count", err)
		}
		for rows.Next() {
			err = rows.Scan(&res.Total)
		}
		if err := firstErr(err, rows.Err(), rows.Close()); err != nil {
			return storage.Result{}, s.translate("search count", err)
		}
	}
	if q.Count == 0 {
		return res, nil
	}
	b := &builder{dollar: s.d.Dollar}
	b.sql(`SELECT r.type, r.id, r.version, r.owner, r.deleted, r.last_updated, v.ciphertext FROM `)
	driven := from(b, &q)
	b.sql(` JOIN resource_versions v ON v.type = r.type AND v.id = r.id AND v.version = r.version WHERE `)
	where(b, q, driven)
	orderBy(b, q.Sort)
	b.sql(" LIMIT ").arg(int64(q.Count)).sql(" OFFSET ").arg(int64(q.Offset))
	rows, err := db.QueryContext(ctx, b.String(), b.args...)
	if err != nil {
		return storage.Result{}, s.translate("search", err)
	}
	vs, err := scanVersions(rows)
	if err != nil {
		return storage.Result{}, s.translate("search", err)
	}
	res.Versions = vs
	return res, nil
}

func firstErr(errs ...error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// checkQuery enforces the storage limits and rejects malformed queries
// before any SQL is built.
func checkQuery(q storage.Query) error {
	if q.Type == "" {
		return fmt.Errorf("search: no type")
	}
	if q.Count < 0 || q.Offset < 0 {
		return fmt.Errorf("search: negative count or offset")
	}
	if len(q.Clauses) > storage.MaxClauses {
		return fmt.Errorf("search: %d clauses, limit %d: %w", len(q.Clauses), storage.MaxClauses, storage.ErrTooComplex)
	}
	if len(q.Sort) > storage.MaxSorts {
		return fmt.Errorf("search: %d sort keys, limit %d: %w", len(q.Sort), storage.MaxSorts, storage.ErrTooComplex)
	}
	var n limits
	for _, cl := range q.Clauses {
		if len(cl.Any) == 0 {
			return fmt.Errorf("search: empty clause")
		}
		for _, c := range cl.Any {
			if err := n.check(c, false); err != nil {
				return err
			}
		}
	}
	conds, values, owners := n.conds, n.values, n.owners
	if conds > storage.MaxConds {
		return fmt.Errorf("search: %d conditions, limit %d: %w", conds, storage.MaxConds, storage.ErrTooComplex)
	}
	if owners > storage.MaxOwners {
		return fmt.Errorf("search: %d owners, limit %d: %w", owners, storage.MaxOwners, storage.ErrTooComplex)
	}
	if values > storage.MaxValues {
		return fmt.Errorf("search: %d values, limit %d: %w", values, storage.MaxValues, storage.ErrTooComplex)
	}
	for _, so := range q.Sort {
		switch so.Key {
		case storage.SortLastUpdated, storage.SortID:
		case storage.SortDate:
			if so.Param == "" {
				return fmt.Errorf("search: date sort without a parameter")
			}
		default:
			return fmt.Errorf("search: unknown sort key %d", so.Key)
		}
	}
	return nil
}

// limits sums what a query asks for, against storage.MaxConds,
// MaxValues and MaxOwners.
type limits struct{ conds, values, owners int }

// check validates c (inside a CondAll when nested) and counts it.
func (n *limits) check(c storage.Cond, nested bool) error {
	n.conds++
	n.values += len(c.Hashes)
	n.owners += len(c.Owners)
	if c.Authz {
		n.owners += len(c.IDs)
	} else {
		n.values += len(c.IDs)
	}
	if nested {
		switch c.Kind {
		case storage.CondHash, storage.CondDate, storage.CondMissing:
		default:
			return fmt.Errorf("search: condition kind %d inside a conjunction", c.Kind)
		}
	}
	switch c.Kind {
	case storage.CondOwner:
	case storage.CondHash, storage.CondMissing:
		if c.Param == "" {
			return fmt.Errorf("search: condition without a parameter")
		}
	case storage.CondDate:
		if c.Param == "" {
			return fmt.Errorf("search: condition without a parameter")
		}
		if !validOp(c.Op) {
			return fmt.Errorf("search: unknown date prefix %q", c.Op)
		}
	case storage.CondLastUpdated:
		if !validOp(c.Op) {
			return fmt.Errorf("search: unknown date prefix %q", c.Op)
		}
	case storage.CondID:
	case storage.CondAll:
		if len(c.All) == 0 {
			return fmt.Errorf("search: empty conjunction")
		}
		for _, a := range c.All {
			if err := n.check(a, true); err != nil {
				return err
			}
		}
	default:
		return fmt.Errorf("search: unknown condition kind %d", c.Kind)
	}
	return nil
}

func validOp(op storage.DateOp) bool {
	switch op {
	case storage.OpEq, storage.OpNe, storage.OpGt, storage.OpLt, storage.OpGe, storage.OpLe,
		storage.OpSa, storage.OpEb, storage.OpAp:
		return true
	}
	return false
}

// from writes the FROM clause for the resources alias r. When the first
// clause is a single positive hash or id condition, the query is driven
// from it: its matching ids are found in the index first and only those
// resources are visited. Otherwise the planner would walk every resource
// of the type in sort order and test each one (SQLite has no statistics
// to know better), which is slow for selective searches on large types.
// Callers put their most selective clause first. from removes the
// driving clause from q.
func from(b *builder, q *storage.Query) (driven bool) {
	if len(q.Clauses) > 0 && len(q.Clauses[0].Any) == 1 {
		c := q.Clauses[0].Any[0]
		switch {
		case c.Kind == storage.CondHash && !c.Negate && len(c.Hashes) > 0:
			b.sql("(SELECT DISTINCT s.id FROM search_index s WHERE s.type = ").arg(q.Type).sql(" AND s.param = ").arg(c.Param).sql(" AND s.h IN ")
			list(b, c.Hashes, func(h []byte) any { return h })
			b.sql(") d JOIN resources r ON r.type = ").arg(q.Type).sql(" AND r.id = d.id")
			q.Clauses = q.Clauses[1:]
			return true
		case c.Kind == storage.CondID && !c.Negate && len(c.IDs) > 0:
			b.sql("resources r")
			return true
		}
	}
	b.sql("resources r")
	return false
}

// where writes the WHERE condition for the resources alias r.
//
// Each index condition is "r.id IN (SELECT s.id FROM search_index s
// WHERE s.type = ? AND s.param = ? AND ...)", the uncorrelated form of
// EXISTS: both planners drive it from the (type, param, h|lo) indexes
// instead of probing every resource of the type. search_index.id is NOT
// NULL, so the negated form NOT IN is exact.
//
// When the query is driven (few candidate resources), the remaining
// conditions are correlated point lookups (EXISTS ... s.id = r.id)
// instead of sets materialised in full.
func where(b *builder, q storage.Query, driven bool) {
	b.sql("r.type = ").arg(q.Type).sql(" AND NOT r.deleted")
	for _, cl := range q.Clauses {
		b.sql(" AND (")
		for i, c := range cl.Any {
			if i > 0 {
				b.sql(" OR ")
			}
			cond(b, q.Type, c, driven)
		}
		b.sql(")")
	}
}

func cond(b *builder, typ string, c storage.Cond, correlated bool) {
	switch c.Kind {
	case storage.CondID:
		switch {
		case len(c.IDs) == 0 && c.Negate:
			b.sql("1 = 1")
		case len(c.IDs) == 0:
			b.sql("1 = 0")
		default:
			b.sql("r.id ")
			if c.Negate {
				b.sql("NOT ")
			}
			b.sql("IN ")
			list(b, c.IDs, func(id string) any { return id })
		}
	case storage.CondOwner:
		switch {
		case len(c.Owners) == 0 && c.Negate:
			b.sql("1 = 1")
		case len(c.Owners) == 0:
			b.sql("1 = 0")
		default:
			b.sql("r.owner ")
			if c.Negate {
				b.sql("NOT ")
			}
			b.sql("IN ")
			list(b, c.Owners, func(o ident.Owner) any { return string(o) })
		}
	case storage.CondLastUpdated:
		if c.Negate {
			b.sql("NOT ")
		}
		b.sql("(")
		dateOp(b, "r.last_updated", "r.last_updated", c)
		b.sql(")")
	case storage.CondMissing:
		// missing=true: no row of Param; :not inverts.
		indexIn(b, typ, c.Param, c.Missing != c.Negate, correlated)
		b.sql(")")
	case storage.CondHash:
		if len(c.Hashes) == 0 {
			if c.Negate {
				b.sql("1 = 1")
			} else {
				b.sql("1 = 0")
			}
			return
		}
		indexIn(b, typ, c.Param, c.Negate, correlated)
		b.sql(" AND s.h IN ")
		list(b, c.Hashes, func(h []byte) any { return h })
		b.sql(")")
	case storage.CondAll:
		if c.Negate {
			b.sql("NOT ")
		}
		b.sql("(")
		for i, a := range c.All {
			if i > 0 {
				b.sql(" AND ")
			}
			cond(b, typ, a, correlated)
		}
		b.sql(")")
	case storage.CondDate:
		// "h IS NULL" selects the partial date index.
		indexIn(b, typ, c.Param, c.Negate, correlated)
		b.sql(" AND s.h IS NULL AND ")
		dateOp(b, "s.lo", "s.hi", c)
		b.sql(")")
	}
}

// indexIn opens "r.id [NOT] IN (SELECT s.id FROM search_index s WHERE
// s.type = ? AND s.param = ?"; the caller adds conditions and ")".
func indexIn(b *builder, typ, param string, negate, correlated bool) {
	if correlated {
		if negate {
			b.sql("NOT ")
		}
		b.sql("EXISTS (SELECT 1 FROM search_index s WHERE s.type = ").arg(typ).sql(" AND s.param = ").arg(param).sql(" AND s.id = r.id")
		return
	}
	b.sql("r.id ")
	if negate {
		b.sql("NOT ")
	}
	b.sql("IN (SELECT s.id FROM search_index s WHERE s.type = ").arg(typ).sql(" AND s.param = ").arg(param)
}

// dateOp writes the FHIR prefix semantics documented on storage.DateOp:
// the stored range [lo, hi] against the search range [c.Lo, c.Hi].
func dateOp(b *builder, lo, hi string, c storage.Cond) {
	switch c.Op {
	case storage.OpEq:
		b.sql(lo + " >= ").arg(c.Lo).sql(" AND " + hi + " <= ").arg(c.Hi)
	case storage.OpNe:
		b.sql("(" + lo + " < ").arg(c.Lo).sql(" OR " + hi + " > ").arg(c.Hi).sql(")")
	case storage.OpGt:
		b.sql(hi + " > ").arg(c.Hi)
	case storage.OpLt:
		b.sql(lo + " < ").arg(c.Lo)
	case storage.OpGe:
		b.sql(hi + " >= ").arg(c.Lo)
	case storage.OpLe:
		b.sql(lo + " <= ").arg(c.Hi)
	case storage.OpSa:
		b.sql(lo + " > ").arg(c.Hi)
	case storage.OpEb:
		b.sql(hi + " < ").arg(c.Lo)
	case storage.OpAp:
		b.sql(lo + " <= ").arg(c.Hi).sql(" AND " + hi + " >= ").arg(c.Lo)
	}
}

// orderBy writes the sort keys and a final r.id tie-breaker (unique
// within the type), so pages never overlap or skip. Missing sort dates
// go last in both directions.
func orderBy(b *builder, sorts []storage.Sort) {
	if len(sorts) == 0 {
		sorts = []storage.Sort{{Key: storage.SortLastUpdated}}
	}
	b.sql(" ORDER BY ")
	hasID := false
	for i, so := range sorts {
		if i > 0 {
			b.sql(", ")
		}
		dir := " ASC"
		if so.Desc {
			dir = " DESC"
		}
		switch so.Key {
		case storage.SortLastUpdated:
			b.sql("r.last_updated" + dir)
		case storage.SortID:
			b.sql("r.id" + dir)
			hasID = true
		case storage.SortDate:
			b.sql("(SELECT MIN(s.lo) FROM search_index s WHERE s.type = r.type AND s.id = r.id AND s.param = ").arg(so.Param).sql(")" + dir + " NULLS LAST")
		}
	}
	if !hasID {
		b.sql(", r.id ASC")
	}
}
