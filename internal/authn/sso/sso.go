package sso

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"slices"
	"strconv"
	"time"

	"github.com/phivault/phivault/internal/audit"
	"github.com/phivault/phivault/internal/authn/login"
	"github.com/phivault/phivault/internal/authn/oidc"
	"github.com/phivault/phivault/internal/identity"
	"github.com/phivault/phivault/internal/storage"
)

// Errors. Their text is safe to show; the HTTP layer maps them to
// statuses. Each refusal is audited before it is returned.
var (
	// ErrState: the callback has no flow cookie, an expired or forged
	// one, or a state that does not match it (CSRF, RFC 6749 §10.12).
	// Answer 400; the user starts again.
	ErrState = errors.New("the sign-in request is invalid or expired; start again")
	// ErrFailed: the IdP returned an error, or the code exchange or the
	// ID token check failed (the wrapped oidc error says which; log it,
	// do not show it). Answer 401.
	ErrFailed = errors.New("sign-in with the identity provider failed; start again")
	// ErrNoRole: none of the user's IdP groups maps to a phivault role.
	// Answer 403.
	ErrNoRole = errors.New("your account has no access to phivault; ask an administrator")
	// ErrRefused: the linked account is disabled, or there is none and
	// auto-provisioning is off. Answer 403.
	ErrRefused = errors.New("this account may not sign in to phivault; ask an administrator")
	// ErrAwaitingApproval: the IdP's groups map to roles that need a
	// second administrator's approval (two-person rule, ADR 0018), the
	// request is pending, and the account holds no role meanwhile.
	// Answer 403.
	ErrAwaitingApproval = errors.New("your access awaits a phivault security administrator's approval; sign in again once it is approved")
)

// flowPurpose binds sealed flows to this use.
const flowPurpose = "oidc-flow"

// maxUsernameTries bounds the suffixes tried for a new account's
// username ("name", "name-2" ... "name-20"), then one random suffix.
const maxUsernameTries = 20

// RP is the relying party ([oidc.RP]).
type RP interface {
	AuthURL(state, nonce, verifier string) string
	Exchange(ctx context.Context, code, verifier, expectedNonce string) (oidc.Identity, error)
}

// AuditFn builds the audit record of an account change from the user as
// stored; it runs inside the store's transaction and may run again.
type AuditFn = func(identity.User) (storage.AuditRecord, error)

// Accounts is the account side of SSO (sqldb.Users). Errors wrap the
// identity sentinels.
//
// DEVIATION from STYLE rule 14 (1–3 methods): link lookup, provisioning
// and the role update are one capability of one consumer.
type Accounts interface {
	// LinkedUser returns the account linked to (issuer, subject), or
	// identity.ErrNotFound.
	LinkedUser(ctx context.Context, issuer, subject string) (identity.User, error)
	// ByUsername returns the account named username, or identity.ErrNotFound.
	ByUsername(ctx context.Context, username string) (identity.User, error)
	// CreateLinked stores a new account linked to (issuer, subject) and
	// its audit record in one transaction; identity.ErrExists if the
	// username is taken or the identity is linked already.
	CreateLinked(ctx context.Context, u identity.User, issuer, subject string, audit AuditFn) (identity.User, error)
	// SetRolesAudited replaces the roles, revokes the account's sessions
	// and appends the audit record in one transaction.
	SetRolesAudited(ctx context.Context, id string, roles []identity.Role, audit AuditFn) (identity.User, error)
	// RequestRoles makes the IdP's request (two-person rule, ADR 0018)
	// that account id's roles become roles: the request (requested by
	// "sso"), its alert and the audit record from audit commit in one
	// transaction. A pending request of the IdP's for other roles is
	// replaced; one made by an administrator is left alone
	// (identity.ErrRequestPending).
	RequestRoles(ctx context.Context, id string, roles []identity.Role, audit RequestAuditFn) error
	// PendingRoles returns the roles of account id's pending request,
	// or nil when there is none.
	PendingRoles(ctx context.Context, id string) ([]identity.Role, error)
}

// RequestAuditFn builds the audit record of a role request from the
// request and the account; it runs inside the store's transaction.
type RequestAuditFn = func(identity.Request, identity.User) (storage.AuditRecord, error)

// Login is the interactive login ([login.Service]).
type Login interface {
	LoginExternal(ctx context.Context, u identity.User, x login.External, addr netip.Addr) (login.Result, error)
	FailExternal(ctx context.Context, userID string, x login.External, reason string, addr netip.Addr) error
}

// Keys seals the flow cookie ([keys.Keyring]).
type Keys interface {
	SealToken(purpose string, data []byte) (string, error)
	OpenToken(purpose, token string) ([]byte, error)
}

// Options configures a [Service]. Every field but NoAutoProvision, Now
// and Rand is required.
type Options struct {
	RP       RP
	Issuer   string // the configured issuer, for audit records of refusals before a token is verified
	Accounts Accounts
	Login    Login
	Keys     Keys
	Log      *audit.Log

	// NoAutoProvision refuses a verified identity that is not linked to
	// an account yet, instead of creating one (option oidc.auto_provision).
	NoAutoProvision bool
	Now             func() time.Time // default time.Now
	Rand            io.Reader        // flows and user ids; default crypto/rand
}

// Service runs SSO sign-ins. It is safe for concurrent use.
type Service struct {
	o Options
}

// New checks o and returns a Service. Errors name the Options field.
func New(o Options) (*Service, error) {
	switch {
	case o.RP == nil:
		return nil, errors.New("sso: new service: Options.RP is nil")
	case o.Issuer == "":
		return nil, errors.New("sso: new service: Options.Issuer is empty")
	case o.Accounts == nil:
		return nil, errors.New("sso: new service: Options.Accounts is nil")
	case o.Login == nil:
		return nil, errors.New("sso: new service: Options.Login is nil")
	case o.Keys == nil:
		return nil, errors.New("sso: new service: Options.Keys is nil")
	case o.Log == nil:
		return nil, errors.New("sso: new service: Options.Log is nil")
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Rand == nil {
		o.Rand = rand.Reader
	}
	return &Service{o: o}, nil
}

// sealedFlow is the content of the flow cookie.
type sealedFlow struct {
	State    string `json:"s"`
	Nonce    string `json:"n"`
	Verifier string `json:"v"`
	Expires  int64  `json:"e"` // unix seconds
}

// Start begins a sign-in: it returns the IdP authorization URL to
// redirect the browser to and the sealed flow to keep in the browser
// until the callback (a secret: never log it).
func (s *Service) Start() (authURL, flow string, err error) {
	f, err := oidc.NewFlow(s.o.Rand)
	if err != nil {
		return "", "", err
	}
	b, err := json.Marshal(sealedFlow{State: f.State, Nonce: f.Nonce, Verifier: f.Verifier,
		Expires: s.o.Now().Add(oidc.FlowTTL).Unix()})
	if err != nil {
		return "", "", fmt.Errorf("encoding oidc flow: %w", err)
	}
	sealed, err := s.o.Keys.SealToken(flowPurpose, b)
	if err != nil {
		return "", "", fmt.Errorf("sealing oidc flow: %w", err)
	}
	return s.o.RP.AuthURL(f.State, f.Nonce, f.Verifier), sealed, nil
}

// Callback is what the IdP's redirect and the browser bring back: all
// of it untrusted.
type Callback struct {
	Flow  string // the flow cookie ("" when absent)
	State string // the state query parameter
	Code  string // the code query parameter
	Error string // the error query parameter (RFC 6749 §4.1.2.1), "" if none
}

// Finish completes a sign-in from the IdP's callback (see the package
// doc). Errors: [ErrState], [ErrFailed] (wrapping the oidc error),
// [ErrNoRole], [ErrRefused], those of login.Service.LoginExternal, and
// audit or storage errors (answer 503).
func (s *Service) Finish(ctx context.Context, cb Callback, addr netip.Addr) (login.Result, error) {
	x := login.External{Issuer: s.o.Issuer}
	f, ok := s.openFlow(cb.Flow)
	if !ok || oidc.CheckState(cb.State, f.State) != nil {
		return login.Result{}, s.refuse(ctx, "", x, "state", addr, ErrState)
	}
	if cb.Error != "" {
		return login.Result{}, s.refuse(ctx, "", x, "idp-error", addr, ErrFailed)
	}
	id, err := s.o.RP.Exchange(ctx, cb.Code, f.Verifier, f.Nonce)
	if id.Issuer != "" {
		x = login.External{Issuer: id.Issuer, MFA: id.MFA, AMR: id.AMR, ACR: id.ACR}
	}
	if errors.Is(err, oidc.ErrNoRole) {
		var uid string
		if u, lerr := s.o.Accounts.LinkedUser(ctx, id.Issuer, id.Subject); lerr == nil {
			uid = u.ID
		}
		return login.Result{}, s.refuse(ctx, uid, x, "no-role", addr, fmt.Errorf("%w (%w)", ErrNoRole, err))
	}
	if err != nil {
		return login.Result{}, s.refuse(ctx, "", x, exchangeReason(err), addr, fmt.Errorf("%w (%w)", ErrFailed, err))
	}

	u, err := s.o.Accounts.LinkedUser(ctx, id.Issuer, id.Subject)
	switch {
	case errors.Is(err, identity.ErrNotFound) && s.o.NoAutoProvision:
		return login.Result{}, s.refuse(ctx, "", x, "not-provisioned", addr, ErrRefused)
	case errors.Is(err, identity.ErrNotFound):
		if u, err = s.provision(ctx, id, addr); err != nil {
			return login.Result{}, err
		}
	case err != nil:
		return login.Result{}, fmt.Errorf("sso: finding the linked account: %w", err)
	}
	if u.Disabled {
		return login.Result{}, s.refuse(ctx, u.ID, x, "disabled", addr, ErrRefused)
	}
	if u, err = s.syncRoles(ctx, u, id, addr); err != nil {
		return login.Result{}, err
	}
	if len(u.Roles) == 0 {
		return login.Result{}, s.refuse(ctx, u.ID, x, "awaiting-approval", addr, ErrAwaitingApproval)
	}
	res, err := s.o.Login.LoginExternal(ctx, u, x, addr)
	if errors.Is(err, login.ErrInvalidCredentials) {
		return login.Result{}, ErrRefused // disabled meanwhile; audited by LoginExternal
	}
	return res, err
}

// syncRoles brings u's roles to the IdP's mapped groups under the
// two-person rule (ADR 0018): roles the groups no longer map are removed
// at once, as are added roles that need no approval; if the groups add
// a role that needs a second administrator (identity.Role.NeedsApproval),
// the whole mapped set becomes a request by "sso" that a phivault
// security administrator approves, with an alert. The IdP's group
// mapping is thus never a way for an account to grant itself access to
// PHI, however its groups were changed.
func (s *Service) syncRoles(ctx context.Context, u identity.User, id oidc.Identity, addr netip.Addr) (identity.User, error) {
	if sameRoles(u.Roles, id.Roles) {
		return u, nil
	}
	now, pending := identity.Split(u.Roles, id.Roles)
	if !sameRoles(u.Roles, now) {
		var err error
		u, err = s.o.Accounts.SetRolesAudited(ctx, u.ID, now, s.auditFn(audit.ActionUserSetRoles, id.Issuer, addr, "roles="+identity.FormatRoles(now)))
		if err != nil {
			return identity.User{}, fmt.Errorf("sso: updating roles from the idp groups: %w", err)
		}
	}
	if !pending {
		return u, nil
	}
	asked, err := s.o.Accounts.PendingRoles(ctx, u.ID)
	if err != nil {
		return identity.User{}, fmt.Errorf("sso: reading the pending role request: %w", err)
	}
	if asked != nil && sameRoles(asked, id.Roles) {
		return u, nil // requested at an earlier sign-in
	}
	err = s.o.Accounts.RequestRoles(ctx, u.ID, id.Roles, s.requestAuditFn(id.Issuer, addr))
	if err != nil && !errors.Is(err, identity.ErrRequestPending) {
		return identity.User{}, fmt.Errorf("sso: requesting roles from the idp groups: %w", err)
	}
	return u, nil
}

// requestAuditFn builds the audit record of a role request by the IdP's
// group mapping: the account acts through the IdP (Agent.Client "sso").
func (s *Service) requestAuditFn(issuer string, addr netip.Addr) RequestAuditFn {
	return func(r identity.Request, u identity.User) (storage.AuditRecord, error) {
		ev := audit.Event{Time: s.o.Now().UTC(), Action: audit.ActionUserGrantRequest, Outcome: audit.OutcomeSuccess,
			Agent:    audit.Agent{User: u.ID, Client: "sso"},
			Entities: []string{"User/" + u.ID, "Request/" + r.ID},
			Policies: append(login.External{Issuer: issuer}.Policies(), "roles="+identity.FormatRoles(r.Roles), "requested-by=sso", "two-person-rule")}
		return s.seal(ev, addr)
	}
}

// refuse audits a refused sign-in and returns err, or the audit failure.
func (s *Service) refuse(ctx context.Context, userID string, x login.External, reason string, addr netip.Addr, err error) error {
	if aerr := s.o.Login.FailExternal(ctx, userID, x, reason, addr); aerr != nil {
		return aerr
	}
	return err
}

// exchangeReason names an exchange failure for the audit record.
func exchangeReason(err error) string {
	switch {
	case errors.Is(err, oidc.ErrNonce):
		return "nonce"
	case errors.Is(err, oidc.ErrInvalidToken):
		return "invalid-token"
	}
	return "exchange"
}

// openFlow opens the flow cookie (untrusted) and checks its expiry.
func (s *Service) openFlow(sealed string) (sealedFlow, bool) {
	if sealed == "" {
		return sealedFlow{}, false
	}
	b, err := s.o.Keys.OpenToken(flowPurpose, sealed)
	if err != nil || len(b) > 1024 {
		return sealedFlow{}, false
	}
	var f sealedFlow
	if err := json.Unmarshal(b, &f); err != nil || f.State == "" || f.Nonce == "" || f.Verifier == "" {
		return sealedFlow{}, false
	}
	if s.o.Now().Unix() >= f.Expires {
		return sealedFlow{}, false
	}
	return f, true
}

// provision creates the account of a first sign-in of id, linked to it,
// with a unique username derived from its preferred_username or e-mail.
func (s *Service) provision(ctx context.Context, id oidc.Identity, addr netip.Addr) (identity.User, error) {
	base := usernameBase(id.Username, id.Email)
	for i := 0; i <= maxUsernameTries; i++ {
		name := withSuffix(base, strconv.Itoa(i+1))
		switch {
		case i == 0:
			name = base
		case i == maxUsernameTries:
			var b [4]byte
			if _, err := io.ReadFull(s.o.Rand, b[:]); err != nil {
				return identity.User{}, fmt.Errorf("sso: provisioning: %w", err)
			}
			name = withSuffix(base, fmt.Sprintf("%x", b))
		}
		if _, err := s.o.Accounts.ByUsername(ctx, name); err == nil {
			continue
		} else if !errors.Is(err, identity.ErrNotFound) {
			return identity.User{}, fmt.Errorf("sso: provisioning: %w", err)
		}
		uid, err := identity.NewID(s.o.Rand)
		if err != nil {
			return identity.User{}, err
		}
		// Roles that need a second administrator are requested by the
		// caller (syncRoles), not given here.
		now, _ := identity.Split(nil, id.Roles)
		nu := identity.User{ID: uid, Username: name, Roles: now}
		u, err := s.o.Accounts.CreateLinked(ctx, nu, id.Issuer, id.Subject, s.auditFn(audit.ActionUserCreate, id.Issuer, addr, "auto-provision"))
		if err == nil {
			return u, nil
		}
		if !errors.Is(err, identity.ErrExists) {
			return identity.User{}, fmt.Errorf("sso: provisioning: %w", err)
		}
		// A concurrent first sign-in of the same identity may have won.
		if u, lerr := s.o.Accounts.LinkedUser(ctx, id.Issuer, id.Subject); lerr == nil {
			return u, nil
		}
	}
	return identity.User{}, errors.New("sso: provisioning: no free username")
}

// auditFn builds the audit record of an account change made by SSO:
// the account acts on itself through the IdP (Agent.Client "sso").
func (s *Service) auditFn(action audit.Action, issuer string, addr netip.Addr, policies ...string) AuditFn {
	return func(u identity.User) (storage.AuditRecord, error) {
		ev := audit.Event{Time: s.o.Now().UTC(), Action: action, Outcome: audit.OutcomeSuccess,
			Agent:    audit.Agent{User: u.ID, Client: "sso"},
			Entities: []string{"User/" + u.ID},
			Policies: append(login.External{Issuer: issuer}.Policies(), policies...)}
		return s.seal(ev, addr)
	}
}

// sameRoles reports whether a and b hold the same roles in any order.
func sameRoles(a, b []identity.Role) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}

// seal seals an SSO event, with the sign-in's address when known.
func (s *Service) seal(ev audit.Event, addr netip.Addr) (storage.AuditRecord, error) {
	if addr.IsValid() {
		ev.Agent.Address = addr.Unmap().WithZone("").String()
	}
	rec, err := s.o.Log.Seal(ev)
	if err != nil {
		return storage.AuditRecord{}, fmt.Errorf("%w: %w", audit.ErrUnavailable, err)
	}
	return rec, nil
}
