package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/phivault/phivault/internal/audit"
	"github.com/phivault/phivault/internal/authz"
	"github.com/phivault/phivault/internal/identity"
	"github.com/phivault/phivault/internal/identity/account"
	"github.com/phivault/phivault/internal/storage"

	"github.com/phivault/phivault/internal/authn/oidc"
	"github.com/phivault/phivault/internal/authn/sso"
	"github.com/phivault/phivault/internal/httpapi/signin"
	"github.com/phivault/phivault/internal/storage/sqldb"
)

// idpTimeout bounds every call to the OIDC IdP: a login waits at most
// this long for discovery, keys or the token endpoint (STYLE rule 29).
const idpTimeout = 10 * time.Second

// openSSO builds enterprise sign-in when the oidc section is enabled. A
// bad configuration refuses the start; an IdP that cannot be discovered
// only leaves SSO off (logged): local logins and the FHIR API must not
// depend on the IdP being up when phivault starts.
func (a *App) openSSO(ctx context.Context, oo openOptions) error {
	c := a.Config.OIDC
	if !c.On() {
		return nil
	}
	cfg, err := oidcConfig(*c)
	if err != nil {
		return fmt.Errorf("opening sso: %w", err)
	}
	client := oo.idp
	if client == nil {
		client = &http.Client{Timeout: idpTimeout}
	}
	rp, err := oidc.New(ctx, cfg, client, oo.now)
	if errors.Is(err, oidc.ErrDiscovery) {
		a.logger.ErrorContext(ctx, "enterprise sso disabled: the identity provider could not be discovered", slog.String("error", err.Error()))
		return nil
	}
	if err != nil {
		return fmt.Errorf("opening sso: %w", err)
	}
	sq := a.db
	accounts := ssoAccounts{Users: sq.Users(), uow: sqldb.NewUnit[account.Tx](sq), log: a.Log, now: oo.now}
	a.SSO, err = sso.New(sso.Options{RP: rp, Issuer: cfg.Issuer, Accounts: accounts, Login: a.Login, Keys: a.Keys,
		Log: a.Log, NoAutoProvision: !c.Provision(), Now: oo.now})
	if err != nil {
		return fmt.Errorf("opening sso: %w", err)
	}
	return nil
}

// ssoHandler is a.SSO for the HTTP layer: a nil interface when SSO is
// off (never a typed nil).
func (a *App) ssoHandler() signin.SSO {
	if a.SSO == nil {
		return nil
	}
	return a.SSO
}

// ssoAccounts is the account side of SSO: sqldb.Users with the IdP's
// role requests of the two-person rule (ADR 0018).
type ssoAccounts struct {
	*sqldb.Users
	uow account.Store // the unit of work of account changes
	log *audit.Log
	now func() time.Time // nil: time.Now
}

var _ sso.Accounts = ssoAccounts{}

// ssoRequester is the RequestedBy of the IdP's role requests.
const ssoRequester = "sso"

func (x ssoAccounts) clock() time.Time {
	if x.now == nil {
		return time.Now()
	}
	return x.now()
}

// PendingRoles implements sso.Accounts.
func (x ssoAccounts) PendingRoles(ctx context.Context, id string) ([]identity.Role, error) {
	r, err := x.Users.RequestFor(ctx, id, x.clock())
	if errors.Is(err, identity.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return r.Roles, nil
}

// RequestRoles implements sso.Accounts.
func (x ssoAccounts) RequestRoles(ctx context.Context, id string, roles []identity.Role, auditFn sso.RequestAuditFn) error {
	now := x.clock().UTC()
	if old, err := x.Users.RequestFor(ctx, id, now); err == nil && old.RequestedBy == ssoRequester {
		// The IdP's own earlier request, for other groups: superseded.
		_, _, err := account.Decide(ctx, x.uow, old.ID, account.Decision{By: ssoRequester, Now: now,
			Audit: func(r identity.Request, u identity.User) (storage.AuditRecord, error) {
				return x.log.Seal(audit.Event{Time: now, Action: audit.ActionUserGrantReject, Outcome: audit.OutcomeSuccess,
					Agent: audit.Agent{User: u.ID, Client: ssoRequester}, Entities: []string{"User/" + u.ID, "Request/" + r.ID},
					Policies: []string{"superseded-by-idp-groups", "two-person-rule"}})
			}})
		if err != nil && !errors.Is(err, identity.ErrNotFound) {
			return err
		}
	} else if err != nil && !errors.Is(err, identity.ErrNotFound) {
		return err
	}
	reqID, err := identity.NewRequestID(nil)
	if err != nil {
		return err
	}
	alertID, err := identity.NewRequestID(nil)
	if err != nil {
		return err
	}
	u, err := x.Users.ByID(ctx, id)
	if err != nil {
		return err
	}
	p := account.Pending{
		Request: identity.Request{ID: reqID, UserID: id, Roles: roles, RequestedBy: ssoRequester, Created: now, Expires: now.Add(identity.RequestTTL)},
		Alert: authz.Alert{ID: "alr_" + strings.TrimPrefix(alertID, "rqs_"), Kind: alertRequested, Priority: "high", UserID: id,
			Patient: patientOf(u), Ref: "Request/" + reqID, Created: now},
		Audit: auditFn,
	}
	_, err = account.RequestRoles(ctx, x.uow, p)
	return err
}

// SetRolesAudited implements sso.Accounts: it replaces the roles of
// user id, revokes its sessions (as the admin set-roles does: a session
// never outlives the grant it was opened under) and appends the audit
// record, in one transaction. Errors are those of account.Apply.
func (x ssoAccounts) SetRolesAudited(ctx context.Context, id string, roles []identity.Role, auditFn sso.AuditFn) (identity.User, error) {
	roles = append([]identity.Role(nil), roles...)
	return account.Apply(ctx, x.uow, id, account.Change{Op: "sso set roles", Change: func(u *identity.User) { u.Roles = roles },
		RevokeSessions: true, Audit: account.AuditFn(auditFn)})
}

// CreateLinked implements sso.Accounts: the account provisioned at a
// first SSO sign-in, its link and its audit record, in one transaction
// (account.CreateLinked).
func (x ssoAccounts) CreateLinked(ctx context.Context, u identity.User, issuer, subject string, auditFn sso.AuditFn) (identity.User, error) {
	return account.CreateLinked(ctx, x.uow, u, issuer, subject, account.AuditFn(auditFn))
}
