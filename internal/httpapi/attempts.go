package httpapi

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	pathpkg "path"
	"strconv"
	"strings"
	"time"

	"github.com/phivault/phivault/internal/audit"
	"github.com/phivault/phivault/internal/audit/trail"
	"github.com/phivault/phivault/internal/authn"
	"github.com/phivault/phivault/internal/authn/smart"
	"github.com/phivault/phivault/internal/fhir"
	"github.com/phivault/phivault/internal/record"
	"github.com/phivault/phivault/internal/web"
)

// Attempts are events (DESIGN §6, ADR 0017): every request to an
// audited path leaves an audit event, whatever its outcome, durable
// before its status line is sent.
//
// Handlers record the events they know best (a read with the patients
// it touched, a denial with its policies, a login with its step); the
// places that make an event durable note it in the request's
// trail.Request (package trail). withRequest (step 1 of the middleware
// order) wraps the response writer: when the status is about to be
// written and nothing was noted, it records a generic event itself:
//
//   - on FHIR paths the interaction derived from the method and the path
//     (read, vread, search-type, history, history-type, history-system,
//     create, update, delete, transaction, capabilities, $everything,
//     $erase, break-glass), elsewhere audit.ActionRequest;
//   - Outcome from the status (2xx/3xx success; 401, 403, 429 denied;
//     any other error status error), Status the status;
//   - Entities the resource the path names (FHIR "Type/id", valid ids
//     only), never a Patient entry: nothing was disclosed;
//   - Query the method and the route: the resource type on FHIR paths,
//     the route pattern elsewhere (its literal segments, with {id}
//     placeholders), never a path value, query value, body or token;
//   - the agent as far as authentication got (the account, role,
//     client and session once credentials were accepted, even if a later
//     gate refused), and always the source address; Policies carries
//     the refusal that is known ("csrf").
//
// If that event cannot be made durable, the response becomes 503 with
// Retry-After (fail closed) and the handler's body is discarded.
//
// Audited paths (auditedPath): every path but the public ones below, so
// a path nobody named (a case variant such as /ADMIN, /fhir;x, a bare
// /auth, a redirect of //fhir, a scanner's guess) leaves an event like
// any other request: /fhir (also /FHIR and other case variants, answered
// 404 by fhirCaseGuard), /auth, /admin, /oauth2, the transparency log's
// entry bundles (/log/tile/entries/), the web UI's pages and every
// unknown route. Not audited, because they carry neither PHI nor
// authentication, and only for GET and HEAD (publicPath): the UI's start
// page, sign-in forms (/login, /login/enrol, /login/mfa), /trust,
// /signed-out and /static/, the public /log endpoints (checkpoint,
// tiles, proofs), the SMART configuration, key set and stylesheets under
// /oauth2/assets/, /healthz, /readyz, /favicon.ico and /robots.txt. A
// request that net/http refuses before any handler (a malformed request
// line or header, headers over the limit, a TLS or header timeout)
// never reaches these paths and is not audited; connection limits
// (listener.go) bound those.
//
// Floods: the generic events of requests that ended unauthenticated take
// a token from the per-address attempt limit (package attempt); without
// one the answer is 429 and the request is counted in an aggregate
// event instead. Requests without credentials from an address whose
// bucket is empty are refused with 429 before any work (attemptGate).
// Requests whose credentials could not be checked because the backend
// failed (NoteBackendFailure) are answered 503 and not charged.

// attemptRecordTimeout bounds the append of a generic event: the
// request's own context may already be over (client gone, handler
// timeout) and the attempt must still be recorded, but not wait for
// ever on a stalled database (the batcher's commit has its own bound).
const attemptRecordTimeout = 10 * time.Second

// reqState is what the outer middleware learns about a request while
// it is served: whether any event was noted (trail), and in notes who
// the caller turned out to be, why it was refused, and which route
// served it (web.NoteAgent, NoteRefusal, NoteRoute, NoteBackendFailure).
type reqState struct {
	trail   *trail.Request
	audited bool
	notes   *web.Notes
	// muxRoute is the pattern of the outermost mux that served the
	// request, the metrics' route when no handler noted a finer one
	// (observe.go); written after routing, on the request's goroutine.
	muxRoute string
}

type stateKey struct{}

func stateFrom(ctx context.Context) *reqState {
	st, _ := ctx.Value(stateKey{}).(*reqState)
	return st
}

// notePrincipal records an authenticated principal (credentials
// accepted, whatever a later gate decides).
func notePrincipal(r *http.Request, p authn.Principal) {
	a := principalAgent(p, r)
	if p.Client != "" {
		a.Client = p.Client
	}
	web.NoteAgent(r.Context(), a)
}

// principalAgent is the audit agent of p's request r: account, kind,
// session, roles and address (as package auditapi's entry-bundle reads
// name it).
func principalAgent(p authn.Principal, r *http.Request) audit.Agent {
	a := audit.Agent{User: p.ID, Client: string(p.Kind), Session: p.SessionID, Address: web.ClientIP(r)}
	if len(p.Roles) > 0 {
		a.Role = strings.Join(p.Roles, ",")
	}
	return a
}

// auditedPath reports whether a request to path must leave an event:
// all but the public paths (fail closed).
func auditedPath(method, path string) bool {
	if method == http.MethodOptions && corsPath(path) {
		return false // a CORS preflight: no credentials, no PHI (cors.go)
	}
	return !publicPath(method, path)
}

// publicPath reports whether a request is to one of the paths that
// carry neither PHI nor authentication, with GET or HEAD. /metrics has
// a bearer token of its own, no account's (observe.go): a scrape every
// few seconds is not an event of the audit log.
func publicPath(method, path string) bool {
	if method != http.MethodGet && method != http.MethodHead || (path != "/" && pathpkg.Clean(path) != path) {
		return false // a path to clean (/static/../fhir) is redirected: audited
	}
	switch path {
	case "/", "/healthz", "/readyz", "/metrics", "/login", "/login/enrol", "/login/mfa", "/signed-out", "/trust",
		"/favicon.ico", "/robots.txt", "/.well-known/smart-configuration",
		"/log/checkpoint", "/log/proof/inclusion", "/log/proof/consistency", smart.JWKSPath:
		return true
	}
	switch {
	case strings.HasPrefix(path, "/static/"), strings.HasPrefix(path, "/oauth2/assets/"):
		return true
	case strings.HasPrefix(path, "/log/tile/"):
		return !strings.HasPrefix(path, "/log/tile/entries/")
	}
	return false
}

// outcomeOf maps an HTTP status to an audit outcome.
func outcomeOf(status int) audit.Outcome {
	switch {
	case status < 400:
		return audit.OutcomeSuccess
	case status == http.StatusUnauthorized, status == http.StatusForbidden, status == http.StatusTooManyRequests:
		return audit.OutcomeDenied
	}
	return audit.OutcomeError
}

// fhirAttempt derives the FHIR interaction of a request from its method
// and path, with the resource it names ("Type/id", "Type/id/_history/v"
// for a vread; only a valid R4 type and a valid id) and its query (the
// method and the resource type).
func fhirAttempt(method, path string) (a audit.Action, entity, query string) {
	rest := strings.Trim(strings.TrimPrefix(path, "/fhir"), "/")
	var parts []string
	if rest != "" {
		parts = strings.Split(rest, "/")
	}
	typ, id := "", ""
	if len(parts) > 0 && fhir.IsR4Type(parts[0]) {
		typ = parts[0]
		if len(parts) > 1 && record.ValidID(parts[1]) {
			id = parts[1]
			entity = typ + "/" + id
		}
	}
	query = strings.TrimSpace(methodName(method) + " " + typ)
	read := method == http.MethodGet || method == http.MethodHead
	n := len(parts)
	a = audit.ActionRequest
	switch {
	case n == 0 && method == http.MethodPost:
		a = audit.ActionTransaction
	case n == 1 && parts[0] == "metadata" && read:
		a = audit.ActionCapabilities
	case n == 1 && parts[0] == "_history" && read:
		a = audit.ActionHistorySystem
	case typ == "":
	case n == 1 && read:
		a = audit.ActionSearch
	case n == 1 && method == http.MethodPost:
		a = audit.ActionCreate
	case n == 2 && parts[1] == "_search":
		a, entity = audit.ActionSearch, ""
	case n == 2 && parts[1] == "_history" && read:
		a, entity = audit.ActionHistoryType, ""
	case n == 2 && read:
		a = audit.ActionRead
	case n == 2 && (method == http.MethodPut || method == http.MethodPatch):
		a = audit.ActionUpdate
	case n == 2 && method == http.MethodDelete:
		a = audit.ActionDelete
	case n == 3 && parts[2] == "_history" && read:
		a = audit.ActionHistory
	case n == 4 && parts[2] == "_history" && read:
		a = audit.ActionVRead
		if v, err := strconv.ParseInt(parts[3], 10, 64); err == nil && v > 0 && entity != "" {
			entity += "/_history/" + strconv.FormatInt(v, 10)
		}
	case n == 3 && parts[2] == "$everything":
		a = audit.ActionEverything
	case n == 3 && parts[2] == "$erase":
		a = audit.ActionErase
	case n == 3 && parts[2] == "$break-glass":
		a = audit.ActionBreakGlass
	case n == 3 && parts[2] == "$proof" && read:
		a = audit.ActionRead
	}
	return a, entity, query
}

// attemptEvent is the generic event of a request no handler audited.
func (s *Server) attemptEvent(r *http.Request, st *reqState, status int) audit.Event {
	n := st.notes.Snapshot()
	agent, policies, route := n.Agent, n.Policies, n.Route
	if agent.Address == "" {
		agent.Address = web.ClientIP(r)
	}
	ev := audit.Event{Time: s.now().UTC(), Outcome: outcomeOf(status), Agent: agent, Policies: policies,
		Status: status, RequestID: web.RequestID(r.Context())}
	if p := r.URL.Path; p == "/fhir" || strings.HasPrefix(p, "/fhir/") {
		var entity string
		ev.Action, entity, ev.Query = fhirAttempt(r.Method, p)
		if entity != "" {
			ev.Entities = []string{entity}
		}
		return ev
	}
	ev.Action = audit.ActionRequest
	if route == "" {
		route = methodName(r.Method) + " " + routePrefix(r.URL.Path)
	} else if !strings.Contains(route, " ") {
		route = methodName(r.Method) + " " + route
	}
	ev.Query = route
	return ev
}

// methodName is the method for an event: a standard one, or "OTHER"
// (a method is any token a client sends).
func methodName(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodOptions, http.MethodTrace, http.MethodConnect:
		return m
	}
	return "OTHER"
}

// routePrefix is the first path segment, for a request that no route
// pattern served (the rest of the path may be anything a client sent).
func routePrefix(path string) string {
	seg, _, _ := strings.Cut(strings.TrimPrefix(path, "/"), "/")
	if len(seg) > 32 || strings.ContainsFunc(seg, func(c rune) bool { return !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '.') }) {
		return "/…"
	}
	return "/" + seg
}

// replacement is an answer that replaces the handler's.
type replacement struct {
	err        *web.Error
	retryAfter time.Duration
}

// beforeStatus runs once, just before the status of an audited request
// is written: if no event was noted it records the generic one (or,
// for an unauthenticated request over its attempt budget, counts it and
// answers 429 instead). A non-nil result replaces the response.
func (s *Server) beforeStatus(r *http.Request, st *reqState, status int) *replacement {
	if !st.audited || st.trail.Noted() {
		return nil
	}
	if st.trail.Failed() {
		// An event of this request already failed as unavailable (a
		// locked audit table): fail closed now rather than wait for the
		// same lock again, and charge no budget (the server failed).
		return auditUnavailable(errors.New("an earlier audit event of this request could not be recorded"))
	}
	n := st.notes.Snapshot()
	authed, backend := n.Authed, n.Backend
	// A database outage is not an authentication failure: charging it
	// would turn the 503s of valid credentials into 429s once the
	// address's budget is spent, and keep refusing them after recovery.
	if !authed && !backend && s.attempts != nil {
		addr := web.ClientAddr(r)
		if ok, wait := s.attempts.Take(addr); !ok {
			s.attempts.Refused(addr)
			return tooManyAttempts(wait)
		}
	}
	if s.logRec == nil {
		s.log.ErrorContext(r.Context(), "no audit recorder: refusing an unaudited request", slog.String("request_id", web.RequestID(r.Context())))
		return auditUnavailable(errors.New("no audit recorder"))
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), attemptRecordTimeout)
	defer cancel()
	if err := s.logRec.Record(ctx, s.attemptEvent(r, st, status)); err != nil {
		s.log.ErrorContext(r.Context(), "recording an attempt failed: refusing the request", slog.String("request_id", web.RequestID(r.Context())),
			slog.Int("status", status), slog.String("error", err.Error()))
		return auditUnavailable(err)
	}
	return nil
}

func auditUnavailable(err error) *replacement {
	return &replacement{err: &web.Error{Status: http.StatusServiceUnavailable, Code: "transient", Msg: "the audit log is unavailable; retry later", Err: err}, retryAfter: time.Second}
}

func tooManyAttempts(wait time.Duration) *replacement {
	return &replacement{err: &web.Error{Status: http.StatusTooManyRequests, Code: "throttled", Msg: "too many unauthenticated requests from this address; retry later", Err: errors.New("attempt limit")}, retryAfter: wait}
}

// hasCredentials reports whether r presents a credential (a bearer
// token or a session cookie), valid or not.
func hasCredentials(r *http.Request) bool {
	if r.Header.Get("Authorization") != "" {
		return true
	}
	_, err := r.Cookie(web.SessionCookie)
	return err == nil
}

// attemptGate refuses, before any work, an audited request without
// credentials from an address whose attempt budget is spent; the
// refusal is counted in the address's aggregate event.
func (s *Server) attemptGate(next http.Handler) http.Handler {
	if s.attempts == nil {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		st := stateFrom(r.Context())
		if st == nil || !st.audited || hasCredentials(r) {
			next.ServeHTTP(w, r)
			return
		}
		addr := web.ClientAddr(r)
		if blocked, wait := s.attempts.Blocked(addr); blocked {
			s.attempts.Refused(addr)
			st.audited = false // counted, not recorded one by one: see package attempt
			writeReplacement(w, r, tooManyAttempts(wait))
			return
		}
		next.ServeHTTP(w, r)
	})
}

// writeReplacement answers rp instead of whatever the handler meant to
// send: headers that carried state for the original answer are dropped.
func writeReplacement(w http.ResponseWriter, r *http.Request, rp *replacement) {
	h := w.Header()
	for _, k := range []string{"Set-Cookie", "Location", "ETag", "Last-Modified", "Content-Length", "Content-Encoding", "Content-Disposition", "WWW-Authenticate"} {
		h.Del(k)
	}
	if rp.retryAfter > 0 {
		h.Set("Retry-After", strconv.Itoa(int((rp.retryAfter+time.Second-1)/time.Second)))
	}
	writeOutcome(w, r, rp.err)
}
