package search

import (
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/phivault/phivault/internal/fhir"
)

// Value is one search value extracted from a resource, before
// normalisation into index terms ([IndexTerms]). Which fields are set
// depends on Type: System, Code and HasSystem for tokens; Str for strings;
// Ref ("Type/id") for references; Lo and Hi (UTC, inclusive, microsecond
// precision) for dates. Values may hold PHI: never log them.
type Value struct {
	Param       string // parameter code (the index column: "subject:identifier" for a Reference.identifier)
	Type        ParamType
	Identifying bool // copied from the Param: see [Param.Identifying]

	System, Code string
	HasSystem    bool // the token had a system (Coding.system, Identifier.system, ...)
	Str          string
	Ref          string
	Lo, Hi       time.Time

	// terms are the index terms of number, quantity, uri and composite
	// values and of token :text and :of-type values, computed at
	// extraction (number.go, quantity.go, uri.go, composite.go,
	// tokenmods.go); IndexTerms returns them as they are.
	terms []Term
}

// maxValuesPerResource bounds the values one resource can produce, so a
// hostile resource (100,000 identifiers) cannot inflate the index.
const maxValuesPerResource = 4096

// maxComputedTerms bounds the index terms of the values whose terms are
// computed at extraction (numbers, quantities, uris, composites, token
// :text and :of-type): a composite repetition alone can yield dozens.
const maxComputedTerms = 16384

// Extract evaluates every supported parameter of res's type and returns
// the values found, in parameter order. A resource type with no supported
// parameters yields none. The error wraps [fhir.ErrInvalid] for a date
// that is malformed or impossible (the schema's regex admits 2021-02-30)
// and [fhir.ErrTooLarge] when the resource yields more than 4,096 values;
// its text names the parameter, never the value. Extract does not modify
// res and is safe for concurrent use.
func (r *Registry) Extract(res fhir.Resource) ([]Value, error) {
	var out []Value
	computed := 0 // terms computed at extraction, bounded like values
	for _, p := range r.Params(res.Type()) {
		if !p.indexed() {
			continue // answered from other parameters' rows (composite.go)
		}
		reps := 0
		for _, it := range evaluate(p.expr, res) {
			var err error
			before := len(out)
			if p.Type == Composite {
				out, err = p.compositeValues(out, Value{Param: p.Code, Type: p.Type}, it, &reps)
				if err != nil {
					return nil, fmt.Errorf("%w: %w", err, fhir.ErrTooLarge)
				}
			} else if out, err = p.values(out, it); err != nil {
				return nil, err
			}
			// Every value this item added (a CodeableConcept adds one per
			// coding and per display), not only the last.
			for _, v := range out[before:] {
				computed += len(v.terms)
			}
			if computed > maxComputedTerms {
				return nil, fmt.Errorf("extracting search values: more than %d index terms: %w", maxComputedTerms, fhir.ErrTooLarge)
			}
			if len(out) > maxValuesPerResource {
				return nil, fmt.Errorf("extracting search values: more than %d: %w", maxValuesPerResource, fhir.ErrTooLarge)
			}
		}
	}
	return out, nil
}

func (p *Param) values(out []Value, it item) ([]Value, error) {
	base := Value{Param: p.Code, Type: p.Type, Identifying: p.identifying}
	switch p.Type {
	case Token:
		return p.tokenExtras(tokenValues(out, base, it), base, it), nil
	case Number:
		if ks, ok := numberValueKeys(it.v); ok {
			base.terms = keyTerms(p.Code, ks, nil)
			out = append(out, base)
		}
		return out, nil
	case Quantity:
		if m, ok := it.v.(map[string]any); ok {
			if ks := quantityValueKeys(m); len(ks) > 0 {
				base.terms = keyTerms(p.Code, ks, nil)
				out = append(out, base)
			}
		}
		return out, nil
	case URI:
		if u, ok := it.v.(string); ok && u != "" {
			base.Str, base.terms = u, uriValueTerms(p.Code, u)
			out = append(out, base)
		}
		return out, nil
	case String:
		return stringValues(out, base, it.v), nil
	case Reference:
		if m, ok := it.v.(map[string]any); ok {
			if ref, ok := m["reference"].(string); ok {
				if typ, id, ok := parseReference(ref); ok {
					base.Ref = typ + "/" + id
					out = append(out, base)
				}
			}
			// Reference.identifier, for the :identifier modifier: a
			// token value under the column Param+IdentifierSuffix.
			if id, ok := m["identifier"].(map[string]any); ok {
				sys, hasSys := id["system"].(string)
				if val, _ := id["value"].(string); val != "" {
					out = append(out, Value{Param: p.Code + IdentifierSuffix, Type: Token, Identifying: p.identifying,
						System: sys, Code: val, HasSystem: hasSys})
				}
			}
		}
		return out, nil
	case Date:
		return dateValues(out, base, it.v)
	}
	return out, nil
}

func tokenValues(out []Value, base Value, it item) []Value {
	add := func(sys, code string, hasSys bool) {
		if code == "" {
			return
		}
		v := base
		v.System, v.Code, v.HasSystem = sys, code, hasSys
		out = append(out, v)
	}
	coding := func(m map[string]any) {
		sys, hasSys := m["system"].(string)
		code, _ := m["code"].(string)
		add(sys, code, hasSys)
	}
	switch x := it.v.(type) {
	case string:
		add("", x, false)
	case bool:
		add("", fmt.Sprint(x), false)
	case map[string]any:
		switch {
		case x["coding"] != nil: // CodeableConcept
			cs, _ := x["coding"].([]any)
			for _, c := range cs {
				if m, ok := c.(map[string]any); ok {
					coding(m)
				}
			}
		case x["code"] != nil: // Coding
			coding(x)
		case it.name == "telecom": // ContactPoint: system is phone, email, ...
			sys, hasSys := x["system"].(string)
			val, _ := x["value"].(string)
			add(sys, val, hasSys)
		case x["value"] != nil: // Identifier
			sys, hasSys := x["system"].(string)
			val, _ := x["value"].(string)
			add(sys, val, hasSys)
		}
	}
	return out
}

// humanNameParts and addressParts are the string parts a string search
// matches (R4 search.html, string: HumanName and Address).
var (
	humanNameParts = []string{"family", "given", "prefix", "suffix", "text"}
	addressParts   = []string{"line", "city", "district", "state", "postalCode", "country", "text"}
)

func stringValues(out []Value, base Value, v any) []Value {
	add := func(s string) {
		if strings.TrimSpace(s) == "" {
			return
		}
		nv := base
		nv.Str = s
		out = append(out, nv)
	}
	switch x := v.(type) {
	case string:
		add(x)
	case map[string]any:
		parts := humanNameParts
		if _, isName := x["family"]; !isName {
			if _, isName = x["given"]; !isName {
				for _, k := range addressParts {
					if _, ok := x[k]; ok && k != "text" {
						parts = addressParts
						break
					}
				}
			}
		}
		for _, k := range parts {
			switch pv := x[k].(type) {
			case string:
				add(pv)
			case []any:
				for _, s := range pv {
					if s, ok := s.(string); ok {
						add(s)
					}
				}
			}
		}
	}
	return out
}

func dateValues(out []Value, base Value, v any) ([]Value, error) {
	bad := func() error {
		return fmt.Errorf("extracting search parameter %s: invalid date: %w", base.Param, fhir.ErrInvalid)
	}
	switch x := v.(type) {
	case string:
		lo, hi, _, ok := parseDate(x)
		if !ok {
			return nil, bad()
		}
		base.Lo, base.Hi = lo, hi
		return append(out, base), nil
	case map[string]any:
		if x["start"] == nil && x["end"] == nil {
			if ev, ok := x["event"].([]any); ok { // Timing (not reached by the
				// supported expressions, which navigate to event themselves)
				for _, e := range ev {
					var err error
					if out, err = dateValues(out, base, e); err != nil {
						return nil, err
					}
				}
			}
			return out, nil
		}
		base.Lo, base.Hi = minTime, maxTime // an open end is unbounded
		if s, ok := x["start"].(string); ok {
			lo, _, _, ok := parseDate(s)
			if !ok {
				return nil, bad()
			}
			base.Lo = lo
		}
		if s, ok := x["end"].(string); ok {
			_, hi, _, ok := parseDate(s)
			if !ok {
				return nil, bad()
			}
			base.Hi = hi
		}
		if base.Hi.Before(base.Lo) {
			return nil, fmt.Errorf("extracting search parameter %s: period ends before it starts: %w", base.Param, fhir.ErrInvalid)
		}
		return append(out, base), nil
	}
	return out, nil
}

// keyTerms appends a term under param for each key to out.
func keyTerms(param string, keys []string, out []Term) []Term {
	for _, k := range keys {
		out = append(out, Term{Param: param, Key: k})
	}
	return out
}

// idRE is the R4 id type.
var idRE = regexp.MustCompile(`^[A-Za-z0-9\-.]{1,64}$`)

// parseReference returns the type and id of a literal reference:
// relative "Type/id", with or without "/_history/v", or an absolute URL
// ending that way. Contained ("#x"), logical-only, "urn:" and conditional
// ("Type?...") references are not literal: ok is false.
func parseReference(ref string) (typ, id string, ok bool) {
	if ref == "" || strings.HasPrefix(ref, "#") || strings.HasPrefix(ref, "urn:") || strings.ContainsAny(ref, "?#") {
		return "", "", false
	}
	parts := strings.Split(ref, "/")
	if n := len(parts); n >= 4 && parts[n-2] == "_history" {
		parts = parts[:n-2]
	}
	n := len(parts)
	if n < 2 {
		return "", "", false
	}
	typ, id = parts[n-2], parts[n-1]
	if n > 2 && !strings.Contains(ref, "://") {
		return "", "", false // a relative reference is exactly Type/id
	}
	if !fhir.IsR4Type(typ) || !idRE.MatchString(id) {
		return "", "", false
	}
	return typ, id, true
}
