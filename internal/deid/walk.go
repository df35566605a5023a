package deid

import (
	"encoding/json"
	"regexp"
	"slices"
	"strings"

	"github.com/phivault/phivault/internal/fhir"
)

// walk de-identifies one top-level resource (and the resources inside
// it). It is the schema-driven, fail-closed walk of the package doc:
// every property is looked up in the R4 JSON schema; what the schema
// does not define, or what has no rule that keeps it, is dropped and
// counted. A walk is used by one goroutine.
type walk struct {
	t      *Transformer
	counts map[string]int
	shift  int    // days to add to every date (date-shift mode)
	drop   string // set when the whole resource must be left out
	over89 bool   // the person of the resource being walked is 90 or older
}

func (w *walk) count(reason string) { w.counts[reason]++ }

// resource returns the de-identified form of in, a resource at nesting
// depth depth (0: the exported resource), or nil and the reason it must
// be dropped.
func (w *walk) resource(in map[string]any, depth int) (map[string]any, string) {
	rt, _ := in["resourceType"].(string)
	if !fhir.IsR4Type(rt) || w.t.schema.defs[rt] == nil {
		return nil, reasonUnknownType
	}
	if depth > maxNesting {
		return nil, reasonTooDeep
	}
	if rt == "Binary" {
		// Binary is opaque bytes (documents, images): nothing in it
		// can be kept element by element.
		return nil, reasonBinaryResource
	}
	if depth == 0 {
		w.shift = w.t.shiftDays(patientKey(rt, in))
	}
	saved := w.over89
	birthElem := birthElement(rt)
	w.over89 = birthElem != "" && w.t.over89(in, birthElem)
	defer func() { w.over89 = saved }()

	out := w.object(rt, in, depth)
	if w.drop != "" {
		return nil, w.drop
	}
	if rt == "Observation" {
		w.ageAnswer(in, out)
	}
	out["resourceType"] = rt
	out["meta"] = w.meta(in["meta"])
	if w.over89 {
		markOver89(out, birthElem)
	}
	return out, ""
}

// object walks the properties of a value of definition def.
func (w *walk) object(def string, in map[string]any, depth int) map[string]any {
	out := map[string]any{}
	keys := make([]string, 0, len(in))
	for k := range in {
		keys = append(keys, k)
	}
	slices.Sort(keys) // deterministic counts and output
	isResource := w.t.schema.resources[def]
	for _, k := range keys {
		v := in[k]
		switch {
		case k == "resourceType" && isResource:
			continue // set by resource
		case strings.HasPrefix(k, "_"):
			// A primitive's id and extensions (birthTime on _birthDate,
			// data-absent reasons): nothing here is needed.
			w.count(reasonPrimitiveExt)
			continue
		case k == "modifierExtension":
			if a, ok := v.([]any); ok && len(a) == 0 {
				continue
			}
			// No modifier extension is understood: leaving it out
			// would change what the element means (FHIR R4 §2.4.1).
			w.drop = reasonModifierExtension
			return out
		case k == "id" && !isResource:
			w.count(reasonElementID)
			continue
		}
		e, ok := w.t.schema.element(def, k)
		if !ok {
			w.count(reasonUnknownElement)
			continue
		}
		if x, handled, keep := w.special(def, k, v, isResource); handled {
			if keep {
				out[k] = x
			}
			continue
		}
		if e.repeats {
			arr, ok := v.([]any)
			if !ok {
				w.count(reasonMalformed)
				continue
			}
			var kept []any
			for _, it := range arr {
				if x, ok := w.value(def, k, e, it, depth); ok {
					kept = append(kept, x)
				}
				if w.drop != "" {
					return out
				}
			}
			if len(kept) > 0 {
				out[k] = kept
			}
			continue
		}
		if x, ok := w.value(def, k, e, v, depth); ok {
			out[k] = x
		}
		if w.drop != "" {
			return out
		}
	}
	return out
}

// value walks one value of element e (property k of def).
func (w *walk) value(def, k string, e element, v any, depth int) (any, bool) {
	switch {
	case e.def == resourceList:
		m, ok := v.(map[string]any)
		if !ok {
			w.count(reasonMalformed)
			return nil, false
		}
		r, reason := w.resource(m, depth+1)
		if r == nil {
			if reason == reasonModifierExtension || reason == reasonTooDeep {
				w.drop = reason // the container means something else without it
			}
			w.count(reason)
			return nil, false
		}
		return r, true
	case e.def != "":
		m, ok := v.(map[string]any)
		if !ok {
			w.count(reasonMalformed)
			return nil, false
		}
		return w.complex(e.def, m, depth)
	}
	return w.primitive(e, v)
}

// complex applies the rules of the datatypes that carry identifiers,
// and walks every other definition property by property.
func (w *walk) complex(def string, m map[string]any, depth int) (any, bool) {
	switch def {
	case "HumanName":
		w.count(reasonName)
		return nil, false
	case "ContactPoint":
		w.count(reasonTelecom)
		return nil, false
	case "Attachment":
		w.count(reasonAttachment)
		return nil, false
	case "Annotation":
		w.count(reasonAnnotation)
		return nil, false
	case "Narrative":
		w.count(reasonNarrative)
		return nil, false
	case "Signature":
		w.count(reasonSignature)
		return nil, false
	case "Meta":
		w.count(reasonMeta) // a Meta that is not a resource's (Extension.valueMeta)
		return nil, false
	case "Extension":
		return w.extension(m, depth)
	}
	out := w.object(def, m, depth)
	switch def {
	case "Coding":
		sys, _ := out["system"].(string)
		code, _ := out["code"].(string)
		if !w.t.terms.standard(sys, code) {
			// A local code system, or a code not of its system's
			// syntax: it may be anything, a phone number included.
			w.count(reasonCodingLocal)
			return nil, false
		}
	case "Quantity", "Age", "Duration", "Count", "Distance":
		w.quantity(m, out)
	case "Observation_Component":
		w.ageAnswer(m, out)
	}
	if len(out) == 0 {
		return nil, false
	}
	return out, true
}

// special handles the properties whose rule depends on where they are.
// handled is false for every other property.
func (w *walk) special(def, k string, v any, isResource bool) (x any, handled, keep bool) {
	if isResource {
		switch k {
		case "id":
			s, ok := v.(string)
			if !ok || !validID(s) {
				w.count(reasonMalformed)
				return nil, true, false
			}
			w.count(reasonResourceID)
			return w.t.pseudoID(s), true, true
		case "meta":
			return nil, true, false // rebuilt by resource
		}
	}
	switch def + "." + k {
	case "Patient.birthDate", "RelatedPerson.birthDate", "Person.birthDate", "Practitioner.birthDate", "FamilyMemberHistory.bornDate":
		if w.over89 {
			w.count(reasonBirth90)
			return nil, true, false
		}
		x, keep = w.date(v, "date")
		return x, true, keep
	case "Location.position":
		w.count(reasonGeolocation)
		return nil, true, false
	case "Bundle_Entry.fullUrl", "Reference.reference":
		s, ok := v.(string)
		if !ok {
			w.count(reasonMalformed)
			return nil, true, false
		}
		p, ok := w.t.pseudoRef(s)
		if !ok {
			w.count(reasonReferenceOther)
			return nil, true, false
		}
		w.count(reasonReference)
		return p, true, true
	case "Reference.display":
		w.count(reasonReferenceDisplay)
		return nil, true, false
	case "Reference.type":
		s, ok := v.(string)
		if ok && fhir.IsR4Type(strings.TrimPrefix(s, coreProfileBase)) {
			return s, true, true
		}
		w.count(reasonURL)
		return nil, true, false
	case "Identifier.value":
		s, ok := v.(string)
		if !ok {
			w.count(reasonMalformed)
			return nil, true, false
		}
		w.count(reasonIdentifierValue)
		return w.t.pseudoIdentifier(s), true, true
	case "Identifier.system":
		s, ok := v.(string)
		if ok && genericIdentifierSystem(s) {
			return s, true, true
		}
		w.count(reasonIdentifierSystem)
		return nil, true, false
	case "Address.line", "Address.city", "Address.district", "Address.text", "Address.period":
		w.count(reasonAddressDetail)
		return nil, true, false
	case "Address.postalCode":
		s, ok := v.(string)
		if !ok {
			w.count(reasonMalformed)
			return nil, true, false
		}
		z, reason := w.t.zip3(s)
		w.count(reason)
		return z, z != "", z != ""
	case "Address.state", "Address.country":
		// The geography Safe Harbor keeps, when it is recognisably a
		// state or a country (geography.go), never free text.
		s, ok := v.(string)
		if !ok {
			w.count(reasonMalformed)
			return nil, true, false
		}
		if (k == "state" && !validState(s)) || (k == "country" && !validCountry(s)) {
			w.count(reasonStateCountry)
			return nil, true, false
		}
		return strings.TrimSpace(s), true, true
	case "Coding.display":
		// Free text: a consumer re-derives it from system and code.
		w.count(reasonDisplay)
		return nil, true, false
	case "Coding.version":
		// A version (a SNOMED CT edition URI, a local release name) is
		// free text to this walk and nothing research needs.
		w.count(reasonCodingVersion)
		return nil, true, false
	case "Coding.code", "Quantity.code", "Age.code", "Duration.code", "Count.code", "Distance.code":
		// Checked with the system in view, against its terminology's
		// syntax (the Coding and quantity rules), not as a bare code.
		s, ok := v.(string)
		if !ok {
			w.count(reasonMalformed)
			return nil, true, false
		}
		return s, true, true
	case "Quantity.unit", "Age.unit", "Duration.unit", "Count.unit", "Distance.unit":
		return nil, true, false // quantity decides, with the code in view
	case "Coding.system", "Quantity.system", "Age.system", "Duration.system", "Count.system", "Distance.system":
		// Code systems and unit systems name a terminology, never a
		// person; the Coding or quantity rule then checks the system
		// against the list of standard terminologies.
		s, ok := v.(string)
		if !ok {
			w.count(reasonMalformed)
			return nil, true, false
		}
		if !systemURI(s) {
			w.count(reasonURL)
			return nil, true, false
		}
		return s, true, true
	case "CodeableConcept.text":
		// Free text, even when it repeats a display (which is removed
		// too): the codes say what the concept is.
		w.count(reasonCodeText)
		return nil, true, false
	}
	return nil, false, false
}

// primitive applies the rule of a primitive type.
func (w *walk) primitive(e element, v any) (any, bool) {
	switch e.prim {
	case "boolean":
		if _, ok := v.(bool); ok {
			return v, true
		}
	case "integer", "positiveInt", "unsignedInt", "decimal":
		if _, ok := v.(json.Number); ok {
			return v, true
		}
	case "code":
		// Codes come from value sets: keep them, but not a long or
		// multi-line string, an e-mail address or a date posing as one
		// (free text in a code element is dropped like any free text).
		if s, ok := v.(string); ok {
			if e.enum != nil && e.enum[s] || e.enum == nil && codeToken(s) {
				return s, true
			}
			w.count(reasonFreeText)
			return nil, false
		}
	case "date", "dateTime":
		return w.date(v, e.prim)
	case "instant":
		return w.instant(v)
	case "time":
		// A time of day alone (opening hours, a dosing time, a
		// questionnaire answer) is no element of a date by itself, but
		// beside the year of an event it narrows it; removed, failing
		// closed.
		w.count(reasonTime)
		return nil, false
	case "string", "markdown":
		w.count(reasonFreeText)
		return nil, false
	case "uri", "url", "canonical", "oid", "uuid":
		w.count(reasonURL)
		return nil, false
	case "id":
		w.count(reasonElementID)
		return nil, false
	case "base64Binary":
		w.count(reasonBinary)
		return nil, false
	case "xhtml":
		w.count(reasonNarrative)
		return nil, false
	default:
		w.count(reasonUnknownElement)
		return nil, false
	}
	w.count(reasonMalformed)
	return nil, false
}

// codeToken reports whether s may be kept as a code of a value set the
// schema does not list (statuses, priorities, languages, currencies):
// a short token without spaces, an e-mail address, a date or a run of
// 5 digits (a phone number, an SSN or a record number has one; no code
// of these value sets does). Codes of listed value sets must be members.
func codeToken(s string) bool {
	return s != "" && len(s) <= maxCodeLen && !strings.ContainsAny(s, " \n\r\t@") && !dateLike.MatchString(s) &&
		!longDigitRun.MatchString(s)
}

// dateLike matches a string that starts like a date finer than a
// year. No HL7, LOINC ("8302-2"), SNOMED CT or CDC code does.
var dateLike = regexp.MustCompile(`^[0-9]{4}-[0-9]{2}`)

// maxLabelLen bounds a code or unit system kept.
const maxLabelLen = 512

// systemURI reports whether s is kept as a code or unit system: an
// absolute http(s) or urn URI without a query, fragment or e-mail.
func systemURI(s string) bool {
	return (strings.HasPrefix(s, "http://") || strings.HasPrefix(s, "https://") || strings.HasPrefix(s, "urn:")) &&
		len(s) <= maxLabelLen && !strings.ContainsAny(s, "?#@ \n\r")
}

// maxCodeLen bounds a code kept as it is: codes of HL7, SNOMED CT,
// LOINC, RxNorm and ICD are far shorter.
const maxCodeLen = 64

// validID reports whether s is a FHIR id ([A-Za-z0-9\-\.]{1,64}).
func validID(s string) bool {
	if len(s) == 0 || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '.') {
			return false
		}
	}
	return true
}
