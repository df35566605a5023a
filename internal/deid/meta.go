package deid

import "strings"

// The marks of a de-identified resource, in meta.security, from the
// HL7 v3 ObservationValue code system's security integrity
// observations (value set v3-SecurityIntegrityObservationValue):
//
//   - PSEUDED "pseudonymized": ids, references and identifier values
//     were replaced by pseudonyms (ISO/TS 25237).
//   - REDACTED "redacted": identifying elements were removed.
//
// ANONYED ("anonymized") is deliberately not used: it claims the
// individuals cannot be identified by any means, which Safe Harbor does
// not promise (the "actual knowledge" clause, residual risk; see
// docs/deidentification.md), and which a date-shifted export is even
// further from.
const (
	observationValueSystem = "http://terminology.hl7.org/CodeSystem/v3-ObservationValue"
	codePseudonymized      = "PSEUDED"
	codeRedacted           = "REDACTED"
)

// meta rebuilds a resource's meta: versionId, lastUpdated, source and
// tags are dropped (they are server history, and phivault's import tag
// is a hash of the original content); core and US Core profiles and
// security labels from HL7 code systems (confidentiality, sensitivity)
// are kept; the de-identification marks are added.
func (w *walk) meta(v any) map[string]any {
	out := map[string]any{}
	m, _ := v.(map[string]any)
	var security []any
	for k, x := range m {
		switch k {
		case "profile":
			arr, _ := x.([]any)
			var kept []any
			for _, p := range arr {
				if s, ok := p.(string); ok && strings.HasPrefix(s, "http://hl7.org/fhir/") && !strings.ContainsAny(s, "?# ") {
					kept = append(kept, s)
				} else {
					w.count(reasonURL)
				}
			}
			if len(kept) > 0 {
				out["profile"] = kept
			}
		case "security":
			arr, _ := x.([]any)
			for _, c := range arr {
				cm, _ := c.(map[string]any)
				sys, _ := cm["system"].(string)
				code, _ := cm["code"].(string)
				if !keptSecuritySystem(sys) || code == "" || len(code) > maxCodeLen ||
					(sys == observationValueSystem && (code == codePseudonymized || code == codeRedacted)) {
					w.count(reasonMeta)
					continue
				}
				security = append(security, map[string]any{"system": sys, "code": code})
			}
		default:
			w.count(reasonMeta)
		}
	}
	security = append(security,
		map[string]any{"system": observationValueSystem, "code": codePseudonymized, "display": "pseudonymized"},
		map[string]any{"system": observationValueSystem, "code": codeRedacted, "display": "redacted"})
	out["security"] = security
	return out
}

// keptSecuritySystem reports whether a security label's system is an
// HL7 one whose codes describe the data (confidentiality, sensitivity,
// integrity), never a person.
func keptSecuritySystem(s string) bool {
	switch s {
	case "http://terminology.hl7.org/CodeSystem/v3-Confidentiality",
		"http://terminology.hl7.org/CodeSystem/v3-ActCode",
		observationValueSystem:
		return true
	}
	return false
}
