package record

import (
	"errors"
	"fmt"

	"github.com/phivault/phivault/internal/audit"
	"github.com/phivault/phivault/internal/fhir"
)

// Sentinel errors. Every error the service returns is an *Error whose
// Kind is one of these (or nil for an internal failure), with the safe
// issues to show; StatusCode gives the FHIR RESTful status of each.
var (
	ErrInvalid            = errors.New("record: invalid request")            // 400
	ErrUnprocessable      = errors.New("record: resource failed validation") // 422
	ErrNotFound           = errors.New("record: not found")                  // 404
	ErrGone               = errors.New("record: deleted")                    // 410
	ErrConflict           = errors.New("record: conflict")                   // 409
	ErrPreconditionFailed = errors.New("record: precondition failed")        // 412
	ErrUnavailable        = errors.New("record: unavailable")                // 503
	// ErrTooLarge means a body or Bundle is over the server's bounds; it
	// wraps ErrInvalid (413).
	ErrTooLarge = fmt.Errorf("%w: too large", ErrInvalid)
	// ErrForbidden means the authorization policies denied the request
	// (403; 404 with ErrNotFound where the policy conceals existence).
	ErrForbidden = errors.New("record: forbidden") // 403
	// ErrTampered means a stored version did not open under its owner's
	// key with its own type, id and version: the row was modified,
	// moved or copied (500 for a read of it; searches, histories and
	// $everything leave it out and say so, tampered.go).
	ErrTampered = errors.New("record: stored resource failed its integrity check") // 500
)

// Issue is one OperationOutcome issue: severity error, a FHIR issue-type
// code (invalid, structure, not-found, deleted, conflict, processing,
// too-costly, transient, not-supported, duplicate...), a safe
// diagnostic that never echoes resource values or secrets, and an
// optional FHIRPath location.
type Issue = fhir.OutcomeIssue

// Error is a failed operation with what the client may see. It carries
// no HTTP status: Kind says what failed, and the HTTP layer (and the
// record itself, for Bundle entries and audit events) turns it into a
// status with StatusCode. Issues are public; Err is the internal cause,
// for the log only.
type Error struct {
	// Kind is the sentinel this failure is (ErrNotFound...), or nil
	// for an internal failure. Err wraps it too, except where another
	// sentinel must stay visible to errors.Is: a concealed denial is
	// Kind ErrNotFound and wraps ErrForbidden.
	Kind   error
	Issues []Issue
	Err    error

	// denied is the audit event of an authorization denial decided
	// inside a write transaction: the transaction rolls back, so the
	// event is recorded after it (see recordDenial).
	denied *audit.Event
}

func (e *Error) Error() string {
	msg := ""
	if len(e.Issues) > 0 {
		msg = e.Issues[0].Diagnostic
	}
	if e.Err != nil {
		return fmt.Sprintf("%d %s: %v", StatusCode(e), msg, e.Err)
	}
	return fmt.Sprintf("%d %s", StatusCode(e), msg)
}

func (e *Error) Unwrap() error { return e.Err }

func fail(kind error, code, msg string) *Error {
	return &Error{Kind: kind, Issues: []Issue{{Code: code, Diagnostic: msg}}, Err: kind}
}

func failCause(kind error, code, msg string, cause error) *Error {
	return &Error{Kind: kind, Issues: []Issue{{Code: code, Diagnostic: msg}}, Err: fmt.Errorf("%w: %w", kind, cause)}
}

func invalid(msg string) *Error { return fail(ErrInvalid, "invalid", msg) }

func notFound(msg string) *Error { return fail(ErrNotFound, "not-found", msg) }

func gone(msg string) *Error { return fail(ErrGone, "deleted", msg) }

func unavailable(cause error) *Error {
	return failCause(ErrUnavailable, "transient", "the service is temporarily unavailable; retry later", cause)
}

func internal(err error) *Error {
	return &Error{Issues: []Issue{{Code: "exception", Diagnostic: "internal error"}}, Err: err}
}

// AsError converts any error into an *Error; unknown errors become an
// internal failure with a generic message (their detail stays in Err for
// the log).
func AsError(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	return internal(err)
}
