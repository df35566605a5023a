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
//  5. authentication (bearer token → Principal; 401 without one);
//  6. the FHIR handler, which audits before it responds (fail closed).
//
// Authorization (policy decisions, search narrowing) and rate limiting
// join this stack with the identity and authorization issues.
//
// # Security invariants
//
//   - Every error is an OperationOutcome with a safe message and the
//     request id; internal causes go to the log only.
//   - No PHI in logs or error texts: only paths, ids and statuses.
package httpapi

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"time"

	"github.com/phivault/phivault/internal/authn"
	"github.com/phivault/phivault/internal/record"
)

// Server holds the HTTP handlers' dependencies.
type Server struct {
	rec     *record.Service
	auth    *authn.Authenticator
	log     *slog.Logger
	now     func() time.Time
	baseURL string
	maxBody int64
	version string
	ready   func(context.Context) error
}

// Options configures a Server.
type Options struct {
	Record        *record.Service
	Authenticator *authn.Authenticator
	Logger        *slog.Logger
	Now           func() time.Time
	BaseURL       string // public base URL, e.g. https://localhost:8443
	MaxBodyBytes  int64
	Version       string
	Ready         func(context.Context) error // readiness probe (database reachable)
}

// New returns a Server.
func New(o Options) *Server {
	return &Server{rec: o.Record, auth: o.Authenticator, log: o.Logger, now: o.Now,
		baseURL: o.BaseURL, maxBody: o.MaxBodyBytes, version: o.Version, ready: o.Ready}
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
	return s.withRequest(securityHeaders(mux))
}

// fhirHandler is the /fhir subtree: limits, negotiation, authentication.
func (s *Server) fhirHandler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /fhir/metadata", s.handle(s.capabilities))
	authed := http.NewServeMux()
	s.fhirRoutes(authed)
	mux.Handle("/fhir", s.authenticate(authed))
	mux.Handle("/fhir/", s.authenticate(authed))
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

// authenticate requires a valid bearer token.
func (s *Server) authenticate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, err := s.auth.Bearer(r.Context(), r.Header.Get("Authorization"))
		if err != nil {
			if !errors.Is(err, authn.ErrUnauthenticated) {
				s.log.ErrorContext(r.Context(), "authentication backend failed", slog.String("request_id", RequestID(r.Context())), slog.String("error", err.Error()))
				writeOutcome(w, r, httpError(http.StatusServiceUnavailable, "transient", "the service is temporarily unavailable; retry later"))
				return
			}
			w.Header().Set("WWW-Authenticate", `Bearer realm="phivault"`)
			writeOutcome(w, r, httpError(http.StatusUnauthorized, "login", "authentication required: send a valid bearer token"))
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
