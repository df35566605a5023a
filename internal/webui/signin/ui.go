// Package signin is the web UI's sign-in: onboarding (an invited
// account's first password, onboard.go), the password and second
// factor (TOTP, recovery code or passkey), enrolment at first sign-in,
// sign-out, the idle keep-alive, the workforce's own sessions and
// passkeys (the Security page), and the start page that sends each
// audience to its own pages. It gets the login service and nothing of
// the record service, the keys or the consoles; onboarding gets only
// the account service's Enrol.
package signin

import (
	"log/slog"
	"net/http"

	"github.com/phivault/phivault/internal/authn/login"
	"github.com/phivault/phivault/internal/authn/password"
	"github.com/phivault/phivault/internal/webui/site"
)

// Options configures a [UI]. Site and Login are required.
type Options struct {
	Site  *site.Site
	Login *login.Service
	// DropSearches forgets a session's saved patient searches when the
	// session ends (sign-out, revocation); nil does nothing.
	DropSearches func(sessionID string)
	// Enrol sets an invited account's first password (the onboarding
	// page, onboard.go); nil answers 503 there.
	Enrol Enroller
	// EnrolLimiter bounds enrolment attempts per client address. Pass
	// the limiter of POST /auth/enrol so that both share one budget;
	// nil gets a limiter of its own with the default limits.
	EnrolLimiter *password.AddressLimiter
	Logger       *slog.Logger
}

// UI is the sign-in pages. It is safe for concurrent use.
type UI struct {
	site         *site.Site
	login        *login.Service
	dropSearches func(sessionID string)
	enrol        Enroller
	enrolLimiter *password.AddressLimiter
	log          *slog.Logger
}

// New returns the sign-in pages.
func New(o Options) *UI {
	if o.DropSearches == nil {
		o.DropSearches = func(string) {}
	}
	if o.EnrolLimiter == nil {
		o.EnrolLimiter = password.NewAddressLimiter(password.AddressLimits{})
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return &UI{site: o.Site, login: o.Login, dropSearches: o.DropSearches, enrol: o.Enrol, enrolLimiter: o.EnrolLimiter, log: o.Logger}
}

// Routes registers the sign-in pages, the sessions and Security pages
// and the start page on mux.
func (u *UI) Routes(mux *http.ServeMux) {
	s := u.site
	mux.Handle("GET /{$}", s.Handle(s.SignedIn(u.home)))
	mux.Handle("GET /login", s.Handle(u.loginForm))
	mux.Handle("POST /login", s.Handle(s.PreSession(u.loginSubmit)))
	mux.Handle("GET /login/mfa", s.Handle(u.mfaForm))
	mux.Handle("POST /login/mfa", s.Handle(s.PreSession(u.mfaSubmit)))
	mux.Handle("GET /login/enrol", s.Handle(u.enrolForm))
	mux.Handle("POST /login/enrol", s.Handle(s.PreSession(u.enrolStart)))
	mux.Handle("POST /login/enrol/confirm", s.Handle(s.PreSession(u.enrolConfirm)))
	mux.Handle("GET /enrol", s.Handle(u.onboardForm))
	mux.Handle("POST /enrol", s.Handle(s.PreSession(u.onboardSubmit)))
	mux.Handle("GET /auth/enrol", s.Handle(u.legacyEnrol))
	mux.Handle("GET /signed-out", s.Handle(u.signedOut))
	mux.Handle("POST /logout", s.Handle(s.Form(u.logout)))
	mux.Handle("GET /sessions", s.Handle(s.SignedIn(u.sessionsPage)))
	mux.Handle("POST /sessions/{id}/revoke", s.Handle(s.Form(u.revokeSession)))
	mux.Handle("POST /session/keepalive", s.Handle(s.Form(u.keepalive)))
	u.passkeyRoutes(mux) // passkeys.go: passkey sign-in, enrolment, Security page
}
