package record

import (
	"errors"
	"strconv"
)

// The FHIR RESTful API (FHIR R4 http.html) answers each interaction
// with an HTTP status. The record needs them as data: a batch or
// transaction Bundle's entries carry them (Bundle.entry.response.status)
// and so do audit events. They are spelled here, without net/http, so
// that the record stays a domain package (ADR 0025); StatusCode is the
// one mapping from an error's kind to a status, which the HTTP layer
// uses too.
const (
	statusOK                  = 200
	statusCreated             = 201
	statusNoContent           = 204
	statusBadRequest          = 400
	statusForbidden           = 403
	statusNotFound            = 404
	statusConflict            = 409
	statusGone                = 410
	statusPreconditionFailed  = 412
	statusTooLarge            = 413
	statusUnprocessableEntity = 422
	statusInternal            = 500
	statusUnavailable         = 503
)

// statusText is the reason phrase of the statuses above (RFC 9110 §15).
var statusText = map[int]string{
	statusOK:                  "OK",
	statusCreated:             "Created",
	statusNoContent:           "No Content",
	statusBadRequest:          "Bad Request",
	statusForbidden:           "Forbidden",
	statusNotFound:            "Not Found",
	statusConflict:            "Conflict",
	statusGone:                "Gone",
	statusPreconditionFailed:  "Precondition Failed",
	statusTooLarge:            "Request Entity Too Large",
	statusUnprocessableEntity: "Unprocessable Entity",
	statusInternal:            "Internal Server Error",
	statusUnavailable:         "Service Unavailable",
}

// The FHIR RESTful interactions' HTTP methods, as Bundle entries name
// them (Bundle.entry.request.method).
const (
	methodGet    = "GET"
	methodPost   = "POST"
	methodPut    = "PUT"
	methodDelete = "DELETE"
	methodPatch  = "PATCH"
)

// StatusCode is the FHIR RESTful status of err: that of its *Error's
// Kind, 500 for an internal failure or an error that is not an *Error.
// ErrTooLarge is checked before ErrInvalid, which it wraps.
func StatusCode(err error) int {
	var e *Error
	if !errors.As(err, &e) {
		return statusInternal
	}
	switch k := e.Kind; {
	case k == nil:
		return statusInternal
	case errors.Is(k, ErrTooLarge):
		return statusTooLarge
	case errors.Is(k, ErrInvalid):
		return statusBadRequest
	case errors.Is(k, ErrUnprocessable):
		return statusUnprocessableEntity
	case errors.Is(k, ErrNotFound):
		return statusNotFound
	case errors.Is(k, ErrGone):
		return statusGone
	case errors.Is(k, ErrConflict):
		return statusConflict
	case errors.Is(k, ErrPreconditionFailed):
		return statusPreconditionFailed
	case errors.Is(k, ErrUnavailable):
		return statusUnavailable
	case errors.Is(k, ErrForbidden):
		return statusForbidden
	}
	return statusInternal // ErrTampered and any other kind
}

// statusLine is a Bundle entry's response.status: "201 Created".
func statusLine(code int) string {
	return strconv.Itoa(code) + " " + statusText[code]
}
