package fhir

// OutcomeIssue is one OperationOutcome issue: a FHIR issue-type code
// (invalid, structure, not-found, deleted, conflict, processing,
// too-costly, transient, not-supported, duplicate, informational...), a
// diagnostic that is safe to show (it never echoes resource values or
// secrets), and an optional FHIRPath location.
type OutcomeIssue struct {
	Code       string
	Diagnostic string
	Location   string
}

// Outcome is an OperationOutcome of issues, as the record (Bundle
// entries) and the HTTP layer (failed requests) send it: severity
// "information" for an "informational" issue, "error" otherwise, each
// location as the issue's expression; without issues, one "exception"
// issue saying "internal error".
func Outcome(issues []OutcomeIssue) map[string]any {
	out := make([]any, 0, len(issues))
	for _, is := range issues {
		sev := "error"
		if is.Code == "informational" {
			sev = "information"
		}
		m := map[string]any{"severity": sev, "code": is.Code, "diagnostics": is.Diagnostic}
		if is.Location != "" {
			m["expression"] = []any{is.Location}
		}
		out = append(out, m)
	}
	if len(out) == 0 {
		out = append(out, map[string]any{"severity": "error", "code": "exception", "diagnostics": "internal error"})
	}
	return map[string]any{"resourceType": "OperationOutcome", "issue": out}
}
