package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/phivault/phivault/internal/audit"
	"github.com/phivault/phivault/internal/authn"
	"github.com/phivault/phivault/internal/authn/password"
	"github.com/phivault/phivault/internal/authn/session"
	"github.com/phivault/phivault/internal/authn/smart"
	"github.com/phivault/phivault/internal/identity"
	"github.com/phivault/phivault/internal/storage"
	"github.com/phivault/phivault/internal/web"
)

// Account administration: /admin/api/users, /admin/api/sessions and
// /auth/enrol.
//
// These endpoints are not FHIR, so their errors are plain JSON,
// {"error": "<safe message>", "request_id": "<id>"}, with the internal
// cause in the log only. Request bodies are JSON objects of at most
// [maxAdminBody] bytes; unknown fields are refused.
//
// # Authorization
//
// /admin/api requires a principal with the role security-admin. A
// session principal must also have passed a second factor. TEMPORARY:
// API tokens with the role "system" (the token "phivault init" prints)
// are allowed too, until security admins log in with sessions; remove
// the "system" grant then. Every refusal is audited (user-admin,
// denied) before the 403 is sent, and every change is audited by the
// Accounts service in the transaction that makes it.
//
// # Separation of duties (ADR 0018)
//
// Nobody changes their own account (403). Adding a role that reaches
// PHI, or security-admin, answers 202 with the "pending_request" that a
// second security admin decides: GET /admin/api/requests, POST
// /admin/api/requests/{id}/approve (a session with a second factor, not
// the requester, not the account concerned) or /reject. A FHIR user
// bound to another enabled account is 409.
//
// SMART clients that reach PHI are under the same rule (ADR 0020): their
// approval requests ("rqc_" ids) are listed as "client_requests" by GET
// /admin/api/requests and decided at the same approve and reject
// endpoints, by a second security admin who neither registered the
// client nor requested its approval.
//
// /auth/enrol is public: it is rate-limited per client address and
// answers every failure of the enrolment secret with one message.

// maxAdminBody bounds admin and enrolment request bodies (STYLE rule 24):
// the largest, a new user, is well under 1 KiB.
const maxAdminBody = 16 << 10

// defaultListLimit is the page size of GET /admin/api/users without ?limit.
const defaultListLimit = 100

// Accounts is the account service behind /admin/api and /auth/enrol
// (account.Service). Every change method records its audit event with the
// change, in one transaction, and revokes sessions where the change
// requires it.
//
// DEVIATION from STYLE rule 14 (1–3 methods): the admin API is the one
// consumer and needs each operation; splitting would only add names.
type Accounts interface {
	// Directory is the read capability (GET endpoints).
	Directory() identity.Directory
	// Add creates an account without a password and returns its
	// one-time enrolment secret. identity.ErrInvalid, ErrExists.
	Add(ctx context.Context, actor audit.Agent, u identity.User) (identity.User, authn.Secret, error)
	// SetDisabled, SetRoles and ResetMFA: identity.ErrNotFound, ErrInvalid.
	SetDisabled(ctx context.Context, actor audit.Agent, id string, disabled bool) (identity.User, error)
	SetRoles(ctx context.Context, actor audit.Agent, id string, roles []identity.Role) (identity.User, error)
	ResetMFA(ctx context.Context, actor audit.Agent, id string) (identity.User, error)
	// Enrol sets username's password with its enrolment secret. Password
	// policy errors (password.ErrTooShort...) are shown as they are;
	// password.ErrBusy and storage.ErrUnavailable mean 503; every other
	// error is answered with one generic refusal.
	Enrol(ctx context.Context, actor audit.Agent, username, secret, pw string) (identity.User, error)
	// Sessions lists user id's active sessions (identity.ErrNotFound).
	Sessions(ctx context.Context, id string) ([]session.Session, error)
	// RevokeSession ends session id of any user, audited with actor as
	// the agent; session.ErrNotFound for no such live session.
	RevokeSession(ctx context.Context, actor audit.Agent, id string) error
	// RevokeSessions ends every session of user id, audited
	// (identity.ErrNotFound).
	RevokeSessions(ctx context.Context, actor audit.Agent, id string) error
	// Denied records a refused admin request; an error means it could
	// not be recorded (answer 503).
	Denied(ctx context.Context, actor audit.Agent, entity string) error

	// Requests lists the pending role requests (two-person rule, ADR
	// 0018); PendingRequest returns the one for an account, if any.
	Requests(ctx context.Context) ([]identity.Request, error)
	PendingRequest(ctx context.Context, userID string) (identity.Request, bool, error)
	// Approve and Reject decide a request as a second administrator:
	// identity.ErrNotFound, ErrSelf, ErrApprover, ErrRequestStale.
	Approve(ctx context.Context, actor audit.Agent, id string) (identity.User, error)
	Reject(ctx context.Context, actor audit.Agent, id string) error
}

// ClientApprovals is the SMART client side of the two-person rule
// (smart.Admin): client approval requests, listed and decided with
// the role requests at /admin/api/requests.
type ClientApprovals interface {
	// Requests lists the pending client requests with their clients.
	Requests(ctx context.Context) ([]smart.PendingClient, error)
	// Approve and Reject decide a request as a second administrator:
	// smart.ErrNotFound, ErrSelfApproval, ErrApprovalStale,
	// identity.ErrApprover.
	Approve(ctx context.Context, actor audit.Agent, id string) (smart.Client, error)
	Reject(ctx context.Context, actor audit.Agent, id string) error
}

// adminAPI holds the state of the admin and enrolment endpoints.
type adminAPI struct {
	s        *Server
	accounts Accounts
	limiter  *password.AddressLimiter
}

// adminRoutes mounts /admin/api/ and /auth/enrol on mux. Without an
// Accounts service they answer 503.
func (s *Server) adminRoutes(mux *http.ServeMux) {
	lim := s.enrolLimiter
	if lim == nil {
		lim = password.NewAddressLimiter(password.AddressLimits{Now: s.now})
	}
	a := &adminAPI{s: s, accounts: s.admin, limiter: lim}
	admin := http.NewServeMux()
	admin.Handle("GET /admin/api/users", a.authorize(a.list))
	admin.Handle("POST /admin/api/users", a.authorize(a.create))
	admin.Handle("GET /admin/api/users/{id}", a.authorize(a.show))
	admin.Handle("POST /admin/api/users/{id}/disable", a.authorize(a.setDisabled(true)))
	admin.Handle("POST /admin/api/users/{id}/enable", a.authorize(a.setDisabled(false)))
	admin.Handle("POST /admin/api/users/{id}/roles", a.authorize(a.setRoles))
	admin.Handle("POST /admin/api/users/{id}/reset-mfa", a.authorize(a.resetMFA))
	admin.Handle("GET /admin/api/users/{id}/sessions", a.authorize(a.sessions))
	admin.Handle("POST /admin/api/users/{id}/revoke-sessions", a.authorize(a.revokeSessions))
	admin.Handle("DELETE /admin/api/sessions/{id}", a.authorize(a.revokeSession))
	admin.Handle("GET /admin/api/requests", a.authorize(a.requests))
	admin.Handle("POST /admin/api/requests/{id}/approve", a.authorize(a.decide(true)))
	admin.Handle("POST /admin/api/requests/{id}/reject", a.authorize(a.decide(false)))
	a.reviewRoutes(admin)
	a.monitorRoutes(admin)
	a.repairRoutes(admin)
	admin.Handle("/admin/api/", a.handle(func(w http.ResponseWriter, r *http.Request) error {
		return web.New(http.StatusNotFound, "no such endpoint", nil)
	}))
	mux.Handle("/admin/api/", admin)
	mux.Handle("POST /auth/enrol", a.handle(a.enrol))
}

// handle adapts a handlerFunc for the JSON endpoints: it maps errors
// (adminError) to {"error", "request_id"} with a safe message and logs
// the cause.
func (a *adminAPI) handle(h handlerFunc) http.Handler {
	ad := &web.Adapter{Log: a.s.log, Message: "request failed", Render: web.JSON("application/json", true),
		Map: func(_ *http.Request, err error) *web.Error { return adminError(err) }}
	inner := ad.Handle(h)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if a.accounts == nil {
			ad.Fail(w, r, web.New(http.StatusServiceUnavailable, "account administration is not available", errors.New("no Accounts service configured")))
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, maxAdminBody)
		inner.ServeHTTP(w, r)
	})
}

// adminError is asAPIError with the admin API's headers: a wait rounded
// to whole seconds plus one, or one second for any 503, as Retry-After;
// a Bearer challenge with a 401.
func adminError(err error) *web.Error {
	e := *asAPIError(err)
	switch {
	case e.RetryAfter > 0:
		e.RetryAfter = e.RetryAfter.Round(time.Second) + time.Second
	case e.Status == http.StatusServiceUnavailable:
		e.RetryAfter = time.Second
	}
	if e.Status == http.StatusUnauthorized {
		e.Header = http.Header{"Www-Authenticate": {`Bearer realm="phivault"`}}
	}
	return &e
}

func writeAPIJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status, b = http.StatusInternalServerError, []byte(`{"error":"internal error"}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// asAPIError maps service errors to safe answers. Field errors name the
// field and never quote its value, so their text is safe to show.
func asAPIError(err error) *web.Error {
	var ae *web.Error
	var fe *identity.FieldError
	var mb *http.MaxBytesError
	switch {
	case errors.As(err, &ae):
		return ae
	case errors.As(err, &mb):
		return web.New(http.StatusRequestEntityTooLarge, "the request body is too large", err)
	case errors.As(err, &fe):
		return web.New(http.StatusBadRequest, fmt.Sprintf("invalid %s: %s", fe.Field, fe.Reason), err)
	case errors.Is(err, session.ErrNotFound):
		return web.New(http.StatusNotFound, "no such session", err)
	case errors.Is(err, smart.ErrSelfApproval), errors.Is(err, smart.ErrRequester):
		return web.New(http.StatusForbidden, sentinelText(err, smart.ErrSelfApproval, smart.ErrRequester), err)
	case errors.Is(err, smart.ErrApprovalStale), errors.Is(err, smart.ErrApprovalPending), errors.Is(err, smart.ErrNotPending):
		return web.New(http.StatusConflict, sentinelText(err, smart.ErrApprovalStale, smart.ErrApprovalPending, smart.ErrNotPending), err)
	case errors.Is(err, smart.ErrNotFound):
		return web.New(http.StatusNotFound, "no such client or request", err)
	case errors.Is(err, identity.ErrSelf), errors.Is(err, identity.ErrApprover):
		return web.New(http.StatusForbidden, sentinelText(err, identity.ErrSelf, identity.ErrApprover), err)
	case errors.Is(err, identity.ErrFHIRUserBound), errors.Is(err, identity.ErrRequestPending), errors.Is(err, identity.ErrRequestStale):
		return web.New(http.StatusConflict, sentinelText(err, identity.ErrFHIRUserBound, identity.ErrRequestPending, identity.ErrRequestStale), err)
	case errors.Is(err, identity.ErrNotFound):
		return web.New(http.StatusNotFound, "no such user or request", err)
	case errors.Is(err, identity.ErrExists):
		return web.New(http.StatusConflict, "that username is taken", err)
	case errors.Is(err, password.ErrBusy), errors.Is(err, storage.ErrUnavailable), errors.Is(err, audit.ErrUnavailable),
		errors.Is(err, context.DeadlineExceeded):
		return web.New(http.StatusServiceUnavailable, "the service is temporarily unavailable; retry later", err)
	}
	return web.New(http.StatusInternalServerError, "internal error", err)
}

// sentinelText is the text of the first of sentinels that err wraps:
// their texts are written for the client.
func sentinelText(err error, sentinels ...error) string {
	for _, x := range sentinels {
		if errors.Is(err, x) {
			return x.Error()
		}
	}
	return "refused"
}

// principal authenticates an /admin/api request as the FHIR API does
// (Server.principal: a bearer API token, or the session cookie with its
// CSRF header on state changes), answering refusals as JSON.
func (a *adminAPI) principal(r *http.Request) (authn.Principal, error) {
	p, err := a.s.principal(r)
	switch {
	case err == nil:
		return p, nil
	case errors.Is(err, errNoCredential):
		return authn.Principal{}, web.New(http.StatusUnauthorized, "authentication required", err)
	case errors.Is(err, errCSRF):
		return authn.Principal{}, web.New(http.StatusForbidden, "a cookie-authenticated request that changes state must carry the X-CSRF-Token header", err)
	}
	web.NoteBackendFailure(r.Context(), err)
	return authn.Principal{}, web.New(http.StatusServiceUnavailable, "the service is temporarily unavailable; retry later", err)
}

// mayAdminister reports whether p may use /admin/api: role
// security-admin (with a second factor, for a session), or, for now, an
// API token with role system.
func mayAdminister(p authn.Principal) bool {
	switch {
	case p.Kind == authn.KindSession && !p.MFA:
		return false
	case slices.Contains(p.Roles, string(identity.RoleSecurityAdmin)):
		return true
	case p.Kind == authn.KindToken && slices.Contains(p.Roles, string(identity.RoleSystem)):
		return true // TEMPORARY: see the package note above
	}
	return false
}

// agent is the audit agent of a request by p: ids only, never names.
func agent(p authn.Principal, r *http.Request) audit.Agent {
	ag := audit.Agent{User: p.ID, Role: strings.Join(p.Roles, ","), Session: p.SessionID}
	if addr := web.ClientAddr(r); addr.IsValid() {
		ag.Address = addr.String()
	}
	return ag
}

type actorKey struct{}

// authorize authenticates and authorizes an /admin/api request, audits
// a refusal before answering it, and hands the audit agent to h.
func (a *adminAPI) authorize(h handlerFunc) http.Handler {
	return a.handle(func(w http.ResponseWriter, r *http.Request) error {
		p, err := a.principal(r)
		if err != nil {
			return err
		}
		ag := agent(p, r)
		if !mayAdminister(p) {
			entity := ""
			if id := r.PathValue("id"); id != "" && len(id) <= identity.MaxIDLen {
				entity = "User/" + id
				switch {
				case strings.HasPrefix(r.URL.Path, "/admin/api/sessions/"):
					entity = "Session/" + id
				case strings.HasPrefix(r.URL.Path, "/admin/api/requests/"):
					entity = "Request/" + id
				}
			}
			if err := a.accounts.Denied(r.Context(), ag, entity); err != nil {
				return err
			}
			return web.New(http.StatusForbidden, "this requires the security-admin role", errors.New("principal lacks security-admin"))
		}
		return h(w, r.WithContext(context.WithValue(r.Context(), actorKey{}, ag)))
	})
}

func actor(r *http.Request) audit.Agent {
	ag, _ := r.Context().Value(actorKey{}).(audit.Agent)
	return ag
}

// userJSON is the public form of an account: never the password hash.
type userJSON struct {
	ID          string    `json:"id"`
	Username    string    `json:"username"`
	DisplayName string    `json:"display_name,omitempty"`
	Roles       []string  `json:"roles"`
	FHIRUser    string    `json:"fhir_user,omitempty"`
	Disabled    bool      `json:"disabled"`
	MFAEnrolled bool      `json:"mfa_enrolled"`
	PasswordSet bool      `json:"password_set"`
	Created     time.Time `json:"created"`
	Updated     time.Time `json:"updated"`
	// PendingRequest is the role request awaiting a second
	// administrator, when there is one (the roles above are in force).
	PendingRequest *requestJSON `json:"pending_request,omitempty"`
}

// requestJSON is a pending role request (two-person rule).
type requestJSON struct {
	ID          string    `json:"id"`
	UserID      string    `json:"user_id"`
	Roles       []string  `json:"roles"`      // the roles once approved
	Adds        []string  `json:"adds"`       // the roles being approved
	BaseRoles   []string  `json:"base_roles"` // the roles when requested
	RequestedBy string    `json:"requested_by"`
	Created     time.Time `json:"created"`
	Expires     time.Time `json:"expires"`
}

func roleNames(rs []identity.Role) []string {
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = string(r)
	}
	return out
}

func toRequestJSON(r identity.Request) *requestJSON {
	return &requestJSON{ID: r.ID, UserID: r.UserID, Roles: roleNames(r.Roles), Adds: roleNames(r.Adds()), BaseRoles: roleNames(r.BaseRoles),
		RequestedBy: r.RequestedBy, Created: r.Created, Expires: r.Expires}
}

// withPending is u's JSON with its pending request, if any.
func (a *adminAPI) withPending(ctx context.Context, u identity.User) (userJSON, error) {
	j := toJSON(u)
	r, ok, err := a.accounts.PendingRequest(ctx, u.ID)
	if err != nil {
		return userJSON{}, err
	}
	if ok {
		j.PendingRequest = toRequestJSON(r)
	}
	return j, nil
}

// changed answers a change of u: 202 Accepted when part of it awaits a
// second administrator, 200 otherwise.
func (a *adminAPI) changed(w http.ResponseWriter, r *http.Request, u identity.User) error {
	j, err := a.withPending(r.Context(), u)
	if err != nil {
		return err
	}
	status := http.StatusOK
	if j.PendingRequest != nil && j.PendingRequest.RequestedBy == actor(r).User {
		status = http.StatusAccepted
	}
	writeAPIJSON(w, status, j)
	return nil
}

func toJSON(u identity.User) userJSON {
	rs := make([]string, len(u.Roles))
	for i, r := range u.Roles {
		rs[i] = string(r)
	}
	return userJSON{ID: u.ID, Username: u.Username, DisplayName: u.DisplayName, Roles: rs, FHIRUser: u.FHIRUser,
		Disabled: u.Disabled, MFAEnrolled: u.MFAEnrolled, PasswordSet: u.PasswordHash != "", Created: u.Created, Updated: u.Updated}
}

// decode reads one JSON object into v, refusing unknown fields and
// trailing data.
func decode(r *http.Request, v any) error {
	if ct := r.Header.Get("Content-Type"); ct != "" && !strings.HasPrefix(ct, "application/json") {
		return web.New(http.StatusUnsupportedMediaType, "send application/json", nil)
	}
	d := json.NewDecoder(r.Body)
	d.DisallowUnknownFields()
	if err := d.Decode(v); err != nil {
		var mb *http.MaxBytesError
		if errors.As(err, &mb) {
			return err
		}
		return web.New(http.StatusBadRequest, "the body is not the expected JSON object", err)
	}
	if _, err := d.Token(); !errors.Is(err, io.EOF) {
		return web.New(http.StatusBadRequest, "the body is not the expected JSON object", errors.New("trailing data"))
	}
	return nil
}

func parseRoles(names []string) ([]identity.Role, error) {
	out := make([]identity.Role, 0, len(names))
	for _, n := range names {
		r, err := identity.ParseRole(n)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, nil
}

func (a *adminAPI) list(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	limit := defaultListLimit
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > identity.MaxPage {
			return web.New(http.StatusBadRequest, fmt.Sprintf("limit must be 1 to %d", identity.MaxPage), err)
		}
		limit = n
	}
	us, err := a.accounts.Directory().List(r.Context(), q.Get("after"), limit)
	if err != nil {
		return err
	}
	out := struct {
		Users []userJSON `json:"users"`
		Next  string     `json:"next,omitempty"` // pass as ?after= for the next page
	}{Users: make([]userJSON, 0, len(us))}
	for _, u := range us {
		out.Users = append(out.Users, toJSON(u))
	}
	if len(us) == limit {
		out.Next = us[len(us)-1].Username
	}
	writeAPIJSON(w, http.StatusOK, out)
	return nil
}

func (a *adminAPI) create(w http.ResponseWriter, r *http.Request) error {
	var in struct {
		Username    string   `json:"username"`
		DisplayName string   `json:"display_name"`
		Roles       []string `json:"roles"`
		FHIRUser    string   `json:"fhir_user"`
	}
	if err := decode(r, &in); err != nil {
		return err
	}
	if len(in.Roles) > identity.MaxRoles {
		return &identity.FieldError{Field: "roles", Reason: fmt.Sprintf("more than %d roles", identity.MaxRoles)}
	}
	roles, err := parseRoles(in.Roles)
	if err != nil {
		return err
	}
	u, secret, err := a.accounts.Add(r.Context(), actor(r), identity.User{Username: in.Username, DisplayName: in.DisplayName, Roles: roles, FHIRUser: in.FHIRUser})
	if err != nil {
		return err
	}
	j, err := a.withPending(r.Context(), u)
	if err != nil {
		return err
	}
	w.Header().Set("Location", "/admin/api/users/"+u.ID)
	writeAPIJSON(w, http.StatusCreated, struct {
		User            userJSON `json:"user"`
		EnrolmentSecret string   `json:"enrolment_secret"` // shown once
	}{j, secret.Reveal()})
	return nil
}

func (a *adminAPI) show(w http.ResponseWriter, r *http.Request) error {
	u, err := a.accounts.Directory().ByID(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	j, err := a.withPending(r.Context(), u)
	if err != nil {
		return err
	}
	writeAPIJSON(w, http.StatusOK, j)
	return nil
}

func (a *adminAPI) setDisabled(disabled bool) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		u, err := a.accounts.SetDisabled(r.Context(), actor(r), r.PathValue("id"), disabled)
		if err != nil {
			return err
		}
		writeAPIJSON(w, http.StatusOK, toJSON(u))
		return nil
	}
}

func (a *adminAPI) setRoles(w http.ResponseWriter, r *http.Request) error {
	var in struct {
		Roles []string `json:"roles"`
	}
	if err := decode(r, &in); err != nil {
		return err
	}
	if len(in.Roles) > identity.MaxRoles {
		return &identity.FieldError{Field: "roles", Reason: fmt.Sprintf("more than %d roles", identity.MaxRoles)}
	}
	roles, err := parseRoles(in.Roles)
	if err != nil {
		return err
	}
	u, err := a.accounts.SetRoles(r.Context(), actor(r), r.PathValue("id"), roles)
	if err != nil {
		return err
	}
	return a.changed(w, r, u)
}

func (a *adminAPI) resetMFA(w http.ResponseWriter, r *http.Request) error {
	u, err := a.accounts.ResetMFA(r.Context(), actor(r), r.PathValue("id"))
	if err != nil {
		return err
	}
	writeAPIJSON(w, http.StatusOK, toJSON(u))
	return nil
}

// adminSessionJSON is a session as a security admin sees it: never its
// token (only the token's hash is stored).
type adminSessionJSON struct {
	ID       string    `json:"id"`
	UserID   string    `json:"user_id"`
	Created  time.Time `json:"created"`
	LastSeen time.Time `json:"last_seen"`
	Expires  time.Time `json:"expires"`
	MFA      bool      `json:"mfa"`
	Address  string    `json:"address,omitempty"`
}

func (a *adminAPI) sessions(w http.ResponseWriter, r *http.Request) error {
	ss, err := a.accounts.Sessions(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	out := make([]adminSessionJSON, len(ss))
	for i, x := range ss {
		out[i] = adminSessionJSON{ID: x.ID, UserID: x.UserID, Created: x.Created, LastSeen: x.LastSeen,
			Expires: x.ExpiresAbsolute, MFA: x.MFA, Address: x.Address}
	}
	writeAPIJSON(w, http.StatusOK, map[string]any{"sessions": out})
	return nil
}

func (a *adminAPI) revokeSession(w http.ResponseWriter, r *http.Request) error {
	if err := a.accounts.RevokeSession(r.Context(), actor(r), r.PathValue("id")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (a *adminAPI) revokeSessions(w http.ResponseWriter, r *http.Request) error {
	if err := a.accounts.RevokeSessions(r.Context(), actor(r), r.PathValue("id")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// enrolRefused is the one answer to every failure of an enrolment
// secret (unknown, expired, used, another user's, disabled account).
const enrolRefused = "the enrolment secret is not valid: it may be wrong, expired or already used"

func (a *adminAPI) enrol(w http.ResponseWriter, r *http.Request) error {
	addr := web.ClientAddr(r)
	if ok, retry := a.limiter.Allow(addr); !ok {
		return &web.Error{Status: http.StatusTooManyRequests, Msg: "too many attempts; retry later", Err: errors.New("address rate limit"), RetryAfter: retry}
	}
	var in struct {
		Username        string `json:"username"`
		EnrolmentSecret string `json:"enrolment_secret"`
		Password        string `json:"password"`
	}
	if err := decode(r, &in); err != nil {
		return err
	}
	ag := audit.Agent{Client: "enrol"}
	if addr.IsValid() {
		ag.Address = addr.String()
	}
	u, err := a.accounts.Enrol(r.Context(), ag, in.Username, in.EnrolmentSecret, in.Password)
	if err != nil {
		if pe := password.PolicyError(err); pe != nil {
			return web.New(http.StatusBadRequest, pe.Error(), err)
		}
		if e := asAPIError(err); e.Status == http.StatusServiceUnavailable {
			return e
		}
		return web.New(http.StatusBadRequest, enrolRefused, err)
	}
	writeAPIJSON(w, http.StatusOK, map[string]string{"status": "password set", "username": u.Username,
		"next": "log in and enrol a second factor"})
	return nil
}
