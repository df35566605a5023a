package smart

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"time"
	"unicode/utf8"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// allowedAlgs is fixed before parsing: SMART Backend Services names RS384
// and ES384. "none", HS* and everything else never reach a key.
var allowedAlgs = []jose.SignatureAlgorithm{jose.RS384, jose.ES384}

// errAuthFailed is the one public answer before the signature is
// verified: it does not tell which client ids exist or which kid is known.
const errAuthFailed = "client authentication failed"

// clientAuth authenticates clients at the token, introspection and
// revocation endpoints: a private_key_jwt assertion (verified by
// go-jose against the client's registered keys, its jti used once), or
// for App Launch grants a public client's client_id.
type clientAuth struct {
	store    Store
	keys     *keyResolver
	tokenURL string // the aud every assertion must name
	now      func() time.Time
}

// authenticate checks the client assertion in form (RFC 7521 §4.2,
// RFC 7523 §3, SMART Backend Services) and returns the client. Every
// failure wraps ErrInvalidClient (or ErrInvalidRequest for a missing
// parameter); a failing store wraps errServer.
func (ca *clientAuth) authenticate(ctx context.Context, form url.Values) (Client, error) {
	typ, assertion := form.Get("client_assertion_type"), form.Get("client_assertion")
	if typ == "" || assertion == "" {
		return Client{}, oauthErr(ErrInvalidRequest, "client_assertion_type and client_assertion are required", nil)
	}
	if typ != AssertionType {
		return Client{}, oauthErr(ErrInvalidClient, "unsupported client_assertion_type", nil)
	}
	c, claims, err := ca.verifyAssertion(ctx, assertion)
	if err != nil {
		return Client{}, err
	}
	// RFC 7521 §4.2: a client_id parameter, if sent, must name the same client.
	if id := form.Get("client_id"); id != "" && id != c.ID {
		return Client{}, oauthErr(ErrInvalidClient, "client_id does not match the assertion", nil)
	}
	// The jti is recorded last, so a refused assertion does not burn it.
	exp := claims.Expiry.Time().Add(ClockSkew)
	if err := ca.store.UseJTI(ctx, c.ID, claims.ID, exp, ca.now()); err != nil {
		if errors.Is(err, ErrReplay) {
			return Client{}, oauthErr(ErrInvalidClient, "client assertion jti was already used", nil)
		}
		return Client{}, oauthErr(errServer, "", fmt.Errorf("recording jti: %w", err))
	}
	return c, nil
}

// verifyAssertion verifies the signature and the claims, but does not
// record the jti.
func (ca *clientAuth) verifyAssertion(ctx context.Context, assertion string) (Client, *jwt.Claims, error) {
	fail := func(cause error) error { return oauthErr(ErrInvalidClient, errAuthFailed, cause) }
	if len(assertion) > MaxAssertionLen {
		return Client{}, nil, fail(fmt.Errorf("assertion longer than %d bytes", MaxAssertionLen))
	}
	tok, err := jwt.ParseSigned(assertion, allowedAlgs)
	if err != nil {
		// go-jose's text names the problem (e.g. the unexpected alg), never
		// the token.
		return Client{}, nil, fail(fmt.Errorf("parsing assertion: %w", err))
	}
	if len(tok.Headers) != 1 {
		return Client{}, nil, fail(errors.New("assertion must carry exactly one signature"))
	}
	h := tok.Headers[0]
	if h.KeyID == "" {
		return Client{}, nil, fail(errors.New("assertion header has no kid"))
	}
	var unverified jwt.Claims
	if err := tok.UnsafeClaimsWithoutVerification(&unverified); err != nil {
		return Client{}, nil, fail(fmt.Errorf("decoding claims: %w", err))
	}
	// The unverified iss is only a lookup key, bounded before use.
	id := unverified.Issuer
	if id == "" || len(id) > 256 || !utf8.ValidString(id) {
		return Client{}, nil, fail(errors.New("assertion iss is missing or malformed"))
	}
	c, err := ca.store.Client(ctx, id)
	switch {
	case errors.Is(err, ErrNotFound):
		return Client{}, nil, fail(errors.New("unknown client"))
	case err != nil:
		return Client{}, nil, oauthErr(errServer, "", fmt.Errorf("looking up client: %w", err))
	case c.Disabled:
		return Client{}, nil, fail(fmt.Errorf("client %s is disabled", c.ID))
	case len(c.JWKS) == 0 && c.JWKSURL == "":
		return Client{}, nil, fail(fmt.Errorf("client %s has no keys", c.ID))
	}
	key, err := ca.keys.key(ctx, c, h.KeyID)
	if err != nil {
		return Client{}, nil, fail(fmt.Errorf("client %s: %w", c.ID, err))
	}
	if !keyMatchesAlg(key, h.Algorithm) {
		return Client{}, nil, fail(fmt.Errorf("client %s: key type does not match alg %s", c.ID, h.Algorithm))
	}
	var claims jwt.Claims
	if err := tok.Claims(key.Key, &claims); err != nil {
		return Client{}, nil, fail(fmt.Errorf("client %s: verifying signature: %w", c.ID, err))
	}
	// From here the caller has proven it holds the key: descriptions may
	// name the claim.
	if err := ca.checkClaims(c.ID, &claims); err != nil {
		return Client{}, nil, err
	}
	if !c.Approval.Usable() {
		// Two-person rule (approval.go): a pending or rejected client
		// holds its key but gets nothing. The caller proved it holds the
		// key, so the answer may say why.
		return Client{}, nil, oauthErr(ErrInvalidClient, "this client is not approved: a second security administrator must approve its registration before it obtains tokens",
			fmt.Errorf("client %s: approval %q", c.ID, c.Approval))
	}
	return c, &claims, nil
}

func (ca *clientAuth) checkClaims(id string, c *jwt.Claims) error {
	bad := func(desc string) error { return oauthErr(ErrInvalidClient, desc, fmt.Errorf("client %s", id)) }
	now := ca.now()
	switch {
	case c.Issuer != id || c.Subject != id:
		return bad("client assertion iss and sub must both be the client_id")
	case len(c.Audience) != 1 || c.Audience[0] != ca.tokenURL:
		return bad("client assertion aud must be the token endpoint URL")
	case c.Expiry == nil:
		return bad("client assertion has no exp")
	case now.After(c.Expiry.Time().Add(ClockSkew)):
		return bad("client assertion has expired")
	case c.Expiry.Time().After(now.Add(MaxAssertionLifetime + ClockSkew)):
		return bad("client assertion exp is more than five minutes ahead")
	case c.NotBefore != nil && c.NotBefore.Time().After(now.Add(ClockSkew)):
		return bad("client assertion is not yet valid (nbf)")
	case c.IssuedAt != nil && c.IssuedAt.Time().After(now.Add(ClockSkew)):
		return bad("client assertion iat is in the future")
	case c.ID == "" || len(c.ID) > maxJTILen || !utf8.ValidString(c.ID):
		return bad("client assertion jti is missing or too long")
	}
	return nil
}

// launchClient authenticates the client of an authorization_code or
// refresh_token grant: a confidential client by its private_key_jwt
// assertion, a public client by its client_id alone (its proof is the
// PKCE verifier or the refresh token, both bound to that client_id).
func (ca *clientAuth) launchClient(ctx context.Context, form url.Values) (Client, error) {
	if form.Get("client_assertion") != "" || form.Get("client_assertion_type") != "" {
		c, err := ca.authenticate(ctx, form)
		if err != nil {
			return Client{}, err
		}
		if c.Type != Confidential {
			return Client{}, oauthErr(ErrUnauthorizedClient, "this client may not use this grant type", nil)
		}
		return c, nil
	}
	id := form.Get("client_id")
	if id == "" {
		return Client{}, oauthErr(ErrInvalidRequest, "client_id is required", nil)
	}
	fail := oauthErr(ErrInvalidClient, errAuthFailed, nil)
	if len(id) > maxClientIDLen {
		return Client{}, fail
	}
	c, err := ca.store.Client(ctx, id)
	switch {
	case errors.Is(err, ErrNotFound):
		return Client{}, fail
	case err != nil:
		return Client{}, oauthErr(errServer, "", fmt.Errorf("looking up client: %w", err))
	case c.Disabled, !c.Approval.Usable(), c.Type != Public:
		// A client with keys must use them, and a pending or rejected
		// one gets nothing (approval.go); the answer is the same as for
		// an unknown client, so client ids cannot be probed.
		return Client{}, fail
	}
	return c, nil
}
