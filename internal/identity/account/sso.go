package account

import (
	"context"
	"errors"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/phivault/phivault/internal/audit"
	"github.com/phivault/phivault/internal/authz"
	"github.com/phivault/phivault/internal/identity"
	"github.com/phivault/phivault/internal/storage"
)

// storable reports whether s can be a stored key (as the store checks
// its lookups): 1 to 256 bytes of UTF-8 without NUL.
func storable(s string) bool {
	return s != "" && len(s) <= 256 && utf8.ValidString(s) && strings.IndexByte(s, 0) < 0
}

// CreateLinked stores nu, links it to the enterprise SSO identity
// (issuer, subject) and appends the audit record from audit, in one
// transaction (an account provisioned at its first SSO sign-in).
// Errors: identity.ErrInvalid (a *identity.FieldError) for an invalid
// user or identity; identity.ErrExists when the id or username is taken
// or the identity is already linked (a concurrent first login): the
// caller looks the link up again, then tries another username.
func CreateLinked(ctx context.Context, st Store, nu identity.User, issuer, subject string, audit AuditFn) (identity.User, error) {
	if audit == nil {
		return identity.User{}, errors.New("create sso user: no audit record")
	}
	if !storable(issuer) || !storable(subject) {
		return identity.User{}, &identity.FieldError{Field: "sso_link", Reason: "issuer and subject must be 1 to 256 bytes of UTF-8"}
	}
	nu.Roles = append([]identity.Role(nil), nu.Roles...)
	var out identity.User
	err := st.Update(ctx, func(t Tx) error {
		u := nu
		now := t.Now().UTC().Truncate(time.Microsecond)
		u.Created, u.Updated = now, now
		if err := u.Validate(); err != nil {
			return err
		}
		if err := t.InsertLinkedUser(ctx, u); err != nil {
			return err
		}
		if err := t.LinkSSO(ctx, issuer, subject, u.ID, now); err != nil {
			return err
		}
		rec, err := audit(u)
		if err != nil {
			return err
		}
		out = u
		return t.AppendAudit(ctx, rec)
	})
	if err != nil {
		return identity.User{}, err
	}
	return out, nil
}

// SSOUsers is what enterprise sign-in reads about accounts
// (sqldb.Users). Errors wrap the identity sentinels.
type SSOUsers interface {
	// LinkedUser returns the account linked to (issuer, subject), or
	// identity.ErrNotFound.
	LinkedUser(ctx context.Context, issuer, subject string) (identity.User, error)
	ByID(ctx context.Context, id string) (identity.User, error)
	ByUsername(ctx context.Context, username string) (identity.User, error)
	// RequestFor returns the role request for account userID unexpired
	// at now; identity.ErrNotFound if there is none.
	RequestFor(ctx context.Context, userID string, now time.Time) (identity.Request, error)
}

// SSOAccounts is the account side of SSO (sso.Accounts): the account
// reads with the IdP's role requests of the two-person rule (ADR 0018),
// its provisioning and its role updates, each on the unit of work. The
// audit builders are plain func types so that SSOAccounts implements
// sso.Accounts without this package importing sso.
type SSOAccounts struct {
	SSOUsers
	Store Store            // the unit of work of account changes
	Log   *audit.Log       // seals the audit record of a superseded request
	Now   func() time.Time // nil: time.Now
}

// ssoRequester is the RequestedBy of the IdP's role requests.
const ssoRequester = "sso"

func (x SSOAccounts) clock() time.Time {
	if x.Now == nil {
		return time.Now()
	}
	return x.Now()
}

// PendingRoles implements sso.Accounts.
func (x SSOAccounts) PendingRoles(ctx context.Context, id string) ([]identity.Role, error) {
	r, err := x.SSOUsers.RequestFor(ctx, id, x.clock())
	if errors.Is(err, identity.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return r.Roles, nil
}

// RequestRoles implements sso.Accounts.
func (x SSOAccounts) RequestRoles(ctx context.Context, id string, roles []identity.Role, auditFn func(identity.Request, identity.User) (storage.AuditRecord, error)) error {
	now := x.clock().UTC()
	if old, err := x.SSOUsers.RequestFor(ctx, id, now); err == nil && old.RequestedBy == ssoRequester {
		// The IdP's own earlier request, for other groups: superseded.
		_, _, err := Decide(ctx, x.Store, old.ID, Decision{By: ssoRequester, Now: now,
			Audit: func(r identity.Request, u identity.User) (storage.AuditRecord, error) {
				return x.Log.Seal(audit.Event{Time: now, Action: audit.ActionUserGrantReject, Outcome: audit.OutcomeSuccess,
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
	u, err := x.SSOUsers.ByID(ctx, id)
	if err != nil {
		return err
	}
	p := Pending{
		Request: identity.Request{ID: reqID, UserID: id, Roles: roles, RequestedBy: ssoRequester, Created: now, Expires: now.Add(identity.RequestTTL)},
		Alert: authz.Alert{ID: "alr_" + strings.TrimPrefix(alertID, "rqs_"), Kind: alertRequested, Priority: "high", UserID: id,
			Patient: patientOf(u), Ref: "Request/" + reqID, Created: now},
		Audit: auditFn,
	}
	_, err = RequestRoles(ctx, x.Store, p)
	return err
}

// SetRolesAudited implements sso.Accounts: it replaces the roles of
// user id, revokes its sessions (as the admin set-roles does: a session
// never outlives the grant it was opened under) and appends the audit
// record, in one transaction. Errors are those of [Apply].
func (x SSOAccounts) SetRolesAudited(ctx context.Context, id string, roles []identity.Role, auditFn func(identity.User) (storage.AuditRecord, error)) (identity.User, error) {
	roles = append([]identity.Role(nil), roles...)
	return Apply(ctx, x.Store, id, Change{Op: "sso set roles", Change: func(u *identity.User) { u.Roles = roles },
		RevokeSessions: true, Audit: AuditFn(auditFn)})
}

// CreateLinked implements sso.Accounts: the account provisioned at a
// first SSO sign-in, its link and its audit record, in one transaction
// ([CreateLinked]).
func (x SSOAccounts) CreateLinked(ctx context.Context, u identity.User, issuer, subject string, auditFn func(identity.User) (storage.AuditRecord, error)) (identity.User, error) {
	return CreateLinked(ctx, x.Store, u, issuer, subject, AuditFn(auditFn))
}
