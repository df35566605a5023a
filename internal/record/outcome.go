package record

// OperationOutcome renders e as a FHIR OperationOutcome. Only the public
// issues appear; the internal cause never does.
func OperationOutcome(e *Error) map[string]any {
	issues := make([]any, 0, len(e.Issues))
	for _, is := range e.Issues {
		sev := "error"
		if is.Code == "informational" {
			sev = "information"
		}
		m := map[string]any{"severity": sev, "code": is.Code, "diagnostics": is.Diagnostic}
		if is.Location != "" {
			m["expression"] = []any{is.Location}
		}
		issues = append(issues, m)
	}
	if len(issues) == 0 {
		issues = append(issues, map[string]any{"severity": "error", "code": "exception", "diagnostics": "internal error"})
	}
	return map[string]any{"resourceType": "OperationOutcome", "issue": issues}
}

// Informational is a success OperationOutcome (Prefer: return=OperationOutcome).
func Informational(msg string) map[string]any {
	return map[string]any{"resourceType": "OperationOutcome", "issue": []any{
		map[string]any{"severity": "information", "code": "informational", "diagnostics": msg},
	}}
}
