// Command gensummary derives phivault's table of FHIR R4 summary
// elements (internal/fhir/spec/summary-elements.json.gz) from the
// official R4 StructureDefinitions: what _summary=true keeps, what
// _summary=text and _elements must keep (mandatory top-level elements),
// and how choice elements are spelt in JSON (for _elements=value[x]).
//
// Usage, from the repository root (same source as internal/fhir/internal/gen):
//
//	npm pack hl7.fhir.r4.examples@4.0.1   # in a scratch directory
//	tar xzf hl7.fhir.r4.examples-4.0.1.tgz
//	go run ./internal/fhir/internal/gensummary -src SCRATCH/package \
//	    -out internal/fhir/spec/summary-elements.json.gz
//
// The output is deterministic.
//
// # Table format
//
//	{"fhirVersion": "4.0.1", "nodes": {NAME: NODE, ...}}
//
// NAME is a resource type, a complex data type (Attachment) or a backbone
// element path (Observation.component). A NODE is
//
//	{"summary":   ["id", "meta", "status", "valueQuantity", ...],
//	 "children":  {"component": "Observation.component", "attachment": "Attachment",
//	               "resource": "Resource"},
//	 "mandatory": ["status", "code"],
//	 "choices":   {"value": ["valueQuantity", ...]}}
//
// summary lists the JSON member names of the elements marked isSummary
// (a choice element expanded to its typed names). children maps a summary
// member to the node its value is subset against; "Resource" means the
// node of the nested resource's own resourceType. A member not in children
// is kept whole. mandatory (resources only) lists the JSON names of the
// top-level elements with min >= 1; choices (resources only) maps each
// top-level choice element's base name to its JSON names. A data type
// whose elements are all summary and lead to nothing to remove has no
// node: it is kept whole.
package main

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

func main() {
	src := flag.String("src", "", "directory of StructureDefinition-*.json (package/ of hl7.fhir.r4.examples@4.0.1)")
	out := flag.String("out", "", "output file (.json.gz)")
	flag.Parse()
	if *src == "" || *out == "" {
		flag.Usage()
		os.Exit(2)
	}
	if err := run(*src, *out); err != nil {
		fmt.Fprintln(os.Stderr, "gensummary:", err)
		os.Exit(1)
	}
}

const coreURL = "http://hl7.org/fhir/StructureDefinition/"

type structureDefinition struct {
	URL         string `json:"url"`
	FHIRVersion string `json:"fhirVersion"`
	Kind        string `json:"kind"`
	Abstract    bool   `json:"abstract"`
	Type        string `json:"type"`
	Derivation  string `json:"derivation"`
	Snapshot    struct {
		Element []element `json:"element"`
	} `json:"snapshot"`
}

type element struct {
	Path             string `json:"path"`
	SliceName        string `json:"sliceName"`
	Min              int    `json:"min"`
	IsSummary        bool   `json:"isSummary"`
	ContentReference string `json:"contentReference"`
	Type             []struct {
		Code string `json:"code"`
	} `json:"type"`
}

// Node is one resource, data type or backbone element.
type Node struct {
	Summary   []string            `json:"summary"`
	Children  map[string]string   `json:"children,omitempty"`
	Mandatory []string            `json:"mandatory,omitempty"`
	Choices   map[string][]string `json:"choices,omitempty"`
	partial   bool                // some element is not summary
}

// Table is the generated file's content.
type Table struct {
	FHIRVersion string           `json:"fhirVersion"`
	Nodes       map[string]*Node `json:"nodes"`
}

func run(src, out string) error {
	files, err := filepath.Glob(filepath.Join(src, "StructureDefinition-*.json"))
	if err != nil {
		return err
	}
	var sds []structureDefinition
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return err
		}
		var sd structureDefinition
		if err := json.Unmarshal(b, &sd); err != nil {
			return fmt.Errorf("%s: %w", f, err)
		}
		sds = append(sds, sd)
	}
	tab, resources, err := build(sds)
	if err != nil {
		return err
	}
	if resources != 146 {
		return fmt.Errorf("found %d concrete R4 resource definitions, want 146", resources)
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
	fmt.Fprintf(os.Stderr, "gensummary: %d nodes, %d bytes JSON, %d bytes gzipped\n", len(tab.Nodes), len(raw), buf.Len())
	return nil
}

// build derives the table from the base definitions of concrete
// resources and complex data types; profiles are ignored.
func build(all []structureDefinition) (*Table, int, error) {
	nodes := map[string]*Node{}
	resources := 0
	for _, sd := range all {
		if sd.URL != coreURL+sd.Type || sd.Derivation != "specialization" || sd.Abstract {
			continue
		}
		if sd.Kind != "resource" && sd.Kind != "complex-type" {
			continue
		}
		if sd.FHIRVersion != "4.0.1" {
			return nil, 0, fmt.Errorf("%s: fhirVersion %s, want 4.0.1", sd.Type, sd.FHIRVersion)
		}
		if sd.Kind == "resource" {
			resources++
		}
		if err := addDefinition(sd, nodes); err != nil {
			return nil, 0, err
		}
	}
	// Drop the children that lead to nothing to remove, until stable;
	// then the data type and backbone nodes nobody refers to.
	for changed := true; changed; {
		changed = false
		for _, n := range nodes {
			for k, target := range n.Children {
				if target == "Resource" {
					continue
				}
				if t, ok := nodes[target]; !ok || (!t.partial && len(t.Children) == 0) {
					delete(n.Children, k)
					changed = true
				}
			}
		}
	}
	used := map[string]bool{}
	for name, n := range nodes {
		if n.Mandatory != nil || n.Choices != nil || !strings.Contains(name, ".") && isResource(name, all) {
			used[name] = true
		}
		for _, t := range n.Children {
			used[t] = true
		}
	}
	for name := range nodes {
		if !used[name] {
			delete(nodes, name)
		}
	}
	return &Table{FHIRVersion: "4.0.1", Nodes: nodes}, resources, nil
}

func isResource(name string, all []structureDefinition) bool {
	for _, sd := range all {
		if sd.Type == name && sd.Kind == "resource" && sd.URL == coreURL+name {
			return true
		}
	}
	return false
}

func addDefinition(sd structureDefinition, nodes map[string]*Node) error {
	resource := sd.Kind == "resource"
	get := func(path string) *Node {
		n, ok := nodes[path]
		if !ok {
			n = &Node{Summary: []string{}, Children: map[string]string{}}
			nodes[path] = n
		}
		return n
	}
	get(sd.Type)
	for _, e := range sd.Snapshot.Element {
		if e.SliceName != "" {
			continue
		}
		dot := strings.LastIndexByte(e.Path, '.')
		if dot < 0 {
			continue // the type itself
		}
		parent, name := e.Path[:dot], e.Path[dot+1:]
		n, ok := nodes[parent]
		if !ok {
			return fmt.Errorf("%s: parent %s not seen before", e.Path, parent)
		}
		var jsonNames []string
		base, choice := strings.CutSuffix(name, "[x]")
		if choice {
			for _, t := range e.Type {
				jsonNames = append(jsonNames, base+strings.ToUpper(t.Code[:1])+t.Code[1:])
			}
		} else {
			jsonNames = []string{name}
		}
		if resource && parent == sd.Type {
			if e.Min >= 1 {
				n.Mandatory = append(n.Mandatory, jsonNames...)
			}
			if choice {
				if n.Choices == nil {
					n.Choices = map[string][]string{}
				}
				n.Choices[base] = jsonNames
			}
		}
		backbone := len(e.Type) == 1 && (e.Type[0].Code == "BackboneElement" || e.Type[0].Code == "Element")
		if backbone {
			get(e.Path)
		}
		if !e.IsSummary {
			n.partial = true
			continue
		}
		n.Summary = append(n.Summary, jsonNames...)
		// Where the kept value is subset further.
		switch {
		case e.ContentReference != "":
			n.Children[name] = strings.TrimPrefix(e.ContentReference, "#")
		case backbone:
			n.Children[name] = e.Path
		case len(e.Type) == 1 && e.Type[0].Code == "Resource":
			n.Children[name] = "Resource"
		default:
			for i, t := range e.Type {
				if c := t.Code; c != "" && c[0] >= 'A' && c[0] <= 'Z' && c != "Extension" {
					n.Children[jsonNames[i]] = c
				}
			}
		}
	}
	for _, n := range nodes {
		sort.Strings(n.Summary)
		sort.Strings(n.Mandatory)
	}
	return nil
}
