package record

import (
	"context"
	"encoding/json"
	"net/url"
	"strings"

	"github.com/phivault/phivault/internal/fhir/search"
)

// Token :in and :not-in (R4 search.html, token modifiers). The ValueSet
// is read as the searching caller, through Search itself: narrowing, the
// per-resource decision, masking and the audit event of that read all
// apply, so a ValueSet the caller may not read does not exist for it
// (the same refusal as an absent one). Expansion is local and bounded:
//
//   - compose.include with a system and a concept list: those codes;
//   - compose.include with a system only: every code of that system
//     (the system key every coded token is indexed with);
//   - compose.exclude with a concept list: those codes are removed from
//     the concept lists (excluding from a whole-system include is
//     refused: it cannot be answered with an OR of keys);
//   - no compose: the stored expansion.contains (nested, system|code);
//   - include.filter and include.valueSet (imports), and more than
//     MaxValueSetCodes codes, are refused with a clear message.
//
// Codes are matched with their system (system|code). The ValueSet is
// found by its canonical url, or url|version; several ValueSets with
// the url and no version given are refused as ambiguous.

// MaxValueSetCodes bounds the codes one :in expansion may yield (each
// is one index key of the query).
const MaxValueSetCodes = 500

// maxContainsDepth bounds the nesting of expansion.contains.
const maxContainsDepth = 16

// parseSearchAs is parseSearch for caller c, expanding :in and :not-in.
func (s *Service) parseSearchAs(ctx context.Context, c Caller, typ string, vals url.Values, lenient bool) (plan, error) {
	p, err := s.parseSearchWith(typ, vals, lenient, func(pr search.Pred) ([]search.Term, error) {
		return s.valueSetTerms(ctx, c, pr)
	})
	if err != nil {
		return plan{}, err
	}
	if err := s.refuseMaskedSearch(ctx, c, p.parsed); err != nil {
		return plan{}, s.recordDenial(ctx, err)
	}
	return p, nil
}

type vsCoding struct {
	System string `json:"system"`
	Code   string `json:"code"`
}

type vsContains struct {
	System   string       `json:"system"`
	Code     string       `json:"code"`
	Contains []vsContains `json:"contains"`
}

type vsInclude struct {
	System   string            `json:"system"`
	Concept  []vsCoding        `json:"concept"`
	Filter   []json.RawMessage `json:"filter"`
	ValueSet []string          `json:"valueSet"`
}

type valueSetBody struct {
	Compose *struct {
		Include []vsInclude `json:"include"`
		Exclude []vsInclude `json:"exclude"`
	} `json:"compose"`
	Expansion *struct {
		Contains []vsContains `json:"contains"`
	} `json:"expansion"`
}

// valueSetTerms reads the ValueSet pr names as c and returns the token
// terms of its codes.
func (s *Service) valueSetTerms(ctx context.Context, c Caller, pr search.Pred) ([]search.Term, error) {
	canonical, version, _ := strings.Cut(pr.ValueSet, "|")
	q := url.Values{"url": {canonical}, "_count": {"2"}}
	if version != "" {
		q.Set("version", version)
	}
	page, err := s.Search(ctx, c, "ValueSet", q, SearchOptions{})
	if err != nil {
		return nil, err
	}
	var b struct {
		Entry []struct {
			Resource json.RawMessage   `json:"resource"`
			Search   map[string]string `json:"search"`
		} `json:"entry"`
	}
	if err := json.Unmarshal(page.Bundle, &b); err != nil {
		return nil, err
	}
	var found []json.RawMessage
	for _, e := range b.Entry {
		if e.Search["mode"] == "match" {
			found = append(found, e.Resource)
		}
	}
	switch len(found) {
	case 0:
		return nil, invalid("the ValueSet named by :in or :not-in was not found (or you may not read it)")
	case 1:
	default:
		return nil, invalid("several ValueSets have the url named by :in or :not-in: give url|version")
	}
	var vs valueSetBody
	if err := json.Unmarshal(found[0], &vs); err != nil {
		return nil, invalid("the ValueSet named by :in or :not-in could not be read")
	}
	codes, systems, err := expandValueSet(vs)
	if err != nil {
		return nil, err
	}
	var out []search.Term
	for _, sys := range systems {
		out = append(out, search.TokenTerms(pr.Param, sys, "", true))
	}
	for _, cd := range codes {
		out = append(out, search.TokenTerms(pr.Param, cd.System, cd.Code, true))
	}
	if len(out) == 0 {
		// An empty ValueSet: :in matches nothing, :not-in everything.
		out = []search.Term{{Param: pr.Param.Code, Key: "none|"}}
	}
	return out, nil
}

// expandValueSet returns the codes and whole systems of vs.
func expandValueSet(vs valueSetBody) (codes []vsCoding, systems []string, err error) {
	tooMany := fail(ErrInvalid, "too-costly", "the ValueSet named by :in or :not-in has more codes than a search can ask for")
	seen := map[vsCoding]bool{}
	add := func(c vsCoding) error {
		if c.Code == "" || seen[c] {
			return nil
		}
		seen[c] = true
		codes = append(codes, c)
		if len(codes)+len(systems) > MaxValueSetCodes {
			return tooMany
		}
		return nil
	}
	if vs.Compose == nil {
		if vs.Expansion == nil {
			return nil, nil, fail(ErrInvalid, "not-supported", "the ValueSet named by :in or :not-in has neither a compose nor an expansion")
		}
		var walk func([]vsContains, int) error
		walk = func(cs []vsContains, depth int) error {
			if depth > maxContainsDepth {
				return invalid("the ValueSet's expansion is nested too deeply")
			}
			for _, c := range cs {
				if c.System != "" {
					if err := add(vsCoding{c.System, c.Code}); err != nil {
						return err
					}
				}
				if err := walk(c.Contains, depth+1); err != nil {
					return err
				}
			}
			return nil
		}
		return codes, nil, walk(vs.Expansion.Contains, 0)
	}
	excluded := map[vsCoding]bool{}
	for _, ex := range vs.Compose.Exclude {
		if len(ex.Filter) > 0 || len(ex.ValueSet) > 0 || len(ex.Concept) == 0 {
			return nil, nil, fail(ErrInvalid, "not-supported", "the ValueSet named by :in or :not-in excludes by filter, ValueSet or whole system, which is not supported")
		}
		for _, c := range ex.Concept {
			excluded[vsCoding{ex.System, c.Code}] = true
		}
	}
	for _, in := range vs.Compose.Include {
		if len(in.Filter) > 0 || len(in.ValueSet) > 0 || in.System == "" {
			return nil, nil, fail(ErrInvalid, "not-supported", "the ValueSet named by :in or :not-in includes by filter or by another ValueSet, which is not supported (concept lists and whole systems are)")
		}
		if len(in.Concept) == 0 {
			for ex := range excluded {
				if ex.System == in.System {
					return nil, nil, fail(ErrInvalid, "not-supported", "the ValueSet named by :in or :not-in excludes codes from a whole-system include, which is not supported")
				}
			}
			systems = append(systems, in.System)
			if len(codes)+len(systems) > MaxValueSetCodes {
				return nil, nil, tooMany
			}
			continue
		}
		for _, c := range in.Concept {
			cd := vsCoding{in.System, c.Code}
			if excluded[cd] {
				continue
			}
			if err := add(cd); err != nil {
				return nil, nil, err
			}
		}
	}
	return codes, systems, nil
}
