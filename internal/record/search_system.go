package record

import (
	"context"
	"encoding/json"
	"errors"
	"net/url"
	"slices"
	"strings"

	"github.com/phivault/phivault/internal/audit"
	"github.com/phivault/phivault/internal/authz"
	"github.com/phivault/phivault/internal/fhir"
	"github.com/phivault/phivault/internal/ident"
	"github.com/phivault/phivault/internal/storage"
)

// System-wide search (GET [base]?_type=A,B&...) and Patient compartment
// search (GET [base]/Patient/{id}/{type}?... and .../Patient/{id}/*) run
// one narrowed query per resource type, exactly as a search of that type
// does (parseSearch, narrow, a decision per match, masking, then the
// subset), and page through the types in order. A compartment is the
// patient's records: what is sealed under its key or under a joint key
// naming it (the same set $everything returns), so a compartment search
// is a search with one more clause, and a patient the caller may not see
// yields an empty Bundle, never an error that would tell it exists.

// MaxSearchTypes bounds the types of one system-wide search: each is a
// query of its own.
const MaxSearchTypes = 20

// commonParams are the parameters a search across several types
// accepts: those every type has, and the result parameters.
var commonParams = map[string]bool{
	"_id": true, "_lastUpdated": true, "_count": true, "_total": true,
	"_summary": true, "_elements": true, "_format": true, "_pretty": true,
	"_tag": true, "_security": true, "_profile": true, "_source": true, // every type has them
}

// leg is the narrowed query of one type of a multi-type search.
type leg struct {
	typ    string
	q      storage.Query
	filter authz.Filter
}

// multi describes a system-wide or compartment search.
type multi struct {
	types   []string      // searched, in page order
	owners  []ident.Owner // compartment: the patient's owners; nil otherwise
	purpose string        // cursor purpose
	self    string        // the search's URL under base, without query
	label   string        // audit query prefix
	patient string        // compartment: the patient id
	ctype   string        // compartment: the type asked for ("*" for all)
}

// SystemSearch runs a search across the types listed in _type
// (comma-separated or repeated, at most [MaxSearchTypes]). With one type
// every parameter of that type is accepted; with several, only the
// common ones (_id, _lastUpdated and the result parameters): others are
// refused, or ignored with opt.Lenient. _type is required.
func (s *Service) SystemSearch(ctx context.Context, c Caller, vals url.Values, opt SearchOptions) (Page, error) {
	cur, vals, err := s.resume(vals, "system", "", "")
	if err != nil {
		return Page{}, err
	}
	var types []string
	for _, raw := range vals["_type"] {
		for t := range strings.SplitSeq(raw, ",") {
			t = strings.TrimSpace(t)
			if t == "" || slices.Contains(types, t) {
				continue
			}
			if !fhir.IsStorableType(t) || t == "AuditEvent" {
				return Page{}, fail(ErrInvalid, "not-supported", "_type names a type that cannot be searched here (an unknown or non-R4 type, or AuditEvent: search it at /fhir/AuditEvent)")
			}
			types = append(types, t)
		}
	}
	if len(types) == 0 {
		return Page{}, fail(ErrInvalid, "not-supported", "a system-wide search needs _type (the resource types to search)")
	}
	if len(types) > MaxSearchTypes {
		return Page{}, failCause(ErrInvalid, "too-costly", "_type lists too many resource types", errors.New("system search: too many types"))
	}
	slices.Sort(types)
	m := multi{types: types, purpose: "system", label: "?_type=" + strings.Join(types, ",")}
	return s.multiSearch(ctx, c, m, cur, vals, opt)
}

// CompartmentSearch runs a search of typ ("*": every type of the Patient
// compartment) within patient id's compartment. A patient the caller may
// not see, or that does not exist, gives an empty Bundle.
func (s *Service) CompartmentSearch(ctx context.Context, c Caller, id, typ string, vals url.Values, opt SearchOptions) (Page, error) {
	if !ValidID(id) {
		return Page{}, invalid("the id is not a valid FHIR id")
	}
	cur, vals, err := s.resume(vals, "compartment", id, typ)
	if err != nil {
		return Page{}, err
	}
	var types []string
	switch {
	case typ == "*":
		for _, t := range fhir.R4Types() {
			if fhir.IsStorableType(t) && t != "AuditEvent" && s.reg.InCompartment(t) {
				types = append(types, t)
			}
		}
		slices.Sort(types)
	case fhir.IsStorableType(typ) && typ != "AuditEvent" && s.reg.InCompartment(typ):
		types = []string{typ}
	default:
		return Page{}, fail(ErrInvalid, "not-supported", "the resource type is not in the R4 Patient compartment (or is AuditEvent: search it at /fhir/AuditEvent)")
	}
	owner := ident.PatientOwner(id)
	owners := []ident.Owner{owner}
	joints, err := s.jointOwners(ctx, owners, storage.MaxOwners-1)
	if err != nil {
		return Page{}, storageError(err)
	}
	for j, ps := range joints {
		owners = append(owners, j)
		s.rememberMembers(j, ps)
	}
	slices.Sort(owners[1:])
	in := ident.PatientRef(id).String() + "/" + typ
	m := multi{types: types, owners: owners, purpose: "compartment", self: "/" + in, label: in + "?", patient: id, ctype: typ}
	return s.multiSearch(ctx, c, m, cur, vals, opt)
}

// resume opens the _page cursor of vals, if any: the search's sealed
// parameters and where the page starts. The cursor holds the type to
// resume at (Type), the offset in it (Offset) and, for a compartment,
// the patient (ID) and the type asked for (After).
func (s *Service) resume(vals url.Values, purpose, id, ctype string) (cursor, url.Values, error) {
	tok := vals.Get("_page")
	if tok == "" {
		return cursor{}, vals, nil
	}
	cur, err := s.openCursor(purpose, tok)
	if err != nil {
		return cursor{}, nil, err
	}
	if cur.ID != id || cur.After != ctype {
		return cursor{}, nil, invalid("the paging cursor belongs to another search")
	}
	return cur, cur.Query, nil
}

// multiSearch runs m's legs and renders one page.
func (s *Service) multiSearch(ctx context.Context, c Caller, m multi, cur cursor, vals url.Values, opt SearchOptions) (Page, error) {
	sub, err := subsetOf(vals)
	if err != nil {
		return Page{}, err
	}
	// What every leg parses: _type and _page are this layer's; with
	// several types only the common parameters are understood.
	legVals := url.Values{}
	var ignored, names []string
	for k, v := range vals {
		code, _, _ := strings.Cut(k, ":")
		switch {
		case k == "_type" || k == "_page":
			continue
		case len(m.types) > 1 && !commonParams[code]:
			if !opt.Lenient {
				return Page{}, fail(ErrInvalid, "not-supported", "a search across several resource types supports only _id, _lastUpdated and the result parameters (_count, _total, _summary, _elements); a parameter of one type is not")
			}
			ignored = append(ignored, k)
			continue
		}
		legVals[k] = v
	}
	legs := make([]leg, 0, len(m.types))
	var count int
	total := false
	var policies []string
	nothing := true
	for _, typ := range m.types {
		p, err := s.parseSearchAs(ctx, c, typ, legVals, opt.Lenient)
		if err != nil {
			return Page{}, err
		}
		if len(p.valueSort) > 0 {
			return Page{}, fail(ErrInvalid, "not-supported", "sorting by a string, token, reference, uri or birth-date parameter is supported in a search of one type (GET /fhir/Observation?patient=…&_sort=code), not in a compartment or system search")
		}
		count, total = p.q.Count, p.total
		if names == nil {
			names = p.params
		}
		for _, ig := range p.ignored {
			if !slices.Contains(ignored, ig) {
				ignored = append(ignored, ig)
			}
		}
		if m.owners != nil {
			p.q.Clauses = append(p.q.Clauses, storage.Clause{Any: []storage.Cond{{Kind: storage.CondOwner, Owners: m.owners}}})
		}
		f, err := s.narrow(ctx, c, s.store, &p.q)
		if err != nil {
			return Page{}, s.recordDenial(ctx, s.denial(c, audit.ActionSearch, storage.Version{Type: typ}, authz.Decision{Policies: []string{"undecidable"}}, err))
		}
		policies = append(policies, f.Policies...)
		nothing = nothing && f.Nothing()
		legs = append(legs, leg{typ: typ, q: p.q, filter: f})
	}
	slices.Sort(ignored)
	slices.Sort(policies)
	policies = slices.Compact(policies)

	base := s.event(c, audit.ActionSearch)
	base.Query = m.label + strings.Join(names, "&")
	base.Policies = policies
	if nothing {
		base.Outcome = audit.OutcomeDenied
	}
	evs := newEvents(base)

	start := 0
	if cur.Type != "" {
		start = slices.Index(m.types, cur.Type)
		if start < 0 {
			return Page{}, invalid("the paging cursor belongs to another search")
		}
	}
	type ent struct {
		FullURL  string            `json:"fullUrl,omitempty"`
		Resource json.RawMessage   `json:"resource"`
		Search   map[string]string `json:"search"`
	}
	entries := []ent{}
	var sum int64
	var next *cursor
	offset := cur.Offset
	for i := start; i < len(legs) && count > 0; i++ {
		l := legs[i]
		need := count - len(entries)
		q := l.q
		q.Offset, q.Count, q.Total = offset, need+1, false
		if need == 0 {
			q.Offset, q.Count = 0, 1 // only: is there anything further?
		}
		offset = 0
		r, err := s.store.Search(ctx, q)
		if err != nil {
			return Page{}, searchStorageError(err)
		}
		if need == 0 {
			if len(r.Versions) > 0 {
				next = &cursor{Type: l.typ}
				break
			}
			continue
		}
		vs := r.Versions
		if len(vs) > need {
			vs = vs[:need]
			next = &cursor{Type: l.typ, Offset: q.Offset + need}
		}
		for _, v := range vs {
			body, err := s.open(ctx, v)
			if err != nil {
				if errors.Is(err, ErrGone) {
					continue
				}
				if errors.Is(err, ErrTampered) {
					entries = append(entries, ent{Resource: s.tamperedOutcome(v), Search: map[string]string{"mode": "outcome"}})
					continue
				}
				return Page{}, err
			}
			d, err := s.check(ctx, c, audit.ActionSearch, v, body)
			if err != nil {
				if StatusCode(err) == statusUnavailable {
					return Page{}, err
				}
				continue
			}
			if d.Mask {
				if body, err = authz.Redact(body); err != nil {
					continue
				}
			}
			if body, err = s.subsetBody(sub, body); err != nil {
				return Page{}, err
			}
			entries = append(entries, ent{FullURL: opt.BaseURL + "/" + v.Type + "/" + v.ID, Resource: body, Search: map[string]string{"mode": "match"}})
			evs.add(d, entityRef(v.Type, v.ID, v.Version), s.eventPatients(v.Owner))
		}
		if next != nil {
			break
		}
	}
	if total || count == 0 {
		for _, l := range legs {
			q := l.q
			q.Count, q.Offset, q.Total = 0, 0, true
			r, err := s.store.Search(ctx, q)
			if err != nil {
				return Page{}, searchStorageError(err)
			}
			sum += r.Total
		}
	}

	clean := url.Values{}
	for k, v := range vals {
		if k != "_page" {
			clean[k] = v
		}
	}
	self := opt.BaseURL + m.self
	pageLink := func(rel string, at cursor) (map[string]string, error) {
		at.Query, at.ID, at.After = clean, m.patient, m.ctype
		tok, err := s.sealCursor(m.purpose, at)
		if err != nil {
			return nil, err
		}
		return map[string]string{"relation": rel, "url": self + "?_page=" + url.QueryEscape(tok)}, nil
	}
	selfLink, err := pageLink("self", cursor{Type: cur.Type, Offset: cur.Offset})
	if err != nil {
		return Page{}, err
	}
	links := []map[string]string{selfLink}
	if next != nil {
		nl, err := pageLink("next", *next)
		if err != nil {
			return Page{}, err
		}
		links = append(links, nl)
	}
	if err := s.recordReads(ctx, evs.list()...); err != nil {
		return Page{}, err
	}
	n := len(entries)
	if len(ignored) > 0 {
		oo, err := ignoredOutcome(ignored)
		if err != nil {
			return Page{}, err
		}
		entries = append(entries, ent{Resource: oo, Search: map[string]string{"mode": "outcome"}})
	}
	bundle := map[string]any{"resourceType": "Bundle", "id": s.newID(), "type": "searchset", "link": links, "entry": entries}
	switch {
	case total || count == 0:
		bundle["total"] = sum
	case cur.Type == "" && cur.Offset == 0 && next == nil:
		bundle["total"] = n
	}
	b, err := json.Marshal(bundle)
	return Page{Bundle: b, Count: n}, err
}

// searchStorageError maps a store error of a search.
func searchStorageError(err error) error {
	if errors.Is(err, storage.ErrTooComplex) {
		return failCause(ErrInvalid, "too-costly", "the search is too complex", err)
	}
	return storageError(err)
}
