// Command gen derives phivault's table of required FHIR R4 elements
// (internal/fhir/spec/required-elements.json.gz) from the official R4
// StructureDefinitions.
//
// The R4 JSON schema marks only complex elements as required, so a
// resource without a required primitive (Observation.status, 1..1) passes
// it. The table lists, for every concrete resource type, every complex
// data type and every backbone element that needs checking, the elements
// whose minimum cardinality is at least 1, and how to descend to the
// nested types that have such elements. Maximum cardinality is not
// recorded: the schema already tells arrays from single values.
//
// Usage, from the repository root:
//
//	go run ./internal/fhir/internal/gen -src DIR_OR_BUNDLE [-src ...] -out internal/fhir/spec/required-elements.json.gz
//
// -src is a directory of StructureDefinition-*.json files (the package/
// folder of the HL7 npm package hl7.fhir.r4.examples@4.0.1, which carries
// the core definitions) or a Bundle of StructureDefinitions (Medplum's
// profiles-resources.json and profiles-types.json); repeat it as needed.
// Both sources give the same table. The output is deterministic.
//
// # Table format
//
//	{"fhirVersion": "4.0.1", "nodes": {NAME: NODE, ...}}
//
// NAME is a type name (Observation, Narrative) or, for a backbone element,
// its path (Observation.component). A NODE is
//
//	{"required": ["status", "value[x]"],
//	 "choices":  {"value[x]": ["valueQuantity", ...]},
//	 "children": {"component": "Observation.component", "text": "Narrative",
//	              "contained": "Resource"}}
//
// required lists element names with min >= 1; a choice element is
// satisfied by any of its JSON names in choices. children maps a JSON
// member name to the node to check it against; "Resource" means the node
// of the nested resource's own resourceType. extension and
// modifierExtension are always Extension and are left out of children.
// Only nodes that can lead to a required element are kept, plus every
// resource type.
package main

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

func main() {
	var srcs []string
	flag.Func("src", "directory of StructureDefinition-*.json, or a Bundle of them (repeatable)", func(s string) error {
		srcs = append(srcs, s)
		return nil
	})
	out := flag.String("out", "", "output file (.json.gz)")
	flag.Parse()
	if len(srcs) == 0 || *out == "" {
		flag.Usage()
		os.Exit(2)
	}
	if err := run(srcs, *out); err != nil {
		fmt.Fprintln(os.Stderr, "gen:", err)
		os.Exit(1)
	}
}

func run(srcs []string, out string) error {
	var sds []structureDefinition
	for _, s := range srcs {
		got, err := load(s)
		if err != nil {
			return err
		}
		sds = append(sds, got...)
	}
	tab, err := build(sds)
	if err != nil {
		return err
	}
	if tab.resources != 146 {
		return fmt.Errorf("found %d concrete R4 resource definitions, want 146", tab.resources)
	}
	raw, err := json.Marshal(tab)
	if err != nil {
		return err
	}
	var buf bytes.Buffer
	zw, err := gzip.NewWriterLevel(&buf, gzip.BestCompression) // zero header: reproducible
	if err != nil {
		return err
	}
	if _, err := zw.Write(raw); err != nil {
		return err
	}
	if err := zw.Close(); err != nil {
		return err
	}
	if err := os.WriteFile(out, buf.Bytes(), 0o644); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "gen: %d nodes, %d bytes JSON, %d bytes gzipped\n", len(tab.Nodes), len(raw), buf.Len())
	return nil
}

type structureDefinition struct {
	ResourceType string `json:"resourceType"`
	URL          string `json:"url"`
	FHIRVersion  string `json:"fhirVersion"`
	Kind         string `json:"kind"`
	Abstract     bool   `json:"abstract"`
	Type         string `json:"type"`
	Derivation   string `json:"derivation"`
	Snapshot     struct {
		Element []element `json:"element"`
	} `json:"snapshot"`
}

type element struct {
	Path             string `json:"path"`
	SliceName        string `json:"sliceName"`
	Min              int    `json:"min"`
	ContentReference string `json:"contentReference"`
	Type             []struct {
		Code string `json:"code"`
	} `json:"type"`
}

func load(src string) ([]structureDefinition, error) {
	fi, err := os.Stat(src)
	if err != nil {
		return nil, err
	}
	if fi.IsDir() {
		files, err := filepath.Glob(filepath.Join(src, "StructureDefinition-*.json"))
		if err != nil {
			return nil, err
		}
		var out []structureDefinition
		for _, f := range files {
			b, err := os.ReadFile(f)
			if err != nil {
				return nil, err
			}
			var sd structureDefinition
			if err := json.Unmarshal(b, &sd); err != nil {
				return nil, fmt.Errorf("%s: %w", f, err)
			}
			out = append(out, sd)
		}
		return out, nil
	}
	b, err := os.ReadFile(src)
	if err != nil {
		return nil, err
	}
	var bundle struct {
		Entry []struct {
			Resource json.RawMessage `json:"resource"`
		} `json:"entry"`
	}
	if err := json.Unmarshal(b, &bundle); err != nil {
		return nil, fmt.Errorf("%s: %w", src, err)
	}
	var out []structureDefinition
	for _, e := range bundle.Entry {
		var head struct {
			ResourceType string `json:"resourceType"`
		}
		if err := json.Unmarshal(e.Resource, &head); err != nil {
			return nil, fmt.Errorf("%s: %w", src, err)
		}
		if head.ResourceType != "StructureDefinition" {
			continue
		}
		var sd structureDefinition
		if err := json.Unmarshal(e.Resource, &sd); err != nil {
			return nil, fmt.Errorf("%s: %w", src, err)
		}
		out = append(out, sd)
	}
	return out, nil
}

// Table is the generated file's content.
type Table struct {
	FHIRVersion string           `json:"fhirVersion"`
	Nodes       map[string]*Node `json:"nodes"`
	resources   int              // concrete resource definitions read
}

// Node is one type or backbone element.
type Node struct {
	Required []string            `json:"required,omitempty"`
	Choices  map[string][]string `json:"choices,omitempty"`
	Children map[string]string   `json:"children,omitempty"`
}

const (
	coreURL  = "http://hl7.org/fhir/StructureDefinition/"
	resource = "Resource" // child target: the nested resource's own type
)

// build turns the base definitions (specialisations, not profiles) into
// the pruned table.
func build(all []structureDefinition) (*Table, error) {
	sds := map[string]structureDefinition{}
	for _, sd := range all {
		if sd.Derivation != "specialization" || sd.Abstract || sd.URL != coreURL+sd.Type {
			continue // profiles, abstract bases, logical models
		}
		if sd.Kind != "resource" && sd.Kind != "complex-type" {
			continue
		}
		if sd.FHIRVersion != "4.0.1" {
			continue // Medplum's bundles add a few R4B (4.3.0) types
		}
		if _, dup := sds[sd.Type]; dup {
			continue // the same definition from two sources
		}
		sds[sd.Type] = sd
	}
	resources := 0
	for _, sd := range sds {
		if sd.Kind == "resource" {
			resources++
		}
	}
	nodes := map[string]*Node{}
	for _, sd := range sds {
		if err := addDefinition(sd, sds, nodes); err != nil {
			return nil, fmt.Errorf("%s: %w", sd.Type, err)
		}
	}
	keep := interesting(nodes)
	for name, n := range nodes {
		for k, target := range n.Children {
			if !keep[target] {
				delete(n.Children, k)
			}
		}
		isResource := sds[name].Kind == "resource"
		if !keep[name] && !isResource {
			delete(nodes, name)
		}
	}
	return &Table{FHIRVersion: "4.0.1", Nodes: nodes, resources: resources}, nil
}

func addDefinition(sd structureDefinition, sds map[string]structureDefinition, nodes map[string]*Node) error {
	els := sd.Snapshot.Element
	if len(els) == 0 || els[0].Path != sd.Type {
		return errors.New("snapshot does not start with the type")
	}
	// Backbone nodes: elements with children of their own.
	hasChildren := map[string]bool{}
	for _, e := range els {
		if i := strings.LastIndexByte(e.Path, '.'); i > 0 {
			hasChildren[e.Path[:i]] = true
		}
	}
	nodes[sd.Type] = &Node{}
	for _, e := range els[1:] {
		if e.SliceName != "" {
			return fmt.Errorf("%s: base definitions are not expected to slice", e.Path)
		}
		i := strings.LastIndexByte(e.Path, '.')
		parent, name := e.Path[:i], e.Path[i+1:]
		if hasChildren[e.Path] {
			nodes[e.Path] = &Node{}
		}
		n := nodes[parent]
		if n == nil {
			return fmt.Errorf("%s: parent is not a backbone element", e.Path)
		}
		if name == "extension" || name == "modifierExtension" {
			if len(e.Type) != 1 || e.Type[0].Code != "Extension" {
				return fmt.Errorf("%s: want type Extension", e.Path)
			}
			continue // implied for every element
		}
		base, choice := strings.CutSuffix(name, "[x]")
		var keys []string // JSON member names
		for _, t := range e.Type {
			key := base
			if choice {
				key = base + strings.ToUpper(t.Code[:1]) + t.Code[1:]
			}
			keys = append(keys, key)
			switch target := childTarget(e, t.Code, hasChildren, sds); {
			case target == "":
			case n.Children == nil:
				n.Children = map[string]string{key: target}
			default:
				n.Children[key] = target
			}
		}
		if e.ContentReference != "" {
			ref, ok := strings.CutPrefix(e.ContentReference, "#")
			if !ok || !hasChildren[ref] || len(e.Type) != 0 || choice {
				return fmt.Errorf("%s: unexpected contentReference", e.Path)
			}
			keys = []string{name}
			if n.Children == nil {
				n.Children = map[string]string{}
			}
			n.Children[name] = ref
		}
		if len(keys) == 0 {
			return fmt.Errorf("%s: no type", e.Path)
		}
		if e.Min < 1 {
			continue
		}
		n.Required = append(n.Required, name)
		if choice {
			if n.Choices == nil {
				n.Choices = map[string][]string{}
			}
			n.Choices[name] = keys
		}
	}
	return nil
}

// childTarget names the node an element of type code descends into, or
// "" for primitives.
func childTarget(e element, code string, hasChildren map[string]bool, sds map[string]structureDefinition) string {
	switch {
	case code == "BackboneElement" || code == "Element":
		if hasChildren[e.Path] {
			return e.Path
		}
		return "" // an Element with no members of its own: nothing to check
	case code == resource:
		return resource
	case sds[code].Kind == "complex-type":
		return code
	}
	return "" // primitive (lower case) or a FHIRPath system type
}

// interesting returns the nodes from which a required element can be
// reached (excluding through extensions, which are always walked).
func interesting(nodes map[string]*Node) map[string]bool {
	keep := map[string]bool{resource: true}
	for name, n := range nodes {
		if len(n.Required) > 0 {
			keep[name] = true
		}
	}
	names := make([]string, 0, len(nodes))
	for name := range nodes {
		names = append(names, name)
	}
	sort.Strings(names)
	for changed := true; changed; {
		changed = false
		for _, name := range names {
			if keep[name] {
				continue
			}
			for _, target := range nodes[name].Children {
				if keep[target] {
					keep[name], changed = true, true
					break
				}
			}
		}
	}
	return keep
}
