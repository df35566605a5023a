// Package httpapi is phivault's HTTP surface: the FHIR R4 REST API at
// /fhir, health endpoints, and the one middleware stack every request
// takes.
//
// # The middleware order (DESIGN §3)
//
// Outermost first; this list and [Server.Handler] are the single place
// where the order is defined:
//
//  1. request id, panic recovery and the access log (path only, never
//     the query string: search values can be PHI);
//  2. security headers (HSTS, nosniff, a deny-all CSP, no framing, no-store);
//  3. body size limit (http.MaxBytesReader);
//  4. format negotiation (JSON only: 406/415 otherwise);
//  5. authentication (auth_session.go): an Authorization header is a
//     bearer API token, and only that; without one, the session cookie
//     (session → user, refused if disabled), whose state-changing
//     requests must carry X-CSRF-Token. 401 without a valid credential;
//     403 for a cookie request without the CSRF token, and for a session
//     that may not reach PHI (workforce without a verified second factor,
//     or a non-workforce account until authorization lands);
//  6. authorization (authz.go): the principal's Cedar guard joins the
//     request; the record consults it on every resource it touches and
//     narrows searches inside the query. Denials are 403 OperationOutcomes
//     (404 where a policy conceals existence, ADR 0011), audited with the
//     deciding policy ids before the answer; without an Authorizer, 503;
//  7. the FHIR handler, which audits before it responds (fail closed).
//
// /auth/ (auth.go: login, second factor, logout, own sessions) takes
// steps 1–2, its own small body limit, and authenticates the session
// cookie itself where an endpoint needs it.
//
// Rate limiting joins this stack with its own issue.
//
// # Security invariants
//
//   - Every error is an OperationOutcome with a safe message and the
//     request id; internal causes go to the log only.
//   - No PHI in logs or error texts: only paths, ids and statuses.
package httpapi

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"github.com/phivault/phivault/internal/authn"
	"github.com/phivault/phivault/internal/authn/login"
	"github.com/phivault/phivault/internal/authn/smart"
	"github.com/phivault/phivault/internal/authz"
	"github.com/phivault/phivault/internal/record"
)

// Server holds the HTTP handlers' dependencies.
type Server struct {
	rec     *record.Service
	auth    *authn.Authenticator
	login   *login.Service // nil: no interactive login, bearer tokens only
	smart   *smart.Server  // nil: no SMART authorization server
	admin   Accounts       // nil: /admin/api and /auth/enrol answer 503 (admin.go)
	sso     SSO            // nil: no /auth/oidc/ routes (auth_oidc.go)
	log     *slog.Logger
	now     func() time.Time
	baseURL string
	maxBody int64
	version string
	ready   func(context.Context) error
	authz   *authz.Authorizer // nil: the FHIR API answers 503 (fail closed)
	glass   *authz.BreakGlass // nil: $break-glass answers 503
	reviews Reviews           // nil: the review desk answers 503
}

// Options configures a Server.
type Options struct {
	Record        *record.Service
	Authenticator *authn.Authenticator
	Login         *login.Service // optional: /auth/ routes and session cookies
	SMART         *smart.Server  // optional: /oauth2/ and SMART access tokens at /fhir
	Accounts      Accounts       // account administration: /admin/api, /auth/enrol (admin.go)
	SSO           SSO            // optional, with Login: enterprise sign-in at /auth/oidc/ (auth_oidc.go)
	Logger        *slog.Logger
	Now           func() time.Time
	BaseURL       string // public base URL, e.g. https://localhost:8443
	MaxBodyBytes  int64
	Version       string
	Ready         func(context.Context) error // readiness probe (database reachable)
	Authorizer    *authz.Authorizer           // required: decisions on every FHIR request (authz.go)
	BreakGlass    *authz.BreakGlass           // optional: POST /fhir/Patient/{id}/$break-glass
	Reviews       Reviews                     // optional: /admin/api/break-glass, /admin/api/alerts
}

// New returns a Server.
func New(o Options) *Server {
	return &Server{rec: o.Record, auth: o.Authenticator, login: o.Login, smart: o.SMART, admin: o.Accounts, sso: o.SSO, log: o.Logger, now: o.Now,
		baseURL: o.BaseURL, maxBody: o.MaxBodyBytes, version: o.Version, ready: o.Ready,
		authz: o.Authorizer, glass: o.BreakGlass, reviews: o.Reviews}
}

// Handler returns the whole HTTP handler with the middleware stack.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /healthz", s.handle(func(w http.ResponseWriter, r *http.Request) error {
		writeJSON(w, r, http.StatusOK, map[string]string{"status": "ok"})
		return nil
	}))
	mux.Handle("GET /readyz", s.handle(func(w http.ResponseWriter, r *http.Request) error {
		if err := s.ready(r.Context()); err != nil {
			return &record.Error{Status: http.StatusServiceUnavailable, Issues: []record.Issue{{Code: "transient", Diagnostic: "not ready"}}, Err: err}
		}
		writeJSON(w, r, http.StatusOK, map[string]string{"status": "ready"})
		return nil
	}))
	// "/fhir" itself is the FHIR base, where batches and transactions are
	// POSTed: it must be served, not redirected to "/fhir/" (clients do
	// not re-send a POST body after a redirect).
	fhir := s.fhirHandler()
	mux.Handle("/fhir", fhir)
	mux.Handle("/fhir/", fhir)
	if s.login != nil {
		s.authRoutes(mux)
		if s.sso != nil {
			s.ssoRoutes(mux)
		}
	}
	s.adminRoutes(mux)
	if s.smart != nil {
		s.smartRoutes(mux)
	}
	return s.withRequest(securityHeaders(mux))
}

// fhirHandler is the /fhir subtree: limits, negotiation, authentication.
func (s *Server) fhirHandler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /fhir/metadata", s.handle(s.capabilities))
	authed := http.NewServeMux()
	s.fhirRoutes(authed)
	mux.Handle("/fhir", s.authenticate(s.authorize(authed)))
	mux.Handle("/fhir/", s.authenticate(s.authorize(authed)))
	return s.limitBody(negotiate(mux))
}

func (s *Server) limitBody(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ContentLength > s.maxBody {
			writeOutcome(w, r, httpError(http.StatusRequestEntityTooLarge, "too-costly", "the request body is larger than the server accepts"))
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, s.maxBody)
		next.ServeHTTP(w, r)
	})
}

// authenticate requires a bearer token or a session cookie that may
// reach PHI (see principal and phiGate in auth_session.go).
func (s *Server) authenticate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, err := s.principal(r)
		if err == nil {
			err = phiGate(p)
		}
		if err == nil {
			err = scopeGate(p, r)
		}
		if err != nil {
			s.writeAuthnError(w, r, err)
			return
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), principalKey, p)))
	})
}

// PrincipalFrom returns the authenticated principal of a request.
func PrincipalFrom(ctx context.Context) (authn.Principal, bool) {
	p, ok := ctx.Value(principalKey).(authn.Principal)
	return p, ok
}
