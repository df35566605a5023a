package sqldb

import (
	"context"
	"database/sql"
	"errors"
	"strings"
	"time"

	"github.com/phivault/phivault/internal/authz"
	"github.com/phivault/phivault/internal/identity"
	"github.com/phivault/phivault/internal/storage"
)

// This file holds the two-person rule's pending role requests (table
// access_requests, migration 0019; ADR 0018). A request, its alert and
// its audit record commit together, and so do an approval, the role
// change it makes, the revocation of the account's sessions, its alert
// and its audit record.

// kindUserRoles is the access_requests kind of a role change.
const kindUserRoles = "user-roles"

// maxRequestList bounds one listing of pending requests.
const maxRequestList = 500

// RequestAuditFn builds the audit record of a step of a request from the
// request and the account as stored after the step. Like AuditFn it runs
// inside the transaction, may run more than once and has no side effect.
type RequestAuditFn func(identity.Request, identity.User) (storage.AuditRecord, error)

// Pending is a role request made together with another change (an
// account's creation, an immediate part of a role change): the request
// (its BaseRoles are set by the store to the account's roles after the
// change), the alert it raises and its own audit record.
type Pending struct {
	Request identity.Request
	Alert   authz.Alert
	Audit   RequestAuditFn
}

// Decision is a second administrator's answer to a pending request.
type Decision struct {
	Approve bool
	By      string    // the deciding administrator's account id
	Now     time.Time // the caller's clock, for the request's expiry
	// Alert is raised with an approval (ignored for a rejection); its
	// UserID, Patient and Ref are set by the store from the request.
	Alert authz.Alert
	Audit RequestAuditFn // required
}

const requestCols = `id, target, roles, base_roles, requested_by, created, expires`

func scanRequests(rows *sql.Rows) ([]identity.Request, error) {
	defer rows.Close()
	var out []identity.Request
	for rows.Next() {
		var r identity.Request
		var roles, base string
		var created, expires int64
		if err := rows.Scan(&r.ID, &r.UserID, &roles, &base, &r.RequestedBy, &created, &expires); err != nil {
			return nil, err
		}
		var err error
		if r.Roles, err = identity.ParseRoles(roles); err != nil {
			return nil, errors.New("stored request has an unknown role")
		}
		if r.BaseRoles, err = identity.ParseRoles(base); err != nil {
			return nil, errors.New("stored request has an unknown role")
		}
		r.Created, r.Expires = fromMicros(created), fromMicros(expires)
		out = append(out, r)
	}
	return out, rows.Err()
}

// PendingRequests returns up to limit (1..500) requests that have not
// expired at now, oldest first.
func (u *Users) PendingRequests(ctx context.Context, now time.Time, limit int) ([]identity.Request, error) {
	if limit < 1 || limit > maxRequestList {
		limit = maxRequestList
	}
	const q = `SELECT ` + requestCols + ` FROM access_requests WHERE kind = ? AND expires > ? ORDER BY created, id LIMIT ?`
	rows, err := u.s.r().query(ctx, q, kindUserRoles, now.UnixMicro(), int64(limit))
	if err != nil {
		return nil, u.s.translate("pending requests", err)
	}
	rs, err := scanRequests(rows)
	return rs, u.s.translate("pending requests", err)
}

// RequestFor returns the pending request for account userID that has
// not expired at now, or an error wrapping identity.ErrNotFound.
func (u *Users) RequestFor(ctx context.Context, userID string, now time.Time) (identity.Request, error) {
	if !lookupable(userID) {
		return identity.Request{}, identityErr(wrapOp("pending request", storage.ErrNotFound))
	}
	const q = `SELECT ` + requestCols + ` FROM access_requests WHERE kind = ? AND target = ? AND expires > ?`
	rows, err := u.s.r().query(ctx, q, kindUserRoles, userID, now.UnixMicro())
	return oneRequest(u.s, "pending request", rows, err)
}

// Request returns request id (expired or not), or an error wrapping
// identity.ErrNotFound.
func (u *Users) Request(ctx context.Context, id string) (identity.Request, error) {
	if !lookupable(id) {
		return identity.Request{}, identityErr(wrapOp("request", storage.ErrNotFound))
	}
	const q = `SELECT ` + requestCols + ` FROM access_requests WHERE kind = ? AND id = ?`
	rows, err := u.s.r().query(ctx, q, kindUserRoles, id)
	return oneRequest(u.s, "request", rows, err)
}

func oneRequest(s *Store, op string, rows *sql.Rows, err error) (identity.Request, error) {
	if err != nil {
		return identity.Request{}, identityErr(s.translate(op, err))
	}
	rs, err := scanRequests(rows)
	if err != nil {
		return identity.Request{}, identityErr(s.translate(op, err))
	}
	if len(rs) == 0 {
		return identity.Request{}, identityErr(wrapOp(op, storage.ErrNotFound))
	}
	return rs[0], nil
}

// RequestRoles stores the pending request p.Request for the account it
// names (BaseRoles: its current roles), its alert and its audit record,
// in one transaction (reading the account with its row locked on
// PostgreSQL). Errors: identity.ErrNotFound for an unknown account,
// identity.ErrInvalid if the requested roles would make the account
// invalid, identity.ErrRequestPending if a request for the account is
// pending already.
func (u *Users) RequestRoles(ctx context.Context, p Pending) (identity.Request, error) {
	var out identity.Request
	err := u.s.Update(ctx, func(stx storage.Tx) error {
		t := stx.(*tx)
		q := `SELECT ` + userCols + ` FROM users r WHERE r.id = ?` + t.s.d.LockRows
		if !lookupable(p.Request.UserID) {
			return identityErr(wrapOp("request roles", storage.ErrNotFound))
		}
		rows, err := t.query(ctx, q, p.Request.UserID)
		cur, err := oneUser(t.s, "request roles", rows, err)
		if err != nil {
			return err
		}
		out, err = t.putRequest(ctx, cur, p)
		return err
	})
	return out, err
}

// putRequest stores p's request for account cur (as stored in this
// transaction), its alert and its audit record.
func (t *tx) putRequest(ctx context.Context, cur identity.User, p Pending) (identity.Request, error) {
	const op = "request roles"
	r := p.Request
	r.UserID = cur.ID
	r.BaseRoles = append([]identity.Role(nil), cur.Roles...)
	r.Roles = append([]identity.Role(nil), r.Roles...)
	if p.Audit == nil {
		return identity.Request{}, errors.New(op + ": no audit record")
	}
	for _, f := range []struct{ name, v string }{{"id", r.ID}, {"requested by", r.RequestedBy}, {"alert id", p.Alert.ID}} {
		if err := validText(op+": "+f.name, f.v); err != nil {
			return identity.Request{}, err
		}
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
	if _, err := t.exec(ctx, `DELETE FROM access_requests WHERE kind = ? AND target = ? AND expires <= ?`,
		kindUserRoles, r.UserID, r.Created.UnixMicro()); err != nil {
		return identity.Request{}, t.s.translate(op, err)
	}
	const q = `INSERT INTO access_requests (id, kind, target, roles, base_roles, requested_by, created, expires)
VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`
	res, err := t.exec(ctx, q, r.ID, kindUserRoles, r.UserID, identity.FormatRoles(r.Roles), identity.FormatRoles(r.BaseRoles),
		r.RequestedBy, r.Created.UnixMicro(), r.Expires.UnixMicro())
	if err := affected(t, op, res, err); err != nil {
		if errors.Is(err, storage.ErrConflict) {
			return identity.Request{}, &kindError{kind: identity.ErrRequestPending, err: err}
		}
		return identity.Request{}, err
	}
	if err := t.putAlert(ctx, p.Alert); err != nil {
		return identity.Request{}, err
	}
	rec, err := p.Audit(r, cur)
	if err != nil {
		return identity.Request{}, err
	}
	return r, t.AppendAudit(ctx, rec)
}

// RaiseAlert raises a in t, a transaction of this store, with the
// change it reports (for changes without their own store method, such
// as the offline CLI's break-glass token).
func RaiseAlert(ctx context.Context, t storage.Tx, a authz.Alert) error {
	tt, ok := t.(*tx)
	if !ok {
		return errors.New("raise alert: not a sqldb transaction")
	}
	return tt.putAlert(ctx, a)
}

// putAlert raises a (with the authz_alerts table of the break-the-glass
// desk, so the privacy officer sees it with the others).
func (t *tx) putAlert(ctx context.Context, a authz.Alert) error {
	for _, f := range []struct{ name, v string }{{"id", a.ID}, {"kind", a.Kind}, {"priority", a.Priority}, {"user", a.UserID}} {
		if err := validText("raise alert: "+f.name, f.v); err != nil {
			return err
		}
	}
	if _, err := t.exec(ctx, `INSERT INTO authz_alerts (id, kind, priority, user_id, patient, ref, created) VALUES (?, ?, ?, ?, ?, ?, ?)`,
		a.ID, a.Kind, a.Priority, a.UserID, a.Patient, a.Ref, a.Created.UnixMicro()); err != nil {
		return t.s.translate("raise alert", err)
	}
	return nil
}

// DecideRequest approves or rejects request id, in one transaction:
// reading the request and the account with their rows locked on
// PostgreSQL, so two administrators deciding at once cannot both act.
// An approval replaces the account's roles by the requested ones,
// revokes its sessions (the new roles apply from the next sign-in),
// deletes the request, raises d.Alert and appends the audit record; a
// rejection deletes the request and appends the audit record. It
// returns the request and the account as stored after the decision.
//
// Errors: identity.ErrNotFound for no such request (decided already),
// identity.ErrSelf when d.By made the request or is its account,
// identity.ErrRequestStale for an approval of an expired request or of
// an account whose roles are no longer the request's BaseRoles,
// identity.ErrInvalid, identity.ErrFHIRUserBound.
func (u *Users) DecideRequest(ctx context.Context, id string, d Decision) (identity.Request, identity.User, error) {
	if d.Audit == nil {
		return identity.Request{}, identity.User{}, errors.New("decide request: no audit record")
	}
	if !lookupable(id) {
		return identity.Request{}, identity.User{}, identityErr(wrapOp("decide request", storage.ErrNotFound))
	}
	var req identity.Request
	var out identity.User
	err := u.s.Update(ctx, func(stx storage.Tx) error {
		t := stx.(*tx)
		const op = "decide request"
		rows, err := t.query(ctx, `SELECT `+requestCols+` FROM access_requests r WHERE r.kind = ? AND r.id = ?`+t.s.d.LockRows, kindUserRoles, id)
		if req, err = oneRequest(t.s, op, rows, err); err != nil {
			return err
		}
		if err := req.MayDecide(d.By); d.Approve && err != nil {
			// Anyone may reject (the requester withdraws), nobody
			// approves their own request or their own grant.
			return err
		}
		rows, err = t.query(ctx, `SELECT `+userCols+` FROM users r WHERE r.id = ?`+t.s.d.LockRows, req.UserID)
		cur, err := oneUser(t.s, op, rows, err)
		if err != nil {
			return err
		}
		if d.Approve {
			at := d.Now
			if at.IsZero() {
				at = t.s.now()
			}
			if req.Expired(at) || identity.FormatRoles(cur.Roles) != identity.FormatRoles(req.BaseRoles) {
				return &kindError{kind: identity.ErrRequestStale, err: wrapOp(op, storage.ErrConflict)}
			}
			was := cur
			cur.Roles = append([]identity.Role(nil), req.Roles...)
			if err := cur.Validate(); err != nil {
				return err
			}
			cur.Updated = t.s.now().UTC().Truncate(time.Microsecond)
			if err := t.updateUser(ctx, op, was, cur); err != nil {
				return err
			}
			if _, err := t.exec(ctx, `UPDATE sessions SET revoked = ?, mac = NULL WHERE user_id = ? AND NOT revoked`, true, cur.ID); err != nil {
				return t.s.translate(op+": revoking sessions", err)
			}
			a := d.Alert
			a.UserID, a.Ref = cur.ID, "Request/"+req.ID
			if strings.HasPrefix(cur.FHIRUser, "Patient/") {
				a.Patient = cur.FHIRUser
			}
			if err := t.putAlert(ctx, a); err != nil {
				return err
			}
		}
		res, err := t.exec(ctx, `DELETE FROM access_requests WHERE kind = ? AND id = ?`, kindUserRoles, id)
		if err := affected(t, op, res, err); err != nil {
			return identityErr(err)
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
