package account

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/phivault/phivault/internal/authz"
	"github.com/phivault/phivault/internal/identity"
	"github.com/phivault/phivault/internal/storage"
)

// Tx is the part of one write transaction that account changes use.
// Every method but AppendAudit and Now is one plain statement (or a
// read with its row check); errors wrap the storage sentinels and,
// where named, identity's. op names the operation in error text. It is
// not safe for concurrent use.
type Tx interface {
	// AppendAudit adds audit records in this transaction.
	AppendAudit(ctx context.Context, recs ...storage.AuditRecord) error
	// Now is the store's clock.
	Now() time.Time

	// LockUser reads user id with its row locked until commit (on
	// engines with several writers); identity.ErrNotFound if there is
	// none (or its row does not authenticate).
	LockUser(ctx context.Context, op, id string) (identity.User, error)
	// InsertUser inserts u (with u.Created and u.Updated); a taken id
	// or username is identity.ErrExists, a FHIR user bound to another
	// enabled account identity.ErrFHIRUserBound.
	InsertUser(ctx context.Context, u identity.User) error
	// InsertLinkedUser inserts u, provisioned by SSO: a taken id or
	// username is identity.ErrExists (the FHIR user binding is not
	// checked: SSO accounts are created without one).
	InsertLinkedUser(ctx context.Context, u identity.User) error
	// LinkSSO links the SSO identity (issuer, subject) to user id;
	// identity.ErrExists if the identity is linked already.
	LinkSSO(ctx context.Context, issuer, subject, userID string, created time.Time) error
	// UpdateUser writes cur over was (the same account, read in this
	// transaction); identity.ErrFHIRUserBound as InsertUser.
	UpdateUser(ctx context.Context, op string, was, cur identity.User) error

	// PutEnrolment replaces user id's outstanding enrolment secret.
	PutEnrolment(ctx context.Context, userID string, e Enrolment, now time.Time) error
	// EnrolmentOwner returns the id of the user whose enrolment secret
	// hashes to hash (of kind); identity.ErrNotFound if there is none or
	// its row does not authenticate. Expiry is not checked.
	EnrolmentOwner(ctx context.Context, hash []byte, kind string) (string, error)
	// DeleteEnrolment deletes user id's enrolment secret hash if it has
	// not expired at at; identity.ErrNotFound (as "<op>: enrolment
	// secret") if no such row was deleted.
	DeleteEnrolment(ctx context.Context, op, userID string, hash []byte, at time.Time) error

	// ClearSecondFactors deletes user id's TOTP, recovery-code and
	// WebAuthn rows.
	ClearSecondFactors(ctx context.Context, op, userID string) error
	// RevokeUserSessions revokes every live session of user id.
	RevokeUserSessions(ctx context.Context, op, userID string) error

	// DeleteExpiredRoleRequests deletes user id's role requests that
	// expired at or before at.
	DeleteExpiredRoleRequests(ctx context.Context, op, userID string, at time.Time) error
	// InsertRoleRequest stores r; identity.ErrRequestPending if a
	// request for the account exists.
	InsertRoleRequest(ctx context.Context, op string, r identity.Request) error
	// LockRoleRequest reads request id (expired or not) with its row
	// locked until commit; identity.ErrNotFound if there is none.
	LockRoleRequest(ctx context.Context, op, id string) (identity.Request, error)
	// DeleteRoleRequest deletes request id; an error wrapping
	// storage.ErrConflict (and identity.ErrExists) if there was none.
	DeleteRoleRequest(ctx context.Context, op, id string) error

	// RaiseAlert raises a for the privacy officer's desk.
	RaiseAlert(ctx context.Context, a authz.Alert) error
}

// Store is the unit of work of account changes: Update runs fn in one
// transaction and commits it if fn returns nil, retrying fn after a
// lost race (fn must have no side effects outside tx); an error from fn
// is returned unchanged. sqldb.NewUnit[account.Tx] implements it.
type Store interface {
	Update(ctx context.Context, fn func(Tx) error) error
}

// Enrolment is an enrolment secret to store: the keyed hash of the
// secret (the secret itself is shown once and never stored) and its
// expiry.
type Enrolment struct {
	Hash     []byte
	HashKind string // storage.HashHMAC (required with row authentication)
	Expires  time.Time
}

// AuditFn builds the audit record of a change from the user as stored
// after it. It runs inside the transaction and may run more than once,
// so it must have no side effects.
type AuditFn func(identity.User) (storage.AuditRecord, error)

// Change is one audited change of an existing account. Every field but
// Op and Audit is optional; all of it commits or none does.
type Change struct {
	Op     string               // operation name for errors: "disable user"
	Change func(*identity.User) // edits the user; the result is validated

	// ConsumeEnrolment is the hash of an enrolment secret that must be
	// the user's outstanding one and unexpired at EnrolmentNow (the
	// caller's clock; zero means the store's); it is deleted. Otherwise
	// Apply fails with identity.ErrNotFound and writes nothing.
	ConsumeEnrolment []byte
	EnrolmentKind    string // the kind of ConsumeEnrolment's hash (storage.HashHMAC, ...)
	EnrolmentNow     time.Time

	ClearMFA       bool // delete the user's TOTP, recovery-code and WebAuthn rows
	RevokeSessions bool // revoke every live session of the user
	// RevokeIfRolesChanged revokes every live session of the user if
	// Change changed its roles (a role change that is only requested
	// leaves the sessions alone).
	RevokeIfRolesChanged bool

	// Request, if not nil, is called with the account after Change and
	// returns the role request for the rest of a role change (ADR 0018),
	// or nil; it is stored with its alert and audit record (see
	// [RequestRoles]). Like Change it may run more than once.
	Request func(identity.User) *Pending
	// Alert, if not nil, is raised with the change (a grant outside the
	// two-person rule, by the offline CLI).
	Alert *authz.Alert

	Audit AuditFn // required
}

// New is what [Create] stores with a new account: the enrolment
// secret, a role request (the roles that await a second administrator)
// and an alert, each optional.
type New struct {
	Enrolment *Enrolment
	Request   *Pending
	Alert     *authz.Alert
}

// kindError adds a domain sentinel (identity's) to an error that
// already wraps a storage sentinel, so callers of either layer can use
// errors.Is. Its text is the wrapped error's.
type kindError struct {
	kind error
	err  error
}

func (e *kindError) Error() string   { return e.err.Error() }
func (e *kindError) Unwrap() []error { return []error{e.kind, e.err} }

// secretNotFound is the error of an enrolment secret that is not the
// user's: identity.ErrNotFound over storage.ErrNotFound, with cause
// (may be nil) joined.
func secretNotFound(op string, cause error) error {
	return &kindError{kind: identity.ErrNotFound, err: errors.Join(fmt.Errorf("%s: enrolment secret: %w", op, storage.ErrNotFound), cause)}
}

// Create stores nu (its Created and Updated set by the store's clock),
// what c holds, and the audit record from audit, in one transaction, and
// returns the user as stored. Errors: identity.ErrInvalid,
// identity.ErrExists (a taken username; a taken enrolment hash too, a
// 256-bit collision: not expected to happen), identity.ErrFHIRUserBound,
// and those of [RequestRoles].
func Create(ctx context.Context, st Store, nu identity.User, c New, audit AuditFn) (identity.User, error) {
	if audit == nil {
		return identity.User{}, errors.New("create user: no audit record")
	}
	nu.Roles = append([]identity.Role(nil), nu.Roles...)
	var out identity.User
	err := st.Update(ctx, func(t Tx) error {
		u := nu
		now := t.Now().UTC().Truncate(time.Microsecond)
		u.Created, u.Updated = now, now
		if err := u.Validate(); err != nil {
			return err
		}
		if err := t.InsertUser(ctx, u); err != nil {
			return err
		}
		if c.Enrolment != nil {
			if err := t.PutEnrolment(ctx, u.ID, *c.Enrolment, now); err != nil {
				return err
			}
		}
		rec, err := audit(u)
		if err != nil {
			return err
		}
		if err := t.AppendAudit(ctx, rec); err != nil {
			return err
		}
		if c.Request != nil {
			if _, err := putRequest(ctx, t, u, *c.Request); err != nil {
				return err
			}
		}
		if c.Alert != nil {
			if err := t.RaiseAlert(ctx, *c.Alert); err != nil {
				return err
			}
		}
		out = u
		return nil
	})
	if err != nil {
		return identity.User{}, err
	}
	return out, nil
}

// Apply performs c on user id in one transaction (reading the user with
// its row locked) and returns the user as stored after it. Errors:
// identity.ErrNotFound for an unknown id or, with ConsumeEnrolment, for
// a secret that is not the user's, has expired or was used;
// identity.ErrInvalid if the change makes the user invalid;
// identity.ErrFHIRUserBound.
func Apply(ctx context.Context, st Store, id string, c Change) (identity.User, error) {
	if c.Audit == nil {
		return identity.User{}, errors.New(c.Op + ": no audit record")
	}
	var out identity.User
	err := st.Update(ctx, func(t Tx) error {
		cur, err := t.LockUser(ctx, c.Op, id)
		if err != nil {
			return err
		}
		now := t.Now().UTC().Truncate(time.Microsecond)
		if c.ConsumeEnrolment != nil {
			owner, err := t.EnrolmentOwner(ctx, c.ConsumeEnrolment, c.EnrolmentKind)
			if err != nil || owner != id {
				return secretNotFound(c.Op, err)
			}
			at := c.EnrolmentNow
			if at.IsZero() {
				at = now
			}
			if err := t.DeleteEnrolment(ctx, c.Op, id, c.ConsumeEnrolment, at); err != nil {
				return err
			}
		}
		was := cur
		if c.Change != nil {
			c.Change(&cur)
			if err := cur.Validate(); err != nil {
				return err
			}
			cur.Updated = now
			if err := t.UpdateUser(ctx, c.Op, was, cur); err != nil {
				return err
			}
		}
		if c.ClearMFA {
			if err := t.ClearSecondFactors(ctx, c.Op, id); err != nil {
				return err
			}
		}
		if c.RevokeSessions || c.RevokeIfRolesChanged && identity.FormatRoles(was.Roles) != identity.FormatRoles(cur.Roles) {
			if err := t.RevokeUserSessions(ctx, c.Op, id); err != nil {
				return err
			}
		}
		rec, err := c.Audit(cur)
		if err != nil {
			return err
		}
		if err := t.AppendAudit(ctx, rec); err != nil {
			return err
		}
		if c.Request != nil {
			if p := c.Request(cur); p != nil {
				if _, err := putRequest(ctx, t, cur, *p); err != nil {
					return err
				}
			}
		}
		if c.Alert != nil {
			if err := t.RaiseAlert(ctx, *c.Alert); err != nil {
				return err
			}
		}
		out = cur
		return nil
	})
	return out, err
}
