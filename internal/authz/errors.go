package authz

import (
	"errors"
	"fmt"
)

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

	// ErrTooManyLabels means a resource carries more security labels,
	// tags or categories than [MaxLabels]; it wraps ErrUndecidable. The
	// record refuses such a resource when it is written (422).
	ErrTooManyLabels = fmt.Errorf("more labels than the server decides on: %w", ErrUndecidable)

	// ErrNeedsFacts means a decision asked under [WithoutIO] needed
	// facts that were not cached. The caller leaves its transaction,
	// decides once outside it (which loads them) and retries. Decisions
	// inside a write transaction never read the database: on PostgreSQL
	// a transaction waiting for a second pool connection can deadlock.
	ErrNeedsFacts = errors.New("authz: facts not cached")
)

// NeedsFacts is the error (wrapping ErrNeedsFacts) of a decision under
// WithoutIO that missed the cache: it says what to load.
type NeedsFacts struct {
	Owner  string // patient facts of this owner ("" = none missing)
	Filter string // the search filter of this type
}

func (e *NeedsFacts) Error() string { return "authz: facts not cached" }

// Is makes errors.Is(err, ErrNeedsFacts) true.
func (e *NeedsFacts) Is(target error) bool { return target == ErrNeedsFacts }
