package audit

// Correction requests (HIPAA §164.526; internal/privacy Amendments).
// Entities "Amendment/<id>"; the texts are sealed, never in an event.
const (
	// ActionAmendmentRequest is a patient asking to correct their
	// record; Policies "part=<part>".
	ActionAmendmentRequest Action = "amendment-request"
	// ActionAmendmentRead is a read of correction requests with their
	// texts opened: the patient's own, the privacy office's queue, or a
	// care-team clinician's on the chart (each request in its
	// patient's compartment).
	ActionAmendmentRead Action = "amendment-read"
	// ActionAmendmentDecide is the privacy officer's decision; Policies
	// "decision=accepted" or "decision=denied".
	ActionAmendmentDecide Action = "amendment-decide"
)
