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
	"github.com/phivault/phivault/internal/fhir/search"
	"github.com/phivault/phivault/internal/storage"
)

// MaxChainMatches bounds what one chained parameter or _has may find:
// the resources its inner search matches (each decrypted and decided
// for the caller) and the ids it hands to the outer query. Beyond it
// the search is refused as too costly rather than answered from a
// truncated set.
const MaxChainMatches = 500

// givenRes is a resource a search gave (or, for a chain, found for) its
// caller: decided, and masked as the caller sees it.
type givenRes struct {
	v    storage.Version
	body []byte
}

// resolveChains turns the chains of p's parsed search into clauses of
// p's query, placed first (an id or reference list is the most
// selective condition the store can drive from).
//
// Each chain runs its inner searches as searches of c: narrowed by c's
// authorization filter, every match decrypted and decided on its own
// labels, and audited. A resource c may not see therefore never links a
// match: neither as the target of a chain nor as the source of a _has.
func (s *Service) resolveChains(ctx context.Context, c Caller, p *plan) error {
	if len(p.parsed.Chains) == 0 {
		return nil
	}
	cls, names, err := s.chainClauses(ctx, c, p.parsed)
	if err != nil {
		return err
	}
	p.q.Clauses = append(cls, p.q.Clauses...)
	p.params = append(p.params, names...)
	return nil
}

// chainClauses resolves the chains of q (a search of q.Type) into
// clauses, one per chain, and the chains' names for the audit trail.
func (s *Service) chainClauses(ctx context.Context, c Caller, q *search.Query) ([]storage.Clause, []string, error) {
	var cls []storage.Clause
	var names []string
	for _, ch := range q.Chains {
		via := q.Type + "?" + ch.Name
		var cl storage.Clause
		if ch.Reverse {
			found, err := s.innerSearch(ctx, c, ch.Inner[0], via)
			if err != nil {
				return nil, nil, err
			}
			ids, err := s.referrers(found, ch.Param, q.Type)
			if err != nil {
				return nil, nil, err
			}
			cl.Any = []storage.Cond{{Kind: storage.CondID, IDs: ids}}
		} else {
			var hashes [][]byte
			for _, in := range ch.Inner {
				found, err := s.innerSearch(ctx, c, in, via)
				if err != nil {
					return nil, nil, err
				}
				for _, f := range found {
					h, err := s.keys.BlindIndex(hashInput(q.Type, search.Term{Param: ch.Param.Code, Key: f.v.Type + "/" + f.v.ID}))
					if err != nil {
						return nil, nil, fmt.Errorf("computing blind index: %w", err)
					}
					hashes = append(hashes, h)
				}
			}
			if len(hashes) > MaxChainMatches {
				return nil, nil, chainTooCostly(len(hashes))
			}
			if len(hashes) == 0 {
				// Nothing to refer to: an empty id list matches nothing.
				cl.Any = []storage.Cond{{Kind: storage.CondID}}
			} else {
				cl.Any = []storage.Cond{{Kind: storage.CondHash, Param: ch.Param.Code, Hashes: hashes}}
			}
		}
		cls = append(cls, cl)
		names = append(names, ch.Name)
	}
	return cls, names, nil
}

// referrers returns the distinct ids of the resources of type typ that
// the references param finds in found (bodies as the caller may see
// them) point at, sorted.
func (s *Service) referrers(found []givenRes, param *search.Param, typ string) ([]string, error) {
	set := map[string]bool{}
	for _, f := range found {
		res, err := fhir.Decode(bytes.NewReader(f.body), fhir.Limits{})
		if err != nil {
			return nil, fmt.Errorf("decoding %s/%s for _has: %w", f.v.Type, f.v.ID, err)
		}
		for _, ref := range s.reg.References(param, res) {
			if t, id, _ := strings.Cut(ref, "/"); t == typ {
				set[id] = true
			}
		}
	}
	if len(set) > MaxChainMatches {
		return nil, chainTooCostly(len(set))
	}
	ids := make([]string, 0, len(set))
	for id := range set {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids, nil
}

func chainTooCostly(n int) error {
	return failCause(ErrInvalid, "too-costly",
		fmt.Sprintf("a chained parameter or _has finds more than %d resources; make it more selective", MaxChainMatches),
		fmt.Errorf("chain: %d ids", n))
}

// innerSearch runs the inner search in of a chain as a search of c (via
// names the outer parameter for the audit trail) and returns what it
// found that c may see: at most MaxChainMatches resources, or an error
// asking for a more selective chain. Its accesses are audited as a
// search whose query names both.
func (s *Service) innerSearch(ctx context.Context, c Caller, in *search.Query, via string) ([]givenRes, error) {
	p, err := s.planOf(in, nil) // :in inside a chain is refused
	if err != nil {
		return nil, err
	}
	if len(in.Chains) > 0 { // a second level
		cls, names, err := s.chainClauses(ctx, c, in)
		if err != nil {
			return nil, err
		}
		p.q.Clauses = append(cls, p.q.Clauses...)
		p.params = append(p.params, names...)
	}
	p.q.Count, p.q.Offset, p.q.Total = MaxChainMatches+1, 0, false
	p.q.Sort = []storage.Sort{{Key: storage.SortID}}
	f, err := s.narrow(ctx, c, s.store, &p.q)
	if err != nil {
		return nil, s.recordDenial(ctx, s.denial(c, audit.ActionSearch, storage.Version{Type: in.Type}, authz.Decision{Policies: []string{"undecidable"}}, err))
	}
	r, err := s.store.Search(ctx, p.q)
	if err != nil {
		if errors.Is(err, storage.ErrTooComplex) {
			return nil, failCause(ErrInvalid, "too-costly", "the search is too complex", err)
		}
		return nil, storageError(err)
	}
	if len(r.Versions) > MaxChainMatches {
		return nil, chainTooCostly(len(r.Versions))
	}
	base := s.event(c, audit.ActionSearch)
	base.Query = in.Type + "?" + strings.Join(p.params, "&") + " (for " + via + ")"
	base.Policies = f.Policies
	if f.Nothing() {
		base.Outcome = audit.OutcomeDenied
	}
	evs := newEvents(base)
	var out []givenRes
	for _, v := range r.Versions {
		body, d, ok, err := s.admit(ctx, c, v)
		if err != nil {
			return nil, err
		}
		if !ok || body == nil {
			continue // hidden, erased, or tampered: it links nothing
		}
		out = append(out, givenRes{v: v, body: body})
		evs.add(d, entityRef(v.Type, v.ID, v.Version), s.eventPatients(v.Owner))
	}
	if err := s.recordReads(ctx, evs.list()...); err != nil {
		return nil, err
	}
	return out, nil
}

// admit opens v, found by a search of c, and decides it for c as a
// search result on its own labels (the narrowing filter already left
// out what the policies deny: this is defence in depth). It returns the
// body as c may see it (masked when the decision says so) and the
// decision; ok is false for a version c may not see or that is gone. A
// version that fails to open as tampered is ok with a nil body: the
// caller answers with an OperationOutcome in its place, or skips it.
func (s *Service) admit(ctx context.Context, c Caller, v storage.Version) (body []byte, d authz.Decision, ok bool, err error) {
	body, err = s.open(ctx, v)
	if err != nil {
		switch {
		case errors.Is(err, ErrGone):
			return nil, d, false, nil // erased between the query and the read
		case errors.Is(err, ErrTampered):
			return nil, d, true, nil
		}
		return nil, d, false, err
	}
	d, err = s.check(ctx, c, audit.ActionSearch, v, body)
	if err != nil {
		var e *Error
		if errors.As(err, &e) && StatusCode(e) == statusUnavailable {
			return nil, d, false, err
		}
		return nil, d, false, nil
	}
	if d.Mask {
		if body, err = authz.Redact(body); err != nil {
			return nil, d, false, nil
		}
	}
	return body, d, true, nil
}
