package authz

import (
	"encoding/json"
	"fmt"
	"strings"
)

// Minimum necessary (DESIGN §8): a caller whose decision carries Mask
// (the policies do not permit viewIdentifiers) gets the resource
// without its government identifiers, and meta.security says so with
// the v3 ObservationValue code REDACTED.
//
// What a masked view hides, in the resource and in each resource it
// contains:
//
//   - identifiers of a masked system or type (sensitiveIdentifier);
//   - the narrative (text): free text cannot be redacted reliably, so
//     it is replaced by a generated "withheld" narrative of status
//     "empty";
//   - the resource's own extensions (resource.extension) that carry,
//     at any depth of a complex extension, a valueString or
//     valueMarkdown (free text) or a valueIdentifier that is masked:
//     the whole extension is removed. Extensions on elements and
//     modifierExtension are kept (dropping a modifier would change the
//     meaning of what is shown).
//
// Free text elsewhere (a telecom value, an address line) is not
// pattern-matched: what was entered in the wrong field is shown.
//
// Resources of other types are masked where they carry a person's
// identifiers (mask_carried.go).

// SecuritySystem is the v3 ObservationValue code system of the
// REDACTED and MASKED codes.
const SecuritySystem = "http://terminology.hl7.org/CodeSystem/v3-ObservationValue"

// maskedSystems and maskedTypes name the identifiers removed: US SSN,
// and the v2 identifier types SS (SSN), SB (social beneficiary), DL
// (driver's licence), PPN (passport).
var (
	maskedSystems = map[string]bool{"http://hl7.org/fhir/sid/us-ssn": true, "urn:oid:2.16.840.1.113883.4.1": true}
	maskedTypes   = map[string]bool{"SS": true, "SB": true, "DL": true, "PPN": true}
)

// maskedPhrases are the words of an identifier's type.text or
// type.coding display that make it masked (normalised: lower case,
// letters and digits only, single spaces).
var maskedPhrases = []string{"ssn", "social security", "driver licence", "driver license", "drivers licence",
	"drivers license", "driving licence", "driving license", "passport"}

// MaskedType reports whether decisions on resources of typ carry Mask:
// the types that hold a person's government identifiers.
func MaskedType(typ string) bool {
	return typ == "Patient" || typ == "RelatedPerson" || typ == "Person"
}

// MaskedSystem reports whether identifiers of system are masked
// whatever their type.
//
// Systems are compared as written by hand: case-insensitively and
// without trailing slashes ("HTTP://HL7.ORG/FHIR/SID/US-SSN/" is the US
// SSN system). The OID arcs of US state driver's licences
// (2.16.840.1.113883.4.3.<state>) and of passports
// (2.16.840.1.113883.4.330.<country>) are masked whatever the state or
// country.
func MaskedSystem(system string) bool {
	s := strings.TrimRight(strings.ToLower(strings.TrimSpace(system)), "/")
	if maskedSystems[s] {
		return true
	}
	for _, arc := range maskedOIDArcs {
		if strings.HasPrefix(s, arc) && len(s) > len(arc) {
			return true
		}
	}
	return false
}

// maskedOIDArcs are the OID prefixes under which every system is masked:
// US state driver's licences, passports by country.
var maskedOIDArcs = []string{"urn:oid:2.16.840.1.113883.4.3.", "urn:oid:2.16.840.1.113883.4.330."}

// withheldNarrative is the narrative a masked view shows.
func withheldNarrative() map[string]any {
	return map[string]any{"status": "empty",
		"div": `<div xmlns="http://www.w3.org/1999/xhtml">Narrative withheld: identifiers are masked in this view (minimum necessary).</div>`}
}

// Redact returns body as a masked view shows it (see above), marked
// REDACTED in meta.security when anything was removed (unchanged
// otherwise). Errors (not JSON) are returned: the caller fails closed
// and sends nothing.
func Redact(body []byte) ([]byte, error) {
	var res map[string]any
	if err := json.Unmarshal(body, &res); err != nil || res == nil {
		return nil, fmt.Errorf("redacting: %w", ErrUndecidable)
	}
	typ, _ := res["resourceType"].(string)
	redact := redactResource
	if typ != "" && !MaskedType(typ) {
		redact = redactCarrier // mask_carried.go
	}
	if !redact(res) {
		return body, nil
	}
	meta, _ := res["meta"].(map[string]any)
	if meta == nil {
		meta = map[string]any{}
		res["meta"] = meta
	}
	sec, _ := meta["security"].([]any)
	meta["security"] = append(sec, map[string]any{"system": SecuritySystem, "code": "REDACTED", "display": "redacted"})
	return json.Marshal(res)
}

// redactResource removes from res (a resource or a contained one) what
// a masked view hides, and reports whether anything changed.
func redactResource(res map[string]any) bool {
	changed := redactIdentifiers(res)
	if _, ok := res["text"]; ok {
		res["text"] = withheldNarrative()
		changed = true
	}
	if exts, ok := res["extension"].([]any); ok {
		kept := keep(exts, func(x any) bool { return !hidesExtension(x, 0) })
		if len(kept) != len(exts) {
			changed = true
			setList(res, "extension", kept)
		}
	}
	if cs, ok := res["contained"].([]any); ok {
		for _, x := range cs {
			if m, ok := x.(map[string]any); ok && redactResource(m) {
				changed = true
			}
		}
	}
	return changed
}

// redactIdentifiers removes res's own masked identifiers, and reports
// whether it removed any.
func redactIdentifiers(res map[string]any) bool {
	ids, ok := res["identifier"].([]any)
	if !ok {
		return false
	}
	kept := keep(ids, func(x any) bool { m, _ := x.(map[string]any); return !sensitiveIdentifier(m) })
	if len(kept) == len(ids) {
		return false
	}
	setList(res, "identifier", kept)
	return true
}

// preserveIdentifiers gives next its own unmasked identifiers, then
// old's masked ones.
func preserveIdentifiers(old, next map[string]any) {
	oldIDs, _ := old["identifier"].([]any)
	nextIDs, _ := next["identifier"].([]any)
	ids := keep(nextIDs, func(x any) bool { m, _ := x.(map[string]any); return !sensitiveIdentifier(m) })
	ids = append(ids, keep(oldIDs, func(x any) bool { m, _ := x.(map[string]any); return sensitiveIdentifier(m) })...)
	setListOver(next, "identifier", ids)
}

// Preserve turns next, the body a caller whose view of the stored
// version cur is masked sends as its next version, into what is stored:
// the elements the mask hides are carried over from cur, and the ones
// of next are dropped (the caller can neither see nor set them). So a
// masked caller edits what it sees without destroying what it cannot:
//
//   - identifiers: next's unmasked ones, then cur's masked ones;
//   - narrative: cur's (none if cur has none);
//   - resource extensions: next's that the mask keeps, then cur's that
//     it hides;
//   - contained resources: the same, for each one of next with the id
//     and type of one of cur; a new one loses what the mask hides;
//   - meta.security: the REDACTED label of the view is removed, unless
//     cur carried it.
//
// Errors (cur not JSON) are returned: the caller fails closed.
func Preserve(cur []byte, next map[string]any) error {
	var old map[string]any
	if err := json.Unmarshal(cur, &old); err != nil || old == nil {
		return fmt.Errorf("carrying masked elements over: %w", ErrUndecidable)
	}
	if typ, _ := next["resourceType"].(string); typ == "" || MaskedType(typ) {
		preserve(old, next)
	} else {
		preserveCarrier(old, next) // mask_carried.go
	}
	if !redactedLabel(old["meta"]) {
		if meta, ok := next["meta"].(map[string]any); ok {
			if sec, ok := meta["security"].([]any); ok {
				setList(meta, "security", keep(sec, func(x any) bool { return !isRedactedCoding(x) }))
				if len(meta) == 0 {
					delete(next, "meta")
				}
			}
		}
	}
	return nil
}

func preserve(old, next map[string]any) {
	preserveIdentifiers(old, next)

	if t, ok := old["text"]; ok {
		next["text"] = t
	} else {
		delete(next, "text")
	}

	oldExt, _ := old["extension"].([]any)
	nextExt, _ := next["extension"].([]any)
	exts := keep(nextExt, func(x any) bool { return !hidesExtension(x, 0) })
	exts = append(exts, keep(oldExt, func(x any) bool { return hidesExtension(x, 0) })...)
	setListOver(next, "extension", exts)

	eachContained(old, next, preserve)
}

// eachContained calls fn for each contained resource of next with the
// one of old it continues (matched by type and id, in order when ids
// repeat: invalid, but each old one is carried over at most once), or
// an empty one for a new one: nothing to carry over, and the caller may
// not set what the mask hides.
func eachContained(old, next map[string]any, fn func(prev, m map[string]any)) {
	cs, _ := next["contained"].([]any)
	if len(cs) == 0 {
		return
	}
	oldCs := map[string][]map[string]any{}
	if ocs, ok := old["contained"].([]any); ok {
		for _, x := range ocs {
			if m, ok := x.(map[string]any); ok {
				id, _ := m["id"].(string)
				typ, _ := m["resourceType"].(string)
				oldCs[typ+"/"+id] = append(oldCs[typ+"/"+id], m)
			}
		}
	}
	for _, x := range cs {
		m, ok := x.(map[string]any)
		if !ok {
			continue
		}
		id, _ := m["id"].(string)
		typ, _ := m["resourceType"].(string)
		prev := map[string]any{}
		if os := oldCs[typ+"/"+id]; len(os) > 0 {
			oldCs[typ+"/"+id], prev = os[1:], os[0]
		}
		fn(prev, m)
	}
}

// keep returns the elements of xs for which ok holds (a new slice).
func keep(xs []any, ok func(any) bool) []any {
	out := make([]any, 0, len(xs))
	for _, x := range xs {
		if ok(x) {
			out = append(out, x)
		}
	}
	return out
}

// setList sets m[key] to xs, or removes key when xs is empty (FHIR has
// no empty arrays).
func setList(m map[string]any, key string, xs []any) {
	if len(xs) == 0 {
		delete(m, key)
		return
	}
	m[key] = xs
}

// setListOver is setList, except that a value of key that is not a
// list (not FHIR: validation refuses it) is left as it is when xs, the
// list that would replace it, is empty: Redact did not touch it either.
func setListOver(m map[string]any, key string, xs []any) {
	if _, isList := m[key].([]any); !isList && len(xs) == 0 {
		return
	}
	setList(m, key, xs)
}

func isRedactedCoding(x any) bool {
	m, _ := x.(map[string]any)
	sys, _ := m["system"].(string)
	code, _ := m["code"].(string)
	return sys == SecuritySystem && code == "REDACTED"
}

func redactedLabel(meta any) bool {
	m, _ := meta.(map[string]any)
	sec, _ := m["security"].([]any)
	for _, x := range sec {
		if isRedactedCoding(x) {
			return true
		}
	}
	return false
}

// maxExtensionDepth bounds the nesting hidesExtension walks; deeper
// nesting counts as hiding (fail closed).
const maxExtensionDepth = 16

// hidesExtension reports whether a masked view removes the extension
// x: it carries, itself or in a nested extension, free text
// (valueString, valueMarkdown) or a masked valueIdentifier.
func hidesExtension(x any, depth int) bool {
	if depth > maxExtensionDepth {
		return true
	}
	m, ok := x.(map[string]any)
	if !ok {
		return false
	}
	if _, ok := m["valueString"]; ok {
		return true
	}
	if _, ok := m["valueMarkdown"]; ok {
		return true
	}
	if id, ok := m["valueIdentifier"].(map[string]any); ok && sensitiveIdentifier(id) {
		return true
	}
	subs, _ := m["extension"].([]any)
	for _, s := range subs {
		if hidesExtension(s, depth+1) {
			return true
		}
	}
	return false
}

func sensitiveIdentifier(id map[string]any) bool {
	if id == nil {
		return false
	}
	if sys, _ := id["system"].(string); MaskedSystem(sys) {
		return true
	}
	typ, _ := id["type"].(map[string]any)
	if text, _ := typ["text"].(string); maskedPhrase(text) {
		return true
	}
	codings, _ := typ["coding"].([]any)
	for _, c := range codings {
		m, _ := c.(map[string]any)
		if code, _ := m["code"].(string); maskedTypes[code] {
			return true
		}
		if display, _ := m["display"].(string); maskedPhrase(display) {
			return true
		}
	}
	return false
}

// maskedPhrase reports whether s (an identifier type's text or
// display) names a masked kind of identifier, case-insensitively and
// whatever its punctuation ("SSN", "Social Security number", "Driver's
// License").
func maskedPhrase(s string) bool {
	if s == "" {
		return false
	}
	var b strings.Builder
	space := true
	for _, r := range strings.ToLower(s) {
		switch {
		case r == '\'' || r == '\u2019':
			// "driver's" reads as "drivers"
		case r >= 'a' && r <= 'z' || r >= '0' && r <= '9':
			b.WriteRune(r)
			space = false
		default:
			if !space {
				b.WriteByte(' ')
				space = true
			}
		}
	}
	norm := " " + strings.TrimSpace(b.String()) + " "
	for _, p := range maskedPhrases {
		if strings.Contains(norm, " "+p+" ") || strings.Contains(norm, " "+p+"s ") {
			return true
		}
	}
	return false
}
