// Package signin is the JSON sign-in API under /auth/: password login,
// the second factor (TOTP, recovery codes, passkeys), enterprise sign-in
// (OIDC), logout, password change and the caller's own sessions and
// passkeys. httpapi mounts it on its mux, behind its request middleware
// (request id, attempt audit, security headers, attempt limit); the
// handler bounds its own bodies and authenticates the session cookie
// itself, through the principal function httpapi gives it, where an
// endpoint acts on an existing session.
//
// It holds only sign-in's dependencies: never the record, the keys or
// the authorizer (internal/archtest).
//
// # Security invariants
//
//   - Refusals that must look alike (unknown user, wrong password) are
//     byte-identical: errors are {"error": "<safe message>"}, the request
//     id only in the X-Request-Id header; causes go to the log only.
//   - Every body is bounded (maxAuthBody, maxPasskeyBody) and must be
//     application/json with only known fields (no login CSRF: a
//     cross-site form cannot send it without a preflight).
//   - An endpoint that acts on an existing session accepts the session
//     cookie only, with the CSRF header on state changes.
//   - Secrets (TOTP secret, recovery codes) are shown once, in the
//     answer, and never logged.
package signin

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"mime"
	"net/http"
	"time"

	"log/slog"

	"github.com/phivault/phivault/internal/audit"
	"github.com/phivault/phivault/internal/authn"
	"github.com/phivault/phivault/internal/authn/login"
	"github.com/phivault/phivault/internal/authn/password"
	"github.com/phivault/phivault/internal/authn/session"
	"github.com/phivault/phivault/internal/storage"
	"github.com/phivault/phivault/internal/web"
)

// maxAuthBody bounds /auth/ request bodies: a username, a password of at
// most 128 characters (4 bytes each), a challenge of at most
// keys.MaxTokenLen and a code fit well within it (STYLE rule 24).
const maxAuthBody = 8 << 10

// mediaJSON is the media type of every body this API reads or writes.
const mediaJSON = "application/json"

// Handler serves the JSON sign-in API under /auth/: login, second
// factor, passkeys, enterprise sign-in, logout and the caller's own
// sessions. It holds only what sign-in needs: the login service, the
// SSO relying party and the request authentication of the API it is
// mounted in.
type Handler struct {
	login     *login.Service
	sso       SSO // nil: no /auth/oidc/ routes (oidc.go)
	log       *slog.Logger
	principal func(*http.Request) (authn.Principal, error)
}

// Options configures a Handler.
type Options struct {
	Login  *login.Service // required
	SSO    SSO            // optional: enterprise sign-in at /auth/oidc/ (oidc.go)
	Logger *slog.Logger
	// Principal authenticates a request as the API the handler is
	// mounted in does (httpapi: a bearer token, or the session cookie
	// with its CSRF header on state changes), and notes an accepted
	// principal for the request's attempt audit. A refusal is a
	// *web.Error, answered as it is; any other error is a backend
	// failure (503).
	Principal func(*http.Request) (authn.Principal, error)
}

// New returns a Handler.
func New(o Options) *Handler {
	return &Handler{login: o.Login, sso: o.SSO, log: o.Logger, principal: o.Principal}
}

// Routes mounts the JSON login API on mux. Answers are
// application/json; errors are {"error": "<safe message>"} with the
// request id in the X-Request-Id header only, so refusals that must
// look alike (unknown user, wrong password) are byte-identical.
func (h *Handler) Routes(mux *http.ServeMux) {
	mux.Handle("POST /auth/login", h.handle(h.authLogin))
	mux.Handle("POST /auth/mfa/totp/enroll", h.handle(h.authEnroll))
	mux.Handle("POST /auth/mfa/totp/confirm", h.handle(h.authConfirm))
	mux.Handle("POST /auth/mfa/verify", h.handle(h.authVerify))
	mux.Handle("POST /auth/logout", h.handle(h.authLogout))
	mux.Handle("GET /auth/sessions", h.handle(h.authSessions))
	mux.Handle("DELETE /auth/sessions/{id}", h.handle(h.authRevoke))
	mux.Handle("POST /auth/password", h.handle(h.authChangePassword))
	h.passkeyRoutes(mux)
	if h.sso != nil {
		h.ssoRoutes(mux)
	}
}

// handle bounds the body at maxAuthBody and maps errors.
func (h *Handler) handle(fn web.HandlerFunc) http.Handler {
	return h.handleLimit(maxAuthBody, fn)
}

// handleLimit bounds the body at limit bytes and maps errors
// (authErr) to {"error": "<safe message>"}.
func (h *Handler) handleLimit(limit int64, fn web.HandlerFunc) http.Handler {
	a := web.Adapter{Log: h.log, Message: "auth request failed", Render: web.JSON(mediaJSON+"; charset=utf-8", false),
		Map: func(r *http.Request, err error) *web.Error {
			e := authErr(err)
			if e.Status == http.StatusServiceUnavailable {
				web.NoteBackendFailure(r.Context(), e.Err)
			}
			return e
		}}
	inner := a.Handle(fn)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.Body = http.MaxBytesReader(w, r.Body, limit)
		inner.ServeHTTP(w, r)
	})
}

// errNoSession refuses a request that must carry a session cookie but
// authenticated otherwise (a bearer token).
var errNoSession = errors.New("no valid credential")

// authErr maps service errors to statuses and safe messages.
func authErr(err error) *web.Error {
	var rl *login.RateLimitError
	if ae := web.AsError(err); ae != nil {
		return ae
	}
	if pe := password.PolicyError(err); pe != nil {
		return &web.Error{Status: http.StatusBadRequest, Msg: pe.Error(), Err: err}
	}
	if pe := passkeyErr(err); pe != nil {
		return pe
	}
	switch {
	case errors.As(err, &rl):
		return &web.Error{Status: http.StatusTooManyRequests, Msg: login.ErrRateLimited.Error(), RetryAfter: rl.RetryAfter, Err: err}
	case errors.Is(err, login.ErrInvalidCredentials), errors.Is(err, login.ErrInvalidChallenge), errors.Is(err, login.ErrInvalidCode),
		errors.Is(err, login.ErrWrongPassword):
		return &web.Error{Status: http.StatusUnauthorized, Msg: err.Error(), Err: err}
	case errors.Is(err, login.ErrNotFound):
		return &web.Error{Status: http.StatusNotFound, Msg: err.Error(), Err: err}
	case errors.Is(err, errNoSession), errors.Is(err, authn.ErrUnauthenticated):
		return &web.Error{Status: http.StatusUnauthorized, Msg: "authentication required: log in", Err: err}
	case errors.Is(err, storage.ErrConflict):
		return &web.Error{Status: http.StatusConflict, Msg: "the account changed meanwhile; retry", Err: err}
	case errors.Is(err, password.ErrBusy), errors.Is(err, audit.ErrUnavailable):
		return &web.Error{Status: http.StatusServiceUnavailable, Msg: "the service is busy; retry later", RetryAfter: time.Second, Err: err}
	}
	return &web.Error{Status: http.StatusServiceUnavailable, Msg: "the service is temporarily unavailable; retry later", RetryAfter: time.Second, Err: err}
}

func writeAuthJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status, b = http.StatusInternalServerError, []byte(`{"error":"internal error"}`)
	}
	w.Header().Set("Content-Type", mediaJSON+"; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// decodeAuth reads one JSON object with only known fields. It requires
// Content-Type application/json: a cross-site form cannot send that
// without a CORS preflight, which is never granted, so a third-party page
// cannot log a browser in to the attacker's account (login CSRF).
// Endpoints that act on an existing session are CSRF-checked instead.
func decodeAuth(r *http.Request, v any) error {
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != mediaJSON {
		return &web.Error{Status: http.StatusUnsupportedMediaType, Msg: "the body must be application/json", Err: errors.New("auth request is not application/json")}
	}
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil || dec.More() {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return &web.Error{Status: http.StatusRequestEntityTooLarge, Msg: "the request body is too large", Err: err}
		}
		return &web.Error{Status: http.StatusBadRequest, Msg: "the body must be one JSON object with the documented fields", Err: errors.New("malformed auth request body")}
	}
	return nil
}

// sessionJSON is a session as its owner sees it.
type sessionJSON struct {
	ID       string    `json:"id"`
	Created  time.Time `json:"created"`
	LastSeen time.Time `json:"last_seen"`
	Expires  time.Time `json:"expires"`
	MFA      bool      `json:"mfa"`
	Address  string    `json:"address,omitempty"`
	Current  bool      `json:"current,omitempty"`
}

func toSessionJSON(x session.Session, current string) sessionJSON {
	return sessionJSON{ID: x.ID, Created: x.Created, LastSeen: x.LastSeen, Expires: x.ExpiresAbsolute,
		MFA: x.MFA, Address: x.Address, Current: x.ID == current}
}

// writeStarted sets the cookie and answers with the session and its CSRF
// token; extra adds fields (recovery codes).
func writeStarted(w http.ResponseWriter, st login.Started, extra map[string]any) {
	web.SetSessionCookie(w, st.Secret)
	body := map[string]any{"session": toSessionJSON(st.Session, st.Session.ID), "csrf_token": st.CSRF}
	for k, v := range extra {
		body[k] = v
	}
	writeAuthJSON(w, http.StatusOK, body)
}

func (h *Handler) authLogin(w http.ResponseWriter, r *http.Request) error {
	var in struct {
		Username string `json:"username"`
		Password string `json:"password"`
	}
	if err := decodeAuth(r, &in); err != nil {
		return err
	}
	res, err := h.login.Login(r.Context(), in.Username, in.Password, web.ClientAddr(r))
	if err != nil {
		return err
	}
	if res.Session != nil {
		writeStarted(w, *res.Session, nil)
		return nil
	}
	methods := res.Methods
	writeAuthJSON(w, http.StatusOK, map[string]any{"mfa_required": true, "enrollment_required": res.EnrollmentRequired,
		"methods": methods, "challenge": res.Challenge})
	return nil
}

func (h *Handler) authEnroll(w http.ResponseWriter, r *http.Request) error {
	var in struct {
		Challenge string `json:"challenge"`
	}
	if err := decodeAuth(r, &in); err != nil {
		return err
	}
	enr, err := h.login.EnrollTOTP(r.Context(), in.Challenge, web.ClientAddr(r))
	if err != nil {
		return err
	}
	// The URI, secret and QR code are shown once, here; they never
	// reach a log.
	writeAuthJSON(w, http.StatusOK, map[string]any{"otpauth_uri": enr.Key.URI(), "secret": enr.Key.Secret(),
		"qr_png": base64.StdEncoding.EncodeToString(enr.PNG)})
	return nil
}

func (h *Handler) authConfirm(w http.ResponseWriter, r *http.Request) error {
	var in struct {
		Challenge string `json:"challenge"`
		Code      string `json:"code"`
	}
	if err := decodeAuth(r, &in); err != nil {
		return err
	}
	st, codes, err := h.login.ConfirmTOTP(r.Context(), in.Challenge, in.Code, web.ClientAddr(r))
	if err != nil {
		return err
	}
	shown := make([]string, len(codes))
	for i, c := range codes {
		shown[i] = c.Reveal()
	}
	writeStarted(w, st, map[string]any{"recovery_codes": shown})
	return nil
}

func (h *Handler) authVerify(w http.ResponseWriter, r *http.Request) error {
	var in struct {
		Challenge string `json:"challenge"`
		Method    string `json:"method"`
		Code      string `json:"code"`
	}
	if err := decodeAuth(r, &in); err != nil {
		return err
	}
	st, err := h.login.Verify(r.Context(), in.Challenge, in.Method, in.Code, web.ClientAddr(r))
	if err != nil {
		return err
	}
	writeStarted(w, st, nil)
	return nil
}

// sessionPrincipal authenticates an /auth/ request that acts on the
// caller's own sessions: the session cookie (with CSRF for unsafe
// methods) and nothing else.
func (h *Handler) sessionPrincipal(r *http.Request) (authn.Principal, error) {
	p, err := h.principal(r)
	if err != nil {
		return authn.Principal{}, err
	}
	if p.Kind != authn.KindSession {
		return authn.Principal{}, errNoSession
	}
	return p, nil
}

func (h *Handler) authLogout(w http.ResponseWriter, r *http.Request) error {
	p, err := h.sessionPrincipal(r)
	if err != nil {
		return err
	}
	if err := h.login.Logout(r.Context(), p, web.ClientAddr(r)); err != nil {
		return err
	}
	web.ClearSessionCookie(w)
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (h *Handler) authSessions(w http.ResponseWriter, r *http.Request) error {
	p, err := h.sessionPrincipal(r)
	if err != nil {
		return err
	}
	ss, err := h.login.Sessions(r.Context(), p)
	if err != nil {
		return err
	}
	out := make([]sessionJSON, len(ss))
	for i, x := range ss {
		out[i] = toSessionJSON(x, p.SessionID)
	}
	writeAuthJSON(w, http.StatusOK, map[string]any{"sessions": out})
	return nil
}

func (h *Handler) authRevoke(w http.ResponseWriter, r *http.Request) error {
	p, err := h.sessionPrincipal(r)
	if err != nil {
		return err
	}
	id := r.PathValue("id")
	if err := h.login.Revoke(r.Context(), p, id, web.ClientAddr(r)); err != nil {
		return err
	}
	if id == p.SessionID {
		web.ClearSessionCookie(w)
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// authChangePassword is the self-service password change of the
// session's owner: {"current_password", "new_password"}. Success ends
// every session of the account and answers like a login, with a new
// session cookie and CSRF token for the caller (the old cookie is dead).
func (h *Handler) authChangePassword(w http.ResponseWriter, r *http.Request) error {
	p, err := h.sessionPrincipal(r)
	if err != nil {
		return err
	}
	var in struct {
		Current string `json:"current_password"`
		New     string `json:"new_password"`
	}
	if err := decodeAuth(r, &in); err != nil {
		return err
	}
	st, err := h.login.ChangePassword(r.Context(), p, in.Current, in.New, web.ClientAddr(r))
	if err != nil {
		return err
	}
	writeStarted(w, st, nil)
	return nil
}
