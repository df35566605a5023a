// Package oidc is phivault's enterprise single sign-on: an OpenID Connect
// relying party (OIDC Core 1.0, authorization code flow) built on
// github.com/coreos/go-oidc/v3 and golang.org/x/oauth2.
//
// # Flow
//
// At start-up [New] validates the [Config] and runs discovery against
// the issuer with an injected HTTP client. For each login the HTTP layer:
//
//  1. draws a [Flow] (state, nonce, PKCE verifier; 256 bits each) with
//     [NewFlow], stores it in a sealed, short-lived cookie (see [Flow]
//     for its attributes) and redirects to [RP.AuthURL];
//  2. on the callback, checks the returned state against the cookie with
//     [CheckState], deletes the cookie, and calls [RP.Exchange] with the
//     code, the verifier and the nonce;
//  3. links the [Identity] to an account by (Issuer, Subject), grants
//     Identity.Roles, and, unless Identity.MFA, asks for phivault's own
//     second factor (TOTP or WebAuthn) before the session may use any
//     workforce role (DESIGN §7).
//
// # Roles and MFA
//
// IdP groups (the claim [Config.GroupsClaim]) map to roles through
// [Config.RoleMap]; unmapped groups are ignored and a user with no mapped
// group is refused with [ErrNoRole]. The IdP's statement of a second
// factor is honoured when its "amr" (RFC 8176) contains one of
// [Config.MFAValues] or its "acr" is one of [Config.ACRValues]; anything
// else, including no claim at all, counts as one factor.
//
// # Security invariants
//
//   - Every ID token is verified by go-oidc before any claim is read:
//     signature against the issuer's JWKS (asymmetric algorithms only:
//     "none" and HMAC are refused, so there is no algorithm confusion),
//     issuer equal to [Config.Issuer], audience containing
//     [Config.ClientID] (and azp equal to it when present or when there
//     are several audiences), and expiry against the injected clock.
//   - The nonce is required, compared in constant time, and checked on
//     every login ([ErrNonce]); state is likewise required and compared
//     in constant time ([ErrState]). Together with PKCE S256 (always
//     sent; an IdP that lists its PKCE methods without S256 is refused)
//     they stop CSRF, code injection and token replay.
//   - The issuer and the discovered authorization and token endpoints are
//     https; the client secret is sent only to the token endpoint, and it
//     is read from the environment or a file, never a flag
//     ([Config.ClientSecret]), and redacted in logs.
//   - No token, code, verifier, nonce, state or secret appears in an error
//     or a log line: token-endpoint errors keep only the RFC 6749 error
//     code, library messages are reduced to short printable ASCII, and
//     [Flow], [Config] and [Identity] implement slog.LogValuer. The IdP's
//     tokens are discarded after verification.
//   - Input is bounded: IdP response bodies (1 MiB), the ID token
//     (64 KiB), the authorization code (4 KiB) and the state.
//   - All outbound HTTP uses the injected client, which must have a
//     timeout; nothing uses http.DefaultClient.
//   - Only crypto/rand and crypto/subtle are imported here; signature
//     checks are go-oidc's (go-jose), and the PKCE hash is x/oauth2's.
//
// # Concurrency
//
// An [RP] is immutable after [New] and safe for concurrent use. It holds
// no per-login state; the caller's cookie does.
package oidc
