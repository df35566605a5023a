package smart

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"

	"github.com/phivault/phivault/internal/audit"
	"github.com/phivault/phivault/internal/authn/smart/scope"
)

// Lifetimes of App Launch grants (see docs/smart.md).
const (
	// OfflineRefreshTTL: an offline_access refresh token is usable for 30
	// days after it was issued; each refresh issues a new one, so an app
	// in use stays signed in while an abandoned one expires.
	OfflineRefreshTTL = 30 * 24 * time.Hour
	// OfflineAuthorizationTTL: no refresh token of an offline_access
	// authorization outlives 90 days from consent; the user consents
	// again (a periodic re-authorization, as access reviews expect).
	OfflineAuthorizationTTL = 90 * 24 * time.Hour
	// OnlineRefreshTTL: an online_access refresh token follows the
	// session idle timeout (15 minutes, HIPAA automatic logoff).
	OnlineRefreshTTL = 15 * time.Minute
	// OnlineAuthorizationTTL: an online_access authorization ends after
	// 12 hours, the session's absolute lifetime (a shift).
	OnlineAuthorizationTTL = 12 * time.Hour
	// IDTokenTTL is the lifetime of an id_token: it is read once, at
	// sign-in.
	IDTokenTTL = 5 * time.Minute

	// CodePrefix and RefreshTokenPrefix mark phivault secrets for
	// secret scanners.
	CodePrefix         = "pvc_"
	RefreshTokenPrefix = "pvr_"
)

var secretLen = 4 + base64.RawURLEncoding.EncodedLen(accessTokenBytes)

// LaunchUser is the signed-in user approving an app.
type LaunchUser struct {
	ID       string
	FHIRUser string   // "Practitioner/<id>", "Patient/<id>" or ""
	Roles    []string // identity roles
	Patient  bool     // a patient account: its own compartment only
	Session  string   // session id, for the audit agent
}

// Approval is what the user approved at the consent screen.
type Approval struct {
	User    LaunchUser
	Patient string // launch patient id ("" without patient context)
}

func (s *Server) newSecret(prefix string) (string, [32]byte, error) {
	var b [accessTokenBytes]byte
	if _, err := io.ReadFull(s.opts.Rand, b[:]); err != nil {
		return "", [32]byte{}, fmt.Errorf("generating secret: %w", err)
	}
	sec := prefix + base64.RawURLEncoding.EncodeToString(b[:])
	return sec, hashToken(sec), nil
}

func (s *Server) newID() (string, error) {
	var b [16]byte
	if _, err := io.ReadFull(s.opts.Rand, b[:]); err != nil {
		return "", fmt.Errorf("generating id: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b[:]), nil
}

// Approve records the user's consent to req and returns the redirect to
// the app carrying a new authorization code and the state. The consent
// is audited before the code exists (fail closed).
func (s *Server) Approve(ctx context.Context, r *http.Request, req AuthorizeRequest, a Approval) (string, error) {
	launch := s.opts.Launch
	if launch == nil {
		return "", errors.New("smart: approve: App Launch is not configured")
	}
	granted := req.Scope
	if needsPatient(granted) && a.Patient == "" {
		return "", errors.New("smart: approve: patient/ scopes need a launch patient")
	}
	now := s.opts.Now().UTC()
	id, err := s.newID()
	if err != nil {
		return "", err
	}
	code, h, err := s.newSecret(CodePrefix)
	if err != nil {
		return "", err
	}
	ttl := OnlineAuthorizationTTL
	if granted.Has(scope.KindOfflineAccess) {
		ttl = OfflineAuthorizationTTL
	}
	authz := Authorization{ID: id, ClientID: req.ClientID, UserID: a.User.ID, FHIRUser: a.User.FHIRUser, Roles: a.User.Roles,
		Patient: a.Patient, Scopes: granted, Created: now, Expires: now.Add(ttl)}
	c := Code{Hash: h[:], Authorization: id, RedirectURI: req.RedirectURI, Challenge: req.Challenge, Nonce: req.Nonce, Expires: now.Add(CodeTTL)}
	if err := s.rec.recordLaunch(ctx, r, ActionAuthorize, audit.OutcomeSuccess, req.ClientID, a, http.StatusSeeOther, "consent-approved"); err != nil {
		return "", err
	}
	if err := launch.CreateAuthorization(ctx, authz, c); err != nil {
		return "", fmt.Errorf("smart: approve: %w", err)
	}
	return appendQuery(req.RedirectURI, url.Values{"code": {code}, "state": {req.State}}), nil
}

// Deny audits the user's refusal and returns the access_denied redirect.
func (s *Server) Deny(ctx context.Context, r *http.Request, req AuthorizeRequest, u LaunchUser) (string, error) {
	if err := s.rec.recordLaunch(ctx, r, ActionAuthorize, audit.OutcomeDenied, req.ClientID, Approval{User: u}, http.StatusSeeOther, "consent-denied"); err != nil {
		return "", err
	}
	return ErrorRedirect(req, "access_denied", "the user denied the request"), nil
}

// RefuseAuthorize audits an authorize request refused before consent
// (the error page or error redirect follows).
func (s *Server) RefuseAuthorize(ctx context.Context, r *http.Request, clientID string, status int, reason string) error {
	return s.rec.recordLaunch(ctx, r, ActionAuthorize, audit.OutcomeDenied, clientID, Approval{}, status, reason)
}

func needsPatient(set scope.Set) bool {
	for _, x := range set.Scopes() {
		if x.Kind == scope.KindResource && x.Context == scope.Patient {
			return true
		}
	}
	return false
}

// NeedsPatient reports whether an approval of req must name a launch
// patient: launch/patient or any patient/ scope was granted.
func NeedsPatient(req AuthorizeRequest) bool {
	for _, x := range req.Scope.Scopes() {
		if x.Kind == scope.KindLaunchContext && x.Launch == "patient" {
			return true
		}
	}
	return needsPatient(req.Scope)
}

func constantTimeEqual(a, b string) bool {
	return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}

// pkceS256 is BASE64URL(SHA256(verifier)) (RFC 7636 §4.6).
func pkceS256(verifier string) string {
	h := sha256.Sum256([]byte(verifier))
	return base64.RawURLEncoding.EncodeToString(h[:])
}
