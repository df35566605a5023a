package record

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"

	"github.com/phivault/phivault/internal/audit"
	"github.com/phivault/phivault/internal/authz"
	"github.com/phivault/phivault/internal/fhir/profile"
	"github.com/phivault/phivault/internal/fhir/terminology"
	"github.com/phivault/phivault/internal/storage"
)

// Terminology and profiles (ADR 0032) are read from stored CodeSystem,
// ValueSet and StructureDefinition resources, found by canonical url
// through the caller's own authorization: a resource the caller may not
// read is, to the operations, a resource that does not exist.
//
// Until a uri search parameter "url" is registered for these types,
// finding one by url is an authorized search of the whole type, bounded
// by MaxCanonicalScan, with the url compared after decryption (the
// blind index cannot compare what is not indexed). When the registry
// has a "url" parameter for the type, the search uses it, and the url is
// still compared after decryption.

// MaxCanonicalScan bounds the resources of one type examined to find a
// canonical url: beyond it the operation answers too-costly rather than
// decrypt an unbounded number of resources per request.
const MaxCanonicalScan = 1000

// canonical is one stored conformance resource the caller may read.
type canonical struct {
	v       storage.Version
	d       authz.Decision
	body    []byte
	url     string
	version string
}

// canonicals finds conformance resources by url for one caller and
// request. Each type is scanned at most once per request; every
// resource handed to the operations is audited as a search result
// before it is used. Not safe for concurrent use.
type canonicals struct {
	s       *Service
	c       Caller
	scanned map[string][]canonical // type -> readable resources (scan mode)
	audited map[string]bool        // "Type/id/_history/v" already recorded
}

func (s *Service) canonicals(c Caller) *canonicals {
	return &canonicals{s: s, c: c, scanned: map[string][]canonical{}, audited: map[string]bool{}}
}

// find returns the body of the resource of typ with canonical u (and
// version, if not ""): of several, the most recently updated. ErrNotFound
// (a *Error) if none the caller may read.
func (f *canonicals) find(ctx context.Context, typ, u, version string) ([]byte, error) {
	if u == "" {
		return nil, notFound("no canonical url was given")
	}
	list, err := f.candidates(ctx, typ, u)
	if err != nil {
		return nil, err
	}
	var best *canonical
	for i := range list {
		c := &list[i]
		if c.url != u || (version != "" && c.version != version) {
			continue
		}
		if best == nil || c.v.LastUpdated.After(best.v.LastUpdated) {
			best = c
		}
	}
	if best == nil {
		return nil, notFound("no " + typ + " with that url is available")
	}
	ref := entityRef(best.v.Type, best.v.ID, best.v.Version)
	if !f.audited[ref] {
		ev := f.s.event(f.c, audit.ActionSearch)
		ev.Query = typ + "?url"
		evs := newEvents(ev)
		evs.add(best.d, ref, f.s.eventPatients(best.v.Owner))
		if err := f.s.recordReads(ctx, evs.list()...); err != nil {
			return nil, err
		}
		f.audited[ref] = true
	}
	return best.body, nil
}

func (f *canonicals) candidates(ctx context.Context, typ, u string) ([]canonical, error) {
	_, indexed := f.s.reg.Lookup(typ, "url")
	if list, ok := f.scanned[typ]; ok && !indexed {
		return list, nil
	}
	q := storage.Query{Type: typ}
	if indexed {
		p, err := f.s.parseSearch(typ, url.Values{"url": {u}}, false)
		if err != nil {
			return nil, err
		}
		q = p.q
	}
	q.Count, q.Offset, q.Total, q.Sort = MaxCanonicalScan+1, 0, false, nil
	if _, err := f.s.narrow(ctx, f.c, f.s.store, &q); err != nil {
		return nil, f.s.recordDenial(ctx, f.s.denial(f.c, audit.ActionSearch, storage.Version{Type: typ}, authz.Decision{Policies: []string{"undecidable"}}, err))
	}
	r, err := f.s.store.Search(ctx, q)
	if err != nil {
		return nil, storageError(err)
	}
	if len(r.Versions) > MaxCanonicalScan {
		return nil, failCause(ErrInvalid, "too-costly",
			fmt.Sprintf("more than %d %s resources are readable: finding one by url needs the url search parameter, which this server does not index yet", MaxCanonicalScan, typ),
			errors.New("canonical scan bound reached"))
	}
	var out []canonical
	for _, v := range r.Versions {
		body, err := f.s.open(ctx, v)
		if errors.Is(err, ErrGone) || errors.Is(err, ErrTampered) {
			continue // erased since, or logged as tampered by open
		}
		if err != nil {
			return nil, err
		}
		d, err := f.s.check(ctx, f.c, audit.ActionSearch, v, body)
		if err != nil {
			if StatusCode(err) == statusUnavailable {
				return nil, err
			}
			continue // defence in depth: the filter already excluded it
		}
		if d.Mask {
			if body, err = authz.Redact(body); err != nil {
				continue
			}
		}
		var id struct {
			URL     string `json:"url"`
			Version string `json:"version"`
		}
		if json.Unmarshal(body, &id) != nil || id.URL == "" {
			continue
		}
		out = append(out, canonical{v: v, d: d, body: body, url: id.URL, version: id.Version})
	}
	if !indexed {
		f.scanned[typ] = out
	}
	return out, nil
}

// CodeSystem implements terminology.Source.
func (f *canonicals) CodeSystem(ctx context.Context, u, version string) (*terminology.CodeSystem, error) {
	body, err := f.find(ctx, "CodeSystem", u, version)
	if err != nil {
		return nil, absent(err, terminology.ErrNotFound)
	}
	cs, err := terminology.ParseCodeSystem(body)
	if err != nil {
		return nil, terminologyError(err)
	}
	return cs, nil
}

// ValueSet implements terminology.Source.
func (f *canonicals) ValueSet(ctx context.Context, u, version string) (*terminology.ValueSet, error) {
	body, err := f.find(ctx, "ValueSet", u, version)
	if err != nil {
		return nil, absent(err, terminology.ErrNotFound)
	}
	vs, err := terminology.ParseValueSet(body)
	if err != nil {
		return nil, terminologyError(err)
	}
	return vs, nil
}

// StructureDefinition implements profile.Definitions.
func (f *canonicals) StructureDefinition(ctx context.Context, u, version string) (*profile.Definition, error) {
	body, err := f.find(ctx, "StructureDefinition", u, version)
	if err != nil {
		return nil, absent(err, profile.ErrNotFound)
	}
	d, err := profile.Parse(body)
	if err != nil {
		return nil, fail(ErrUnprocessable, "invalid", "a stored StructureDefinition could not be read as a profile")
	}
	return d, nil
}

// InValueSet implements profile.Codes.
func (f *canonicals) InValueSet(ctx context.Context, canonical string, c terminology.Coding) (bool, error) {
	u, ver := terminology.SplitCanonical(canonical)
	vs, err := f.ValueSet(ctx, u, ver)
	if errors.Is(err, terminology.ErrNotFound) {
		return false, profile.ErrNotFound
	}
	if err != nil {
		return false, err
	}
	v, err := terminology.ValidateInValueSet(ctx, f, vs, c)
	if errors.Is(err, terminology.ErrNotFound) {
		return false, profile.ErrNotFound // a code system or import it needs
	}
	return v.Result, err
}

// absent turns a not-found *Error into the domain package's sentinel
// (keeping any other failure: unavailable, too-costly).
func absent(err, sentinel error) error {
	if errors.Is(err, ErrNotFound) {
		return sentinel
	}
	return err
}

// terminologyError maps the terminology package's errors (whose
// messages name no value) onto the record's.
func terminologyError(err error) error {
	var te *terminology.Error
	if !errors.As(err, &te) {
		return err
	}
	switch {
	case errors.Is(err, terminology.ErrNotFound):
		return failCause(ErrNotFound, "not-found", te.Public(), err)
	case errors.Is(err, terminology.ErrUnsupported):
		return failCause(ErrUnprocessable, "not-supported", te.Public(), err)
	case errors.Is(err, terminology.ErrTooCostly):
		return failCause(ErrInvalid, "too-costly", te.Public(), err)
	}
	return failCause(ErrInvalid, "invalid", te.Public(), err)
}
