package login

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"time"

	"github.com/phivault/phivault/internal/audit"
	"github.com/phivault/phivault/internal/authn"
	"github.com/phivault/phivault/internal/authn/passkey"
	"github.com/phivault/phivault/internal/authn/recovery"
	"github.com/phivault/phivault/internal/identity"
	"github.com/phivault/phivault/internal/storage"
)

// Passkeys (WebAuthn, ADR 0009) as the second factor: enrolled instead
// of TOTP on first sign-in, added from a verified session, and used
// after the password. Each ceremony is a Begin that returns browser
// options and a sealed ceremony, and a Finish that takes the ceremony
// back with the authenticator's answer. Ceremonies are bound to the
// user and to the user's last-modified time, expire after
// passkey.CeremonyTTL and are single use: the keyed hash of the
// challenge is stored in the transaction that consumes it.

// MethodWebAuthn names passkeys among the second-factor methods.
const MethodWebAuthn = "webauthn"

// PasskeyBegin is the first half of a ceremony: Options is the JSON
// for the browser ({"publicKey": {...}} with base64url binary fields;
// it holds the challenge, so it is shown to the client only) and
// Ceremony is the sealed state the client returns to Finish.
type PasskeyBegin struct {
	Options  any
	Ceremony string
}

// methods lists the second factors for a challenge of step (see
// [Result.Methods]).
func (s *Service) methods(ctx context.Context, userID, step string) ([]string, error) {
	if step == stepEnroll {
		if s.rp != nil {
			return []string{MethodTOTP, MethodWebAuthn}, nil
		}
		return []string{MethodTOTP}, nil
	}
	var out []string
	if _, err := s.store.TOTP(ctx, userID); err == nil {
		out = append(out, MethodTOTP)
	} else if !errors.Is(err, storage.ErrNotFound) {
		return nil, fmt.Errorf("listing second factors: %w", err)
	}
	if s.rp != nil {
		pk, err := s.passkeys.Passkeys(ctx, userID)
		if err != nil {
			return nil, fmt.Errorf("listing second factors: %w", err)
		}
		if len(pk) > 0 {
			out = append(out, MethodWebAuthn)
		}
	}
	return append(out, MethodRecovery), nil
}

// passkeyUser loads u's passkeys for a ceremony.
func (s *Service) passkeyUser(ctx context.Context, u identity.User) (passkey.User, error) {
	creds, err := s.passkeys.Passkeys(ctx, u.ID)
	if err != nil {
		return passkey.User{}, fmt.Errorf("loading passkeys: %w", err)
	}
	return passkey.User{ID: u.ID, Name: u.Username, DisplayName: u.DisplayName, Credentials: creds}, nil
}

// openCeremony opens a sealed ceremony of kind for u, refusing one
// issued before u last changed. Every refusal is passkey.ErrInvalidCeremony.
func (s *Service) openCeremony(token, kind string, u identity.User) (passkey.Ceremony, error) {
	c, err := passkey.Open(s.keys, token, kind, s.now())
	if err != nil || c.User != u.ID || c.Version != u.Updated.UnixMicro() {
		return passkey.Ceremony{}, passkey.ErrInvalidCeremony
	}
	return c, nil
}

// ceremonyUse is the single-use marker of c.
func (s *Service) ceremonyUse(c passkey.Ceremony) (*CeremonyUse, error) {
	k, err := s.keys.BlindIndex(c.UseKey())
	if err != nil {
		return nil, fmt.Errorf("marking passkey ceremony: %w", err)
	}
	return &CeremonyUse{Key: k, Expires: time.Unix(c.Expires, 0)}, nil
}

func (s *Service) begin(options any, c passkey.Ceremony) (PasskeyBegin, error) {
	tok, err := passkey.Seal(s.keys, c)
	if err != nil {
		return PasskeyBegin{}, err
	}
	return PasskeyBegin{Options: options, Ceremony: tok}, nil
}

// reason is the log-safe reason of a refused answer.
func reason(err error) string {
	var re *passkey.RejectError
	if errors.As(err, &re) {
		return re.Reason
	}
	return "refused"
}

// passkeyChallenge is the start of every passkey ceremony on a login
// challenge: passkeys on, the address within its limits (counted under
// action), the challenge valid for step, and the user's passkeys.
func (s *Service) passkeyChallenge(ctx context.Context, token, step string, action audit.Action, addr netip.Addr) (identity.User, passkey.User, error) {
	if s.rp == nil {
		return identity.User{}, passkey.User{}, ErrPasskeysDisabled
	}
	if err := s.checkAddress(ctx, action, unknownUser, addr); err != nil {
		return identity.User{}, passkey.User{}, err
	}
	u, _, err := s.challengeUser(ctx, token, step)
	if err != nil {
		return identity.User{}, passkey.User{}, err
	}
	pu, err := s.passkeyUser(ctx, u)
	if err != nil {
		return identity.User{}, passkey.User{}, err
	}
	return u, pu, nil
}

// BeginPasskeyEnrol starts registering a passkey as the first second
// factor of the user of an enrolment challenge (instead of TOTP).
// Errors: [ErrPasskeysDisabled], [ErrInvalidChallenge], [*RateLimitError],
// storage and audit errors.
func (s *Service) BeginPasskeyEnrol(ctx context.Context, challengeToken string, addr netip.Addr) (PasskeyBegin, error) {
	u, pu, err := s.passkeyChallenge(ctx, challengeToken, stepEnroll, audit.ActionMFAEnrollStart, addr)
	if err != nil {
		return PasskeyBegin{}, err
	}
	opts, c, err := s.rp.BeginRegistration(pu, u.Updated.UnixMicro())
	if err != nil {
		return PasskeyBegin{}, err
	}
	if err := s.record(ctx, s.event(audit.ActionMFAEnrollStart, audit.OutcomeSuccess, u.ID, addr, "", MethodWebAuthn)); err != nil {
		return PasskeyBegin{}, err
	}
	return s.begin(opts, c)
}

// FinishPasskeyEnrol verifies the authenticator's answer to a
// ceremony from [Service.BeginPasskeyEnrol], and in one transaction
// stores the passkey, marks the account enrolled, replaces its recovery
// codes (returned, to show once), marks the ceremony used and starts
// the session. A refused answer counts toward the lockout like a wrong
// first TOTP code. Errors: [ErrInvalidChallenge],
// passkey.ErrInvalidCeremony, passkey.ErrRejected (also while locked
// out, and for a replayed ceremony), [*RateLimitError], storage and
// audit errors.
func (s *Service) FinishPasskeyEnrol(ctx context.Context, challengeToken, ceremonyToken, name string, response []byte, addr netip.Addr) (Started, passkey.Credential, []recovery.Code, error) {
	if s.rp == nil {
		return Started{}, passkey.Credential{}, nil, ErrPasskeysDisabled
	}
	if err := s.checkAddress(ctx, audit.ActionMFAEnroll, unknownUser, addr); err != nil {
		return Started{}, passkey.Credential{}, nil, err
	}
	u, chUse, err := s.challengeUser(ctx, challengeToken, stepEnroll)
	if err != nil {
		return Started{}, passkey.Credential{}, nil, err
	}
	c, err := s.openCeremony(ceremonyToken, passkey.KindRegister, u)
	if err != nil {
		if rerr := s.record(ctx, s.event(audit.ActionMFAEnroll, audit.OutcomeDenied, u.ID, addr, "", MethodWebAuthn, "ceremony-invalid")); rerr != nil {
			return Started{}, passkey.Credential{}, nil, rerr
		}
		return Started{}, passkey.Credential{}, nil, err
	}
	key, err := s.lockoutKey(ctx, u, audit.ActionMFAEnroll, addr)
	if errors.Is(err, ErrInvalidCode) {
		return Started{}, passkey.Credential{}, nil, passkey.ErrRejected
	}
	if err != nil {
		return Started{}, passkey.Credential{}, nil, err
	}
	pu, err := s.passkeyUser(ctx, u)
	if err != nil {
		return Started{}, passkey.Credential{}, nil, err
	}
	cred, err := s.rp.FinishRegistration(pu, c, response, name)
	if err != nil {
		if errors.Is(err, passkey.ErrRejected) || errors.Is(err, passkey.ErrInvalidCeremony) || errors.Is(err, passkey.ErrTooMany) {
			s.logger.InfoContext(ctx, "passkey enrolment refused", slog.String("user", u.ID), slog.String("reason", reason(err)))
			if ferr := s.fail(ctx, key, audit.ActionMFAEnroll, u.ID, addr, MethodWebAuthn); ferr != nil {
				return Started{}, passkey.Credential{}, nil, ferr
			}
		}
		return Started{}, passkey.Credential{}, nil, err
	}
	cred.ID = s.newID()
	use, err := s.ceremonyUse(c)
	if err != nil {
		return Started{}, passkey.Credential{}, nil, err
	}
	codes, hashes, err := s.recoveryCodes()
	if err != nil {
		return Started{}, passkey.Credential{}, nil, err
	}
	started, err := s.start(ctx, u.ID, true, addr,
		Commit{LoginKey: key, Enrol: true, RecoveryHashes: hashes, NewPasskey: &cred, Ceremony: use, Challenge: chUse, RevokeSessions: true}, // as ConfirmTOTP
		func(sid string) []audit.Event {
			ev := s.event(audit.ActionMFAEnroll, audit.OutcomeSuccess, u.ID, addr, sid, MethodWebAuthn)
			ev.Entities = []string{"Passkey/" + cred.ID}
			return []audit.Event{ev, s.event(audit.ActionLogin, audit.OutcomeSuccess, u.ID, addr, sid, MethodWebAuthn)}
		})
	if errors.Is(err, storage.ErrConflict) {
		// Enrolled meanwhile, the ceremony replayed, or the credential
		// registered already.
		if ferr := s.fail(ctx, key, audit.ActionMFAEnroll, u.ID, addr, MethodWebAuthn, "conflict"); ferr != nil {
			return Started{}, passkey.Credential{}, nil, ferr
		}
		return Started{}, passkey.Credential{}, nil, passkey.ErrRejected
	}
	if err != nil {
		return Started{}, passkey.Credential{}, nil, err
	}
	return started, cred, codes, nil
}

func (s *Service) recoveryCodes() ([]recovery.Code, [][]byte, error) {
	if s.rand != nil {
		return recovery.GenerateFrom(s.rand)
	}
	return recovery.Generate()
}

// BeginPasskeyLogin starts the passkey step of the user of an "mfa"
// challenge. Errors: [ErrPasskeysDisabled], [ErrInvalidChallenge],
// passkey.ErrRejected (no passkey registered), [*RateLimitError],
// storage errors.
func (s *Service) BeginPasskeyLogin(ctx context.Context, challengeToken string, addr netip.Addr) (PasskeyBegin, error) {
	u, pu, err := s.passkeyChallenge(ctx, challengeToken, stepMFA, audit.ActionMFAVerify, addr)
	if err != nil {
		return PasskeyBegin{}, err
	}
	opts, c, err := s.rp.BeginLogin(pu, u.Updated.UnixMicro())
	if err != nil {
		return PasskeyBegin{}, err
	}
	return s.begin(opts, c)
}

// FinishPasskeyLogin verifies the authenticator's answer to a ceremony
// from [Service.BeginPasskeyLogin] and starts the session; the new
// signature counter (compare-and-set), the ceremony's use, the lockout
// reset and the audit events commit with the session. A refused answer
// counts toward the lockout like a wrong TOTP code; a counter that did
// not grow is refused and audited with "sign-count-regression". Errors:
// [ErrInvalidChallenge], passkey.ErrInvalidCeremony, passkey.ErrRejected
// (also while locked out, and for a replay), passkey.ErrSignCount,
// [*RateLimitError], storage and audit errors.
func (s *Service) FinishPasskeyLogin(ctx context.Context, challengeToken, ceremonyToken string, response []byte, addr netip.Addr) (Started, error) {
	if s.rp == nil {
		return Started{}, ErrPasskeysDisabled
	}
	if err := s.checkAddress(ctx, audit.ActionMFAVerify, unknownUser, addr); err != nil {
		return Started{}, err
	}
	u, chUse, err := s.challengeUser(ctx, challengeToken, stepMFA)
	if err != nil {
		return Started{}, err
	}
	c, err := s.openCeremony(ceremonyToken, passkey.KindLogin, u)
	if err != nil {
		if rerr := s.record(ctx, s.event(audit.ActionMFAVerify, audit.OutcomeDenied, u.ID, addr, "", MethodWebAuthn, "ceremony-invalid")); rerr != nil {
			return Started{}, rerr
		}
		return Started{}, err
	}
	key, err := s.lockoutKey(ctx, u, audit.ActionMFAVerify, addr)
	if errors.Is(err, ErrInvalidCode) {
		return Started{}, passkey.ErrRejected
	}
	if err != nil {
		return Started{}, err
	}
	pu, err := s.passkeyUser(ctx, u)
	if err != nil {
		return Started{}, err
	}
	use, err := s.rp.FinishLogin(pu, c, response)
	switch {
	case errors.Is(err, passkey.ErrSignCount):
		s.logger.WarnContext(ctx, "passkey signature counter did not increase: possible cloned authenticator",
			slog.String("user", u.ID), slog.String("passkey", use.Credential.ID))
		if ferr := s.fail(ctx, key, audit.ActionMFAVerify, u.ID, addr, MethodWebAuthn, "sign-count-regression", "passkey="+use.Credential.ID); ferr != nil {
			return Started{}, ferr
		}
		return Started{}, err
	case errors.Is(err, passkey.ErrRejected), errors.Is(err, passkey.ErrInvalidCeremony):
		s.logger.InfoContext(ctx, "passkey sign-in refused", slog.String("user", u.ID), slog.String("reason", reason(err)))
		if ferr := s.fail(ctx, key, audit.ActionMFAVerify, u.ID, addr, MethodWebAuthn); ferr != nil {
			return Started{}, ferr
		}
		return Started{}, err
	case err != nil:
		return Started{}, err
	}
	cu, err := s.ceremonyUse(c)
	if err != nil {
		return Started{}, err
	}
	started, err := s.start(ctx, u.ID, true, addr, Commit{LoginKey: key, Ceremony: cu, PasskeyUse: &use, Challenge: chUse},
		func(sid string) []audit.Event {
			ev := s.event(audit.ActionMFAVerify, audit.OutcomeSuccess, u.ID, addr, sid, MethodWebAuthn)
			ev.Entities = []string{"Passkey/" + use.Credential.ID}
			return []audit.Event{ev, s.event(audit.ActionLogin, audit.OutcomeSuccess, u.ID, addr, sid, MethodWebAuthn)}
		})
	if errors.Is(err, storage.ErrConflict) {
		// The ceremony was used already (a replay) or a concurrent
		// sign-in moved the counter first.
		if ferr := s.fail(ctx, key, audit.ActionMFAVerify, u.ID, addr, MethodWebAuthn, "replay"); ferr != nil {
			return Started{}, ferr
		}
		return Started{}, passkey.ErrRejected
	}
	return started, err
}

// sessionUser loads the live account of session principal p.
func (s *Service) sessionUser(ctx context.Context, p authn.Principal) (identity.User, error) {
	if p.Kind != authn.KindSession || p.SessionID == "" {
		return identity.User{}, authn.ErrUnauthenticated
	}
	u, err := s.users.ByID(ctx, p.ID)
	if errors.Is(err, identity.ErrNotFound) {
		return identity.User{}, authn.ErrUnauthenticated
	}
	if err != nil {
		return identity.User{}, fmt.Errorf("loading session user: %w", err)
	}
	if u.Disabled {
		return identity.User{}, authn.ErrUnauthenticated
	}
	return u, nil
}

// BeginPasskeyAdd starts registering another passkey for p, a session
// whose second factor was verified. Errors: [ErrPasskeysDisabled],
// [ErrNeedsVerifiedSession], authn.ErrUnauthenticated,
// passkey.ErrTooMany, [*RateLimitError], storage errors.
func (s *Service) BeginPasskeyAdd(ctx context.Context, p authn.Principal, addr netip.Addr) (PasskeyBegin, error) {
	if s.rp == nil {
		return PasskeyBegin{}, ErrPasskeysDisabled
	}
	if err := s.checkAddress(ctx, audit.ActionPasskeyAdd, p.ID, addr); err != nil {
		return PasskeyBegin{}, err
	}
	u, err := s.sessionUser(ctx, p)
	if err != nil {
		return PasskeyBegin{}, err
	}
	if !p.MFA || !u.MFAEnrolled {
		return PasskeyBegin{}, ErrNeedsVerifiedSession
	}
	pu, err := s.passkeyUser(ctx, u)
	if err != nil {
		return PasskeyBegin{}, err
	}
	opts, c, err := s.rp.BeginRegistration(pu, u.Updated.UnixMicro())
	if err != nil {
		return PasskeyBegin{}, err
	}
	return s.begin(opts, c)
}

// FinishPasskeyAdd verifies the answer to a ceremony from
// [Service.BeginPasskeyAdd] and stores the passkey, the ceremony's use
// and the audit event in one transaction; a refusal is audited.
// Errors: [ErrPasskeysDisabled], [ErrNeedsVerifiedSession],
// authn.ErrUnauthenticated, passkey.ErrInvalidCeremony,
// passkey.ErrRejected (also for a replay or a credential registered
// already), passkey.ErrTooMany, [*RateLimitError], storage and audit
// errors.
func (s *Service) FinishPasskeyAdd(ctx context.Context, p authn.Principal, ceremonyToken, name string, response []byte, addr netip.Addr) (passkey.Credential, error) {
	if s.rp == nil {
		return passkey.Credential{}, ErrPasskeysDisabled
	}
	if err := s.checkAddress(ctx, audit.ActionPasskeyAdd, p.ID, addr); err != nil {
		return passkey.Credential{}, err
	}
	u, err := s.sessionUser(ctx, p)
	if err != nil {
		return passkey.Credential{}, err
	}
	if !p.MFA || !u.MFAEnrolled {
		return passkey.Credential{}, ErrNeedsVerifiedSession
	}
	deny := func(cause error, policies ...string) (passkey.Credential, error) {
		s.logger.InfoContext(ctx, "passkey registration refused", slog.String("user", u.ID), slog.String("reason", reason(cause)))
		if err := s.record(ctx, s.event(audit.ActionPasskeyAdd, audit.OutcomeDenied, u.ID, addr, p.SessionID, policies...)); err != nil {
			return passkey.Credential{}, err
		}
		return passkey.Credential{}, cause
	}
	c, err := s.openCeremony(ceremonyToken, passkey.KindRegister, u)
	if err != nil {
		return deny(err, "ceremony-invalid")
	}
	pu, err := s.passkeyUser(ctx, u)
	if err != nil {
		return passkey.Credential{}, err
	}
	cred, err := s.rp.FinishRegistration(pu, c, response, name)
	if errors.Is(err, passkey.ErrRejected) || errors.Is(err, passkey.ErrInvalidCeremony) || errors.Is(err, passkey.ErrTooMany) {
		return deny(err)
	}
	if err != nil {
		return passkey.Credential{}, err
	}
	cred.ID = s.newID()
	use, err := s.ceremonyUse(c)
	if err != nil {
		return passkey.Credential{}, err
	}
	ev := s.event(audit.ActionPasskeyAdd, audit.OutcomeSuccess, u.ID, addr, p.SessionID)
	ev.Entities = []string{"User/" + u.ID, "Passkey/" + cred.ID}
	recs, err := s.seal(ev)
	if err != nil {
		return passkey.Credential{}, err
	}
	err = AddPasskey(ctx, s.uow, cred, *use, recs[0])
	if errors.Is(err, storage.ErrConflict) {
		return deny(passkey.ErrRejected, "conflict")
	}
	if err != nil {
		return passkey.Credential{}, fmt.Errorf("adding passkey: %w", err)
	}
	return cred, nil
}

// Passkeys lists p's own passkeys, oldest first. Errors:
// [ErrPasskeysDisabled], authn.ErrUnauthenticated, storage errors.
func (s *Service) Passkeys(ctx context.Context, p authn.Principal) ([]passkey.Credential, error) {
	if s.rp == nil {
		return nil, ErrPasskeysDisabled
	}
	if p.Kind != authn.KindSession {
		return nil, authn.ErrUnauthenticated
	}
	return s.passkeys.Passkeys(ctx, p.ID)
}

// RenamePasskey renames p's passkey id (the name is cleaned as
// passkey.CleanName does) and audits it in the same transaction.
// Errors: [ErrPasskeysDisabled], [ErrPasskeyNotFound],
// authn.ErrUnauthenticated, storage and audit errors.
func (s *Service) RenamePasskey(ctx context.Context, p authn.Principal, id, name string, addr netip.Addr) (string, error) {
	if s.rp == nil {
		return "", ErrPasskeysDisabled
	}
	if p.Kind != authn.KindSession {
		return "", authn.ErrUnauthenticated
	}
	name = passkey.CleanName(name, s.now())
	ev := s.event(audit.ActionPasskeyRename, audit.OutcomeSuccess, p.ID, addr, p.SessionID)
	ev.Entities = []string{"User/" + p.ID, "Passkey/" + id}
	recs, err := s.seal(ev)
	if err != nil {
		return "", err
	}
	err = RenamePasskey(ctx, s.uow, p.ID, id, name, recs[0])
	if errors.Is(err, storage.ErrNotFound) {
		return "", ErrPasskeyNotFound
	}
	if err != nil {
		return "", fmt.Errorf("renaming passkey: %w", err)
	}
	return name, nil
}

// DeletePasskey removes p's passkey id and audits it in the same
// transaction. Removing the last second factor of an enrolled account
// is refused (and the refusal audited): an account that must use MFA
// would otherwise be left with recovery codes only. Errors:
// [ErrPasskeysDisabled], [ErrPasskeyNotFound], [ErrLastFactor],
// authn.ErrUnauthenticated, storage and audit errors.
func (s *Service) DeletePasskey(ctx context.Context, p authn.Principal, id string, addr netip.Addr) error {
	if s.rp == nil {
		return ErrPasskeysDisabled
	}
	if p.Kind != authn.KindSession {
		return authn.ErrUnauthenticated
	}
	ev := s.event(audit.ActionPasskeyRemove, audit.OutcomeSuccess, p.ID, addr, p.SessionID)
	ev.Entities = []string{"User/" + p.ID, "Passkey/" + id}
	recs, err := s.seal(ev)
	if err != nil {
		return err
	}
	err = DeletePasskey(ctx, s.uow, p.ID, id, recs[0])
	switch {
	case errors.Is(err, ErrLastFactor):
		denied := s.event(audit.ActionPasskeyRemove, audit.OutcomeDenied, p.ID, addr, p.SessionID, "last-factor")
		denied.Entities = ev.Entities
		if rerr := s.record(ctx, denied); rerr != nil {
			return rerr
		}
		return ErrLastFactor
	case errors.Is(err, storage.ErrNotFound):
		return ErrPasskeyNotFound
	case err != nil:
		return fmt.Errorf("removing passkey: %w", err)
	}
	return nil
}
