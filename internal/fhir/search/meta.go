package search

import (
	"fmt"

	"github.com/phivault/phivault/internal/fhir"
)

// Parameters of every resource type over Resource.meta (R4
// SearchParameter Resource-tag, -profile, -security, -source). They are
// indexed and searched like any other parameter of their type: _tag and
// _security as tokens (blind keys of code, system|code and system),
// _profile and _source as uris (blind keys of the exact value and of its
// path prefixes for :below).
//
// Security labels drive authorization (internal/authz reads them from
// the body, and the record stores them in label rows of their own).
// Searching by _security is only a predicate: the authorization
// narrowing is added to the same query, so a label search can only
// narrow what the caller may read, never widen it or reveal a resource
// the caller may not see; a masked resource is still returned masked.
var metaParams = map[string]string{
	"_tag":      "meta.tag",
	"_profile":  "meta.profile",
	"_security": "meta.security",
	"_source":   "meta.source",
}

// isMetaParam reports whether code is one of the meta parameters, which
// are ordinary parameters despite their leading underscore.
func isMetaParam(code string) bool {
	_, ok := metaParams[code]
	return ok
}

// loadMeta adds the meta parameters to every storable type.
func (r *Registry) loadMeta(defs map[[2]string]spDef) error {
	for code, path := range metaParams {
		d, ok := defs[[2]string{"Resource", code}]
		if !ok {
			return fmt.Errorf("loading search parameters: R4 defines no Resource:%s", code)
		}
		e, err := compile(path)
		if err != nil {
			return fmt.Errorf("loading search parameter %s: %w", code, err)
		}
		typ := Token
		if d.typ == "uri" {
			typ = URI
		}
		for _, rt := range fhir.R4Types() {
			if !fhir.IsStorableType(rt) {
				continue
			}
			if r.params[rt] == nil {
				r.params[rt] = map[string]*Param{}
			}
			r.params[rt][code] = &Param{Code: code, Base: rt, Type: typ, Expression: d.expression, expr: e}
		}
	}
	return nil
}

// refusedParam returns why a control parameter that phivault recognises
// but cannot answer is refused, or "" when code is not one of them. The
// returned text contains one %s, for the parameter's name.
func refusedParam(code string) string {
	switch code {
	case "_text", "_content":
		// Bodies are encrypted per patient and the index holds only blind
		// keys of parameter values: full-text search would need an index
		// of every word of the narrative (or of the whole resource), which
		// would leak far more than the parameters do (DESIGN §5).
		return "parsing search: parameter %s is not supported: resource bodies are encrypted and full-text search over narrative or content is not indexed (search by coded or string parameters instead)"
	case "_list", "_query", "_filter", "_containedType", "_contained":
		return "parsing search: parameter %s is not supported"
	}
	return ""
}
