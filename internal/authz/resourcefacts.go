package authz

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/phivault/phivault/internal/fhir"
)

// ResourceFacts is what consent criteria about content read from one
// resource: its identity, profiles, every Coding, every reference (and
// those in authorship elements) and its clinical times. It is derived
// from the decrypted resource for one decision and never kept.
type ResourceFacts struct {
	Ref        string // "Type/id"
	Profiles   []string
	Codings    []coding
	References []string // every relative reference in the resource
	Authors    []string // references in authorship elements
	Times      []period // clinical times (effective, occurrence, onset...)
}

// Limits on what is collected from one resource: beyond them the walk
// stops and the facts say "unknown" (consents fail closed).
const (
	maxFactItems = 10000
	maxWalkDepth = 64
)

// authorshipElements name who wrote a resource, for provision.data with
// meaning "authoredby".
var authorshipElements = []string{"author", "recorder", "asserter", "enterer", "requester", "performer", "sender", "attester", "authenticator"}

// clinicalTimes are the top-level elements holding when the data is
// about, for provision.dataPeriod (the choice types [x] by suffix).
var clinicalTimes = []string{
	"effectiveDateTime", "effectiveInstant", "effectivePeriod",
	"occurrenceDateTime", "occurrencePeriod",
	"performedDateTime", "performedPeriod",
	"onsetDateTime", "onsetPeriod",
	"recordedDate", "authoredOn", "issued", "date", "period", "created", "sent", "dateAsserted",
	"whenHandedOver", "whenPrepared", "occurrence",
}

// NewResourceFacts reads the facts of body (a FHIR resource). Malformed
// JSON is an error wrapping ErrUndecidable.
func NewResourceFacts(typ, id string, body []byte) (*ResourceFacts, error) {
	var m map[string]any
	if err := json.Unmarshal(body, &m); err != nil {
		return nil, fmt.Errorf("reading resource facts: %w", ErrUndecidable)
	}
	rf := &ResourceFacts{Ref: typ + "/" + id}
	if meta, ok := m["meta"].(map[string]any); ok {
		if ps, ok := meta["profile"].([]any); ok {
			for _, p := range ps {
				if s, ok := p.(string); ok {
					rf.Profiles = append(rf.Profiles, s)
				}
			}
		}
	}
	n := 0
	var walk func(v any, key string, author bool, depth int) bool
	walk = func(v any, key string, author bool, depth int) bool {
		if n++; n > maxFactItems || depth > maxWalkDepth {
			return false
		}
		switch x := v.(type) {
		case map[string]any:
			if code, ok := x["code"].(string); ok {
				sys, _ := x["system"].(string)
				rf.Codings = append(rf.Codings, coding{System: sys, Code: code})
			}
			if ref, ok := x["reference"].(string); ok && relativeRef(ref) {
				rf.References = append(rf.References, ref)
				if author {
					rf.Authors = append(rf.Authors, ref)
				}
			}
			for k, c := range x {
				if k == "meta" && depth == 0 {
					continue
				}
				if !walk(c, k, author || slices.Contains(authorshipElements, k), depth+1) {
					return false
				}
			}
		case []any:
			for _, c := range x {
				if !walk(c, key, author, depth+1) {
					return false
				}
			}
		}
		return true
	}
	if !walk(m, "", false, 0) {
		return nil, fmt.Errorf("reading resource facts: more than %d elements: %w", maxFactItems, ErrUndecidable)
	}
	for _, k := range clinicalTimes {
		switch v := m[k].(type) {
		case string:
			rf.Times = append(rf.Times, period{Start: v, End: v})
		case map[string]any:
			s, _ := v["start"].(string)
			e, _ := v["end"].(string)
			if s != "" || e != "" {
				rf.Times = append(rf.Times, period{Start: s, End: e})
			}
		}
	}
	return rf, nil
}

// hasCoding reports whether the resource holds c (by code, and by
// system when c names one).
func (rf *ResourceFacts) hasCoding(c coding) bool {
	for _, x := range rf.Codings {
		if x.Code == c.Code && (c.System == "" || x.System == c.System) {
			return true
		}
	}
	return false
}

// inDataPeriod matches provision.dataPeriod against the resource's
// clinical times: yes when one overlaps it, no when none does, unknown
// when the resource has no clinical time or one cannot be read.
func (rf *ResourceFacts) inDataPeriod(p *period) tri {
	if p == nil {
		return yes
	}
	if len(rf.Times) == 0 {
		return unknown
	}
	lo, hi := time.Time{}, time.Time{}
	var ok bool
	if p.Start != "" {
		if lo, ok = fhir.ParseDateTime(p.Start, false); !ok {
			return unknown
		}
	}
	if p.End != "" {
		if hi, ok = fhir.ParseDateTime(p.End, true); !ok {
			return unknown
		}
	}
	out := no
	for _, t := range rf.Times {
		s, okS := fhir.ParseDateTime(t.Start, false)
		e, okE := fhir.ParseDateTime(t.End, true)
		if t.Start == "" {
			s, okS = time.Time{}, true
		}
		if t.End == "" {
			e, okE = time.Unix(1<<40, 0), true
		}
		if !okS || !okE {
			out = unknown
			continue
		}
		if (hi.IsZero() || !s.After(hi)) && (lo.IsZero() || !e.Before(lo)) {
			return yes
		}
	}
	return out
}

// dataMatch matches one provision.data against the resource.
func (rf *ResourceFacts) dataMatch(d DataRef) tri {
	if rf.Ref == d.Reference {
		return yes // every meaning covers the instance itself
	}
	switch d.Meaning {
	case "instance":
		return no
	case "dependents":
		// Resources that refer to the instance.
		return boolTri(slices.Contains(rf.References, d.Reference))
	case "related":
		// Resources the instance refers to.
		if !d.RelatedResolved {
			return unknown
		}
		return boolTri(slices.Contains(d.Related, rf.Ref))
	case "authoredby":
		if slices.Contains(rf.Authors, d.Reference) {
			return yes
		}
		if slices.Contains(rf.References, d.Reference) {
			return unknown // named, but not in an element known as authorship
		}
		return no
	}
	return unknown
}

// refsIn returns the relative references in body (for "related" data).
func refsIn(body []byte) ([]string, bool) {
	rf, err := NewResourceFacts("", "", body)
	if err != nil {
		return nil, false
	}
	out := slices.Clone(rf.References)
	slices.Sort(out)
	return slices.Compact(out), true
}

// resolveRelated fills DataRef.Related of every provision of c with
// meaning "related", reading the referenced resources through read.
func resolveRelated(p *Provision, read func(ref string) ([]byte, bool, error)) error {
	if p == nil {
		return nil
	}
	for i := range p.Data {
		d := &p.Data[i]
		if d.Meaning != "related" {
			continue
		}
		body, found, err := read(d.Reference)
		if err != nil {
			return err
		}
		if !found {
			d.RelatedResolved = true // nothing it refers to
			continue
		}
		d.Related, d.RelatedResolved = refsIn(body)
	}
	for _, c := range p.Children {
		if err := resolveRelated(c, read); err != nil {
			return err
		}
	}
	return nil
}

// hasRelated reports whether any provision of p has "related" data.
func hasRelated(p *Provision) bool {
	if p == nil {
		return false
	}
	for _, d := range p.Data {
		if d.Meaning == "related" {
			return true
		}
	}
	return slices.ContainsFunc(p.Children, hasRelated)
}

// splitRef splits "Type/id".
func splitRef(ref string) (typ, id string) {
	typ, id, _ = strings.Cut(ref, "/")
	return typ, id
}
