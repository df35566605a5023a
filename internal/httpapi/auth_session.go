package httpapi

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"

	"github.com/phivault/phivault/internal/audit"
	"github.com/phivault/phivault/internal/authn"
	"github.com/phivault/phivault/internal/authn/login"
	"github.com/phivault/phivault/internal/authn/session"
	"github.com/phivault/phivault/internal/fhir"
	"github.com/phivault/phivault/internal/identity"
	"github.com/phivault/phivault/internal/web"
)

// CSRFHeader carries session.CSRFToken(secret) on every state-changing
// request authenticated by the session cookie.
const CSRFHeader = "X-CSRF-Token"

// Authentication refusals, mapped by writeAuthnError.
var (
	errNoCredential = errors.New("no valid credential")
	errCSRF         = errors.New("missing or wrong csrf token")
	errNeedsMFA     = errors.New("session without a second factor")
	errNoPHIAccess  = errors.New("session of an account that may not use the fhir api yet")
)

// monitorRefusedToken is the policy of the audit event of a request whose
// bearer token was refused (ownlog.RefusedToken, which the privacy
// monitor counts: issue 16).
const monitorRefusedToken = "bearer-refused"

// safeMethod reports methods that change nothing and so need no CSRF
// token (RFC 9110 §9.2.1).
func safeMethod(m string) bool {
	return m == http.MethodGet || m == http.MethodHead || m == http.MethodOptions
}

// principal authenticates r: an Authorization header is an API token
// and nothing else (a request carrying both is judged by the header, so
// a bad header never falls back to the cookie); otherwise the session
// cookie, whose unsafe requests must carry the CSRF header. Bearer
// requests are not CSRF-checked: browsers never attach them on their own.
// With errCSRF the session's principal is returned too (for the audit
// event of the refusal); callers must not act on it. An accepted
// principal is noted for the request's attempt audit (attempts.go).
func (s *Server) principal(r *http.Request) (authn.Principal, error) {
	if h := r.Header.Get("Authorization"); h != "" || s.login == nil {
		if p, isSMART, err := s.smartPrincipal(r, h); isSMART {
			if err == nil {
				notePrincipal(r, p)
			} else if errors.Is(err, errNoCredential) {
				web.NoteRefusal(r.Context(), monitorRefusedToken)
			}
			return p, err
		}
		p, err := s.auth.Bearer(r.Context(), h)
		if errors.Is(err, authn.ErrUnauthenticated) {
			if h != "" {
				// A token was presented and refused: the monitor tells it
				// from a request without credentials (refused tokens).
				web.NoteRefusal(r.Context(), monitorRefusedToken)
			}
			return authn.Principal{}, errNoCredential
		}
		if err == nil {
			notePrincipal(r, p)
		}
		return p, err
	}
	c, err := r.Cookie(web.SessionCookie)
	if err != nil {
		return authn.Principal{}, errNoCredential
	}
	p, err := s.login.Authenticate(r.Context(), c.Value)
	if errors.Is(err, authn.ErrUnauthenticated) {
		return authn.Principal{}, errNoCredential
	}
	if err != nil {
		return authn.Principal{}, err
	}
	notePrincipal(r, p)
	if !safeMethod(r.Method) && !session.CheckCSRF(c.Value, r.Header.Get(CSRFHeader)) {
		// The principal is returned with the refusal so that the event
		// of the refused request names the session's account.
		web.NoteRefusal(r.Context(), "csrf")
		return p, errCSRF
	}
	return p, nil
}

// phiGate decides whether p may reach the FHIR API at all. API tokens
// pass (service credentials). A session passes only for a workforce
// account whose second factor was verified: no PHI without MFA (DESIGN §7),
// enforced here even though sessions of workforce accounts are only
// created after MFA. A patient account passes: the authorization
// policies confine it to its own compartment. Other non-workforce
// sessions (system) are refused.
func phiGate(p authn.Principal) error {
	if p.Kind != authn.KindSession {
		return nil
	}
	if login.RequiresMFA(p) {
		return errNeedsMFA
	}
	if len(p.Roles) == 1 && p.Roles[0] == string(identity.RolePatient) {
		return nil // a patient: the policies confine it to its own compartment
	}
	if !p.MFA {
		return errNoPHIAccess
	}
	return nil
}

// writeAuthnError answers an authentication refusal as an
// OperationOutcome; a backend failure is 503 and logged.
func (s *Server) writeAuthnError(w http.ResponseWriter, r *http.Request, err error) {
	switch {
	case errors.Is(err, errNoCredential):
		w.Header().Set("WWW-Authenticate", `Bearer realm="phivault"`)
		if s.login != nil {
			if _, cerr := r.Cookie(web.SessionCookie); cerr == nil {
				web.ClearSessionCookie(w)
			}
		}
		writeOutcome(w, r, httpError(http.StatusUnauthorized, "login", "authentication required: send a valid bearer token or log in"))
	case errors.Is(err, errCSRF):
		writeOutcome(w, r, httpError(http.StatusForbidden, "forbidden", "a cookie-authenticated request that changes state must carry the X-CSRF-Token header"))
	case errors.Is(err, errNeedsMFA):
		writeOutcome(w, r, httpError(http.StatusForbidden, "forbidden", "a second factor is required before accessing health information"))
	case errors.Is(err, errNoPHIAccess):
		writeOutcome(w, r, httpError(http.StatusForbidden, "forbidden", "this account may not use the FHIR API"))
	case errors.Is(err, errCompartment):
		w.Header().Set("WWW-Authenticate", `Bearer realm="phivault", error="insufficient_scope"`)
		writeOutcome(w, r, httpError(http.StatusForbidden, "forbidden", "the access token reaches only the launch patient's compartment, through reads and searches that name that patient"))
	case errors.Is(err, errScope):
		w.Header().Set("WWW-Authenticate", `Bearer realm="phivault", error="insufficient_scope"`)
		writeOutcome(w, r, httpError(http.StatusForbidden, "forbidden", "the access token's scopes do not allow this request"))
	default:
		web.NoteBackendFailure(r.Context(), err)
		s.log.ErrorContext(r.Context(), "authentication backend failed", slog.String("request_id", web.RequestID(r.Context())), slog.String("error", err.Error()))
		w.Header().Set("Retry-After", "1")
		writeOutcome(w, r, httpError(http.StatusServiceUnavailable, "transient", "the service is temporarily unavailable; retry later"))
	}
}

// gatePolicies names, for the audit trail, the gate that refused an
// authenticated principal.
var gatePolicies = []struct {
	err    error
	policy string
}{
	{errScope, "smart-scope"},
	{errCompartment, "smart-launch-compartment"},
	{errNeedsMFA, "mfa-required"},
	{errNoPHIAccess, "no-phi-access"},
	{errCSRF, "csrf"},
}

// auditGateDenial records the refusal of an authenticated principal by
// a gate (scopes, launch compartment, MFA, CSRF) before the 403 is sent.
// It returns an error (answered 503) only if the event could not be
// recorded; unauthenticated requests have no principal to record.
func (s *Server) auditGateDenial(r *http.Request, p authn.Principal, err error) error {
	policy := ""
	for _, g := range gatePolicies {
		if errors.Is(err, g.err) {
			policy = g.policy
		}
	}
	if policy == "" || s.logRec == nil {
		return nil
	}
	c := s.callerFor(r, p)
	if p.Kind == authn.KindSession {
		c.Agent.Session = p.SessionID
	}
	ev := audit.Event{
		Time: s.now().UTC(), Action: gateAction(r), Outcome: audit.OutcomeDenied, Agent: c.Agent,
		Purpose: c.Purpose, Query: r.Method + " " + fhirType(r.URL.Path), Policies: []string{policy},
		Status: http.StatusForbidden, RequestID: c.RequestID,
	}
	if rerr := s.logRec.Record(r.Context(), ev); rerr != nil {
		return fmt.Errorf("recording a refusal: %w", rerr)
	}
	return nil
}

// gateAction is the audit action a refused FHIR request would have been
// (the interaction its method and path name, attempts.go).
func gateAction(r *http.Request) audit.Action {
	a, _, _ := fhirAttempt(r.Method, r.URL.Path)
	return a
}

// fhirType is the resource type of a FHIR path ("" for the base): the
// query of a refusal names it, never an id or a search value.
func fhirType(path string) string {
	t, _, _ := strings.Cut(strings.Trim(strings.TrimPrefix(path, "/fhir"), "/"), "/")
	if !fhir.IsR4Type(t) {
		return ""
	}
	return t
}
