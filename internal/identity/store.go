package identity

import "context"

// MaxPage bounds one [Directory.List] page (STYLE rule 24).
const MaxPage = 500

// Directory is the read capability: safe to hand to login and to
// authorization, which must never change an account.
//
// Implementations are safe for concurrent use. Errors other than those
// named wrap the storage sentinels (storage.ErrUnavailable: answer 503).
type Directory interface {
	// ByID returns the user with id, or an error wrapping ErrNotFound.
	ByID(ctx context.Context, id string) (User, error)

	// ByUsername returns the user named username, or an error wrapping
	// ErrNotFound. A login handler that gets ErrNotFound must still run
	// a dummy password check (STYLE rule 25).
	ByUsername(ctx context.Context, username string) (User, error)

	// List returns up to limit users whose username sorts strictly
	// after after ("" = from the start), in bytewise username order:
	// pass the last username of a page to get the next. limit must be
	// 1..MaxPage, else an error wrapping ErrInvalid.
	List(ctx context.Context, after string, limit int) ([]User, error)
}

// Admin is the privileged capability over account lifecycle and
// authorization: only the security-admin surface (and bootstrap) gets it.
//
// Every method returns the user as stored after the change, with Updated
// set by the store's clock. Auditing is the caller's: it appends the
// audit event (actor, target id, change) itself, before answering.
// Ending sessions is the caller's too: after SetDisabled(true) or
// SetRoles it calls session.Manager.RevokeAllForUser.
//
// Errors: ErrInvalid (a *FieldError) for a user that fails
// [User.Validate] after the change, ErrNotFound for an unknown id,
// ErrExists from Create for a taken id or username, ErrFHIRUserBound
// when the result would be a second enabled account bound to one FHIR
// user (Create, SetDisabled(false), any change of FHIRUser).
//
// These are storage capabilities: the separation-of-duties rules of the
// package doc (no self-change, the two-person rule) are the
// administration service's (account.Service), which every surface uses.
type Admin interface {
	// Create stores u (u.ID from [NewID]); Created and Updated are set
	// by the store and u's values for them are ignored.
	Create(ctx context.Context, u User) (User, error)

	// SetRoles replaces the roles of user id.
	SetRoles(ctx context.Context, id string, roles []Role) (User, error)

	// SetDisabled disables (true) or re-enables user id. A disabled user
	// cannot log in; the caller revokes its sessions.
	SetDisabled(ctx context.Context, id string, disabled bool) (User, error)
}

// Credentials is the capability to replace an account's authenticators:
// the self-service password change and the audited admin MFA reset get
// it, without getting [Admin]. The same contract as Admin applies
// (return value, auditing and RevokeAllForUser are the caller's).
type Credentials interface {
	// SetPassword replaces the password hash of user id ("" removes the
	// local password). The caller hashes; the store never sees a password.
	SetPassword(ctx context.Context, id string, hash string) (User, error)

	// SetMFA records whether user id has enrolled a second factor.
	// Resetting (false) must be followed by RevokeAllForUser.
	SetMFA(ctx context.Context, id string, enrolled bool) (User, error)
}
