package webui

import (
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
	"github.com/phivault/phivault/internal/webui/chart"
	"github.com/phivault/phivault/internal/webui/console"
	"github.com/phivault/phivault/internal/webui/desk"
	"github.com/phivault/phivault/internal/webui/portal"
	"github.com/phivault/phivault/internal/webui/signin"
	"github.com/phivault/phivault/internal/webui/site"

	"github.com/phivault/phivault/internal/authn/login"
	"github.com/phivault/phivault/internal/authn/password"
	"github.com/phivault/phivault/internal/authn/session"
	"github.com/phivault/phivault/internal/identity"
	"github.com/phivault/phivault/internal/keys"
	"github.com/phivault/phivault/internal/record"
)

//go:embed static
var staticFS embed.FS

// CSP is the UI's Content-Security-Policy. It is the policy of the
// issue plus connect-src 'self', which the idle-timeout "stay signed in"
// button (idle.js) and the passkey helper (webauthn.js) need for their
// same-origin fetches; without it default-src 'none' refuses them, and
// frame-src 'self', with which the chart shows a PDF document from its
// same-origin content URL (ADR 0035; every other UI page refuses to be
// framed: frame-ancestors 'none').
const CSP = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; frame-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

// maxFormBody bounds every form body: the largest form, a clinical note
// of at most maxNoteLen bytes, fits with room to spare (STYLE rule 24).
const maxFormBody = 64 << 10

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
	// "who accessed my record" (package portal); nil says it is not
	// available.
	Access AccessLog
	// Reports is the access reports' service (privacy.Reports), behind
	// the portal's report pages; nil answers 503 there.
	Reports Reports
	// Trail records the privacy office's staff lookups and the exports
	// of audit events (privacy.Trail); nil: no lookup, no export.
	Trail Trail
	// Amendments is the correction requests' service
	// (privacy.Amendments), for the portal, the privacy office and the
	// chart; nil: their pages answer 503 and the chart leaves them out.
	Amendments Amendments
	// Reviewing marks, in "who accessed my record", the accesses the
	// privacy office is reviewing (a confirmed monitoring alert:
	// alerts.Service); nil marks none.
	Reviewing Reviewing

	// IdleTimeout is the session idle timeout the warning script counts
	// down; default session.DefaultIdleTimeout. It must match the login
	// service's session options.
	IdleTimeout time.Duration
	// Console is the staff administration console (package console).
	Console Console

	// Enrol sets an invited account's first password at /enrol (the
	// account service behind POST /auth/enrol); nil answers 503 there.
	Enrol Enroller
	// EnrolLimiter is POST /auth/enrol's per-address limiter, shared so
	// that the page and the JSON API draw on one budget; nil gives the
	// page a limiter of its own.
	EnrolLimiter *password.AddressLimiter
	// BaseURL is the server's public base URL (server.base_url), for the
	// invitation link the console shows; empty uses the request's host.
	BaseURL string

	Logger *slog.Logger     // default slog.Default()
	Now    func() time.Time // default time.Now
	Rand   io.Reader        // search ids, pre-session tokens; default crypto/rand
}

// UI is the web interface. It is safe for concurrent use.
type UI struct {
	site    *site.Site
	signin  *signin.UI
	chart   *chart.UI
	portal  *portal.UI
	console *console.UI
	desk    *desk.UI

	// The trust page (trust.go): public facts, computed at most once a
	// minute.
	users    identity.Directory
	keys     *keys.Keyring
	scanner  KeyScanner
	auditLog AuditLog
	log      *slog.Logger
	now      func() time.Time
	trust    *trustCache
}

// The audiences' option types under the names the composition root
// (internal/app) uses: the console's services (package console), the
// audit log status (package site, shared by the trust page, the portal
// and the console), and the portal's audit index and report service
// (package portal).
type (
	Console         = console.Services
	ConsoleAccounts = console.Accounts
	ConsoleReviews  = console.Reviews
	ConsoleClients  = console.Clients
	ConsoleAuditLog = console.AuditSearch
	Verification    = console.Verification
	PolicyVersion   = console.PolicyVersion
	AuditLog        = site.AuditLog
	AuditLogStatus  = site.AuditLogStatus
	KeyScanner      = console.KeyScanner
	AccessLog       = portal.AccessLog
	Reports         = portal.Reports
	Trail           = portal.Trail
	Amendments      = portal.Amendments
	Reviewing       = portal.Reviewing
	ConsoleMonitor  = console.Monitor
	Enroller        = signin.Enroller
)

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
	st, err := site.New(site.Options{Login: o.Login, Users: o.Users, Authz: o.Authz, IdleTimeout: o.IdleTimeout, Logger: o.Logger, Rand: o.Rand})
	if err != nil {
		return nil, fmt.Errorf("webui: new: %w", err)
	}
	u := &UI{site: st, users: o.Users, keys: o.Keys, scanner: o.KeyScanner, auditLog: o.AuditLog, log: o.Logger, now: o.Now, trust: &trustCache{}}
	var corr chart.Corrections // no typed nil in the interface
	if o.Amendments != nil {
		corr = o.Amendments
	}
	u.chart = chart.New(chart.Options{Site: st, Record: o.Record, Authz: o.Authz, BreakGlass: o.BreakGlass, Corrections: corr, Now: o.Now, Rand: o.Rand})
	u.portal = portal.New(portal.Options{Site: st, Record: o.Record, Users: o.Users, Authz: o.Authz, Access: o.Access, AuditLog: o.AuditLog,
		Reports: o.Reports, Trail: o.Trail, Amendments: o.Amendments, Reviewing: o.Reviewing, Logger: o.Logger, Now: o.Now})
	u.desk = desk.New(desk.Options{Site: st, Record: o.Record, Users: o.Users, Now: o.Now, Rand: o.Rand})
	u.signin = signin.New(signin.Options{Site: st, Login: o.Login, DropSearches: u.chart.ForgetSession, Enrol: o.Enrol,
		EnrolLimiter: o.EnrolLimiter, Logger: o.Logger})
	u.console = console.New(console.Options{Site: st, Services: o.Console, Users: o.Users, AuditLog: o.AuditLog, Authz: o.Authz,
		Keys: o.Keys, KeyScanner: o.KeyScanner, BaseURL: o.BaseURL, Logger: o.Logger, Now: o.Now})
	return u, nil
}

// Handler returns the UI's handler, to mount at "/".
func (u *UI) Handler() http.Handler {
	mux := http.NewServeMux()
	static, err := fs.Sub(staticFS, "static")
	if err != nil {
		panic("webui: embedded static directory missing: " + err.Error())
	}
	mux.Handle("GET /static/", staticHandler(http.StripPrefix("/static/", http.FileServerFS(static))))

	mux.Handle("GET /trust", u.site.Handle(u.trustPage))

	// Sign-in, sessions, passkeys and the start page (package signin).
	u.signin.Routes(mux)
	// Patient search and chart (package chart).
	u.chart.Routes(mux)
	// Patient portal and the privacy office (package portal).
	u.portal.Routes(mux)
	// Administration console (package console).
	u.console.Routes(mux)
	// Registration and care-team assignment (package desk).
	u.desk.Routes(mux)

	mux.Handle("/", u.site.Handle(site.NotFound))
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
