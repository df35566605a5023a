// Package httpapi is phivault's HTTP surface: the FHIR R4 REST API at
// /fhir, health endpoints, and the one middleware stack every request
// takes.
//
// # The middleware order (DESIGN §3)
//
// Outermost first; this list and [Server.Handler] are the single place
// where the order is defined:
//
//  1. request id, the request's audit trail, the handler timeout and the
//     body's minimum pace (pace.go), panic recovery and the access log
//     (path only, never the query string: search values can be PHI).
//     For audited paths it also records, before the status is sent, a
//     generic event when no handler recorded one (attempts.go), failing
//     closed with 503. It tells the RequestObserver (observe.go: metrics
//     and the request's span) of the request, by route pattern, never
//     by path;
//  2. security headers (HSTS, nosniff, a deny-all CSP, no framing, no-store),
//     then the attempt limit: an audited request without credentials
//     from an address whose attempt budget is spent is answered 429
//     here and counted (attempts.go, package attempt);
//  3. body size limit (http.MaxBytesReader);
//  4. format negotiation (JSON only: 406/415 otherwise);
//  5. authentication (auth_session.go): an Authorization header is a
//     bearer API token, and only that; without one, the session cookie
//     (session → user, refused if disabled), whose state-changing
//     requests must carry X-CSRF-Token. 401 without a valid credential;
//     403 for a cookie request without the CSRF token, and for a session
//     that may not reach PHI (workforce without a verified second factor,
//     or a non-workforce account until authorization lands);
//  6. the SMART scope gates (smart.go, launch_gate.go): a token's scopes
//     only narrow; an App Launch token with patient/ scopes (or of a
//     patient account) is confined to one patient's compartment;
//  7. authorization (authz.go): the principal's Cedar guard joins the
//     request; the record consults it on every resource it touches and
//     narrows searches inside the query. Denials are 403 OperationOutcomes
//     (404 where a policy conceals existence, ADR 0011), audited with the
//     deciding policy ids before the answer; without an Authorizer, 503;
//  8. the FHIR handler, which audits before it responds (fail closed).
//
// /log/ (package auditapi: the audit transparency log) takes steps 1–2;
// its entry bundles authenticate as step 5 (newAuditAPI, mount.go) and
// are audited, the rest is public. The FHIR AuditEvent read API (package
// auditapi too) is served inside the FHIR API, after step 7.
//
// /auth/ (package signin: login, second factor, passkeys, enterprise
// sign-in, logout, own sessions) takes steps 1–2, its own small body
// limit, and authenticates the session cookie itself where an endpoint
// needs it (with step 5's authentication, given by newSignin in
// mount.go). The SMART App Launch pages at /oauth2/authorize
// (internal/webui/authorize, mounted through Options.Authorize) take
// steps 1–2 with their own CSP and body limit, and check their flow
// cookie and CSRF token themselves.
//
// GET /metrics (observe.go) takes steps 1–2 and its own bearer token
// (package observe); without Options.Metrics it answers 404.
//
// The web UI (internal/webui, mounted at / when Options.UI is set) takes
// steps 1–2 and then its own middleware, which replaces the deny-all CSP
// with the UI's strict one and checks form CSRF tokens (see that
// package's documentation).
//
// Connection limits and the server's timeouts (header, idle, write,
// TLS handshake) are set where the listener is opened (listener.go,
// cli serve).
//
// # Security invariants
//
//   - Every error is an OperationOutcome with a safe message and the
//     request id; internal causes go to the log only.
//   - No PHI in logs or error texts: only paths, ids and statuses.
package httpapi
