// Package webui is phivault's browser interface: sign-in with a second
// factor (TOTP or a passkey), the workforce's own sessions and passkeys, the clinician's patient search
// and chart, and the public trust page. Pages are rendered on the
// server with html/template; the few scripts and the stylesheet are
// files embedded in the binary and served from /static/.
//
// # Packages
//
// The pages are split by audience, each package with one handler type
// that gets only the services it uses: signin (sign-in, sessions,
// passkeys, the start page; the login service), chart (the staff's
// patient search and chart; the record service, authorizer and
// break-glass), portal (the patient portal and the privacy office's
// reports; no keys) and console (the administration console). What
// they share is in site (templates, error pages, the sign-in and CSRF
// middlewares) and chartview (reading a chart for display). This
// package composes them ([New], [UI.Handler]) and serves the static
// files and the public trust page; internal/archtest checks that no
// audience imports another and that the portal never imports the keys.
//
// # Mounting
//
// internal/httpapi mounts [UI.Handler] at "/" behind its outer
// middleware (request id, panic recovery, access log without query
// strings, the API's security headers). This package's own middleware
// then replaces the API's deny-all Content-Security-Policy with the UI
// policy [CSP], bounds form bodies, and maps every handler error to an
// HTML error page carrying the request id.
//
// # Security invariants
//
//   - No inline script or style: the CSP allows scripts, styles and
//     fetches from 'self' only, images from 'self' and data: (the TOTP
//     QR code), forms that post to 'self', and no framing ([CSP], and
//     X-Frame-Options: DENY).
//   - Every form carries a CSRF token in a hidden field, and every POST
//     is refused with a plain 403 page unless it matches: for a signed-in
//     browser the token is session.CSRFToken of its session cookie
//     (bound to the session, dies with it); before sign-in it is the
//     value of a random __Host- pre-session cookie (double submit), so a
//     third-party page cannot log a browser in to another account.
//   - No PHI in URLs: patient searches are POSTed and their terms kept
//     on the server under an opaque id bound to the session
//     (package chart, searchTTL); pages carry patient ids only (random UUIDs, as in
//     the FHIR API). Nothing here logs a form value.
//   - Every PHI shown goes through the record service, which audits the
//     read before returning it (fail closed). Pages with PHI are
//     Cache-Control: no-store (every page is).
//   - All user-controlled text is escaped by html/template; the vital
//     signs chart is SVG built from numbers this package formats.
//   - Clinical pages require a workforce session whose second factor was
//     verified and a clinical role (physician or nurse). The
//     authorization engine (Cedar, care teams, break-the-glass) decides
//     per patient inside the record service; a 403 from it renders the
//     "no treatment relationship" page with the break-the-glass form.
//     While a grant lasts, that patient's chart carries a banner saying
//     so, read from the grant store on every view.
//   - The login challenge stays in its HttpOnly cookie: the passkey
//     "begin" endpoints read it there (signin/passkeys.go), so no page, URL or
//     script holds it. Passkey "finish" is a CSRF-checked form POST.
//
// # Concurrency
//
// A [UI] is safe for concurrent use. Its only mutable state is the
// chart's search store and the trust-facts cache, each behind a mutex.
package webui
