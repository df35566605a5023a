package authz

import "errors"

// Errors.
var (
	// ErrInvalidPolicy means a policy file does not parse, lacks an @id,
	// repeats one, or does not type-check against the schema. At start
	// it stops the server; the message names the file and policy.
	ErrInvalidPolicy = errors.New("authz: invalid policy")

	// ErrDenied means the policies denied the request. The HTTP layer
	// answers 403, or 404 where the answer would reveal that a resource
	// exists (ADR 0011).
	ErrDenied = errors.New("authz: denied")

	// ErrUndecidable means the decision could not be made (entity data
	// unavailable, a policy evaluation error): treated as a denial
	// (fail closed); the HTTP layer answers 503 when the cause is
	// storage.ErrUnavailable.
	ErrUndecidable = errors.New("authz: decision failed")

	// ErrNoGrant means there is no unexpired break-the-glass grant.
	ErrNoGrant = errors.New("authz: no break-the-glass grant")
)
