package terminology

import (
	"encoding/json"
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// MaxParams bounds the parameters of one operation request.
const MaxParams = 100

// Params is the input of an operation: named values from the query
// string of a GET or from a Parameters resource POSTed. The zero value
// is empty. Not safe for concurrent mutation.
type Params struct {
	names  []string
	values map[string][]Value
}

// Value is one parameter value: a primitive as a string (Str, with the
// JSON key it came under, such as "valueCode", or "" from a query), or
// a complex value or resource (Obj).
type Value struct {
	Key string
	Str string
	Obj map[string]any
}

// FromQuery reads operation parameters from a query string.
func FromQuery(q url.Values) (*Params, error) {
	p := &Params{values: map[string][]Value{}}
	for name, vs := range q {
		for _, v := range vs {
			if err := p.add(name, Value{Str: v}); err != nil {
				return nil, err
			}
		}
	}
	slices.Sort(p.names)
	return p, nil
}

// FromParameters reads operation parameters from a decoded Parameters
// resource (ErrInvalid if it is not one, a parameter has no name or
// more than one value, or it has parts, which no input here takes).
func FromParameters(res map[string]any) (*Params, error) {
	if t, _ := res["resourceType"].(string); t != "Parameters" {
		return nil, fail(ErrInvalid, "the body must be a Parameters resource")
	}
	p := &Params{values: map[string][]Value{}}
	raw, ok := res["parameter"]
	if !ok {
		return p, nil
	}
	list, ok := raw.([]any)
	if !ok {
		return nil, fail(ErrInvalid, "Parameters.parameter must be an array")
	}
	for i, e := range list {
		m, ok := e.(map[string]any)
		if !ok {
			return nil, fail(ErrInvalid, fmt.Sprintf("Parameters.parameter[%d] must be an object", i))
		}
		name, _ := m["name"].(string)
		if name == "" {
			return nil, fail(ErrInvalid, fmt.Sprintf("Parameters.parameter[%d] has no name", i))
		}
		if _, ok := m["part"]; ok {
			return nil, fail(ErrInvalid, fmt.Sprintf("Parameters.parameter[%d]: parts are not accepted by this operation", i))
		}
		var v Value
		n := 0
		for k, x := range m {
			if k != "resource" && (!strings.HasPrefix(k, "value") || len(k) == 5) {
				continue
			}
			n++
			v.Key = k
			switch x := x.(type) {
			case string:
				v.Str = x
			case bool:
				v.Str = strconv.FormatBool(x)
			case json.Number:
				v.Str = x.String()
			case float64:
				v.Str = strconv.FormatFloat(x, 'f', -1, 64)
			case map[string]any:
				v.Obj = x
			default:
				return nil, fail(ErrInvalid, fmt.Sprintf("Parameters.parameter[%d] has a value of an unexpected kind", i))
			}
		}
		if n != 1 {
			return nil, fail(ErrInvalid, fmt.Sprintf("Parameters.parameter[%d] must have exactly one value[x] or resource", i))
		}
		if err := p.add(name, v); err != nil {
			return nil, err
		}
	}
	return p, nil
}

func (p *Params) add(name string, v Value) error {
	if p.Len() >= MaxParams {
		return fail(ErrTooCostly, fmt.Sprintf("more than %d parameters", MaxParams))
	}
	if _, ok := p.values[name]; !ok {
		p.names = append(p.names, name)
	}
	p.values[name] = append(p.values[name], v)
	return nil
}

// Len is the number of values.
func (p *Params) Len() int {
	n := 0
	for _, vs := range p.values {
		n += len(vs)
	}
	return n
}

// Only fails with ErrInvalid naming the first parameter not in allowed
// (its name only if it looks like a parameter name).
func (p *Params) Only(allowed ...string) error {
	for _, n := range p.names {
		if !slices.Contains(allowed, n) {
			return fail(ErrInvalid, "unknown parameter "+SafeName(n)+" (this operation takes "+strings.Join(allowed, ", ")+")")
		}
	}
	return nil
}

var nameRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_:.-]{0,63}$`)

// SafeName is name if it looks like a parameter name, else a
// placeholder: a value typed where a name was expected is not echoed.
func SafeName(name string) string {
	if nameRE.MatchString(name) {
		return strconv.Quote(name)
	}
	return "(a parameter with an invalid name)"
}

// All returns every value of name.
func (p *Params) All(name string) []Value { return p.values[name] }

// String returns the single primitive value of name ("" and no error if
// absent; ErrInvalid if repeated or complex).
func (p *Params) String(name string) (string, error) {
	vs := p.values[name]
	switch {
	case len(vs) == 0:
		return "", nil
	case len(vs) > 1:
		return "", fail(ErrInvalid, "parameter "+SafeName(name)+" is repeated")
	case vs[0].Obj != nil:
		return "", fail(ErrInvalid, "parameter "+SafeName(name)+" must be a primitive value")
	}
	return vs[0].Str, nil
}

// Strings returns every primitive value of name.
func (p *Params) Strings(name string) ([]string, error) {
	var out []string
	for _, v := range p.values[name] {
		if v.Obj != nil {
			return nil, fail(ErrInvalid, "parameter "+SafeName(name)+" must be a primitive value")
		}
		out = append(out, v.Str)
	}
	return out, nil
}

// Int returns the single non-negative integer value of name (def if
// absent).
func (p *Params) Int(name string, def int) (int, error) {
	s, err := p.String(name)
	if err != nil || s == "" {
		return def, err
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 {
		return 0, fail(ErrInvalid, "parameter "+SafeName(name)+" must be a non-negative integer")
	}
	return n, nil
}

// Object returns the single complex value (or resource) of name, nil if
// absent.
func (p *Params) Object(name string) (map[string]any, error) {
	vs := p.values[name]
	switch {
	case len(vs) == 0:
		return nil, nil
	case len(vs) > 1:
		return nil, fail(ErrInvalid, "parameter "+SafeName(name)+" is repeated")
	case vs[0].Obj == nil:
		return nil, fail(ErrInvalid, "parameter "+SafeName(name)+" must be a complex value or resource")
	}
	return vs[0].Obj, nil
}

// CodingOf reads a Coding object (system, version, code, display).
func CodingOf(m map[string]any) Coding {
	str := func(k string) string { s, _ := m[k].(string); return s }
	return Coding{System: str("system"), Version: str("version"), Code: str("code"), Display: str("display")}
}

// Codings reads the code to check from code/system/version/display, a
// coding, or a codeableConcept (its codings; at most MaxParams). Exactly
// one of the three forms must be given. systemKey names the system
// parameter ("system", or "url" for CodeSystem/$validate-code at type
// level, where url is the system).
func (p *Params) Codings(systemKey, versionKey string) ([]Coding, error) {
	code, err := p.String("code")
	if err != nil {
		return nil, err
	}
	coding, err := p.Object("coding")
	if err != nil {
		return nil, err
	}
	cc, err := p.Object("codeableConcept")
	if err != nil {
		return nil, err
	}
	forms := 0
	for _, b := range []bool{code != "", coding != nil, cc != nil} {
		if b {
			forms++
		}
	}
	if forms != 1 {
		return nil, fail(ErrInvalid, "give exactly one of code, coding and codeableConcept")
	}
	switch {
	case code != "":
		c := Coding{Code: code}
		if c.System, err = p.String(systemKey); err != nil {
			return nil, err
		}
		if versionKey != "" {
			if c.Version, err = p.String(versionKey); err != nil {
				return nil, err
			}
		}
		if c.Display, err = p.String("display"); err != nil {
			return nil, err
		}
		return []Coding{c}, nil
	case coding != nil:
		return []Coding{CodingOf(coding)}, nil
	}
	list, _ := cc["coding"].([]any)
	if len(list) == 0 || len(list) > MaxParams {
		return nil, fail(ErrInvalid, fmt.Sprintf("codeableConcept must hold between 1 and %d codings", MaxParams))
	}
	out := make([]Coding, 0, len(list))
	for _, e := range list {
		m, ok := e.(map[string]any)
		if !ok {
			return nil, fail(ErrInvalid, "codeableConcept.coding must hold objects")
		}
		out = append(out, CodingOf(m))
	}
	return out, nil
}

// Merge adds every value of q to p (a POST's query string beside its
// Parameters body), within MaxParams.
func (p *Params) Merge(q *Params) error {
	for _, n := range q.names {
		for _, v := range q.values[n] {
			if err := p.add(n, v); err != nil {
				return err
			}
		}
	}
	return nil
}
