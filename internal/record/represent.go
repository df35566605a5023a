package record

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"strings"

	"github.com/phivault/phivault/internal/fhir"
)

// Representation: _summary and _elements subset what a read or a search
// returns. The subset is taken of the body the caller may see (after the
// decision and its masking), so it can only remove.

// subsetOf parses the _summary and _elements of vals.
func subsetOf(vals url.Values) (fhir.Subset, error) {
	sub, err := fhir.ParseSubset(vals["_summary"], vals["_elements"])
	if err != nil {
		// ParseSubset's messages quote nothing from the input.
		return fhir.Subset{}, failCause(ErrInvalid, "invalid", strings.TrimSuffix(err.Error(), ": "+fhir.ErrSubset.Error()), err)
	}
	return sub, nil
}

// subsetBody applies sub to a body the caller may see. A failure sends
// nothing (fail closed).
func (s *Service) subsetBody(sub fhir.Subset, body []byte) ([]byte, error) {
	out, err := s.subset.Apply(sub, body)
	if err != nil {
		return nil, fmt.Errorf("subsetting a resource: %w", err)
	}
	return out, nil
}

// Represent returns body (what a read or vread returned: the caller's
// view, masked as its decision required) as the _summary and _elements
// of vals ask. Other parameters of vals are not looked at. _summary=count
// belongs to searches and is refused here.
func (s *Service) Represent(body []byte, vals url.Values) ([]byte, error) {
	sub, err := subsetOf(vals)
	if err != nil {
		return nil, err
	}
	if sub.Count() {
		return nil, invalid("_summary=count applies to searches only")
	}
	if sub.Full() || body == nil {
		return body, nil
	}
	return s.subsetBody(sub, body)
}

// ignoredOutcome is the OperationOutcome entry a lenient search adds
// for the parameters it ignored (R4 §3.1.1.4: search.mode outcome).
// Only parameter names appear, never values.
func ignoredOutcome(ignored []string) (json.RawMessage, error) {
	if len(ignored) == 0 {
		return nil, errors.New("no ignored parameters")
	}
	issues := make([]any, 0, len(ignored))
	for _, p := range ignored {
		if !paramNameRE.MatchString(p) {
			p = "(unprintable)"
		}
		issues = append(issues, map[string]any{
			"severity": "warning", "code": "not-supported",
			"diagnostics": "the search parameter " + p + " is not supported here and was ignored (Prefer: handling=lenient)",
			"expression":  []string{p},
		})
	}
	return json.Marshal(map[string]any{"resourceType": "OperationOutcome", "issue": issues})
}

// paramNameRE is what a search parameter name (with modifier or chain)
// looks like; anything else is not echoed.
var paramNameRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_.:\-]{0,99}$`)
