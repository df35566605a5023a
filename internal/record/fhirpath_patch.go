package record

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/phivault/phivault/internal/fhir"
)

// FHIRPath Patch (R4 §3.1.0.8.2, fhirpatch.html): a Parameters resource
// whose "operation" parameters each name a type (add, insert, delete,
// replace, move) and its parts (path, name, value, index, source,
// destination).
//
// # The path language
//
// A clearly bounded subset of FHIRPath, enough to reach any element:
//
//	path  := Type ( "." name ( "[" n "]" )? ( ".where(" name " = " 'text' ")" ( "[" n "]" )? )* )*
//
// Names are the element names as FHIR JSON spells them: a choice
// element by its typed name (Observation.valueQuantity, not
// Observation.value). An indexer picks the n-th element (from 0) of the
// collection so far; where() keeps the elements whose child holds that
// string (a code, a system, a string value). Nothing else of FHIRPath
// (other functions, operators, resolve(), ofType(), extension(...)) is
// understood: such a path is refused with an OperationOutcome, never
// guessed at.
//
// Errors name the operation by its position and type; they never quote
// the path or a value (a where() literal may be an identifier).

// Bounds of a FHIRPath Patch (rule 24: every cost input can drive).
const (
	maxPatchOps     = 100  // operations in one patch
	maxPathLen      = 1024 // bytes of one path
	maxPathSteps    = 32   // names, indexers and where() of one path
	maxPatchValueIn = 16   // nesting of "part" in a value
)

// pathStep is one step of a parsed path: a child name, an indexer, or a
// where() filter.
type pathStep struct {
	kind  stepKind
	name  string // stepName: the element; stepWhere: the child compared
	index int    // stepIndex
	value string // stepWhere: the literal
}

type stepKind int

const (
	stepName stepKind = iota + 1
	stepIndex
	stepWhere
)

// fhirPath is a parsed path: the resource type and the steps after it.
type fhirPath struct {
	root  string
	steps []pathStep
}

func pathError(msg string) *Error {
	return fail(ErrInvalid, "not-supported", "FHIRPath Patch: "+msg)
}

// parseFHIRPath parses the subset above. Its errors say what is not
// supported, never the path.
func parseFHIRPath(s string) (fhirPath, error) {
	if len(s) == 0 {
		return fhirPath{}, invalid("FHIRPath Patch: a path is empty")
	}
	if len(s) > maxPathLen {
		return fhirPath{}, fail(ErrInvalid, "too-costly", fmt.Sprintf("FHIRPath Patch: a path is longer than %d bytes", maxPathLen))
	}
	p := &pathParser{s: s}
	root, ok := p.ident()
	if !ok {
		return fhirPath{}, pathError("a path must start with the resource type")
	}
	out := fhirPath{root: root}
	for p.i < len(p.s) {
		if len(out.steps) >= maxPathSteps {
			return fhirPath{}, fail(ErrInvalid, "too-costly", fmt.Sprintf("FHIRPath Patch: a path has more than %d steps", maxPathSteps))
		}
		switch p.s[p.i] {
		case '.':
			p.i++
			name, ok := p.ident()
			if !ok {
				return fhirPath{}, pathError("only element names, [n] indexers and where(element = 'text') are supported in paths")
			}
			if p.i < len(p.s) && p.s[p.i] == '(' {
				if name != "where" {
					return fhirPath{}, pathError("the only function supported in paths is where(element = 'text')")
				}
				st, err := p.where()
				if err != nil {
					return fhirPath{}, err
				}
				out.steps = append(out.steps, st)
				continue
			}
			out.steps = append(out.steps, pathStep{kind: stepName, name: name})
		case '[':
			p.i++
			j := p.i
			for p.i < len(p.s) && p.s[p.i] >= '0' && p.s[p.i] <= '9' {
				p.i++
			}
			if p.i == j || p.i-j > 6 || p.i >= len(p.s) || p.s[p.i] != ']' {
				return fhirPath{}, pathError("an indexer must be a non-negative integer such as [0]")
			}
			n, _ := strconv.Atoi(p.s[j:p.i])
			p.i++
			out.steps = append(out.steps, pathStep{kind: stepIndex, index: n})
		default:
			return fhirPath{}, pathError("only element names, [n] indexers and where(element = 'text') are supported in paths")
		}
	}
	return out, nil
}

type pathParser struct {
	s string
	i int
}

// ident reads a FHIR element name: a letter or "_", then letters,
// digits and "_".
func (p *pathParser) ident() (string, bool) {
	j := p.i
	for p.i < len(p.s) {
		c := p.s[p.i]
		letter := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '_'
		if !letter && (p.i == j || c < '0' || c > '9') {
			break
		}
		p.i++
	}
	return p.s[j:p.i], p.i > j
}

func (p *pathParser) space() {
	for p.i < len(p.s) && p.s[p.i] == ' ' {
		p.i++
	}
}

// where reads "(name = 'text')" after "where".
func (p *pathParser) where() (pathStep, error) {
	bad := pathError("where() must be where(element = 'text'): one element name, '=' and a quoted string")
	p.i++ // (
	p.space()
	name, ok := p.ident()
	if !ok {
		return pathStep{}, bad
	}
	p.space()
	if p.i >= len(p.s) || p.s[p.i] != '=' {
		return pathStep{}, bad
	}
	p.i++
	p.space()
	if p.i >= len(p.s) || p.s[p.i] != '\'' {
		return pathStep{}, bad
	}
	p.i++
	var b strings.Builder
	for {
		if p.i >= len(p.s) {
			return pathStep{}, bad
		}
		c := p.s[p.i]
		p.i++
		if c == '\'' {
			break
		}
		if c == '\\' {
			if p.i >= len(p.s) {
				return pathStep{}, bad
			}
			e := p.s[p.i]
			p.i++
			switch e {
			case '\'', '\\', '"', '`', '/':
				b.WriteByte(e)
			case 'n':
				b.WriteByte('\n')
			case 't':
				b.WriteByte('\t')
			case 'r':
				b.WriteByte('\r')
			default:
				return pathStep{}, bad
			}
			continue
		}
		b.WriteByte(c)
	}
	p.space()
	if p.i >= len(p.s) || p.s[p.i] != ')' {
		return pathStep{}, bad
	}
	p.i++
	return pathStep{kind: stepWhere, name: name, value: b.String()}, nil
}

// node is one element a path selects: obj[key] (idx < 0) or the idx-th
// item of the array obj[key]. The root is the resource (obj nil). def
// is the schema definition its value follows ("" if primitive or
// unknown).
type node struct {
	obj map[string]any
	key string
	idx int
	def string
}

func (n node) value(root map[string]any) any {
	if n.obj == nil {
		return root
	}
	v := n.obj[n.key]
	if n.idx >= 0 {
		a, _ := v.([]any)
		if n.idx >= len(a) {
			return nil
		}
		return a[n.idx]
	}
	return v
}

func (n node) set(root map[string]any, v any) {
	if n.idx >= 0 {
		n.obj[n.key].([]any)[n.idx] = v
		return
	}
	n.obj[n.key] = v
}

// eval selects the nodes of path in res.
func eval(shapes *fhir.Shapes, res map[string]any, p fhirPath) ([]node, error) {
	cur := []node{{def: p.root, idx: -1}}
	for _, st := range p.steps {
		var next []node
		switch st.kind {
		case stepName:
			for _, n := range cur {
				m, ok := n.value(res).(map[string]any)
				if !ok {
					continue
				}
				sh, known, err := shapes.Element(n.def, st.name)
				if err != nil {
					return nil, err
				}
				def := ""
				if known {
					def = sh.Def
				}
				switch v := m[st.name].(type) {
				case nil:
				case []any:
					for i := range v {
						next = append(next, node{obj: m, key: st.name, idx: i, def: def})
					}
				default:
					next = append(next, node{obj: m, key: st.name, idx: -1, def: def})
				}
			}
		case stepIndex:
			if st.index < len(cur) {
				next = []node{cur[st.index]}
			}
		case stepWhere:
			for _, n := range cur {
				m, ok := n.value(res).(map[string]any)
				if !ok {
					continue
				}
				if s, ok := m[st.name].(string); ok && s == st.value {
					next = append(next, n)
				}
			}
		}
		cur = next
	}
	return cur, nil
}

// patchOp is one parsed operation of a FHIRPath Patch.
type patchOp struct {
	typ         string
	path        fhirPath
	name        string
	value       any
	hasValue    bool
	index       int
	source      int
	destination int
}

// FHIRPathPatch is a parsed FHIRPath Patch; it implements [Patcher].
type FHIRPathPatch struct {
	ops    []patchOp
	shapes *fhir.Shapes
}

var _ Patcher = (*FHIRPathPatch)(nil)

// ParseFHIRPathPatch reads a FHIRPath Patch from a Parameters resource.
// Its errors never quote the body.
func (s *Service) ParseFHIRPathPatch(res fhir.Resource) (*FHIRPathPatch, error) {
	return parseFHIRPathPatch(s.shapes, res)
}

func parseFHIRPathPatch(shapes *fhir.Shapes, res fhir.Resource) (*FHIRPathPatch, error) {
	if res.Type() != "Parameters" {
		return nil, invalid("a FHIRPath Patch is a Parameters resource")
	}
	params, ok := res["parameter"].([]any)
	if !ok || len(params) == 0 {
		return nil, invalid("FHIRPath Patch: the Parameters has no operation")
	}
	if len(params) > maxPatchOps {
		return nil, fail(ErrInvalid, "too-costly", fmt.Sprintf("FHIRPath Patch: more than %d operations", maxPatchOps))
	}
	out := &FHIRPathPatch{shapes: shapes}
	for i, raw := range params {
		op, err := parseOp(i, raw)
		if err != nil {
			return nil, err
		}
		out.ops = append(out.ops, op)
	}
	return out, nil
}

func opError(i int, typ, msg string) *Error {
	if typ == "" {
		return invalid(fmt.Sprintf("FHIRPath Patch: operation %d: %s", i, msg))
	}
	return invalid(fmt.Sprintf("FHIRPath Patch: operation %d (%s): %s", i, typ, msg))
}

func parseOp(i int, raw any) (patchOp, error) {
	p, ok := raw.(map[string]any)
	if !ok || p["name"] != "operation" {
		return patchOp{}, opError(i, "", `every parameter must be named "operation"`)
	}
	parts, ok := p["part"].([]any)
	if !ok {
		return patchOp{}, opError(i, "", "an operation needs parts")
	}
	var op patchOp
	seen := map[string]bool{}
	var pathText string
	var index, source, dest *int
	for _, rp := range parts {
		part, ok := rp.(map[string]any)
		if !ok {
			return patchOp{}, opError(i, "", "an operation part must be an object")
		}
		name, _ := part["name"].(string)
		if seen[name] {
			return patchOp{}, opError(i, "", "a part is repeated")
		}
		seen[name] = true
		switch name {
		case "type":
			op.typ, _ = part["valueCode"].(string)
		case "path":
			pathText, _ = part["valueString"].(string)
		case "name":
			op.name, _ = part["valueString"].(string)
		case "value":
			v, err := partValue(part, 0)
			if err != nil {
				return patchOp{}, opError(i, "", err.Error())
			}
			op.value, op.hasValue = v, true
		case "index", "source", "destination":
			n, ok := intValue(part["valueInteger"])
			if !ok {
				return patchOp{}, opError(i, "", "index, source and destination must be valueInteger, 0 or more")
			}
			switch name {
			case "index":
				index = &n
			case "source":
				source = &n
			default:
				dest = &n
			}
		default:
			return patchOp{}, opError(i, "", "an operation's parts are type, path, name, value, index, source and destination")
		}
	}
	need := func(ok bool, what string) error {
		if !ok {
			return opError(i, op.typ, what)
		}
		return nil
	}
	var errs []error
	switch op.typ {
	case "add":
		errs = append(errs, need(op.name != "", "add needs a name"), need(op.hasValue, "add needs a value"))
	case "insert":
		errs = append(errs, need(index != nil, "insert needs an index"), need(op.hasValue, "insert needs a value"))
	case "delete":
	case "replace":
		errs = append(errs, need(op.hasValue, "replace needs a value"))
	case "move":
		errs = append(errs, need(source != nil && dest != nil, "move needs a source and a destination"))
	default:
		return patchOp{}, opError(i, "", "the type must be add, insert, delete, replace or move")
	}
	for _, err := range errs {
		if err != nil {
			return patchOp{}, err
		}
	}
	if op.name != "" && !validName(op.name) {
		return patchOp{}, opError(i, op.typ, "the name is not an element name")
	}
	path, err := parseFHIRPath(pathText)
	if err != nil {
		e := AsError(err)
		e.Issues[0].Diagnostic = fmt.Sprintf("operation %d (%s): %s", i, op.typ, e.Issues[0].Diagnostic)
		return patchOp{}, e
	}
	op.path = path
	if index != nil {
		op.index = *index
	}
	if source != nil {
		op.source, op.destination = *source, *dest
	}
	return op, nil
}

func validName(s string) bool {
	p := &pathParser{s: s}
	_, ok := p.ident()
	return ok && p.i == len(s)
}

func intValue(v any) (int, bool) {
	switch n := v.(type) {
	case interface{ Int64() (int64, error) }: // json.Number
		i, err := n.Int64()
		return int(i), err == nil && i >= 0 && i <= 1<<20
	case float64:
		return int(n), n >= 0 && n <= 1<<20 && n == float64(int(n))
	}
	return 0, false
}

// partValue is the value of a "value" part: its value[x], or an element
// built from its own parts (each a name and a value[x] or parts).
func partValue(part map[string]any, depth int) (any, error) {
	if depth > maxPatchValueIn {
		return nil, fmt.Errorf("a value is nested more than %d levels", maxPatchValueIn)
	}
	var val any
	found := 0
	for k, v := range part {
		if strings.HasPrefix(k, "value") && len(k) > len("value") {
			val = v
			found++
		}
	}
	sub, hasParts := part["part"].([]any)
	switch {
	case found > 1:
		return nil, fmt.Errorf("a value part has more than one value[x]")
	case found == 1 && hasParts:
		return nil, fmt.Errorf("a value part has both a value[x] and parts")
	case found == 1:
		return cloneJSON(val), nil
	case !hasParts:
		return nil, fmt.Errorf("a value part needs a value[x] or parts")
	}
	obj := map[string]any{}
	for _, rs := range sub {
		s, ok := rs.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("a value's part must be an object")
		}
		name, _ := s["name"].(string)
		if !validName(name) {
			return nil, fmt.Errorf("a value's part needs an element name")
		}
		v, err := partValue(s, depth+1)
		if err != nil {
			return nil, err
		}
		switch prev := obj[name].(type) {
		case nil:
			obj[name] = v
		case []any:
			obj[name] = append(prev, v)
		default:
			obj[name] = []any{prev, v}
		}
	}
	return obj, nil
}

// Apply applies the operations in order to current (a resource's JSON)
// and returns the result.
func (p *FHIRPathPatch) Apply(current []byte) ([]byte, error) {
	res, err := fhir.Decode(strings.NewReader(string(current)), fhir.Limits{MaxBytes: int64(len(current)) + 1})
	if err != nil {
		return nil, fmt.Errorf("reading the current version: %w", err)
	}
	for i, op := range p.ops {
		if op.path.root != res.Type() {
			return nil, opError(i, op.typ, "the path must start with the resource's type")
		}
		if err := p.apply(i, res, op); err != nil {
			return nil, err
		}
	}
	return res.Marshal()
}

func (p *FHIRPathPatch) apply(i int, res fhir.Resource, op patchOp) error {
	root := map[string]any(res)
	unprocessable := func(msg string) *Error {
		return fail(ErrUnprocessable, "processing", fmt.Sprintf("FHIRPath Patch: operation %d (%s): %s", i, op.typ, msg))
	}
	switch op.typ {
	case "add":
		n, err := p.one(root, op.path, unprocessable)
		if err != nil {
			return err
		}
		m, ok := n.value(root).(map[string]any)
		if !ok {
			return unprocessable("the path does not select an element that can have children")
		}
		sh, known, err := p.shapes.Element(n.def, op.name)
		if err != nil {
			return err
		}
		if !known {
			return unprocessable("the name is not an element of the selected element's type")
		}
		if sh.Repeats {
			a, _ := m[op.name].([]any)
			m[op.name] = append(a, op.value)
			return nil
		}
		if _, present := m[op.name]; present {
			return unprocessable("the element already has a value; use replace")
		}
		m[op.name] = op.value
	case "insert", "move":
		obj, key, err := p.list(root, op.path, unprocessable)
		if err != nil {
			return err
		}
		a, _ := obj[key].([]any)
		if op.typ == "insert" {
			if op.index > len(a) {
				return unprocessable("the index is beyond the end of the list")
			}
			obj[key] = slices.Insert(a, op.index, op.value)
			return nil
		}
		if op.source >= len(a) || op.destination >= len(a) {
			return unprocessable("the source or destination is beyond the end of the list")
		}
		v := a[op.source]
		a = slices.Delete(a, op.source, op.source+1)
		obj[key] = slices.Insert(a, op.destination, v)
	case "delete":
		ns, err := eval(p.shapes, root, op.path)
		if err != nil {
			return err
		}
		switch {
		case len(ns) == 0:
			return nil // nothing to delete (fhirpatch: not an error)
		case len(ns) > 1:
			return unprocessable("the path selects more than one element")
		case ns[0].obj == nil:
			return unprocessable("the resource itself cannot be deleted by a patch")
		}
		n := ns[0]
		if n.idx < 0 {
			delete(n.obj, n.key)
			return nil
		}
		a := slices.Delete(n.obj[n.key].([]any), n.idx, n.idx+1)
		if len(a) == 0 {
			delete(n.obj, n.key)
		} else {
			n.obj[n.key] = a
		}
	case "replace":
		n, err := p.one(root, op.path, unprocessable)
		if err != nil {
			return err
		}
		if n.obj == nil {
			return unprocessable("the resource itself cannot be replaced by a patch; use update")
		}
		n.set(root, op.value)
	}
	return nil
}

// one selects exactly one node.
func (p *FHIRPathPatch) one(root map[string]any, path fhirPath, fail func(string) *Error) (node, error) {
	ns, err := eval(p.shapes, root, path)
	if err != nil {
		return node{}, err
	}
	switch len(ns) {
	case 0:
		return node{}, fail("the path selects no element")
	case 1:
		return ns[0], nil
	}
	return node{}, fail("the path selects more than one element")
}

// list resolves the path of insert and move: a repeating element, named
// by the last step, of exactly one parent.
func (p *FHIRPathPatch) list(root map[string]any, path fhirPath, fail func(string) *Error) (map[string]any, string, error) {
	if len(path.steps) == 0 || path.steps[len(path.steps)-1].kind != stepName {
		return nil, "", fail("the path must end with the name of a repeating element")
	}
	last := path.steps[len(path.steps)-1]
	parent, err := p.one(root, fhirPath{root: path.root, steps: path.steps[:len(path.steps)-1]}, fail)
	if err != nil {
		return nil, "", err
	}
	m, ok := parent.value(root).(map[string]any)
	if !ok {
		return nil, "", fail("the path does not select a list")
	}
	sh, known, err := p.shapes.Element(parent.def, last.name)
	if err != nil {
		return nil, "", err
	}
	if !known || !sh.Repeats {
		return nil, "", fail("the path does not select a repeating element")
	}
	if _, isList := m[last.name].([]any); !isList && m[last.name] != nil {
		return nil, "", fail("the path does not select a list")
	}
	return m, last.name, nil
}
