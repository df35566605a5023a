package search

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// Composite search (Observation code-value-quantity,
// component-code-value-quantity, code-value-concept,
// component-code-value-concept, combo-code-value-quantity). The R4
// definition evaluates its expression (Observation, or each
// Observation.component) and, within each result, its two components:
// a code (token) and a value (quantity or token).
// code-value-quantity=http://loinc.org|8480-6$gt140 matches only a
// repetition whose own code is 8480-6 and whose own value is above 140,
// never the code of one component with the value of another.
//
// Three ways of answering, by the composite's expression (ADR 0042):
//
//   - Over a repeating element (component-code-value-quantity,
//     component-code-value-concept): each repetition is indexed as one
//     blind key per (code key, value key) combination. Cost: (2 token
//     keys per coding) × (the value's keys: 7 per quantity family, 2 per
//     coding) rows per repetition, about 40 to 90 for a coded quantity.
//     Leak: as the two parts (number.go, tokens), and in addition which
//     repetition's code goes with which value bucket.
//   - Over the resource itself (code-value-quantity, code-value-concept:
//     expression "Observation"): there is exactly one repetition, so
//     "its code is C and its value is V" is "the resource's code is C and
//     its value is V", a conjunction of the code and value-quantity (or
//     value-concept) parameters' own rows. No rows of its own; the query
//     is a [Pair] per alternative.
//   - A combo-* composite ("Observation | Observation.component", with
//     the same components) is the union of the two above: no rows of its
//     own; the query is the alternatives of both.
//
// Query: both parts are required; the value part takes the prefixes of
// its type but not ne (the negation of a pair is ambiguous), and
// system| alone is not supported on the code.

// pairComposites are the composites over the resource itself, answered
// as a conjunction of the two parameters named (code, value); their
// components must be those parameters' expressions relative to it
// (checked when the registry loads).
var pairComposites = map[[2]string][2]string{
	{"Observation", "code-value-quantity"}: {"code", "value-quantity"},
	{"Observation", "code-value-concept"}:  {"code", "value-concept"},
}

// unionComposites are the combo-* composites, answered as the union of
// the composites named (whose expressions, joined by " | ", must be the
// combo's, with the same components).
var unionComposites = map[[2]string][]string{
	{"Observation", "combo-code-value-quantity"}: {"code-value-quantity", "component-code-value-quantity"},
}

// linkDerived links the composites of pairComposites and
// unionComposites to the parameters that answer them, checking the R4
// definitions say what the equivalence assumes.
func (r *Registry) linkDerived(defs map[[2]string]spDef) error {
	bad := func(k [2]string, why string) error {
		return fmt.Errorf("loading search parameter %s:%s: %s", k[0], k[1], why)
	}
	for k, parts := range pairComposites {
		p, ok := r.params[k[0]][k[1]]
		if !ok {
			continue
		}
		a, okA := r.params[k[0]][parts[0]]
		b, okB := r.params[k[0]][parts[1]]
		if !okA || !okB {
			return bad(k, "the parameters that answer it are not supported")
		}
		d := defs[k]
		if p.Expression != k[0] || len(d.components) != 2 ||
			!exprHas(a.Expression, k[0]+"."+d.components[0][1]) ||
			!exprHas(b.Expression, k[0]+"."+d.components[1][1]) ||
			a.Type != p.components[0].typ || b.Type != p.components[1].typ {
			return bad(k, "its definition is not the conjunction of "+parts[0]+" and "+parts[1])
		}
		p.pair = [2]*Param{a, b}
	}
	for k, parts := range unionComposites {
		p, ok := r.params[k[0]][k[1]]
		if !ok {
			continue
		}
		var exprs []string
		for _, c := range parts {
			u, ok := r.params[k[0]][c]
			if !ok || u.Type != Composite || u.union != nil || !slices.Equal(componentExprs(defs[[2]string{k[0], c}]), componentExprs(defs[k])) {
				return bad(k, "its parts are not supported composites with the same components")
			}
			p.union = append(p.union, u)
			exprs = append(exprs, u.Expression)
		}
		if p.Expression != strings.Join(exprs, " | ") {
			return bad(k, "its expression is not the union of its parts")
		}
	}
	return nil
}

// exprHas reports whether want, a path, is one of the alternatives of
// the union expr ("A | (B) | C").
func exprHas(expr, want string) bool {
	for _, alt := range strings.Split(expr, " | ") {
		if alt == want || alt == "("+want+")" {
			return true
		}
	}
	return false
}

// componentExprs returns the expressions of d's components (their
// definitions differ between a combo and its parts).
func componentExprs(d spDef) []string {
	out := make([]string, len(d.components))
	for i, c := range d.components {
		out[i] = c[1]
	}
	return out
}

// Pair returns the parameters (code, value) whose rows answer p, a
// composite over the resource itself; ok is false for any other
// parameter.
func (p *Param) Pair() (code, value *Param, ok bool) {
	return p.pair[0], p.pair[1], p.pair[0] != nil
}

// Union returns the composites whose rows answer p, a combo-*
// composite; nil for any other parameter.
func (p *Param) Union() []*Param { return p.union }

// indexed reports whether p has index rows of its own.
func (p *Param) indexed() bool { return p.pair[0] == nil && p.union == nil }

// Pair is one alternative of a composite over the resource itself: the
// resource matches when it has a term among First and a term among
// Second. The terms of each side share one index column.
type Pair struct {
	First, Second []Term
}

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

// compositeQuery returns what one composite search value (code$value)
// matches: pair keys (a composite over a repeating element), a [Pair]
// (over the resource itself), or both (the union of a combo).
func compositeQuery(p *Param, name, v string) ([]Term, []Pair, error) {
	if p.union != nil {
		var ts []Term
		var ps []Pair
		for _, u := range p.union {
			t, pr, err := compositeQuery(u, name, v)
			if err != nil {
				return nil, nil, err
			}
			ts, ps = append(ts, t...), append(ps, pr...)
		}
		return ts, ps, nil
	}
	code, vals, err := compositeQueryKeys(p, name, v)
	if err != nil {
		return nil, nil, err
	}
	if a, b, ok := p.Pair(); ok {
		return nil, []Pair{{First: []Term{{Param: a.Code, Key: code}}, Second: keyTerms(b.Code, vals, nil)}}, nil
	}
	out := make([]Term, len(vals))
	for i, k := range vals {
		out[i] = Term{Param: p.Code, Key: compositeKey(code, k)}
	}
	return out, nil, nil
}

// mergePairs merges the pairs with the same First (one code with
// several values: C and (V1 or V2)), keeping the first-seen order.
func mergePairs(ps []Pair) []Pair {
	var out []Pair
	at := map[Term]int{}
	for _, p := range ps {
		if len(p.First) != 1 {
			out = append(out, p)
			continue
		}
		i, ok := at[p.First[0]]
		if !ok {
			at[p.First[0]] = len(out)
			out = append(out, Pair{First: p.First, Second: slices.Clone(p.Second)})
			continue
		}
		for _, t := range p.Second {
			if !slices.Contains(out[i].Second, t) {
				out[i].Second = append(out[i].Second, t)
			}
		}
	}
	return out
}

// compositeQueryKeys returns the code key and the value keys of one
// composite search value (code$value).
func compositeQueryKeys(p *Param, name, v string) (string, []string, error) {
	parts := splitEscaped(v, '$')
	if len(parts) != 2 || parts[0] == "" || parts[1] == "" {
		return "", nil, fmt.Errorf("parsing search parameter %s: want code$value: %w", name, ErrInvalidValue)
	}
	ct, err := tokenQueryTerm(p, name, parts[0])
	if err != nil {
		return "", nil, err
	}
	if strings.HasPrefix(ct.Key, "y|") {
		return "", nil, fmt.Errorf("parsing search parameter %s: system| without a code is not supported in a composite: %w", name, ErrUnsupported)
	}
	var vals []string
	switch p.components[1].typ {
	case Quantity:
		ks, neg, err := quantityKeys(name, parts[1])
		if err != nil {
			return "", nil, err
		}
		if neg {
			return "", nil, fmt.Errorf("parsing search parameter %s: the ne prefix is not supported in a composite: %w", name, ErrUnsupported)
		}
		vals = ks
	default:
		t, err := tokenQueryTerm(p, name, parts[1])
		if err != nil {
			return "", nil, err
		}
		if strings.HasPrefix(t.Key, "y|") {
			return "", nil, fmt.Errorf("parsing search parameter %s: system| without a code is not supported in a composite: %w", name, ErrUnsupported)
		}
		vals = []string{t.Key}
	}
	return ct.Key, vals, nil
}
