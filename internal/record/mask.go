package record

import (
	"context"
	"errors"
	"maps"
	"slices"

	"github.com/phivault/phivault/internal/audit"
	"github.com/phivault/phivault/internal/authz"
	"github.com/phivault/phivault/internal/fhir/search"
	"github.com/phivault/phivault/internal/storage"
)

// Minimum necessary (authz/mask.go) beyond reads: a caller shown a type
// masked may not search it by the identifier values masking hides (a
// lookup oracle), and may not destroy what it cannot see by updating.

// PolicyMinimumNecessary is recorded as the deciding policy of a search
// refused because it would match identifiers the caller sees masked.
const PolicyMinimumNecessary = "minimum-necessary"

// refuseMaskedSearch refuses q (a parsed search, with its chains and
// _has) when it searches by identifier value a type that c may be shown
// masked: the Patient (RelatedPerson, Person) identifier parameter with
// any modifier but :missing and :text, and the :identifier modifier of
// a reference parameter that may point at such a type, unless every
// value names a system that is not masked ("system|value" or
// "system|"). The blind index cannot tell which of a resource's
// identifiers matched, so a value in any system, or :of-type, could
// match a masked SSN. The refusal carries its audit event.
func (s *Service) refuseMaskedSearch(ctx context.Context, c Caller, q *search.Query) error {
	need := map[string]bool{}
	maskedIdentifierSearches(q, need, 0)
	for _, typ := range slices.Sorted(maps.Keys(need)) {
		f, err := c.guard().Narrow(ctx, authz.Search, typ)
		if errors.Is(err, authz.ErrNeedsFacts) {
			return err
		}
		if err != nil {
			return s.denial(c, audit.ActionSearch, storage.Version{Type: q.Type}, authz.Decision{Policies: []string{"undecidable"}}, err)
		}
		if f.Mask {
			e := s.denial(c, audit.ActionSearch, storage.Version{Type: q.Type}, authz.Decision{Policies: []string{PolicyMinimumNecessary}}, nil)
			e.Issues = []Issue{{Code: "forbidden", Diagnostic: "identifiers of " + typ +
				" are masked for you (minimum necessary), so you cannot search by an identifier value unless it names a system that is not masked (system|value)"}}
			return e
		}
	}
	return nil
}

// maxMaskWalk bounds the chain nesting maskedIdentifierSearches walks
// (the parser bounds it already).
const maxMaskWalk = 16

// maskedIdentifierSearches adds to need the masked types q (and its
// chains) searches by an identifier value that may be masked.
func maskedIdentifierSearches(q *search.Query, need map[string]bool, depth int) {
	if q == nil {
		return
	}
	if depth > maxMaskWalk {
		// Fail closed: treat as a search of every masked type.
		need["Patient"], need["RelatedPerson"], need["Person"] = true, true, true
		return
	}
	for _, pr := range q.Preds {
		if pr.Param == nil {
			continue
		}
		switch {
		case authz.MaskedType(q.Type) && pr.Param.Code == "identifier":
			if !unmaskedIdentifierPred(pr) {
				need[q.Type] = true
			}
		case pr.Param.Type == search.Reference && pr.Modifier == "identifier":
			if unmaskedIdentifierPred(pr) {
				continue
			}
			for _, t := range pr.Param.Targets {
				if authz.MaskedType(t) {
					need[t] = true
				}
			}
		}
	}
	for _, ch := range q.Chains {
		for _, in := range ch.Inner {
			maskedIdentifierSearches(in, need, depth+1)
		}
	}
}

// unmaskedIdentifierPred reports whether pr, a predicate on identifier
// values, can only match identifiers that are not masked: :missing and
// :text (the type's text), or values that all name an unmasked system.
func unmaskedIdentifierPred(pr search.Pred) bool {
	if pr.Missing != nil {
		return true
	}
	if pr.ValueSet != "" {
		return false
	}
	switch pr.Modifier {
	case "text":
		return true
	case "", "not", "identifier":
	default:
		return false // :of-type and anything else
	}
	if len(pr.Terms) == 0 {
		return false
	}
	for _, t := range pr.Terms {
		sys, ok := search.TermSystem(t)
		if !ok || authz.MaskedSystem(sys) {
			return false
		}
	}
	return true
}

// maskedUpdate reports whether c's view of cur (body its content) is
// masked, so that an update by c must carry over what the mask hides
// (authz.Preserve). A caller that may update but not read cur sees
// nothing of it, masked identifiers included: masked too (fail closed).
func (s *Service) maskedUpdate(ctx context.Context, tx storage.Tx, c Caller, cur storage.Version, body []byte) (bool, error) {
	if cur.Deleted || body == nil || !authz.MayCarryIdentifiers(cur.Type, body) {
		return false, nil
	}
	d, err := s.decideWith(ctx, tx, c, audit.ActionUpdate, authz.Read, cur, body)
	if err != nil {
		if errors.Is(err, authz.ErrNeedsFacts) || StatusCode(err) == statusUnavailable {
			return false, err
		}
		return true, nil
	}
	return d.Mask, nil
}
