package site

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"io"
	"net/http"
	"slices"
	"strings"

	"github.com/phivault/phivault/internal/authz"
	"github.com/phivault/phivault/internal/web"

	"github.com/phivault/phivault/internal/audit"
	"github.com/phivault/phivault/internal/authn"
	"github.com/phivault/phivault/internal/authn/session"
	"github.com/phivault/phivault/internal/identity"
	"github.com/phivault/phivault/internal/record"
)

// Viewer is the signed-in person of a request.
type Viewer struct {
	P           authn.Principal
	DisplayName string // the account's display name, or its username
	Role        string // roles, comma-separated, for the header
	FHIRUser    string // "Practitioner/<id>" when linked
	// ProxyFor is, for a proxy account (a patient-role account linked to
	// a RelatedPerson), the id of the Patient whose record it reads, as
	// the portal found it through the record service; "" otherwise.
	ProxyFor string
	secret   string // the session cookie value: never rendered
	csrf     string // session.CSRFToken(secret)
	guard    record.Guard
}

// Clinical reports whether the viewer may use the patient pages.
func (v *Viewer) Clinical() bool { return clinicalRole(v.P.Roles) }

// Patient reports whether the viewer is a patient account.
func (v *Viewer) Patient() bool { return slices.Contains(v.P.Roles, string(identity.RolePatient)) }

// clinicalRoles may search patients and open charts. Until the
// authorization engine decides per patient (care team, consent,
// break-the-glass), the UI keeps everyone else, front desk and billing
// included, away from clinical data altogether (DESIGN §8).
var clinicalRoles = []string{string(identity.RolePhysician), string(identity.RoleNurse)}

func clinicalRole(roles []string) bool {
	return slices.ContainsFunc(roles, func(r string) bool { return slices.Contains(clinicalRoles, r) })
}

type viewerKey struct{}

func ViewerFrom(ctx context.Context) *Viewer {
	v, _ := ctx.Value(viewerKey{}).(*Viewer)
	return v
}

// ErrSignedOut means no usable session: the browser is sent to sign in.
var ErrSignedOut = errors.New("no valid session")

// Authenticate returns the viewer of r's session cookie: errSignedOut
// without a valid session, for a workforce session that skipped its
// second factor (which the login service never creates; refused anyway),
// or for a patient's password-only session when the policy requires a
// second factor (login.Service.NeedsSecondFactor).
func (s *Site) Authenticate(r *http.Request) (*Viewer, error) {
	c, err := r.Cookie(web.SessionCookie)
	if err != nil {
		return nil, ErrSignedOut
	}
	return s.ViewerFor(r.Context(), c.Value)
}

// ViewerFor authenticates a session token (untrusted: a cookie value).
func (s *Site) ViewerFor(ctx context.Context, secret string) (*Viewer, error) {
	p, err := s.login.Authenticate(ctx, secret)
	if errors.Is(err, authn.ErrUnauthenticated) {
		return nil, ErrSignedOut
	}
	if err != nil {
		web.NoteBackendFailure(ctx, err) // not the caller's failure: not charged as an attempt
		return nil, PageErr(http.StatusServiceUnavailable, "Temporarily unavailable", "Your session could not be checked. Try again in a moment.", err)
	}
	if s.login.NeedsSecondFactor(p) {
		return nil, ErrSignedOut
	}
	v := &Viewer{P: p, DisplayName: p.Name, Role: strings.Join(p.Roles, ", "), secret: secret, csrf: session.CSRFToken(secret), guard: denyAll{}}
	if s.authz != nil {
		v.guard = s.authz.For(p)
	}
	if usr, err := s.users.ByID(ctx, p.ID); err == nil {
		if usr.DisplayName != "" {
			v.DisplayName = usr.DisplayName
		}
		v.FHIRUser = usr.FHIRUser
	}
	return v, nil
}

// SignedIn runs h for a signed-in browser; others are sent to /login
// (a stale cookie is cleared first), and the page they asked for (a GET)
// is kept for after sign-in (returnto.go).
func (s *Site) SignedIn(h HandlerFunc) HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		v, err := s.Authenticate(r)
		if errors.Is(err, ErrSignedOut) {
			if _, cerr := r.Cookie(web.SessionCookie); cerr == nil {
				web.ClearSessionCookie(w)
			}
			rememberReturn(w, r)
			return Redirect(w, r, "/login")
		}
		if err != nil {
			return err
		}
		web.NoteAgent(r.Context(), Caller(r, v).Agent)
		return h(w, r.WithContext(context.WithValue(r.Context(), viewerKey{}, v)))
	}
}

// Form is signedIn for a POST: the form's csrf field must be the
// session's CSRF token, else the request is refused (403 page) before h
// runs.
func (s *Site) Form(h HandlerFunc) HandlerFunc {
	return s.SignedIn(func(w http.ResponseWriter, r *http.Request) error {
		if err := CheckOrigin(r); err != nil {
			return err
		}
		if err := r.ParseForm(); err != nil {
			return formParseError(err)
		}
		if !session.CheckCSRF(ViewerFrom(r.Context()).secret, r.PostForm.Get("csrf")) {
			web.NoteRefusal(r.Context(), "csrf")
			return ErrCSRF
		}
		return h(w, r)
	})
}

// Clinical is signedIn for the patient pages: a clinical role is needed.
func (s *Site) Clinical(h HandlerFunc) HandlerFunc {
	return s.SignedIn(func(w http.ResponseWriter, r *http.Request) error {
		if err := clinicalGate(ViewerFrom(r.Context())); err != nil {
			return err
		}
		return h(w, r)
	})
}

// ClinicalForm is form plus the clinical gate.
func (s *Site) ClinicalForm(h HandlerFunc) HandlerFunc {
	return s.Form(func(w http.ResponseWriter, r *http.Request) error {
		if err := clinicalGate(ViewerFrom(r.Context())); err != nil {
			return err
		}
		return h(w, r)
	})
}

func clinicalGate(v *Viewer) error {
	if !v.P.MFA || !v.Clinical() {
		return PageErr(http.StatusForbidden, "Not available to your role",
			"Patient records are available to clinical staff (physicians and nurses) only.", errors.New("non-clinical role at a clinical page"))
	}
	return nil
}

// CheckOrigin refuses a POST that the browser itself marks cross-site
// (Sec-Fetch-Site), before any other work. The CSRF token remains the
// control; this only rejects the obvious cases early.
func CheckOrigin(r *http.Request) error {
	if r.Header.Get("Sec-Fetch-Site") == "cross-site" {
		web.NoteRefusal(r.Context(), "csrf")
		return ErrCSRF
	}
	return nil
}

func formParseError(err error) error {
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return PageErr(http.StatusRequestEntityTooLarge, "Too much text", "The form was larger than the server accepts. Shorten the text and try again.", err)
	}
	return PageErr(http.StatusBadRequest, "Form not understood", "The form could not be read. Go back, reload the page and try again.", err)
}

// Pre-session CSRF: before sign-in there is no session to bind a token
// to, so the sign-in forms use double submit with a random __Host-
// cookie: the field must equal the cookie. A third-party page can make
// the browser send the cookie but cannot read it, nor plant a __Host-
// cookie from a sibling domain (RFC 6265bis §4.1.3.2).
const preSessionCookie = "__Host-phivault_presession"

// PreSessionToken returns the browser's pre-session token, setting a
// new cookie if it has none.
func (s *Site) PreSessionToken(w http.ResponseWriter, r *http.Request) (string, error) {
	if c, err := r.Cookie(preSessionCookie); err == nil && len(c.Value) == 43 {
		return c.Value, nil
	}
	var b [32]byte
	rd := s.rand
	if rd == nil {
		rd = rand.Reader
	}
	if _, err := io.ReadFull(rd, b[:]); err != nil {
		return "", err
	}
	tok := base64.RawURLEncoding.EncodeToString(b[:])
	http.SetCookie(w, &http.Cookie{Name: preSessionCookie, Value: tok, Path: "/", Secure: true, HttpOnly: true, SameSite: http.SameSiteStrictMode})
	return tok, nil
}

// PreSession checks a sign-in form's double-submit token.
func (s *Site) PreSession(h HandlerFunc) HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		if err := CheckOrigin(r); err != nil {
			return err
		}
		if err := r.ParseForm(); err != nil {
			return formParseError(err)
		}
		c, err := r.Cookie(preSessionCookie)
		field := r.PostForm.Get("csrf")
		if err != nil || len(c.Value) != 43 || subtle.ConstantTimeCompare([]byte(c.Value), []byte(field)) != 1 {
			web.NoteRefusal(r.Context(), "csrf")
			return ErrCSRF
		}
		return h(w, r)
	}
}

// Caller is the audit identity of a UI request to the record service.
func Caller(r *http.Request, v *Viewer) record.Caller {
	addr := ""
	if a := web.ClientAddr(r); a.IsValid() {
		addr = a.String()
	}
	return record.Caller{
		Agent:     audit.Agent{User: v.P.ID, Role: strings.Join(v.P.Roles, ","), Client: "webui", Session: v.P.SessionID, Address: addr},
		Purpose:   authz.PurposeOf(v.P.Roles),
		RequestID: web.RequestID(r.Context()),
		Guard:     v.guard,
	}
}

// denyAll is the guard without an authorizer: every decision fails, so
// the UI never reads a record unauthorised (fail closed).
type denyAll struct{}

var errNoAuthorizer = errors.New("webui: no authorizer")

func (denyAll) Decide(context.Context, authz.Action, authz.Target) (authz.Decision, error) {
	return authz.Decision{}, errNoAuthorizer
}

func (denyAll) Narrow(context.Context, authz.Action, string) (authz.Filter, error) {
	return authz.Filter{}, errNoAuthorizer
}
