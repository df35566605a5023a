package account

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/phivault/phivault/internal/audit"
	"github.com/phivault/phivault/internal/authz"
	"github.com/phivault/phivault/internal/ident"
	"github.com/phivault/phivault/internal/identity"
	"github.com/phivault/phivault/internal/storage"
)

// Alert kinds raised by account administration, listed with the
// break-the-glass alerts at /admin/api/alerts.
const (
	alertRequested  = "role-grant-requested"   // a grant that reaches PHI awaits approval
	alertApproved   = "role-grant-approved"    // a second administrator approved it
	alertBreakGlass = "role-grant-break-glass" // the offline CLI granted it outside the rule
)

// policySoD marks the audit events of refusals by the rule.
const policySoD = "separation-of-duties"

// notSelf refuses (and audits as denied) a change by actor of its own
// account id.
func (x *Service) notSelf(ctx context.Context, actor audit.Agent, id string, act audit.Action) error {
	if actor.User == "" || actor.User != id {
		return nil
	}
	return x.refuse(ctx, actor, act, identity.ErrSelf, []string{"User/" + id}, policySoD)
}

// refuse audits a refused change (OutcomeDenied) and returns why, or
// the audit failure (the caller answers 503).
func (x *Service) refuse(ctx context.Context, actor audit.Agent, act audit.Action, why error, entities []string, policies ...string) error {
	ev := audit.Event{Time: x.now(), Action: act, Outcome: audit.OutcomeDenied, Agent: actor, Entities: entities, Policies: policies}
	if err := x.append(ctx, ev); err != nil {
		return err
	}
	return why
}

func (x *Service) newAlertID() (string, error) {
	return authz.NewAlertID(x.rand)
}

// patientOf is the Patient an account is bound to, for an alert's
// patient column ("" for a workforce account).
func patientOf(u identity.User) string {
	if strings.HasPrefix(u.FHIRUser, ident.PatientPrefix) {
		return u.FHIRUser
	}
	return ""
}

// alert builds a high-priority alert about account u.
func (x *Service) alert(kind string, u identity.User, ref string) (*authz.Alert, error) {
	id, err := x.newAlertID()
	if err != nil {
		return nil, err
	}
	return &authz.Alert{ID: id, Kind: kind, Priority: "high", UserID: u.ID, Patient: patientOf(u), Ref: ref, Created: x.now().UTC()}, nil
}

// pending builds the request by actor to give account u the roles
// target, with its alert and audit record.
func (x *Service) pending(actor audit.Agent, u identity.User, target []identity.Role) (*Pending, error) {
	reqID, err := identity.NewRequestID(x.rand)
	if err != nil {
		return nil, err
	}
	alertID, err := x.newAlertID()
	if err != nil {
		return nil, err
	}
	return x.pendingAs(reqID, alertID, actor, u, target), nil
}

// pendingAs is pending with the request and alert ids given.
func (x *Service) pendingAs(reqID, alertID string, actor audit.Agent, u identity.User, target []identity.Role) *Pending {
	now := x.now().UTC()
	req := identity.Request{ID: reqID, UserID: u.ID, Roles: target, RequestedBy: actor.User, Created: now, Expires: now.Add(identity.RequestTTL)}
	al := authz.Alert{ID: alertID, Kind: alertRequested, Priority: "high", UserID: u.ID, Patient: patientOf(u), Ref: "Request/" + reqID, Created: now}
	return &Pending{Request: req, Alert: al, Audit: x.requestAudit(actor, audit.ActionUserGrantRequest)}
}

// requestAudit builds the audit record of a step of a request.
func (x *Service) requestAudit(actor audit.Agent, act audit.Action) RequestAuditFn {
	return func(r identity.Request, u identity.User) (storage.AuditRecord, error) {
		return x.log.Seal(audit.Event{Time: x.now(), Action: act, Outcome: audit.OutcomeSuccess, Agent: actor,
			Entities: []string{"User/" + u.ID, "Request/" + r.ID},
			Policies: []string{"roles=" + identity.FormatRoles(r.Roles), "requested-by=" + r.RequestedBy, "two-person-rule"}})
	}
}

// Requests lists the pending role requests that have not expired,
// oldest first (at most 500).
func (x *Service) Requests(ctx context.Context) ([]identity.Request, error) {
	return x.users.PendingRequests(ctx, x.now(), 500)
}

// PendingRequest returns the pending request for account userID, and
// false when there is none (or it expired).
func (x *Service) PendingRequest(ctx context.Context, userID string) (identity.Request, bool, error) {
	r, err := x.users.RequestFor(ctx, userID, x.now())
	if errors.Is(err, identity.ErrNotFound) {
		return identity.Request{}, false, nil
	}
	if err != nil {
		return identity.Request{}, false, err
	}
	return r, true, nil
}

// Approve approves request id as actor, a second administrator: the
// account's roles become the requested ones, its sessions end, an
// alert is raised, all with the audit event (user-grant-approve), in
// one transaction. actor must be a session (a person with a second
// factor; the caller checks the factor), and neither the requester nor
// the account concerned. Errors: identity.ErrNotFound (no such request:
// decided already), identity.ErrApprover, identity.ErrSelf,
// identity.ErrRequestStale (expired, or the account's roles changed
// since), identity.ErrInvalid, identity.ErrFHIRUserBound. Every
// refusal is audited.
func (x *Service) Approve(ctx context.Context, actor audit.Agent, id string) (identity.User, error) {
	entities := []string{"Request/" + id}
	if actor.Session == "" || actor.User == "" {
		return identity.User{}, x.refuse(ctx, actor, audit.ActionUserGrantApprove, identity.ErrApprover, entities, policySoD)
	}
	alertID, err := x.newAlertID()
	if err != nil {
		return identity.User{}, err
	}
	now := x.now().UTC()
	_, u, err := Decide(ctx, x.uow, id, Decision{Approve: true, By: actor.User, Now: now,
		Alert: authz.Alert{ID: alertID, Kind: alertApproved, Priority: "high", Created: now},
		Audit: x.requestAudit(actor, audit.ActionUserGrantApprove)})
	switch {
	case errors.Is(err, identity.ErrSelf):
		return identity.User{}, x.refuse(ctx, actor, audit.ActionUserGrantApprove, identity.ErrSelf, entities, policySoD)
	case errors.Is(err, identity.ErrRequestStale):
		return identity.User{}, x.refuse(ctx, actor, audit.ActionUserGrantApprove, identity.ErrRequestStale, entities, "stale")
	case err != nil:
		return identity.User{}, fmt.Errorf("approve request: %w", err)
	}
	return u, nil
}

// Reject rejects request id as actor (the requester may withdraw their
// own request), with its audit event (user-grant-reject), in one
// transaction. Errors: identity.ErrNotFound.
func (x *Service) Reject(ctx context.Context, actor audit.Agent, id string) error {
	_, _, err := Decide(ctx, x.uow, id, Decision{By: actor.User, Now: x.now(),
		Audit: x.requestAudit(actor, audit.ActionUserGrantReject)})
	if err != nil {
		return fmt.Errorf("reject request: %w", err)
	}
	return nil
}
