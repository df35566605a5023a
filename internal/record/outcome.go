package record

import "github.com/phivault/phivault/internal/fhir"

// OperationOutcome renders e as a FHIR OperationOutcome. Only the public
// issues appear; the internal cause never does.
func OperationOutcome(e *Error) map[string]any { return fhir.Outcome(e.Issues) }

// Informational is a success OperationOutcome (Prefer: return=OperationOutcome).
func Informational(msg string) map[string]any {
	return map[string]any{"resourceType": "OperationOutcome", "issue": []any{
		map[string]any{"severity": "information", "code": "informational", "diagnostics": msg},
	}}
}
