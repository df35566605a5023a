package record

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/phivault/phivault/internal/audit"
	"github.com/phivault/phivault/internal/authz"
	"github.com/phivault/phivault/internal/fhir"
	"github.com/phivault/phivault/internal/fhir/search"
	"github.com/phivault/phivault/internal/storage"
)

// Bounds on _include and _revinclude (STYLE rule 24).
const (
	// MaxIncluded caps the resources _include and _revinclude add to one
	// page. Beyond it the page ends with an OperationOutcome entry
	// (search.mode "outcome") saying the includes were cut short; a
	// smaller _count gets them all.
	MaxIncluded = 1000
	// MaxIncludeRounds bounds :iterate: the first pass over the matches
	// and up to three more over what the previous pass included. When
	// the last pass still included something, the page says so too.
	MaxIncludeRounds = 4
	// includeChunk is the ids or reference hashes one store query of an
	// include carries (storage.MaxValues is 1,024).
	includeChunk = 500
)

// searchEntry is one entry of a searchset Bundle.
type searchEntry struct {
	FullURL  string            `json:"fullUrl,omitempty"`
	Resource json.RawMessage   `json:"resource"`
	Search   map[string]string `json:"search"`
}

// include returns the entries q's _include and _revinclude add to a
// page whose matches (as c got them) are matches, recording each
// included resource in evs.
//
// Every included resource is found by a search of c narrowed by c's
// authorization filter for its type (by id for _include, by reference
// for _revinclude), then opened, decided on its own labels, masked and
// audited exactly as a match is. One c may not see is absent, as if it
// did not exist: no error, no count, no placeholder.
func (s *Service) include(ctx context.Context, c Caller, q *search.Query, matches []givenRes, evs *events, base string) ([]searchEntry, error) {
	if len(q.Include)+len(q.RevInclude) == 0 || len(matches) == 0 {
		return nil, nil
	}
	inc := &includer{s: s, c: c, evs: evs, base: base, seen: map[string]bool{}}
	for _, m := range matches {
		inc.seen[m.v.Type+"/"+m.v.ID] = true
	}
	frontier := matches
	iterates := slices.ContainsFunc(q.Include, func(i search.Include) bool { return i.Iterate }) ||
		slices.ContainsFunc(q.RevInclude, func(i search.Include) bool { return i.Iterate })
	round := 0
	for ; round < MaxIncludeRounds && len(frontier) > 0 && !inc.cut; round++ {
		fwd, rev := q.Include, q.RevInclude
		if round > 0 { // only :iterate applies to included resources
			fwd, rev = iterating(fwd), iterating(rev)
		}
		var next []givenRes
		targets, err := s.forwardTargets(fwd, frontier, inc.seen)
		if err != nil {
			return nil, err
		}
		for _, typ := range slices.Sorted(maps.Keys(targets)) {
			ids := targets[typ]
			for chunk := range slices.Chunk(ids, includeChunk) {
				got, err := inc.fetch(ctx, storage.Query{Type: typ, Clauses: []storage.Clause{{Any: []storage.Cond{{Kind: storage.CondID, IDs: chunk}}}}})
				if err != nil {
					return nil, err
				}
				next = append(next, got...)
			}
		}
		rqs, err := s.reverseQueries(rev, frontier)
		if err != nil {
			return nil, err
		}
		for _, rq := range rqs {
			got, err := inc.fetch(ctx, rq)
			if err != nil {
				return nil, err
			}
			next = append(next, got...)
		}
		frontier = next
	}
	if round == MaxIncludeRounds && len(frontier) > 0 && iterates {
		inc.cut = true
	}
	if inc.cut {
		inc.out = append(inc.out, searchEntry{Resource: includeCutOutcome(), Search: map[string]string{"mode": "outcome"}})
	}
	return inc.out, nil
}

func iterating(incs []search.Include) []search.Include {
	var out []search.Include
	for _, i := range incs {
		if i.Iterate {
			out = append(out, i)
		}
	}
	return out
}

// forwardTargets returns, per type, the sorted ids the _include
// parameters incs follow from the resources from (as the caller got
// them), leaving out what is already on the page.
func (s *Service) forwardTargets(incs []search.Include, from []givenRes, seen map[string]bool) (map[string][]string, error) {
	out := map[string][]string{}
	if len(incs) == 0 {
		return out, nil
	}
	want := map[string]bool{}
	for _, f := range from {
		var res fhir.Resource
		for _, in := range incs {
			for _, p := range s.reg.Follow(in, f.v.Type) {
				if res == nil {
					var err error
					if res, err = fhir.Decode(bytes.NewReader(f.body), fhir.Limits{}); err != nil {
						return nil, fmt.Errorf("decoding %s/%s for _include: %w", f.v.Type, f.v.ID, err)
					}
				}
				for _, ref := range s.reg.References(p, res) {
					typ, _, _ := strings.Cut(ref, "/")
					if (in.Target != "" && typ != in.Target) || !fhir.IsStorableType(typ) || seen[ref] {
						continue
					}
					want[ref] = true
				}
			}
		}
	}
	for ref := range want {
		typ, id, _ := strings.Cut(ref, "/")
		out[typ] = append(out[typ], id)
	}
	for _, ids := range out {
		slices.Sort(ids)
	}
	return out, nil
}

// reverseQueries returns the store queries of the _revinclude
// parameters incs for the resources from: per referring parameter, the
// resources whose index holds a reference to one of them.
func (s *Service) reverseQueries(incs []search.Include, from []givenRes) ([]storage.Query, error) {
	if len(incs) == 0 {
		return nil, nil
	}
	byType := map[string][]string{}
	for _, f := range from {
		byType[f.v.Type] = append(byType[f.v.Type], f.v.Type+"/"+f.v.ID)
	}
	type key struct{ base, code string }
	refs := map[key][]string{}
	var order []key
	for _, typ := range slices.Sorted(maps.Keys(byType)) {
		for _, in := range incs {
			for _, p := range s.reg.FollowBack(in, typ) {
				k := key{p.Base, p.Code}
				if _, ok := refs[k]; !ok {
					order = append(order, k)
				}
				refs[k] = append(refs[k], byType[typ]...)
			}
		}
	}
	var out []storage.Query
	for _, k := range order {
		rs := slices.Compact(slices.Sorted(slices.Values(refs[k])))
		for chunk := range slices.Chunk(rs, includeChunk) {
			hashes := make([][]byte, 0, len(chunk))
			for _, ref := range chunk {
				h, err := s.keys.BlindIndex(hashInput(k.base, search.Term{Param: k.code, Key: ref}))
				if err != nil {
					return nil, fmt.Errorf("computing blind index: %w", err)
				}
				hashes = append(hashes, h)
			}
			out = append(out, storage.Query{Type: k.base, Clauses: []storage.Clause{{Any: []storage.Cond{{Kind: storage.CondHash, Param: k.code, Hashes: hashes}}}}})
		}
	}
	return out, nil
}

// includer gathers the included entries of one page.
type includer struct {
	s    *Service
	c    Caller
	evs  *events
	base string
	seen map[string]bool // Type/id already on the page
	out  []searchEntry
	n    int  // resources included
	cut  bool // MaxIncluded or MaxIncludeRounds stopped the includes
}

// fetch runs q (one include's condition) as a search of the caller,
// narrowed, and adds what it finds to the page; it returns the
// resources added (what :iterate follows next).
func (in *includer) fetch(ctx context.Context, q storage.Query) ([]givenRes, error) {
	s, c := in.s, in.c
	room := MaxIncluded - in.n
	if room <= 0 {
		in.cut = true
		return nil, nil
	}
	q.Count, q.Offset, q.Total = room+1, 0, false
	q.Sort = []storage.Sort{{Key: storage.SortID}}
	if _, err := s.narrow(ctx, c, s.store, &q); err != nil {
		return nil, s.recordDenial(ctx, s.denial(c, audit.ActionSearch, storage.Version{Type: q.Type}, authz.Decision{Policies: []string{"undecidable"}}, err))
	}
	r, err := s.store.Search(ctx, q)
	if err != nil {
		if errors.Is(err, storage.ErrTooComplex) {
			return nil, failCause(ErrInvalid, "too-costly", "the search is too complex", err)
		}
		return nil, storageError(err)
	}
	var got []givenRes
	for _, v := range r.Versions {
		ref := v.Type + "/" + v.ID
		if in.seen[ref] {
			continue
		}
		if in.n >= MaxIncluded {
			in.cut = true
			break
		}
		body, d, ok, err := s.admit(ctx, c, v)
		if err != nil {
			return nil, err
		}
		if !ok {
			continue
		}
		in.seen[ref] = true
		in.n++
		if body == nil {
			in.out = append(in.out, searchEntry{Resource: s.tamperedOutcome(v), Search: map[string]string{"mode": "outcome"}})
			continue
		}
		in.out = append(in.out, searchEntry{FullURL: in.base + "/" + ref, Resource: body, Search: map[string]string{"mode": "include"}})
		in.evs.add(d, entityRef(v.Type, v.ID, v.Version), s.eventPatients(v.Owner))
		got = append(got, givenRes{v: v, body: body})
	}
	return got, nil
}

// includeCutOutcome is the OperationOutcome ending a page whose
// includes were cut short.
func includeCutOutcome() json.RawMessage {
	b, _ := json.Marshal(map[string]any{"resourceType": "OperationOutcome", "issue": []any{map[string]any{
		"severity": "warning", "code": "too-costly",
		"diagnostics": fmt.Sprintf("included resources were limited to %d per page and :iterate to %d passes; some were left out: ask for fewer matches per page (_count)", MaxIncluded, MaxIncludeRounds-1),
	}}})
	return b
}
