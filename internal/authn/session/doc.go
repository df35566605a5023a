// Package session manages browser sessions for local logins: opaque
// tokens, idle and absolute timeouts, revocation, and CSRF tokens for
// cookie-authenticated requests.
//
// # Tokens
//
// A session token is "pvs_" followed by 256 random bits in base64url
// (43 characters). The client holds it in a cookie (HttpOnly; Secure;
// SameSite=Strict, set by the HTTP layer); the store receives only its
// SHA-256 ([HashSecret]), of which the SQL store keeps a keyed hash with
// a MAC of the row (ADR 0022), and a separate random session id, which
// is what lists, logs and revocation use. [Secret] redacts itself.
//
// # Lifetime
//
// A session ends at the first of: [Manager.Revoke] or
// [Manager.RevokeAllForUser], [Options.IdleTimeout] without activity
// (default 15 minutes, HIPAA automatic logoff), or
// [Options.AbsoluteLifetime] after login (default 12 hours). Activity is
// recorded at most once per [TouchInterval].
//
// # Security invariants
//
//   - The raw token is never stored, logged or put in an error; only a
//     hash of it is stored and looked up.
//   - Malformed tokens are rejected by shape before any lookup, and every
//     refusal is the one error [ErrInvalidSession].
//   - Timeouts are checked against the injected clock on every
//     Validate; a failure to record activity fails the request.
//   - CSRF tokens ([CSRFToken]) are bound to the session token and
//     compared in constant time ([CheckCSRF]); see CSRFToken for why a
//     domain-separated SHA-256 is enough.
//   - Only SHA-256 is used here (internal/archtest allow-list); all other
//     cryptography lives in internal/keys.
//   - The Manager does not know users: the caller refuses disabled users
//     and revokes sessions after credential or role changes.
//   - Address is stored in clear. For patient accounts an IP address is
//     a HIPAA identifier (§164.514(b)(2)(i)(O)); callers may pass "".
//
// # Concurrency
//
// A Manager is safe for concurrent use. Concurrent Validates of one
// session may both touch it; Touch only moves LastSeen forward.
package session
