// Package site is what the web UI's audiences share: the page templates
// and their rendering, the error pages, and the middlewares that sign a
// request in and check its form token (signed in, CSRF, pre-session
// double submit, the clinical gate). Each audience package (signin,
// chart, portal, console) holds a *Site in a field and adds its own
// pages; none of them reaches another's dependencies.
package site

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"time"

	"github.com/phivault/phivault/internal/authn/login"
	"github.com/phivault/phivault/internal/authn/session"
	"github.com/phivault/phivault/internal/authz"
	"github.com/phivault/phivault/internal/identity"
	"github.com/phivault/phivault/internal/record"
	"github.com/phivault/phivault/internal/web"
)

//go:embed templates/*.html
var templateFS embed.FS

// Options configures a [Site]. Login and Users are needed to sign a
// request in; webui.New checks them.
type Options struct {
	Login *login.Service
	Users identity.Directory
	// Authz decides every record access for a signed-in user; without
	// it every viewer's guard refuses (fail closed).
	Authz *authz.Authorizer
	// IdleTimeout is the session idle timeout the warning script counts
	// down.
	IdleTimeout time.Duration
	Logger      *slog.Logger // default slog.Default()
	Rand        io.Reader    // pre-session tokens; default crypto/rand
}

// Site renders pages and signs requests in. It is safe for concurrent
// use.
type Site struct {
	login *login.Service
	users identity.Directory
	authz *authz.Authorizer
	idle  time.Duration
	log   *slog.Logger
	rand  io.Reader
	pages map[string]*pageTemplate
}

// New parses the templates and returns a Site.
func New(o Options) (*Site, error) {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	pages, err := parsePages()
	if err != nil {
		return nil, err
	}
	return &Site{login: o.Login, users: o.Users, authz: o.Authz, idle: o.IdleTimeout, log: o.Logger, rand: o.Rand, pages: pages}, nil
}

// HandlerFunc is a UI handler that returns its error; [Site.Handle]
// turns it into an error page.
type HandlerFunc = web.HandlerFunc

// PageErr is a failure with what the browser may see (status, title,
// message) kept apart from the cause, which goes to the log only.
func PageErr(status int, title, msg string, cause error) *web.Error {
	return &web.Error{Status: status, Title: title, Msg: msg, Err: cause}
}

// ErrCSRF is a POST whose CSRF token is missing or wrong.
var ErrCSRF = errors.New("missing or wrong form csrf token")

// Handle maps errors to HTML error pages with the request id; the cause
// is logged with the request id and never shown (web.Adapter).
func (s *Site) Handle(h HandlerFunc) http.Handler {
	a := web.Adapter{Log: s.log, Message: "ui request failed", NoteRoutes: true,
		Map:    func(_ *http.Request, err error) *web.Error { return ToPageError(err) },
		Render: s.renderError}
	return a.Handle(h)
}

// renderError writes e as the error page. It shows who is signed in on
// error pages too (the header, the sign-out button); a failure there
// just leaves the header out.
func (s *Site) renderError(w http.ResponseWriter, r *http.Request, e *web.Error) {
	var v *Viewer
	if !errors.Is(e.Err, ErrSignedOut) && e.Status != http.StatusServiceUnavailable {
		v, _ = s.Authenticate(r)
	}
	s.Render(w, r, e.Status, "error", PageData{Title: e.Title, Viewer: v, Data: errorView{Status: e.Status, Title: e.Title, Message: e.Msg}})
}

// ToPageError maps any error to a page error with a safe message.
func ToPageError(err error) *web.Error {
	var pe *web.Error
	var rl *login.RateLimitError
	switch {
	case errors.As(err, &pe):
		return pe
	case errors.Is(err, ErrCSRF):
		return PageErr(http.StatusForbidden, "Form refused",
			"This form was refused because it did not carry a valid security token: it may have expired, or it was not sent from a phivault page. Go back, reload the page and try again.", err)
	case errors.As(err, &rl):
		return &web.Error{Status: http.StatusTooManyRequests, Title: "Too many attempts",
			Msg: fmt.Sprintf("There were too many sign-in attempts from your network. Wait %s and try again.", roundWait(rl.RetryAfter)), RetryAfter: rl.RetryAfter, Err: err}
	}
	var re *record.Error
	if errors.As(err, &re) {
		switch record.StatusCode(re) {
		case http.StatusNotFound:
			return PageErr(http.StatusNotFound, "Not found", "This record does not exist.", err)
		case http.StatusGone:
			return PageErr(http.StatusGone, "Record removed", "This record was deleted or erased.", err)
		case http.StatusServiceUnavailable:
			return &web.Error{Status: http.StatusServiceUnavailable, Title: "Temporarily unavailable",
				Msg: "The service is temporarily unavailable, so nothing was shown or saved. Try again in a moment.", RetryAfter: time.Second, Err: err}
		}
	}
	return PageErr(http.StatusInternalServerError, "Something went wrong",
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

// Redirect answers 303 See Other: after a POST the browser GETs target.
func Redirect(w http.ResponseWriter, r *http.Request, target string) error {
	http.Redirect(w, r, target, http.StatusSeeOther)
	return nil
}

// NotFound is the page for an address no audience serves.
func NotFound(http.ResponseWriter, *http.Request) error {
	return PageErr(http.StatusNotFound, "Page not found", "There is no page at this address. Check the link, or go back to the start page.", nil)
}

// ConsoleRoles are the roles that see the console's start page.
var ConsoleRoles = []identity.Role{identity.RoleSecurityAdmin, identity.RolePrivacyOfficer, identity.RoleAuditor}

// HasRole reports whether v holds one of roles.
func (v *Viewer) HasRole(roles ...identity.Role) bool {
	return slices.ContainsFunc(v.P.Roles, func(r string) bool { return slices.Contains(roles, identity.Role(r)) })
}

// Console reports whether the viewer may open the console (for the nav).
func (v *Viewer) Console() bool { return v.P.MFA && v.HasRole(ConsoleRoles...) }

// SecurityAdmin reports a security admin with a verified second factor;
// it, PrivacyOfficer and Auditor drive the console's menus.
func (v *Viewer) SecurityAdmin() bool { return v.P.MFA && v.HasRole(identity.RoleSecurityAdmin) }

// PrivacyOfficer reports a privacy officer with a verified second factor.
func (v *Viewer) PrivacyOfficer() bool { return v.P.MFA && v.HasRole(identity.RolePrivacyOfficer) }

// Auditor reports an auditor with a verified second factor.
func (v *Viewer) Auditor() bool { return v.P.MFA && v.HasRole(identity.RoleAuditor) }

// FrontDesk reports whether the viewer may use the front desk's pages:
// the front-desk role with a verified second factor.
func (v *Viewer) FrontDesk() bool { return v.P.MFA && v.HasRole(identity.RoleFrontDesk) }

// CheckCSRF reports whether field is the CSRF token of v's session.
func (v *Viewer) CheckCSRF(field string) bool { return session.CheckCSRF(v.secret, field) }

// WithViewer returns ctx carrying v, for [ViewerFrom].
func WithViewer(ctx context.Context, v *Viewer) context.Context {
	return context.WithValue(ctx, viewerKey{}, v)
}
