package httpapi

import (
	"context"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/phivault/phivault/internal/bulk"

	"github.com/phivault/phivault/internal/audit"
	"github.com/phivault/phivault/internal/audit/attempt"
	"github.com/phivault/phivault/internal/authn"
	"github.com/phivault/phivault/internal/authn/login"
	"github.com/phivault/phivault/internal/authn/password"
	"github.com/phivault/phivault/internal/authn/smart"
	"github.com/phivault/phivault/internal/authz"
	"github.com/phivault/phivault/internal/httpapi/auditapi"
	"github.com/phivault/phivault/internal/httpapi/signin"
	"github.com/phivault/phivault/internal/record"
	"github.com/phivault/phivault/internal/subscription"
	"github.com/phivault/phivault/internal/web"
)

// Server holds the HTTP handlers' dependencies.
type Server struct {
	rec            *record.Service
	launch         launchGate // the App Launch compartment gate (launch_gate.go)
	auth           *authn.Authenticator
	login          *login.Service // nil: no interactive login, bearer tokens only
	smart          *smart.Server  // nil: no SMART authorization server
	admin          Accounts       // nil: /admin/api and /auth/enrol answer 503 (admin.go)
	enrolLimiter   *password.AddressLimiter
	clients        ClientApprovals // nil: no client requests at /admin/api/requests (admin.go)
	signin         *signin.Handler // nil without login: no /auth/ routes (package signin)
	ui             http.Handler    // nil: no web UI at /
	authorizePages Authorize       // nil: no App Launch authorize pages (smart.go)
	log            *slog.Logger
	now            func() time.Time
	baseURL        string
	maxBody        int64
	corsOrigins    []string // allowed CORS origins (cors.go); empty: none
	version        string
	ready          func(context.Context) error
	auditLog       *auditapi.Handler // /log and the AuditEvent read API (package auditapi)
	logRec         AuditRecorder     // audits refusals by the gates and attempts (attempts.go)
	authz          *authz.Authorizer // nil: the FHIR API answers 503 (fail closed)
	glass          *authz.BreakGlass // nil: $break-glass answers 503
	reviews        Reviews           // nil: the review desk answers 503
	monitor        Monitor           // nil: /admin/api/monitor answers 503 (monitor.go)
	subs           hub               // nil: no Subscription websocket channel (subscription.go)
	bulk           *bulk.Service     // nil: no $export (bulk.go)

	obs            RequestObserver  // nil: no metrics nor spans (observe.go)
	metrics        http.Handler     // nil: GET /metrics answers 404 (observe.go)
	attempts       *attempt.Limiter // nil: unauthenticated attempts are not limited
	handlerTimeout time.Duration    // 0: none
	minBodyRate    int64            // bytes a second; 0: no pace
	bodyGrace      time.Duration
}

// Options configures a Server.
type Options struct {
	Record        *record.Service
	Authenticator *authn.Authenticator
	Login         *login.Service // optional: /auth/ routes and session cookies
	SMART         *smart.Server  // optional: /oauth2/ and SMART access tokens at /fhir
	Accounts      Accounts       // account administration: /admin/api, /auth/enrol (admin.go)
	// EnrolLimiter bounds POST /auth/enrol per client address; pass the
	// web UI's enrolment page the same one (one budget for both). Nil:
	// a limiter of its own with the default limits.
	EnrolLimiter  *password.AddressLimiter
	Clients       ClientApprovals   // optional: SMART client approvals at /admin/api/requests (admin.go)
	SSO           signin.SSO        // optional, with Login: enterprise sign-in at /auth/oidc/ (package signin)
	AuditLog      auditapi.AuditLog // optional: GET /fhir/AuditEvent (package auditapi)
	UI            http.Handler      // optional: the web UI, mounted at /
	Authorize     Authorize         // optional, with SMART App Launch and Login: the authorize pages (smart.go)
	Logger        *slog.Logger
	Now           func() time.Time
	BaseURL       string // public base URL, e.g. https://localhost:8443
	MaxBodyBytes  int64
	CORSOrigins   []string // browser origins allowed cross-origin (cors.go); empty: none
	Version       string
	Ready         func(context.Context) error // readiness probe (database reachable)
	Log           auditapi.TransparencyLog    // optional: /log routes (package auditapi)
	LogAudit      AuditRecorder               // required with Log: audits entry-bundle reads, refusals and attempts
	LogVerifier   string                      // the log's note verifier key, given with event proofs
	Authorizer    *authz.Authorizer           // required: decisions on every FHIR request (authz.go)
	BreakGlass    *authz.BreakGlass           // optional: POST /fhir/Patient/{id}/$break-glass
	Reviews       Reviews                     // optional: /admin/api/break-glass, /admin/api/alerts
	Monitor       Monitor                     // optional: /admin/api/monitor (monitor.go)
	Subscriptions *subscription.Hub           // optional: the Subscription websocket channel (subscription.go)
	Bulk          *bulk.Service               // optional: FHIR Bulk Data $export (bulk.go)

	// Observer is told of every request (observe.go); nil: none.
	Observer RequestObserver
	// Metrics serves GET /metrics, authenticated by itself (package
	// observe's bearer token); nil: /metrics answers 404.
	Metrics http.Handler

	// Attempts limits the generic events of unauthenticated requests
	// (attempts.go); nil: no limit.
	Attempts *attempt.Limiter
	// Pace bounds each request's time and its body's pace; the zero
	// value means no handler timeout and no pace (tests).
	Pace Pace
}

// Pace bounds the time of one request once its header is read.
type Pace struct {
	// HandlerTimeout is the deadline of the request's context: storage
	// calls still waiting then fail (503 with Retry-After). 0: none.
	HandlerTimeout time.Duration
	// MinBodyRate is the average pace, in bytes a second, a request body
	// must keep after BodyGrace (pace.go). 0: no pace.
	MinBodyRate int64
	BodyGrace   time.Duration
}

// New returns a Server.
func New(o Options) *Server {
	s := &Server{rec: o.Record, launch: launchGate{rec: o.Record}, auth: o.Authenticator, login: o.Login, smart: o.SMART, admin: o.Accounts, enrolLimiter: o.EnrolLimiter, clients: o.Clients, ui: o.UI, authorizePages: o.Authorize, log: o.Logger, now: o.Now,
		baseURL: o.BaseURL, maxBody: o.MaxBodyBytes, corsOrigins: o.CORSOrigins, version: o.Version, ready: o.Ready, logRec: o.LogAudit,
		authz: o.Authorizer, glass: o.BreakGlass, reviews: o.Reviews, monitor: o.Monitor, bulk: o.Bulk,
		obs: o.Observer, metrics: o.Metrics,
		attempts: o.Attempts, handlerTimeout: o.Pace.HandlerTimeout, minBodyRate: o.Pace.MinBodyRate, bodyGrace: o.Pace.BodyGrace}
	s.auditLog = newAuditAPI(s, o)
	if o.Subscriptions != nil { // no typed nil in the interface
		s.subs = o.Subscriptions
	}
	if o.Login != nil {
		s.signin = newSignin(s, o)
	}
	return s
}

// Handler returns the whole HTTP handler with the middleware stack.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /healthz", s.handle(func(w http.ResponseWriter, r *http.Request) error {
		writeJSON(w, r, http.StatusOK, map[string]string{"status": "ok"})
		return nil
	}))
	s.metricsRoute(mux)
	mux.Handle("GET /readyz", s.handle(func(w http.ResponseWriter, r *http.Request) error {
		if err := s.ready(r.Context()); err != nil {
			return &web.Error{Status: http.StatusServiceUnavailable, Code: "transient", Msg: "not ready", Err: err}
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
	if s.signin != nil {
		s.signin.Routes(mux)
	}
	s.adminRoutes(mux)
	s.auditLog.LogRoutes(mux, s.handle)
	if s.smart != nil {
		s.smartRoutes(mux)
	}
	if s.ui != nil {
		// The least specific pattern: everything no route above claims,
		// including the UI's own 404 page.
		mux.Handle("/", s.ui)
	}
	return s.withRequest(web.SecurityHeaders(withCORS(s.corsOrigins, s.attemptGate(fhirCaseGuard(withMuxRoute(mux))))))
}

// fhirCaseGuard answers 404 (an OperationOutcome) to a path whose first
// segment looks like the FHIR base (/FHIR/Patient, /fhir;x): paths are
// case-sensitive, and such a request must neither reach the web UI nor
// go unaudited (auditedPath counts it as a FHIR path).
func fhirCaseGuard(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if fhirCaseVariant(r.URL.Path) {
			writeOutcome(w, r, httpError(http.StatusNotFound, "not-found", "no such route: the FHIR API is at /fhir (paths are case-sensitive)"))
			return
		}
		next.ServeHTTP(w, r)
	})
}

// fhirCaseVariant reports whether path's first segment looks like the
// FHIR base without being it: "fhir" in another case, or followed by
// other characters (/fhir;x, /fhir\Patient, /FHIRx).
func fhirCaseVariant(path string) bool {
	seg, _, _ := strings.Cut(strings.TrimPrefix(path, "/"), "/")
	return seg != "fhir" && len(seg) >= 4 && strings.EqualFold(seg[:4], "fhir")
}

// fhirHandler is the /fhir subtree: limits, negotiation, authentication.
func (s *Server) fhirHandler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /fhir/metadata", s.handle(s.capabilities))
	authed := http.NewServeMux()
	s.fhirRoutes(authed)
	mux.Handle("/fhir", s.authenticate(s.authorize(authed)))
	mux.Handle("/fhir/", s.authenticate(s.authorize(authed)))
	h, err := withGzip(s.limitBody(decodeBody(s.maxBody, negotiate(mux))))
	if err != nil {
		panic(err) // constant options: a programmer error
	}
	return h
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
		if err == nil {
			err = s.launch.check(r, p)
		}
		if err != nil {
			if aerr := s.auditGateDenial(r, p, err); aerr != nil {
				err = aerr
			}
			s.writeAuthnError(w, r, err)
			return
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), principalKey, p)))
	})
}

// AuditRecorder makes one audit event durable before the response.
type AuditRecorder interface {
	Record(ctx context.Context, ev audit.Event) error
}

// PrincipalFrom returns the authenticated principal of a request.
func PrincipalFrom(ctx context.Context) (authn.Principal, bool) {
	p, ok := ctx.Value(principalKey).(authn.Principal)
	return p, ok
}
