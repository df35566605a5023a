package search

import (
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/phivault/phivault/internal/fhir"
	"github.com/phivault/phivault/internal/fhir/spec"
)

// ParamType is the FHIR search parameter type of a supported parameter.
type ParamType int

const (
	Token ParamType = iota + 1
	String
	Reference
	Date
	Number    // number.go
	Quantity  // quantity.go
	URI       // uri.go
	Composite // composite.go
)

func (t ParamType) String() string {
	switch t {
	case Token:
		return "token"
	case String:
		return "string"
	case Reference:
		return "reference"
	case Date:
		return "date"
	case Number:
		return "number"
	case Quantity:
		return "quantity"
	case URI:
		return "uri"
	case Composite:
		return "composite"
	}
	return "unknown"
}

// supported is THE table of search parameters phivault implements, per
// resource type. Every entry must exist in the vendored R4 SearchParameter
// bundle for that type (New fails otherwise); everything else is an
// unknown parameter. Identifying parameters (see [Param.Identifying]) are
// marked with a trailing "!".
var supported = map[string][]string{
	"Patient":              {"identifier!", "name!", "family!", "given!", "birthdate!", "gender", "telecom!"},
	"Practitioner":         {"identifier!", "name!"},
	"PractitionerRole":     {"identifier", "practitioner", "organization"}, // R4 defines no name here
	"Organization":         {"identifier", "name"},
	"Location":             {"identifier", "name"},
	"Observation":          {"patient", "subject", "code", "date", "category", "status", "encounter"},
	"Condition":            {"patient", "subject", "code", "category", "encounter"},
	"Encounter":            {"patient", "subject", "date", "status", "participant"},
	"Immunization":         {"patient", "date", "status"},
	"DiagnosticReport":     {"patient", "subject", "code", "date", "category", "status", "encounter"},
	"DocumentReference":    {"patient", "subject", "date", "category", "status", "encounter"},
	"MedicationRequest":    {"patient", "subject", "code", "date", "category", "status", "encounter"},
	"AllergyIntolerance":   {"patient", "code", "date", "category"},
	"Procedure":            {"patient", "subject", "code", "date", "category", "status", "encounter"},
	"Claim":                {"patient", "created", "status", "encounter"},
	"ExplanationOfBenefit": {"patient", "created", "status", "encounter"},
	"CareTeam":             {"patient", "subject", "date", "category", "status", "encounter", "participant"},

	// Conformance and knowledge resources (uri.go): canonical url, version,
	// name, status.
	"CodeSystem":          {"url", "system", "version", "name", "status", "code"},
	"ValueSet":            {"url", "version", "name", "status", "code", "reference"},
	"ConceptMap":          {"url", "version", "name", "status"},
	"StructureDefinition": {"url", "version", "name", "status", "type"},
	"SearchParameter":     {"url", "version", "name", "status", "code", "base"},
	"Questionnaire":       {"url", "version", "name", "status", "code", "identifier"},
	"Library":             {"url", "version", "name", "status"},
	"Measure":             {"url", "version", "name", "status"},
	"PlanDefinition":      {"url", "version", "name", "status"},
	"ActivityDefinition":  {"url", "version", "name", "status"},

	"QuestionnaireResponse": {"patient", "subject", "status", "authored"},
	"RiskAssessment":        {"patient", "subject", "probability", "date"},
}

// observationParams are Observation's parameters beyond the common
// clinical ones: identifier, value and component parameters (number.go,
// quantity.go) and the composites pairing a code with a value in one
// repetition (composite.go).
var observationParams = []string{
	"identifier", "value-quantity", "value-concept", "component-code", "component-value-quantity",
	"component-value-concept", "code-value-quantity", "code-value-concept",
	"component-code-value-quantity", "component-code-value-concept", "combo-code-value-quantity",
}

// Param is one supported search parameter of one resource type.
// Params are immutable and shared; compare them by pointer or Code.
type Param struct {
	Code       string    // e.g. "birthdate"
	Base       string    // resource type, e.g. "Patient"
	Type       ParamType // token, string, reference or date
	Expression string    // the R4 FHIRPath expression
	Targets    []string  // reference target types (reference params)

	identifying bool
	expr        expr
	components  []component // composite parameters: in definition order
	textIndexed bool        // token: display/text terms for :text (tokenmods.go)

	// Composites answered from other parameters' rows, with no rows of
	// their own (composite.go, ADR 0042): pair for a composite over the
	// resource itself, union for a combo-* composite.
	pair  [2]*Param
	union []*Param
}

// Identifying reports whether the parameter's values identify a person
// (Patient identifier, name, family, given, birthdate, telecom;
// Practitioner identifier, name). All token, string and reference terms
// are blind-indexed (hashed) by the caller anyway; an identifying date
// is, in addition, never indexed as a plaintext range (see [IndexTerms]).
func (p *Param) Identifying() bool { return p.identifying }

// Registry holds the supported search parameters and the Patient
// compartment, loaded from the vendored R4 definitions. It is immutable
// after [New] and safe for concurrent use.
type Registry struct {
	params      map[string]map[string]*Param // type -> code -> param
	compartment map[string]expr              // type -> union of its compartment params
	now         func() time.Time             // the clock of "ap" (approximately)
}

type searchParamBundle struct {
	Entry []struct {
		Resource struct {
			URL        string   `json:"url"`
			Code       string   `json:"code"`
			Base       []string `json:"base"`
			Type       string   `json:"type"`
			Expression string   `json:"expression"`
			Target     []string `json:"target"`
			Component  []struct {
				Definition string `json:"definition"`
				Expression string `json:"expression"`
			} `json:"component"`
		} `json:"resource"`
	} `json:"entry"`
}

type spDef struct {
	typ, expression string
	target          []string
	components      [][2]string // definition URL, expression
}

// New loads the embedded SearchParameter bundle and Patient compartment
// definition and compiles every expression it needs (a few milliseconds).
// Create one Registry per process and share it.
func New() (*Registry, error) {
	raw, err := spec.SearchParameters()
	if err != nil {
		return nil, err
	}
	var b searchParamBundle
	if err := json.Unmarshal(raw, &b); err != nil {
		return nil, fmt.Errorf("parsing embedded search parameters: %w", err)
	}
	defs := map[[2]string]spDef{}
	types := map[string]string{} // definition URL -> type
	for _, e := range b.Entry {
		var comps [][2]string
		for _, c := range e.Resource.Component {
			comps = append(comps, [2]string{c.Definition, c.Expression})
		}
		for _, base := range e.Resource.Base {
			defs[[2]string{base, e.Resource.Code}] = spDef{e.Resource.Type, e.Resource.Expression, e.Resource.Target, comps}
		}
		types[e.Resource.URL] = e.Resource.Type
	}
	r := &Registry{params: map[string]map[string]*Param{}, compartment: map[string]expr{}, now: time.Now}
	table := map[string][]string{"Observation": observationParams}
	for typ, codes := range supported {
		table[typ] = append(slices.Clone(codes), table[typ]...)
	}
	for typ, codes := range table {
		r.params[typ] = map[string]*Param{}
		for _, c := range codes {
			code, identifying := c, false
			if c[len(c)-1] == '!' {
				code, identifying = c[:len(c)-1], true
			}
			d, ok := defs[[2]string{typ, code}]
			if !ok {
				return nil, fmt.Errorf("loading search parameters: R4 defines no %s:%s", typ, code)
			}
			p := &Param{Code: code, Base: typ, Expression: d.expression, Targets: d.target, identifying: identifying}
			switch d.typ {
			case "token":
				p.Type = Token
			case "string":
				p.Type = String
			case "reference":
				p.Type = Reference
			case "date":
				p.Type = Date
			case "number":
				p.Type = Number
			case "quantity":
				p.Type = Quantity
			case "uri":
				p.Type = URI
			case "composite":
				p.Type = Composite
				if p.components, err = compileComponents(d.components, types); err != nil {
					return nil, fmt.Errorf("loading search parameter %s:%s: %w", typ, code, err)
				}
			default:
				return nil, fmt.Errorf("loading search parameters: %s:%s has unsupported type %s", typ, code, d.typ)
			}
			if p.expr, err = compile(d.expression); err != nil {
				return nil, fmt.Errorf("loading search parameter %s:%s: %w", typ, code, err)
			}
			p.textIndexed = p.Type == Token && textIndexed[code]
			r.params[typ][code] = p
		}
	}
	if err := r.linkDerived(defs); err != nil {
		return nil, err
	}
	if err := r.loadMeta(defs); err != nil {
		return nil, err
	}
	if err := r.loadCompartment(defs); err != nil {
		return nil, err
	}
	return r, nil
}

func (r *Registry) loadCompartment(defs map[[2]string]spDef) error {
	raw, err := spec.PatientCompartment()
	if err != nil {
		return err
	}
	var cd struct {
		Resource []struct {
			Code  string   `json:"code"`
			Param []string `json:"param"`
		} `json:"resource"`
	}
	if err := json.Unmarshal(raw, &cd); err != nil {
		return fmt.Errorf("parsing embedded patient compartment: %w", err)
	}
	for _, res := range cd.Resource {
		if len(res.Param) == 0 || res.Code == "Patient" {
			continue // not in the compartment, or the Patient itself
		}
		var u unionExpr
		for _, code := range res.Param {
			d, ok := defs[[2]string{res.Code, code}]
			if !ok || d.typ != "reference" {
				return fmt.Errorf("loading patient compartment: %s:%s is not an R4 reference parameter", res.Code, code)
			}
			e, err := compile(d.expression)
			if err != nil {
				return fmt.Errorf("loading patient compartment %s:%s: %w", res.Code, code, err)
			}
			u = append(u, e)
		}
		r.compartment[res.Code] = u
	}
	return nil
}

// Lookup returns the supported parameter code of resourceType.
func (r *Registry) Lookup(resourceType, code string) (*Param, bool) {
	p, ok := r.params[resourceType][code]
	return p, ok
}

// Params returns the supported parameters of resourceType sorted by code
// (nil for a type with none), e.g. for a CapabilityStatement.
func (r *Registry) Params(resourceType string) []*Param {
	var out []*Param
	for _, p := range r.params[resourceType] {
		out = append(out, p)
	}
	slices.SortFunc(out, func(a, b *Param) int {
		if a.Code < b.Code {
			return -1
		}
		if a.Code > b.Code {
			return 1
		}
		return 0
	})
	return out
}

// InCompartment reports whether resourceType belongs to the Patient
// compartment (Patient itself included).
func (r *Registry) InCompartment(resourceType string) bool {
	_, ok := r.compartment[resourceType]
	return ok || resourceType == "Patient"
}

// PatientsOf returns the ids of every patient res names, sorted and
// distinct: a Patient's own id; for other types, the patients its
// compartment parameters reference (R4 compartmentdefinition-patient)
// and every other literal reference to a Patient anywhere in it
// (contained resources included) — a resource that names a patient
// holds that patient's information, whatever the element. A Consent
// belongs to its patient alone (the patients its provisions name are
// actors of the patient's decision, not its subjects).
func (r *Registry) PatientsOf(res fhir.Resource) []string {
	rt := res.Type()
	if rt == "Patient" {
		if id := res.ID(); id != "" {
			return []string{id}
		}
		return nil
	}
	set := map[string]bool{}
	if e, in := r.compartment[rt]; in {
		for _, it := range evaluate(e, res) {
			m, isMap := it.v.(map[string]any)
			if !isMap {
				continue
			}
			ref, _ := m["reference"].(string)
			if typ, id, ok := parseReference(ref); ok && typ == "Patient" {
				set[id] = true
			}
		}
	}
	if rt != "Consent" {
		walkReferences(map[string]any(res), 0, func(ref string) {
			if typ, id, ok := parseReference(ref); ok && typ == "Patient" {
				set[id] = true
			}
		})
	}
	out := make([]string, 0, len(set))
	for id := range set {
		out = append(out, id)
	}
	slices.Sort(out)
	return out
}

// UnresolvedPatient reports whether res refers to a patient it does not
// name by a literal reference: a contained Patient, a Reference typed
// "Patient" that has no literal reference (an identifier only), or a
// reference that points at a Patient in another spelling
// (oddPatientReference). Such a resource would hold a patient's
// information without belonging to that patient; the record refuses it.
func UnresolvedPatient(res fhir.Resource) bool {
	if rt := res.Type(); rt == "Patient" {
		return false
	}
	found := false
	var walk func(v any, depth int)
	walk = func(v any, depth int) {
		if found || depth > maxRefDepth {
			return
		}
		switch x := v.(type) {
		case map[string]any:
			if rt, _ := x["resourceType"].(string); rt == "Patient" && depth > 0 {
				found = true
				return
			}
			if t, _ := x["type"].(string); t == "Patient" {
				ref, _ := x["reference"].(string)
				if typ, _, ok := parseReference(ref); !ok || typ != "Patient" {
					found = true
					return
				}
			}
			if ref, ok := x["reference"].(string); ok && oddPatientReference(ref) {
				found = true
				return
			}
			for _, c := range x {
				walk(c, depth+1)
			}
		case []any:
			for _, c := range x {
				walk(c, depth+1)
			}
		}
	}
	walk(map[string]any(res), 0)
	return found
}

// oddPatientRef matches a "Patient/" path segment anywhere in a
// reference, in any case ("patient/x" names no type the server knows,
// and was stored as the organisation's: a Consent so written was never
// its patient's).
var oddPatientRef = regexp.MustCompile(`(?i)(^|/)patient/`)

// oddPatientReference reports whether ref plainly points at a patient
// without being a reference the server resolves: "Patient/x/",
// "/Patient/x", "Patient/x?...", "Patient/x#...", or a urn:uuid or
// urn:oid (a Bundle's fullUrl, which a transaction resolves before the
// resource is stored; outside one it could be a patient's id).
func oddPatientReference(ref string) bool {
	if strings.HasPrefix(ref, "urn:uuid:") || strings.HasPrefix(ref, "urn:oid:") {
		return true
	}
	if !oddPatientRef.MatchString(ref) {
		return false
	}
	typ, _, ok := parseReference(ref)
	return !ok || typ != "Patient"
}

// maxRefDepth bounds the walk of a resource for references (decoding
// already bounds nesting; this is a second guard).
const maxRefDepth = 128

// walkReferences calls fn with the value of every "reference" string
// element in v.
func walkReferences(v any, depth int, fn func(string)) {
	if depth > maxRefDepth {
		return
	}
	switch x := v.(type) {
	case map[string]any:
		for k, c := range x {
			if k == "reference" {
				if s, ok := c.(string); ok {
					fn(s)
					continue
				}
			}
			walkReferences(c, depth+1, fn)
		}
	case []any:
		for _, c := range x {
			walkReferences(c, depth+1, fn)
		}
	}
}

// PatientOf returns the id of the one patient whose compartment res
// belongs to: a Patient's own id; for a compartment type, the single
// distinct Patient referenced through its compartment parameters (R4
// compartmentdefinition-patient). ok is false when res is outside the
// compartment, references no Patient, or references several distinct
// patients: the caller then seals it with the organisation key.
// Only literal relative or absolute references "Patient/<id>" count.
func (r *Registry) PatientOf(res fhir.Resource) (patientID string, ok bool) {
	rt := res.Type()
	if rt == "Patient" {
		id := res.ID()
		return id, id != ""
	}
	e, in := r.compartment[rt]
	if !in {
		return "", false
	}
	for _, it := range evaluate(e, res) {
		m, isMap := it.v.(map[string]any)
		if !isMap {
			continue
		}
		ref, _ := m["reference"].(string)
		typ, id, okRef := parseReference(ref)
		if !okRef || typ != "Patient" {
			continue
		}
		if patientID != "" && patientID != id {
			return "", false
		}
		patientID = id
	}
	return patientID, patientID != ""
}
