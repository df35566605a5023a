package record

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"sort"
	"strings"

	"github.com/phivault/phivault/internal/audit"
	"github.com/phivault/phivault/internal/authz"
	"github.com/phivault/phivault/internal/fhir"
	"github.com/phivault/phivault/internal/fhir/search"
	"github.com/phivault/phivault/internal/storage"
)

// SearchOptions tunes one search.
type SearchOptions struct {
	Lenient bool   // Prefer: handling=lenient
	BaseURL string // for fullUrl and links, e.g. https://host/fhir
}

// Page is one page of search results as a searchset Bundle.
type Page struct {
	Bundle []byte
	Count  int // matches on the page (included resources not counted)
}

// plan is a parsed search turned into a storage query.
type plan struct {
	q       storage.Query
	total   bool
	params  []string // parameter names searched (for the audit event; never values)
	ignored []string
	parsed  *search.Query // chains and includes are resolved from it (search_chain.go, search_include.go)

	// valueSort is the _sort of a search ordered by decrypted values
	// (search_sort.go); the store then orders by id.
	valueSort []search.SortSpec
}

// hashInput is the blind-index input for a term of a resource type: the
// type, the index column and the normalised key, unambiguously joined.
func hashInput(typ string, t search.Term) string {
	return typ + "\x00" + t.Param + "\x00" + t.Key
}

// indexRows computes the search-index rows of res.
func (s *Service) indexRows(res fhir.Resource) ([]storage.IndexRow, error) {
	vals, err := s.reg.Extract(res)
	if err != nil {
		return nil, invalid("the resource's search values could not be extracted")
	}
	terms := search.Terms(vals)
	rows := make([]storage.IndexRow, 0, len(terms))
	typ := res.Type()
	for _, t := range terms {
		if t.IsDate {
			rows = append(rows, storage.IndexRow{Param: t.Param, Lo: t.Lo, Hi: t.Hi, IsDate: true})
			continue
		}
		h, err := s.keys.BlindIndex(hashInput(typ, t))
		if err != nil {
			return nil, fmt.Errorf("computing blind index: %w", err)
		}
		rows = append(rows, storage.IndexRow{Param: t.Param, Hash: h})
	}
	return rows, nil
}

// parseSearch parses FHIR search parameters into a storage query.
// Token :in and :not-in are refused: they need the caller to read the
// ValueSet (parseSearchAs).
func (s *Service) parseSearch(typ string, vals url.Values, lenient bool) (plan, error) {
	return s.parseSearchWith(typ, vals, lenient, nil)
}

// parseSearchWith is parseSearch with expand, which turns a :in or
// :not-in predicate into its token terms (valueset.go); nil refuses them.
func (s *Service) parseSearchWith(typ string, vals url.Values, lenient bool, expand func(search.Pred) ([]search.Term, error)) (plan, error) {
	q, err := s.reg.ParseQuery(typ, vals, lenient)
	if err != nil {
		return plan{}, searchError(err)
	}
	return s.planOf(q, expand)
}

// planOf turns a parsed search into a storage query (chains aside:
// resolveChains adds them for a caller); expand as for parseSearchWith.
func (s *Service) planOf(q *search.Query, expand func(search.Pred) ([]search.Term, error)) (plan, error) {
	typ := q.Type
	p := plan{q: storage.Query{Type: typ, Count: q.Count, Total: q.Total == "accurate" || q.Total == "estimate"}, ignored: q.Ignored, parsed: q}
	if q.Summary == "count" {
		p.q.Count, p.q.Total = 0, true
	}
	p.total = p.q.Total
	if len(q.ID) > 0 {
		p.q.Clauses = append(p.q.Clauses, storage.Clause{Any: []storage.Cond{{Kind: storage.CondID, IDs: q.ID}}})
		p.params = append(p.params, "_id")
	}
	for _, d := range q.LastUpdated {
		p.q.Clauses = append(p.q.Clauses, storage.Clause{Any: []storage.Cond{{Kind: storage.CondLastUpdated, Op: storage.DateOp(d.Op), Lo: d.Lo, Hi: d.Hi}}})
		p.params = append(p.params, "_lastUpdated")
	}
	ranks := make([]int, len(p.q.Clauses)) // _id first; _lastUpdated after
	for i := range ranks {
		if i > 0 || len(q.ID) == 0 {
			ranks[i] = 9
		}
	}
	for _, pr := range q.Preds {
		if pr.ValueSet != "" {
			if expand == nil {
				return plan{}, fail(ErrInvalid, "not-supported", "the :in and :not-in modifiers are supported in searches only (not in conditional operations or subscriptions)")
			}
			var err error
			if pr.Terms, err = expand(pr); err != nil {
				return plan{}, err
			}
		}
		cls, err := s.clauses(typ, pr)
		if err != nil {
			return plan{}, err
		}
		for _, cl := range cls {
			p.q.Clauses = append(p.q.Clauses, cl)
			ranks = append(ranks, selectivity(pr))
		}
		name := pr.Param.Code
		if pr.Modifier != "" {
			name += ":" + pr.Modifier
		}
		p.params = append(p.params, name)
	}
	// The store drives the query from the first clause: put the most
	// selective first (a stable sort keeps the rest in request order).
	idx := make([]int, len(p.q.Clauses))
	for i := range idx {
		idx[i] = i
	}
	sort.SliceStable(idx, func(a, b int) bool { return ranks[idx[a]] < ranks[idx[b]] })
	sorted := make([]storage.Clause, len(idx))
	for i, j := range idx {
		sorted[i] = p.q.Clauses[j]
	}
	p.q.Clauses = sorted
	if search.ValueSort(q.Sort) {
		p.valueSort = q.Sort
		p.q.Sort = []storage.Sort{{Key: storage.SortID}}
		return p, nil
	}
	for _, so := range q.Sort {
		switch so.Param {
		case "_id":
			p.q.Sort = append(p.q.Sort, storage.Sort{Key: storage.SortID, Desc: so.Desc})
		case "_lastUpdated":
			p.q.Sort = append(p.q.Sort, storage.Sort{Key: storage.SortLastUpdated, Desc: so.Desc})
		default:
			p.q.Sort = append(p.q.Sort, storage.Sort{Key: storage.SortDate, Param: so.Param, Desc: so.Desc})
		}
	}
	return p, nil
}

// selectivity ranks a predicate by how few resources it usually
// matches: a reference (one patient, one encounter) or an identifier
// narrows most; a status or category least. Lower is more selective.
func selectivity(pr search.Pred) int {
	switch {
	case pr.Negate || pr.Missing != nil:
		return 8
	case pr.Param.Type == search.Reference:
		return 1
	case pr.Param.Identifying():
		return 2
	case pr.Param.Type == search.String:
		return 3
	case pr.Param.Code == "status" || pr.Param.Code == "category" || pr.Param.Code == "gender":
		return 6
	case pr.Param.Type == search.Token:
		return 4
	default:
		return 5
	}
}

// has is the condition "the resource has a value of p" (:missing=false),
// for a parameter with rows of its own or a composite over the resource
// itself (both its parameters); see missingClauses for a combo.
func has(p *search.Param) storage.Cond {
	if a, b, ok := p.Pair(); ok {
		return storage.Cond{Kind: storage.CondAll, All: []storage.Cond{has(a), has(b)}}
	}
	return storage.Cond{Kind: storage.CondMissing, Param: p.Code}
}

// missingClauses are the clauses of p:missing=missing. A combo has a
// value when one of its parts has: missing=false is one clause of
// alternatives, missing=true one clause per part ("none has").
func missingClauses(p *search.Param, missing bool) []storage.Clause {
	parts := p.Union()
	if parts == nil {
		parts = []*search.Param{p}
	}
	var some storage.Clause
	var none []storage.Clause
	for _, u := range parts {
		c := has(u)
		some.Any = append(some.Any, c)
		if c.Kind == storage.CondMissing {
			c.Missing = true
		} else {
			c.Negate = true
		}
		none = append(none, storage.Clause{Any: []storage.Cond{c}})
	}
	if missing {
		return none
	}
	return []storage.Clause{some}
}

// clauses turns one predicate into storage clauses (ANDed): one
// disjunction of conditions, or, for :missing=true on a combo
// composite, one per part.
func (s *Service) clauses(typ string, pr search.Pred) ([]storage.Clause, error) {
	if pr.Missing != nil {
		return missingClauses(pr.Param, *pr.Missing), nil
	}
	cl, err := s.clause(typ, pr)
	if err != nil {
		return nil, err
	}
	return []storage.Clause{cl}, nil
}

// hashConds returns one condition per index column of ts, each holding
// the hashes of its terms (sorted by column).
func (s *Service) hashConds(typ string, ts []search.Term, negate bool) ([]storage.Cond, error) {
	byCol := map[string][][]byte{}
	var cols []string
	for _, t := range ts {
		h, err := s.keys.BlindIndex(hashInput(typ, t))
		if err != nil {
			return nil, fmt.Errorf("computing blind index: %w", err)
		}
		if _, ok := byCol[t.Param]; !ok {
			cols = append(cols, t.Param)
		}
		byCol[t.Param] = append(byCol[t.Param], h)
	}
	sort.Strings(cols)
	out := make([]storage.Cond, 0, len(cols))
	for _, c := range cols {
		out = append(out, storage.Cond{Kind: storage.CondHash, Param: c, Hashes: byCol[c], Negate: negate})
	}
	return out, nil
}

// clause turns one predicate (not :missing) into a disjunction of
// storage conditions.
func (s *Service) clause(typ string, pr search.Pred) (storage.Clause, error) {
	var cl storage.Clause
	switch {
	case len(pr.Dates) > 0:
		for _, d := range pr.Dates {
			cl.Any = append(cl.Any, storage.Cond{Kind: storage.CondDate, Param: pr.Param.Code, Op: storage.DateOp(d.Op), Lo: d.Lo, Hi: d.Hi, Negate: pr.Negate})
		}
	default:
		// One condition per index column, holding every alternative's
		// hash: a negated predicate then means "none of these".
		var err error
		if cl.Any, err = s.hashConds(typ, pr.Terms, pr.Negate); err != nil {
			return cl, err
		}
		if len(pr.Pairs) > 0 && pr.Negate {
			return cl, fmt.Errorf("search: a negated composite pair")
		}
		// A composite over the resource itself: per alternative, a
		// conjunction of its code and value conditions.
		for _, p := range pr.Pairs {
			first, err := s.hashConds(typ, p.First, false)
			if err != nil {
				return cl, err
			}
			second, err := s.hashConds(typ, p.Second, false)
			if err != nil {
				return cl, err
			}
			if len(first) != 1 || len(second) != 1 {
				return cl, fmt.Errorf("search: a composite pair side spans %d and %d index columns", len(first), len(second))
			}
			cl.Any = append(cl.Any, storage.Cond{Kind: storage.CondAll, All: []storage.Cond{first[0], second[0]}})
		}
	}
	if len(cl.Any) == 0 {
		return cl, invalid("a search parameter has no value")
	}
	return cl, nil
}

func searchError(err error) error {
	code := "invalid"
	switch {
	case errors.Is(err, search.ErrUnknownParam):
		code = "not-supported"
	case errors.Is(err, search.ErrUnsupported):
		code = "not-supported"
	case errors.Is(err, search.ErrTooComplex):
		code = "too-costly"
	}
	// The search package guarantees its messages name parameters, never values.
	return failCause(ErrInvalid, code, err.Error(), err)
}

// Search runs a FHIR search and returns one page as a searchset Bundle.
// A request carrying _page continues an earlier search: the cursor
// holds the original parameters, sealed, so next links show no search
// values.
func (s *Service) Search(ctx context.Context, c Caller, typ string, vals url.Values, opt SearchOptions) (Page, error) {
	offset := 0
	if tok := vals.Get("_page"); tok != "" {
		cur, err := s.openCursor("search", tok)
		if err != nil {
			return Page{}, err
		}
		if cur.Type != typ {
			return Page{}, invalid("the paging cursor belongs to another search")
		}
		vals, offset = cur.Query, cur.Offset
	}
	p, err := s.parseSearchAs(ctx, c, typ, vals, opt.Lenient)
	if err != nil {
		return Page{}, err
	}
	sub, err := subsetOf(vals)
	if err != nil {
		return Page{}, err
	}
	// Chains and _has become conditions on ids found by searches of the
	// same caller, narrowed like this one (search_chain.go).
	if err := s.resolveChains(ctx, c, &p); err != nil {
		return Page{}, err
	}
	// Authorization narrowing joins the query itself (after the planner
	// ordered the caller's clauses): totals, paging and predicates only
	// ever see what the caller may see.
	f, err := s.narrow(ctx, c, s.store, &p.q)
	if err != nil {
		return Page{}, s.recordDenial(ctx, s.denial(c, audit.ActionSearch, storage.Version{Type: typ}, authz.Decision{Policies: []string{"undecidable"}}, err))
	}
	count := p.q.Count
	p.q.Offset = offset
	p.q.Count = count + 1 // one more tells whether there is a next page
	// _count=0 asks for the total only (R4 §3.1.1.5.7).
	if count == 0 {
		p.q.Count = 0
		p.q.Total = true
		p.total = true
	}
	var r storage.Result
	if len(p.valueSort) > 0 && count > 0 {
		// Sorted by values the store holds only as keyed hashes: every
		// match the caller may read is decrypted and ordered here, and
		// the page is cut from that order (search_sort.go).
		r, err = s.sortedMatches(ctx, c, p, offset, count+1)
		p.total = true
	} else {
		r, err = s.store.Search(ctx, p.q)
	}
	if err != nil {
		if errors.Is(err, storage.ErrTooComplex) {
			return Page{}, failCause(ErrInvalid, "too-costly", "the search is too complex", err)
		}
		return Page{}, storageError(err)
	}
	more := count > 0 && len(r.Versions) > count
	if more {
		r.Versions = r.Versions[:count]
	}
	type ent = searchEntry
	base := s.event(c, audit.ActionSearch)
	base.Query = typ + "?" + strings.Join(p.params, "&")
	base.Policies = f.Policies
	if f.Nothing() {
		base.Outcome = audit.OutcomeDenied
	}
	evs := newEvents(base)
	entries := make([]ent, 0, len(r.Versions))
	var given []givenRes // the matches as the caller got them: what includes follow
	for _, v := range r.Versions {
		body, err := s.open(ctx, v)
		if err != nil {
			if errors.Is(err, ErrGone) {
				continue // erased between the query and the read
			}
			if errors.Is(err, ErrTampered) {
				entries = append(entries, ent{Resource: s.tamperedOutcome(v), Search: map[string]string{"mode": "outcome"}})
				continue
			}
			return Page{}, err
		}
		// Each match is decided again on its own labels (defence in
		// depth: the filter already excluded what the policies deny).
		d, err := s.check(ctx, c, audit.ActionSearch, v, body)
		if err != nil {
			var e *Error
			if errors.As(err, &e) && StatusCode(e) == statusUnavailable {
				return Page{}, err
			}
			continue
		}
		if d.Mask {
			if body, err = authz.Redact(body); err != nil {
				continue
			}
		}
		// Includes follow the references of the whole (masked) match,
		// whatever _elements or _summary leave of it.
		given = append(given, givenRes{v: v, body: body})
		if body, err = s.subsetBody(sub, body); err != nil { // after masking: it only removes
			return Page{}, err
		}
		entries = append(entries, ent{FullURL: opt.BaseURL + "/" + v.Type + "/" + v.ID, Resource: body, Search: map[string]string{"mode": "match"}})
		evs.add(d, entityRef(v.Type, v.ID, v.Version), s.eventPatients(v.Owner))
	}
	matches := len(entries)
	// Included resources ride with the page, each read like a match
	// (search_include.go).
	inc, err := s.include(ctx, c, p.parsed, given, evs, opt.BaseURL)
	if err != nil {
		return Page{}, err
	}
	entries = append(entries, inc...)
	// Links carry the search sealed in an opaque cursor: search values
	// can be PHI and must not travel in URLs, proxies or logs.
	self := opt.BaseURL + "/" + typ
	clean := url.Values{}
	for k, v := range vals {
		if k != "_page" {
			clean[k] = v
		}
	}
	pageLink := func(rel string, off int) (map[string]string, error) {
		tok, err := s.sealCursor("search", cursor{Type: typ, Offset: off, Query: clean})
		if err != nil {
			return nil, err
		}
		return map[string]string{"relation": rel, "url": self + "?_page=" + url.QueryEscape(tok)}, nil
	}
	selfLink, err := pageLink("self", offset)
	if err != nil {
		return Page{}, err
	}
	links := []map[string]string{selfLink}
	if more {
		next, err := pageLink("next", offset+count)
		if err != nil {
			return Page{}, err
		}
		links = append(links, next)
	}
	if err := s.recordReads(ctx, evs.list()...); err != nil {
		return Page{}, err
	}
	bundle := map[string]any{"resourceType": "Bundle", "id": s.newID(), "type": "searchset", "link": links, "entry": entries}
	if p.total {
		bundle["total"] = r.Total
	} else if offset == 0 && !more {
		bundle["total"] = matches
	}
	if len(p.ignored) > 0 {
		oo, err := ignoredOutcome(p.ignored)
		if err != nil {
			return Page{}, err
		}
		bundle["entry"] = append(entries, ent{Resource: oo, Search: map[string]string{"mode": "outcome"}})
	}
	b, err := json.Marshal(bundle)
	return Page{Bundle: b, Count: matches}, err
}
