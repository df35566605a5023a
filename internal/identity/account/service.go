package account

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/phivault/phivault/internal/audit"
	"github.com/phivault/phivault/internal/authn"
	"github.com/phivault/phivault/internal/authn/password"
	"github.com/phivault/phivault/internal/authn/session"
	"github.com/phivault/phivault/internal/identity"
	"github.com/phivault/phivault/internal/storage"
)

// EnrolmentLifetime is how long an enrolment secret is valid: 24 hours,
// long enough to hand the secret over within a working day, short enough
// that a secret lost in a mailbox or a ticket dies quickly (NIST SP
// 800-63B §6.1.2.1 asks for short-lived activation secrets).
const EnrolmentLifetime = 24 * time.Hour

// EnrolmentPrefix marks enrolment secrets so secret scanners can find
// them and so they are never confused with API ("pvt_") or session
// ("pvs_") tokens.
const EnrolmentPrefix = "pve_"

// enrolmentBytes is 256 bits: like API tokens, nothing to brute-force,
// which is what makes a fast unsalted hash the right stored form.
const enrolmentBytes = 32

// maxSecretLen bounds what is hashed from untrusted input.
const maxSecretLen = 128

// ErrEnrolmentRefused means the enrolment secret is unknown, expired,
// used, or not the named user's, or the account is disabled. Which one
// is not said: show the message as is, the same way every time.
var ErrEnrolmentRefused = errors.New("the enrolment secret is not valid: it may be wrong, expired or already used")

// Service is the account administration service: the security-admin
// surface (CLI, /admin/api and the web console) and password enrolment.
// It is safe for concurrent use. Build one with [NewService] (the composition
// root's app.App.Accounts does); keep it for the life of the server,
// since its Hasher bounds the argon2id work in flight.
type Service struct {
	users    Users
	sessions session.Store   // Sessions lists
	revoke   session.Updater // RevokeSession's unit of work
	appender audit.Appender  // refusals, recorded outside any change
	uow      Store           // the unit of work of account changes
	log      *audit.Log
	hasher   *password.Hasher
	// lookup keys the stored hashes of enrolment secrets (ADR 0022): a
	// database writer cannot insert one for a secret they chose.
	lookup authn.Hasher
	now    func() time.Time
	rand   io.Reader
}

// Users is what the service reads outside its changes: the directory,
// the owner of an enrolment secret and the pending role requests
// (sqldb.Users). Errors wrap the identity sentinels.
type Users interface {
	identity.Directory
	// EnrolmentUser returns the id of the user whose unexpired
	// enrolment secret hashes to hash (of kind) at now;
	// identity.ErrNotFound if there is none.
	EnrolmentUser(ctx context.Context, hash []byte, kind string, now time.Time) (string, error)
	// PendingRequests lists up to limit role requests unexpired at now,
	// oldest first.
	PendingRequests(ctx context.Context, now time.Time, limit int) ([]identity.Request, error)
	// RequestFor returns the role request for account userID unexpired
	// at now; identity.ErrNotFound if there is none.
	RequestFor(ctx context.Context, userID string, now time.Time) (identity.Request, error)
}

// Deps are the narrow dependencies of a [Service]. All are required but
// Now (nil: time.Now) and Rand (nil: crypto/rand).
type Deps struct {
	Users    Users
	Sessions session.Store   // the session store (Sessions lists)
	Revoke   session.Updater // the unit of work of audited session revocations
	Appender audit.Appender  // where refusals are recorded, outside any change
	Store    Store           // the unit of work of account changes (ADR 0024)
	Log      *audit.Log      // seals the audit records
	Hasher   *password.Hasher
	// Lookup keys the stored hashes of enrolment secrets (the auth-rows
	// key, ADR 0022).
	Lookup authn.Hasher
	Now    func() time.Time
	Rand   io.Reader
}

// NewService returns the account administration service over d.
func NewService(d Deps) *Service {
	x := &Service{users: d.Users, sessions: d.Sessions, revoke: d.Revoke, appender: d.Appender, uow: d.Store,
		log: d.Log, hasher: d.Hasher, lookup: d.Lookup, now: d.Now, rand: d.Rand}
	if x.now == nil {
		x.now = time.Now
	}
	if x.rand == nil {
		x.rand = rand.Reader
	}
	return x
}

// lookupEnrolment is the lookup-hash kind of enrolment secrets.
const lookupEnrolment = "enrolment"

// WithClock returns a copy of x that reads the time from now: tests use
// it to expire enrolment secrets.
func (x *Service) WithClock(now func() time.Time) *Service {
	y := *x
	y.now = now
	return &y
}

// Directory returns the read capability over accounts.
func (x *Service) Directory() identity.Directory { return x.users }

// Add creates an account without a password from the username, display
// name, roles and FHIR user of u (its other fields are ignored) and
// returns it with its one-time enrolment secret. Roles that need a
// second administrator (identity.Role.NeedsApproval) are not given yet:
// they become a pending request ([Service.PendingRequest]) with an
// alert, and the account holds the others (possibly none) meanwhile.
// Errors: identity.ErrInvalid (a *identity.FieldError naming the field),
// identity.ErrExists for a taken username, identity.ErrFHIRUserBound
// for a FHIR user bound to another enabled account.
func (x *Service) Add(ctx context.Context, actor audit.Agent, u identity.User) (identity.User, authn.Secret, error) {
	return x.add(ctx, actor, u, false)
}

// AddBreakGlass is Add outside the two-person rule: every role takes
// effect at once, with an alert for the privacy officer. It is the
// offline CLI's ("phivault user add --break-glass"): an operator with
// the key file and the data directory creates the first administrators.
func (x *Service) AddBreakGlass(ctx context.Context, actor audit.Agent, u identity.User) (identity.User, authn.Secret, error) {
	return x.add(ctx, actor, u, true)
}

func (x *Service) add(ctx context.Context, actor audit.Agent, u identity.User, breakGlass bool) (identity.User, authn.Secret, error) {
	if len(u.Roles) == 0 {
		return identity.User{}, "", &identity.FieldError{Field: "roles", Reason: "at least one role is required"}
	}
	id, err := identity.NewID(x.rand)
	if err != nil {
		return identity.User{}, "", err
	}
	roles := append([]identity.Role(nil), u.Roles...)
	nu := identity.User{ID: id, Username: u.Username, DisplayName: u.DisplayName, Roles: roles, FHIRUser: u.FHIRUser}
	secret, err := x.newSecret()
	if err != nil {
		return identity.User{}, "", err
	}
	c := New{Enrolment: &Enrolment{Hash: x.lookup.LookupHash(lookupEnrolment, secret.Reveal()), HashKind: storage.HashHMAC, Expires: x.now().Add(EnrolmentLifetime)}}
	now, pending := identity.Split(nil, roles)
	switch {
	case pending && breakGlass:
		if c.Alert, err = x.alert(alertBreakGlass, nu, "User/"+id); err != nil {
			return identity.User{}, "", err
		}
	case pending:
		nu.Roles = now
		if c.Request, err = x.pending(actor, nu, roles); err != nil {
			return identity.User{}, "", err
		}
	}
	out, err := Create(ctx, x.uow, nu, c, x.auditFn(actor, audit.ActionUserCreate, "roles="+identity.FormatRoles(nu.Roles)))
	if err != nil {
		return identity.User{}, "", fmt.Errorf("adding user: %w", err)
	}
	return out, secret, nil
}

// SetDisabled disables (and revokes every session of) or re-enables
// user id. Re-enabling an account bound to a FHIR user that another
// enabled account holds is refused. Nobody disables or enables their
// own account. Errors: identity.ErrNotFound, identity.ErrSelf,
// identity.ErrFHIRUserBound.
func (x *Service) SetDisabled(ctx context.Context, actor audit.Agent, id string, disabled bool) (identity.User, error) {
	c := Change{Op: "enable user", Change: func(u *identity.User) { u.Disabled = disabled },
		Audit: x.auditFn(actor, audit.ActionUserEnable)}
	if disabled {
		c.Op, c.RevokeSessions, c.Audit = "disable user", true, x.auditFn(actor, audit.ActionUserDisable)
	}
	if err := x.notSelf(ctx, actor, id, map[bool]audit.Action{true: audit.ActionUserDisable, false: audit.ActionUserEnable}[disabled]); err != nil {
		return identity.User{}, err
	}
	return x.apply(ctx, id, c)
}

// SetRoles changes the roles of user id to roles and revokes its
// sessions, so the change applies from the next login. Removed roles
// and added roles that need no approval take effect at once; if roles
// adds a role that needs a second administrator, the whole of roles
// becomes a pending request (with an alert) that takes effect only when
// approved ([Service.Approve]). Nobody changes their own roles.
// Errors: identity.ErrNotFound, identity.ErrInvalid, identity.ErrSelf,
// identity.ErrRequestPending.
func (x *Service) SetRoles(ctx context.Context, actor audit.Agent, id string, roles []identity.Role) (identity.User, error) {
	return x.setRoles(ctx, actor, id, roles, false)
}

// SetRolesBreakGlass is SetRoles outside the two-person rule, for the
// offline CLI: every role takes effect at once, with an alert.
func (x *Service) SetRolesBreakGlass(ctx context.Context, actor audit.Agent, id string, roles []identity.Role) (identity.User, error) {
	return x.setRoles(ctx, actor, id, roles, true)
}

func (x *Service) setRoles(ctx context.Context, actor audit.Agent, id string, roles []identity.Role, breakGlass bool) (identity.User, error) {
	if len(roles) == 0 {
		return identity.User{}, &identity.FieldError{Field: "roles", Reason: "at least one role is required (disable the account to remove every access)"}
	}
	if err := x.notSelf(ctx, actor, id, audit.ActionUserSetRoles); err != nil {
		return identity.User{}, err
	}
	target := append([]identity.Role(nil), roles...)
	c := Change{Op: "set roles", RevokeIfRolesChanged: true}
	if breakGlass {
		cur, err := x.users.ByID(ctx, id)
		if err != nil {
			return identity.User{}, fmt.Errorf("set roles: %w", err)
		}
		if _, pending := identity.Split(cur.Roles, target); pending {
			if c.Alert, err = x.alert(alertBreakGlass, cur, "User/"+cur.ID); err != nil {
				return identity.User{}, err
			}
		}
		c.Change = func(u *identity.User) { u.Roles = target }
	} else {
		// Split on the account as stored, in the transaction: a
		// concurrent change cannot turn a request into a grant.
		c.Change = func(u *identity.User) { u.Roles, _ = identity.Split(u.Roles, target) }
		reqID, err := identity.NewRequestID(x.rand)
		if err != nil {
			return identity.User{}, err
		}
		alertID, err := x.newAlertID()
		if err != nil {
			return identity.User{}, err
		}
		c.Request = func(u identity.User) *Pending {
			if identity.FormatRoles(u.Roles) == identity.FormatRoles(target) {
				return nil
			}
			return x.pendingAs(reqID, alertID, actor, u, target)
		}
	}
	c.Audit = func(u identity.User) (storage.AuditRecord, error) {
		return x.auditFn(actor, audit.ActionUserSetRoles, "roles="+identity.FormatRoles(u.Roles))(u)
	}
	return x.apply(ctx, id, c)
}

// ResetMFA deletes every second factor of user id (TOTP, recovery codes,
// WebAuthn credentials), marks MFA not enrolled and revokes its
// sessions. The password is kept: the user enrols a second factor again
// at the next login. Nobody resets their own second factor here (that
// would let a stolen session replace it). Errors: identity.ErrNotFound,
// identity.ErrSelf.
func (x *Service) ResetMFA(ctx context.Context, actor audit.Agent, id string) (identity.User, error) {
	if err := x.notSelf(ctx, actor, id, audit.ActionUserResetMFA); err != nil {
		return identity.User{}, err
	}
	return x.apply(ctx, id, Change{Op: "reset mfa", Change: func(u *identity.User) { u.MFAEnrolled = false },
		ClearMFA: true, RevokeSessions: true, Audit: x.auditFn(actor, audit.ActionUserResetMFA)})
}

// Enrol sets the password of username with its enrolment secret. The
// secret is checked first (a cheap lookup by hash, no KDF run), so
// nothing about the account is revealed to someone without it: every
// failure of the secret, an unknown user and a disabled account are
// [ErrEnrolmentRefused]. Only then is the password checked against the
// policy (password.ErrTooShort, ErrCommon... whose messages are safe to
// show) before the secret is used up, so a refused password does not
// burn it. On success the secret is deleted, the argon2id hash stored
// and the user's sessions revoked, with the audit event, in one
// transaction. password.ErrBusy means the hasher is saturated (503).
func (x *Service) Enrol(ctx context.Context, actor audit.Agent, username, secret, pw string) (identity.User, error) {
	now := x.now()
	refused := func() (identity.User, error) {
		x.appendDenied(ctx, actor, audit.ActionUserSetPassword)
		return identity.User{}, ErrEnrolmentRefused
	}
	if len(secret) > maxSecretLen || !strings.HasPrefix(secret, EnrolmentPrefix) {
		return refused()
	}
	// A keyed hash (ADR 0022); a secret issued before keeps its plain
	// SHA-256 under the row MAC the upgrade gave it.
	hash, kind := x.lookup.LookupHash(lookupEnrolment, secret), storage.HashHMAC
	id, err := x.users.EnrolmentUser(ctx, hash, kind, now)
	if errors.Is(err, identity.ErrNotFound) {
		hash, kind = authn.HashToken(secret), storage.HashSHA256
		id, err = x.users.EnrolmentUser(ctx, hash, kind, now)
	}
	if errors.Is(err, identity.ErrNotFound) {
		return refused()
	}
	if err != nil {
		return identity.User{}, fmt.Errorf("enrolment: %w", err)
	}
	u, err := x.users.ByID(ctx, id)
	if errors.Is(err, identity.ErrNotFound) {
		return refused()
	}
	if err != nil {
		return identity.User{}, fmt.Errorf("enrolment: %w", err)
	}
	if u.Username != username || u.Disabled {
		return refused()
	}
	if err := password.Check(pw, u.Username, u.DisplayName); err != nil {
		return identity.User{}, err
	}
	phc, err := x.hasher.Hash(ctx, pw)
	if err != nil {
		return identity.User{}, fmt.Errorf("enrolment: %w", err)
	}
	out, err := x.apply(ctx, id, Change{Op: "set password", Change: func(u *identity.User) { u.PasswordHash = phc },
		ConsumeEnrolment: hash, EnrolmentKind: kind, EnrolmentNow: now, RevokeSessions: true,
		Audit: x.auditFn(actor, audit.ActionUserSetPassword)})
	if errors.Is(err, identity.ErrNotFound) {
		// Used or expired between the lookup and the transaction.
		return refused()
	}
	return out, err
}

// Sessions lists the active sessions of user id, newest first, at most
// session.MaxListed; never their tokens (only hashes are stored).
// Errors: identity.ErrNotFound for an unknown user.
func (x *Service) Sessions(ctx context.Context, id string) ([]session.Session, error) {
	if _, err := x.users.ByID(ctx, id); err != nil {
		return nil, fmt.Errorf("list sessions: %w", err)
	}
	m, err := session.NewManager(x.sessions, session.Options{Now: x.now})
	if err != nil {
		return nil, err
	}
	return m.ListForUser(ctx, id)
}

// RevokeSession ends session id of any user, with its audit event
// (session-revoke, actor as the agent, "Session/<id>" and "User/<owner>"
// as entities) in the same transaction. Errors: session.ErrNotFound for
// an unknown or already revoked session.
func (x *Service) RevokeSession(ctx context.Context, actor audit.Agent, id string) error {
	_, err := session.RevokeAudited(ctx, x.revoke, id, func(owner string) (storage.AuditRecord, error) {
		return x.log.Seal(audit.Event{Time: x.now(), Action: audit.ActionSessionRevoke, Outcome: audit.OutcomeSuccess,
			Agent: actor, Entities: []string{"Session/" + id, "User/" + owner}})
	})
	if err != nil {
		return fmt.Errorf("revoke session: %w", err)
	}
	return nil
}

// RevokeSessions ends every session of user id, with its audit event
// (session-revoke, entity "User/<id>"), in one transaction. Errors:
// identity.ErrNotFound.
func (x *Service) RevokeSessions(ctx context.Context, actor audit.Agent, id string) error {
	_, err := x.apply(ctx, id, Change{Op: "revoke sessions", RevokeSessions: true,
		Audit: x.auditFn(actor, audit.ActionSessionRevoke)})
	return err
}

// Denied records an administration request refused before any change
// (no permission, a malformed request), for the audit trail (STYLE rule
// 28). An error means the record could not be made durable: fail the
// request with 503.
func (x *Service) Denied(ctx context.Context, actor audit.Agent, entity string) error {
	ev := audit.Event{Time: x.now(), Action: audit.ActionUserAdmin, Outcome: audit.OutcomeDenied, Agent: actor}
	if entity != "" {
		ev.Entities = []string{entity}
	}
	return x.append(ctx, ev)
}

func (x *Service) apply(ctx context.Context, id string, c Change) (identity.User, error) {
	u, err := Apply(ctx, x.uow, id, c)
	if err != nil {
		return identity.User{}, fmt.Errorf("%s: %w", c.Op, err)
	}
	return u, nil
}

// auditFn returns the audit record builder for a successful change by
// actor: the action, the agent, "User/<id>" as the entity and policies.
func (x *Service) auditFn(actor audit.Agent, act audit.Action, policies ...string) AuditFn {
	return func(u identity.User) (storage.AuditRecord, error) {
		return x.log.Seal(audit.Event{Time: x.now(), Action: act, Outcome: audit.OutcomeSuccess,
			Agent: actor, Entities: []string{"User/" + u.ID}, Policies: policies})
	}
}

// appendDenied records a refused enrolment. Failing to record it does
// not change the answer (the request is refused either way).
func (x *Service) appendDenied(ctx context.Context, actor audit.Agent, act audit.Action) {
	_ = x.append(ctx, audit.Event{Time: x.now(), Action: act, Outcome: audit.OutcomeDenied, Agent: actor})
}

func (x *Service) append(ctx context.Context, ev audit.Event) error {
	rec, err := x.log.Seal(ev)
	if err != nil {
		return err
	}
	if err := x.appender.AppendAudit(ctx, rec); err != nil {
		return fmt.Errorf("%w: %w", audit.ErrUnavailable, err)
	}
	return nil
}

func (x *Service) newSecret() (authn.Secret, error) {
	var b [enrolmentBytes]byte
	if _, err := io.ReadFull(x.rand, b[:]); err != nil {
		return "", fmt.Errorf("generating enrolment secret: %w", err)
	}
	return authn.Secret(EnrolmentPrefix + base64.RawURLEncoding.EncodeToString(b[:])), nil
}
