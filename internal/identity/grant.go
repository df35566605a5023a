package identity

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"slices"
	"time"
)

// RequestTTL is how long a pending role request waits for a second
// administrator: three days, so a request made before a weekend can be
// decided on the next working day, while a forgotten request does not
// wait for months to be approved by mistake.
const RequestTTL = 72 * time.Hour

// More sentinel errors of account administration.
var (
	// ErrSelf means an administrator tried to change their own account or
	// to decide a request they made or that is for their own account.
	// Admin endpoints answer 403 with its text.
	ErrSelf = errors.New("separation of duties: you cannot change your own account, or approve a request that you made or that is for your account; ask another administrator")

	// ErrFHIRUserBound means the FHIR user is already bound to another
	// enabled account. Admin endpoints answer 409 with its text.
	ErrFHIRUserBound = errors.New("this FHIR user is already bound to another enabled account: each Practitioner or Patient has at most one")

	// ErrRequestPending means the account has a pending role request
	// already: approve, reject or let it expire first. 409.
	ErrRequestPending = errors.New("a role request for this account is already waiting for approval: approve or reject it first")

	// ErrRequestStale means the account's roles changed since the request
	// was made, or the request expired: it can only be rejected. 409.
	ErrRequestStale = errors.New("the request expired or the account's roles changed since it was made: request the change again")

	// ErrApprover means the approver is not a person: approvals need a
	// security administrator's session with a second factor, never a
	// service credential. 403.
	ErrApprover = errors.New("an approval needs a security administrator signed in with a second factor")
)

// ReachesPHI reports whether r reaches protected health information
// under the default policies (docs/authorization.md, "Separation of
// duties"): the clinical roles and front desk, billing, privacy officer
// and auditor (their jobs read patient records, demographics, consents
// or the access trail that names patients), patient (their own record)
// and system (everything). Researcher (knowledge and directory
// resources) and security admin (the workforce directory) do not.
func (r Role) ReachesPHI() bool {
	switch r {
	case RolePhysician, RoleNurse, RoleFrontDesk, RoleBilling, RolePrivacyOfficer, RoleAuditor, RolePatient, RoleSystem:
		return true
	}
	return false
}

// NeedsApproval reports whether granting r needs a second
// administrator: every role that reaches PHI, and security admin, which
// approves grants (a second administrator account made by one admin
// alone would approve that admin's own requests).
func (r Role) NeedsApproval() bool { return r.ReachesPHI() || r == RoleSecurityAdmin }

// Split divides a role change from cur to target. now is the role set
// that may take effect at once: cur without the roles target drops,
// plus the roles target adds that need no approval. pending reports
// whether target adds a role that needs approval; target then takes
// effect only through an approved [Request]. The result keeps target's
// order, then cur's.
func Split(cur, target []Role) (now []Role, pending bool) {
	now = make([]Role, 0, len(target))
	for _, r := range target {
		switch {
		case slices.Contains(cur, r), !r.NeedsApproval():
			now = append(now, r)
		default:
			pending = true
		}
	}
	return now, pending
}

// Request is a pending role change waiting for a second administrator.
// It replaces the account's roles by Roles when approved, provided they
// still are BaseRoles (compare-and-set: a request is approved for the
// account as it was when requested).
type Request struct {
	ID          string // "rqs_" and 32 hex digits
	UserID      string
	Roles       []Role // the account's roles once approved
	BaseRoles   []Role // the account's roles when requested
	RequestedBy string // account id of the requesting administrator, or "sso" for the identity provider's group mapping
	Created     time.Time
	Expires     time.Time
}

// Adds returns the roles r adds to the account, the ones being approved.
func (r Request) Adds() []Role {
	var out []Role
	for _, x := range r.Roles {
		if !slices.Contains(r.BaseRoles, x) {
			out = append(out, x)
		}
	}
	return out
}

// Expired reports whether r can no longer be approved at now.
func (r Request) Expired(now time.Time) bool { return !now.Before(r.Expires) }

// MayDecide reports whether the administrator with account id approver
// may approve r: not the requester, not the account the request is for
// ([ErrSelf] otherwise).
func (r Request) MayDecide(approver string) error {
	if approver == "" || approver == r.RequestedBy || approver == r.UserID {
		return ErrSelf
	}
	return nil
}

// NewRequestID returns a fresh request id (128 bits from rand, or from
// crypto/rand when rand is nil).
func NewRequestID(rnd io.Reader) (string, error) {
	if rnd == nil {
		rnd = rand.Reader
	}
	var b [16]byte
	if _, err := io.ReadFull(rnd, b[:]); err != nil {
		return "", fmt.Errorf("generating request id: %w", err)
	}
	return "rqs_" + hex.EncodeToString(b[:]), nil
}
