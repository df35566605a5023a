package record

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/phivault/phivault/internal/audit"
)

// Sentinel errors. Every error the service returns wraps one of these
// inside an *Error that carries the FHIR status and a safe message.
var (
	ErrInvalid            = errors.New("record: invalid request")            // 400
	ErrUnprocessable      = errors.New("record: resource failed validation") // 422
	ErrNotFound           = errors.New("record: not found")                  // 404
	ErrGone               = errors.New("record: deleted")                    // 410
	ErrConflict           = errors.New("record: conflict")                   // 409
	ErrPreconditionFailed = errors.New("record: precondition failed")        // 412
	ErrUnavailable        = errors.New("record: unavailable")                // 503
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
// code, a safe diagnostic, and an optional FHIRPath location.
type Issue struct {
	Code       string // invalid, structure, not-found, deleted, conflict, processing, too-costly, transient, not-supported, duplicate
	Diagnostic string // safe to show: never echoes resource values or secrets
	Location   string
}

// Error is a failed operation with what the client may see. Msg and
// Issues are public; Err is the internal cause, for the log only.
type Error struct {
	Status int
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
		return fmt.Sprintf("%d %s: %v", e.Status, msg, e.Err)
	}
	return fmt.Sprintf("%d %s", e.Status, msg)
}

func (e *Error) Unwrap() error { return e.Err }

func fail(status int, sentinel error, code, msg string) *Error {
	return &Error{Status: status, Issues: []Issue{{Code: code, Diagnostic: msg}}, Err: sentinel}
}

func failCause(status int, sentinel error, code, msg string, cause error) *Error {
	return &Error{Status: status, Issues: []Issue{{Code: code, Diagnostic: msg}}, Err: fmt.Errorf("%w: %w", sentinel, cause)}
}

func invalid(msg string) *Error { return fail(http.StatusBadRequest, ErrInvalid, "invalid", msg) }

func notFound(msg string) *Error { return fail(http.StatusNotFound, ErrNotFound, "not-found", msg) }

func gone(msg string) *Error { return fail(http.StatusGone, ErrGone, "deleted", msg) }

func unavailable(cause error) *Error {
	return failCause(http.StatusServiceUnavailable, ErrUnavailable, "transient", "the service is temporarily unavailable; retry later", cause)
}

// AsError converts any error into an *Error; unknown errors become 500
// with a generic message (their detail stays in Err for the log).
func AsError(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	return &Error{Status: http.StatusInternalServerError, Issues: []Issue{{Code: "exception", Diagnostic: "internal error"}}, Err: err}
}
