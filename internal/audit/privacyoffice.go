package audit

// The privacy office's reads that are neither a record read nor a
// search of the log (internal/privacy Trail).
const (
	// ActionPeopleLookup is a lookup of staff accounts by name (the
	// privacy office's lookup; a patient lookup is the record service's
	// audited Patient search). Query names the fields used, never their
	// values ("User?name"); Entities are the accounts found ("User/<id>").
	ActionPeopleLookup Action = "people-lookup"
	// ActionExport is a file made from audit events: an audit search
	// exported by the privacy office or an auditor, or a patient's
	// accounting of the accesses to their record. Entities are the
	// events exported ("AuditEvent/<leaf>"); Patients the patient whose
	// trail it is, when one was named; Policies "format=csv" or
	// "format=pdf". A record summary downloaded by its patient is
	// recorded by the record reads that make it, and by this action
	// with Entities "Patient/<id>".
	ActionExport Action = "export"
)
