package httpapi

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"mime"
	"net/http"
	"time"

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

// authRoutes mounts the JSON login API. Answers are application/json;
// errors are {"error": "<safe message>"} with the request id in the
// X-Request-Id header only, so refusals that must look alike (unknown
// user, wrong password) are byte-identical.
func (s *Server) authRoutes(mux *http.ServeMux) {
	mux.Handle("POST /auth/login", s.authHandle(s.authLogin))
	mux.Handle("POST /auth/mfa/totp/enroll", s.authHandle(s.authEnroll))
	mux.Handle("POST /auth/mfa/totp/confirm", s.authHandle(s.authConfirm))
	mux.Handle("POST /auth/mfa/verify", s.authHandle(s.authVerify))
	mux.Handle("POST /auth/logout", s.authHandle(s.authLogout))
	mux.Handle("GET /auth/sessions", s.authHandle(s.authSessions))
	mux.Handle("DELETE /auth/sessions/{id}", s.authHandle(s.authRevoke))
	mux.Handle("POST /auth/password", s.authHandle(s.authChangePassword))
	s.passkeyRoutes(mux)
}

// authHandle bounds the body at maxAuthBody and maps errors.
func (s *Server) authHandle(h handlerFunc) http.Handler {
	return s.authHandleLimit(maxAuthBody, h)
}

// authHandleLimit bounds the body at limit bytes and maps errors
// (authErr) to {"error": "<safe message>"}.
func (s *Server) authHandleLimit(limit int64, h handlerFunc) http.Handler {
	a := web.Adapter{Log: s.log, Message: "auth request failed", Render: web.JSON(mediaJSON+"; charset=utf-8", false),
		Map: func(r *http.Request, err error) *web.Error {
			e := s.authErr(err)
			if e.Status == http.StatusServiceUnavailable {
				web.NoteBackendFailure(r.Context(), e.Err)
			}
			return e
		}}
	inner := a.Handle(h)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.Body = http.MaxBytesReader(w, r.Body, limit)
		inner.ServeHTTP(w, r)
	})
}

// authErr maps service errors to statuses and safe messages.
func (s *Server) authErr(err error) *web.Error {
	var rl *login.RateLimitError
	if ae := web.AsError(err); ae != nil {
		return ae
	}
	for _, pe := range passwordPolicy {
		if errors.Is(err, pe) {
			return &web.Error{Status: http.StatusBadRequest, Msg: pe.Error(), Err: err}
		}
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
	case errors.Is(err, errNoCredential), errors.Is(err, authn.ErrUnauthenticated):
		return &web.Error{Status: http.StatusUnauthorized, Msg: "authentication required: log in", Err: err}
	case errors.Is(err, errCSRF):
		return &web.Error{Status: http.StatusForbidden, Msg: "a cookie-authenticated request that changes state must carry the X-CSRF-Token header", Err: err}
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

func (s *Server) authLogin(w http.ResponseWriter, r *http.Request) error {
	var in struct {
		Username string `json:"username"`
		Password string `json:"password"`
	}
	if err := decodeAuth(r, &in); err != nil {
		return err
	}
	res, err := s.login.Login(r.Context(), in.Username, in.Password, web.ClientAddr(r))
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

func (s *Server) authEnroll(w http.ResponseWriter, r *http.Request) error {
	var in struct {
		Challenge string `json:"challenge"`
	}
	if err := decodeAuth(r, &in); err != nil {
		return err
	}
	enr, err := s.login.EnrollTOTP(r.Context(), in.Challenge, web.ClientAddr(r))
	if err != nil {
		return err
	}
	// The URI, secret and QR code are shown once, here; they never
	// reach a log.
	writeAuthJSON(w, http.StatusOK, map[string]any{"otpauth_uri": enr.Key.URI(), "secret": enr.Key.Secret(),
		"qr_png": base64.StdEncoding.EncodeToString(enr.PNG)})
	return nil
}

func (s *Server) authConfirm(w http.ResponseWriter, r *http.Request) error {
	var in struct {
		Challenge string `json:"challenge"`
		Code      string `json:"code"`
	}
	if err := decodeAuth(r, &in); err != nil {
		return err
	}
	st, codes, err := s.login.ConfirmTOTP(r.Context(), in.Challenge, in.Code, web.ClientAddr(r))
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

func (s *Server) authVerify(w http.ResponseWriter, r *http.Request) error {
	var in struct {
		Challenge string `json:"challenge"`
		Method    string `json:"method"`
		Code      string `json:"code"`
	}
	if err := decodeAuth(r, &in); err != nil {
		return err
	}
	st, err := s.login.Verify(r.Context(), in.Challenge, in.Method, in.Code, web.ClientAddr(r))
	if err != nil {
		return err
	}
	writeStarted(w, st, nil)
	return nil
}

// sessionPrincipal authenticates an /auth/ request that acts on the
// caller's own sessions: the session cookie (with CSRF for unsafe
// methods) and nothing else.
func (s *Server) sessionPrincipal(r *http.Request) (authn.Principal, error) {
	p, err := s.principal(r)
	if err != nil {
		return authn.Principal{}, err
	}
	if p.Kind != authn.KindSession {
		return authn.Principal{}, errNoCredential
	}
	return p, nil
}

func (s *Server) authLogout(w http.ResponseWriter, r *http.Request) error {
	p, err := s.sessionPrincipal(r)
	if err != nil {
		return err
	}
	if err := s.login.Logout(r.Context(), p, web.ClientAddr(r)); err != nil {
		return err
	}
	web.ClearSessionCookie(w)
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) authSessions(w http.ResponseWriter, r *http.Request) error {
	p, err := s.sessionPrincipal(r)
	if err != nil {
		return err
	}
	ss, err := s.login.Sessions(r.Context(), p)
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

func (s *Server) authRevoke(w http.ResponseWriter, r *http.Request) error {
	p, err := s.sessionPrincipal(r)
	if err != nil {
		return err
	}
	id := r.PathValue("id")
	if err := s.login.Revoke(r.Context(), p, id, web.ClientAddr(r)); err != nil {
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
func (s *Server) authChangePassword(w http.ResponseWriter, r *http.Request) error {
	p, err := s.sessionPrincipal(r)
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
	st, err := s.login.ChangePassword(r.Context(), p, in.Current, in.New, web.ClientAddr(r))
	if err != nil {
		return err
	}
	writeStarted(w, st, nil)
	return nil
}
