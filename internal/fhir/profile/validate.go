package profile

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"unicode"

	"github.com/phivault/phivault/internal/fhir"
	"github.com/phivault/phivault/internal/fhir/terminology"
)

// ErrNotFound is what a [Definitions] or [Codes] returns for a profile or
// value set that is not stored or not readable by the requesting user.
var ErrNotFound = errors.New("profile: not found")

// Definitions finds stored profiles by canonical url (and version, when
// not ""), as the requesting user may read them (ErrNotFound otherwise).
type Definitions interface {
	StructureDefinition(ctx context.Context, url, version string) (*Definition, error)
}

// Codes checks required bindings: whether c is in the value set named by
// canonical ("url" or "url|version"); ErrNotFound if that value set is
// not available to the requesting user.
type Codes interface {
	InValueSet(ctx context.Context, canonical string, c terminology.Coding) (bool, error)
}

// Issue is one finding. Severity is error, warning or information; Code
// a FHIR issue-type; Path the element (FHIRPath with indexes); Message
// names no value.
type Issue struct {
	Severity, Code, Path, Message string
}

// Validator checks resources against stored profiles.
type Validator struct {
	Defs  Definitions
	Codes Codes
}

// Validate checks res (a decoded resource) against the profile url
// ("url" or "url|version") and the stored profiles it derives from.
// explicit says the client named the profile (a missing one is then an
// error, else a warning: meta.profile may name profiles this server does
// not hold). Only failures of the Definitions or Codes other than
// ErrNotFound are returned as errors.
func (v Validator) Validate(ctx context.Context, res fhir.Resource, url string, explicit bool) ([]Issue, error) {
	var out []Issue
	u, ver := terminology.SplitCanonical(url)
	typ := res.Type()
	for depth := 0; u != ""; depth++ {
		if depth == MaxChain {
			out = append(out, Issue{"warning", "too-costly", typ, fmt.Sprintf("the profile derives from more than %d stored profiles; the rest were not checked", MaxChain)})
			break
		}
		if isBase(u) {
			break // the base validator's
		}
		def, err := v.Defs.StructureDefinition(ctx, u, ver)
		if errors.Is(err, ErrNotFound) {
			sev := "warning"
			msg := "a profile in meta.profile is not available on this server (not stored, or not readable by you); it was not checked"
			switch {
			case depth > 0:
				msg = "a profile the named profile derives from is not available; its constraints were not checked"
			case explicit:
				sev, msg = "error", "the profile is not available on this server (not stored, or not readable by you)"
			}
			out = append(out, Issue{sev, "not-found", typ, msg})
			break
		}
		if err != nil {
			return nil, err
		}
		if def.Type != typ {
			out = append(out, Issue{"error", "invalid", typ, "the profile constrains another resource type"})
			break
		}
		is, err := v.check(ctx, def, res)
		if err != nil {
			return nil, err
		}
		out = append(out, is...)
		if def.FromSnapshot {
			break // a snapshot holds the whole chain
		}
		u, ver = terminology.SplitCanonical(def.BaseDefinition)
	}
	if len(out) > MaxIssues {
		out = out[:MaxIssues]
	}
	return out, nil
}

func isBase(url string) bool {
	t, ok := strings.CutPrefix(url, "http://hl7.org/fhir/StructureDefinition/")
	return ok && fhir.IsR4Type(t)
}

// node is one element instance: its value and its location.
type node struct {
	v   any
	loc string
}

func (v Validator) check(ctx context.Context, def *Definition, res fhir.Resource) ([]Issue, error) {
	var out []Issue
	add := func(sev, code, path, msg string) { out = append(out, Issue{sev, code, path, msg}) }
	if def.Skipped > 0 {
		add("information", "informational", def.Type, fmt.Sprintf("%d sliced elements of a profile were not checked (slicing is outside the supported subset)", def.Skipped))
	}
	missingVS := map[string]bool{}
	root := []node{{v: map[string]any(res), loc: def.Type}}
	for _, el := range def.Elements {
		if len(out) > MaxIssues {
			break
		}
		segs := strings.Split(strings.TrimPrefix(el.Path, def.Type+"."), ".")
		parents := walk(root, segs[:len(segs)-1])
		last := segs[len(segs)-1]
		for _, p := range parents {
			obj, ok := p.v.(map[string]any)
			if !ok {
				continue
			}
			vals := children(obj, p.loc, last)
			n := len(vals)
			here := p.loc + "." + last
			if el.HasMin && n < el.Min {
				add("error", "required", here, fmt.Sprintf("the profile requires at least %d value(s) here; there are %d", el.Min, n))
			}
			if el.Max >= 0 && n > el.Max {
				add("error", "structure", here, fmt.Sprintf("the profile allows at most %d value(s) here; there are %d", el.Max, n))
			}
			for _, c := range vals {
				out = append(out, typeIssues(el, last, c)...)
				if el.Fixed != nil && !equal(c.v, el.Fixed.V) {
					add("error", "value", c.loc, "the value is not the one the profile fixes")
				}
				if el.Pattern != nil && !contains(c.v, el.Pattern.V) {
					add("error", "value", c.loc, "the value does not match the profile's pattern")
				}
				if el.Required == "" || missingVS[el.Required] {
					continue
				}
				codings, ok := codingsOf(c.v)
				if !ok {
					continue
				}
				in, err := v.anyIn(ctx, el.Required, codings)
				if errors.Is(err, ErrNotFound) {
					missingVS[el.Required] = true
					add("information", "not-found", here, "the value set of this required binding is not available on this server; the binding was not checked")
					continue
				}
				if err != nil {
					return nil, err
				}
				if !in {
					add("error", "code-invalid", c.loc, "the code is not in the value set the profile requires (required binding)")
				}
			}
		}
	}
	return out, nil
}

func (v Validator) anyIn(ctx context.Context, vs string, codings []terminology.Coding) (bool, error) {
	for _, c := range codings {
		in, err := v.Codes.InValueSet(ctx, vs, c)
		if err != nil || in {
			return in, err
		}
	}
	return false, nil
}

// codingsOf reads the codes of a bound value: a code string, a Coding,
// a Quantity (system and code) or a CodeableConcept.
func codingsOf(v any) ([]terminology.Coding, bool) {
	switch x := v.(type) {
	case string:
		return []terminology.Coding{{Code: x}}, true
	case map[string]any:
		if list, ok := x["coding"].([]any); ok {
			var out []terminology.Coding
			for _, e := range list {
				if m, ok := e.(map[string]any); ok {
					out = append(out, terminology.CodingOf(m))
				}
			}
			return out, len(out) > 0
		}
		if _, ok := x["code"].(string); ok {
			return []terminology.Coding{terminology.CodingOf(x)}, true
		}
	}
	return nil, false
}

// walk returns the instances of the element at segs below nodes.
func walk(nodes []node, segs []string) []node {
	for _, s := range segs {
		var next []node
		for _, n := range nodes {
			if obj, ok := n.v.(map[string]any); ok {
				next = append(next, children(obj, n.loc, s)...)
			}
		}
		nodes = next
	}
	return nodes
}

// children returns the values of element seg of obj: one per array
// item; for a choice element (value[x]) every typed key (valueQuantity).
func children(obj map[string]any, loc, seg string) []node {
	var out []node
	addKey := func(k string) {
		switch x := obj[k].(type) {
		case nil:
		case []any:
			for i, e := range x {
				out = append(out, node{e, loc + "." + k + "[" + strconv.Itoa(i) + "]"})
			}
		default:
			out = append(out, node{x, loc + "." + k})
		}
	}
	base, choice := strings.CutSuffix(seg, "[x]")
	if !choice {
		addKey(seg)
		return out
	}
	for k := range obj {
		if rest, ok := strings.CutPrefix(k, base); ok && rest != "" && unicode.IsUpper(rune(rest[0])) {
			addKey(k)
		}
	}
	return out
}

// typeIssues checks the type of a choice value and the target of a
// Reference against the element's allowed types.
func typeIssues(el Element, seg string, c node) []Issue {
	if len(el.Types) == 0 {
		return nil
	}
	var out []Issue
	if base, choice := strings.CutSuffix(seg, "[x]"); choice {
		key := c.loc[strings.LastIndex(c.loc, ".")+1:]
		if i := strings.IndexByte(key, '['); i >= 0 {
			key = key[:i]
		}
		typ := strings.TrimPrefix(key, base)
		ok := false
		for _, t := range el.Types {
			if strings.EqualFold(t.Code, typ) {
				ok = true
			}
		}
		if !ok {
			out = append(out, Issue{"error", "structure", c.loc, fmt.Sprintf("the profile does not allow type %s here", safeType(typ))})
		}
	}
	// Reference targets, when every target profile is a base resource.
	var targets []string
	for _, t := range el.Types {
		if t.Code != "Reference" {
			continue
		}
		for _, tp := range t.TargetProfiles {
			if !isBase(tp) {
				return out // a target profile we do not resolve: not checked
			}
			targets = append(targets, strings.TrimPrefix(tp, "http://hl7.org/fhir/StructureDefinition/"))
		}
	}
	if len(targets) == 0 {
		return out
	}
	m, ok := c.v.(map[string]any)
	if !ok {
		return out
	}
	ref, _ := m["reference"].(string)
	if ref == "" || strings.HasPrefix(ref, "#") || strings.HasPrefix(ref, "urn:") {
		return out
	}
	parts := strings.Split(strings.TrimSuffix(strings.Split(ref, "/_history/")[0], "/"), "/")
	if len(parts) < 2 {
		return out
	}
	rt := parts[len(parts)-2]
	for _, t := range targets {
		if t == rt || t == "Resource" {
			return out
		}
	}
	return append(out, Issue{"error", "structure", c.loc + ".reference", "the profile does not allow a reference to this resource type here"})
}

// safeType is typ if it is a FHIR type name, else a placeholder (a JSON
// key is client input).
func safeType(typ string) string {
	for _, r := range typ {
		if !unicode.IsLetter(r) && !unicode.IsDigit(r) {
			return "(unnamed)"
		}
	}
	if len(typ) > 40 {
		return "(unnamed)"
	}
	return typ
}

// equal is deep equality of JSON values, numbers by value.
func equal(a, b any) bool {
	if na, ok := number(a); ok {
		nb, ok := number(b)
		return ok && na == nb
	}
	switch x := a.(type) {
	case map[string]any:
		y, ok := b.(map[string]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for k, v := range x {
			if !equal(v, y[k]) {
				return false
			}
		}
		return true
	case []any:
		y, ok := b.([]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for i := range x {
			if !equal(x[i], y[i]) {
				return false
			}
		}
		return true
	}
	return reflect.DeepEqual(a, b)
}

// contains reports whether v matches pattern p (R4 pattern[x]): every
// property of p is in v with a matching value; every item of a pattern
// array matches some item of v's array.
func contains(v, p any) bool {
	switch pp := p.(type) {
	case map[string]any:
		vm, ok := v.(map[string]any)
		if !ok {
			return false
		}
		for k, pv := range pp {
			if !contains(vm[k], pv) {
				return false
			}
		}
		return true
	case []any:
		va, ok := v.([]any)
		if !ok {
			return false
		}
		for _, pe := range pp {
			found := false
			for _, ve := range va {
				if contains(ve, pe) {
					found = true
					break
				}
			}
			if !found {
				return false
			}
		}
		return true
	}
	return equal(v, p)
}

func number(v any) (float64, bool) {
	switch n := v.(type) {
	case json.Number:
		f, err := n.Float64()
		return f, err == nil
	case float64:
		return n, true
	}
	return 0, false
}
