package sqldb

import (
	"context"
	"errors"

	"github.com/phivault/phivault/internal/authn/smart"
	"github.com/phivault/phivault/internal/authz"
	"github.com/phivault/phivault/internal/storage"
)

// Client administration for the web console: list, audited registration
// (with its approval request when the client needs one, ADR 0020) and
// audited disabling. Each change commits with its audit record.

// MaxClientList bounds one listing of clients.
const MaxClientList = 500

// Clients lists up to limit clients (1..MaxClientList), newest first.
func (ss *Smart) Clients(ctx context.Context, limit int) ([]smart.Client, error) {
	if limit < 1 || limit > MaxClientList {
		limit = MaxClientList
	}
	const q = `SELECT ` + clientCols + `, mac FROM smart_clients ORDER BY created DESC, id LIMIT ?`
	rows, err := ss.s.r().query(ctx, q, limit)
	if err != nil {
		return nil, ss.s.translate("list clients", err)
	}
	defer rows.Close()
	var out []smart.Client
	for rows.Next() {
		c, err := scanClient(ss.s, rows)
		if errors.Is(err, errTamperedClient) {
			continue // alarmed; to every caller it does not exist
		}
		if err != nil {
			return nil, ss.s.translate("list clients", err)
		}
		out = append(out, c)
	}
	return out, ss.s.translate("list clients", rows.Err())
}

// ClientPending is the approval request made with a client registered
// smart.ApprovalPending (or for one later): the request, the alert it
// raises and its own audit record.
type ClientPending struct {
	Request smart.ClientRequest
	Alert   authz.Alert
	Audit   storage.AuditRecord
}

// AuditedClients is a smart.ClientStore whose CreateClient commits the
// audit record made by Seal with the client, in one transaction, and,
// for a client registered smart.ApprovalPending, the approval request
// made by Pending (refused without it: a pending client without a
// request would be a registration nobody is asked to decide).
type AuditedClients struct {
	*Smart
	Seal func(c smart.Client) (storage.AuditRecord, error)
	// Alert, if not nil, returns an alert to raise with the client, in
	// the same transaction (nil: none).
	Alert func(c smart.Client) *authz.Alert
	// Pending returns the approval request of a pending client.
	Pending func(c smart.Client) (ClientPending, error)
}

// CreateClient implements smart.ClientStore with the audit record and,
// for a pending client, its approval request.
func (ac AuditedClients) CreateClient(ctx context.Context, c smart.Client) error {
	rec, err := ac.Seal(c)
	if err != nil {
		return err
	}
	var p *ClientPending
	if c.Approval == smart.ApprovalPending {
		if ac.Pending == nil {
			return errors.New("create client: a pending client needs its approval request")
		}
		x, err := ac.Pending(c)
		if err != nil {
			return err
		}
		p = &x
	}
	return smartErr(ac.s.Update(ctx, func(stx storage.Tx) error {
		t := stx.(*tx)
		if err := t.insertClient(ctx, c); err != nil {
			return err
		}
		if ac.Alert != nil {
			if a := ac.Alert(c); a != nil {
				if err := t.putAlert(ctx, *a); err != nil {
					return err
				}
			}
		}
		if err := stx.AppendAudit(ctx, rec); err != nil {
			return err
		}
		if p != nil {
			return t.putClientRequest(ctx, c, *p)
		}
		return nil
	}))
}

// DisableClientAudited disables client id with its audit record in one
// transaction. Errors wrap smart.ErrNotFound for an unknown client.
// Disabling is final: no path enables a client again.
func (ss *Smart) DisableClientAudited(ctx context.Context, id string, rec storage.AuditRecord) error {
	if !lookupable(id) {
		return smartErr(wrapOp("disable client", storage.ErrNotFound))
	}
	return smartErr(ss.s.Update(ctx, func(stx storage.Tx) error {
		t := stx.(*tx)
		// Disabling is final and grants nothing: the MAC goes, so a
		// client re-enabled in SQL never verifies (ADR 0022).
		res, err := t.exec(ctx, `UPDATE smart_clients SET disabled = ?, mac = NULL WHERE id = ?`, true, id)
		if err != nil {
			return t.s.translate("disable client", err)
		}
		n, err := res.RowsAffected()
		if err != nil {
			return t.s.translate("disable client", err)
		}
		if n == 0 {
			return wrapOp("disable client", storage.ErrNotFound)
		}
		return stx.AppendAudit(ctx, rec)
	}))
}
