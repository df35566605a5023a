package fhir

import "errors"

// Sentinel errors. Every error returned by this package wraps exactly one
// of them; callers use [errors.Is]. Their text, and the text of every error
// wrapping them, names what is wrong and where, never a value from the
// resource, so it is safe to return to the client in an OperationOutcome.
var (
	// ErrInvalid means the body is not an acceptable FHIR resource:
	// malformed JSON, not an object, no string resourceType, trailing data,
	// duplicate keys, or (from [Validator.Validate]) a schema violation, in
	// which case the error is a *[ValidationError]. Answer 400 (or 422 for
	// schema violations, as FHIR suggests) with an OperationOutcome.
	ErrInvalid = errors.New("fhir: invalid resource")

	// ErrTooLarge means the body is larger than [Limits.MaxBytes] or a
	// Bundle has more than [Limits.MaxEntries] entries. Answer 413.
	ErrTooLarge = errors.New("fhir: resource too large")

	// ErrTooDeep means JSON nesting exceeds [Limits.MaxDepth]. Answer 400.
	ErrTooDeep = errors.New("fhir: resource nested too deeply")

	// ErrUnknownType means the resourceType is not an R4 resource type
	// (see [IsR4Type]). Answer 400 (or 404 when the type came from the URL).
	ErrUnknownType = errors.New("fhir: unknown resource type")

	// ErrSubset means a _summary or _elements request parameter is not
	// one [ParseSubset] accepts. Answer 400 with an OperationOutcome.
	ErrSubset = errors.New("fhir: invalid _summary or _elements")
)
