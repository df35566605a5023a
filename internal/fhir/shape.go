package fhir

import (
	"encoding/json"
	"fmt"
	"strings"
	"sync"

	"github.com/phivault/phivault/internal/fhir/spec"
)

// Shapes tells, from the R4 JSON schema, whether an element repeats (a
// JSON array) and which definition its values follow. FHIRPath Patch
// needs it: "add" appends to a repeating element and sets a single one.
//
// The schema is read on first use (a few tens of milliseconds, once per
// Shapes). A Shapes is safe for concurrent use; its zero value is ready.
type Shapes struct {
	once sync.Once
	err  error
	defs map[string]map[string]Shape // definition -> JSON property -> shape; read-only after once
}

// Shape is one element of a definition: whether it repeats and the
// definition its values follow ("" for a primitive or an unknown type,
// such as a contained Resource).
type Shape struct {
	Repeats bool
	Def     string
}

// Element returns the shape of property name of definition def (a
// resource type such as "Observation", or a datatype or backbone
// element such as "CodeableConcept" or "Observation_Component"). ok is
// false if the schema does not define it.
func (s *Shapes) Element(def, name string) (Shape, bool, error) {
	s.once.Do(func() { s.defs, s.err = loadShapes() })
	if s.err != nil {
		return Shape{}, false, s.err
	}
	sh, ok := s.defs[def][name]
	return sh, ok, nil
}

func loadShapes() (map[string]map[string]Shape, error) {
	raw, err := spec.Schema()
	if err != nil {
		return nil, err
	}
	type prop struct {
		Ref   string `json:"$ref"`
		Type  string `json:"type"`
		Items struct {
			Ref string `json:"$ref"`
		} `json:"items"`
	}
	var doc struct {
		Definitions map[string]struct {
			Properties map[string]prop `json:"properties"`
		} `json:"definitions"`
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		return nil, fmt.Errorf("parsing embedded FHIR schema: %w", err)
	}
	out := make(map[string]map[string]Shape, len(doc.Definitions))
	for name, d := range doc.Definitions {
		if len(d.Properties) == 0 {
			continue
		}
		m := make(map[string]Shape, len(d.Properties))
		for p, v := range d.Properties {
			ref := v.Ref
			if v.Type == "array" {
				ref = v.Items.Ref
			}
			def := strings.TrimPrefix(ref, "#/definitions/")
			if _, complexType := doc.Definitions[def]; !complexType || len(doc.Definitions[def].Properties) == 0 {
				def = "" // a primitive (its definition has no properties)
			}
			m[p] = Shape{Repeats: v.Type == "array", Def: def}
		}
		out[name] = m
	}
	return out, nil
}
