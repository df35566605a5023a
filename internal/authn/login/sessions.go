package login

import (
	"context"
	"errors"
	"fmt"
	"net/netip"

	"github.com/phivault/phivault/internal/audit"
	"github.com/phivault/phivault/internal/authn"
	"github.com/phivault/phivault/internal/authn/session"
	"github.com/phivault/phivault/internal/identity"
	"github.com/phivault/phivault/internal/storage"
)

// Authenticate turns a session token (untrusted: a cookie value) into a
// principal of Kind "session". It refuses, with
// authn.ErrUnauthenticated, a malformed, unknown, revoked or expired
// session and a session whose user is gone or disabled. Other errors
// are storage failures (answer 503).
func (s *Service) Authenticate(ctx context.Context, secret string) (authn.Principal, error) {
	sess, err := s.sessions.Validate(ctx, secret)
	if errors.Is(err, session.ErrInvalidSession) {
		return authn.Principal{}, authn.ErrUnauthenticated
	}
	if err != nil {
		return authn.Principal{}, err
	}
	u, err := s.users.ByID(ctx, sess.UserID)
	if errors.Is(err, identity.ErrNotFound) {
		return authn.Principal{}, authn.ErrUnauthenticated
	}
	if err != nil {
		return authn.Principal{}, fmt.Errorf("loading session user: %w", err)
	}
	if u.Disabled {
		return authn.Principal{}, authn.ErrUnauthenticated
	}
	roles := make([]string, len(u.Roles))
	for i, r := range u.Roles {
		roles[i] = string(r)
	}
	return authn.Principal{Kind: authn.KindSession, ID: u.ID, Name: u.Username, Roles: roles, MFA: sess.MFA, SessionID: sess.ID}, nil
}

// RequiresMFA reports whether p may not reach PHI because it is a
// session of a workforce account without a verified second factor.
// API tokens are service credentials and are not affected.
func RequiresMFA(p authn.Principal) bool {
	if p.Kind != authn.KindSession || p.MFA {
		return false
	}
	for _, r := range p.Roles {
		if identity.Role(r).Workforce() {
			return true
		}
	}
	return false
}

// Logout ends p's own session and audits it in the same transaction.
func (s *Service) Logout(ctx context.Context, p authn.Principal, addr netip.Addr) error {
	return s.revoke(ctx, p, p.SessionID, audit.ActionLogout, addr)
}

// Revoke ends session id of p's user (one of their other sessions, or
// this one). [ErrNotFound] when the user has no such live session.
func (s *Service) Revoke(ctx context.Context, p authn.Principal, id string, addr netip.Addr) error {
	return s.revoke(ctx, p, id, audit.ActionSessionRevoke, addr)
}

func (s *Service) revoke(ctx context.Context, p authn.Principal, id string, action audit.Action, addr netip.Addr) error {
	if p.Kind != authn.KindSession {
		return ErrNotFound
	}
	ev := s.event(action, audit.OutcomeSuccess, p.ID, addr, p.SessionID)
	ev.Entities = []string{"Session/" + id}
	recs, err := s.seal(ev)
	if err != nil {
		return err
	}
	err = RevokeSession(ctx, s.uow, p.ID, id, recs[0])
	if errors.Is(err, storage.ErrNotFound) {
		return ErrNotFound
	}
	if err != nil {
		return fmt.Errorf("revoking session: %w", err)
	}
	return nil
}

// Sessions lists p's user's active sessions, newest first.
func (s *Service) Sessions(ctx context.Context, p authn.Principal) ([]session.Session, error) {
	if p.Kind != authn.KindSession {
		return nil, nil
	}
	return s.sessions.ListForUser(ctx, p.ID)
}
