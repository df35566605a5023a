package fhir

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"github.com/phivault/phivault/internal/fhir/spec"
)

// The R4 JSON schema leaves every primitive optional (a primitive may be
// replaced by its _element extension), so on its own it accepts an
// Observation without status. The required-element check closes that gap
// from the StructureDefinitions: spec.RequiredElements lists, per type
// and backbone element, the elements with min >= 1, and how to reach
// nested types that have some. It is compiled once into a graph of
// reqNodes (recursive where the definitions are: Questionnaire.item.item)
// and walked once per resource.
//
// An element counts as present when its member is there and is neither
// null nor an empty array, or when its _member (primitive extension) is
// there: FHIR lets a required primitive carry only an extension, such as
// data-absent-reason. A choice element (value[x]) is present when any of
// its typed members is.

// missingMessage is the Issue message for an absent required element.
const missingMessage = "required element is missing"

// reqNode is the compiled check of one type or backbone element.
type reqNode struct {
	required []reqElement
	children map[string]*reqNode // JSON member -> node; nil target never stored
	resource bool                // check against the nested resource's own type
}

// reqElement is one element with min >= 1.
type reqElement struct {
	name  string   // as reported: "status", "value[x]"
	keys  []string // members that satisfy it
	ukeys []string // the same with a leading underscore
}

// reqTable is the compiled table: a node per resource type, plus the
// Extension node applied to every extension and modifierExtension.
type reqTable struct {
	types     map[string]*reqNode
	extension *reqNode
}

// compileRequired loads and links the embedded table.
func compileRequired() (*reqTable, error) {
	raw, err := spec.RequiredElements()
	if err != nil {
		return nil, err
	}
	var tab struct {
		FHIRVersion string `json:"fhirVersion"`
		Nodes       map[string]struct {
			Required []string            `json:"required"`
			Choices  map[string][]string `json:"choices"`
			Children map[string]string   `json:"children"`
		} `json:"nodes"`
	}
	if err := json.Unmarshal(raw, &tab); err != nil {
		return nil, fmt.Errorf("parsing embedded required-element table: %w", err)
	}
	if tab.FHIRVersion != "4.0.1" {
		return nil, fmt.Errorf("embedded required-element table is for FHIR %q, want 4.0.1", tab.FHIRVersion)
	}
	resourceNode := &reqNode{resource: true}
	nodes := make(map[string]*reqNode, len(tab.Nodes))
	for name := range tab.Nodes {
		nodes[name] = &reqNode{}
	}
	for name, tn := range tab.Nodes {
		n := nodes[name]
		for _, el := range tn.Required {
			keys := []string{el}
			if c, ok := tn.Choices[el]; ok {
				keys = c
			}
			ukeys := make([]string, len(keys))
			for i, k := range keys {
				ukeys[i] = "_" + k
			}
			n.required = append(n.required, reqElement{name: el, keys: keys, ukeys: ukeys})
		}
		if len(tn.Children) > 0 {
			n.children = make(map[string]*reqNode, len(tn.Children))
		}
		for member, target := range tn.Children {
			switch c, ok := nodes[target]; {
			case target == "Resource":
				n.children[member] = resourceNode
			case ok:
				n.children[member] = c
			default:
				return nil, fmt.Errorf("embedded required-element table: %s.%s refers to missing node %s", name, member, target)
			}
		}
	}
	t := &reqTable{types: make(map[string]*reqNode, len(r4Types)), extension: nodes["Extension"]}
	if t.extension == nil {
		return nil, fmt.Errorf("embedded required-element table lacks Extension")
	}
	for rt := range r4Types {
		n, ok := nodes[rt]
		if !ok {
			return nil, fmt.Errorf("embedded required-element table lacks %s", rt)
		}
		t.types[rt] = n
	}
	return t, nil
}

// pathSeg is one step of the location being walked: a member name, and
// an array index or -1. Paths are rendered only when an issue is found.
type pathSeg struct {
	name  string
	index int
}

// reqWalker walks one resource. It also reports nested resources whose
// resourceType is not R4 (the schema would accept Medplum types there).
type reqWalker struct {
	t    *reqTable
	ve   *ValidationError
	rt   string
	path []pathSeg
}

// checkRequired reports every missing required element of res, and every
// nested resource that is not of an R4 type, into ve.
func (t *reqTable) checkRequired(res Resource, rt string, ve *ValidationError) {
	w := reqWalker{t: t, ve: ve, rt: rt, path: make([]pathSeg, 0, 16)}
	w.object(map[string]any(res), t.types[rt], 0)
}

// object checks obj against n (nil: only look for extensions and nested
// resources below it).
func (w *reqWalker) object(obj map[string]any, n *reqNode, depth int) {
	if depth > DefaultMaxDepth*2 {
		return // deeper than Decode allows: not a decoded resource
	}
	// Past MaxIssues the walk goes on, bounded by the decoded size, to
	// find nested non-R4 resources: ErrUnknownType must not depend on
	// how many other issues there are.
	if n != nil && len(w.ve.Issues) < MaxIssues {
		for i := range n.required {
			if !present(obj, &n.required[i]) {
				w.ve.add(w.render(n.required[i].name), missingMessage)
			}
		}
	}
	for k, v := range obj {
		var child *reqNode
		switch {
		case k == "extension" || k == "modifierExtension":
			child = w.t.extension
		case n != nil && n.children != nil:
			child = n.children[k]
		}
		switch x := v.(type) {
		case map[string]any:
			w.path = append(w.path, pathSeg{k, -1})
			w.value(x, child, depth+1)
			w.path = w.path[:len(w.path)-1]
		case []any:
			for i, item := range x {
				if m, ok := item.(map[string]any); ok {
					w.path = append(w.path, pathSeg{k, i})
					w.value(m, child, depth+2)
					w.path = w.path[:len(w.path)-1]
				}
			}
		}
	}
}

// value checks a nested object, resolving a Resource-typed element to the
// resource's own type.
func (w *reqWalker) value(obj map[string]any, n *reqNode, depth int) {
	rt, isResource := obj["resourceType"].(string)
	if isResource && !IsR4Type(rt) {
		// No R4 element is named resourceType: this is a nested resource,
		// wherever it sits.
		w.ve.unknownType = true
		w.ve.add(w.render("resourceType"), "not an R4 resource type")
		return
	}
	if n != nil && n.resource {
		n = w.t.types[rt] // nil when resourceType is absent: the schema reports it
	}
	w.object(obj, n, depth)
}

// present reports whether obj has element e (see the file comment).
func present(obj map[string]any, e *reqElement) bool {
	for i, k := range e.keys {
		if v, ok := obj[k]; ok && v != nil {
			if a, isArray := v.([]any); !isArray || len(a) > 0 {
				return true
			}
		}
		if _, ok := obj[e.ukeys[i]]; ok {
			return true
		}
	}
	return false
}

// render returns the current location plus leaf, as
// Observation.component[1].code. Member names that are not plain
// identifiers (so possibly data) are shown as "?".
func (w *reqWalker) render(leaf string) string {
	var sb strings.Builder
	sb.WriteString(w.rt)
	for _, s := range w.path {
		sb.WriteByte('.')
		sb.WriteString(safeName(s.name))
		if s.index >= 0 {
			sb.WriteByte('[')
			sb.WriteString(strconv.Itoa(s.index))
			sb.WriteByte(']')
		}
	}
	sb.WriteByte('.')
	sb.WriteString(leaf)
	return sb.String()
}
