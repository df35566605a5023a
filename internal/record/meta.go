package record

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"

	"github.com/phivault/phivault/internal/audit"
	"github.com/phivault/phivault/internal/authz"
	"github.com/phivault/phivault/internal/fhir"
	"github.com/phivault/phivault/internal/storage"
)

// The $meta operations (R4 Resource-meta, -meta-add, -meta-delete).
//
// meta.security labels feed authorization (sensitive categories,
// consent by label): adding or removing one is a write, run as a patch
// ([Service.Patch]), so it is decided on the current version and on the
// result exactly as a PUT of the result is, committed with its audit
// event (an update). Unlike FHIR's note that these operations need not
// create a version, each one here does: versions are immutable and
// sealed to their number, and the ledger commits to each (ADR 0028).
//
// $meta reads: on an instance it is a read (a hidden resource answers
// as a missing one); on a type or the system it lists the profiles,
// tags and labels of the resources the caller may see, each of which is
// decided and audited as a search returns it.

// maxMetaScan bounds the resources a type or system $meta reads: beyond
// it the request is refused as too costly rather than answered from part
// of the record.
const maxMetaScan = 5000

// metaParts is the union of profiles, tags and security labels.
type metaParts struct {
	Profile  []string `json:"profile,omitempty"`
	Security []coding `json:"security,omitempty"`
	Tag      []coding `json:"tag,omitempty"`
}

type coding struct {
	System  string `json:"system,omitempty"`
	Version string `json:"version,omitempty"`
	Code    string `json:"code,omitempty"`
	Display string `json:"display,omitempty"`
}

func (m *metaParts) merge(o metaParts) {
	for _, p := range o.Profile {
		if !slices.Contains(m.Profile, p) {
			m.Profile = append(m.Profile, p)
		}
	}
	m.Security = mergeCodings(m.Security, o.Security)
	m.Tag = mergeCodings(m.Tag, o.Tag)
}

func mergeCodings(a, b []coding) []coding {
	for _, c := range b {
		if !slices.ContainsFunc(a, c.same) {
			a = append(a, c)
		}
	}
	return a
}

// same is FHIR's identity of a tag or label: system and code.
func (c coding) same(o coding) bool { return c.System == o.System && c.Code == o.Code }

func (m *metaParts) sort() {
	sort.Strings(m.Profile)
	for _, cs := range [][]coding{m.Security, m.Tag} {
		sort.Slice(cs, func(i, j int) bool {
			if cs[i].System != cs[j].System {
				return cs[i].System < cs[j].System
			}
			return cs[i].Code < cs[j].Code
		})
	}
}

func metaOf(body []byte) (metaParts, error) {
	var r struct {
		Meta metaParts `json:"meta"`
	}
	if err := json.Unmarshal(body, &r); err != nil {
		return metaParts{}, fmt.Errorf("reading meta: %w", err)
	}
	return r.Meta, nil
}

// metaParameters is the Parameters answer of every $meta operation.
func metaParameters(m any) ([]byte, error) {
	return json.Marshal(map[string]any{"resourceType": "Parameters",
		"parameter": []any{map[string]any{"name": "return", "valueMeta": m}}})
}

// Meta is $meta on typ/id: the resource's meta, read (and audited) as
// [Service.Read] reads it.
func (s *Service) Meta(ctx context.Context, c Caller, typ, id string) ([]byte, error) {
	st, err := s.Read(ctx, c, typ, id)
	if err != nil {
		return nil, err
	}
	var r struct {
		Meta map[string]any `json:"meta"`
	}
	if err := json.Unmarshal(st.JSON, &r); err != nil {
		return nil, internal(fmt.Errorf("reading meta of %s/%s: %w", typ, id, err))
	}
	if r.Meta == nil {
		r.Meta = map[string]any{}
	}
	return metaParameters(r.Meta)
}

// MetaSummary is $meta on a type (typ) or the system (typ ""): the
// profiles, tags and security labels in use on the current resources
// the caller may see.
func (s *Service) MetaSummary(ctx context.Context, c Caller, typ string) ([]byte, error) {
	types := []string{typ}
	if typ == "" {
		var err error
		if types, err = s.store.Types(ctx); err != nil {
			return nil, storageError(err)
		}
	}
	evs := newEvents(s.event(c, audit.ActionSearch))
	var all metaParts
	budget := maxMetaScan
	for _, t := range types {
		if !fhir.IsStorableType(t) {
			continue
		}
		q := storage.Query{Type: t, Count: budget + 1}
		if _, err := s.narrow(ctx, c, s.store, &q); err != nil {
			return nil, s.recordDenial(ctx, s.denial(c, audit.ActionSearch, storage.Version{Type: t}, authz.Decision{Policies: []string{"undecidable"}}, err))
		}
		r, err := s.store.Search(ctx, q)
		if err != nil {
			return nil, storageError(err)
		}
		if len(r.Versions) > budget {
			return nil, fail(ErrInvalid, "too-costly", fmt.Sprintf("$meta reads at most %d resources; ask on an instance or a smaller type", maxMetaScan))
		}
		budget -= len(r.Versions)
		for _, v := range r.Versions {
			body, err := s.open(ctx, v)
			if errors.Is(err, ErrGone) || errors.Is(err, ErrTampered) {
				continue // erased, or failed its integrity check: labels unknown
			}
			if err != nil {
				return nil, err
			}
			d, err := s.check(ctx, c, audit.ActionSearch, v, body)
			if err != nil {
				if StatusCode(err) == statusUnavailable {
					return nil, err
				}
				continue
			}
			if d.Mask {
				if body, err = authz.Redact(body); err != nil {
					continue
				}
			}
			m, err := metaOf(body)
			if err != nil {
				continue
			}
			all.merge(m)
			evs.add(d, entityRef(v.Type, v.ID, v.Version), s.eventPatients(v.Owner))
		}
	}
	if err := s.recordReads(ctx, evs.list()...); err != nil {
		return nil, err
	}
	all.sort()
	return metaParameters(all)
}

// metaEdit is the [Patcher] of $meta-add (del false) and $meta-delete.
type metaEdit struct {
	meta metaParts
	del  bool
}

// MetaAdd is $meta-add on typ/id: the profiles, tags and security
// labels of params are added (a tag or label already there, by system
// and code, is kept as it is). It is a patch ([Service.Patch]): decided
// as a PUT of the result, audited as an update, a new version.
func (s *Service) MetaAdd(ctx context.Context, c Caller, typ, id string, params fhir.Resource) ([]byte, error) {
	return s.metaEditRun(ctx, c, typ, id, params, false)
}

// MetaDelete is $meta-delete on typ/id: the profiles, tags and security
// labels of params (by system and code) are removed, as [Service.MetaAdd]
// adds them.
func (s *Service) MetaDelete(ctx context.Context, c Caller, typ, id string, params fhir.Resource) ([]byte, error) {
	return s.metaEditRun(ctx, c, typ, id, params, true)
}

func (s *Service) metaEditRun(ctx context.Context, c Caller, typ, id string, params fhir.Resource, del bool) ([]byte, error) {
	p, err := parseMetaEdit(params, del)
	if err != nil {
		return nil, err
	}
	st, err := s.Patch(ctx, c, typ, id, p, 0)
	if err != nil {
		return nil, err
	}
	var r struct {
		Meta map[string]any `json:"meta"`
	}
	if err := json.Unmarshal(st.JSON, &r); err != nil {
		return nil, internal(err)
	}
	return metaParameters(r.Meta)
}

// parseMetaEdit reads the Parameters of $meta-add and $meta-delete:
// one parameter "meta" with a valueMeta holding profiles, security
// labels and tags.
func parseMetaEdit(res fhir.Resource, del bool) (*metaEdit, error) {
	bad := invalid(`the body must be a Parameters with one parameter "meta" holding a valueMeta`)
	if res.Type() != "Parameters" {
		return nil, bad
	}
	ps, _ := res["parameter"].([]any)
	if len(ps) != 1 {
		return nil, bad
	}
	p, _ := ps[0].(map[string]any)
	if p["name"] != "meta" {
		return nil, bad
	}
	raw, ok := p["valueMeta"].(map[string]any)
	if !ok {
		return nil, bad
	}
	b, err := json.Marshal(raw)
	if err != nil {
		return nil, bad
	}
	var m metaParts
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, invalid("the valueMeta's profile, security and tag are not well formed")
	}
	if len(m.Profile)+len(m.Security)+len(m.Tag) == 0 {
		return nil, invalid("the valueMeta names no profile, security label or tag")
	}
	if len(m.Profile)+len(m.Security)+len(m.Tag) > 100 {
		return nil, fail(ErrInvalid, "too-costly", "the valueMeta names more than 100 profiles, labels and tags")
	}
	for _, cs := range [][]coding{m.Security, m.Tag} {
		for _, c := range cs {
			if c.Code == "" && !del {
				return nil, invalid("every security label and tag needs a code")
			}
		}
	}
	return &metaEdit{meta: m, del: del}, nil
}

// Apply implements [Patcher].
func (e *metaEdit) Apply(current []byte) ([]byte, error) {
	var res map[string]any
	dec := json.NewDecoder(bytes.NewReader(current))
	dec.UseNumber()
	if err := dec.Decode(&res); err != nil {
		return nil, internal(fmt.Errorf("reading the current version: %w", err))
	}
	meta, _ := res["meta"].(map[string]any)
	if meta == nil {
		meta = map[string]any{}
	}
	// Profiles are canonical URLs; tags and labels are Codings kept as
	// stored (with any extension), matched by system and code.
	profiles, _ := meta["profile"].([]any)
	for _, p := range e.meta.Profile {
		i := slices.IndexFunc(profiles, func(x any) bool { return x == p })
		switch {
		case e.del && i >= 0:
			profiles = slices.Delete(profiles, i, i+1)
		case !e.del && i < 0:
			profiles = append(profiles, p)
		}
	}
	setOrDrop(meta, "profile", profiles)
	for _, f := range []struct {
		key string
		cs  []coding
	}{{"security", e.meta.Security}, {"tag", e.meta.Tag}} {
		list, _ := meta[f.key].([]any)
		for _, c := range f.cs {
			i := slices.IndexFunc(list, func(x any) bool {
				m, _ := x.(map[string]any)
				sys, _ := m["system"].(string)
				code, _ := m["code"].(string)
				return sys == c.System && code == c.Code
			})
			switch {
			case e.del && i >= 0:
				list = slices.Delete(list, i, i+1)
			case !e.del && i < 0:
				list = append(list, codingMap(c))
			}
		}
		setOrDrop(meta, f.key, list)
	}
	res["meta"] = meta
	return json.Marshal(res)
}

func setOrDrop(m map[string]any, key string, list []any) {
	if len(list) == 0 {
		delete(m, key)
		return
	}
	m[key] = list
}

func codingMap(c coding) map[string]any {
	m := map[string]any{}
	for k, v := range map[string]string{"system": c.System, "version": c.Version, "code": c.Code, "display": c.Display} {
		if v != "" {
			m[k] = v
		}
	}
	return m
}
