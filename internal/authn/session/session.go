package session

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"time"
)

// Sentinel errors.
var (
	// ErrInvalidSession means the token is malformed, unknown, revoked,
	// idle-expired or past its absolute lifetime. Which one is not said:
	// answer 401 and clear the cookie, the same way every time.
	ErrInvalidSession = errors.New("session: invalid session")

	// ErrNotFound is what a Store returns (wrapped) for an unknown
	// token hash or session id. Manager.Validate turns it into
	// ErrInvalidSession; Manager.Revoke returns it.
	ErrNotFound = errors.New("session: not found")
)

// Defaults for Options.
const (
	// DefaultIdleTimeout ends a session after 15 minutes without a
	// request: HIPAA §164.312(a)(2)(iii) automatic logoff (an addressable
	// specification; 15 minutes is the common reading for workstations
	// showing PHI, and DESIGN §7's default).
	DefaultIdleTimeout = 15 * time.Minute

	// DefaultAbsoluteLifetime ends every session 12 hours after login
	// however active it is: one clinical shift, after which the user
	// authenticates again (OWASP Session Management: absolute timeout;
	// NIST SP 800-63B §7.2 reauthentication at AAL2 within 12 hours).
	DefaultAbsoluteLifetime = 12 * time.Hour

	// TouchInterval is how stale LastSeen may grow before Validate
	// writes it: at most one write per session per minute, whatever the
	// request rate. A session may therefore idle-expire up to one
	// interval early, never late.
	TouchInterval = time.Minute

	// MaxListed bounds ListForUser (STYLE rule 24).
	MaxListed = 100

	// maxAddressLen bounds the stored client address.
	maxAddressLen = 64
)

// Session is one login. Its token is not part of it: only the token's
// hash is stored, and the token is returned once by Create.
type Session struct {
	ID              string    // "ses_<32 hex>"; public (shown in "your sessions", used to revoke)
	UserID          string    // identity.User.ID
	Created         time.Time // UTC, microsecond precision
	LastSeen        time.Time // last recorded activity (lags by up to TouchInterval)
	ExpiresAbsolute time.Time // the session ends here whatever its activity
	IdleTimeout     time.Duration
	Revoked         bool
	MFA             bool   // a second factor was verified at login
	Address         string // client IP at login, canonical form, or ""
}

// Active reports whether s is usable at now: not revoked, before its
// absolute expiry, and seen within its idle timeout.
func (s Session) Active(now time.Time) bool {
	return !s.Revoked && now.Before(s.ExpiresAbsolute) && now.Sub(s.LastSeen) < s.IdleTimeout
}

// Store persists sessions. Implementations are safe for concurrent use;
// errors other than ErrNotFound wrap the storage sentinels
// (storage.ErrUnavailable, storage.ErrConflict).
//
// DEVIATION from STYLE rule 14 (1–3 methods): the Manager is the only
// consumer and needs all six; splitting would only add names.
type Store interface {
	// Create stores s with the SHA-256 of its token. It returns an
	// error wrapping ErrNotFound if s.UserID names no user, and
	// storage.ErrConflict if the id or hash exists.
	Create(ctx context.Context, s Session, tokenHash []byte) error

	// ByTokenHash returns the session whose token hashes to hash, or an
	// error wrapping ErrNotFound.
	ByTokenHash(ctx context.Context, hash []byte) (Session, error)

	// Touch sets LastSeen to at if that moves it forward and the
	// session is not revoked; otherwise it does nothing. Unknown ids are
	// not an error.
	Touch(ctx context.Context, id string, at time.Time) error

	// Revoke marks session id revoked (idempotent), or returns an error
	// wrapping ErrNotFound.
	Revoke(ctx context.Context, id string) error

	// RevokeUser revokes every session of userID and returns how many
	// were live (not already revoked).
	RevokeUser(ctx context.Context, userID string) (int64, error)

	// ListByUser returns up to limit unrevoked sessions of userID,
	// newest first.
	ListByUser(ctx context.Context, userID string, limit int) ([]Session, error)
}

// Options configures a Manager. The zero value means the defaults.
type Options struct {
	// IdleTimeout ends a session after this long without activity.
	// Default DefaultIdleTimeout; must be whole seconds, at least
	// 2×TouchInterval and at most AbsoluteLifetime.
	IdleTimeout time.Duration

	// AbsoluteLifetime ends a session this long after Create. Default
	// DefaultAbsoluteLifetime; must be whole seconds.
	AbsoluteLifetime time.Duration

	// Now is the clock. Default time.Now.
	Now func() time.Time

	// Rand is the source of tokens and ids. Default crypto/rand.Reader.
	// Anything else is for tests only: tokens must be unguessable.
	Rand io.Reader
}

// Manager creates, validates and revokes sessions. It is safe for
// concurrent use and holds no state besides its Store.
type Manager struct {
	store    Store
	idle     time.Duration
	absolute time.Duration
	now      func() time.Time
	rand     io.Reader
}

// NewManager validates opts and returns a Manager over store. Errors
// name the Options field at fault.
func NewManager(store Store, opts Options) (*Manager, error) {
	if store == nil {
		return nil, errors.New("session: new manager: nil Store")
	}
	if opts.IdleTimeout == 0 {
		opts.IdleTimeout = DefaultIdleTimeout
	}
	if opts.AbsoluteLifetime == 0 {
		opts.AbsoluteLifetime = DefaultAbsoluteLifetime
	}
	switch {
	case opts.IdleTimeout < 2*TouchInterval || opts.IdleTimeout%time.Second != 0:
		return nil, fmt.Errorf("session: new manager: Options.IdleTimeout %v must be whole seconds and at least %v", opts.IdleTimeout, 2*TouchInterval)
	case opts.AbsoluteLifetime%time.Second != 0 || opts.AbsoluteLifetime < opts.IdleTimeout:
		return nil, fmt.Errorf("session: new manager: Options.AbsoluteLifetime %v must be whole seconds and at least Options.IdleTimeout", opts.AbsoluteLifetime)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Rand == nil {
		opts.Rand = rand.Reader
	}
	return &Manager{store: store, idle: opts.IdleTimeout, absolute: opts.AbsoluteLifetime, now: opts.Now, rand: opts.Rand}, nil
}

// Create starts a session for userID (already authenticated by the
// caller; mfa says whether a second factor was verified) from client
// address addr ("" if unknown; otherwise an IP address, stored in
// canonical form). It returns the token to set as the cookie, once, and
// the stored session. Errors: ErrNotFound (wrapped) for an unknown user,
// storage errors otherwise. Auditing the login is the caller's.
func (m *Manager) Create(ctx context.Context, userID string, mfa bool, addr string) (Secret, Session, error) {
	if userID == "" {
		return "", Session{}, errors.New("session: create: empty user id")
	}
	if addr != "" {
		ip, err := netip.ParseAddr(addr)
		if err != nil || len(addr) > maxAddressLen {
			return "", Session{}, errors.New("session: create: address is not an IP address")
		}
		addr = ip.Unmap().WithZone("").String()
	}
	var b [secretBytes + 16]byte
	if _, err := io.ReadFull(m.rand, b[:]); err != nil {
		return "", Session{}, fmt.Errorf("session: create: reading randomness: %w", err)
	}
	secret := Prefix + base64.RawURLEncoding.EncodeToString(b[:secretBytes])
	now := m.now().UTC().Truncate(time.Microsecond)
	s := Session{
		ID:              "ses_" + hex.EncodeToString(b[secretBytes:]),
		UserID:          userID,
		Created:         now,
		LastSeen:        now,
		ExpiresAbsolute: now.Add(m.absolute),
		IdleTimeout:     m.idle,
		MFA:             mfa,
		Address:         addr,
	}
	if err := m.store.Create(ctx, s, HashSecret(secret)); err != nil {
		return "", Session{}, fmt.Errorf("session: create: %w", err)
	}
	return Secret(secret), s, nil
}

// Validate returns the live session whose token is secret (untrusted
// input, e.g. a cookie value). Every reason for refusal (malformed,
// unknown, revoked, idle-expired, past the absolute lifetime) is
// ErrInvalidSession; other errors are storage failures (answer 503, do
// not clear the cookie). It records activity (LastSeen) at most once per
// TouchInterval. It does not check the user: the caller loads the user
// and refuses a disabled one.
func (m *Manager) Validate(ctx context.Context, secret string) (Session, error) {
	if !wellFormed(secret) {
		return Session{}, ErrInvalidSession
	}
	s, err := m.store.ByTokenHash(ctx, HashSecret(secret))
	if errors.Is(err, ErrNotFound) {
		return Session{}, ErrInvalidSession
	}
	if err != nil {
		return Session{}, fmt.Errorf("session: validate: %w", err)
	}
	now := m.now().UTC().Truncate(time.Microsecond)
	if !s.Active(now) {
		return Session{}, ErrInvalidSession
	}
	if now.Sub(s.LastSeen) >= TouchInterval {
		// Fail closed: activity that cannot be recorded is refused, so
		// the idle timeout never silently stops being enforced.
		if err := m.store.Touch(ctx, s.ID, now); err != nil {
			return Session{}, fmt.Errorf("session: validate: recording activity: %w", err)
		}
		s.LastSeen = now
	}
	return s, nil
}

// Revoke ends session id (logout, or a user ending another of their
// sessions). It is idempotent; ErrNotFound (wrapped) for an unknown id.
// It does not check ownership: a handler letting users revoke their own
// sessions looks the id up with ListForUser first.
func (m *Manager) Revoke(ctx context.Context, id string) error {
	if err := m.store.Revoke(ctx, id); err != nil {
		return fmt.Errorf("session: revoke: %w", err)
	}
	return nil
}

// RevokeAllForUser ends every session of userID and returns how many
// were live. Call it after a password change, an MFA reset, a role
// change and when disabling the account.
func (m *Manager) RevokeAllForUser(ctx context.Context, userID string) (int64, error) {
	n, err := m.store.RevokeUser(ctx, userID)
	if err != nil {
		return 0, fmt.Errorf("session: revoke all for user: %w", err)
	}
	return n, nil
}

// ListForUser returns the active sessions of userID, newest first, at
// most MaxListed.
func (m *Manager) ListForUser(ctx context.Context, userID string) ([]Session, error) {
	ss, err := m.store.ListByUser(ctx, userID, MaxListed)
	if err != nil {
		return nil, fmt.Errorf("session: list for user: %w", err)
	}
	now := m.now()
	out := ss[:0]
	for _, s := range ss {
		if s.Active(now) {
			out = append(out, s)
		}
	}
	return out, nil
}
