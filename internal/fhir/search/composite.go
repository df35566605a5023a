package search

import (
	"fmt"
	"strconv"
	"strings"
)

// Composite search (Observation code-value-quantity,
// component-code-value-quantity, code-value-concept,
// component-code-value-concept, combo-code-value-quantity). The R4
// definition evaluates its expression (Observation, or each
// Observation.component) and, within each result, its two components:
// a code (token) and a value (quantity or token). phivault indexes the
// pair as one blind key per (code key, value key) combination of one
// repetition, so code-value-quantity=http://loinc.org|8480-6$gt140
// matches only a component whose own code is 8480-6 and whose own value
// is above 140 — never the code of one component with the value of
// another.
//
// Cost: (2 token keys per coding) × (the value's keys: 7 per quantity
// family, 2 per coding) rows per repetition; about 40 to 90 for a coded
// quantity. Leak: as the two parts (number.go, tokens), and in addition
// which repetition's code goes with which value bucket. Query: both
// parts are required; the value part takes the prefixes of its type but
// not ne (the negation of a pair is ambiguous), and system| alone is
// not supported on the code.

// component is one part of a composite parameter.
type component struct {
	typ  ParamType // Token or Quantity
	expr expr
}

// maxCompositeItems bounds the repetitions of one composite parameter
// one resource may have (each yields many index rows).
const maxCompositeItems = 64

func compileComponents(defs [][2]string, types map[string]string) ([]component, error) {
	if len(defs) != 2 {
		return nil, fmt.Errorf("composite with %d components", len(defs))
	}
	var out []component
	for _, d := range defs {
		var c component
		switch types[d[0]] {
		case "token":
			c.typ = Token
		case "quantity":
			c.typ = Quantity
		default:
			return nil, fmt.Errorf("composite component of type %q", types[d[0]])
		}
		e, err := compile(d[1])
		if err != nil {
			return nil, err
		}
		c.expr = e
		out = append(out, c)
	}
	if out[0].typ != Token {
		return nil, fmt.Errorf("composite whose first component is not a token")
	}
	return out, nil
}

// tokenKeys returns the keys of one token value (the any-system key and
// the system|code or no-system key).
func tokenKeys(v Value) []string {
	k := []string{tokenAnyKey(v.Code)}
	if v.HasSystem {
		return append(k, tokenSystemKey(v.System, v.Code))
	}
	return append(k, tokenNoSystemKey(v.Code))
}

// componentKeys returns the keys of component c within one repetition.
func (c component) keys(it item) []string {
	var out []string
	for _, x := range c.expr.eval([]item{it}, 0) {
		switch c.typ {
		case Token:
			for _, v := range tokenValues(nil, Value{Type: Token}, x) {
				out = append(out, tokenKeys(v)...)
			}
		case Quantity:
			if m, ok := x.v.(map[string]any); ok {
				out = append(out, quantityValueKeys(m)...)
			}
		}
	}
	return out
}

func compositeKey(a, b string) string { return strconv.Itoa(len(a)) + "|" + a + "$" + b }

// compositeValues appends the value of one repetition: every pairing of
// its code keys with its value keys.
func (p *Param) compositeValues(out []Value, base Value, it item, n *int) ([]Value, error) {
	if *n++; *n > maxCompositeItems {
		return nil, fmt.Errorf("extracting search parameter %s: more than %d repetitions", p.Code, maxCompositeItems)
	}
	codes, vals := p.components[0].keys(it), p.components[1].keys(it)
	if len(codes) == 0 || len(vals) == 0 {
		return out, nil
	}
	ts := make([]Term, 0, len(codes)*len(vals))
	for _, a := range codes {
		for _, b := range vals {
			ts = append(ts, Term{Param: p.Code, Key: compositeKey(a, b)})
		}
	}
	base.terms = ts
	return append(out, base), nil
}

// compositeQueryTerms returns the terms of one composite search value
// (code$value).
func compositeQueryTerms(p *Param, name, v string) ([]Term, error) {
	parts := splitEscaped(v, '$')
	if len(parts) != 2 || parts[0] == "" || parts[1] == "" {
		return nil, fmt.Errorf("parsing search parameter %s: want code$value: %w", name, ErrInvalidValue)
	}
	ct, err := tokenQueryTerm(p, name, parts[0])
	if err != nil {
		return nil, err
	}
	if strings.HasPrefix(ct.Key, "y|") {
		return nil, fmt.Errorf("parsing search parameter %s: system| without a code is not supported in a composite: %w", name, ErrUnsupported)
	}
	var vals []string
	switch p.components[1].typ {
	case Quantity:
		ks, neg, err := quantityKeys(name, parts[1])
		if err != nil {
			return nil, err
		}
		if neg {
			return nil, fmt.Errorf("parsing search parameter %s: the ne prefix is not supported in a composite: %w", name, ErrUnsupported)
		}
		vals = ks
	default:
		t, err := tokenQueryTerm(p, name, parts[1])
		if err != nil {
			return nil, err
		}
		if strings.HasPrefix(t.Key, "y|") {
			return nil, fmt.Errorf("parsing search parameter %s: system| without a code is not supported in a composite: %w", name, ErrUnsupported)
		}
		vals = []string{t.Key}
	}
	out := make([]Term, len(vals))
	for i, k := range vals {
		out[i] = Term{Param: p.Code, Key: compositeKey(ct.Key, k)}
	}
	return out, nil
}
