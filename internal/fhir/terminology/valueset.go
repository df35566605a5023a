package terminology

import (
	"encoding/json"
)

// ValueSet is a parsed R4 ValueSet: its identity, its compose and any
// stored expansion. Immutable after [ParseValueSet].
type ValueSet struct {
	URL, Version, Name, Title string
	Include, Exclude          []Include
	HasCompose                bool
	stored                    []Code // expansion.contains, flattened (no compose)
}

// Include is one ValueSet.compose.include or exclude.
type Include struct {
	System, Version string
	Concepts        []Code
	Filters         []Filter
	ValueSets       []string // canonical urls, possibly "|version"
}

// Filter is one compose.include.filter.
type Filter struct {
	Property, Op, Value string
}

// Code is one code of an expansion.
type Code struct {
	System, Version, Code, Display string
}

type rawContains struct {
	System   string        `json:"system"`
	Version  string        `json:"version"`
	Code     string        `json:"code"`
	Display  string        `json:"display"`
	Abstract bool          `json:"abstract"`
	Contains []rawContains `json:"contains"`
}

type rawInclude struct {
	System  string `json:"system"`
	Version string `json:"version"`
	Concept []struct {
		Code    string `json:"code"`
		Display string `json:"display"`
	} `json:"concept"`
	Filter []struct {
		Property string `json:"property"`
		Op       string `json:"op"`
		Value    string `json:"value"`
	} `json:"filter"`
	ValueSet []string `json:"valueSet"`
}

// ParseValueSet parses a ValueSet resource's JSON (ErrInvalid if it is
// not one).
func ParseValueSet(body []byte) (*ValueSet, error) {
	var raw struct {
		ResourceType string `json:"resourceType"`
		URL          string `json:"url"`
		Version      string `json:"version"`
		Name         string `json:"name"`
		Title        string `json:"title"`
		Compose      *struct {
			Include []rawInclude `json:"include"`
			Exclude []rawInclude `json:"exclude"`
		} `json:"compose"`
		Expansion *struct {
			Contains []rawContains `json:"contains"`
		} `json:"expansion"`
	}
	if err := json.Unmarshal(body, &raw); err != nil || raw.ResourceType != "ValueSet" {
		return nil, fail(ErrInvalid, "the resource is not a readable ValueSet")
	}
	vs := &ValueSet{URL: raw.URL, Version: raw.Version, Name: raw.Name, Title: raw.Title}
	if raw.Compose != nil {
		vs.HasCompose = true
		for _, in := range raw.Compose.Include {
			vs.Include = append(vs.Include, include(in))
		}
		for _, in := range raw.Compose.Exclude {
			vs.Exclude = append(vs.Exclude, include(in))
		}
	}
	if raw.Expansion != nil {
		var walk func(list []rawContains, depth int)
		walk = func(list []rawContains, depth int) {
			if depth > maxConceptDepth {
				return
			}
			for _, c := range list {
				if c.Code != "" && !c.Abstract {
					vs.stored = append(vs.stored, Code{System: c.System, Version: c.Version, Code: c.Code, Display: c.Display})
				}
				walk(c.Contains, depth+1)
			}
		}
		walk(raw.Expansion.Contains, 0)
	}
	return vs, nil
}

func include(in rawInclude) Include {
	out := Include{System: in.System, Version: in.Version, ValueSets: in.ValueSet}
	for _, c := range in.Concept {
		out.Concepts = append(out.Concepts, Code{System: in.System, Version: in.Version, Code: c.Code, Display: c.Display})
	}
	for _, f := range in.Filter {
		out.Filters = append(out.Filters, Filter(f))
	}
	return out
}
