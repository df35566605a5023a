package terminology

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
)

// Source finds stored code systems and value sets by canonical url
// (and version, when not ""), as the requesting user may read them. A
// resource that is not stored, or that the user may not read, is
// ErrNotFound: it must be indistinguishable here. Implementations
// decide which of several matching versions to return (the latest).
type Source interface {
	CodeSystem(ctx context.Context, url, version string) (*CodeSystem, error)
	ValueSet(ctx context.Context, url, version string) (*ValueSet, error)
}

// Bounds of the work one request can drive.
const (
	// MaxExpansion bounds the codes of one expansion before paging (and
	// of every value set it imports): beyond it $expand and
	// $validate-code answer too-costly rather than build an unbounded
	// list in memory. It is more than the largest R4 value set that
	// enumerates its codes (about 1,800) and far less than SNOMED CT,
	// which phivault does not serve anyway.
	MaxExpansion = 10_000
	// MaxDepth bounds how deeply value sets import value sets.
	MaxDepth = 8
	// MaxCount bounds one page of an expansion.
	MaxCount = 1_000
)

// ExpandOptions are the $expand parameters phivault honours.
type ExpandOptions struct {
	Filter string // case-insensitive substring of code or display
	Offset int    // codes to skip
	Count  int    // codes to return; 0 means all (at most MaxExpansion)
}

// Expansion is one page of an expanded value set.
type Expansion struct {
	Total  int // codes in the whole expansion (after the text filter)
	Offset int
	Codes  []Code
}

// codeSet is an ordered set of codes keyed by system and code.
type codeSet struct {
	list []Code
	idx  map[string]int
}

func newSet() *codeSet { return &codeSet{idx: map[string]int{}} }

func key(system, code string) string { return system + "\x00" + code }

func (s *codeSet) add(c Code) error {
	if _, ok := s.idx[key(c.System, c.Code)]; ok {
		return nil
	}
	if len(s.list) >= MaxExpansion {
		return fail(ErrTooCostly, fmt.Sprintf("the expansion would hold more than %d codes", MaxExpansion))
	}
	s.idx[key(c.System, c.Code)] = len(s.list)
	s.list = append(s.list, c)
	return nil
}

func (s *codeSet) has(c Code) bool { _, ok := s.idx[key(c.System, c.Code)]; return ok }

func (s *codeSet) filter(keep func(Code) bool) *codeSet {
	out := newSet()
	for _, c := range s.list {
		if keep(c) {
			out.idx[key(c.System, c.Code)] = len(out.list)
			out.list = append(out.list, c)
		}
	}
	return out
}

// Expand expands vs through src: every code of its compose (or of its
// stored expansion), then the text filter, then one page.
func Expand(ctx context.Context, src Source, vs *ValueSet, opt ExpandOptions) (*Expansion, error) {
	if opt.Offset < 0 || opt.Count < 0 {
		return nil, fail(ErrInvalid, "offset and count must not be negative")
	}
	if opt.Count > MaxCount {
		return nil, fail(ErrTooCostly, fmt.Sprintf("count is limited to %d", MaxCount))
	}
	set, err := expandAll(ctx, src, vs, 0, map[string]bool{})
	if err != nil {
		return nil, err
	}
	codes := set.list
	if f := strings.ToLower(strings.TrimSpace(opt.Filter)); f != "" {
		codes = slices.DeleteFunc(slices.Clone(codes), func(c Code) bool {
			return !strings.Contains(strings.ToLower(c.Display), f) && !strings.Contains(strings.ToLower(c.Code), f)
		})
	}
	out := &Expansion{Total: len(codes), Offset: opt.Offset}
	if opt.Offset >= len(codes) {
		return out, nil
	}
	end := len(codes)
	if opt.Count > 0 && opt.Offset+opt.Count < end {
		end = opt.Offset + opt.Count
	}
	out.Codes = codes[opt.Offset:end]
	return out, nil
}

func expandAll(ctx context.Context, src Source, vs *ValueSet, depth int, visiting map[string]bool) (*codeSet, error) {
	if depth > MaxDepth {
		return nil, fail(ErrTooCostly, fmt.Sprintf("value sets import value sets more than %d deep", MaxDepth))
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	// Cycles are found by url: a value set importing any version of
	// itself has no meaning.
	if id := vs.URL; id != "" {
		if visiting[id] {
			return nil, fail(ErrInvalid, "a value set imports itself")
		}
		visiting[id] = true
		defer delete(visiting, id)
	}
	set := newSet()
	if !vs.HasCompose {
		if vs.stored == nil {
			return nil, fail(ErrUnsupported, "the value set has neither a compose nor an expansion")
		}
		for _, c := range vs.stored {
			if err := set.add(c); err != nil {
				return nil, err
			}
		}
		return set, nil
	}
	for i, in := range vs.Include {
		s, err := includeSet(ctx, src, in, depth, visiting, fmt.Sprintf("ValueSet.compose.include[%d]", i))
		if err != nil {
			return nil, err
		}
		for _, c := range s.list {
			if err := set.add(c); err != nil {
				return nil, err
			}
		}
	}
	for i, ex := range vs.Exclude {
		s, err := includeSet(ctx, src, ex, depth, visiting, fmt.Sprintf("ValueSet.compose.exclude[%d]", i))
		if err != nil {
			return nil, err
		}
		set = set.filter(func(c Code) bool { return !s.has(c) })
	}
	return set, nil
}

// includeSet is the codes of one include (or exclude): those of its
// system (all, listed or filtered), intersected with every value set it
// imports (R4 ValueSet.compose.include.valueSet).
func includeSet(ctx context.Context, src Source, in Include, depth int, visiting map[string]bool, path string) (*codeSet, error) {
	var set *codeSet
	if in.System != "" {
		var err error
		if set, err = systemSet(ctx, src, in, path); err != nil {
			return nil, err
		}
	}
	for j, u := range in.ValueSets {
		url, ver := SplitCanonical(u)
		vs, err := src.ValueSet(ctx, url, ver)
		if errors.Is(err, ErrNotFound) {
			return nil, fail(ErrNotFound, fmt.Sprintf("%s.valueSet[%d] names a value set that is not available", path, j))
		}
		if err != nil {
			return nil, err
		}
		s, err := expandAll(ctx, src, vs, depth+1, visiting)
		if err != nil {
			return nil, err
		}
		if set == nil {
			set = s
		} else {
			set = set.filter(s.has)
		}
	}
	if set == nil {
		return nil, fail(ErrInvalid, path+" has neither a system nor a valueSet")
	}
	return set, nil
}

func systemSet(ctx context.Context, src Source, in Include, path string) (*codeSet, error) {
	cs, err := src.CodeSystem(ctx, in.System, in.Version)
	if errors.Is(err, ErrNotFound) {
		cs = nil
	} else if err != nil {
		return nil, err
	}
	set := newSet()
	version := in.Version
	if version == "" && cs != nil {
		version = cs.Version
	}
	if len(in.Concepts) > 0 && len(in.Filters) == 0 {
		// An enumerated list: valid without the code system; with it,
		// only codes it defines are included, with its display unless
		// the list gives one.
		for _, c := range in.Concepts {
			c.Version = version
			if cs != nil {
				def := cs.Concept(c.Code)
				if def == nil {
					continue
				}
				c.Code = def.Code
				if c.Display == "" {
					c.Display = def.Display
				}
			}
			if err := set.add(c); err != nil {
				return nil, err
			}
		}
		return set, nil
	}
	if cs == nil {
		return nil, fail(ErrNotFound, path+".system names a code system that is not available")
	}
	if cs.Content != "complete" {
		return nil, fail(ErrUnsupported, path+".system names a code system whose content is not complete: it cannot be enumerated")
	}
	codes := cs.Codes()
	if len(in.Concepts) > 0 {
		codes = nil
		for _, c := range in.Concepts {
			if def := cs.Concept(c.Code); def != nil {
				codes = append(codes, def.Code)
			}
		}
	}
	for k, f := range in.Filters {
		if codes, err = applyFilter(cs, codes, f); err != nil {
			return nil, fail(ErrUnsupported, fmt.Sprintf("%s.filter[%d]: %s", path, k, err.Error()))
		}
	}
	for _, code := range codes {
		def := cs.Concept(code)
		if err := set.add(Code{System: in.System, Version: version, Code: def.Code, Display: def.Display}); err != nil {
			return nil, err
		}
	}
	return set, nil
}

// applyFilter keeps the codes that pass f. Its errors name the
// operator, never the value.
func applyFilter(cs *CodeSystem, codes []string, f Filter) ([]string, error) {
	keepIn := func(allowed map[string]bool, negate bool) []string {
		return slices.DeleteFunc(slices.Clone(codes), func(c string) bool { return allowed[c] == negate })
	}
	switch f.Op {
	case "is-a", "descendent-of", "is-not-a":
		if f.Property != "concept" && f.Property != "code" && f.Property != "parent" {
			return nil, fmt.Errorf("the %s filter applies to the concept property only", f.Op)
		}
		root := cs.Concept(f.Value)
		set := map[string]bool{}
		if root != nil {
			if f.Op != "descendent-of" {
				set[root.Code] = true
			}
			for _, d := range cs.descendants(root.Code) {
				set[d] = true
			}
		}
		return keepIn(set, f.Op == "is-not-a"), nil
	case "=", "in", "not-in":
		values := map[string]bool{f.Value: true}
		if f.Op != "=" {
			values = map[string]bool{}
			for _, v := range strings.Split(f.Value, ",") {
				values[strings.TrimSpace(v)] = true
			}
		}
		set := map[string]bool{}
		for _, code := range codes {
			c := cs.Concept(code)
			var have []string
			switch f.Property {
			case "code", "concept":
				have = []string{c.Code}
			case "display":
				have = []string{c.Display}
			default:
				have = c.property(f.Property)
			}
			for _, h := range have {
				if values[h] {
					set[code] = true
				}
			}
		}
		return keepIn(set, f.Op == "not-in"), nil
	case "exists":
		set := map[string]bool{}
		for _, code := range codes {
			if len(cs.Concept(code).property(f.Property)) > 0 {
				set[code] = true
			}
		}
		return keepIn(set, f.Value == "false"), nil
	}
	return nil, errors.New("the filter operator is not supported (is-a, descendent-of, is-not-a, =, in, not-in and exists are)")
}

// SplitCanonical splits "url|version".
func SplitCanonical(c string) (url, version string) {
	url, version, _ = strings.Cut(c, "|")
	return url, version
}
