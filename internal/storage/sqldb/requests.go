package sqldb

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/phivault/phivault/internal/authz"
	"github.com/phivault/phivault/internal/identity"
	"github.com/phivault/phivault/internal/storage"
)

// This file holds the two-person rule's pending role requests (table
// access_requests, migration 0019; ADR 0018): their reads, and the
// plain statements of account.Tx that package account's RequestRoles
// and Decide run in one transaction with the alert and audit record.

// kindUserRoles is the access_requests kind of a role change.
const kindUserRoles = "user-roles"

// maxRequestList bounds one listing of pending requests.
const maxRequestList = 500

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

// DeleteExpiredRoleRequests implements account.Tx.
func (t *tx) DeleteExpiredRoleRequests(ctx context.Context, op, userID string, at time.Time) error {
	if _, err := t.exec(ctx, `DELETE FROM access_requests WHERE kind = ? AND target = ? AND expires <= ?`,
		kindUserRoles, userID, at.UnixMicro()); err != nil {
		return t.s.translate(op, err)
	}
	return nil
}

// InsertRoleRequest implements account.Tx.
func (t *tx) InsertRoleRequest(ctx context.Context, op string, r identity.Request) error {
	for _, f := range []struct{ name, v string }{{"id", r.ID}, {"requested by", r.RequestedBy}} {
		if err := validText(op+": "+f.name, f.v); err != nil {
			return err
		}
	}
	const q = `INSERT INTO access_requests (id, kind, target, roles, base_roles, requested_by, created, expires)
VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`
	res, err := t.exec(ctx, q, r.ID, kindUserRoles, r.UserID, identity.FormatRoles(r.Roles), identity.FormatRoles(r.BaseRoles),
		r.RequestedBy, r.Created.UnixMicro(), r.Expires.UnixMicro())
	if err := affected(t, op, res, err); err != nil {
		if errors.Is(err, storage.ErrConflict) {
			return &kindError{kind: identity.ErrRequestPending, err: err}
		}
		return err
	}
	return nil
}

// LockRoleRequest implements account.Tx.
func (t *tx) LockRoleRequest(ctx context.Context, op, id string) (identity.Request, error) {
	if !lookupable(id) {
		return identity.Request{}, identityErr(wrapOp(op, storage.ErrNotFound))
	}
	rows, err := t.query(ctx, `SELECT `+requestCols+` FROM access_requests r WHERE r.kind = ? AND r.id = ?`+t.s.d.LockRows, kindUserRoles, id)
	return oneRequest(t.s, op, rows, err)
}

// DeleteRoleRequest implements account.Tx.
func (t *tx) DeleteRoleRequest(ctx context.Context, op, id string) error {
	res, err := t.exec(ctx, `DELETE FROM access_requests WHERE kind = ? AND id = ?`, kindUserRoles, id)
	return identityErr(affected(t, op, res, err))
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
