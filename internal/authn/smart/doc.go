// Package smart is phivault's SMART on FHIR authorization server: SMART
// Backend Services (client credentials with private_key_jwt, RFC 7523),
// SMART App Launch 2.0 standalone (authorization code with PKCE S256,
// refresh tokens with rotation, OpenID Connect id_tokens), token
// introspection (RFC 7662), token revocation (RFC 7009),
// /.well-known/smart-configuration and /.well-known/openid-configuration.
// docs/smart.md describes the flows for operators; ADR 0008 says why this
// is built on go-jose rather than an OAuth framework.
//
// # Clients
//
// A [Registry] registers clients. A backend client has a JWK Set (inline
// or by https URL) and a set of system/ scopes. Keys are validated once,
// at registration: RSA of 2048 to 8192 bits or EC P-384, each with a
// unique kid, public only. The same rules apply to every JWK Set fetched
// from a URL.
//
// # Approval (two-person rule)
//
// A client whose grants can reach patient data ([Client.NeedsApproval]:
// every App Launch app, every backend client but a read-only
// terminology feed) is registered [ApprovalPending] unless the
// [Registry] is told it is the offline CLI's break glass. Only a
// client in a usable state ([ClientApproval.Usable]) authenticates at
// any endpoint, is shown a sign-in at /oauth2/authorize, or has its
// tokens accepted ([Client.Active]); any other state, the empty one
// included, is refused. Requests ([ClientRequest]) are decided by a
// second administrator through [Admin] (clientadmin.go, ADR 0020).
//
// # Client authentication
//
// Every endpoint authenticates the client with a signed JWT assertion
// (client_assertion_type urn:ietf:params:oauth:client-assertion-type:jwt-bearer).
// Verification is done by go-jose; this package never parses or checks a
// signature itself. The rules, and why:
//
//   - alg is RS384 or ES384 only, fixed before parsing: refuses "none",
//     HS* (algorithm confusion with a public key as HMAC secret) and
//     everything SMART does not list.
//   - the kid selects one key of the client's registered set, and the
//     key type must match alg; a key's own "alg", if present, must match.
//   - iss = sub = the registered client_id; aud is a single value equal
//     to the token endpoint URL (string equality; a list is refused, which
//     closes the audience-injection attacks on private_key_jwt).
//   - exp is present, not past, and at most [MaxAssertionLifetime] ahead;
//     nbf and iat, if present, are not in the future; all with
//     [ClockSkew] of leeway.
//   - jti is present and is used once: it is stored until exp plus the
//     skew, and a second use is refused.
//
// Before the signature is verified every failure gets the same answer
// ("client authentication failed"), so the endpoint does not say which
// client ids exist. After it is verified the description names the
// failed claim: the caller has proven it holds the key.
//
// # Access tokens
//
// Access tokens are opaque: "pva_" and 256 random bits in base64url. Only
// their SHA-256 is stored (a fast hash suffices for a high-entropy
// secret). They live [DefaultAccessTokenTTL] by default and never longer
// than [MaxAccessTokenTTL]. [Server.ValidateAccessToken] answers from an
// in-memory cache for [DefaultTokenCacheTTL]: a revocation through this
// process takes effect at once, one made by another process (or by
// disabling the client) within that TTL.
//
// # App Launch
//
// [Server.Authorize] validates an authorize request: client_id and
// redirect_uri first (exact string match against the registration),
// and until both are good every error is an [AuthorizeError] with
// Redirect false, which the HTTP layer shows as a page and never as a
// redirect. [ParseAuthorize] is the pure parser behind it (fuzzed). The
// HTTP layer then signs the user in, picks the launch patient and shows
// the consent; the request travels between pages sealed by the keyring
// ([Server.SealFlow], [Server.OpenFlow]) and bound to a flow cookie.
// [Server.Approve] audits the consent, then stores an [Authorization]
// (the family of every token of this consent) and a single-use code.
//
// At the token endpoint, authorization_code checks the client (public:
// client_id; confidential: its assertion), spends the code (compare-and-
// set in the store), then checks client, redirect_uri, expiry ([CodeTTL])
// and the PKCE verifier. A code presented twice revokes its
// authorization. refresh_token rotates: the presented token is spent in
// the transaction that stores its successor, and a spent token presented
// again revokes the authorization, its access tokens and its refresh
// tokens. Lifetimes: [OfflineRefreshTTL], [OfflineAuthorizationTTL],
// [OnlineRefreshTTL], [OnlineAuthorizationTTL], [IDTokenTTL].
//
// id_tokens are RS256, signed by go-jose with a 2048-bit key generated
// once per database and stored sealed ([Server.LoadSigningKey]); the
// public key is served by [Server.JWKSHandler].
//
// # Security invariants
//
//   - No secret (token, assertion, key) appears in an error, a log line
//     or an audit event. Errors carry a public description for the client
//     apart from the internal cause.
//   - Work driven by input is bounded: request body, assertion length,
//     scope string, JWK Set size and key count, RSA modulus size.
//   - JWK Sets are fetched through the injected *http.Client, never
//     http.DefaultClient; redirects are refused; https only unless
//     loopback is explicitly allowed.
//   - Every token issue, refusal, refresh, revocation and consent is
//     appended to the audit log before the response; if that fails the
//     request fails. Events name client, user, session and patient
//     references and a fixed reason, never a code, token or verifier.
//   - Codes, refresh tokens and access tokens are 256-bit secrets stored
//     as SHA-256 only; codes live [CodeTTL] and are single use.
//   - PKCE is S256 only; a redirect_uri is never normalised or matched
//     by prefix.
//   - A client that is pending, rejected or in an unknown approval state
//     obtains nothing (fail closed), whatever key it holds.
//
// # Structure
//
// [Server] serves the HTTP endpoints (handler.go, launchtoken.go,
// discovery.go) and the authorize flow (authorize.go, launch.go), and
// delegates the domain to unexported types of one concern each:
// tokens (token.go) issues, validates, caches and revokes access
// tokens; clientAuth (assertion.go) authenticates clients; families
// (family.go) revokes an App Launch authorization with every token
// issued from it; idSigner (idtoken.go) holds the id_token signing key
// and its public JWK Set; recorder (record.go) builds the audit events.
// jwks.go validates and fetches client JWK Sets.
//
// Values of type [Server], [Registry] and [Admin] are safe for concurrent use.
package smart
