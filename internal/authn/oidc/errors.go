package oidc

import "errors"

// Sentinel errors. Every error from this package wraps exactly one of them
// (an expired token wraps both [ErrInvalidToken] and [ErrTokenExpired]);
// callers branch with [errors.Is]. Error text never contains a token, an
// authorization code, a PKCE verifier, a nonce, a state or the client
// secret, so it may be logged; it must still not be shown to the user:
// show the generic message each sentinel suggests.
var (
	// ErrInvalidConfig means an option is missing or wrong; the message
	// names the option. Refuse to start.
	ErrInvalidConfig = errors.New("invalid oidc configuration")

	// ErrDiscovery means the issuer's discovery document could not be
	// fetched, or named another issuer, or advertised endpoints phivault
	// will not use (not https, no PKCE S256). At start-up: refuse to
	// enable SSO and log it; the IdP or its configuration is at fault.
	ErrDiscovery = errors.New("oidc discovery failed")

	// ErrState means the state returned to the callback does not match
	// the one stored for this browser: a forged or replayed callback
	// (CSRF, RFC 6749 §10.12). Show "sign-in failed, start again", audit
	// a login failure, and do not call the token endpoint.
	ErrState = errors.New("oidc state mismatch")

	// ErrExchange means the authorization code could not be exchanged:
	// the IdP refused it (expired, replayed, wrong PKCE verifier) or could
	// not be reached. Show "sign-in failed, start again"; audit a login
	// failure.
	ErrExchange = errors.New("oidc code exchange failed")

	// ErrInvalidToken means the ID token is missing, oversized, malformed,
	// unsigned or badly signed, from another issuer, for another audience,
	// not yet valid or expired, or lacks a subject. Show "sign-in failed";
	// audit a login failure: repeated ones may be an attack.
	ErrInvalidToken = errors.New("invalid oidc id token")

	// ErrTokenExpired is wrapped together with [ErrInvalidToken] when the
	// only reason is expiry (by the clock given to [New]). Usually clock
	// skew or a slow user; show "sign-in failed, start again".
	ErrTokenExpired = errors.New("oidc id token expired")

	// ErrNonce means the ID token's nonce is missing or differs from the
	// one stored for this browser: a token injected or replayed from
	// another login (OIDC Core §3.1.3.7 step 11). Handle as
	// [ErrInvalidToken].
	ErrNonce = errors.New("oidc nonce mismatch")

	// ErrNoRole means the token is valid but none of the user's IdP groups
	// maps to a phivault role. Answer 403 "your account has no access to
	// phivault: ask an administrator"; audit an authorization denial.
	ErrNoRole = errors.New("no phivault role for the idp groups")
)
