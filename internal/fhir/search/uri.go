package search

import (
	"fmt"
	"strings"
)

// URI search (canonical url, _profile, _source, CodeSystem system,
// StructureDefinition type, ValueSet reference). A uri is matched
// exactly (case-sensitive, no normalisation: R4 search.html, uri), as a
// blind key like a token's. Two modifiers:
//
//   - :below=X matches a uri that is X or lies under X at a path
//     boundary ("/"): url:below=http://acme.org/fhir matches
//     http://acme.org/fhir/ValueSet/1 but not http://acme.org/fhirx. For
//     it every stored uri is also indexed under "<param>:below" by each
//     of its prefixes that end before a "/" (at most [maxURIPrefixes]).
//   - :above=X matches a uri of which X is X itself or lies under at a
//     path boundary: the query asks for the exact keys of X and of each
//     of its prefixes, so it needs no index of its own.
//
// What the index holder learns beyond equality of whole uris: which
// uris share a path prefix (which is how canonical urls are organised
// anyway). A uri that is not a URL with "/" (urn:oid:1.2) has only its
// exact key.

// maxURIPrefixes bounds the :below keys of one uri.
const maxURIPrefixes = 16

const belowSuffix = ":below"

func uriExactKey(u string) string { return "=" + u }

// uriPrefixes returns the prefixes of u that end before a "/" of its
// path (after any "scheme://host"), longest last, u itself excluded.
func uriPrefixes(u string) []string {
	start := 0
	if i := strings.Index(u, "://"); i >= 0 {
		start = i + 3
	}
	var out []string
	for i := start; i < len(u); i++ {
		if u[i] == '/' && i > start {
			out = append(out, u[:i])
		}
	}
	if len(out) > maxURIPrefixes {
		out = out[len(out)-maxURIPrefixes:]
	}
	return out
}

// uriValueTerms returns the index terms of one stored uri.
func uriValueTerms(param, u string) []Term {
	if u == "" {
		return nil
	}
	out := []Term{{Param: param, Key: uriExactKey(u)}, {Param: param + belowSuffix, Key: uriExactKey(u)}}
	for _, p := range uriPrefixes(u) {
		out = append(out, Term{Param: param + belowSuffix, Key: uriExactKey(p)})
	}
	return out
}

// uriQueryTerms returns the terms of one uri search value.
func uriQueryTerms(p *Param, name, modifier, v string) ([]Term, error) {
	if v == "" {
		return nil, fmt.Errorf("parsing search parameter %s: empty value: %w", name, ErrInvalidValue)
	}
	switch modifier {
	case "":
		return []Term{{Param: p.Code, Key: uriExactKey(v)}}, nil
	case "below":
		return []Term{{Param: p.Code + belowSuffix, Key: uriExactKey(strings.TrimSuffix(v, "/"))}}, nil
	case "above":
		out := []Term{{Param: p.Code, Key: uriExactKey(v)}}
		for _, pre := range uriPrefixes(v) {
			out = append(out, Term{Param: p.Code, Key: uriExactKey(pre)})
		}
		return out, nil
	}
	return nil, fmt.Errorf("parsing search parameter %s: modifier is not supported for a uri parameter (use :below or :above; :contains is not supported): %w", name, ErrUnsupported)
}
