package search

import (
	"fmt"
	"strings"
	"unicode"

	"github.com/phivault/phivault/internal/fhir"
)

// This file holds a deliberately small FHIRPath evaluator: the subset the
// R4 expressions of the supported parameters and of the Patient
// compartment use, compiled once when the [Registry] loads.
//
//	expr    = asExpr { "|" asExpr }
//	asExpr  = path [ "as" Type ]
//	path    = primary { "." step }
//	primary = "(" expr ")" | Name
//	step    = Name | "where(resolve() is" Type ")" | "ofType(" Type ")" | "as(" Type ")"
//
// A leading capitalised name is a resource type: it keeps the resource if
// the type matches and yields nothing otherwise, so a union over many
// types ("Condition.code | Observation.code") works for each of them.
// Arrays are flattened at every step. A name that is not a member but is
// the stem of a choice element (effective -> effectiveDateTime) selects it
// and records its type for ofType and as. Anything else fails to compile.

// item is one node of a FHIRPath collection.
type item struct {
	v    any
	typ  string // FHIR type when known (choice elements), else ""
	name string // member name the value was reached through
}

type expr interface {
	eval(in []item, depth int) []item
}

// maxEvalDepth bounds nesting of parenthesised sub-expressions; the
// compiled expressions come from the vendored spec, not from clients.
const maxEvalDepth = 32

type unionExpr []expr

func (u unionExpr) eval(in []item, depth int) []item {
	var out []item
	for _, e := range u {
		out = append(out, e.eval(in, depth+1)...)
	}
	return out
}

type pathExpr struct {
	head  expr // nil: start at the input
	steps []step
}

func (p *pathExpr) eval(in []item, depth int) []item {
	if depth > maxEvalDepth {
		return nil
	}
	cur := in
	if p.head != nil {
		cur = p.head.eval(in, depth+1)
	}
	for _, s := range p.steps {
		if len(cur) == 0 {
			return nil
		}
		cur = s.apply(cur)
	}
	return cur
}

type step interface {
	apply([]item) []item
}

// typeStep keeps the resource when its resourceType is T.
type typeStep string

func (t typeStep) apply(in []item) []item {
	var out []item
	for _, it := range in {
		if m, ok := it.v.(map[string]any); ok && m["resourceType"] == string(t) {
			out = append(out, it)
		}
	}
	return out
}

// memberStep navigates to a member, flattening arrays and resolving
// choice elements.
type memberStep string

func (n memberStep) apply(in []item) []item {
	name := string(n)
	var out []item
	for _, it := range in {
		m, ok := it.v.(map[string]any)
		if !ok {
			continue
		}
		if v, ok := m[name]; ok {
			out = appendFlat(out, v, "", name)
			continue
		}
		for _, t := range choiceTypes {
			if v, ok := m[name+t]; ok {
				out = appendFlat(out, v, choiceTypeName(t), name)
				break
			}
		}
	}
	return out
}

func appendFlat(out []item, v any, typ, name string) []item {
	if a, ok := v.([]any); ok {
		for _, x := range a {
			if x != nil {
				out = append(out, item{v: x, typ: typ, name: name})
			}
		}
		return out
	}
	if v != nil {
		out = append(out, item{v: v, typ: typ, name: name})
	}
	return out
}

// ofTypeStep implements ofType(T), as(T) and "as T". Items of unknown type
// (not reached through a choice element) are kept: the expressions only
// apply these to choice elements.
type ofTypeStep string

func (t ofTypeStep) apply(in []item) []item {
	var out []item
	for _, it := range in {
		if it.typ == "" || it.typ == string(t) {
			out = append(out, it)
		}
	}
	return out
}

// resolveIsStep implements where(resolve() is T) without resolving: it
// keeps References whose literal reference (or type) names T.
type resolveIsStep string

func (t resolveIsStep) apply(in []item) []item {
	var out []item
	for _, it := range in {
		m, ok := it.v.(map[string]any)
		if !ok {
			continue
		}
		if ref, ok := m["reference"].(string); ok {
			if typ, _, ok := parseReference(ref); ok && typ == string(t) {
				out = append(out, it)
			}
			continue
		}
		if m["type"] == string(t) {
			out = append(out, it)
		}
	}
	return out
}

// choiceTypes are the suffixes a choice element can carry in R4 JSON.
var choiceTypes = []string{
	"DateTime", "Period", "CodeableConcept", "Reference", "String", "Boolean", "Quantity",
	"Integer", "Decimal", "Date", "Instant", "Time", "Range", "Ratio", "Age", "Duration",
	"Timing", "Coding", "Identifier", "Uri", "Url", "Canonical", "Code", "Id", "Oid", "Uuid",
	"Markdown", "Base64Binary", "UnsignedInt", "PositiveInt", "Address", "Annotation",
	"Attachment", "ContactPoint", "Count", "Distance", "HumanName", "Money", "SampledData",
	"Signature", "ContactDetail", "Contributor", "DataRequirement", "Expression",
	"ParameterDefinition", "RelatedArtifact", "TriggerDefinition", "UsageContext", "Dosage", "Meta",
}

// choiceTypeName maps a JSON suffix to the FHIR type name: primitives
// start lower-case (DateTime -> dateTime), complex types do not.
func choiceTypeName(suffix string) string {
	switch suffix {
	case "DateTime", "String", "Boolean", "Integer", "Decimal", "Date", "Instant", "Time",
		"Uri", "Url", "Canonical", "Code", "Id", "Oid", "Uuid", "Markdown", "Base64Binary",
		"UnsignedInt", "PositiveInt":
		return string(unicode.ToLower(rune(suffix[0]))) + suffix[1:]
	}
	return suffix
}

// evaluate runs e over one resource.
func evaluate(e expr, res fhir.Resource) []item {
	return e.eval([]item{{v: map[string]any(res)}}, 0)
}

// compile parses a FHIRPath expression of the supported subset.
func compile(src string) (expr, error) {
	p := &parser{toks: tokenize(src)}
	e, err := p.union()
	if err != nil {
		return nil, fmt.Errorf("compiling FHIRPath %q: %w", src, err)
	}
	if p.pos != len(p.toks) {
		return nil, fmt.Errorf("compiling FHIRPath %q: unexpected %q", src, p.toks[p.pos])
	}
	return e, nil
}

func tokenize(s string) []string {
	var toks []string
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n':
			i++
		case strings.IndexByte(".()|", c) >= 0:
			toks = append(toks, string(c))
			i++
		default:
			j := i
			for j < len(s) && strings.IndexByte(" \t\n.()|", s[j]) < 0 {
				j++
			}
			toks = append(toks, s[i:j])
			i = j
		}
	}
	return toks
}

type parser struct {
	toks []string
	pos  int
}

func (p *parser) peek() string {
	if p.pos < len(p.toks) {
		return p.toks[p.pos]
	}
	return ""
}

func (p *parser) next() string {
	t := p.peek()
	p.pos++
	return t
}

func (p *parser) expect(want ...string) error {
	for _, w := range want {
		if got := p.next(); got != w {
			return fmt.Errorf("want %q, got %q", w, got)
		}
	}
	return nil
}

func (p *parser) union() (expr, error) {
	var u unionExpr
	for {
		e, err := p.asExpr()
		if err != nil {
			return nil, err
		}
		u = append(u, e)
		if p.peek() != "|" {
			break
		}
		p.next()
	}
	if len(u) == 1 {
		return u[0], nil
	}
	return u, nil
}

func (p *parser) asExpr() (expr, error) {
	e, err := p.path()
	if err != nil {
		return nil, err
	}
	if p.peek() == "as" {
		p.next()
		t := p.next()
		if !isName(t) {
			return nil, fmt.Errorf("want a type after as, got %q", t)
		}
		return &pathExpr{head: e, steps: []step{ofTypeStep(t)}}, nil
	}
	return e, nil
}

func (p *parser) path() (expr, error) {
	pe := &pathExpr{}
	switch t := p.next(); {
	case t == "(":
		inner, err := p.union()
		if err != nil {
			return nil, err
		}
		if err := p.expect(")"); err != nil {
			return nil, err
		}
		pe.head = inner
	case isName(t) && unicode.IsUpper(rune(t[0])):
		pe.steps = append(pe.steps, typeStep(t))
	case isName(t):
		pe.steps = append(pe.steps, memberStep(t))
	default:
		return nil, fmt.Errorf("unexpected %q", t)
	}
	for p.peek() == "." {
		p.next()
		s, err := p.step()
		if err != nil {
			return nil, err
		}
		pe.steps = append(pe.steps, s)
	}
	return pe, nil
}

func (p *parser) step() (step, error) {
	name := p.next()
	if !isName(name) {
		return nil, fmt.Errorf("unexpected %q", name)
	}
	if p.peek() != "(" {
		return memberStep(name), nil
	}
	p.next()
	switch name {
	case "where":
		if err := p.expect("resolve", "(", ")", "is"); err != nil {
			return nil, fmt.Errorf("where: only resolve() is T is supported: %w", err)
		}
		t := p.next()
		if !isName(t) {
			return nil, fmt.Errorf("where: want a type, got %q", t)
		}
		return resolveIsStep(t), p.expect(")")
	case "ofType", "as":
		t := p.next()
		if !isName(t) {
			return nil, fmt.Errorf("%s: want a type, got %q", name, t)
		}
		return ofTypeStep(t), p.expect(")")
	}
	return nil, fmt.Errorf("function %s is not supported", name)
}

func isName(s string) bool {
	if s == "" {
		return false
	}
	for i, r := range s {
		if !(r == '_' || unicode.IsLetter(r) || (i > 0 && unicode.IsDigit(r))) {
			return false
		}
	}
	return true
}
