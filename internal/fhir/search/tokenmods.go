package search

import (
	"fmt"
	"strconv"
)

// Token modifiers beyond :not and :missing.
//
//   - :text matches the display of a Coding or the text of a
//     CodeableConcept, as a string search does: the normalised query is a
//     prefix of the normalised text ([Normalize]; at most MaxPrefixRunes
//     runes). Only the parameters in textIndexed are indexed for it:
//     every display and text of their values adds up to 32 blind prefix
//     keys under "<param>:text" (about 60 more index rows for a typical
//     coded Observation). It leaks what a string search leaks: which
//     texts share a normalised prefix.
//   - :of-type=system|code|value matches an Identifier whose type has
//     the coding system|code and whose value is value (R4). Identifiers
//     with a type are also indexed under "<param>:of-type".
//   - :in and :not-in name a ValueSet by its canonical url (optionally
//     url|version). The parser only checks the form; the record layer
//     reads the ValueSet as the caller (authorization applies to it like
//     to any read) and expands its compose (concept lists, and whole
//     systems through the system key every coded token carries) or, if
//     it has none, its stored expansion, into token terms. See
//     record.ValueSetCodes for the limits.
//   - :above and :below (subsumption) need a terminology server's
//     hierarchy and are refused.
//
// Every token with a system also gets a system-only key, so that
// code=system| (any code of that system) and system-wide ValueSet
// includes can be searched.

// textIndexed are the token parameters indexed for :text.
var textIndexed = map[string]bool{
	"code": true, "category": true, "value-concept": true, "component-code": true,
}

const (
	textSuffix   = ":text"
	ofTypeSuffix = ":of-type"
)

func tokenSystemOnlyKey(system string) string { return "y|" + system }

func ofTypeKey(system, code, value string) string {
	return strconv.Itoa(len(system)) + "|" + system + "|" + strconv.Itoa(len(code)) + "|" + code + "|" + value
}

// prefixTerms returns the string-search prefix terms of s under col.
func prefixTerms(col, s string) []Term {
	n := []rune(Normalize(s))
	out := make([]Term, 0, min(len(n), MaxPrefixRunes))
	for i := 1; i <= len(n) && i <= MaxPrefixRunes; i++ {
		out = append(out, Term{Param: col, Key: string(n[:i])})
	}
	return out
}

// tokenExtras appends the :text and :of-type values of one token item.
func (p *Param) tokenExtras(out []Value, base Value, it item) []Value {
	x, ok := it.v.(map[string]any)
	if !ok {
		return out
	}
	add := func(ts []Term) {
		if len(ts) == 0 {
			return
		}
		v := base
		v.Param, v.terms = ts[0].Param, ts
		out = append(out, v)
	}
	switch {
	case x["coding"] != nil || x["text"] != nil && x["value"] == nil: // CodeableConcept
		if !p.textIndexed {
			return out
		}
		if s, ok := x["text"].(string); ok {
			add(prefixTerms(p.Code+textSuffix, s))
		}
		cs, _ := x["coding"].([]any)
		for _, c := range cs {
			if m, ok := c.(map[string]any); ok {
				if s, ok := m["display"].(string); ok {
					add(prefixTerms(p.Code+textSuffix, s))
				}
			}
		}
	case x["code"] != nil: // Coding
		if s, ok := x["display"].(string); ok && p.textIndexed {
			add(prefixTerms(p.Code+textSuffix, s))
		}
	case it.name != "telecom" && x["value"] != nil: // Identifier
		val, _ := x["value"].(string)
		typ, _ := x["type"].(map[string]any)
		cs, _ := typ["coding"].([]any)
		if val == "" {
			return out
		}
		var ts []Term
		for _, c := range cs {
			m, _ := c.(map[string]any)
			sys, _ := m["system"].(string)
			code, _ := m["code"].(string)
			if code != "" {
				ts = append(ts, Term{Param: p.Code + ofTypeSuffix, Key: ofTypeKey(sys, code, val)})
			}
		}
		add(ts)
	}
	return out
}

// tokenModifierTerms handles :text and :of-type; ok is false for other
// modifiers.
func tokenModifierTerms(p *Param, name, modifier, v string) (t Term, ok bool, err error) {
	switch modifier {
	case "text":
		if !p.textIndexed {
			return t, true, fmt.Errorf("parsing search parameter %s: :text is not indexed for this parameter: %w", name, ErrUnsupported)
		}
		n := []rune(Normalize(unescape(v)))
		if len(n) == 0 {
			return t, true, fmt.Errorf("parsing search parameter %s: empty value: %w", name, ErrInvalidValue)
		}
		return Term{Param: p.Code + textSuffix, Key: string(n[:min(len(n), MaxPrefixRunes)])}, true, nil
	case "of-type":
		parts := splitEscaped(v, '|')
		if len(parts) != 3 || parts[1] == "" || parts[2] == "" {
			return t, true, fmt.Errorf("parsing search parameter %s: want system|code|value (the identifier type's coding, then the value): %w", name, ErrInvalidValue)
		}
		return Term{Param: p.Code + ofTypeSuffix, Key: ofTypeKey(unescape(parts[0]), unescape(parts[1]), unescape(parts[2]))}, true, nil
	}
	return t, false, nil
}

// valueSetModifier reports whether modifier is :in or :not-in.
func valueSetModifier(modifier string) bool { return modifier == "in" || modifier == "not-in" }

// TokenTerms returns the terms a token search for system|code (hasSystem
// false: code in any system; code "" : any code of system) matches, the
// way ParseQuery builds them: the record layer expands ValueSets with it.
func TokenTerms(p *Param, system, code string, hasSystem bool) Term {
	switch {
	case !hasSystem:
		return Term{Param: p.Code, Key: tokenAnyKey(code)}
	case code == "":
		return Term{Param: p.Code, Key: tokenSystemOnlyKey(system)}
	case system == "":
		return Term{Param: p.Code, Key: tokenNoSystemKey(code)}
	}
	return Term{Param: p.Code, Key: tokenSystemKey(system, code)}
}
