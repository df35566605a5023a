package account

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/phivault/phivault/internal/authz"
	"github.com/phivault/phivault/internal/ident"
	"github.com/phivault/phivault/internal/identity"
	"github.com/phivault/phivault/internal/storage"
)

// This file holds the two-person rule's pending role requests (ADR
// 0018). A request, its alert and its audit record commit together, and
// so do an approval, the role change it makes, the revocation of the
// account's sessions, its alert and its audit record.

// RequestAuditFn builds the audit record of a step of a request from the
// request and the account as stored after the step. Like AuditFn it runs
// inside the transaction, may run more than once and has no side effect.
type RequestAuditFn func(identity.Request, identity.User) (storage.AuditRecord, error)

// Pending is a role request made together with another change (an
// account's creation, an immediate part of a role change) or alone
// ([RequestRoles]): the request (its UserID and BaseRoles are set from
// the account as stored), the alert it raises and its own audit record.
type Pending struct {
	Request identity.Request
	Alert   authz.Alert
	Audit   RequestAuditFn
}

// Decision is a second administrator's answer to a pending request.
type Decision struct {
	Approve bool
	By      string    // the deciding administrator's account id
	Now     time.Time // the caller's clock, for the request's expiry (zero: the store's)
	// Alert is raised with an approval (ignored for a rejection); its
	// UserID, Patient and Ref are set from the request.
	Alert authz.Alert
	Audit RequestAuditFn // required
}

// RequestRoles stores the pending request p.Request for the account it
// names (BaseRoles: its current roles), its alert and its audit record,
// in one transaction (reading the account with its row locked). Errors:
// identity.ErrNotFound for an unknown account, identity.ErrInvalid if
// the requested roles would make the account invalid,
// identity.ErrRequestPending if a request for the account is pending
// already.
func RequestRoles(ctx context.Context, st Store, p Pending) (identity.Request, error) {
	var out identity.Request
	err := st.Update(ctx, func(t Tx) error {
		cur, err := t.LockUser(ctx, "request roles", p.Request.UserID)
		if err != nil {
			return err
		}
		out, err = putRequest(ctx, t, cur, p)
		return err
	})
	return out, err
}

// putRequest stores p's request for account cur (as stored in this
// transaction), its alert and its audit record.
func putRequest(ctx context.Context, t Tx, cur identity.User, p Pending) (identity.Request, error) {
	const op = "request roles"
	r := p.Request
	r.UserID = cur.ID
	r.BaseRoles = append([]identity.Role(nil), cur.Roles...)
	r.Roles = append([]identity.Role(nil), r.Roles...)
	if p.Audit == nil {
		return identity.Request{}, errors.New(op + ": no audit record")
	}
	if p.Alert.ID == "" {
		return identity.Request{}, errors.New(op + ": alert id is empty")
	}
	if !r.Created.Before(r.Expires) {
		return identity.Request{}, errors.New(op + ": the request expires before it is made")
	}
	would := cur
	would.Roles = r.Roles
	if err := would.Validate(); err != nil {
		return identity.Request{}, err
	}
	// An expired request for the account gives way to the new one.
	if err := t.DeleteExpiredRoleRequests(ctx, op, r.UserID, r.Created); err != nil {
		return identity.Request{}, err
	}
	if err := t.InsertRoleRequest(ctx, op, r); err != nil {
		return identity.Request{}, err
	}
	if err := t.RaiseAlert(ctx, p.Alert); err != nil {
		return identity.Request{}, err
	}
	rec, err := p.Audit(r, cur)
	if err != nil {
		return identity.Request{}, err
	}
	return r, t.AppendAudit(ctx, rec)
}

// Decide approves or rejects request id, in one transaction: reading
// the request and the account with their rows locked, so two
// administrators deciding at once cannot both act. An approval replaces
// the account's roles by the requested ones, revokes its sessions (the
// new roles apply from the next sign-in), deletes the request, raises
// d.Alert and appends the audit record; a rejection deletes the request
// and appends the audit record. It returns the request and the account
// as stored after the decision.
//
// Errors: identity.ErrNotFound for no such request (decided already),
// identity.ErrSelf when d.By made the request or is its account (for an
// approval; anyone may reject), identity.ErrRequestStale for an
// approval of an expired request or of an account whose roles are no
// longer the request's BaseRoles, identity.ErrInvalid,
// identity.ErrFHIRUserBound.
func Decide(ctx context.Context, st Store, id string, d Decision) (identity.Request, identity.User, error) {
	if d.Audit == nil {
		return identity.Request{}, identity.User{}, errors.New("decide request: no audit record")
	}
	var req identity.Request
	var out identity.User
	err := st.Update(ctx, func(t Tx) error {
		const op = "decide request"
		var err error
		if req, err = t.LockRoleRequest(ctx, op, id); err != nil {
			return err
		}
		if err := req.MayDecide(d.By); d.Approve && err != nil {
			// Anyone may reject (the requester withdraws), nobody
			// approves their own request or their own grant.
			return err
		}
		cur, err := t.LockUser(ctx, op, req.UserID)
		if err != nil {
			return err
		}
		if d.Approve {
			at := d.Now
			if at.IsZero() {
				at = t.Now()
			}
			if req.Expired(at) || identity.FormatRoles(cur.Roles) != identity.FormatRoles(req.BaseRoles) {
				return &kindError{kind: identity.ErrRequestStale, err: fmt.Errorf("%s: %w", op, storage.ErrConflict)}
			}
			was := cur
			cur.Roles = append([]identity.Role(nil), req.Roles...)
			if err := cur.Validate(); err != nil {
				return err
			}
			cur.Updated = t.Now().UTC().Truncate(time.Microsecond)
			if err := t.UpdateUser(ctx, op, was, cur); err != nil {
				return err
			}
			if err := t.RevokeUserSessions(ctx, op, cur.ID); err != nil {
				return err
			}
			a := d.Alert
			a.UserID, a.Ref = cur.ID, "Request/"+req.ID
			if strings.HasPrefix(cur.FHIRUser, ident.PatientPrefix) {
				a.Patient = cur.FHIRUser
			}
			if err := t.RaiseAlert(ctx, a); err != nil {
				return err
			}
		}
		if err := t.DeleteRoleRequest(ctx, op, id); err != nil {
			return err
		}
		rec, err := d.Audit(req, cur)
		if err != nil {
			return err
		}
		out = cur
		return t.AppendAudit(ctx, rec)
	})
	if err != nil {
		return identity.Request{}, identity.User{}, err
	}
	return req, out, nil
}
