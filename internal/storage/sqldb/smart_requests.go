package sqldb

import (
	"context"
	"database/sql"
	"errors"
	"strings"
	"time"

	"github.com/phivault/phivault/internal/authn/smart"
	"github.com/phivault/phivault/internal/authz"
	"github.com/phivault/phivault/internal/storage"
)

// This file holds the approval requests of SMART clients (two-person
// rule, ADR 0020): rows of access_requests (migration 0019) of kind
// "smart-client", whose target is the client id (roles and base_roles
// are empty). A request commits with its alert and audit record, and an
// approval or rejection with the client's new approval state, its
// alert and its audit record. Decisions lock the request and the client
// rows, so two administrators deciding at once cannot both act.

// kindSmartClient is the access_requests kind of a client approval.
const kindSmartClient = "smart-client"

const clientRequestCols = `id, target, requested_by, created, expires`

func scanClientRequests(rows *sql.Rows) ([]smart.ClientRequest, error) {
	defer rows.Close()
	var out []smart.ClientRequest
	for rows.Next() {
		var r smart.ClientRequest
		var created, expires int64
		if err := rows.Scan(&r.ID, &r.ClientID, &r.RequestedBy, &created, &expires); err != nil {
			return nil, err
		}
		r.Created, r.Expires = fromMicros(created), fromMicros(expires)
		out = append(out, r)
	}
	return out, rows.Err()
}

// ClientRequests returns up to limit (1..500) client approval requests
// that have not expired at now, oldest first.
func (ss *Smart) ClientRequests(ctx context.Context, now time.Time, limit int) ([]smart.ClientRequest, error) {
	if limit < 1 || limit > maxRequestList {
		limit = maxRequestList
	}
	const q = `SELECT ` + clientRequestCols + ` FROM access_requests WHERE kind = ? AND expires > ? ORDER BY created, id LIMIT ?`
	rows, err := ss.s.r().query(ctx, q, kindSmartClient, now.UnixMicro(), int64(limit))
	if err != nil {
		return nil, ss.s.translate("client requests", err)
	}
	rs, err := scanClientRequests(rows)
	return rs, ss.s.translate("client requests", err)
}

// ClientRequest returns client approval request id (expired or not), or
// an error wrapping smart.ErrNotFound.
func (ss *Smart) ClientRequest(ctx context.Context, id string) (smart.ClientRequest, error) {
	if !lookupable(id) {
		return smart.ClientRequest{}, smartErr(wrapOp("client request", storage.ErrNotFound))
	}
	rows, err := ss.s.r().query(ctx, `SELECT `+clientRequestCols+` FROM access_requests WHERE kind = ? AND id = ?`, kindSmartClient, id)
	return oneClientRequest(ss.s, "client request", rows, err)
}

func oneClientRequest(s *Store, op string, rows *sql.Rows, err error) (smart.ClientRequest, error) {
	if err != nil {
		return smart.ClientRequest{}, s.translate(op, err)
	}
	rs, err := scanClientRequests(rows)
	if err != nil {
		return smart.ClientRequest{}, s.translate(op, err)
	}
	if len(rs) == 0 {
		return smart.ClientRequest{}, smartErr(wrapOp(op, storage.ErrNotFound))
	}
	return rs[0], nil
}

// putClientRequest stores p's request for client c (as stored in this
// transaction), its alert and its audit record. An expired request for
// the client gives way to the new one; a live one is
// smart.ErrApprovalPending.
func (t *tx) putClientRequest(ctx context.Context, c smart.Client, p ClientPending) error {
	const op = "request client approval"
	r := p.Request
	for _, f := range []struct{ name, v string }{{"id", r.ID}, {"requested by", r.RequestedBy}, {"alert id", p.Alert.ID}} {
		if err := validText(op+": "+f.name, f.v); err != nil {
			return err
		}
	}
	switch {
	case r.ClientID != c.ID:
		return errors.New(op + ": the request names another client")
	case !strings.HasPrefix(r.ID, smart.ClientRequestPrefix):
		return errors.New(op + ": the request id is not a client request id")
	case !r.Created.Before(r.Expires):
		return errors.New(op + ": the request expires before it is made")
	}
	if _, err := t.exec(ctx, `DELETE FROM access_requests WHERE kind = ? AND target = ? AND expires <= ?`,
		kindSmartClient, c.ID, r.Created.UnixMicro()); err != nil {
		return t.s.translate(op, err)
	}
	const q = `INSERT INTO access_requests (id, kind, target, roles, base_roles, requested_by, created, expires)
VALUES (?, ?, ?, '', '', ?, ?, ?) ON CONFLICT DO NOTHING`
	res, err := t.exec(ctx, q, r.ID, kindSmartClient, c.ID, r.RequestedBy, r.Created.UnixMicro(), r.Expires.UnixMicro())
	if err := affected(t, op, res, err); err != nil {
		if errors.Is(err, storage.ErrConflict) {
			return &kindError{kind: smart.ErrApprovalPending, err: err}
		}
		return err
	}
	if err := t.putAlert(ctx, p.Alert); err != nil {
		return err
	}
	return t.AppendAudit(ctx, p.Audit)
}

// lockedClient reads client id in t, its row locked on PostgreSQL.
func (t *tx) lockedClient(ctx context.Context, op, id string) (smart.Client, error) {
	if !lookupable(id) {
		return smart.Client{}, smartErr(wrapOp(op, storage.ErrNotFound))
	}
	rows, err := t.query(ctx, `SELECT `+clientCols+`, r.mac FROM smart_clients r WHERE r.id = ?`+t.s.d.LockRows, id)
	return oneClient(t.s, op, rows, err)
}

// RequestClientApproval stores p (a new approval request for the
// pending client p.Request.ClientID), its alert and its audit record,
// in one transaction. Errors: smart.ErrNotFound for an unknown client,
// smart.ErrNotPending for a client that does not wait for approval,
// smart.ErrApprovalPending if a request for it is pending already.
func (ss *Smart) RequestClientApproval(ctx context.Context, p ClientPending) (smart.ClientRequest, error) {
	err := ss.s.Update(ctx, func(stx storage.Tx) error {
		t := stx.(*tx)
		c, err := t.lockedClient(ctx, "request client approval", p.Request.ClientID)
		if err != nil {
			return err
		}
		if c.Approval != smart.ApprovalPending {
			return &kindError{kind: smart.ErrNotPending, err: wrapOp("request client approval", storage.ErrConflict)}
		}
		return t.putClientRequest(ctx, c, p)
	})
	if err != nil {
		return smart.ClientRequest{}, smartErr(err)
	}
	return p.Request, nil
}

// ClientDecision is a security administrator's answer to a client
// approval request.
type ClientDecision struct {
	Approve bool
	By      string    // the deciding administrator's account id
	Now     time.Time // the caller's clock, for the request's expiry
	// Alert is raised with an approval (ignored for a rejection); its
	// Ref is set by the store to the client.
	Alert authz.Alert
	// Audit builds the decision's audit record from the request and the
	// client as stored after the decision (required). It runs inside
	// the transaction, may run more than once and has no side effect.
	Audit func(smart.ClientRequest, smart.Client) (storage.AuditRecord, error)
}

// DecideClientRequest approves or rejects client request id, in one
// transaction that reads the request and the client with their rows
// locked on PostgreSQL. An approval makes the client
// smart.ApprovalApproved (ApprovedBy d.By) and raises d.Alert; a
// rejection (or the requester's withdrawal) makes a pending client
// smart.ApprovalRejected. Either deletes the request and appends the
// audit record. It returns the request and the client as stored after
// the decision.
//
// Errors: smart.ErrNotFound for no such request (decided already),
// smart.ErrSelfApproval when d.By registered the client or requested
// the approval, smart.ErrApprovalStale for an approval of an expired
// request or of a client that no longer waits for approval.
func (ss *Smart) DecideClientRequest(ctx context.Context, id string, d ClientDecision) (smart.ClientRequest, smart.Client, error) {
	const op = "decide client request"
	if d.Audit == nil {
		return smart.ClientRequest{}, smart.Client{}, errors.New(op + ": no audit record")
	}
	if !lookupable(id) {
		return smart.ClientRequest{}, smart.Client{}, smartErr(wrapOp(op, storage.ErrNotFound))
	}
	var req smart.ClientRequest
	var out smart.Client
	err := ss.s.Update(ctx, func(stx storage.Tx) error {
		t := stx.(*tx)
		rows, err := t.query(ctx, `SELECT `+clientRequestCols+` FROM access_requests r WHERE r.kind = ? AND r.id = ?`+t.s.d.LockRows, kindSmartClient, id)
		if req, err = oneClientRequest(t.s, op, rows, err); err != nil {
			return err
		}
		c, err := t.lockedClient(ctx, op, req.ClientID)
		if err != nil {
			return err
		}
		if d.Approve {
			// Anyone may reject (the requester withdraws); nobody
			// approves a client they registered or asked approval for.
			if err := req.MayApprove(d.By, c); err != nil {
				return err
			}
			at := d.Now
			if at.IsZero() {
				at = t.s.now()
			}
			if req.Expired(at) || c.Approval != smart.ApprovalPending {
				return &kindError{kind: smart.ErrApprovalStale, err: wrapOp(op, storage.ErrConflict)}
			}
			if err := validText(op+": approver", d.By); err != nil {
				return err
			}
			res, err := t.exec(ctx, `UPDATE smart_clients SET approval = ?, approved_by = ? WHERE id = ? AND approval = ?`,
				string(smart.ApprovalApproved), d.By, c.ID, string(smart.ApprovalPending))
			if err := affected(t, op, res, err); err != nil {
				return err
			}
			if err := t.remacClient(ctx, op, c.ID); err != nil { // read and verified above, locked
				return err
			}
			c.Approval, c.ApprovedBy = smart.ApprovalApproved, d.By
			a := d.Alert
			a.Ref = "Client/" + c.ID
			if err := t.putAlert(ctx, a); err != nil {
				return err
			}
		} else if c.Approval == smart.ApprovalPending {
			if _, err := t.exec(ctx, `UPDATE smart_clients SET approval = ? WHERE id = ? AND approval = ?`,
				string(smart.ApprovalRejected), c.ID, string(smart.ApprovalPending)); err != nil {
				return t.s.translate(op, err)
			}
			if err := t.remacClient(ctx, op, c.ID); err != nil { // read and verified above, locked
				return err
			}
			c.Approval = smart.ApprovalRejected
		}
		res, err := t.exec(ctx, `DELETE FROM access_requests WHERE kind = ? AND id = ?`, kindSmartClient, id)
		if err := affected(t, op, res, err); err != nil {
			return err
		}
		rec, err := d.Audit(req, c)
		if err != nil {
			return err
		}
		out = c
		return t.AppendAudit(ctx, rec)
	})
	if err != nil {
		return smart.ClientRequest{}, smart.Client{}, smartErr(err)
	}
	return req, out, nil
}
