package smart

import (
	"context"
	"errors"
	"net/http"

	"github.com/phivault/phivault/internal/audit"
	"github.com/phivault/phivault/internal/authn/smart/scope"
)

// launchTokenResponse is the token response of App Launch (SMART App
// Launch 2.0 "access token response").
type launchTokenResponse struct {
	AccessToken       string `json:"access_token"`
	TokenType         string `json:"token_type"`
	ExpiresIn         int64  `json:"expires_in"`
	Scope             string `json:"scope"`
	RefreshToken      string `json:"refresh_token,omitempty"`
	IDToken           string `json:"id_token,omitempty"`
	Patient           string `json:"patient,omitempty"`
	NeedPatientBanner *bool  `json:"need_patient_banner,omitempty"`
}

// authorizationCode serves grant_type=authorization_code (RFC 6749
// §4.1.3, RFC 7636 §4.5).
func (s *Server) authorizationCode(w http.ResponseWriter, r *http.Request) error {
	ctx, form := r.Context(), r.PostForm
	if s.opts.Launch == nil {
		return oauthErr(ErrUnsupportedGrantType, "App Launch is not enabled", nil)
	}
	c, err := s.auth.launchClient(ctx, form)
	if err != nil {
		return s.rec.deny(ctx, r, audit.ActionTokenCreate, "", err)
	}
	code, verifier, ru := form.Get("code"), form.Get("code_verifier"), form.Get("redirect_uri")
	if code == "" || verifier == "" || ru == "" {
		return s.rec.deny(ctx, r, audit.ActionTokenCreate, c.ID, oauthErr(ErrInvalidRequest, "code, code_verifier and redirect_uri are required", nil))
	}
	bad := func(desc string) error {
		return s.rec.deny(ctx, r, audit.ActionTokenCreate, c.ID, oauthErr(ErrInvalidGrant, desc, nil))
	}
	if len(code) != secretLen || code[:len(CodePrefix)] != CodePrefix {
		return bad("the authorization code is invalid")
	}
	h := hashToken(code)
	cd, authz, err := s.opts.Launch.UseCode(ctx, h[:])
	switch {
	case errors.Is(err, ErrNotFound):
		return bad("the authorization code is invalid")
	case errors.Is(err, ErrCodeUsed):
		// RFC 6749 §4.1.2: a second use revokes what the first issued.
		if authz.ClientID != c.ID {
			return bad("the authorization code is invalid")
		}
		if rerr := s.families.revoke(ctx, r, authz, "code-reuse"); rerr != nil {
			return rerr
		}
		return bad("the authorization code was already used; its tokens are revoked")
	case err != nil:
		return oauthErr(errServer, "", err)
	}
	switch {
	case authz.ClientID != c.ID:
		return bad("the authorization code was issued to another client")
	case !constantTimeEqual(cd.RedirectURI, ru):
		return bad("redirect_uri does not match the authorization request")
	case !s.opts.Now().Before(cd.Expires):
		return bad("the authorization code has expired")
	case authz.Revoked:
		return bad("the authorization was revoked")
	case !isVerifier(verifier) || !constantTimeEqual(pkceS256(verifier), cd.Challenge):
		return bad("code_verifier does not match the code_challenge")
	}
	if s.opts.Users != nil {
		active, err := s.opts.Users.UserActive(ctx, authz.UserID, authz.Roles)
		if err != nil {
			return oauthErr(errServer, "", err)
		}
		if !active {
			return bad("the user's account is disabled, or its roles changed since the app was authorized: launch the app again")
		}
	}
	if err := s.rec.recordToken(ctx, r, audit.ActionTokenCreate, audit.OutcomeSuccess, authz, http.StatusOK, "authorization-code"); err != nil {
		return err
	}
	return s.issueLaunch(ctx, w, authz, authz.Scopes, cd.Nonce, true)
}

// refreshToken serves grant_type=refresh_token with rotation: each
// refresh spends the presented token and returns a new one; a spent
// token presented again revokes the whole authorization (OAuth 2.0
// Security BCP §4.14.2).
func (s *Server) refreshToken(w http.ResponseWriter, r *http.Request) error {
	ctx, form := r.Context(), r.PostForm
	if s.opts.Launch == nil {
		return oauthErr(ErrUnsupportedGrantType, "App Launch is not enabled", nil)
	}
	c, err := s.auth.launchClient(ctx, form)
	if err != nil {
		return s.rec.deny(ctx, r, ActionTokenRefresh, "", err)
	}
	bad := func(desc string) error {
		return s.rec.deny(ctx, r, ActionTokenRefresh, c.ID, oauthErr(ErrInvalidGrant, desc, nil))
	}
	tok := form.Get("refresh_token")
	if tok == "" {
		return s.rec.deny(ctx, r, ActionTokenRefresh, c.ID, oauthErr(ErrInvalidRequest, "refresh_token is required", nil))
	}
	if len(tok) != secretLen || tok[:len(RefreshTokenPrefix)] != RefreshTokenPrefix {
		return bad("the refresh token is invalid")
	}
	h := hashToken(tok)
	rt, err := s.opts.Launch.RefreshToken(ctx, h[:])
	if errors.Is(err, ErrNotFound) {
		return bad("the refresh token is invalid")
	}
	if err != nil {
		return oauthErr(errServer, "", err)
	}
	authz, err := s.opts.Launch.Authorization(ctx, rt.Authorization)
	if err != nil {
		return oauthErr(errServer, "", err)
	}
	if authz.ClientID != c.ID {
		return bad("the refresh token is invalid")
	}
	if rt.Spent && !authz.Revoked {
		if rerr := s.families.revoke(ctx, r, authz, "refresh-reuse"); rerr != nil {
			return rerr
		}
		return bad("the refresh token was already used; every token of this authorization is revoked")
	}
	now := s.opts.Now()
	if rt.Spent || authz.Revoked || !now.Before(rt.Expires) || !now.Before(authz.Expires) {
		return bad("the refresh token has expired or was revoked")
	}
	if s.opts.Users != nil {
		active, err := s.opts.Users.UserActive(ctx, authz.UserID, authz.Roles)
		if err != nil {
			return oauthErr(errServer, "", err)
		}
		if !active {
			return bad("the user's account is disabled, or its roles changed since the app was authorized: launch the app again")
		}
	}
	scopes := authz.Scopes
	if raw := form.Get("scope"); raw != "" {
		req, err := scope.ParseSet(raw)
		if err != nil {
			return s.rec.deny(ctx, r, ActionTokenRefresh, c.ID, oauthErr(ErrInvalidScope, "the scope parameter is malformed or too large", err))
		}
		if scopes = scope.Intersect(authz.Scopes, req); !hasResourceScope(scopes) {
			return s.rec.deny(ctx, r, ActionTokenRefresh, c.ID, oauthErr(ErrInvalidScope, "the scopes must be a subset of those granted", nil))
		}
	}
	next, nh, err := s.newSecret(RefreshTokenPrefix)
	if err != nil {
		return oauthErr(errServer, "", err)
	}
	nrt := RefreshToken{Hash: nh[:], Authorization: authz.ID, Issued: now.UTC(), Expires: refreshExpiry(authz, now)}
	// Audit first: a refused audit leaves the old token unspent.
	if err := s.rec.recordToken(ctx, r, ActionTokenRefresh, audit.OutcomeSuccess, authz, http.StatusOK, "refresh-rotated"); err != nil {
		return err
	}
	if err := s.opts.Launch.RotateRefreshToken(ctx, h[:], nrt); errors.Is(err, ErrRefreshSpent) {
		// Lost a race with another use of the same token: that is reuse.
		if rerr := s.families.revoke(ctx, r, authz, "refresh-reuse"); rerr != nil {
			return rerr
		}
		return bad("the refresh token was already used; every token of this authorization is revoked")
	} else if err != nil {
		return oauthErr(errServer, "", err)
	}
	return s.issueLaunchWith(ctx, w, authz, scopes, "", false, next)
}

// issueLaunch issues the access token (and a first refresh token when
// offline_access or online_access was granted, and an id_token for
// openid) of a code exchange.
func (s *Server) issueLaunch(ctx context.Context, w http.ResponseWriter, a Authorization, scopes scope.Set, nonce string, first bool) error {
	var rtok string
	if first && (a.Scopes.Has(scope.KindOfflineAccess) || a.Scopes.Has(scope.KindOnlineAccess)) {
		sec, h, err := s.newSecret(RefreshTokenPrefix)
		if err != nil {
			return oauthErr(errServer, "", err)
		}
		now := s.opts.Now()
		if err := s.opts.Launch.PutRefreshToken(ctx, RefreshToken{Hash: h[:], Authorization: a.ID, Issued: now.UTC(), Expires: refreshExpiry(a, now)}); err != nil {
			return oauthErr(errServer, "", err)
		}
		rtok = sec
	}
	return s.issueLaunchWith(ctx, w, a, scopes, nonce, first, rtok)
}

func (s *Server) issueLaunchWith(ctx context.Context, w http.ResponseWriter, a Authorization, scopes scope.Set, nonce string, withID bool, refresh string) error {
	secret, t, err := s.tokens.issueFor(ctx, a.ClientID, scopes, a.ID)
	if err != nil {
		return oauthErr(errServer, "", err)
	}
	resp := launchTokenResponse{AccessToken: secret, TokenType: "Bearer", ExpiresIn: int64(t.Expires.Sub(t.Issued).Seconds()),
		Scope: scopes.String(), RefreshToken: refresh}
	if a.Patient != "" {
		resp.Patient = a.Patient
		banner := true
		resp.NeedPatientBanner = &banner
	}
	if withID && scopes.Has(scope.KindOpenID) {
		if resp.IDToken, err = s.ids.idToken(a, scopes, nonce); err != nil {
			return oauthErr(errServer, "", err)
		}
	}
	writeJSON(w, http.StatusOK, resp)
	return nil
}

// UserChecker says whether a user may still use what they approved: a
// disabled or deleted account, or one that no longer holds every role
// the authorization was approved with (a role removed since), gets no
// new tokens by code exchange or refresh.
type UserChecker interface {
	UserActive(ctx context.Context, userID string, roles []string) (bool, error)
}
