package login

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"

	"github.com/phivault/phivault/internal/audit"
	"github.com/phivault/phivault/internal/authn"
	"github.com/phivault/phivault/internal/authn/password"
	"github.com/phivault/phivault/internal/identity"
	"github.com/phivault/phivault/internal/storage"
)

// Self-service password change (DESIGN §7): the owner of a session
// proves the current password again, and the change ends every session
// of the account, the caller's included; the caller carries on with a
// fresh session issued in the same transaction.

// ChangePassword replaces the password of p's user (a session
// principal) with newPW after checking current, and returns the session
// that replaces p's. In one transaction it stores the new argon2id hash
// (compare-and-set on the old one), revokes every session of the user,
// creates the new session (with p's second-factor state), resets the
// account's lockout and appends the audit event (user-set-password).
//
// A wrong current password is counted exactly as a failed login
// (per-address rate limit, per-account lockout, audited denial), so a
// stolen cookie cannot be used to guess the password faster than the
// login form allows. Errors: [ErrWrongPassword] (also while locked out),
// [*RateLimitError], the password policy errors of [password.Check]
// (password.ErrTooShort, ErrCommon, ErrContext... whose text is safe to
// show), authn.ErrUnauthenticated for a non-session principal or a
// vanished or disabled account, storage.ErrConflict if the password
// changed meanwhile, password.ErrBusy and audit.ErrUnavailable (503).
func (s *Service) ChangePassword(ctx context.Context, p authn.Principal, current, newPW string, addr netip.Addr) (Started, error) {
	if p.Kind != authn.KindSession || p.SessionID == "" {
		return Started{}, authn.ErrUnauthenticated
	}
	if err := s.checkAddress(ctx, audit.ActionUserSetPassword, p.ID, addr); err != nil {
		return Started{}, err
	}
	u, err := s.users.ByID(ctx, p.ID)
	if errors.Is(err, identity.ErrNotFound) {
		return Started{}, authn.ErrUnauthenticated
	}
	if err != nil {
		return Started{}, fmt.Errorf("change password: %w", err)
	}
	if u.Disabled {
		return Started{}, authn.ErrUnauthenticated
	}
	key, err := s.loginKey(u.Username)
	if err != nil {
		return Started{}, err
	}
	st, err := s.store.LoginState(ctx, key)
	if err != nil {
		return Started{}, fmt.Errorf("change password: %w", err)
	}
	now := s.now()
	if ok, _ := s.lockout.Allow(st, now); !ok {
		ev := s.event(audit.ActionUserSetPassword, audit.OutcomeDenied, u.ID, addr, p.SessionID, "lockout")
		ev.Entities = []string{"User/" + u.ID}
		if err := s.record(ctx, ev); err != nil {
			return Started{}, err
		}
		return Started{}, ErrWrongPassword
	}
	var ok bool
	if u.PasswordHash != "" {
		ok, _, err = s.hasher.Verify(ctx, current, u.PasswordHash)
		if errors.Is(err, password.ErrMalformed) || errors.Is(err, password.ErrUnsupported) {
			s.logger.ErrorContext(ctx, "stored password hash unusable", slog.String("user", u.ID), slog.String("error", err.Error()))
			ok, err = false, nil
		}
	} else {
		// An account without a password (SSO only) has nothing to prove
		// here; it costs what a wrong password costs.
		_, err = s.hasher.DummyVerify(ctx, current)
	}
	if err != nil {
		return Started{}, fmt.Errorf("change password: %w", err)
	}
	if !ok {
		if err := s.fail(ctx, key, audit.ActionUserSetPassword, u.ID, addr); err != nil {
			return Started{}, err
		}
		return Started{}, ErrWrongPassword
	}
	if err := password.Check(newPW, u.Username, u.DisplayName); err != nil {
		return Started{}, err
	}
	phc, err := s.hasher.Hash(ctx, newPW)
	if err != nil {
		return Started{}, fmt.Errorf("change password: %w", err)
	}
	c := Commit{LoginKey: key, Password: &PasswordChange{From: u.PasswordHash, To: phc}, RevokeSessions: true}
	started, err := s.start(ctx, u.ID, p.MFA, addr, c, func(sid string) []audit.Event {
		ev := s.event(audit.ActionUserSetPassword, audit.OutcomeSuccess, u.ID, addr, p.SessionID, "self-service", "sessions-revoked")
		ev.Entities = []string{"User/" + u.ID, "Session/" + sid}
		return []audit.Event{ev}
	})
	if err != nil {
		if errors.Is(err, storage.ErrConflict) {
			return Started{}, fmt.Errorf("change password: the password changed meanwhile: %w", err)
		}
		return Started{}, err
	}
	return started, nil
}
