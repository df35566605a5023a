package audit

// Patient-portal actions (internal/webui portal*.go).
const (
	// ActionAccessReport is a patient reporting an access to their
	// record they do not recognise (the event is in Entities as
	// "AuditEvent/<leaf>"); the comment is sealed, never logged.
	ActionAccessReport Action = "access-report"
	// ActionAccessReportRead is the privacy officer opening the list of
	// open reports (their sealed comments are opened for it).
	ActionAccessReportRead Action = "access-report-read"
	// ActionAccessReportClose is the privacy officer closing a report.
	ActionAccessReportClose Action = "access-report-close"
)
