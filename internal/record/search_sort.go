package record

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/phivault/phivault/internal/audit"
	"github.com/phivault/phivault/internal/authz"
	"github.com/phivault/phivault/internal/fhir"
	"github.com/phivault/phivault/internal/storage"
)

// MaxSortMatches bounds the matches a search sorted by a string, token,
// reference, uri or birth-date parameter may have: each is decrypted to
// find its key, on every page (ADR 0038). Above it the search is refused
// as too costly and the client is asked to narrow it.
const MaxSortMatches = 1000

// BundleSortMatches bounds the matches the value-sorted searches of one
// Bundle may order together: each may order MaxSortMatches, and a batch
// of many would otherwise cost one request minutes of decryption.
const BundleSortMatches = 2 * MaxSortMatches

type sortBudgetKey struct{}

// sortBudget is what is left of a request's bound on ordered matches.
type sortBudget struct{ left int }

// withSortBudget bounds the matches the sorted searches run with ctx may
// order together at n.
func withSortBudget(ctx context.Context, n int) context.Context {
	return context.WithValue(ctx, sortBudgetKey{}, &sortBudget{left: n})
}

// sorted is one match of a value-sorted search with its keys.
type sorted struct {
	v    storage.Version
	keys []string // one per _sort key; "" and has[i] false when missing
	has  []bool
	bad  bool // tampered: sorts last, and the page shows an outcome
}

// sortedMatches returns the window [offset, offset+n) of p's matches
// that c may read, ordered by p.valueSort, and their number as Total.
// The keys are computed on each match as c would receive it (masked
// where c's decision masks), so the order never reveals a masked value;
// matches the policies deny are dropped before the order is made, so
// offsets and totals count only what c may see. Only the page's
// resources are returned (and audited by the caller as read): the
// others are read to be ordered, not disclosed.
func (s *Service) sortedMatches(ctx context.Context, c Caller, p plan, offset, n int) (storage.Result, error) {
	q := p.q
	q.Offset, q.Count, q.Total = 0, MaxSortMatches+1, false
	q.Sort = []storage.Sort{{Key: storage.SortID}}
	r, err := s.store.Search(ctx, q)
	if err != nil {
		return storage.Result{}, err
	}
	if len(r.Versions) > MaxSortMatches {
		names := make([]string, len(p.valueSort))
		for i, so := range p.valueSort {
			names[i] = so.Param
		}
		return storage.Result{}, fail(ErrInvalid, "too-costly", fmt.Sprintf(
			"sorting by %s orders the decrypted matches, and this search matches more than %d resources: narrow it (add a parameter such as a name, a patient or a date range) or sort by _id, _lastUpdated or a date",
			strings.Join(names, ","), MaxSortMatches))
	}
	if b, ok := ctx.Value(sortBudgetKey{}).(*sortBudget); ok {
		if len(r.Versions) > b.left {
			return storage.Result{}, fail(ErrInvalid, "too-costly", fmt.Sprintf(
				"the searches of this Bundle sorted by a string, token, reference, uri or birth-date parameter would together order more than %d matches: send them as separate requests, or narrow them", BundleSortMatches))
		}
		b.left -= len(r.Versions)
	}
	all := make([]sorted, 0, len(r.Versions))
	for _, v := range r.Versions {
		body, err := s.open(ctx, v)
		switch {
		case errors.Is(err, ErrGone):
			continue
		case errors.Is(err, ErrTampered):
			all = append(all, sorted{v: v, bad: true})
			continue
		case err != nil:
			return storage.Result{}, err
		}
		d, err := s.check(ctx, c, audit.ActionSearch, v, body)
		if err != nil {
			var e *Error
			if errors.As(err, &e) && StatusCode(e) == statusUnavailable {
				return storage.Result{}, err
			}
			continue
		}
		if d.Mask {
			if body, err = authz.Redact(body); err != nil {
				continue
			}
		}
		res, err := fhir.Decode(bytes.NewReader(body), fhir.Limits{})
		if err != nil {
			continue
		}
		m := sorted{v: v, keys: make([]string, len(p.valueSort)), has: make([]bool, len(p.valueSort))}
		for i, so := range p.valueSort {
			switch so.Param {
			case "_id":
				m.keys[i], m.has[i] = v.ID, true
			case "_lastUpdated":
				m.keys[i], m.has[i] = v.LastUpdated.UTC().Format("2006-01-02T15:04:05.000000"), true
			default:
				m.keys[i], m.has[i] = s.reg.SortKey(res, so)
			}
		}
		all = append(all, m)
	}
	slices.SortStableFunc(all, func(a, b sorted) int {
		if a.bad != b.bad {
			if a.bad {
				return 1
			}
			return -1
		}
		for i, so := range p.valueSort {
			if a.bad {
				break
			}
			// A match without a value sorts last, either way.
			if a.has[i] != b.has[i] {
				if a.has[i] {
					return -1
				}
				return 1
			}
			if c := strings.Compare(a.keys[i], b.keys[i]); c != 0 {
				if so.Desc {
					return -c
				}
				return c
			}
		}
		return strings.Compare(a.v.ID, b.v.ID) // the store's order: stable across pages
	})
	out := storage.Result{Total: int64(len(all))}
	for i := offset; i < len(all) && i < offset+n; i++ {
		out.Versions = append(out.Versions, all[i].v)
	}
	return out, nil
}
