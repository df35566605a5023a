package terminology

import (
	"encoding/json"
	"fmt"
	"strings"
)

// CodeSystem is a parsed R4 CodeSystem: its identity and concept
// hierarchy. It is immutable after [ParseCodeSystem] and safe for
// concurrent reads.
type CodeSystem struct {
	URL, Version, Name, Title string
	Content                   string // complete, fragment, example, not-present, supplement
	CaseSensitive             bool
	Properties                map[string]string // declared property code -> type

	roots    []*Concept
	byCode   map[string]*Concept
	byFolded map[string]*Concept // lower-cased codes, for caseSensitive false
	parents  map[string][]string // code -> parent codes
	children map[string][]string // code -> child codes
	order    []string            // codes in document order
}

// Concept is one concept of a code system.
type Concept struct {
	Code, Display, Definition string
	Designations              []Designation
	Properties                []Property
}

// Designation is an additional representation of a concept.
type Designation struct {
	Language string
	Use      map[string]any // a Coding, or nil
	Value    string
}

// Property is one concept property: its code and its value[x] as the
// JSON key (valueCode, valueString...) and value.
type Property struct {
	Code     string
	ValueKey string
	Value    any
}

// maxConceptDepth bounds the nesting of CodeSystem.concept (the body's
// decoder bounds JSON nesting too; this keeps the recursion here
// bounded whatever decoded it).
const maxConceptDepth = 64

type rawConcept struct {
	Code        string        `json:"code"`
	Display     string        `json:"display"`
	Definition  string        `json:"definition"`
	Designation []rawDesig    `json:"designation"`
	Property    []rawProperty `json:"property"`
	Concept     []rawConcept  `json:"concept"`
}

type rawDesig struct {
	Language string         `json:"language"`
	Use      map[string]any `json:"use"`
	Value    string         `json:"value"`
}

type rawProperty map[string]any

// ParseCodeSystem parses a CodeSystem resource's JSON. It fails with
// ErrInvalid if the body is not a CodeSystem, a concept has no code, or
// a code appears twice.
func ParseCodeSystem(body []byte) (*CodeSystem, error) {
	var raw struct {
		ResourceType  string       `json:"resourceType"`
		URL           string       `json:"url"`
		Version       string       `json:"version"`
		Name          string       `json:"name"`
		Title         string       `json:"title"`
		Content       string       `json:"content"`
		CaseSensitive bool         `json:"caseSensitive"`
		Concept       []rawConcept `json:"concept"`
		Property      []struct {
			Code string `json:"code"`
			Type string `json:"type"`
		} `json:"property"`
	}
	if err := json.Unmarshal(body, &raw); err != nil || raw.ResourceType != "CodeSystem" {
		return nil, fail(ErrInvalid, "the resource is not a readable CodeSystem")
	}
	cs := &CodeSystem{URL: raw.URL, Version: raw.Version, Name: raw.Name, Title: raw.Title, Content: raw.Content,
		CaseSensitive: raw.CaseSensitive, Properties: map[string]string{},
		byCode: map[string]*Concept{}, byFolded: map[string]*Concept{}, parents: map[string][]string{}, children: map[string][]string{}}
	for _, p := range raw.Property {
		cs.Properties[p.Code] = p.Type
	}
	if err := cs.add(raw.Concept, "", 0); err != nil {
		return nil, err
	}
	// Hierarchy given by the parent and child properties (R4
	// CodeSystem.hierarchyMeaning with concept properties).
	for _, code := range cs.order {
		for _, p := range cs.byCode[code].Properties {
			v, _ := p.Value.(string)
			if v == "" || cs.byCode[v] == nil {
				continue
			}
			switch p.Code {
			case "parent":
				cs.link(v, code)
			case "child":
				cs.link(code, v)
			}
		}
	}
	return cs, nil
}

func (cs *CodeSystem) add(list []rawConcept, parent string, depth int) error {
	if depth > maxConceptDepth {
		return fail(ErrTooCostly, fmt.Sprintf("CodeSystem.concept nests more than %d levels", maxConceptDepth))
	}
	for i := range list {
		rc := &list[i]
		if rc.Code == "" {
			return fail(ErrInvalid, "a CodeSystem concept has no code")
		}
		if cs.byCode[rc.Code] != nil {
			return fail(ErrInvalid, "a CodeSystem defines a code twice")
		}
		c := &Concept{Code: rc.Code, Display: rc.Display, Definition: rc.Definition}
		for _, d := range rc.Designation {
			c.Designations = append(c.Designations, Designation(d))
		}
		for _, p := range rc.Property {
			code, _ := p["code"].(string)
			if code == "" {
				continue
			}
			for k, v := range p {
				if strings.HasPrefix(k, "value") && len(k) > 5 {
					c.Properties = append(c.Properties, Property{Code: code, ValueKey: k, Value: v})
					break
				}
			}
		}
		cs.byCode[c.Code] = c
		if _, dup := cs.byFolded[strings.ToLower(c.Code)]; !dup {
			cs.byFolded[strings.ToLower(c.Code)] = c
		}
		cs.order = append(cs.order, c.Code)
		if parent == "" {
			cs.roots = append(cs.roots, c)
		} else {
			cs.link(parent, c.Code)
		}
		if err := cs.add(rc.Concept, c.Code, depth+1); err != nil {
			return err
		}
	}
	return nil
}

func (cs *CodeSystem) link(parent, child string) {
	for _, p := range cs.parents[child] {
		if p == parent {
			return
		}
	}
	cs.parents[child] = append(cs.parents[child], parent)
	cs.children[parent] = append(cs.children[parent], child)
}

// Concept returns the concept with code (case-insensitively when the
// code system is not case sensitive), or nil.
func (cs *CodeSystem) Concept(code string) *Concept {
	if c := cs.byCode[code]; c != nil {
		return c
	}
	if !cs.CaseSensitive {
		return cs.byFolded[strings.ToLower(code)]
	}
	return nil
}

// Len is the number of concepts.
func (cs *CodeSystem) Len() int { return len(cs.order) }

// Parents and Children return the codes directly above and below code.
func (cs *CodeSystem) Parents(code string) []string  { return cs.parents[code] }
func (cs *CodeSystem) Children(code string) []string { return cs.children[code] }

// descendants returns the codes below code (not code itself), each once,
// in breadth-first order. The hierarchy may be a graph (parent
// properties): visited codes are skipped, so a cycle ends.
func (cs *CodeSystem) descendants(code string) []string {
	seen := map[string]bool{code: true}
	var out []string
	queue := []string{code}
	for len(queue) > 0 {
		c := queue[0]
		queue = queue[1:]
		for _, ch := range cs.children[c] {
			if !seen[ch] {
				seen[ch] = true
				out = append(out, ch)
				queue = append(queue, ch)
			}
		}
	}
	return out
}

// Codes returns every code in document order.
func (cs *CodeSystem) Codes() []string { return cs.order }

// Label is the name to report for the code system: its title, else its
// name, else its url.
func (cs *CodeSystem) Label() string {
	switch {
	case cs.Title != "":
		return cs.Title
	case cs.Name != "":
		return cs.Name
	}
	return cs.URL
}

// HasDisplay reports whether display is the concept's display or one of
// its designations.
func (c *Concept) HasDisplay(display string) bool {
	if c.Display == display {
		return true
	}
	for _, d := range c.Designations {
		if d.Value == display {
			return true
		}
	}
	return false
}

// property returns the string forms of the values of property code
// (none if absent). A Coding value is its code.
func (c *Concept) property(code string) []string {
	var out []string
	for _, p := range c.Properties {
		if p.Code != code {
			continue
		}
		switch v := p.Value.(type) {
		case string:
			out = append(out, v)
		case bool:
			out = append(out, fmt.Sprint(v))
		case json.Number:
			out = append(out, v.String())
		case float64:
			out = append(out, fmt.Sprint(v))
		case map[string]any:
			if s, ok := v["code"].(string); ok {
				out = append(out, s)
			}
		}
	}
	return out
}
