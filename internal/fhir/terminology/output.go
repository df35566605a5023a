package terminology

import (
	"maps"
	"time"
)

// ExpandedValueSet is the answer of $expand: the value set resource vs
// (its stored JSON, decoded) without narrative and compose, with an
// R4 expansion (identifier, timestamp, total, offset, the count and
// offset parameters, contains) holding exp. identifier is a fresh
// urn:uuid the caller supplies.
func ExpandedValueSet(vs map[string]any, exp *Expansion, count int, identifier string, now time.Time) map[string]any {
	out := maps.Clone(vs)
	delete(out, "text")
	delete(out, "compose")
	delete(out, "meta")
	contains := make([]any, 0, len(exp.Codes))
	for _, c := range exp.Codes {
		m := map[string]any{"system": c.System, "code": c.Code}
		if c.Version != "" {
			m["version"] = c.Version
		}
		if c.Display != "" {
			m["display"] = c.Display
		}
		contains = append(contains, m)
	}
	params := []any{param("offset", "valueInteger", exp.Offset)}
	if count > 0 {
		params = append(params, param("count", "valueInteger", count))
	}
	e := map[string]any{
		"identifier": identifier,
		"timestamp":  now.UTC().Format(time.RFC3339),
		"total":      exp.Total,
		"offset":     exp.Offset,
		"parameter":  params,
	}
	if len(contains) > 0 {
		e["contains"] = contains
	}
	out["expansion"] = e
	return out
}

// ValidationParameters is the answer of $validate-code: result, and
// message and display when known.
func ValidationParameters(v Validation) map[string]any {
	params := []any{param("result", "valueBoolean", v.Result)}
	if v.Message != "" {
		params = append(params, param("message", "valueString", v.Message))
	}
	if v.Display != "" {
		params = append(params, param("display", "valueString", v.Display))
	}
	return map[string]any{"resourceType": "Parameters", "parameter": params}
}
