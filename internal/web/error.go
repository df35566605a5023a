package web

import (
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/phivault/phivault/internal/fhir"
)

// Error is a failed request as the client may see it, kept apart from
// its cause, which goes to the log only (STYLE rule 12; modelled on
// tailscale's tsweb.HTTPError). It is the one error type of the HTTP
// layer: the FHIR API, the admin and login APIs, the SMART endpoints and
// the web UI map their domain errors to it, and a [Renderer] writes it
// as an OperationOutcome, a JSON object, an HTML page or an OAuth error.
//
// Nothing in Msg, Title, Code, Issues or Header may carry PHI, a secret,
// a token or a value the client sent; Err may, and is never sent.
type Error struct {
	Status int    // HTTP status code
	Msg    string // public message: safe to show to the client
	Err    error  // internal cause, for the log only; may be nil

	// Code is a machine-readable code for the renderers that have one:
	// the FHIR issue type of an OperationOutcome ("invalid",
	// "not-found"...) or the RFC 6749 §5.2 error code ("invalid_grant").
	Code string
	// Title is the heading of an HTML error page.
	Title string
	// Issues are an OperationOutcome's issues when there is more than
	// the one that Code and Msg make (several, or with a location). A
	// FHIR renderer prefers them to Code and Msg.
	Issues []fhir.OutcomeIssue
	// RetryAfter, if positive, is sent as Retry-After in whole seconds,
	// rounded up.
	RetryAfter time.Duration
	// Header holds further response headers (WWW-Authenticate...).
	Header http.Header
}

// New returns an *Error with the status, public message and internal
// cause (which may be nil).
func New(status int, msg string, cause error) *Error {
	return &Error{Status: status, Msg: msg, Err: cause}
}

func (e *Error) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("%d %s: %v", e.Status, e.Msg, e.Err)
	}
	return fmt.Sprintf("%d %s", e.Status, e.Msg)
}

func (e *Error) Unwrap() error { return e.Err }

// AsError returns the *Error in err's chain, or nil.
func AsError(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	return nil
}

// Internal is the answer to an error nobody mapped: 500 with a generic
// message; err stays in the log.
func Internal(err error) *Error {
	return &Error{Status: http.StatusInternalServerError, Msg: "internal error", Code: "exception", Err: err}
}

// cause is e's internal error as text for the log ("" without one).
func (e *Error) cause() string {
	if e.Err == nil {
		return ""
	}
	return e.Err.Error()
}

// writeHeaders sets e's own headers and Retry-After on w.
func (e *Error) writeHeaders(w http.ResponseWriter) {
	h := w.Header()
	for k, v := range e.Header {
		h.Del(k)
		for _, x := range v {
			h.Add(k, x)
		}
	}
	if e.RetryAfter > 0 {
		h.Set("Retry-After", RetryAfterSeconds(e.RetryAfter))
	}
}

// RetryAfterSeconds is d in whole seconds, rounded up, as Retry-After
// carries it (RFC 9110 §10.2.3).
func RetryAfterSeconds(d time.Duration) string {
	return fmt.Sprint(int64((d + time.Second - 1) / time.Second))
}
