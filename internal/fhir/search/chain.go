package search

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/phivault/phivault/internal/fhir"
)

// Bounds on chained parameters and _has (STYLE rule 24).
const (
	// MaxChainDepth is the deepest nesting of chains and _has in one
	// parameter: "subject:Patient.name" is one level,
	// "encounter.subject:Patient.name" two.
	MaxChainDepth = 2
	// MaxChainSearches caps the inner searches one query needs: every
	// chain level runs one search per target type that has the chained
	// parameter (subject.identifier searches Patient and Location).
	MaxChainSearches = 8
)

// Chain is a chained parameter ("subject:Patient.identifier=s|v",
// "patient.name=smith") or a reverse chain ("_has:Observation:patient:
// code=1234-5"). A chain is resolved by running its inner searches
// first, as searches of the same caller, and turning the ids they find
// into a condition on the outer search; it is never evaluated against
// decrypted data.
//
//   - Forward: the searched resource's reference parameter Param must
//     point at a resource one of Inner matches (one query per target
//     type that has the chained parameter; their results are ORed).
//   - Reverse (_has): some resource Inner[0] matches must refer to the
//     searched resource through its reference parameter Param (a
//     parameter of Inner[0].Type).
//
// Inner queries hold predicates, _id, _lastUpdated or further chains
// only; their Count, Sort and the like are unused.
type Chain struct {
	Reverse bool
	Param   *Param
	Inner   []*Query
	// Name is the parameter's name rebuilt from its validated parts
	// (no values): for the audit trail and messages.
	Name string
}

// searches counts the inner searches resolving q's chains needs.
func (q *Query) searches() int {
	n := 0
	for _, c := range q.Chains {
		for _, in := range c.Inner {
			n += 1 + in.searches()
		}
	}
	return n
}

// parseChain parses a chained parameter key=raw of out's type at
// nesting depth (1 for a parameter of the query itself).
func (r *Registry) parseChain(out *Query, key, raw string, depth int) (string, error) {
	first, rest, _ := strings.Cut(key, ".")
	code, typ, typed := strings.Cut(first, ":")
	// Only the reference's code is named: the rest is checked below.
	name := "chained on " + safeParam(code)
	if depth > MaxChainDepth {
		return "", fmt.Errorf("parsing search parameter %s: chains deeper than %d levels are not supported: %w", name, MaxChainDepth, ErrUnsupported)
	}
	p, ok := r.Lookup(out.Type, code)
	if !ok {
		return "", fmt.Errorf("parsing search parameter %s: parameter %s is not supported for %s: %w", name, safeParam(code), out.Type, ErrUnknownParam)
	}
	if p.Type != Reference {
		return "", fmt.Errorf("parsing search parameter %s: only reference parameters can be chained: %w", name, ErrInvalidValue)
	}
	if rest == "" {
		return "", fmt.Errorf("parsing search parameter %s: a chain needs a parameter after the dot: %w", name, ErrInvalidValue)
	}
	var targets []string
	switch {
	case typed:
		if !fhir.IsStorableType(typ) || (len(p.Targets) > 0 && !slices.Contains(p.Targets, typ)) {
			return "", fmt.Errorf("parsing search parameter %s: %s cannot refer to that type: %w", name, p.Code, ErrInvalidValue)
		}
		targets = []string{typ}
	case len(p.Targets) == 0:
		return "", fmt.Errorf("parsing search parameter %s: %s may refer to any type; name it (%s:Type.parameter): %w", name, p.Code, p.Code, ErrInvalidValue)
	default:
		targets = p.Targets
	}
	c := Chain{Param: p}
	var innerName string
	var unknown error
	for _, t := range targets {
		if !fhir.IsStorableType(t) {
			continue
		}
		in := &Query{Type: t}
		n, err := r.parseInner(in, rest, raw, depth)
		if errors.Is(err, ErrUnknownParam) && !typed {
			// A target type without the chained parameter: the others
			// are searched (subject.name: Patient and Location).
			unknown = err
			continue
		}
		if err != nil {
			return "", err
		}
		innerName = n
		c.Inner = append(c.Inner, in)
	}
	if len(c.Inner) == 0 {
		if unknown != nil {
			return "", fmt.Errorf("parsing search parameter %s: no type %s refers to has the chained parameter: %w", name, p.Code, ErrUnknownParam)
		}
		return "", fmt.Errorf("parsing search parameter %s: %s refers to no searchable type: %w", name, p.Code, ErrInvalidValue)
	}
	c.Name = p.Code
	if typed {
		c.Name += ":" + typ
	}
	c.Name += "." + innerName
	out.Chains = append(out.Chains, c)
	return c.Name, nil
}

// parseHas parses a reverse chain "_has:Type:ref:rest"=raw of out's type.
func (r *Registry) parseHas(out *Query, key, raw string, depth int) (string, error) {
	if depth > MaxChainDepth {
		return "", fmt.Errorf("parsing search parameter _has: nested deeper than %d levels is not supported: %w", MaxChainDepth, ErrUnsupported)
	}
	spec := strings.TrimPrefix(key, "_has:")
	typ, spec, ok1 := strings.Cut(spec, ":")
	code, rest, ok2 := strings.Cut(spec, ":")
	if !ok1 || !ok2 || rest == "" {
		return "", fmt.Errorf("parsing search parameter _has: want _has:Type:reference:parameter: %w", ErrInvalidValue)
	}
	if !fhir.IsStorableType(typ) {
		return "", fmt.Errorf("parsing search parameter _has: not a resource type: %w", ErrInvalidValue)
	}
	p, ok := r.Lookup(typ, code)
	if !ok {
		return "", fmt.Errorf("parsing search parameter _has: %s has no supported parameter %s: %w", typ, safeParam(code), ErrUnknownParam)
	}
	if p.Type != Reference || (len(p.Targets) > 0 && !slices.Contains(p.Targets, out.Type)) {
		return "", fmt.Errorf("parsing search parameter _has: %s:%s is not a reference to %s: %w", typ, p.Code, out.Type, ErrInvalidValue)
	}
	in := &Query{Type: typ}
	innerName, err := r.parseInner(in, rest, raw, depth)
	if err != nil {
		return "", err
	}
	c := Chain{Reverse: true, Param: p, Inner: []*Query{in}, Name: "_has:" + typ + ":" + p.Code + ":" + innerName}
	out.Chains = append(out.Chains, c)
	return c.Name, nil
}

// parseInner parses the part of a chain after its reference (key=raw)
// into in, at the chain's depth, and returns its name rebuilt from
// validated parts. Only search parameters, _id, _lastUpdated and
// further chains are allowed there.
func (r *Registry) parseInner(in *Query, key, raw string, depth int) (string, error) {
	switch {
	case strings.HasPrefix(key, "_has:"):
		return r.parseHas(in, key, raw, depth+1)
	case strings.Contains(key, "."):
		return r.parseChain(in, key, raw, depth+1)
	}
	name := safeParam(key)
	code, modifier, _ := strings.Cut(key, ":")
	switch {
	case code == "_id" && modifier == "":
		ids, err := parseIDs(raw)
		if err != nil {
			return "", err
		}
		in.ID = ids
		return code, nil
	case code == "_lastUpdated" && modifier == "":
		d, err := parseLastUpdated(raw, r.now())
		if err != nil {
			return "", err
		}
		in.LastUpdated = append(in.LastUpdated, d)
		return code, nil
	case strings.HasPrefix(code, "_"):
		return "", fmt.Errorf("parsing search parameter %s: only search parameters, _id and _lastUpdated can follow a chain: %w", name, ErrUnsupported)
	}
	p, ok := r.Lookup(in.Type, code)
	if !ok {
		return "", fmt.Errorf("parsing search: parameter %s is not supported for %s: %w", name, in.Type, ErrUnknownParam)
	}
	pred, err := parsePred(p, modifier, raw, r.now())
	if err != nil {
		return "", err
	}
	in.Preds = append(in.Preds, pred)
	if modifier != "" {
		return p.Code + ":" + modifier, nil // parsePred accepted it: a known modifier
	}
	return p.Code, nil
}

// parseIDs parses an _id value: comma-separated R4 ids.
func parseIDs(raw string) ([]string, error) {
	ids, err := alternatives("_id", raw)
	if err != nil {
		return nil, err
	}
	for _, id := range ids {
		if !idRE.MatchString(id) {
			return nil, fmt.Errorf("parsing search parameter _id: not a valid id: %w", ErrInvalidValue)
		}
	}
	return ids, nil
}

// parseLastUpdated parses one _lastUpdated value.
func parseLastUpdated(raw string, now time.Time) (DatePred, error) {
	if strings.Contains(raw, ",") {
		return DatePred{}, fmt.Errorf("parsing search parameter _lastUpdated: comma-separated values are not supported, repeat the parameter: %w", ErrUnsupported)
	}
	return parseDatePred("_lastUpdated", unescape(raw), now)
}
