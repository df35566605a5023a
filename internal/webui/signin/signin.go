package signin

import (
	"encoding/base64"
	"errors"
	"html/template"
	"net/http"
	"time"

	"github.com/phivault/phivault/internal/authn/login"
	"github.com/phivault/phivault/internal/authn/password"
	"github.com/phivault/phivault/internal/web"
	"github.com/phivault/phivault/internal/webui/site"
)

// Sign-in: password (POST /login), then either the second factor
// (/login/mfa: a TOTP code or a recovery code) or, at first sign-in,
// TOTP enrolment (/login/enrol: QR code, first code, recovery codes
// shown once). The login service does the work and the auditing; these
// handlers only carry the challenge (in a __Host- cookie) and render.

// challengeCookie holds the login challenge between the password and
// the second factor (sealed, five minutes, see login.ChallengeTTL). A
// cookie keeps it out of the page and of URLs.
const challengeCookie = "__Host-phivault_challenge"

func setChallenge(w http.ResponseWriter, challenge string) {
	http.SetCookie(w, &http.Cookie{Name: challengeCookie, Value: challenge, Path: "/", MaxAge: int(login.ChallengeTTL.Seconds()),
		Secure: true, HttpOnly: true, SameSite: http.SameSiteStrictMode})
}

func clearChallenge(w http.ResponseWriter) {
	http.SetCookie(w, &http.Cookie{Name: challengeCookie, Value: "", Path: "/", MaxAge: -1, Secure: true, HttpOnly: true, SameSite: http.SameSiteStrictMode})
}

func challengeOf(r *http.Request) string {
	c, err := r.Cookie(challengeCookie)
	if err != nil {
		return ""
	}
	return c.Value
}

type loginView struct {
	Error    string
	Username string
	Enrolled bool // just back from setting the first password (/enrol)
}

func (u *UI) loginForm(w http.ResponseWriter, r *http.Request) error {
	if v, err := u.site.Authenticate(r); err == nil && v != nil {
		return site.Redirect(w, r, "/")
	}
	tok, err := u.site.PreSessionToken(w, r)
	if err != nil {
		return err
	}
	u.site.Render(w, r, http.StatusOK, "login", site.PageData{Title: "Sign in", CSRF: tok, Data: loginView{Enrolled: r.URL.Query().Has("enrolled")}})
	return nil
}

// loginError maps a sign-in failure to the message shown on the form
// (status, message), or returns ok=false for errors handled as pages.
func loginError(err error) (int, string, bool) {
	switch {
	case errors.Is(err, login.ErrInvalidCredentials):
		return http.StatusUnauthorized, "The username or password is not right, or the account is locked or disabled.", true
	case errors.Is(err, login.ErrInvalidCode):
		return http.StatusUnauthorized, "That code was not accepted. Codes can be used once only; wait for the next one and try again.", true
	case errors.Is(err, password.ErrBusy):
		return http.StatusServiceUnavailable, "The server is busy. Try again in a moment.", true
	}
	return 0, "", false
}

func (u *UI) loginSubmit(w http.ResponseWriter, r *http.Request) error {
	username := r.PostForm.Get("username")
	res, err := u.login.Login(r.Context(), username, r.PostForm.Get("password"), web.ClientAddr(r))
	if status, msg, ok := loginError(err); ok {
		u.site.Render(w, r, status, "login", site.PageData{Title: "Sign in", CSRF: r.PostForm.Get("csrf"),
			Data: loginView{Error: msg, Username: username}})
		return nil
	}
	if err != nil {
		return err
	}
	if res.Session != nil {
		web.SetSessionCookie(w, res.Session.Secret)
		return site.Redirect(w, r, site.TakeReturn(w, r))
	}
	setChallenge(w, res.Challenge)
	setMethods(w, res.Methods)
	if res.EnrollmentRequired {
		return site.Redirect(w, r, "/login/enrol")
	}
	return site.Redirect(w, r, "/login/mfa")
}

// restart sends the browser back to the password step with a message,
// for a missing or expired challenge.
func (u *UI) restart(w http.ResponseWriter, r *http.Request, csrf string) {
	clearChallenge(w)
	u.site.Render(w, r, http.StatusUnauthorized, "login", site.PageData{Title: "Sign in", CSRF: csrf,
		Data: loginView{Error: "Your sign-in took too long or was interrupted. Enter your password again."}})
}

type mfaView struct {
	Error    string
	Recovery bool
	Passkey  bool // the account has a passkey (passkeys.go)
}

func (u *UI) mfaForm(w http.ResponseWriter, r *http.Request) error {
	return u.challengeForm(w, r, "mfa", "Second step", mfaView{Passkey: passkeyOffered(r)})
}

// challengeForm shows a page of the sign-in challenge (the second step,
// enrolment), or starts sign-in again when there is no challenge.
func (u *UI) challengeForm(w http.ResponseWriter, r *http.Request, page, title string, data any) error {
	tok, err := u.site.PreSessionToken(w, r)
	if err != nil {
		return err
	}
	if challengeOf(r) == "" {
		u.restart(w, r, tok)
		return nil
	}
	u.site.Render(w, r, http.StatusOK, page, site.PageData{Title: title, CSRF: tok, Data: data})
	return nil
}

func (u *UI) mfaSubmit(w http.ResponseWriter, r *http.Request) error {
	csrf := r.PostForm.Get("csrf")
	ch := challengeOf(r)
	if ch == "" {
		u.restart(w, r, csrf)
		return nil
	}
	method := login.MethodTOTP
	if r.PostForm.Get("method") == login.MethodRecovery {
		method = login.MethodRecovery
	}
	st, err := u.login.Verify(r.Context(), ch, method, r.PostForm.Get("code"), web.ClientAddr(r))
	if errors.Is(err, login.ErrInvalidChallenge) {
		u.restart(w, r, csrf)
		return nil
	}
	if status, msg, ok := loginError(err); ok {
		u.site.Render(w, r, status, "mfa", site.PageData{Title: "Second step", CSRF: csrf, Data: mfaView{Error: msg, Recovery: method == login.MethodRecovery, Passkey: passkeyOffered(r)}})
		return nil
	}
	if err != nil {
		return err
	}
	clearChallenge(w)
	web.SetSessionCookie(w, st.Secret)
	return site.Redirect(w, r, site.TakeReturn(w, r))
}

type enrolView struct {
	Error  string
	QR     template.URL // data:image/png;base64,… built here from the PNG bytes
	Secret string       // the base32 secret, for typing into an app
	Shown  bool         // the QR code step (after "Set up")
	// Passkey offers a passkey instead of the app (passkeys.go).
	Passkey bool
}

func (u *UI) enrolForm(w http.ResponseWriter, r *http.Request) error {
	return u.challengeForm(w, r, "enrol", "Set up your authenticator", enrolView{Passkey: passkeyOffered(r)})
}

// enrolStart issues the TOTP secret and shows it in the POST answer
// itself (never in a URL, never stored by the browser: no-store).
func (u *UI) enrolStart(w http.ResponseWriter, r *http.Request) error {
	csrf := r.PostForm.Get("csrf")
	ch := challengeOf(r)
	if ch == "" {
		u.restart(w, r, csrf)
		return nil
	}
	enr, err := u.login.EnrollTOTP(r.Context(), ch, web.ClientAddr(r))
	if errors.Is(err, login.ErrInvalidChallenge) {
		u.restart(w, r, csrf)
		return nil
	}
	if err != nil {
		return err
	}
	u.site.Render(w, r, http.StatusOK, "enrol", site.PageData{Title: "Set up your authenticator", CSRF: csrf, Data: enrolView{
		// The data: URI is built from server-made PNG bytes only.
		QR:     template.URL("data:image/png;base64," + base64.StdEncoding.EncodeToString(enr.PNG)),
		Secret: enr.Key.Secret(), Shown: true,
	}})
	return nil
}

type recoveryView struct {
	Codes   []string
	Next    string // where "continue" goes: the page asked for before sign-in, or "/"
	Passkey bool   // enrolled with a passkey (else the authenticator app)
}

func (u *UI) enrolConfirm(w http.ResponseWriter, r *http.Request) error {
	csrf := r.PostForm.Get("csrf")
	ch := challengeOf(r)
	if ch == "" {
		u.restart(w, r, csrf)
		return nil
	}
	st, codes, err := u.login.ConfirmTOTP(r.Context(), ch, r.PostForm.Get("code"), web.ClientAddr(r))
	if errors.Is(err, login.ErrInvalidChallenge) {
		u.restart(w, r, csrf)
		return nil
	}
	if status, msg, ok := loginError(err); ok {
		// The secret stays pending: "Set up" again shows a new one.
		u.site.Render(w, r, status, "enrol", site.PageData{Title: "Set up your authenticator", CSRF: csrf, Data: enrolView{Error: msg, Passkey: passkeyOffered(r)}})
		return nil
	}
	if err != nil {
		return err
	}
	clearChallenge(w)
	web.SetSessionCookie(w, st.Secret)
	shown := make([]string, len(codes))
	for i, c := range codes {
		shown[i] = c.Reveal()
	}
	// Shown once, in this answer: the browser keeps no copy (no-store)
	// and the server keeps only their hashes.
	v, err := u.site.ViewerFor(r.Context(), st.Secret.Reveal())
	if err != nil {
		return err
	}
	u.site.Render(w, r, http.StatusOK, "recovery", site.PageData{Title: "Your recovery codes", Viewer: v, Data: recoveryView{Codes: shown, Next: site.TakeReturn(w, r)}})
	return nil
}

func (u *UI) logout(w http.ResponseWriter, r *http.Request) error {
	v := site.ViewerFrom(r.Context())
	if err := u.login.Logout(r.Context(), v.P, web.ClientAddr(r)); err != nil && !errors.Is(err, login.ErrNotFound) {
		return err
	}
	u.dropSearches(v.P.SessionID)
	web.ClearSessionCookie(w)
	// Ask the browser to drop what it may hold for this origin (cached
	// pages, storage); the cookies are expired above.
	w.Header().Set("Clear-Site-Data", `"cache", "storage"`)
	return site.Redirect(w, r, "/signed-out")
}

func (u *UI) signedOut(w http.ResponseWriter, r *http.Request) error {
	u.site.Render(w, r, http.StatusOK, "signed-out", site.PageData{Title: "Signed out"})
	return nil
}

// keepalive is the idle warning's "stay signed in": authenticating the
// session (done by form) records the activity.
func (u *UI) keepalive(w http.ResponseWriter, r *http.Request) error {
	w.WriteHeader(http.StatusNoContent)
	return nil
}

type sessionRow struct {
	ID       string
	Created  time.Time
	LastSeen time.Time
	Expires  time.Time
	Address  string
	Current  bool
}

func (u *UI) sessionsPage(w http.ResponseWriter, r *http.Request) error {
	v := site.ViewerFrom(r.Context())
	ss, err := u.login.Sessions(r.Context(), v.P)
	if err != nil {
		return err
	}
	rows := make([]sessionRow, len(ss))
	for i, s := range ss {
		rows[i] = sessionRow{ID: s.ID, Created: s.Created, LastSeen: s.LastSeen, Expires: s.ExpiresAbsolute, Address: s.Address, Current: s.ID == v.P.SessionID}
	}
	u.site.Render(w, r, http.StatusOK, "sessions", site.PageData{Title: "My sessions", Viewer: v, Nav: "sessions", Data: rows})
	return nil
}

func (u *UI) revokeSession(w http.ResponseWriter, r *http.Request) error {
	v := site.ViewerFrom(r.Context())
	id := r.PathValue("id")
	err := u.login.Revoke(r.Context(), v.P, id, web.ClientAddr(r))
	if errors.Is(err, login.ErrNotFound) {
		return site.PageErr(http.StatusNotFound, "Session not found", "That session has already ended or is not yours.", err)
	}
	if err != nil {
		return err
	}
	u.dropSearches(id)
	if id == v.P.SessionID {
		web.ClearSessionCookie(w)
		return site.Redirect(w, r, "/signed-out")
	}
	return site.Redirect(w, r, "/sessions")
}

func (u *UI) home(w http.ResponseWriter, r *http.Request) error {
	v := site.ViewerFrom(r.Context())
	if v.Clinical() {
		return site.Redirect(w, r, "/patients")
	}
	if v.Patient() {
		return site.Redirect(w, r, "/portal")
	}
	u.site.Render(w, r, http.StatusOK, "home", site.PageData{Title: "phivault", Viewer: v, Nav: "home"})
	return nil
}
