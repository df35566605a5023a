package record

import (
	"encoding/json"
	"net/url"
	"strings"
	"time"

	"github.com/phivault/phivault/internal/fhir"
	"github.com/phivault/phivault/internal/fhir/search"
	"github.com/phivault/phivault/internal/storage"
)

// everythingParams are the $everything parameters a page's cursor
// carries (sealed, so no value shows in a next link).
var everythingParams = []string{"_since", "_type", "start", "end"}

func everythingFilters(vals url.Values) url.Values {
	out := url.Values{}
	for _, k := range everythingParams {
		if v, ok := vals[k]; ok {
			out[k] = v
		}
	}
	return out
}

// careDateParams names, per type, the search parameter whose values are
// the care date start and end of $everything filter on: the R4 common
// "date" parameter (clinical date) where the type has it, else these.
// A resource whose type has none, or that has no value for it, is not
// dated care and is always included (the Patient, a Coverage...).
var careDateParams = map[string]string{
	"Condition":                "recorded-date",
	"MedicationRequest":        "authoredon",
	"MedicationAdministration": "effective-time",
	"MedicationDispense":       "whenhandedover",
	"ServiceRequest":           "authored",
	"Claim":                    "created",
	"ExplanationOfBenefit":     "created",
	"DocumentReference":        "date",
}

// everythingKeep filters $everything's scan.
type everythingKeep struct {
	since    time.Time
	types    map[string]bool // nil: every type
	lo, hi   time.Time       // care dates; zero: unbounded
	reg      *search.Registry
	byPeriod bool
}

// everythingFilter parses _since, _type, start and end.
func (s *Service) everythingFilter(vals url.Values) (everythingKeep, error) {
	k := everythingKeep{reg: s.reg}
	for _, p := range everythingParams {
		if len(vals[p]) > 1 && p != "_type" {
			return k, invalid(p + " may be given once")
		}
	}
	if v := vals.Get("_since"); v != "" {
		t, err := time.Parse(time.RFC3339Nano, v)
		if err != nil {
			return k, invalid("_since must be an instant such as 2024-01-01T00:00:00Z")
		}
		k.since = t
	}
	for _, list := range vals["_type"] {
		for _, t := range strings.Split(list, ",") {
			if !fhir.IsStorableType(t) {
				return k, invalid("_type names a type that is not an R4 resource type of the record")
			}
			if k.types == nil {
				k.types = map[string]bool{}
			}
			k.types[t] = true
		}
	}
	if v := vals.Get("start"); v != "" {
		lo, _, ok := search.DateRange(v)
		if !ok {
			return k, invalid("start must be a date such as 2024-01-01")
		}
		k.lo, k.byPeriod = lo, true
	}
	if v := vals.Get("end"); v != "" {
		_, hi, ok := search.DateRange(v)
		if !ok {
			return k, invalid("end must be a date such as 2024-12-31")
		}
		k.hi, k.byPeriod = hi, true
	}
	if !k.lo.IsZero() && !k.hi.IsZero() && k.hi.Before(k.lo) {
		return k, invalid("end is before start")
	}
	return k, nil
}

// version reports whether v passes the filters that need no content.
func (k everythingKeep) version(v storage.Version) bool {
	if !k.since.IsZero() && !v.LastUpdated.After(k.since) {
		return false
	}
	return k.types == nil || k.types[v.Type]
}

// body reports whether a resource of typ passes start and end: a
// resource with care dates needs one that overlaps [start, end].
func (k everythingKeep) body(typ string, body []byte) bool {
	if !k.byPeriod {
		return true
	}
	code := "date"
	if c, ok := careDateParams[typ]; ok {
		code = c
	}
	p, ok := k.reg.Lookup(typ, code)
	if !ok || p.Type != search.Date {
		return true // no care date: not filtered by one
	}
	var res map[string]any
	dec := json.NewDecoder(strings.NewReader(string(body)))
	dec.UseNumber()
	if dec.Decode(&res) != nil {
		return false
	}
	vals, err := k.reg.Extract(fhir.Resource(res))
	if err != nil {
		return false
	}
	dated := false
	for _, v := range vals {
		if v.Param != code || v.Type != search.Date {
			continue
		}
		dated = true
		if (k.lo.IsZero() || !v.Hi.Before(k.lo)) && (k.hi.IsZero() || !v.Lo.After(k.hi)) {
			return true
		}
	}
	return !dated
}
