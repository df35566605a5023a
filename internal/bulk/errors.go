package bulk

import "errors"

// Errors. Handlers map them to FHIR answers (internal/httpapi/bulk.go).
var (
	// ErrTooManyJobs: the client has as many jobs queued or running as
	// it may. Answer 429 with a Retry-After header.
	ErrTooManyJobs = errors.New("bulk: too many export jobs in progress for this client")
	// ErrLeaseLost: the process no longer holds the job it was running
	// (it was deleted, or another process claimed it after this one's
	// lease ran out). Stop the run; write nothing more.
	ErrLeaseLost = errors.New("bulk: the export job is no longer held by this process")
	// ErrNotFound: no such job or file for this client (another
	// client's job is not found either). Answer 404.
	ErrNotFound = errors.New("bulk: export job or file not found")
	// ErrForbidden: the caller may not start an export (not a SMART
	// backend client, no registered purpose of use). Answer 403.
	ErrForbidden = errors.New("bulk: export not permitted for this client")
	// ErrUnavailable: storage or the audit log is unavailable. Answer
	// 503 with Retry-After.
	ErrUnavailable = errors.New("bulk: temporarily unavailable")
)

// ParamError is a kick-off parameter the server refuses: a 400
// OperationOutcome whose text (Msg) names the parameter, never a value.
type ParamError struct {
	Code string // FHIR issue type: invalid, not-supported, too-costly
	Msg  string
}

func (e *ParamError) Error() string { return "bulk: " + e.Msg }

func invalid(msg string) error      { return &ParamError{Code: "invalid", Msg: msg} }
func notSupported(msg string) error { return &ParamError{Code: "not-supported", Msg: msg} }
