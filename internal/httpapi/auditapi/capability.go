package auditapi

// Capability returns the CapabilityStatement rest.resource entry of
// AuditEvent as this handler serves it, or nil when it does not (no
// audit log: /fhir/AuditEvent answers 404). The audit log is
// append-only: AuditEvent is read and searched, nothing else (every
// other interaction is 405, see Refuse), with exactly the parameters
// parseAuditFilter takes.
func (h *Handler) Capability() map[string]any {
	if h.events == nil {
		return nil
	}
	res := map[string]any{
		"type":        "AuditEvent",
		"interaction": []any{map[string]any{"code": "read"}, map[string]any{"code": "search-type"}},
		"versioning":  "no-version",
		"searchParam": []any{
			map[string]any{"name": "action", "type": "token", "documentation": "C, R, U, D or E (http://hl7.org/fhir/audit-event-action); other codes are refused"},
			map[string]any{"name": "agent", "type": "reference", "documentation": "the agent's account or client"},
			map[string]any{"name": "date", "type": "date", "documentation": "prefixes eq, ge, gt, le, lt; may repeat"},
			map[string]any{"name": "entity", "type": "reference", "documentation": "Type/id only (an entity may be of any type)"},
			map[string]any{"name": "outcome", "type": "token", "documentation": "0, 4 or 8 (http://hl7.org/fhir/audit-event-outcome); other codes are refused"},
			map[string]any{"name": "patient", "type": "reference"},
			map[string]any{"name": "subtype", "type": "token", "documentation": "the RESTful interaction code (read, search-type, history-instance, ...)"},
		},
		"documentation": "The audit log, append-only: read and search only, by auditors, privacy officers and the patient concerned " +
			"(a patient sees their own view of events about them). Results are newest first; _count pages, a next link continues with _before.",
	}
	if h.tlog != nil {
		res["operation"] = []any{map[string]any{"name": "proof", "definition": h.baseURL + "/fhir/OperationDefinition/AuditEvent-proof"}}
	}
	return res
}
