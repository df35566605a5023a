package fhir

import (
	"bytes"
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"sync"

	"github.com/phivault/phivault/internal/fhir/spec"
)

// Subsetting (_summary and _elements, R4 §3.1.1.5.8 and §3.1.1.5.9)
// returns part of a resource, marked with the meta.tag SUBSETTED. It only
// ever removes members from the JSON it is given: applied to what the
// caller may see (after authorization masking), it cannot show more.

// Summary modes of _summary.
const (
	SummaryFalse = "false" // the full resource (the default)
	SummaryTrue  = "true"  // the elements marked isSummary, recursively
	SummaryText  = "text"  // text, id, meta and the mandatory top-level elements
	SummaryData  = "data"  // everything but text
	SummaryCount = "count" // searches only: the total, no entries
)

// SubsettedSystem and SubsettedCode are the meta.tag a subset carries.
const (
	SubsettedSystem = "http://terminology.hl7.org/CodeSystem/v3-ObservationValue"
	SubsettedCode   = "SUBSETTED"
)

// Bounds on _elements: a request names at most MaxElements element
// names, each at most maxElementLen bytes, so parsing and matching stay
// cheap whatever the URL holds.
const (
	MaxElements   = 64
	maxElementLen = 64
)

// elementRE is one _elements name: an element of the resource, or
// Type.element (R4 allows a type prefix in searches with several types).
// Deeper paths (Patient.name.family) are not supported.
var elementRE = regexp.MustCompile(`^(?:([A-Z][A-Za-z]{1,63})\.)?([a-z][A-Za-z0-9]{0,62})(\[x\])?$`)

// Subset is a parsed _summary or _elements request. The zero value is
// the full resource.
type Subset struct {
	summary  string
	elements map[string][]string // type ("" for any) -> element names
	typed    bool                // every name has a type prefix
}

// ParseSubset parses the values of _summary (at most one) and _elements
// (comma-separated, repeatable). _summary=false and an absent _summary
// mean the full resource; _summary=count is accepted (the search uses
// it; a read refuses it). _summary (other than false) and _elements
// together are refused: R4 gives no meaning to the combination. Errors
// wrap [ErrSubset] and quote nothing from the input.
func ParseSubset(summary, elements []string) (Subset, error) {
	var s Subset
	switch len(summary) {
	case 0:
	case 1:
		switch summary[0] {
		case SummaryFalse:
		case SummaryTrue, SummaryText, SummaryData, SummaryCount:
			s.summary = summary[0]
		default:
			return Subset{}, fmt.Errorf("_summary must be true, text, data, count or false: %w", ErrSubset)
		}
	default:
		return Subset{}, fmt.Errorf("_summary is given more than once: %w", ErrSubset)
	}
	n := 0
	for _, raw := range elements {
		for name := range strings.SplitSeq(raw, ",") {
			name = strings.TrimSpace(name)
			if name == "" {
				continue
			}
			if n++; n > MaxElements {
				return Subset{}, fmt.Errorf("_elements names more than %d elements: %w", MaxElements, ErrSubset)
			}
			m := elementRE.FindStringSubmatch(name)
			if m == nil || len(name) > maxElementLen {
				return Subset{}, fmt.Errorf("_elements: element %d is not an element name (name or Type.name; deeper paths are not supported): %w", n, ErrSubset)
			}
			if s.elements == nil {
				s.elements = map[string][]string{}
			}
			if !slices.Contains(s.elements[m[1]], m[2]) {
				s.elements[m[1]] = append(s.elements[m[1]], m[2])
			}
		}
	}
	if s.elements != nil {
		if s.summary != "" && s.summary != SummaryCount {
			return Subset{}, fmt.Errorf("_summary and _elements cannot be combined: %w", ErrSubset)
		}
		_, any := s.elements[""]
		s.typed = !any
	}
	return s, nil
}

// Full reports whether s asks for the full resource.
func (s Subset) Full() bool { return s.summary == "" && s.elements == nil }

// Count reports _summary=count.
func (s Subset) Count() bool { return s.summary == SummaryCount }

// Summary is the _summary mode: "" (false), true, text, data or count.
func (s Subset) Summary() string { return s.summary }

// summaryNode is one node of the summary table (gensummary's format).
type summaryNode struct {
	Summary   []string            `json:"summary"`
	Children  map[string]string   `json:"children"`
	Mandatory []string            `json:"mandatory"`
	Choices   map[string][]string `json:"choices"`
}

// Subsetter applies a [Subset] to resources, with the R4 summary table
// (loaded on first use). It is safe for concurrent use; the zero value
// is ready.
type Subsetter struct {
	once  sync.Once
	nodes map[string]*summaryNode // read-only after once
	err   error
}

func (ss *Subsetter) load() error {
	ss.once.Do(func() {
		raw, err := spec.SummaryElements()
		if err != nil {
			ss.err = err
			return
		}
		var tab struct {
			FHIRVersion string                  `json:"fhirVersion"`
			Nodes       map[string]*summaryNode `json:"nodes"`
		}
		if err := json.Unmarshal(raw, &tab); err != nil {
			ss.err = fmt.Errorf("parsing embedded summary table: %w", err)
			return
		}
		if tab.FHIRVersion != "4.0.1" {
			ss.err = fmt.Errorf("embedded summary table is for FHIR %q, want 4.0.1", tab.FHIRVersion)
			return
		}
		ss.nodes = tab.Nodes
	})
	return ss.err
}

// maxSubsetDepth bounds the recursion of _summary=true (stored resources
// are already bounded by Limits.MaxDepth; this guards the walk itself).
const maxSubsetDepth = 64

// Apply returns body (a FHIR JSON resource) subset as sub asks, tagged
// SUBSETTED; body unchanged when sub is the full resource, or when sub
// names elements of other types only. It only removes members. An error
// (body not a resource, a type without a summary definition) means the
// caller must send nothing.
func (ss *Subsetter) Apply(sub Subset, body []byte) ([]byte, error) {
	if sub.Full() || sub.Count() {
		return body, nil
	}
	if err := ss.load(); err != nil {
		return nil, err
	}
	var res map[string]any
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber() // decimals keep their precision
	if err := dec.Decode(&res); err != nil {
		return nil, fmt.Errorf("subsetting: not a JSON object: %w", ErrInvalid)
	}
	typ, _ := res["resourceType"].(string)
	node := ss.nodes[typ]
	if node == nil {
		return nil, fmt.Errorf("subsetting: no summary definition for the resource type: %w", ErrUnknownType)
	}
	var out map[string]any
	switch {
	case sub.summary == SummaryTrue:
		out = ss.summarise(res, node, 0)
	case sub.summary == SummaryData:
		out = res
		delete(out, "text")
		delete(out, "_text")
	case sub.summary == SummaryText:
		out = keep(res, node, "text")
	default:
		names := slices.Concat(sub.elements[""], sub.elements[typ])
		if len(names) == 0 {
			return body, nil // only other types were named
		}
		var want []string
		for _, n := range names {
			if c, ok := node.Choices[n]; ok {
				want = append(want, c...)
			} else {
				want = append(want, n)
			}
		}
		out = keep(res, node, want...)
	}
	out["resourceType"] = typ
	tagSubsetted(out)
	return json.Marshal(out)
}

// keep returns the members of res named in want, plus id, meta, the
// mandatory top-level elements (R4: servers SHOULD return them) and
// the primitive extensions (_name) of each.
func keep(res map[string]any, node *summaryNode, want ...string) map[string]any {
	out := map[string]any{}
	for _, names := range [][]string{{"id", "meta"}, node.Mandatory, want} {
		for _, k := range names {
			if v, ok := res[k]; ok {
				out[k] = v
			}
			if v, ok := res["_"+k]; ok {
				out["_"+k] = v
			}
		}
	}
	return out
}

// summarise keeps the summary members of obj, descending into the
// nodes the table names (backbone elements, data types with elements
// outside the summary, nested resources).
func (ss *Subsetter) summarise(obj map[string]any, node *summaryNode, depth int) map[string]any {
	out := map[string]any{}
	if depth > maxSubsetDepth {
		return out
	}
	for _, k := range node.Summary {
		v, ok := obj[k]
		if ext, ok := obj["_"+k]; ok {
			out["_"+k] = ext
		}
		if !ok {
			continue
		}
		target, sub := node.Children[k]
		if !sub {
			out[k] = v
			continue
		}
		if d, ok := ss.descend(v, target, depth+1); ok {
			out[k] = d
		}
	}
	return out
}

// descend subsets a member value (an object or an array of objects)
// against the node target. A value of another shape, or a nested
// resource of a type without a definition, is dropped (ok false).
func (ss *Subsetter) descend(v any, target string, depth int) (any, bool) {
	switch x := v.(type) {
	case map[string]any:
		n := target
		if target == "Resource" {
			n, _ = x["resourceType"].(string)
		}
		node := ss.nodes[n]
		if node == nil {
			return nil, false
		}
		o := ss.summarise(x, node, depth)
		if target == "Resource" {
			o["resourceType"] = n
		}
		return o, len(o) > 0 // FHIR has no empty objects
	case []any:
		out := make([]any, 0, len(x))
		for _, e := range x {
			if d, ok := ss.descend(e, target, depth); ok {
				out = append(out, d)
			}
		}
		return out, len(out) > 0
	default:
		return nil, false
	}
}

// tagSubsetted adds the SUBSETTED tag to res's meta (once).
func tagSubsetted(res map[string]any) {
	meta, _ := res["meta"].(map[string]any)
	if meta == nil {
		meta = map[string]any{}
	}
	tags, _ := meta["tag"].([]any)
	for _, t := range tags {
		if m, _ := t.(map[string]any); m["system"] == SubsettedSystem && m["code"] == SubsettedCode {
			res["meta"] = meta
			return
		}
	}
	meta["tag"] = append(tags, map[string]any{"system": SubsettedSystem, "code": SubsettedCode, "display": "subsetted"})
	res["meta"] = meta
}
