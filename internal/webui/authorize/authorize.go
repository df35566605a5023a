// Package authorize serves the HTML pages of the SMART App Launch
// authorize flow (sign-in, second factor, patient picker, consent,
// errors) under /oauth2/authorize, for the authorization server of
// internal/authn/smart. The FHIR API (internal/httpapi) mounts them on
// its mux when App Launch is enabled; the app wires them (ADR 0025).
//
// # Security invariants
//
//   - A flow is bound to one browser by FlowCookie; every form
//     carries the sealed flow and a CSRF token derived from the cookie,
//     and both are checked before anything else (403 for the token).
//   - Pages are html/template under a CSP of default-src 'none' with
//     style-src 'self', and never cached; no inline script or style.
//   - An error is an HTML page, never a redirect to an unregistered
//     redirect_uri; redirects to the app are explicit in the handlers.
//   - The picker reads and searches as the signed-in user, through the
//     record with the user's own guard, audited as theirs.
//   - Only workforce accounts with a verified second factor and patient
//     accounts linked to a Patient may approve apps.
package authorize

import (
	"bytes"
	"context"
	"embed"
	"errors"
	"html/template"
	"log/slog"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/phivault/phivault/internal/audit"
	"github.com/phivault/phivault/internal/authn"
	"github.com/phivault/phivault/internal/authn/login"
	"github.com/phivault/phivault/internal/authn/smart"
	"github.com/phivault/phivault/internal/authz"
	"github.com/phivault/phivault/internal/ident"
	"github.com/phivault/phivault/internal/identity"
	"github.com/phivault/phivault/internal/record"
	"github.com/phivault/phivault/internal/web"
)

// FlowCookie binds an authorize flow to one browser: 256 random
// bits; the sealed flow in each form and the forms' CSRF token are
// derived from it. __Host-: Secure, Path=/, no Domain. SameSite=Strict:
// it is only ever read by our own forms, posted from our own pages.
const FlowCookie = "__Host-phivault_authorize"

// launchCSP is the policy of the authorize pages. It has no form-action:
// after the consent POST the browser follows a 303 to the app's
// redirect_uri, and Chrome applies form-action to that redirect too. The
// forms post to our own paths only (fixed in the templates).
const launchCSP = "default-src 'none'; style-src 'self'; img-src 'self'; base-uri 'none'; frame-ancestors 'none'"

// maxAuthorizeQuery bounds an authorize request's query string or body.
const maxAuthorizeQuery = 16 << 10

// maxPickerResults bounds the patients listed by the picker.
const maxPickerResults = 20

// Server serves the authorize pages. Build it with New; it is safe for
// concurrent use.
type Server struct {
	smart   *smart.Server
	login   *login.Service
	rec     *record.Service
	authz   *authz.Authorizer
	users   identity.Directory
	log     *slog.Logger
	baseURL string
}

// Options are what the pages need. SMART and Login are required;
// without Users no account may approve an app, without Authorizer the
// picker's reads are refused (the record refuses a caller without a
// guard).
type Options struct {
	SMART      *smart.Server
	Login      *login.Service
	Record     *record.Service
	Authorizer *authz.Authorizer
	Users      identity.Directory
	Logger     *slog.Logger
	BaseURL    string // the server's public URL, for the picker's searches
}

// New returns the authorize pages.
func New(o Options) *Server {
	return &Server{smart: o.SMART, login: o.Login, rec: o.Record, authz: o.Authorizer, users: o.Users,
		log: o.Logger, baseURL: o.BaseURL}
}

// Routes mounts the App Launch authorize flow on mux.
//
//	GET|POST /oauth2/authorize          validate, then sign-in or consent
//	POST     /oauth2/authorize/login    password step
//	POST     /oauth2/authorize/mfa      TOTP or recovery code step
//	POST     /oauth2/authorize/patient  patient picker (search, pick)
//	POST     /oauth2/authorize/consent  approve or deny: 303 to the app
func (s *Server) Routes(mux *http.ServeMux) {
	mux.Handle("GET /oauth2/authorize", s.launchHandle(s.authorizeStart))
	mux.Handle("POST /oauth2/authorize", s.launchHandle(s.authorizeStart))
	mux.Handle("POST /oauth2/authorize/login", s.launchHandle(s.authorizeLogin))
	mux.Handle("POST /oauth2/authorize/mfa", s.launchHandle(s.authorizeMFA))
	mux.Handle("POST /oauth2/authorize/patient", s.launchHandle(s.authorizePatient))
	mux.Handle("POST /oauth2/authorize/consent", s.launchHandle(s.authorizeConsent))
	mux.Handle("GET /oauth2/assets/launch.css", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/css; charset=utf-8")
		w.Header().Set("Cache-Control", "public, max-age=3600")
		_, _ = w.Write(css)
	}))
}

// launchHandle sets the page CSP, bounds the body and renders errors as
// pages (never as redirects: those are explicit in the handlers). An
// error that is not a *web.Error is 400 for a bad flow (smart.ErrFlow),
// 503 otherwise; every 5xx carries Retry-After: 1.
func (s *Server) launchHandle(h web.HandlerFunc) http.Handler {
	a := web.Adapter{Log: s.log, Message: "authorize request failed", Map: launchError,
		Render: func(w http.ResponseWriter, r *http.Request, e *web.Error) {
			s.render(w, r, e.Status, "error", pageData{Title: "Cannot authorize this app", Message: e.Msg})
		}}
	inner := a.Handle(h)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Security-Policy", launchCSP)
		r.Body = http.MaxBytesReader(w, r.Body, maxAuthorizeQuery)
		inner.ServeHTTP(w, r)
	})
}

// launchError maps an authorize-flow failure to its page.
func launchError(_ *http.Request, err error) *web.Error {
	pe := web.AsError(err)
	if pe == nil {
		pe = &web.Error{Status: http.StatusServiceUnavailable, Msg: "The service is temporarily unavailable. Try again later.", Err: err}
		if errors.Is(err, smart.ErrFlow) {
			pe = &web.Error{Status: http.StatusBadRequest, Msg: smart.ErrFlow.Error(), Err: err}
		}
	}
	if pe.Status >= 500 && pe.RetryAfter <= 0 {
		c := *pe
		c.RetryAfter = time.Second
		pe = &c
	}
	return pe
}

// pageData is what the templates show. Nothing in it is a secret except
// Flow and CSRF, which belong in the form (never in a URL or log).
type pageData struct {
	Title, Message, Error, Client, RequestID string
	Flow, CSRF, Challenge                    string
	User, Patient, Query                     string
	Scopes                                   []string
	Patients                                 []pickerPatient
}

type pickerPatient struct{ ID, Name, BirthDate string }

func (s *Server) render(w http.ResponseWriter, r *http.Request, status int, name string, d pageData) {
	d.RequestID = web.RequestID(r.Context())
	var buf bytes.Buffer
	if err := templates.ExecuteTemplate(&buf, name, d); err != nil {
		s.log.ErrorContext(r.Context(), "rendering authorize page", slog.String("request_id", d.RequestID), slog.String("error", err.Error()))
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	web.HTML(w, status, &buf)
}

// authorizeParams reads the authorize request from the query (GET) or
// the form body (POST), bounded.
func authorizeParams(r *http.Request) (url.Values, error) {
	if r.Method == http.MethodGet {
		if len(r.URL.RawQuery) > maxAuthorizeQuery {
			return nil, &web.Error{Status: http.StatusBadRequest, Msg: "The authorization request is too large.", Err: errors.New("authorize query too large")}
		}
		q, err := url.ParseQuery(r.URL.RawQuery)
		if err != nil {
			return nil, &web.Error{Status: http.StatusBadRequest, Msg: "The authorization request is malformed.", Err: err}
		}
		return q, nil
	}
	if err := parseLaunchForm(r); err != nil {
		return nil, err
	}
	return r.PostForm, nil
}

func parseLaunchForm(r *http.Request) error {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "application/x-www-form-urlencoded" {
		return &web.Error{Status: http.StatusUnsupportedMediaType, Msg: "The form must be sent as application/x-www-form-urlencoded.", Err: errors.New("authorize form content type")}
	}
	if err := r.ParseForm(); err != nil {
		return &web.Error{Status: http.StatusBadRequest, Msg: "The form is malformed or too large.", Err: err}
	}
	return nil
}

// authorizeStart validates the request, starts the flow (cookie, sealed
// state) and shows the next page: sign-in, or with a session already
// present the patient picker or consent.
func (s *Server) authorizeStart(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	q, err := authorizeParams(r)
	if err != nil {
		return err
	}
	req, client, err := s.smart.Authorize(ctx, q)
	var ae *smart.AuthorizeError
	if errors.As(err, &ae) {
		if aerr := s.smart.RefuseAuthorize(ctx, r, client.ID, http.StatusBadRequest, "authorize-"+ae.Code); aerr != nil {
			return aerr
		}
		if !ae.Redirect {
			// Never redirect to a URI that is not registered.
			return &web.Error{Status: http.StatusBadRequest, Msg: "The app sent an invalid authorization request: " + ae.Desc + ".", Err: ae}
		}
		http.Redirect(w, r, smart.ErrorRedirect(req, ae.Code, ae.Desc), http.StatusSeeOther)
		return nil
	}
	if err != nil {
		return err
	}
	binding, err := s.smart.NewFlowBinding()
	if err != nil {
		return err
	}
	http.SetCookie(w, &http.Cookie{Name: FlowCookie, Value: binding, Path: "/", MaxAge: int(smart.FlowTTL.Seconds()),
		Secure: true, HttpOnly: true, SameSite: http.SameSiteStrictMode})
	f := smart.Flow{Req: req}
	if p, ok := s.launchSession(r); ok {
		return s.nextStep(w, r, f, binding, client.Name, p)
	}
	return s.renderFlow(w, r, http.StatusOK, "login", f, binding, client.Name, pageData{Title: "Sign in"})
}

// launchSession returns the principal of a valid session cookie that
// may approve apps: a workforce account with a verified second factor,
// or a patient account (with one too when the policy requires it).
func (s *Server) launchSession(r *http.Request) (authn.Principal, bool) {
	c, err := r.Cookie(web.SessionCookie)
	if err != nil {
		return authn.Principal{}, false
	}
	p, err := s.login.Authenticate(r.Context(), c.Value)
	if err != nil || s.login.NeedsSecondFactor(p) {
		return authn.Principal{}, false
	}
	web.NoteAgent(r.Context(), agent(p, r))
	return p, true
}

// renderFlow renders a page of the flow with a freshly sealed state.
func (s *Server) renderFlow(w http.ResponseWriter, r *http.Request, status int, page string, f smart.Flow, binding, client string, d pageData) error {
	sealed, err := s.smart.SealFlow(f, binding)
	if err != nil {
		return err
	}
	d.Flow, d.CSRF, d.Client = sealed, smart.FlowCSRF(binding), client
	s.render(w, r, status, page, d)
	return nil
}

// openFlow checks the flow cookie, the CSRF token and the sealed flow of
// a form post. A missing or wrong CSRF token is refused with 403.
func (s *Server) openFlow(r *http.Request) (smart.Flow, string, string, error) {
	if err := parseLaunchForm(r); err != nil {
		return smart.Flow{}, "", "", err
	}
	c, err := r.Cookie(FlowCookie)
	if err != nil {
		return smart.Flow{}, "", "", &web.Error{Status: http.StatusBadRequest, Msg: smart.ErrFlow.Error(), Err: errors.New("no authorize flow cookie")}
	}
	if !smart.CheckFlowCSRF(c.Value, r.PostForm.Get("csrf_token")) {
		return smart.Flow{}, "", "", &web.Error{Status: http.StatusForbidden, Msg: "The form is missing its security token or it does not match. Start again from the app.", Err: errCSRF}
	}
	f, err := s.smart.OpenFlow(r.PostForm.Get("flow"), c.Value)
	if err != nil {
		return smart.Flow{}, "", "", err
	}
	// The client may have been disabled (or, two-person rule, its
	// registration rejected) since the flow began.
	cl, err := s.smart.Client(r.Context(), f.Req.ClientID)
	switch {
	case errors.Is(err, smart.ErrNotFound) || err == nil && !cl.Active():
		return smart.Flow{}, "", "", &web.Error{Status: http.StatusBadRequest, Msg: "This app is no longer registered or is disabled.", Err: errors.New("authorize flow of a disabled or deleted client")}
	case err != nil:
		return smart.Flow{}, "", "", err
	}
	return f, c.Value, cl.Name, nil
}

func (s *Server) authorizeLogin(w http.ResponseWriter, r *http.Request) error {
	f, binding, client, err := s.openFlow(r)
	if err != nil {
		return err
	}
	res, err := s.login.Login(r.Context(), r.PostForm.Get("username"), r.PostForm.Get("password"), web.ClientAddr(r))
	if msg, ok := loginRefusal(err); ok {
		return s.renderFlow(w, r, http.StatusUnauthorized, "login", f, binding, client, pageData{Title: "Sign in", Error: msg})
	}
	if err != nil {
		return err
	}
	if res.Session != nil {
		web.SetSessionCookie(w, res.Session.Secret)
		p, err := s.login.Authenticate(r.Context(), res.Session.Secret.Reveal())
		if err != nil {
			return err
		}
		return s.nextStep(w, r, f, binding, client, p)
	}
	if res.EnrollmentRequired {
		return &web.Error{Status: http.StatusForbidden, Msg: "Your account has no second factor yet. Sign in to phivault once to set one up, then start again from the app."}
	}
	return s.renderFlow(w, r, http.StatusOK, "mfa", f, binding, client, pageData{Title: "Second factor", Challenge: res.Challenge})
}

// loginRefusal maps login errors to the message shown on the form.
func loginRefusal(err error) (string, bool) {
	var rl *login.RateLimitError
	switch {
	case err == nil:
		return "", false
	case errors.As(err, &rl):
		return "Too many attempts. Wait a moment and try again.", true
	case errors.Is(err, login.ErrInvalidCredentials):
		return "The username or password is wrong.", true
	case errors.Is(err, login.ErrInvalidCode):
		return "The code is wrong or was already used.", true
	}
	return "", false
}

func (s *Server) authorizeMFA(w http.ResponseWriter, r *http.Request) error {
	f, binding, client, err := s.openFlow(r)
	if err != nil {
		return err
	}
	ch := r.PostForm.Get("challenge")
	st, err := s.login.Verify(r.Context(), ch, r.PostForm.Get("method"), r.PostForm.Get("code"), web.ClientAddr(r))
	if errors.Is(err, login.ErrInvalidChallenge) {
		return s.renderFlow(w, r, http.StatusUnauthorized, "login", f, binding, client, pageData{Title: "Sign in", Error: "The sign-in took too long. Sign in again."})
	}
	if msg, ok := loginRefusal(err); ok {
		return s.renderFlow(w, r, http.StatusUnauthorized, "mfa", f, binding, client, pageData{Title: "Second factor", Challenge: ch, Error: msg})
	}
	if err != nil {
		return err
	}
	web.SetSessionCookie(w, st.Secret)
	p, err := s.login.Authenticate(r.Context(), st.Secret.Reveal())
	if err != nil {
		return err
	}
	return s.nextStep(w, r, f, binding, client, p)
}

// launchUser loads the signed-in user as the SMART server sees them.
// Only workforce accounts (with MFA) and patient accounts linked to a
// Patient may approve apps.
func (s *Server) launchUser(ctx context.Context, p authn.Principal) (smart.LaunchUser, error) {
	if s.users == nil {
		return smart.LaunchUser{}, errors.New("account directory unavailable")
	}
	u, err := s.users.ByID(ctx, p.ID)
	if err != nil {
		return smart.LaunchUser{}, err
	}
	lu := smart.LaunchUser{ID: u.ID, FHIRUser: u.FHIRUser, Roles: p.Roles, Session: p.SessionID}
	switch {
	case u.HasRole(identity.RolePatient):
		if !strings.HasPrefix(u.FHIRUser, ident.PatientPrefix) {
			return smart.LaunchUser{}, &web.Error{Status: http.StatusForbidden, Msg: "Your account is not linked to a patient record."}
		}
		lu.Patient = true
	case u.RequiresMFA():
		if !p.MFA {
			return smart.LaunchUser{}, &web.Error{Status: http.StatusForbidden, Msg: "A second factor is required."}
		}
	default:
		return smart.LaunchUser{}, &web.Error{Status: http.StatusForbidden, Msg: "This account may not authorize apps."}
	}
	return lu, nil
}

// nextStep shows the patient picker or the consent page.
func (s *Server) nextStep(w http.ResponseWriter, r *http.Request, f smart.Flow, binding, client string, p authn.Principal) error {
	u, err := s.launchUser(r.Context(), p)
	if err != nil {
		return err
	}
	switch {
	case !smart.NeedsPatient(f.Req):
		f.Patient = ""
	case u.Patient:
		// A patient account shares its own record, whatever the flow held.
		f.Patient = strings.TrimPrefix(u.FHIRUser, ident.PatientPrefix)
	case f.Patient == "":
		return s.renderFlow(w, r, http.StatusOK, "picker", f, binding, client, pageData{Title: "Choose a patient"})
	}
	return s.renderFlow(w, r, http.StatusOK, "consent", f, binding, client, pageData{Title: "Allow this app?",
		User: p.Name, Patient: f.Patient, Scopes: describeScopes(f.Req.Scope)})
}

// flowPrincipal is the session behind a post-login form of the flow.
func (s *Server) flowPrincipal(r *http.Request) (authn.Principal, error) {
	p, ok := s.launchSession(r)
	if !ok {
		return authn.Principal{}, &web.Error{Status: http.StatusUnauthorized, Msg: "Your session ended. Start again from the app.", Err: errNoCredential}
	}
	return p, nil
}

// launchCaller is the identity of the picker's record reads: the
// signed-in user, authorized by their own guard (the picker searches
// and reads exactly what the user may search and read, narrowed the
// same way), audited as theirs. Without an authorizer it has no guard,
// and the record refuses everything.
func (s *Server) launchCaller(r *http.Request, p authn.Principal, clientID string) record.Caller {
	c := record.Caller{
		Agent:     audit.Agent{User: p.ID, Role: strings.Join(p.Roles, ","), Client: clientID, Session: p.SessionID, Address: web.ClientIP(r)},
		Purpose:   authz.PurposeOf(p.Roles),
		RequestID: web.RequestID(r.Context()),
	}
	if s.authz != nil {
		c.Guard = s.authz.For(p)
	}
	return c
}

// agent is the signed-in user as the attempt audit names them (the
// same fields as the FHIR API's agent of a session).
func agent(p authn.Principal, r *http.Request) audit.Agent {
	a := audit.Agent{User: p.ID, Client: string(p.Kind), Session: p.SessionID, Address: web.ClientIP(r)}
	if len(p.Roles) > 0 {
		a.Role = strings.Join(p.Roles, ",")
	}
	if p.Client != "" {
		a.Client = p.Client
	}
	return a
}

// Causes of refusals, for the log.
var (
	errNoCredential = errors.New("no valid credential")
	errCSRF         = errors.New("missing or wrong csrf token")
)

//go:embed authorize.html
var pages embed.FS

// css is the stylesheet served at /oauth2/assets/launch.css.
//
//go:embed launch.css
var css []byte

// templates are the pages: "error", "login", "mfa", "picker", "consent".
var templates = template.Must(template.ParseFS(pages, "authorize.html"))
