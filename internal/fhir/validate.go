package fhir

import (
	"bytes"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"sync"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/santhosh-tekuri/jsonschema/v6/kind"

	"github.com/phivault/phivault/internal/fhir/spec"
)

// schemaURL is the schema's own id; definitions are compiled as
// schemaURL + "#/definitions/<Type>".
const schemaURL = "http://hl7.org/fhir/json-schema/4.0"

// MaxIssues caps the issues one [ValidationError] reports: a hostile body
// can fail thousands of rules, and the client needs only the first few.
const MaxIssues = 100

// Validator checks resources against the R4 JSON schema and the required
// elements (min >= 1) of the R4 StructureDefinitions.
//
// The schema is compiled on first use (about 1.2 s, once per Validator;
// create one per process and share it). Each resource is validated against
// its own definition, #/definitions/<Type> (about 18 µs for an
// Observation), never the root oneOf over every type (about 40x slower).
// The required-element check then walks the resource once (about 2 µs for
// an Observation).
// A Validator is safe for concurrent use; its zero value is not usable,
// use [NewValidator].
type Validator struct {
	once     sync.Once
	err      error
	schemas  map[string]*jsonschema.Schema // read-only after once
	patterns map[string]string             // regex -> primitive type name; read-only after once
	required *reqTable                     // read-only after once
}

// NewValidator returns a Validator that compiles the embedded schema
// lazily, on the first call to Validate or Compile.
func NewValidator() *Validator { return &Validator{} }

// Compile compiles the schema now rather than on first use, so start-up
// pays the cost and reports a broken embedded schema early. It is
// idempotent and safe for concurrent use.
func (v *Validator) Compile() error {
	v.once.Do(func() {
		v.schemas, v.patterns, v.err = compileR4()
		if v.err == nil {
			v.required, v.err = compileRequired()
		}
	})
	return v.err
}

func compileR4() (map[string]*jsonschema.Schema, map[string]string, error) {
	raw, err := spec.Schema()
	if err != nil {
		return nil, nil, err
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		return nil, nil, fmt.Errorf("parsing embedded FHIR schema: %w", err)
	}
	// The schema inlines primitive patterns into each property, so a
	// pattern failure does not say which primitive it was: map each
	// primitive's regex back to its name (dateTime, id, uri, ...).
	patterns := map[string]string{}
	defs, ok := doc.(map[string]any)["definitions"].(map[string]any)
	if !ok {
		return nil, nil, fmt.Errorf("parsing embedded FHIR schema: no definitions")
	}
	for name, d := range defs {
		if p, ok := d.(map[string]any)["pattern"].(string); ok && elementName.MatchString(name) {
			patterns[p] = name
		}
	}
	addCanonicalElements(defs)
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft6)
	if err := c.AddResource(schemaURL, doc); err != nil {
		return nil, nil, fmt.Errorf("loading embedded FHIR schema: %w", err)
	}
	out := make(map[string]*jsonschema.Schema, len(r4Types))
	for name := range r4Types {
		sch, err := c.Compile(schemaURL + "#/definitions/" + name)
		if err != nil {
			return nil, nil, fmt.Errorf("compiling FHIR schema for %s: %w", name, err)
		}
		out[name] = sch
	}
	return out, patterns, nil
}

// addCanonicalElements fixes a defect of the official R4 JSON schema: it
// defines the _element (id and extensions) of every primitive property
// except those of type canonical, so valid R4 JSON such as
// StructureDefinition._baseDefinition or Meta._profile, which 30 of the
// official R4 examples use, fails as an unknown element. For each
// canonical property (single or array) without its _property, it adds one
// referring to Element, as the schema does for every other primitive.
// The vendored file itself stays unchanged.
func addCanonicalElements(defs map[string]any) {
	const canonical, element = "#/definitions/canonical", "#/definitions/Element"
	for _, d := range defs {
		props, _ := d.(map[string]any)["properties"].(map[string]any)
		for name, p := range props {
			p, _ := p.(map[string]any)
			if _, ok := props["_"+name]; ok || p == nil {
				continue
			}
			if p["$ref"] == canonical {
				props["_"+name] = map[string]any{"$ref": element}
				continue
			}
			if items, _ := p["items"].(map[string]any); p["type"] == "array" && items["$ref"] == canonical {
				props["_"+name] = map[string]any{"type": "array", "items": map[string]any{"$ref": element}}
			}
		}
	}
}

// Issue is one schema violation or missing required element. Path is a
// FHIRPath-like location such as "Observation.code.coding[0].system"; Message says what is wrong. Neither
// contains a value from the resource.
type Issue struct {
	Path    string
	Message string
}

// ValidationError lists why a resource failed validation. It wraps
// [ErrInvalid] (and [ErrUnknownType] when the failure is a type name).
type ValidationError struct {
	Issues []Issue
	// unknownType records that an issue is a non-R4 resourceType.
	unknownType bool
}

func (e *ValidationError) Error() string {
	var sb strings.Builder
	sb.WriteString("fhir: invalid resource")
	for i, is := range e.Issues {
		if i == 3 {
			fmt.Fprintf(&sb, "; and %d more", len(e.Issues)-3)
			break
		}
		sb.WriteString("; ")
		sb.WriteString(is.Path)
		sb.WriteString(": ")
		sb.WriteString(is.Message)
	}
	return sb.String()
}

// Unwrap returns ErrInvalid, plus ErrUnknownType when applicable.
func (e *ValidationError) Unwrap() []error {
	if e.unknownType {
		return []error{ErrInvalid, ErrUnknownType}
	}
	return []error{ErrInvalid}
}

// Validate checks res against the schema definition of its resourceType,
// then checks that every element the R4 StructureDefinitions require
// (min >= 1) is present, in res, its backbone elements and data types,
// its extensions, and its contained and bundled resources. A missing one
// is an [Issue] such as {Path: "Observation.component[1].code", Message:
// "required element is missing"}; a required choice element is reported
// as, for instance, "Extension.value[x]".
//
// It returns nil, a *[ValidationError] (wrapping [ErrInvalid]), an error
// wrapping [ErrUnknownType] when res's type, or that of a contained or
// bundled resource, is not an R4 type (the vendored schema would accept
// Medplum types there), or the compile error of the embedded schema.
// Validate does not modify res.
//
// Nested resources (Bundle entries, contained resources) are checked
// through the schema's ResourceList oneOf, about 0.7 ms each: to accept a
// large transaction quickly, validate each entry resource on its own.
func (v *Validator) Validate(res Resource) error {
	if err := v.Compile(); err != nil {
		return err
	}
	rt := res.Type()
	sch, ok := v.schemas[rt]
	if !ok {
		return fmt.Errorf("validating resource: resourceType is not an R4 resource type: %w", ErrUnknownType)
	}
	ve := &ValidationError{}
	err := sch.Validate(map[string]any(res))
	if err != nil {
		var se *jsonschema.ValidationError
		if !errors.As(err, &se) {
			return fmt.Errorf("validating %s: %w", rt, ErrInvalid)
		}
		v.collect(se, rt, ve)
	}
	// Also reports nested non-R4 resource types (setting unknownType even
	// when the schema issues already reached MaxIssues).
	v.required.checkRequired(res, rt, ve)
	if len(ve.Issues) == 0 {
		return nil
	}
	return ve
}

func (ve *ValidationError) add(path, msg string) {
	if len(ve.Issues) >= MaxIssues {
		return
	}
	for _, is := range ve.Issues {
		if is.Path == path && is.Message == msg {
			return
		}
	}
	ve.Issues = append(ve.Issues, Issue{Path: path, Message: msg})
}

// collect flattens the library's error tree into leaf issues.
func (v *Validator) collect(e *jsonschema.ValidationError, rt string, ve *ValidationError) {
	switch e.ErrorKind.(type) {
	case *kind.OneOf, *kind.AnyOf:
		// Only ResourceList uses oneOf in the FHIR schema: the branch
		// errors (one per resource type) are noise. Say what failed.
		ve.add(location(rt, e.InstanceLocation), "does not match any allowed resource type")
		return
	}
	if len(e.Causes) > 0 {
		for _, c := range e.Causes {
			v.collect(c, rt, ve)
		}
		return
	}
	if k, ok := e.ErrorKind.(*kind.Required); ok {
		// Reported as the required-element check does, one issue per
		// element, so that ve.add drops the check's duplicate.
		at := location(rt, e.InstanceLocation)
		for _, m := range k.Missing {
			ve.add(at+"."+safeName(m), missingMessage)
		}
		return
	}
	ve.add(location(rt, e.InstanceLocation), v.message(e))
}

// location renders an instance location as rt.a.b[0].c. Member names that
// are not plain identifiers (so possibly data) are replaced by "?".
func location(rt string, loc []string) string {
	var sb strings.Builder
	sb.WriteString(rt)
	for _, seg := range loc {
		if _, err := strconv.Atoi(seg); err == nil {
			sb.WriteString("[" + seg + "]")
			continue
		}
		sb.WriteString("." + safeName(seg))
	}
	return sb.String()
}

// elementName matches what can be a FHIR element name (with the leading
// underscore of primitive extensions). Anything else is shown as "?".
var elementName = regexp.MustCompile(`^_?[A-Za-z][A-Za-z0-9]{0,63}$`)

func safeName(s string) string {
	if elementName.MatchString(s) {
		return s
	}
	return "?"
}

// message describes a leaf error without its value: the library's own
// strings quote the offending value, which may be PHI.
func (v *Validator) message(e *jsonschema.ValidationError) string {
	switch k := e.ErrorKind.(type) {
	case *kind.Type:
		return fmt.Sprintf("wrong JSON type %s, want %s", k.Got, strings.Join(k.Want, " or "))
	case *kind.AdditionalProperties:
		names := make([]string, 0, len(k.Properties))
		for _, p := range k.Properties {
			names = append(names, safeName(p))
		}
		return "unknown element " + strings.Join(names, ", ")
	case *kind.Enum:
		return "value is not one of the allowed codes"
	case *kind.Const:
		if w, ok := k.Want.(string); ok && elementName.MatchString(w) {
			return "value must be " + w // schema text, e.g. the resourceType
		}
		return "value is not the required constant"
	case *kind.Pattern:
		if t, ok := v.patterns[k.Want]; ok {
			return "value is not a valid " + t
		}
		return "value has an invalid format"
	case *kind.Format:
		return "value is not a valid " + k.Want
	case *kind.MinItems:
		return "too few items"
	case *kind.MaxItems:
		return "too many items"
	case *kind.MinLength:
		return "value is too short"
	case *kind.MaxLength:
		return "value is too long"
	case *kind.Minimum, *kind.ExclusiveMinimum:
		return "value is too small"
	case *kind.Maximum, *kind.ExclusiveMaximum:
		return "value is too large"
	case *kind.MultipleOf:
		return "value is not an allowed multiple"
	case *kind.UniqueItems:
		return "items must be unique"
	case *kind.FalseSchema:
		return "element is not allowed"
	case *kind.InvalidJsonValue:
		return "value is not JSON"
	}
	return "does not satisfy the schema"
}
