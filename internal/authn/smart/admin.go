package smart

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/phivault/phivault/internal/authz"
	"github.com/phivault/phivault/internal/storage"
)

// Client administration (the security administrators' console): audited
// registration, with its approval request when the client needs one
// (ADR 0020), the two-person rule's decisions, and audited disabling.
// Each change commits with its audit record and alert in one
// transaction of the store's unit of work (ADR 0024); the rules are
// here, the store's AdminTx runs plain statements.

// AdminTx is the part of one write transaction that client
// administration uses. Every method but AppendAudit and Now is one plain
// statement (or a read with its row check); errors wrap the storage
// sentinels. op names the operation in error text. It is not safe for
// concurrent use.
type AdminTx interface {
	// AppendAudit adds audit records in this transaction.
	AppendAudit(ctx context.Context, recs ...storage.AuditRecord) error
	// Now is the store's clock.
	Now() time.Time

	// InsertClient stores a new client; storage.ErrConflict if the id
	// is taken.
	InsertClient(ctx context.Context, c Client) error
	// LockClient reads client id with its row locked until commit (on
	// engines with several writers); storage.ErrNotFound if there is
	// none or its row does not authenticate.
	LockClient(ctx context.Context, op, id string) (Client, error)
	// DisableClient disables client id for good; storage.ErrNotFound if
	// there is none.
	DisableClient(ctx context.Context, op, id string) error
	// SetClientApproval moves client id (read by LockClient in this
	// transaction) from approval from to to, recording approvedBy when
	// not empty; storage.ErrConflict if its approval is not from.
	SetClientApproval(ctx context.Context, op, id string, from, to ClientApproval, approvedBy string) error

	// DeleteExpiredClientRequests deletes the client's approval
	// requests that expired at or before at.
	DeleteExpiredClientRequests(ctx context.Context, op, clientID string, at time.Time) error
	// InsertClientRequest stores r; ErrApprovalPending (and
	// storage.ErrConflict) if a request for the client exists.
	InsertClientRequest(ctx context.Context, op string, r ClientRequest) error
	// LockClientRequest reads approval request id (expired or not) with
	// its row locked until commit; storage.ErrNotFound if there is none.
	LockClientRequest(ctx context.Context, op, id string) (ClientRequest, error)
	// DeleteClientRequest deletes request id; storage.ErrConflict if
	// there was none.
	DeleteClientRequest(ctx context.Context, op, id string) error

	// RaiseAlert raises a for the privacy officer's desk.
	RaiseAlert(ctx context.Context, a authz.Alert) error
}

// AdminUpdater is the unit of work of client administration: Update
// runs fn in one transaction and commits it if fn returns nil, retrying
// fn after a lost race (fn must have no side effects outside tx); an
// error from fn is returned unchanged. sqldb.NewUnit[smart.AdminTx]
// implements it.
type AdminUpdater interface {
	Update(ctx context.Context, fn func(AdminTx) error) error
}

// ClientPending is the approval request made with a client registered
// ApprovalPending (or for one later): the request, the alert it raises
// and its own audit record.
type ClientPending struct {
	Request ClientRequest
	Alert   authz.Alert
	Audit   storage.AuditRecord
}

// ClientDecision is a security administrator's answer to a client
// approval request.
type ClientDecision struct {
	Approve bool
	By      string    // the deciding administrator's account id
	Now     time.Time // the caller's clock, for the request's expiry (zero: the store's)
	// Alert is raised with an approval (ignored for a rejection); its
	// Ref is set to the client.
	Alert authz.Alert
	// Audit builds the decision's audit record from the request and the
	// client as stored after the decision (required). It runs inside
	// the transaction, may run more than once and has no side effect.
	Audit func(ClientRequest, Client) (storage.AuditRecord, error)
}

// kindError adds a sentinel of this package to an error that already
// wraps a storage sentinel; its text is the wrapped error's.
type kindError struct {
	kind error
	err  error
}

func (e *kindError) Error() string   { return e.err.Error() }
func (e *kindError) Unwrap() []error { return []error{e.kind, e.err} }

// adminErr adds this package's sentinel to a storage one: ErrNotFound,
// ErrExists (for storage.ErrConflict).
func adminErr(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, storage.ErrNotFound):
		return &kindError{kind: ErrNotFound, err: err}
	case errors.Is(err, storage.ErrConflict):
		return &kindError{kind: ErrExists, err: err}
	}
	return err
}

// AuditedClients is a ClientStore (for a [Registry]) whose CreateClient
// commits the audit record made by Seal with the client, in one
// transaction, and, for a client registered ApprovalPending, the
// approval request made by Pending (refused without it: a pending client
// without a request would be a registration nobody is asked to decide).
type AuditedClients struct {
	ClientStore              // Client reads
	Tx          AdminUpdater // the unit of work the registration runs on
	Seal        func(c Client) (storage.AuditRecord, error)
	// Alert, if not nil, returns an alert to raise with the client, in
	// the same transaction (nil: none).
	Alert func(c Client) *authz.Alert
	// Pending returns the approval request of a pending client.
	Pending func(c Client) (ClientPending, error)
}

// CreateClient implements ClientStore with the audit record and, for a
// pending client, its approval request.
func (ac AuditedClients) CreateClient(ctx context.Context, c Client) error {
	rec, err := ac.Seal(c)
	if err != nil {
		return err
	}
	var p *ClientPending
	if c.Approval == ApprovalPending {
		if ac.Pending == nil {
			return errors.New("create client: a pending client needs its approval request")
		}
		x, err := ac.Pending(c)
		if err != nil {
			return err
		}
		p = &x
	}
	return adminErr(ac.Tx.Update(ctx, func(t AdminTx) error {
		if err := t.InsertClient(ctx, c); err != nil {
			return err
		}
		if ac.Alert != nil {
			if a := ac.Alert(c); a != nil {
				if err := t.RaiseAlert(ctx, *a); err != nil {
					return err
				}
			}
		}
		if err := t.AppendAudit(ctx, rec); err != nil {
			return err
		}
		if p != nil {
			return putClientRequest(ctx, t, c, *p)
		}
		return nil
	}))
}

// DisableClient disables client id with its audit record in one
// transaction. Errors wrap ErrNotFound for an unknown client. Disabling
// is final: no path enables a client again.
func DisableClient(ctx context.Context, st AdminUpdater, id string, rec storage.AuditRecord) error {
	return adminErr(st.Update(ctx, func(t AdminTx) error {
		if err := t.DisableClient(ctx, "disable client", id); err != nil {
			return err
		}
		return t.AppendAudit(ctx, rec)
	}))
}

// putClientRequest stores p's request for client c (as stored in this
// transaction), its alert and its audit record. An expired request for
// the client gives way to the new one; a live one is
// ErrApprovalPending.
func putClientRequest(ctx context.Context, t AdminTx, c Client, p ClientPending) error {
	const op = "request client approval"
	r := p.Request
	switch {
	case p.Alert.ID == "":
		return errors.New(op + ": alert id is empty")
	case r.ClientID != c.ID:
		return errors.New(op + ": the request names another client")
	case !strings.HasPrefix(r.ID, ClientRequestPrefix):
		return errors.New(op + ": the request id is not a client request id")
	case !r.Created.Before(r.Expires):
		return errors.New(op + ": the request expires before it is made")
	}
	if err := t.DeleteExpiredClientRequests(ctx, op, c.ID, r.Created); err != nil {
		return err
	}
	if err := t.InsertClientRequest(ctx, op, r); err != nil {
		return err
	}
	if err := t.RaiseAlert(ctx, p.Alert); err != nil {
		return err
	}
	return t.AppendAudit(ctx, p.Audit)
}

// RequestClientApproval stores p (a new approval request for the
// pending client p.Request.ClientID), its alert and its audit record,
// in one transaction. Errors: ErrNotFound for an unknown client,
// ErrNotPending for a client that does not wait for approval,
// ErrApprovalPending if a request for it is pending already.
func RequestClientApproval(ctx context.Context, st AdminUpdater, p ClientPending) (ClientRequest, error) {
	const op = "request client approval"
	err := st.Update(ctx, func(t AdminTx) error {
		c, err := t.LockClient(ctx, op, p.Request.ClientID)
		if err != nil {
			return err
		}
		if c.Approval != ApprovalPending {
			return &kindError{kind: ErrNotPending, err: fmt.Errorf("%s: %w", op, storage.ErrConflict)}
		}
		return putClientRequest(ctx, t, c, p)
	})
	if err != nil {
		return ClientRequest{}, adminErr(err)
	}
	return p.Request, nil
}

// DecideClientRequest approves or rejects client request id, in one
// transaction that reads the request and the client with their rows
// locked. An approval makes the client ApprovalApproved (ApprovedBy
// d.By) and raises d.Alert; a rejection (or the requester's withdrawal)
// makes a pending client ApprovalRejected. Either deletes the request
// and appends the audit record. It returns the request and the client
// as stored after the decision.
//
// Errors: ErrNotFound for no such request (decided already),
// ErrSelfApproval when d.By registered the client or requested the
// approval, ErrApprovalStale for an approval of an expired request or
// of a client that no longer waits for approval.
func DecideClientRequest(ctx context.Context, st AdminUpdater, id string, d ClientDecision) (ClientRequest, Client, error) {
	const op = "decide client request"
	if d.Audit == nil {
		return ClientRequest{}, Client{}, errors.New(op + ": no audit record")
	}
	var req ClientRequest
	var out Client
	err := st.Update(ctx, func(t AdminTx) error {
		var err error
		if req, err = t.LockClientRequest(ctx, op, id); err != nil {
			return err
		}
		c, err := t.LockClient(ctx, op, req.ClientID)
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
				at = t.Now()
			}
			if req.Expired(at) || c.Approval != ApprovalPending {
				return &kindError{kind: ErrApprovalStale, err: fmt.Errorf("%s: %w", op, storage.ErrConflict)}
			}
			if err := t.SetClientApproval(ctx, op, c.ID, ApprovalPending, ApprovalApproved, d.By); err != nil {
				return err
			}
			c.Approval, c.ApprovedBy = ApprovalApproved, d.By
			a := d.Alert
			a.Ref = "Client/" + c.ID
			if err := t.RaiseAlert(ctx, a); err != nil {
				return err
			}
		} else if c.Approval == ApprovalPending {
			if err := t.SetClientApproval(ctx, op, c.ID, ApprovalPending, ApprovalRejected, ""); err != nil {
				return err
			}
			c.Approval = ApprovalRejected
		}
		if err := t.DeleteClientRequest(ctx, op, id); err != nil {
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
		return ClientRequest{}, Client{}, adminErr(err)
	}
	return req, out, nil
}
