package webui

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/phivault/phivault/internal/authz"
	"github.com/phivault/phivault/internal/web"

	"github.com/phivault/phivault/internal/authn/login"
	"github.com/phivault/phivault/internal/authn/session"
	"github.com/phivault/phivault/internal/identity"
	"github.com/phivault/phivault/internal/keys"
	"github.com/phivault/phivault/internal/record"
	"github.com/phivault/phivault/internal/storage"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// CSP is the UI's Content-Security-Policy. It is the policy of the
// issue plus connect-src 'self', which the idle-timeout "stay signed in"
// button (idle.js) and the passkey helper (webauthn.js) need for their
// same-origin fetches; without it default-src 'none' refuses them.
const CSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

// maxFormBody bounds every form body: the largest form, a clinical note
// of at most maxNoteLen bytes, fits with room to spare (STYLE rule 24).
const maxFormBody = 64 << 10

// KeyScanner lists the stored data-key records ([storage.Reader]).
type KeyScanner interface {
	ScanKeys(ctx context.Context, fn func(storage.KeyRecord) error) error
}

// Options configures a [UI]. Login, Record and Users are required.
type Options struct {
	Login  *login.Service
	Record *record.Service
	Users  identity.Directory

	// Keys and KeyScanner feed the trust page's encryption facts; when
	// nil the page says they are not available.
	Keys       *keys.Keyring
	KeyScanner KeyScanner
	// AuditLog feeds the trust page's audit-log facts; nil shows "not
	// available yet".
	AuditLog AuditLog

	// Authz decides every record access the UI makes for a signed-in
	// user, as the FHIR API does (Cedar policies, search narrowing).
	// Without it every record access is refused (fail closed).
	Authz *authz.Authorizer
	// BreakGlass opens emergency grants from the "no treatment
	// relationship" page; without it that form answers 503.
	BreakGlass *authz.BreakGlass

	// Access is the searchable audit log behind the patient portal's
	// "who accessed my record" (portal_access.go); nil says it is not
	// available.
	Access AccessLog
	// Reports keeps patients' access reports and Audit records the
	// portal's own actions (report, close); without either, reports
	// answer 503.
	Reports ReportStore
	Audit   AuditFunc

	// IdleTimeout is the session idle timeout the warning script counts
	// down; default session.DefaultIdleTimeout. It must match the login
	// service's session options.
	IdleTimeout time.Duration
	// Console is the staff administration console (admin.go).
	Console Console

	Logger *slog.Logger     // default slog.Default()
	Now    func() time.Time // default time.Now
	Rand   io.Reader        // search ids, pre-session tokens; default crypto/rand
}

// UI is the web interface. It is safe for concurrent use.
type UI struct {
	login    *login.Service
	rec      *record.Service
	users    identity.Directory
	keys     *keys.Keyring
	scanner  KeyScanner
	auditLog AuditLog
	authz    *authz.Authorizer
	glass    *authz.BreakGlass
	access   AccessLog
	reports  ReportStore
	auditFn  AuditFunc
	idle     time.Duration
	log      *slog.Logger
	now      func() time.Time
	rand     io.Reader

	pages    map[string]*pageTemplate
	searches *searchStore
	trust    *trustCache
	console  Console
}

// New validates o and returns a UI. Errors name the Options field.
func New(o Options) (*UI, error) {
	switch {
	case o.Login == nil:
		return nil, errors.New("webui: new: Options.Login is nil")
	case o.Record == nil:
		return nil, errors.New("webui: new: Options.Record is nil")
	case o.Users == nil:
		return nil, errors.New("webui: new: Options.Users is nil")
	}
	if o.IdleTimeout == 0 {
		o.IdleTimeout = session.DefaultIdleTimeout
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	pages, err := parsePages()
	if err != nil {
		return nil, fmt.Errorf("webui: new: %w", err)
	}
	return &UI{
		login: o.Login, rec: o.Record, users: o.Users, keys: o.Keys, scanner: o.KeyScanner, auditLog: o.AuditLog, authz: o.Authz, glass: o.BreakGlass, access: o.Access, reports: o.Reports, auditFn: o.Audit,
		idle: o.IdleTimeout, log: o.Logger, now: o.Now, rand: o.Rand,
		pages: pages, searches: newSearchStore(o.Now), trust: &trustCache{}, console: o.Console,
	}, nil
}

// Handler returns the UI's handler, to mount at "/".
func (u *UI) Handler() http.Handler {
	mux := http.NewServeMux()
	static, err := fs.Sub(staticFS, "static")
	if err != nil {
		panic("webui: embedded static directory missing: " + err.Error())
	}
	mux.Handle("GET /static/", staticHandler(http.StripPrefix("/static/", http.FileServerFS(static))))

	mux.Handle("GET /{$}", u.handle(u.signedIn(u.home)))
	mux.Handle("GET /trust", u.handle(u.trustPage))

	// Sign-in (signin.go).
	mux.Handle("GET /login", u.handle(u.loginForm))
	mux.Handle("POST /login", u.handle(u.preSession(u.loginSubmit)))
	mux.Handle("GET /login/mfa", u.handle(u.mfaForm))
	mux.Handle("POST /login/mfa", u.handle(u.preSession(u.mfaSubmit)))
	mux.Handle("GET /login/enrol", u.handle(u.enrolForm))
	mux.Handle("POST /login/enrol", u.handle(u.preSession(u.enrolStart)))
	mux.Handle("POST /login/enrol/confirm", u.handle(u.preSession(u.enrolConfirm)))
	mux.Handle("GET /signed-out", u.handle(u.signedOut))
	mux.Handle("POST /logout", u.handle(u.form(u.logout)))
	mux.Handle("GET /sessions", u.handle(u.signedIn(u.sessionsPage)))
	mux.Handle("POST /sessions/{id}/revoke", u.handle(u.form(u.revokeSession)))
	mux.Handle("POST /session/keepalive", u.handle(u.form(u.keepalive)))
	u.passkeyRoutes(mux) // passkeys.go: passkey sign-in, enrolment, Security page

	// Clinician (patients.go).
	mux.Handle("GET /patients", u.handle(u.clinical(u.searchForm)))
	mux.Handle("POST /patients/search", u.handle(u.clinicalForm(u.searchSubmit)))
	mux.Handle("GET /patients/search/{sid}", u.handle(u.clinical(u.searchResults)))
	mux.Handle("GET /patients/{id}", u.handle(u.clinical(u.chartPage)))
	mux.Handle("POST /patients/{id}/notes", u.handle(u.clinicalForm(u.addNote)))
	mux.Handle("POST /patients/{id}/observations", u.handle(u.clinicalForm(u.addObservation)))
	mux.Handle("POST /patients/{id}/break-glass", u.handle(u.clinicalForm(u.breakGlass)))

	// Patient portal (portal*.go).
	u.portalRoutes(mux)
	// Administration console (admin*.go).
	u.adminRoutes(mux)

	mux.Handle("/", u.handle(func(w http.ResponseWriter, r *http.Request) error {
		return pageErr(http.StatusNotFound, "Page not found", "There is no page at this address. Check the link, or go back to the start page.", nil)
	}))
	return uiHeaders(mux)
}

// uiHeaders replaces the API's deny-all CSP (set by httpapi's outer
// middleware) with the UI policy, and bounds request bodies.
func uiHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", CSP)
		h.Set("X-Frame-Options", "DENY")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Cross-Origin-Opener-Policy", "same-origin")
		h.Set("Cross-Origin-Resource-Policy", "same-origin")
		h.Set("Permissions-Policy", "camera=(), microphone=(), geolocation=(), payment=()")
		// Every page may carry PHI or a secret (QR code, recovery
		// codes): nothing is stored by the browser or a proxy.
		h.Set("Cache-Control", "no-store")
		r.Body = http.MaxBytesReader(w, r.Body, maxFormBody)
		next.ServeHTTP(w, r)
	})
}

// staticHandler serves embedded assets. They hold no PHI and change only
// with the binary, so a short public cache is fine.
func staticHandler(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/") {
			http.NotFound(w, r) // no directory listings
			return
		}
		w.Header().Set("Cache-Control", "public, max-age=3600")
		next.ServeHTTP(w, r)
	})
}

// handlerFunc is a UI handler that returns its error; [UI.handle] turns
// it into an error page.
type handlerFunc = web.HandlerFunc

// pageErr is a failure with what the browser may see (status, title,
// message) kept apart from the cause, which goes to the log only.
func pageErr(status int, title, msg string, cause error) *web.Error {
	return &web.Error{Status: status, Title: title, Msg: msg, Err: cause}
}

// errCSRF is a POST whose CSRF token is missing or wrong.
var errCSRF = errors.New("missing or wrong form csrf token")

// handle maps errors to HTML error pages with the request id; the cause
// is logged with the request id and never shown (web.Adapter).
func (u *UI) handle(h handlerFunc) http.Handler {
	a := web.Adapter{Log: u.log, Message: "ui request failed", NoteRoutes: true,
		Map:    func(_ *http.Request, err error) *web.Error { return u.toPageError(err) },
		Render: u.renderError}
	return a.Handle(h)
}

// renderError writes e as the error page. It shows who is signed in on
// error pages too (the header, the sign-out button); a failure there
// just leaves the header out.
func (u *UI) renderError(w http.ResponseWriter, r *http.Request, e *web.Error) {
	var v *viewer
	if !errors.Is(e.Err, errSignedOut) && e.Status != http.StatusServiceUnavailable {
		v, _ = u.authenticate(r)
	}
	u.render(w, r, e.Status, "error", pageData{Title: e.Title, Viewer: v, Data: errorView{Status: e.Status, Title: e.Title, Message: e.Msg}})
}

// toPageError maps any error to a page error with a safe message.
func (u *UI) toPageError(err error) *web.Error {
	var pe *web.Error
	var rl *login.RateLimitError
	switch {
	case errors.As(err, &pe):
		return pe
	case errors.Is(err, errCSRF):
		return pageErr(http.StatusForbidden, "Form refused",
			"This form was refused because it did not carry a valid security token: it may have expired, or it was not sent from a phivault page. Go back, reload the page and try again.", err)
	case errors.As(err, &rl):
		return &web.Error{Status: http.StatusTooManyRequests, Title: "Too many attempts",
			Msg: fmt.Sprintf("There were too many sign-in attempts from your network. Wait %s and try again.", roundWait(rl.RetryAfter)), RetryAfter: rl.RetryAfter, Err: err}
	}
	var re *record.Error
	if errors.As(err, &re) {
		switch record.StatusCode(re) {
		case http.StatusNotFound:
			return pageErr(http.StatusNotFound, "Not found", "This record does not exist.", err)
		case http.StatusGone:
			return pageErr(http.StatusGone, "Record removed", "This record was deleted or erased.", err)
		case http.StatusServiceUnavailable:
			return &web.Error{Status: http.StatusServiceUnavailable, Title: "Temporarily unavailable",
				Msg: "The service is temporarily unavailable, so nothing was shown or saved. Try again in a moment.", RetryAfter: time.Second, Err: err}
		}
	}
	return pageErr(http.StatusInternalServerError, "Something went wrong",
		"The server could not complete this request. Nothing was shown. If it happens again, give the request id below to your administrator.", err)
}

func roundWait(d time.Duration) string {
	if d < time.Second {
		d = time.Second
	}
	return d.Round(time.Second).String()
}

type errorView struct {
	Status         int
	Title, Message string
}

// redirect answers 303 See Other: after a POST the browser GETs target.
func redirect(w http.ResponseWriter, r *http.Request, target string) error {
	http.Redirect(w, r, target, http.StatusSeeOther)
	return nil
}
