package sqldb

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/phivault/phivault/internal/authn/smart"
	"github.com/phivault/phivault/internal/storage"
)

// This file holds the approval requests of SMART clients (two-person
// rule, ADR 0020): rows of access_requests (migration 0019) of kind
// "smart-client", whose target is the client id (roles and base_roles
// are empty): their reads, and the plain statements of smart.AdminTx
// with which package smart commits a request, or a decision, with its
// alert and audit record (ADR 0024). Decisions lock the request and the
// client rows, so two administrators deciding at once cannot both act.

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

// DeleteExpiredClientRequests implements smart.AdminTx.
func (t *tx) DeleteExpiredClientRequests(ctx context.Context, op, clientID string, at time.Time) error {
	if _, err := t.exec(ctx, `DELETE FROM access_requests WHERE kind = ? AND target = ? AND expires <= ?`,
		kindSmartClient, clientID, at.UnixMicro()); err != nil {
		return t.s.translate(op, err)
	}
	return nil
}

// InsertClientRequest implements smart.AdminTx.
func (t *tx) InsertClientRequest(ctx context.Context, op string, r smart.ClientRequest) error {
	for _, f := range []struct{ name, v string }{{"id", r.ID}, {"requested by", r.RequestedBy}} {
		if err := validText(op+": "+f.name, f.v); err != nil {
			return err
		}
	}
	const q = `INSERT INTO access_requests (id, kind, target, roles, base_roles, requested_by, created, expires)
VALUES (?, ?, ?, '', '', ?, ?, ?) ON CONFLICT DO NOTHING`
	res, err := t.exec(ctx, q, r.ID, kindSmartClient, r.ClientID, r.RequestedBy, r.Created.UnixMicro(), r.Expires.UnixMicro())
	if err := affected(t, op, res, err); err != nil {
		if errors.Is(err, storage.ErrConflict) {
			return &kindError{kind: smart.ErrApprovalPending, err: err}
		}
		return err
	}
	return nil
}

// LockClientRequest implements smart.AdminTx.
func (t *tx) LockClientRequest(ctx context.Context, op, id string) (smart.ClientRequest, error) {
	if !lookupable(id) {
		return smart.ClientRequest{}, smartErr(wrapOp(op, storage.ErrNotFound))
	}
	rows, err := t.query(ctx, `SELECT `+clientRequestCols+` FROM access_requests r WHERE r.kind = ? AND r.id = ?`+t.s.d.LockRows, kindSmartClient, id)
	return oneClientRequest(t.s, op, rows, err)
}

// DeleteClientRequest implements smart.AdminTx.
func (t *tx) DeleteClientRequest(ctx context.Context, op, id string) error {
	res, err := t.exec(ctx, `DELETE FROM access_requests WHERE kind = ? AND id = ?`, kindSmartClient, id)
	return affected(t, op, res, err)
}

// lockedClient reads client id in t, its row locked on PostgreSQL.
func (t *tx) lockedClient(ctx context.Context, op, id string) (smart.Client, error) {
	if !lookupable(id) {
		return smart.Client{}, smartErr(wrapOp(op, storage.ErrNotFound))
	}
	rows, err := t.query(ctx, `SELECT `+clientCols+`, r.mac FROM smart_clients r WHERE r.id = ?`+t.s.d.LockRows, id)
	return oneClient(t.s, op, rows, err)
}
