package subscription

import (
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/phivault/phivault/internal/fhir"
)

// Criteria is a parsed R4 Subscription.criteria: a search of one
// resource type, "Observation?patient=Patient/123&code=http://loinc.org|1234-5".
type Criteria struct {
	Type  string
	Query url.Values
}

// Limits on criteria (STYLE rule 24): they are evaluated on every change
// of their type.
const (
	MaxCriteriaLen    = 2048
	MaxCriteriaParams = 16
)

// resultParams are the search parameters that shape a result page, not
// what matches: meaningless in criteria, refused.
var resultParams = map[string]bool{
	"_count": true, "_sort": true, "_include": true, "_revinclude": true, "_summary": true, "_elements": true,
	"_total": true, "_page": true, "_contained": true, "_containedType": true, "_format": true, "_pretty": true,
}

// ErrCriteria is the cause of every criteria refusal. Messages name the
// rule broken, never a value (criteria can name a patient).
var ErrCriteria = errors.New("subscription: invalid criteria")

func criteriaError(msg string) error { return fmt.Errorf("%w: %s", ErrCriteria, msg) }

// ParseCriteria parses criteria (untrusted: from the resource). It
// checks the form only; the search parameters themselves are checked
// by the record's search registry (Checker).
func ParseCriteria(s string) (Criteria, error) {
	if s == "" {
		return Criteria{}, criteriaError("criteria is empty")
	}
	if len(s) > MaxCriteriaLen {
		return Criteria{}, criteriaError("criteria is too long")
	}
	typ, q, _ := strings.Cut(s, "?")
	if strings.ContainsAny(typ, "/#") || !fhir.IsR4Type(typ) {
		return Criteria{}, criteriaError("criteria must start with an R4 resource type, as in Observation?code=...")
	}
	if !fhir.IsStorableType(typ) {
		return Criteria{}, criteriaError("criteria names a resource type this server does not store")
	}
	if strings.Contains(q, "#") {
		return Criteria{}, criteriaError("criteria must not carry a fragment")
	}
	vals, err := url.ParseQuery(q)
	if err != nil {
		return Criteria{}, criteriaError("criteria is not a valid query string")
	}
	n := 0
	for k, vs := range vals {
		name, _, _ := strings.Cut(k, ":")
		if resultParams[name] {
			return Criteria{}, criteriaError("criteria may not use the result parameter " + name)
		}
		n += len(vs)
	}
	if n > MaxCriteriaParams {
		return Criteria{}, criteriaError("criteria has too many parameters")
	}
	return Criteria{Type: typ, Query: vals}, nil
}

// Search returns the query that evaluates the criteria against one
// resource: the criteria's parameters and _id=id.
func (c Criteria) Search(id string) url.Values {
	q := url.Values{}
	for k, vs := range c.Query {
		q[k] = append([]string(nil), vs...)
	}
	q.Add("_id", id)
	return q
}
