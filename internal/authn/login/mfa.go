package login

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net/netip"

	"github.com/phivault/phivault/internal/audit"
	"github.com/phivault/phivault/internal/authn/recovery"
	"github.com/phivault/phivault/internal/authn/totp"
	"github.com/phivault/phivault/internal/identity"
	"github.com/phivault/phivault/internal/storage"
)

// Second-factor methods accepted by [Service.Verify].
const (
	MethodTOTP     = "totp"
	MethodRecovery = "recovery"
)

// QRSize is the enrolment QR code's side in pixels: large enough for a
// phone camera at arm's length, small enough for a JSON response.
const QRSize = 256

// totpPurpose binds a sealed TOTP secret to its user: a row copied to
// another user does not open.
func totpPurpose(userID string) string { return "totp-secret/" + userID }

// Enrollment is a new TOTP secret to show once: the otpauth URI (which
// contains the secret) and the same URI as a PNG QR code. Both are
// secrets; never log them.
type Enrollment struct {
	Key totp.Key
	PNG []byte
}

// challengeUser opens a challenge for step and loads its user, refusing
// a disabled or changed account, or one whose enrolment state no longer
// matches the step. use is the challenge's single-use marker: a step
// that starts a session commits it ([Commit.Challenge]).
func (s *Service) challengeUser(ctx context.Context, token, step string) (u identity.User, use *CeremonyUse, err error) {
	c, err := s.openChallenge(token, step, s.now())
	if err != nil {
		return identity.User{}, nil, err
	}
	u, err = s.users.ByID(ctx, c.User)
	if errors.Is(err, identity.ErrNotFound) {
		return identity.User{}, nil, ErrInvalidChallenge
	}
	if err != nil {
		return identity.User{}, nil, fmt.Errorf("loading challenge user: %w", err)
	}
	if u.Disabled || u.Updated.UnixMicro() != c.Version || u.MFAEnrolled != (step == stepMFA) {
		return identity.User{}, nil, ErrInvalidChallenge
	}
	if use, err = s.challengeUse(c); err != nil {
		return identity.User{}, nil, err
	}
	return u, use, nil
}

// lockoutKey returns u's lockout key and refuses (auditing action as
// denied) when the account is locked.
func (s *Service) lockoutKey(ctx context.Context, u identity.User, action audit.Action, addr netip.Addr) ([]byte, error) {
	key, err := s.loginKey(u.Username)
	if err != nil {
		return nil, err
	}
	st, err := s.store.LoginState(ctx, key)
	if err != nil {
		return nil, fmt.Errorf("reading login state: %w", err)
	}
	if ok, _ := s.lockout.Allow(st, s.now()); !ok {
		if err := s.record(ctx, s.event(action, audit.OutcomeDenied, u.ID, addr, "", "lockout")); err != nil {
			return nil, err
		}
		return nil, ErrInvalidCode
	}
	return key, nil
}

// EnrollTOTP issues a new TOTP secret for the user of an enrolment
// challenge, replacing any unconfirmed one. Errors: [ErrInvalidChallenge],
// [*RateLimitError], storage and audit errors.
func (s *Service) EnrollTOTP(ctx context.Context, challengeToken string, addr netip.Addr) (Enrollment, error) {
	if err := s.checkAddress(ctx, audit.ActionMFAEnrollStart, unknownUser, addr); err != nil {
		return Enrollment{}, err
	}
	u, _, err := s.challengeUser(ctx, challengeToken, stepEnroll)
	if err != nil {
		return Enrollment{}, err
	}
	r := s.rand
	if r == nil {
		r = rand.Reader
	}
	key, err := totp.NewSecretFrom(r, s.issuer, u.Username)
	if err != nil {
		return Enrollment{}, fmt.Errorf("enrolling totp: %w", err)
	}
	sealed, err := s.keys.SealToken(totpPurpose(u.ID), []byte(key.Secret()))
	if err != nil {
		return Enrollment{}, fmt.Errorf("enrolling totp: %w", err)
	}
	png, err := totp.PNG(key.URI(), QRSize)
	if err != nil {
		return Enrollment{}, fmt.Errorf("enrolling totp: %w", err)
	}
	recs, err := s.seal(s.event(audit.ActionMFAEnrollStart, audit.OutcomeSuccess, u.ID, addr, "", MethodTOTP))
	if err != nil {
		return Enrollment{}, err
	}
	if err := PutTOTP(ctx, s.uow, u.ID, []byte(sealed), recs[0]); err != nil {
		if errors.Is(err, storage.ErrConflict) || errors.Is(err, storage.ErrNotFound) {
			return Enrollment{}, ErrInvalidChallenge
		}
		return Enrollment{}, fmt.Errorf("enrolling totp: %w", err)
	}
	return Enrollment{Key: key, PNG: png}, nil
}

// checkTOTP verifies code against u's stored secret and returns the
// step compare-and-set to commit.
func (s *Service) checkTOTP(ctx context.Context, u identity.User, code string) (*StepChange, bool, error) {
	cred, err := s.store.TOTP(ctx, u.ID)
	if errors.Is(err, storage.ErrNotFound) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("loading totp credential: %w", err)
	}
	secret, err := s.keys.OpenToken(totpPurpose(u.ID), string(cred.Sealed))
	if err != nil {
		return nil, false, fmt.Errorf("opening totp secret of user %s: %w", u.ID, err)
	}
	step, ok := totp.Verify(string(secret), code, s.now(), cred.LastStep)
	if !ok {
		return nil, false, nil
	}
	return &StepChange{From: cred.LastStep, To: step}, true, nil
}

// ConfirmTOTP checks the first code of a secret from [Service.EnrollTOTP],
// marks the account enrolled, replaces its recovery codes (returned here,
// to show once), ends the account's other sessions and starts the
// session, in one transaction.
// Errors: [ErrInvalidChallenge], [ErrInvalidCode], [*RateLimitError],
// storage and audit errors.
func (s *Service) ConfirmTOTP(ctx context.Context, challengeToken, code string, addr netip.Addr) (Started, []recovery.Code, error) {
	if err := s.checkAddress(ctx, audit.ActionMFAEnroll, unknownUser, addr); err != nil {
		return Started{}, nil, err
	}
	u, use, err := s.challengeUser(ctx, challengeToken, stepEnroll)
	if err != nil {
		return Started{}, nil, err
	}
	key, err := s.lockoutKey(ctx, u, audit.ActionMFAEnroll, addr)
	if err != nil {
		return Started{}, nil, err
	}
	change, ok, err := s.checkTOTP(ctx, u, code)
	if err != nil {
		return Started{}, nil, err
	}
	if !ok {
		if err := s.fail(ctx, key, audit.ActionMFAEnroll, u.ID, addr); err != nil {
			return Started{}, nil, err
		}
		return Started{}, nil, ErrInvalidCode
	}
	var codes []recovery.Code
	var hashes [][]byte
	if s.rand != nil {
		codes, hashes, err = recovery.GenerateFrom(s.rand)
	} else {
		codes, hashes, err = recovery.Generate()
	}
	if err != nil {
		return Started{}, nil, err
	}
	started, err := s.start(ctx, u.ID, true, addr,
		// RevokeSessions: a patient adding a factor from a password-only
		// session ends that session and any other (a workforce account has
		// none before its first enrolment).
		Commit{LoginKey: key, TOTP: change, Enrol: true, RecoveryHashes: hashes, Challenge: use, RevokeSessions: true},
		func(sid string) []audit.Event {
			return []audit.Event{
				s.event(audit.ActionMFAEnroll, audit.OutcomeSuccess, u.ID, addr, sid, MethodTOTP),
				s.event(audit.ActionLogin, audit.OutcomeSuccess, u.ID, addr, sid, MethodTOTP),
			}
		})
	if errors.Is(err, storage.ErrConflict) {
		// Enrolled or the code used by a concurrent request.
		return Started{}, nil, ErrInvalidCode
	}
	if err != nil {
		return Started{}, nil, err
	}
	return started, codes, nil
}

// Verify checks a second factor (method [MethodTOTP] or [MethodRecovery])
// for the user of an "mfa" challenge and starts the session. The TOTP
// step is consumed, or the recovery code deleted, in the session's
// transaction. Errors: [ErrInvalidChallenge], [ErrInvalidCode],
// [*RateLimitError], storage and audit errors.
func (s *Service) Verify(ctx context.Context, challengeToken, method, code string, addr netip.Addr) (Started, error) {
	if err := s.checkAddress(ctx, audit.ActionMFAVerify, unknownUser, addr); err != nil {
		return Started{}, err
	}
	u, use, err := s.challengeUser(ctx, challengeToken, stepMFA)
	if err != nil {
		return Started{}, err
	}
	if method != MethodTOTP && method != MethodRecovery {
		return Started{}, ErrInvalidCode
	}
	key, err := s.lockoutKey(ctx, u, audit.ActionMFAVerify, addr)
	if err != nil {
		return Started{}, err
	}
	c := Commit{LoginKey: key, Challenge: use}
	ok := false
	switch method {
	case MethodTOTP:
		c.TOTP, ok, err = s.checkTOTP(ctx, u, code)
		if err != nil {
			return Started{}, err
		}
	case MethodRecovery:
		hashes, err := s.store.RecoveryHashes(ctx, u.ID)
		if err != nil {
			return Started{}, fmt.Errorf("loading recovery codes: %w", err)
		}
		var i int
		if i, ok = recovery.Match(code, hashes); ok {
			c.UseRecovery = hashes[i]
		}
	}
	if !ok {
		if err := s.fail(ctx, key, audit.ActionMFAVerify, u.ID, addr); err != nil {
			return Started{}, err
		}
		return Started{}, ErrInvalidCode
	}
	started, err := s.start(ctx, u.ID, true, addr, c, func(sid string) []audit.Event {
		evs := []audit.Event{s.event(audit.ActionMFAVerify, audit.OutcomeSuccess, u.ID, addr, sid, method)}
		if method == MethodRecovery {
			evs = append(evs, s.event(audit.ActionRecoveryCodeUsed, audit.OutcomeSuccess, u.ID, addr, sid))
		}
		return append(evs, s.event(audit.ActionLogin, audit.OutcomeSuccess, u.ID, addr, sid, method))
	})
	if errors.Is(err, storage.ErrConflict) {
		// A concurrent request used the same code first.
		if err := s.fail(ctx, key, audit.ActionMFAVerify, u.ID, addr); err != nil {
			return Started{}, err
		}
		return Started{}, ErrInvalidCode
	}
	return started, err
}
