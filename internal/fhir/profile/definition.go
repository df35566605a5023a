package profile

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
)

// Bounds.
const (
	// MaxElements bounds the elements checked per profile (the largest
	// R4 snapshot, Bundle's, has fewer than 200; profiles are smaller).
	MaxElements = 2_000
	// MaxChain bounds the baseDefinition chain followed.
	MaxChain = 8
	// MaxIssues bounds the issues of one validation.
	MaxIssues = 100
)

// Definition is the checked subset of a StructureDefinition.
// Immutable after [Parse].
type Definition struct {
	URL, Version, Type, BaseDefinition string
	FromSnapshot                       bool // no differential: the snapshot is checked
	Elements                           []Element
	Skipped                            int // sliced or contentReference elements not checked
}

// Element is one checked element definition.
type Element struct {
	Path     string // e.g. Observation.component.code, Observation.value[x]
	Min      int
	Max      int // -1: unbounded or not constrained
	HasMin   bool
	Types    []TypeRef
	Fixed    *Value
	Pattern  *Value
	Required string // the value set of a required binding ("url|version"), or ""
}

// TypeRef is one allowed type.
type TypeRef struct {
	Code           string
	TargetProfiles []string
}

// Value is a fixed[x] or pattern[x] value: its type (the [x] suffix)
// and its JSON.
type Value struct {
	Type string
	V    any
}

type rawElement map[string]any

// Parse reads a StructureDefinition. It fails if the body is not a
// StructureDefinition with a type and elements, or has more than
// MaxElements elements. Its errors name no value.
func Parse(body []byte) (*Definition, error) {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var raw struct {
		ResourceType   string `json:"resourceType"`
		URL            string `json:"url"`
		Version        string `json:"version"`
		Type           string `json:"type"`
		BaseDefinition string `json:"baseDefinition"`
		Differential   *struct {
			Element []rawElement `json:"element"`
		} `json:"differential"`
		Snapshot *struct {
			Element []rawElement `json:"element"`
		} `json:"snapshot"`
	}
	if err := dec.Decode(&raw); err != nil || raw.ResourceType != "StructureDefinition" || raw.Type == "" {
		return nil, fmt.Errorf("the profile is not a readable StructureDefinition with a type")
	}
	d := &Definition{URL: raw.URL, Version: raw.Version, Type: raw.Type, BaseDefinition: raw.BaseDefinition}
	var els []rawElement
	switch {
	case raw.Differential != nil && len(raw.Differential.Element) > 0:
		els = raw.Differential.Element
	case raw.Snapshot != nil:
		els, d.FromSnapshot = raw.Snapshot.Element, true
	}
	if len(els) > MaxElements {
		return nil, fmt.Errorf("the profile has more than %d elements", MaxElements)
	}
	for _, e := range els {
		path, _ := e["path"].(string)
		id, _ := e["id"].(string)
		if path == "" || !strings.HasPrefix(path, raw.Type+".") {
			continue // the root element, or not about this type
		}
		if _, sliced := e["sliceName"]; sliced || strings.Contains(id, ":") || e["contentReference"] != nil {
			d.Skipped++
			continue
		}
		el := Element{Path: path, Max: -1}
		if m, ok := e["min"].(json.Number); ok {
			if n, err := m.Int64(); err == nil && n >= 0 {
				el.Min, el.HasMin = int(n), true
			}
		}
		if m, ok := e["max"].(string); ok && m != "*" {
			var n int
			if _, err := fmt.Sscanf(m, "%d", &n); err == nil && n >= 0 {
				el.Max = n
			}
		}
		if ts, ok := e["type"].([]any); ok {
			for _, t := range ts {
				tm, _ := t.(map[string]any)
				code, _ := tm["code"].(string)
				tr := TypeRef{Code: code}
				if tps, ok := tm["targetProfile"].([]any); ok {
					for _, tp := range tps {
						if s, ok := tp.(string); ok {
							tr.TargetProfiles = append(tr.TargetProfiles, s)
						}
					}
				}
				if code != "" {
					el.Types = append(el.Types, tr)
				}
			}
		}
		for k, v := range e {
			switch {
			case strings.HasPrefix(k, "fixed") && len(k) > 5:
				el.Fixed = &Value{Type: k[5:], V: v}
			case strings.HasPrefix(k, "pattern") && len(k) > 7:
				el.Pattern = &Value{Type: k[7:], V: v}
			}
		}
		if b, ok := e["binding"].(map[string]any); ok {
			if s, _ := b["strength"].(string); s == "required" {
				el.Required, _ = b["valueSet"].(string)
			}
		}
		d.Elements = append(d.Elements, el)
	}
	return d, nil
}
