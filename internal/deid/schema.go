package deid

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	"github.com/phivault/phivault/internal/fhir/spec"
)

// resourceList is the schema's name for "any resource" (contained,
// Bundle.entry.resource, Parameters.parameter.resource).
const resourceList = "ResourceList"

// element is what the R4 JSON schema says about one property of a
// definition.
type element struct {
	repeats bool
	def     string // a complex definition (datatype, backbone element, resourceList); "" for a primitive
	prim    string // the primitive type ("string", "dateTime", "code", …) when def is ""
	// enum holds the codes of a code element bound to a required value
	// set the schema lists; nil for any other element.
	enum map[string]bool
}

// schema maps definition → JSON property → element, for every
// definition of the vendored R4 JSON schema that has properties. It is
// read-only after loadSchema, so a Transformer shares it between
// goroutines.
type schema struct {
	defs      map[string]map[string]element
	resources map[string]bool // the R4 resource types (members of ResourceList)
}

// choiceSuffixes are the primitive types a choice element ("value[x]",
// "deceased[x]") can take; the schema types those members inline
// ("type": "string" with a pattern), so their type is read from the
// property name. Longest first, so "DateTime" wins over "Time".
var choiceSuffixes = func() []string {
	s := []string{"Base64Binary", "Boolean", "Canonical", "Code", "Date", "DateTime", "Decimal", "Id",
		"Instant", "Integer", "Markdown", "Oid", "PositiveInt", "String", "Time", "UnsignedInt", "Uri", "Url", "Uuid"}
	sort.Slice(s, func(i, j int) bool { return len(s[i]) > len(s[j]) })
	return s
}

func loadSchema() (*schema, error) {
	raw, err := spec.Schema()
	if err != nil {
		return nil, fmt.Errorf("loading the FHIR schema: %w", err)
	}
	type prop struct {
		Ref   string `json:"$ref"`
		Type  string `json:"type"`
		Enum  []any  `json:"enum"`
		Items struct {
			Ref  string `json:"$ref"`
			Enum []any  `json:"enum"`
		} `json:"items"`
	}
	var doc struct {
		Definitions map[string]struct {
			Properties map[string]prop `json:"properties"`
			OneOf      []struct {
				Ref string `json:"$ref"`
			} `json:"oneOf"`
		} `json:"definitions"`
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		return nil, fmt.Errorf("parsing the FHIR schema: %w", err)
	}
	suffixes := choiceSuffixes()
	s := &schema{defs: map[string]map[string]element{}, resources: map[string]bool{}}
	for _, o := range doc.Definitions[resourceList].OneOf {
		s.resources[strings.TrimPrefix(o.Ref, "#/definitions/")] = true
	}
	for name, d := range doc.Definitions {
		if len(d.Properties) == 0 {
			continue
		}
		m := make(map[string]element, len(d.Properties))
		for p, v := range d.Properties {
			e := element{repeats: v.Type == "array"}
			ref, enum := v.Ref, v.Enum
			if e.repeats {
				ref, enum = v.Items.Ref, v.Items.Enum
			}
			target := strings.TrimPrefix(ref, "#/definitions/")
			switch {
			case target == resourceList:
				e.def = resourceList
			case target != "" && len(doc.Definitions[target].Properties) > 0:
				e.def = target
			case target != "":
				e.prim = target
			case len(enum) > 0:
				e.prim = "code"
				e.enum = make(map[string]bool, len(enum))
				for _, c := range enum {
					if cs, ok := c.(string); ok {
						e.enum[cs] = true
					}
				}
			default:
				for _, suf := range suffixes {
					if strings.HasSuffix(p, suf) && len(p) > len(suf) {
						e.prim = strings.ToLower(suf[:1]) + suf[1:]
						break
					}
				}
			}
			m[p] = e
		}
		s.defs[name] = m
	}
	return s, nil
}

// element returns the element prop of definition def; ok is false if
// the schema does not define it.
func (s *schema) element(def, prop string) (element, bool) {
	e, ok := s.defs[def][prop]
	return e, ok && (e.def != "" || e.prim != "")
}
