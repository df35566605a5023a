package terminology

import "errors"

// Sentinel errors. Messages wrapping them are safe to show a client:
// they name parameters and paths, never values.
var (
	// ErrInvalid means the request is malformed (400).
	ErrInvalid = errors.New("terminology: invalid request")
	// ErrNotFound means a code system or value set the request needs is
	// not stored or not readable by the caller (404 for the resource
	// asked for; a processing issue for one referred to).
	ErrNotFound = errors.New("terminology: not found")
	// ErrUnsupported means the request uses a feature outside the
	// supported subset (a filter operator, a code system whose content is
	// not complete).
	ErrUnsupported = errors.New("terminology: not supported")
	// ErrTooCostly means an expansion would exceed MaxExpansion codes,
	// or imports nest deeper than MaxDepth.
	ErrTooCostly = errors.New("terminology: too costly")
)

// Error is a failure with a message safe to show a client.
type Error struct {
	Kind error
	Msg  string
}

func (e *Error) Error() string { return e.Msg }

// Unwrap returns the sentinel.
func (e *Error) Unwrap() error { return e.Kind }

// Public is the message for the client (it never echoes values).
func (e *Error) Public() string { return e.Msg }

func fail(kind error, msg string) error { return &Error{Kind: kind, Msg: msg} }
