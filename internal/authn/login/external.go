package login

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/phivault/phivault/internal/audit"
	"github.com/phivault/phivault/internal/identity"
)

// External is a first factor checked by an external identity provider
// (enterprise SSO, package oidc), as [Service.LoginExternal] receives it.
type External struct {
	// Issuer names the IdP (its OIDC issuer URL) in the audit record.
	Issuer string
	// MFA is true when the IdP states that it checked a second factor
	// (oidc.Identity.MFA). Then no phivault second factor is asked.
	MFA bool
	// AMR and ACR are the IdP's statement, recorded in the audit event
	// (RFC 8176 method names and an assurance level: no secret).
	AMR []string
	ACR string
}

// Limits on the IdP-supplied values copied into audit records.
const (
	maxAuditAMR      = 8  // RFC 8176 registers 19 values; a token rarely states more than 3
	maxAuditClaimLen = 64 // longer values are cut
)

// Policies returns the audit policy strings of x: "oidc", the issuer,
// and the amr and acr the IdP stated (printable ASCII, bounded).
func (x External) Policies() []string {
	p := []string{"oidc", "issuer=" + auditSafe(x.Issuer, 256)}
	if len(x.AMR) > 0 {
		amr := make([]string, 0, min(len(x.AMR), maxAuditAMR))
		for _, v := range x.AMR[:min(len(x.AMR), maxAuditAMR)] {
			amr = append(amr, auditSafe(v, maxAuditClaimLen))
		}
		p = append(p, "amr="+strings.Join(amr, "+"))
	}
	if x.ACR != "" {
		p = append(p, "acr="+auditSafe(x.ACR, maxAuditClaimLen))
	}
	return p
}

// auditSafe keeps printable ASCII of s, at most n bytes.
func auditSafe(s string, n int) string {
	b := make([]byte, 0, min(len(s), n))
	for i := 0; i < len(s) && len(b) < n; i++ {
		c := s[i]
		if c < 0x21 || c > 0x7e {
			c = '?'
		}
		b = append(b, c)
	}
	return string(b)
}

// LoginExternal continues a login whose first factor the IdP checked,
// for u, an account the caller linked to the IdP identity and found
// enabled. When the IdP states a second factor (x.MFA), or u holds no
// workforce role, the session starts at once (session, audit events and
// lockout reset in one transaction); otherwise the result is a
// challenge exactly as after a correct password ([Service.Login]):
// enrol TOTP, or verify it. Every outcome is audited as
// audit.ActionSSOLogin with x.Policies. Errors: [ErrInvalidCredentials]
// for a disabled account, [*RateLimitError], audit and storage errors.
func (s *Service) LoginExternal(ctx context.Context, u identity.User, x External, addr netip.Addr) (Result, error) {
	if err := s.checkAddress(ctx, audit.ActionSSOLogin, u.ID, addr); err != nil {
		return Result{}, err
	}
	pol := x.Policies()
	if u.Disabled {
		if err := s.record(ctx, s.event(audit.ActionSSOLogin, audit.OutcomeDenied, u.ID, addr, "", append(slices.Clip(pol), "disabled")...)); err != nil {
			return Result{}, err
		}
		return Result{}, ErrInvalidCredentials
	}
	key, err := s.loginKey(u.Username)
	if err != nil {
		return Result{}, err
	}
	if x.MFA || !u.RequiresMFA() {
		reason := "idp-mfa"
		if !x.MFA {
			reason = "no-workforce-role"
		}
		started, err := s.start(ctx, u.ID, x.MFA, addr, Commit{LoginKey: key},
			func(sid string) []audit.Event {
				return []audit.Event{
					s.event(audit.ActionSSOLogin, audit.OutcomeSuccess, u.ID, addr, sid, append(slices.Clip(pol), reason)...),
					s.event(audit.ActionLogin, audit.OutcomeSuccess, u.ID, addr, sid, "oidc"),
				}
			})
		if err != nil {
			return Result{}, err
		}
		return Result{Session: &started}, nil
	}
	// The IdP checked one factor: phivault asks for its own second, with
	// the same challenge as after a password. The lockout is not reset.
	step := stepMFA
	if !u.MFAEnrolled {
		step = stepEnroll
	}
	tok, err := s.sealChallenge(challenge{User: u.ID, Step: step, Version: u.Updated.UnixMicro(), Expires: s.now().Add(ChallengeTTL).Unix()})
	if err != nil {
		return Result{}, fmt.Errorf("sso login: %w", err)
	}
	methods, err := s.methods(ctx, u.ID, step)
	if err != nil {
		return Result{}, fmt.Errorf("sso login: %w", err)
	}
	if err := s.record(ctx, s.event(audit.ActionSSOLogin, audit.OutcomeSuccess, u.ID, addr, "", append(slices.Clip(pol), "mfa-"+step)...)); err != nil {
		return Result{}, err
	}
	return Result{MFARequired: true, EnrollmentRequired: step == stepEnroll, Challenge: tok, Methods: methods}, nil
}

// FailExternal audits a refused SSO sign-in (audit.ActionSSOLogin,
// denied) for userID ("" when no account was reached) with x.Policies
// and reason ("state", "exchange", "no-role", "not-provisioned"...). The
// caller answers only after it returns nil: a refusal that cannot be
// audited fails as audit.ErrUnavailable.
func (s *Service) FailExternal(ctx context.Context, userID string, x External, reason string, addr netip.Addr) error {
	if userID == "" {
		userID = unknownUser
	}
	return s.record(ctx, s.event(audit.ActionSSOLogin, audit.OutcomeDenied, userID, addr, "", append(x.Policies(), reason)...))
}
