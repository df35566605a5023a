package login

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/phivault/phivault/internal/audit"
	"github.com/phivault/phivault/internal/authn/passkey"
	"github.com/phivault/phivault/internal/authn/password"
	"github.com/phivault/phivault/internal/authn/session"
	"github.com/phivault/phivault/internal/identity"
	"github.com/phivault/phivault/internal/storage"
)

// Errors. Their text is safe to show; handlers map them to statuses.
var (
	// ErrInvalidCredentials: unknown user, wrong password, disabled or
	// locked account, all alike. Answer 401 with this message.
	ErrInvalidCredentials = errors.New("invalid username or password")
	// ErrRateLimited: too many attempts from the client's address. The
	// error is a *RateLimitError; answer 429 with Retry-After.
	ErrRateLimited = errors.New("too many login attempts; retry later")
	// ErrInvalidChallenge: the challenge is malformed, expired, for
	// another step, or the account changed or was disabled since. Answer
	// 401; the client starts again with the password.
	ErrInvalidChallenge = errors.New("the login challenge is invalid or expired; log in again")
	// ErrInvalidCode: a wrong, reused or malformed second-factor code, or
	// a locked account. Answer 401.
	ErrInvalidCode = errors.New("invalid code")
	// ErrNotFound: no such session of the caller. Answer 404.
	ErrNotFound = errors.New("no such session")
	// ErrWrongPassword: the current password given to change it is
	// wrong, or the account is locked out. Answer 401; the session stays
	// valid.
	ErrWrongPassword = errors.New("the current password is wrong")
	// ErrPasskeysDisabled: the server has no WebAuthn relying party
	// configured. Answer 404.
	ErrPasskeysDisabled = errors.New("passkeys are not enabled on this server")
	// ErrPasskeyNotFound: the caller has no passkey with that id. Answer
	// 404.
	ErrPasskeyNotFound = errors.New("no such passkey")
	// ErrLastFactor: removing this passkey would leave the account
	// without a second factor. Answer 409; an administrator's MFA reset
	// is the way to start over.
	ErrLastFactor = errors.New("this is the account's last second factor; add another before removing it")
	// ErrNeedsVerifiedSession: adding a passkey needs a session whose
	// second factor was verified. Answer 403.
	ErrNeedsVerifiedSession = errors.New("adding a passkey requires a session signed in with a second factor")
	// ErrHasSecondFactor: [Service.AddSecondFactor] for an account that
	// has a second factor already, or a session signed in with one.
	// Answer 409, or show the Security page.
	ErrHasSecondFactor = errors.New("the account has a second factor already")
)

// RateLimitError is an [ErrRateLimited] with the wait.
type RateLimitError struct{ RetryAfter time.Duration }

func (e *RateLimitError) Error() string { return ErrRateLimited.Error() }

// Unwrap makes errors.Is(err, ErrRateLimited) true.
func (e *RateLimitError) Unwrap() error { return ErrRateLimited }

// Keys is the slice of the keyring login uses ([keys.Keyring]).
type Keys interface {
	SealToken(purpose string, data []byte) (string, error)
	OpenToken(purpose, token string) ([]byte, error)
	BlindIndex(input string) ([]byte, error)
}

// Recorder makes one audit record durable ([audit.Batcher]).
type Recorder interface {
	Record(ctx context.Context, rec storage.AuditRecord) error
}

// DefaultIssuer names phivault in authenticator apps.
const DefaultIssuer = "phivault"

// Options configures a [Service]. Users, Store, Tx, Sessions, Keys,
// Log, Audit and Hasher are required; the rest has defaults.
type Options struct {
	Users identity.Directory
	Store Store
	// Tx is the store's unit of work, on which a sign-in's commit, TOTP
	// enrolment, session revocation and failure counting run with their
	// audit records (ADR 0024).
	Tx       Updater
	Sessions session.Store
	Keys     Keys
	Log      *audit.Log
	Audit    Recorder
	Hasher   *password.Hasher

	Lockout        password.Lockout       // zero value: the password package defaults
	AddressLimits  password.AddressLimits // zero value: the defaults; Now is set from Now when nil
	SessionOptions session.Options        // zero value: the defaults; Now is set from Now when nil
	Issuer         string                 // TOTP issuer; default DefaultIssuer
	// PatientMFA is the policy for patient accounts' second factor
	// (patientmfa.go); zero value: PatientMFAOptional.
	PatientMFA PatientMFA
	// Passkeys and RP enable WebAuthn (both or neither): the credential
	// store and the relying party. Without them the passkey methods
	// return ErrPasskeysDisabled.
	Passkeys PasskeyStore
	RP       *passkey.RP
	NewID    func() string    // passkey ids; default uuid.NewString
	Now      func() time.Time // default time.Now
	Rand     io.Reader        // TOTP secrets and recovery codes; default crypto/rand
	Logger   *slog.Logger     // default slog.Default(); never sees a secret
}

// Service runs logins. It is safe for concurrent use.
type Service struct {
	users    identity.Directory
	store    Store
	uow      Updater
	keys     Keys
	log      *audit.Log
	audit    Recorder
	hasher   *password.Hasher
	lockout  password.Lockout
	limiter  *password.AddressLimiter
	sessOpts session.Options
	sessions *session.Manager
	issuer   string
	// patientMFA: PatientMFAOptional or PatientMFARequired.
	patientMFA PatientMFA
	passkeys   PasskeyStore
	rp         *passkey.RP
	newID      func() string
	now        func() time.Time
	rand       io.Reader
	logger     *slog.Logger
}

// New validates o and returns a Service. Errors name the Options field.
func New(o Options) (*Service, error) {
	switch {
	case o.Users == nil:
		return nil, errors.New("login: new service: Options.Users is nil")
	case o.Store == nil:
		return nil, errors.New("login: new service: Options.Store is nil")
	case o.Tx == nil:
		return nil, errors.New("login: new service: Options.Tx is nil")
	case o.Sessions == nil:
		return nil, errors.New("login: new service: Options.Sessions is nil")
	case o.Keys == nil:
		return nil, errors.New("login: new service: Options.Keys is nil")
	case o.Log == nil || o.Audit == nil:
		return nil, errors.New("login: new service: Options.Log and Options.Audit are required")
	case o.Hasher == nil:
		return nil, errors.New("login: new service: Options.Hasher is nil")
	}
	if !o.PatientMFA.Valid() {
		return nil, fmt.Errorf("login: new service: Options.PatientMFA %q: want %q or %q", o.PatientMFA, PatientMFAOptional, PatientMFARequired)
	}
	if o.PatientMFA == "" {
		o.PatientMFA = PatientMFAOptional
	}
	if (o.Passkeys == nil) != (o.RP == nil) {
		return nil, errors.New("login: new service: Options.Passkeys and Options.RP go together")
	}
	if o.NewID == nil {
		o.NewID = uuid.NewString
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Issuer == "" {
		o.Issuer = DefaultIssuer
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.AddressLimits.Now == nil {
		o.AddressLimits.Now = o.Now
	}
	if o.SessionOptions.Now == nil {
		o.SessionOptions.Now = o.Now
	}
	m, err := session.NewManager(o.Sessions, o.SessionOptions)
	if err != nil {
		return nil, fmt.Errorf("login: new service: Options.SessionOptions: %w", err)
	}
	return &Service{
		users: o.Users, store: o.Store, uow: o.Tx, keys: o.Keys, log: o.Log, audit: o.Audit, hasher: o.Hasher,
		lockout: o.Lockout, limiter: password.NewAddressLimiter(o.AddressLimits),
		sessOpts: o.SessionOptions, sessions: m, issuer: o.Issuer, patientMFA: o.PatientMFA, passkeys: o.Passkeys, rp: o.RP, newID: o.NewID, now: o.Now, rand: o.Rand, logger: o.Logger,
	}, nil
}

// Started is a new session: the token to set as the cookie (once), the
// CSRF token the client sends with state-changing requests, and the
// stored session.
type Started struct {
	Secret  session.Secret
	CSRF    string
	Session session.Session
}

// Result is the outcome of a correct password: either a session
// (accounts without a workforce role) or a challenge for the second
// factor. EnrollmentRequired says the challenge allows only enrolment.
type Result struct {
	Session            *Started
	MFARequired        bool
	EnrollmentRequired bool
	Challenge          string
	// Methods are the second factors the challenge accepts: for an
	// enrolment, the factors that can be enrolled (MethodTOTP, and
	// MethodWebAuthn when passkeys are enabled); otherwise the enrolled
	// ones (MethodTOTP when a TOTP secret is stored, MethodWebAuthn when
	// a passkey is, and always MethodRecovery).
	Methods []string
}

// unknownUser is the audit agent for a login name with no account: the
// name as typed is never recorded (it may be a mistyped password).
const unknownUser = "unknown"

// loginKey is the lockout row key of a login name: a keyed hash, so the
// table reveals no typed names.
func (s *Service) loginKey(username string) ([]byte, error) {
	k, err := s.keys.BlindIndex("login-account\x00" + username)
	if err != nil {
		return nil, fmt.Errorf("computing login key: %w", err)
	}
	return k, nil
}

// normalise maps a typed login name to the stored form (usernames are
// lower-case ASCII by construction).
func normalise(username string) string {
	return strings.ToLower(strings.TrimSpace(username))
}

// checkAddress applies the per-address rate limit, auditing a refusal.
func (s *Service) checkAddress(ctx context.Context, action audit.Action, user string, addr netip.Addr) error {
	ok, wait := s.limiter.Allow(addr)
	if ok {
		return nil
	}
	if err := s.record(ctx, s.event(action, audit.OutcomeDenied, user, addr, "", "address-rate-limit")); err != nil {
		return err
	}
	return &RateLimitError{RetryAfter: wait}
}

// Login checks username and pw from client address addr. Errors:
// [ErrInvalidCredentials], [*RateLimitError], password.ErrBusy (503),
// audit.ErrUnavailable or storage errors (503).
func (s *Service) Login(ctx context.Context, username, pw string, addr netip.Addr) (Result, error) {
	if err := s.checkAddress(ctx, audit.ActionLogin, unknownUser, addr); err != nil {
		return Result{}, err
	}
	username = normalise(username)
	key, err := s.loginKey(username)
	if err != nil {
		return Result{}, err
	}
	now := s.now()
	st, err := s.store.LoginState(ctx, key)
	if err != nil {
		return Result{}, fmt.Errorf("login: %w", err)
	}
	if ok, _ := s.lockout.Allow(st, now); !ok {
		// Known and unknown names lock alike, so refusing without the
		// KDF reveals nothing about the account's existence.
		if err := s.record(ctx, s.event(audit.ActionLogin, audit.OutcomeDenied, unknownUser, addr, "", "lockout")); err != nil {
			return Result{}, err
		}
		return Result{}, ErrInvalidCredentials
	}

	u, err := s.users.ByUsername(ctx, username)
	known := err == nil
	if err != nil && !errors.Is(err, identity.ErrNotFound) {
		return Result{}, fmt.Errorf("login: %w", err)
	}
	var ok bool
	if known && u.PasswordHash != "" {
		ok, _, err = s.hasher.Verify(ctx, pw, u.PasswordHash)
		if errors.Is(err, password.ErrMalformed) || errors.Is(err, password.ErrUnsupported) {
			s.logger.ErrorContext(ctx, "stored password hash unusable", slog.String("user", u.ID), slog.String("error", err.Error()))
			ok, err = false, nil
		}
	} else {
		_, err = s.hasher.DummyVerify(ctx, pw)
	}
	if err != nil {
		return Result{}, fmt.Errorf("login: %w", err)
	}
	agent := unknownUser
	if known {
		agent = u.ID
	}
	if !ok || u.Disabled {
		if err := s.fail(ctx, key, audit.ActionLogin, agent, addr); err != nil {
			return Result{}, err
		}
		return Result{}, ErrInvalidCredentials
	}

	if !s.secondFactor(u) {
		started, err := s.start(ctx, u.ID, false, addr, Commit{LoginKey: key},
			func(sid string) []audit.Event {
				return []audit.Event{s.event(audit.ActionLogin, audit.OutcomeSuccess, u.ID, addr, sid)}
			})
		if err != nil {
			return Result{}, err
		}
		return Result{Session: &started}, nil
	}
	// A second factor is owed. The lockout count is not reset: only a
	// complete login does that, so knowing the password does not buy an
	// attacker fresh guesses at the code.
	step := stepMFA
	if !u.MFAEnrolled {
		step = stepEnroll
	}
	tok, err := s.sealChallenge(challenge{User: u.ID, Step: step, Version: u.Updated.UnixMicro(), Expires: now.Add(ChallengeTTL).Unix()})
	if err != nil {
		return Result{}, err
	}
	methods, err := s.methods(ctx, u.ID, step)
	if err != nil {
		return Result{}, err
	}
	if err := s.record(ctx, s.event(audit.ActionLoginPassword, audit.OutcomeSuccess, u.ID, addr, "", "mfa-"+step)); err != nil {
		return Result{}, err
	}
	return Result{MFARequired: true, EnrollmentRequired: step == stepEnroll, Challenge: tok, Methods: methods}, nil
}

// fail records a failed attempt on key: one more failure, an audit event
// for action and, when this failure starts a lockout, a lockout event;
// all in one transaction.
func (s *Service) fail(ctx context.Context, key []byte, action audit.Action, agent string, addr netip.Addr, policies ...string) error {
	now := s.now()
	err := UpdateLoginState(ctx, s.uow, key, func(cur password.AccountState) (password.AccountState, []storage.AuditRecord, error) {
		next := s.lockout.Fail(cur, now)
		evs := []audit.Event{s.event(action, audit.OutcomeDenied, agent, addr, "", policies...)}
		if ok, _ := s.lockout.Allow(next, now); !ok {
			evs = append(evs, s.event(audit.ActionLockout, audit.OutcomeSuccess, agent, addr, ""))
		}
		recs, err := s.seal(evs...)
		return next, recs, err
	})
	if err != nil {
		return fmt.Errorf("recording failed login: %w", err)
	}
	return nil
}

// start creates a session for userID and commits c with it: the session
// row, c's state changes and the audit events events(sessionID), in one
// transaction.
func (s *Service) start(ctx context.Context, userID string, mfa bool, addr netip.Addr, c Commit, events func(sessionID string) []audit.Event) (Started, error) {
	commit := func(ctx context.Context, sess session.Session, hash []byte) error {
		c.UserID, c.Session, c.TokenHash = userID, sess, hash
		recs, err := s.seal(events(sess.ID)...)
		if err != nil {
			return err
		}
		c.Audit = recs
		return ApplyCommit(ctx, s.uow, c)
	}
	// The Manager makes the token, id and times; committing through this
	// Store decorator puts the session row in the same transaction as
	// the state changes that earned it.
	m, err := session.NewManager(commitStore{Store: nil, create: commit}, s.sessOpts)
	if err != nil {
		return Started{}, fmt.Errorf("starting session: %w", err)
	}
	var a string
	if addr.IsValid() {
		a = addr.Unmap().WithZone("").String()
	}
	secret, sess, err := m.Create(ctx, userID, mfa, a)
	if c.Challenge != nil && errors.Is(err, ErrInvalidChallenge) {
		// The challenge started a session already: a replay (a stolen
		// challenge, or a second tab). Nothing was committed.
		if rerr := s.record(ctx, s.event(audit.ActionLogin, audit.OutcomeDenied, userID, addr, "", "challenge-replay")); rerr != nil {
			return Started{}, rerr
		}
		return Started{}, ErrInvalidChallenge
	}
	if err != nil {
		return Started{}, err
	}
	return Started{Secret: secret, CSRF: session.CSRFToken(secret.Reveal()), Session: sess}, nil
}

// commitStore is a session.Store whose Create runs a login commit; the
// Manager built on it is used for Create only.
type commitStore struct {
	session.Store
	create func(ctx context.Context, s session.Session, hash []byte) error
}

func (c commitStore) Create(ctx context.Context, s session.Session, hash []byte) error {
	return c.create(ctx, s, hash)
}

// event builds an audit event; policies say which control decided.
func (s *Service) event(action audit.Action, outcome audit.Outcome, user string, addr netip.Addr, sessionID string, policies ...string) audit.Event {
	ev := audit.Event{Time: s.now().UTC(), Action: action, Outcome: outcome,
		Agent: audit.Agent{User: user, Session: sessionID}, Policies: policies}
	if addr.IsValid() {
		ev.Agent.Address = addr.Unmap().WithZone("").String()
	}
	return ev
}

func (s *Service) seal(evs ...audit.Event) ([]storage.AuditRecord, error) {
	recs := make([]storage.AuditRecord, 0, len(evs))
	for _, ev := range evs {
		rec, err := s.log.Seal(ev)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", audit.ErrUnavailable, err)
		}
		recs = append(recs, rec)
	}
	return recs, nil
}

// record makes ev durable through the batcher before the caller answers.
func (s *Service) record(ctx context.Context, ev audit.Event) error {
	recs, err := s.seal(ev)
	if err != nil {
		return err
	}
	if err := s.audit.Record(ctx, recs[0]); err != nil {
		return fmt.Errorf("%w: %w", audit.ErrUnavailable, err)
	}
	return nil
}
