package smart

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/phivault/phivault/internal/audit"
	"github.com/phivault/phivault/internal/authz"
	"github.com/phivault/phivault/internal/identity"
	"github.com/phivault/phivault/internal/storage"
)

// SMART client administration under the two-person rule (ADR 0020,
// extending ADR 0018 to clients; pentest finding F2).
//
// A client whose grants can reach patient data ([Client.NeedsApproval]:
// every App Launch app, every backend client but a read-only
// terminology feed) is registered [ApprovalPending], together with
// an approval request (client-grant-request, alert
// "client-grant-requested"), and obtains no token at any endpoint. A
// second security administrator, signed in with a second factor (never
// an API token), and neither the registrar nor the requester, approves
// it (client-grant-approve, alert "client-grant-approved") or rejects
// it (client-grant-reject); the requester may withdraw it, which
// rejects it too. Requests expire after [ClientRequestTTL]; a
// pending client whose request expired may be put up again
// ([Admin.RequestApproval]). Disabling is final and there is no
// path that changes a client's scopes, keys or redirect URIs, so an
// approval covers everything a client can ever do.
//
// The offline CLI registers outside the rule only with --break-glass
// ([Admin.RegisterBackendBreakGlass], [Admin.RegisterAppBreakGlass]),
// which raises "client-grant-break-glass".

// Alert kinds of client administration, listed with the break-the-glass
// alerts at /admin/api/alerts.
const (
	alertClientRequested  = "client-grant-requested"   // a client that reaches PHI awaits approval
	alertClientApproved   = "client-grant-approved"    // a second administrator approved it
	alertClientBreakGlass = "client-grant-break-glass" // the offline CLI registered it outside the rule
)

// policySoD marks the audit events of refusals by the rule, as account
// administration's do.
const policySoD = "separation-of-duties"

// Admin is SMART client administration for the web console, the
// admin API's approvals and the offline CLI: list, register, approve,
// reject and disable, each change committed with its audit event
// (entity "Client/<id>") in one transaction. Disabling also stops the
// client's issued tokens, which are checked against the client on every
// use. Safe for concurrent use. It is a separate type from [Server]:
// the authorization server never administers clients.
type Admin struct {
	clients  AdminStore
	uow      AdminUpdater   // the unit of work of client administration
	appender audit.Appender // refusals, recorded outside any change
	log      *audit.Log
	now      func() time.Time
	rand     io.Reader // request and alert ids; nil: crypto/rand
}

// AdminStore is what client administration reads outside its changes
// (sqldb.Smart): clients and their approval requests.
type AdminStore interface {
	ClientStore
	// Clients lists up to limit clients, newest first.
	Clients(ctx context.Context, limit int) ([]Client, error)
	// ClientRequests lists up to limit approval requests unexpired at
	// now, oldest first.
	ClientRequests(ctx context.Context, now time.Time, limit int) ([]ClientRequest, error)
}

// AdminOptions are the narrow dependencies of an [Admin]. All are
// required but Now (nil: time.Now).
type AdminOptions struct {
	Clients  AdminStore
	Tx       AdminUpdater   // the unit of work of client administration (ADR 0024)
	Appender audit.Appender // where refusals are recorded, outside any change
	Log      *audit.Log     // seals the audit records
	Now      func() time.Time
}

// NewAdmin returns client administration over o.
func NewAdmin(o AdminOptions) *Admin {
	c := &Admin{clients: o.Clients, uow: o.Tx, appender: o.Appender, log: o.Log, now: o.Now}
	if c.now == nil {
		c.now = time.Now
	}
	return c
}

// WithClock returns a copy of c that reads the time from now: tests use
// it to expire requests.
func (c *Admin) WithClock(now func() time.Time) *Admin {
	d := *c
	d.now = now
	return &d
}

// List lists up to limit clients, newest first.
func (c *Admin) List(ctx context.Context, limit int) ([]Client, error) {
	return c.clients.Clients(ctx, limit)
}

// Client returns client id (ErrNotFound).
func (c *Admin) Client(ctx context.Context, id string) (Client, error) {
	return c.clients.Client(ctx, id)
}

// Requests lists the client approval requests that have not expired,
// oldest first (at most 500), each with its client.
func (c *Admin) Requests(ctx context.Context) ([]PendingClient, error) {
	rs, err := c.clients.ClientRequests(ctx, c.now(), 500)
	if err != nil {
		return nil, err
	}
	out := make([]PendingClient, 0, len(rs))
	for _, r := range rs {
		cl, err := c.clients.Client(ctx, r.ClientID)
		if errors.Is(err, ErrNotFound) {
			// The client row failed its MAC (the store raised the
			// integrity alarm, ADR 0022): nothing to approve, and one
			// tampered row must not hide every other request.
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("client of request %s: %w", r.ID, err)
		}
		out = append(out, PendingClient{Request: r, Client: cl})
	}
	return out, nil
}

func (c *Admin) newAlertID() (string, error) {
	return authz.NewAlertID(c.rand)
}

// by is who an alert names for actor: the account, or the client ("cli").
func by(actor audit.Agent) string {
	if actor.User != "" {
		return actor.User
	}
	return actor.Client
}

// registry is the registry of actor's registrations: pending with a
// request when the client needs approval, or break glass.
func (c *Admin) registry(actor audit.Agent, breakGlass bool) (*Registry, error) {
	approval := ApprovalPending
	if breakGlass {
		approval = ApprovalBreakGlass
	}
	st := AuditedClients{ClientStore: c.clients, Tx: c.uow, Seal: func(cl Client) (storage.AuditRecord, error) {
		return c.log.Seal(audit.Event{Time: c.now(), Action: audit.ActionClientRegister, Outcome: audit.OutcomeSuccess,
			Agent: actor, Entities: []string{"Client/" + cl.ID},
			Policies: registrationPolicies(cl)})
	}, Alert: func(cl Client) *authz.Alert {
		if cl.Approval != ApprovalBreakGlass {
			return nil // a pending client's alert comes with its request
		}
		id, err := c.newAlertID()
		if err != nil {
			id = "alr_client_" + cl.ID // ids only need to be unique
		}
		return &authz.Alert{ID: id, Kind: alertClientBreakGlass, Priority: "high", UserID: by(actor),
			Ref: "Client/" + cl.ID, Created: c.now().UTC()}
	}, Pending: func(cl Client) (ClientPending, error) {
		return c.pending(actor, cl.ID)
	}}
	return NewRegistry(st, RegistryOptions{Now: c.now, Approval: approval, RegisteredBy: by(actor)})
}

// pending builds actor's request to approve client id, with its alert
// and audit record. The requester must be an administrator's account.
func (c *Admin) pending(actor audit.Agent, id string) (ClientPending, error) {
	if actor.User == "" {
		return ClientPending{}, ErrRequester
	}
	reqID, err := NewClientRequestID(c.rand)
	if err != nil {
		return ClientPending{}, err
	}
	alertID, err := c.newAlertID()
	if err != nil {
		return ClientPending{}, err
	}
	now := c.now().UTC()
	req := ClientRequest{ID: reqID, ClientID: id, RequestedBy: actor.User, Created: now, Expires: now.Add(ClientRequestTTL)}
	rec, err := c.log.Seal(audit.Event{Time: now, Action: audit.ActionClientGrantRequest, Outcome: audit.OutcomeSuccess, Agent: actor,
		Entities: []string{"Client/" + id, "Request/" + reqID}, Policies: []string{"requested-by=" + actor.User, "two-person-rule"}})
	if err != nil {
		return ClientPending{}, err
	}
	return ClientPending{Request: req, Audit: rec, Alert: authz.Alert{ID: alertID, Kind: alertClientRequested, Priority: "high",
		UserID: actor.User, Ref: "Client/" + id, Created: now}}, nil
}

// RegisterBackend registers a Backend Services client (Registry's
// validation and errors), audited. A client that needs approval is
// registered pending, with its approval request by actor, who must be
// an administrator's account (ErrRequester otherwise).
func (c *Admin) RegisterBackend(ctx context.Context, actor audit.Agent, reg BackendRegistration) (string, error) {
	r, err := c.registry(actor, false)
	if err != nil {
		return "", err
	}
	return r.RegisterBackend(ctx, reg)
}

// RegisterApp registers an App Launch client (public or confidential),
// audited, pending with its approval request as RegisterBackend.
func (c *Admin) RegisterApp(ctx context.Context, actor audit.Agent, reg AppRegistration) (string, error) {
	r, err := c.registry(actor, false)
	if err != nil {
		return "", err
	}
	return r.RegisterApp(ctx, reg)
}

// RegisterBackendBreakGlass is RegisterBackend outside the two-person
// rule: a client that needs approval is usable at once
// (ApprovalBreakGlass), with a "client-grant-break-glass" alert.
// It is the offline CLI's ("phivault client add --break-glass"): an
// operator who holds the key file and the data directory.
func (c *Admin) RegisterBackendBreakGlass(ctx context.Context, actor audit.Agent, reg BackendRegistration) (string, error) {
	r, err := c.registry(actor, true)
	if err != nil {
		return "", err
	}
	return r.RegisterBackend(ctx, reg)
}

// RegisterAppBreakGlass is RegisterApp outside the two-person rule, for
// the offline CLI, with an alert.
func (c *Admin) RegisterAppBreakGlass(ctx context.Context, actor audit.Agent, reg AppRegistration) (string, error) {
	r, err := c.registry(actor, true)
	if err != nil {
		return "", err
	}
	return r.RegisterApp(ctx, reg)
}

// RequestApproval puts pending client id up for approval again (its
// request expired), as actor. Errors: ErrNotFound,
// ErrNotPending, ErrApprovalPending, ErrRequester.
func (c *Admin) RequestApproval(ctx context.Context, actor audit.Agent, id string) (ClientRequest, error) {
	p, err := c.pending(actor, id)
	if err != nil {
		return ClientRequest{}, err
	}
	r, err := RequestClientApproval(ctx, c.uow, p)
	if err != nil {
		return ClientRequest{}, fmt.Errorf("request client approval: %w", err)
	}
	return r, nil
}

// requestAudit builds the audit record of a decision on a request.
func (c *Admin) requestAudit(actor audit.Agent, act audit.Action) func(ClientRequest, Client) (storage.AuditRecord, error) {
	return func(r ClientRequest, cl Client) (storage.AuditRecord, error) {
		return c.log.Seal(audit.Event{Time: c.now(), Action: act, Outcome: audit.OutcomeSuccess, Agent: actor,
			Entities: []string{"Client/" + cl.ID, "Request/" + r.ID},
			Policies: []string{"requested-by=" + r.RequestedBy, "approval=" + string(cl.Approval), "two-person-rule"}})
	}
}

// refuse audits a refused decision (OutcomeDenied) and returns why, or
// the audit failure (the caller answers 503).
func (c *Admin) refuse(ctx context.Context, actor audit.Agent, act audit.Action, why error, id string, policies ...string) error {
	rec, err := c.log.Seal(audit.Event{Time: c.now(), Action: act, Outcome: audit.OutcomeDenied, Agent: actor,
		Entities: []string{"Request/" + id}, Policies: policies})
	if err != nil {
		return err
	}
	if err := c.appender.AppendAudit(ctx, rec); err != nil {
		return fmt.Errorf("%w: %w", audit.ErrUnavailable, err)
	}
	return why
}

// Approve approves client request id as actor, a second administrator:
// the client becomes usable, an alert is raised, all with the audit
// event (client-grant-approve), in one transaction. actor must be a
// session (a person; the caller checks the second factor), and neither
// the client's registrar nor the requester. Errors: ErrNotFound
// (no such request: decided already), identity.ErrApprover,
// ErrSelfApproval, ErrApprovalStale (expired, or the client
// no longer waits). Every refusal is audited.
func (c *Admin) Approve(ctx context.Context, actor audit.Agent, id string) (Client, error) {
	if actor.Session == "" || actor.User == "" {
		return Client{}, c.refuse(ctx, actor, audit.ActionClientGrantApprove, identity.ErrApprover, id, policySoD)
	}
	alertID, err := c.newAlertID()
	if err != nil {
		return Client{}, err
	}
	now := c.now().UTC()
	_, cl, err := DecideClientRequest(ctx, c.uow, id, ClientDecision{Approve: true, By: actor.User, Now: now,
		Alert: authz.Alert{ID: alertID, Kind: alertClientApproved, Priority: "high", UserID: actor.User, Created: now},
		Audit: c.requestAudit(actor, audit.ActionClientGrantApprove)})
	switch {
	case errors.Is(err, ErrSelfApproval):
		return Client{}, c.refuse(ctx, actor, audit.ActionClientGrantApprove, ErrSelfApproval, id, policySoD)
	case errors.Is(err, ErrApprovalStale):
		return Client{}, c.refuse(ctx, actor, audit.ActionClientGrantApprove, ErrApprovalStale, id, "stale")
	case err != nil:
		return Client{}, fmt.Errorf("approve client: %w", err)
	}
	return cl, nil
}

// Reject rejects client request id as actor (the requester may
// withdraw their own request): the client can never obtain a token. The
// audit event (client-grant-reject) commits with it. Errors:
// ErrNotFound.
func (c *Admin) Reject(ctx context.Context, actor audit.Agent, id string) error {
	_, _, err := DecideClientRequest(ctx, c.uow, id, ClientDecision{By: actor.User, Now: c.now(),
		Audit: c.requestAudit(actor, audit.ActionClientGrantReject)})
	if err != nil {
		return fmt.Errorf("reject client: %w", err)
	}
	return nil
}

// Disable disables client id, audited. Errors wrap ErrNotFound.
func (c *Admin) Disable(ctx context.Context, actor audit.Agent, id string) error {
	rec, err := c.log.Seal(audit.Event{Time: c.now(), Action: audit.ActionClientDisable, Outcome: audit.OutcomeSuccess,
		Agent: actor, Entities: []string{"Client/" + id}})
	if err != nil {
		return err
	}
	if err := DisableClient(ctx, c.uow, id, rec); err != nil {
		return fmt.Errorf("disable client: %w", err)
	}
	return nil
}

// registrationPolicies are the Policies of a client-register event: its
// type, scopes, approval state and, when set, its purpose of use.
func registrationPolicies(cl Client) []string {
	ps := []string{"type=" + string(cl.Type), "scopes=" + cl.Scopes.String(), "approval=" + string(cl.Approval)}
	if cl.Purpose != "" {
		ps = append(ps, "purpose="+cl.Purpose)
	}
	return ps
}
