package smart

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/phivault/phivault/internal/audit"
	"github.com/phivault/phivault/internal/authn/smart/scope"
)

// families is the refresh-token family of App Launch authorizations:
// revoking an authorization revokes every access and refresh token
// issued from it (a reused code or refresh token, or a client's
// revocation of its refresh token), audited, and drops its access
// tokens from this process's cache.
type families struct {
	launch LaunchStore
	tokens *tokens
	rec    *recorder
}

// revoke revokes an authorization and every token issued from it,
// audits it, and drops its tokens from this process's cache.
func (f *families) revoke(ctx context.Context, r *http.Request, a Authorization, reason string) error {
	status := http.StatusBadRequest // a reuse: the request is refused
	if reason == "client-revoked" {
		status = http.StatusOK
	}
	if err := f.launch.RevokeAuthorization(ctx, a.ID); err != nil && !errors.Is(err, ErrNotFound) {
		return oauthErr(errServer, "", err)
	}
	f.tokens.forgetAuthorization(a.ID)
	return f.rec.recordToken(ctx, r, ActionFamilyRevoke, audit.OutcomeSuccess, a, status, reason)
}

// revokeRefresh revokes the authorization of a refresh token of
// clientID; another client's or an unknown token is ignored (RFC 7009
// §2.2: the answer is 200 either way).
func (f *families) revokeRefresh(ctx context.Context, r *http.Request, clientID, tok string) error {
	h := hashToken(tok)
	rt, err := f.launch.RefreshToken(ctx, h[:])
	if errors.Is(err, ErrNotFound) {
		return nil
	}
	if err != nil {
		return oauthErr(errServer, "", err)
	}
	a, err := f.launch.Authorization(ctx, rt.Authorization)
	if errors.Is(err, ErrNotFound) {
		return nil
	}
	if err != nil {
		return oauthErr(errServer, "", err)
	}
	if a.ClientID != clientID || a.Revoked {
		return nil
	}
	return f.revoke(ctx, r, a, "client-revoked")
}

// refreshExpiry is the expiry of a refresh token of a issued at now:
// OnlineRefreshTTL, or OfflineRefreshTTL with offline_access, never
// past the authorization's own expiry.
func refreshExpiry(a Authorization, now time.Time) time.Time {
	ttl := OnlineRefreshTTL
	if a.Scopes.Has(scope.KindOfflineAccess) {
		ttl = OfflineRefreshTTL
	}
	exp := now.UTC().Add(ttl)
	if a.Expires.Before(exp) {
		exp = a.Expires
	}
	return exp
}
