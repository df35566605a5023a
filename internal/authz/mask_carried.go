package authz

import "bytes"

// Minimum necessary beyond the person types: a resource of any other
// type (a Claim, a Coverage, an Observation) can carry a person's
// government identifiers in two places, and a masked view hides them
// there too:
//
//   - a contained Patient, RelatedPerson or Person: redacted as the
//     resource itself would be (identifiers, narrative, free-text
//     extensions);
//   - a Reference's identifier (Claim.patient.identifier,
//     Coverage.subscriber.identifier) of a masked system or type:
//     removed, the reference itself kept.
//
// The carrier's own identifiers of a masked system or type are removed
// as a person's are (a resource identified by an SSN is a person's);
// its narrative and extensions are not touched: they describe the claim
// or the observation.

// maxCarryDepth bounds the walk of a carrier; deeper nesting is not
// FHIR (the decoder bounds depth at 64) but fails closed: the element
// is removed.
const maxCarryDepth = 64

// MayCarryIdentifiers reports whether body, a resource of typ, may
// carry a person's government identifiers (an identifier of its own or
// of a Reference, or a contained resource): only then does a read of it
// need the viewIdentifiers decision. It errs towards yes (a byte test);
// a person type always may.
func MayCarryIdentifiers(typ string, body []byte) bool {
	if MaskedType(typ) {
		return true
	}
	return bytes.Contains(body, []byte(`"identifier"`)) || bytes.Contains(body, []byte(`"contained"`))
}

// redactCarrier removes from res, a resource of a type that is not
// masked, what a masked view hides of the persons it carries, and
// reports whether anything changed.
func redactCarrier(res map[string]any) bool {
	changed := redactIdentifiers(res)
	if cs, ok := res["contained"].([]any); ok {
		for _, x := range cs {
			m, ok := x.(map[string]any)
			if !ok {
				continue
			}
			typ, _ := m["resourceType"].(string)
			if MaskedType(typ) {
				if redactResource(m) {
					changed = true
				}
			} else if redactCarrier(m) {
				changed = true
			}
		}
	}
	for k, v := range res {
		if k == "contained" || k == "identifier" {
			continue
		}
		if redactReferences(v, 0) {
			changed = true
		}
	}
	return changed
}

// redactReferences removes the masked Reference.identifier values
// under v, and reports whether it removed any.
func redactReferences(v any, depth int) bool {
	changed := false
	switch x := v.(type) {
	case map[string]any:
		if depth > maxCarryDepth {
			clear(x)
			return true
		}
		if id, ok := x["identifier"].(map[string]any); ok && sensitiveIdentifier(id) {
			delete(x, "identifier")
			changed = true
		}
		for _, e := range x {
			if redactReferences(e, depth+1) {
				changed = true
			}
		}
	case []any:
		for _, e := range x {
			if redactReferences(e, depth+1) {
				changed = true
			}
		}
	}
	return changed
}

// preserveCarrier is preserve for a carrier: the masked identifiers of
// its contained persons (matched by type and id) and of its references
// (matched by their path and reference) are carried over from old, and
// the ones next sends are dropped.
func preserveCarrier(old, next map[string]any) {
	preserveIdentifiers(old, next)
	eachContained(old, next, func(prev, m map[string]any) {
		if typ, _ := m["resourceType"].(string); MaskedType(typ) {
			preserve(prev, m)
		} else {
			preserveCarrier(prev, m)
		}
	})
	for k, v := range next {
		if k != "contained" && k != "identifier" {
			preserveReferences(old[k], v, 0)
		}
	}
}

// preserveReferences walks next and old (the same element of the
// stored version, or nil) side by side: a Reference of next keeps old's
// masked identifier when it still names the same target, and never one
// of its own.
func preserveReferences(old, next any, depth int) {
	if depth > maxCarryDepth {
		return
	}
	switch n := next.(type) {
	case map[string]any:
		o, _ := old.(map[string]any)
		if id, ok := n["identifier"].(map[string]any); ok && sensitiveIdentifier(id) {
			delete(n, "identifier")
		}
		if oid, ok := o["identifier"].(map[string]any); ok && sensitiveIdentifier(oid) {
			if _, has := n["identifier"]; !has && n["reference"] == o["reference"] {
				n["identifier"] = oid
			}
		}
		for k, e := range n {
			if _, ref := e.(map[string]any); ref && k == "identifier" {
				continue // a Reference.identifier: decided above
			}
			preserveReferences(o[k], e, depth+1)
		}
	case []any:
		o, _ := old.([]any)
		for i, e := range n {
			var oe any
			if i < len(o) {
				oe = o[i]
			}
			preserveReferences(oe, e, depth+1)
		}
	}
}
