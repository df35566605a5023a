package account

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/phivault/phivault/internal/audit"
	"github.com/phivault/phivault/internal/authn"
	"github.com/phivault/phivault/internal/authz"
	"github.com/phivault/phivault/internal/identity"
	"github.com/phivault/phivault/internal/storage"
)

// API tokens are the service accounts of integrations: a name, roles and
// a bearer secret ("pvt_", 256 bits, stored as its keyed lookup hash:
// authn.NewKeyedToken, ADR 0022). They are created by the offline CLI
// only; each creation commits with its audit event (token-create) in
// one transaction.

// TokenTx is the part of one write transaction that creating an API
// token uses: the token, its audit record and, for a grant outside the
// two-person rule, an alert for the privacy officer (the authz desk's
// alerts), on the store's unit of work (ADR 0024).
type TokenTx interface {
	AppendAudit(ctx context.Context, recs ...storage.AuditRecord) error
	RaiseAlert(ctx context.Context, a authz.Alert) error
	PutToken(ctx context.Context, t storage.APIToken) error
}

// TokenStore is the unit of work of token creation: Update runs fn in
// one transaction and commits it if fn returns nil, retrying fn after a
// lost race; an error from fn is returned unchanged.
// sqldb.NewUnit[account.TokenTx] implements it.
type TokenStore interface {
	Update(ctx context.Context, fn func(TokenTx) error) error
}

// Tokens creates API tokens. It is safe for concurrent use.
type Tokens struct {
	store TokenStore
	// lookup keys the stored hashes of token secrets (the auth-rows
	// key, ADR 0022).
	lookup authn.Hasher
	log    *audit.Log
	now    func() time.Time
}

// NewTokens returns token creation over st, with token secrets hashed
// by lookup and audit records sealed by log.
func NewTokens(st TokenStore, lookup authn.Hasher, log *audit.Log) *Tokens {
	return &Tokens{store: st, lookup: lookup, log: log, now: time.Now}
}

// alertTokenBreakGlass is the alert of an API token created offline
// with roles that need a second administrator's approval online.
const alertTokenBreakGlass = "token-break-glass"

// ErrTokenBreakGlass refuses an offline token whose roles need a
// second administrator's approval, without break glass.
var ErrTokenBreakGlass = errors.New("a token with these roles reaches patient data (or administers accounts), which needs a second security administrator's approval")

// Create creates an API token and returns its secret (show it once).
func (t *Tokens) Create(ctx context.Context, name string, roles []string) (authn.Secret, error) {
	secret, tok, err := authn.NewKeyedToken(t.lookup, name, roles, t.now())
	if err != nil {
		return "", err
	}
	err = t.store.Update(ctx, func(tx TokenTx) error {
		if err := tx.PutToken(ctx, tok); err != nil {
			return err
		}
		rec, err := t.log.Seal(audit.Event{Time: t.now(), Action: audit.ActionTokenCreate, Outcome: audit.OutcomeSuccess,
			Agent: audit.Agent{Client: "cli"}, Entities: []string{"token/" + tok.ID}})
		if err != nil {
			return err
		}
		return tx.AppendAudit(ctx, rec)
	})
	if err != nil {
		return "", fmt.Errorf("storing token: %w", err)
	}
	return secret, nil
}

// CreateOffline creates an API token for a service account with roles,
// from the offline CLI ("phivault token create"), as actor. A token
// whose roles need approval (identity.Role.NeedsApproval: they reach
// patient data, or make a security administrator) is a grant outside
// the two-person rule (ADR 0018, ADR 0020): it is refused
// ([ErrTokenBreakGlass]) unless breakGlass, and then audited
// (token-create with policy "break-glass") with a high
// "token-break-glass" alert for the privacy officer, in one
// transaction. The event names the roles. An unknown role is refused.
func (t *Tokens) CreateOffline(ctx context.Context, actor audit.Agent, name string, roles []string, breakGlass bool) (authn.Secret, error) {
	if len(roles) == 0 {
		return "", errors.New("create token: no role")
	}
	glass := false
	for _, r := range roles {
		role, err := identity.ParseRole(r)
		if err != nil {
			return "", fmt.Errorf("create token: %q: %w", r, err)
		}
		glass = glass || role.NeedsApproval()
	}
	if glass && !breakGlass {
		return "", ErrTokenBreakGlass
	}
	secret, tok, err := authn.NewKeyedToken(t.lookup, name, roles, t.now())
	if err != nil {
		return "", err
	}
	alertID, err := authz.NewAlertID(nil)
	if err != nil {
		return "", err
	}
	by := actor.User
	if by == "" {
		by = actor.Client
	}
	err = t.store.Update(ctx, func(tx TokenTx) error {
		if err := tx.PutToken(ctx, tok); err != nil {
			return err
		}
		policies := []string{"roles=" + strings.Join(roles, ",")}
		if glass {
			policies = append(policies, "break-glass")
		}
		rec, err := t.log.Seal(audit.Event{Time: t.now(), Action: audit.ActionTokenCreate, Outcome: audit.OutcomeSuccess,
			Agent: actor, Entities: []string{"token/" + tok.ID}, Policies: policies})
		if err != nil {
			return err
		}
		if !glass {
			return tx.AppendAudit(ctx, rec)
		}
		if err := tx.RaiseAlert(ctx, authz.Alert{ID: alertID, Kind: alertTokenBreakGlass, Priority: "high",
			UserID: by, Ref: "token/" + tok.ID, Created: t.now().UTC()}); err != nil {
			return err
		}
		return tx.AppendAudit(ctx, rec)
	})
	if err != nil {
		return "", fmt.Errorf("storing token: %w", err)
	}
	return secret, nil
}
