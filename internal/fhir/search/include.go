package search

import (
	"fmt"
	"slices"
	"strings"

	"github.com/phivault/phivault/internal/fhir"
)

// MaxIncludes caps the _include and _revinclude parameters of one query
// (each is at least one more search per page).
const MaxIncludes = 8

// Include is one _include or _revinclude: follow the reference
// parameter Param of resources of type Source (forward: from a result
// to what it refers to; reverse: from what refers to a result back to
// it).
//
//   - Source "*" (the value "*") is any type, with every supported
//     reference parameter; Param nil ("Observation:*") is every
//     supported reference parameter of Source.
//   - Target, when set, is the only type followed ("Observation:subject:
//     Patient").
//   - Iterate (":iterate", or its R3 spelling ":recurse") applies the
//     include to included resources too, not only to the matches.
type Include struct {
	Source  string
	Param   *Param
	Target  string
	Iterate bool
	Name    string // rebuilt from validated parts, for the audit trail
}

// Follow returns the reference parameters a forward include follows
// from a resource of type typ, sorted by code.
func (r *Registry) Follow(inc Include, typ string) []*Param {
	if inc.Source != "*" && inc.Source != typ {
		return nil
	}
	if inc.Param != nil {
		return []*Param{inc.Param}
	}
	var out []*Param
	for _, p := range r.Params(typ) {
		if p.Type == Reference && (inc.Target == "" || len(p.Targets) == 0 || slices.Contains(p.Targets, inc.Target)) {
			out = append(out, p)
		}
	}
	return out
}

// FollowBack returns the reference parameters a reverse include follows
// back to a resource of type typ: those of its sources that may refer to
// typ, sorted by type and code.
func (r *Registry) FollowBack(inc Include, typ string) []*Param {
	if inc.Target != "" && inc.Target != typ {
		return nil
	}
	refers := func(p *Param) bool {
		return p.Type == Reference && (len(p.Targets) == 0 || slices.Contains(p.Targets, typ))
	}
	if inc.Param != nil {
		if refers(inc.Param) {
			return []*Param{inc.Param}
		}
		return nil
	}
	sources := []string{inc.Source}
	if inc.Source == "*" {
		sources = sources[:0]
		for t := range r.params {
			sources = append(sources, t)
		}
		slices.Sort(sources)
	}
	var out []*Param
	for _, s := range sources {
		for _, p := range r.Params(s) {
			if refers(p) {
				out = append(out, p)
			}
		}
	}
	return out
}

// References returns the literal references ("Type/id") p finds in
// res, distinct, in document order. The caller reads res as the caller
// of the search may see it.
func (r *Registry) References(p *Param, res fhir.Resource) []string {
	if p.Type != Reference || p.Base != res.Type() {
		return nil
	}
	var out []string
	for _, it := range evaluate(p.expr, res) {
		m, ok := it.v.(map[string]any)
		if !ok {
			continue
		}
		ref, _ := m["reference"].(string)
		if typ, id, ok := parseReference(ref); ok && !slices.Contains(out, typ+"/"+id) {
			out = append(out, typ+"/"+id)
			if len(out) >= maxValuesPerResource {
				break
			}
		}
	}
	return out
}

// parseInclude parses one _include or _revinclude (rev) value with its
// modifier into out.
func (r *Registry) parseInclude(out *Query, rev bool, modifier, raw string) error {
	name := "_include"
	if rev {
		name = "_revinclude"
	}
	inc := Include{}
	switch modifier {
	case "":
	case "iterate", "recurse":
		inc.Iterate = true
		name += ":iterate"
	default:
		return fmt.Errorf("parsing search parameter %s: only the :iterate modifier is supported: %w", name, ErrUnsupported)
	}
	if len(out.Include)+len(out.RevInclude) >= MaxIncludes {
		return fmt.Errorf("parsing search: more than %d _include and _revinclude parameters: %w", MaxIncludes, ErrTooComplex)
	}
	parts := strings.Split(raw, ":")
	switch {
	case raw == "*":
		inc.Source = "*"
	case len(parts) < 2 || len(parts) > 3:
		return fmt.Errorf("parsing search parameter %s: want *, Type:parameter or Type:parameter:TargetType: %w", name, ErrInvalidValue)
	default:
		inc.Source = parts[0]
		if !fhir.IsStorableType(inc.Source) {
			return fmt.Errorf("parsing search parameter %s: not a resource type: %w", name, ErrInvalidValue)
		}
		if parts[1] != "*" {
			p, ok := r.Lookup(inc.Source, parts[1])
			if !ok {
				return fmt.Errorf("parsing search parameter %s: %s has no supported parameter %s: %w", name, inc.Source, safeParam(parts[1]), ErrUnknownParam)
			}
			if p.Type != Reference {
				return fmt.Errorf("parsing search parameter %s: %s:%s is not a reference parameter: %w", name, inc.Source, p.Code, ErrInvalidValue)
			}
			inc.Param = p
		}
		if len(parts) == 3 {
			inc.Target = parts[2]
			if !fhir.IsStorableType(inc.Target) || (inc.Param != nil && len(inc.Param.Targets) > 0 && !slices.Contains(inc.Param.Targets, inc.Target)) {
				return fmt.Errorf("parsing search parameter %s: the target type is not one the parameter refers to: %w", name, ErrInvalidValue)
			}
		}
	}
	inc.Name = inc.Source
	if inc.Source != "*" {
		code := "*"
		if inc.Param != nil {
			code = inc.Param.Code
		}
		inc.Name += ":" + code
		if inc.Target != "" {
			inc.Name += ":" + inc.Target
		}
	}
	// Without :iterate an include applies to the matches only: refuse
	// one that could never apply rather than answer without it.
	if !inc.Iterate && inc.Source != "*" {
		if !rev && len(r.Follow(inc, out.Type)) == 0 {
			return fmt.Errorf("parsing search parameter %s: it names no reference of %s (add :iterate to follow included resources): %w", name, out.Type, ErrInvalidValue)
		}
		if rev && len(r.FollowBack(inc, out.Type)) == 0 {
			return fmt.Errorf("parsing search parameter %s: it names no reference to %s (add :iterate to follow included resources): %w", name, out.Type, ErrInvalidValue)
		}
	}
	if rev {
		out.RevInclude = append(out.RevInclude, inc)
	} else {
		out.Include = append(out.Include, inc)
	}
	return nil
}
