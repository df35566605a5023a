package signin

import (
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/phivault/phivault/internal/authn"
	"github.com/phivault/phivault/internal/authn/login"
	"github.com/phivault/phivault/internal/authn/passkey"
	"github.com/phivault/phivault/internal/web"
	"github.com/phivault/phivault/internal/webui/site"
)

// Passkeys (ADR 0009) in the UI: the second step of sign-in, the
// enrolment at first sign-in (instead of TOTP), and the Security page
// (list, add, rename, remove).
//
// Each ceremony is two requests. "Begin" is a same-origin fetch from
// /static/passkey-ui.js with the form's CSRF token: the server reads the
// login challenge from its HttpOnly cookie (it never reaches the page
// or a URL) and answers JSON {options, ceremony}; the options carry the
// WebAuthn challenge, which the authenticator must sign and so must be
// visible to the page. The script runs navigator.credentials, puts the
// sealed ceremony and the credential into hidden fields and submits the
// form normally: "finish" is an ordinary CSRF-checked form POST whose
// answer is a page (the recovery codes, shown once) or a redirect.

// methodsCookie tells the second-step and enrolment pages which factors
// the challenge accepts (login.Result.Methods). It is only a display
// hint: the login service checks every ceremony against the challenge.
const methodsCookie = "__Host-phivault_methods"

func setMethods(w http.ResponseWriter, methods []string) {
	http.SetCookie(w, &http.Cookie{Name: methodsCookie, Value: strings.Join(methods, "."), Path: "/", MaxAge: int(login.ChallengeTTL.Seconds()),
		Secure: true, HttpOnly: true, SameSite: http.SameSiteStrictMode})
}

// passkeyOffered reports whether the current challenge accepts a passkey.
func passkeyOffered(r *http.Request) bool {
	c, err := r.Cookie(methodsCookie)
	return err == nil && slices.Contains(strings.Split(c.Value, "."), login.MethodWebAuthn)
}

func (u *UI) passkeyRoutes(mux *http.ServeMux) {
	mux.Handle("POST /login/passkey/begin", u.jsonPre(u.passkeyLoginBegin))
	mux.Handle("POST /login/passkey/finish", u.site.Handle(u.site.PreSession(u.passkeyLoginFinish)))
	mux.Handle("POST /login/enrol/passkey/begin", u.jsonPre(u.passkeyEnrolBegin))
	mux.Handle("POST /login/enrol/passkey/finish", u.site.Handle(u.site.PreSession(u.passkeyEnrolFinish)))
	mux.Handle("GET /security", u.site.Handle(u.site.SignedIn(u.securityPage)))
	mux.Handle("POST /security/second-factor", u.site.Handle(u.site.Form(u.addSecondFactor)))
	mux.Handle("POST /security/passkeys/begin", u.jsonSession(u.passkeyAddBegin))
	mux.Handle("POST /security/passkeys/add", u.site.Handle(u.site.Form(u.passkeyAdd)))
	mux.Handle("POST /security/passkeys/{id}/rename", u.site.Handle(u.site.Form(u.passkeyRename)))
	mux.Handle("POST /security/passkeys/{id}/remove", u.site.Handle(u.site.Form(u.passkeyRemove)))
}

// jsonFunc is a "begin" handler: it returns the value to answer as JSON.
type jsonFunc func(r *http.Request) (any, error)

// jsonPre answers a pre-session begin (double-submit CSRF, as the
// sign-in forms) as JSON; errors become {"error": safe message}.
func (u *UI) jsonPre(h jsonFunc) http.Handler {
	return u.handleJSON(func(w http.ResponseWriter, r *http.Request) error {
		return u.site.PreSession(func(w http.ResponseWriter, r *http.Request) error {
			v, err := h(r)
			if err != nil {
				return err
			}
			writeJSON(w, http.StatusOK, v)
			return nil
		})(w, r)
	})
}

// jsonSession answers a begin from a signed-in page (session CSRF).
func (u *UI) jsonSession(h jsonFunc) http.Handler {
	return u.handleJSON(func(w http.ResponseWriter, r *http.Request) error {
		v, err := u.site.Authenticate(r)
		if err != nil {
			return err
		}
		if err := site.CheckOrigin(r); err != nil {
			return err
		}
		if err := r.ParseForm(); err != nil {
			return err
		}
		if !v.CheckCSRF(r.PostForm.Get("csrf")) {
			return site.ErrCSRF
		}
		out, err := h(r.WithContext(site.WithViewer(r.Context(), v)))
		if err != nil {
			return err
		}
		writeJSON(w, http.StatusOK, out)
		return nil
	})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// handleJSON maps a begin's error to a status and a safe message; the
// cause is logged with the request id.
func (u *UI) handleJSON(h site.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		err := h(w, r)
		if err == nil {
			return
		}
		status, msg := passkeyFailure(err)
		if status == 0 {
			pe := site.ToPageError(err)
			status, msg = pe.Status, pe.Msg
		}
		u.log.InfoContext(r.Context(), "ui passkey request failed", slog.String("request_id", web.RequestID(r.Context())),
			slog.Int("status", status), slog.String("error", err.Error()))
		writeJSON(w, status, map[string]string{"error": msg})
	})
}

// passkeyFailure is the plain message for a passkey error, or status 0
// for errors that are not about passkeys.
func passkeyFailure(err error) (int, string) {
	switch {
	case errors.Is(err, login.ErrInvalidChallenge), errors.Is(err, errNoChallenge):
		return http.StatusUnauthorized, "Your sign-in took too long or was interrupted. Start again with your password."
	case errors.Is(err, site.ErrSignedOut), errors.Is(err, authn.ErrUnauthenticated):
		return http.StatusUnauthorized, "You are signed out. Sign in again."
	case errors.Is(err, passkey.ErrInvalidCeremony):
		return http.StatusUnauthorized, "The passkey step took too long. Try again."
	case errors.Is(err, passkey.ErrRejected), errors.Is(err, passkey.ErrSignCount):
		return http.StatusUnauthorized, "The passkey was not accepted. Try again, or use another way to sign in."
	case errors.Is(err, passkey.ErrTooMany):
		return http.StatusConflict, "You have the most passkeys an account may have. Remove one first."
	case errors.Is(err, login.ErrLastFactor):
		return http.StatusConflict, "This is your last second factor, so it cannot be removed. Add another passkey or set up an authenticator app first."
	case errors.Is(err, login.ErrPasskeysDisabled):
		return http.StatusNotFound, "Passkeys are not enabled on this server."
	case errors.Is(err, login.ErrPasskeyNotFound):
		return http.StatusNotFound, "That passkey does not exist or is not yours."
	case errors.Is(err, login.ErrNeedsVerifiedSession):
		return http.StatusForbidden, "To add a passkey, sign in with your second factor first."
	}
	return 0, ""
}

// errNoChallenge is a passkey step without the login challenge cookie.
var errNoChallenge = errors.New("no login challenge cookie")

type beginJSON struct {
	Options  any    `json:"options"`
	Ceremony string `json:"ceremony"`
}

func (u *UI) passkeyLoginBegin(r *http.Request) (any, error) {
	ch := challengeOf(r)
	if ch == "" {
		return nil, errNoChallenge
	}
	b, err := u.login.BeginPasskeyLogin(r.Context(), ch, web.ClientAddr(r))
	if err != nil {
		return nil, err
	}
	return beginJSON{Options: b.Options, Ceremony: b.Ceremony}, nil
}

func (u *UI) passkeyEnrolBegin(r *http.Request) (any, error) {
	ch := challengeOf(r)
	if ch == "" {
		return nil, errNoChallenge
	}
	b, err := u.login.BeginPasskeyEnrol(r.Context(), ch, web.ClientAddr(r))
	if err != nil {
		return nil, err
	}
	return beginJSON{Options: b.Options, Ceremony: b.Ceremony}, nil
}

// credentialField is the credential JSON the script put in the form.
func credentialField(r *http.Request) []byte {
	c := strings.TrimSpace(r.PostForm.Get("credential"))
	if !strings.HasPrefix(c, "{") {
		return nil
	}
	return []byte(c)
}

// passkeyPageError renders a finish failure on page (with the plain
// message), or returns false for errors handled as error pages.
func (u *UI) passkeyPageError(w http.ResponseWriter, r *http.Request, page, title string, err error, data func(msg string) any) bool {
	status, msg := passkeyFailure(err)
	if status == 0 {
		if s, m, ok := loginError(err); ok {
			status, msg = s, m
		}
	}
	if status == 0 {
		return false
	}
	u.log.InfoContext(r.Context(), "ui passkey refused", slog.String("request_id", web.RequestID(r.Context())), slog.String("error", err.Error()))
	u.site.Render(w, r, status, page, site.PageData{Title: title, CSRF: r.PostForm.Get("csrf"), Data: data(msg)})
	return true
}

func (u *UI) passkeyLoginFinish(w http.ResponseWriter, r *http.Request) error {
	csrf := r.PostForm.Get("csrf")
	ch := challengeOf(r)
	if ch == "" {
		u.restart(w, r, csrf)
		return nil
	}
	st, err := u.login.FinishPasskeyLogin(r.Context(), ch, r.PostForm.Get("ceremony"), credentialField(r), web.ClientAddr(r))
	if errors.Is(err, login.ErrInvalidChallenge) {
		u.restart(w, r, csrf)
		return nil
	}
	if err != nil {
		if u.passkeyPageError(w, r, "mfa", "Second step", err, func(msg string) any { return mfaView{Error: msg, Passkey: true} }) {
			return nil
		}
		return err
	}
	clearChallenge(w)
	web.SetSessionCookie(w, st.Secret)
	return site.Redirect(w, r, site.TakeReturn(w, r))
}

func (u *UI) passkeyEnrolFinish(w http.ResponseWriter, r *http.Request) error {
	csrf := r.PostForm.Get("csrf")
	ch := challengeOf(r)
	if ch == "" {
		u.restart(w, r, csrf)
		return nil
	}
	st, _, codes, err := u.login.FinishPasskeyEnrol(r.Context(), ch, r.PostForm.Get("ceremony"), r.PostForm.Get("name"), credentialField(r), web.ClientAddr(r))
	if errors.Is(err, login.ErrInvalidChallenge) {
		u.restart(w, r, csrf)
		return nil
	}
	if err != nil {
		if u.passkeyPageError(w, r, "enrol", "Set up your authenticator", err, func(msg string) any { return enrolView{Error: msg, Passkey: true} }) {
			return nil
		}
		return err
	}
	clearChallenge(w)
	web.SetSessionCookie(w, st.Secret)
	shown := make([]string, len(codes))
	for i, c := range codes {
		shown[i] = c.Reveal()
	}
	v, err := u.site.ViewerFor(r.Context(), st.Secret.Reveal())
	if err != nil {
		return err
	}
	// Shown once, in this answer (no-store), as after TOTP enrolment.
	u.site.Render(w, r, http.StatusOK, "recovery", site.PageData{Title: "Your recovery codes", Viewer: v, Data: recoveryView{Codes: shown, Passkey: true, Next: site.TakeReturn(w, r)}})
	return nil
}

// passkeyRow is a passkey as its owner sees it on the Security page.
type passkeyRow struct {
	ID, Name          string
	Created, LastUsed time.Time
	Synced            bool // backed up by a passkey provider (BS flag)
}

type securityView struct {
	Enabled  bool // passkeys are enabled on this server
	Passkeys []passkeyRow
	Error    string
	Notice   string
	// SecondFactor: the session was signed in with a second factor. A
	// patient signed in with a password alone is offered one instead
	// (secondfactor.go).
	SecondFactor bool
}

func (u *UI) securityView(r *http.Request, v *site.Viewer) (securityView, error) {
	if !v.P.MFA {
		return securityView{}, nil
	}
	list, err := u.login.Passkeys(r.Context(), v.P)
	if errors.Is(err, login.ErrPasskeysDisabled) {
		return securityView{SecondFactor: true}, nil
	}
	if err != nil {
		return securityView{}, err
	}
	sv := securityView{Enabled: true, SecondFactor: true, Passkeys: make([]passkeyRow, len(list))}
	for i, c := range list {
		sv.Passkeys[i] = passkeyRow{ID: c.ID, Name: c.Name, Created: c.Created, LastUsed: c.LastUsed, Synced: c.BackupState}
	}
	return sv, nil
}

// renderSecurity shows the Security page with status, and a message
// (an error, or a notice when status is 200).
func (u *UI) renderSecurity(w http.ResponseWriter, r *http.Request, status int, msg string) error {
	v := site.ViewerFrom(r.Context())
	sv, err := u.securityView(r, v)
	if err != nil {
		return err
	}
	if status == http.StatusOK {
		sv.Notice = msg
	} else {
		sv.Error = msg
	}
	u.site.Render(w, r, status, "passkeys", site.PageData{Title: "Security", Viewer: v, Nav: "security", Data: sv})
	return nil
}

func (u *UI) securityPage(w http.ResponseWriter, r *http.Request) error {
	msg := ""
	switch r.URL.Query().Get("done") {
	case "added":
		msg = "Your new passkey is ready."
	case "renamed":
		msg = "The passkey was renamed."
	case "removed":
		msg = "The passkey was removed."
	}
	return u.renderSecurity(w, r, http.StatusOK, msg)
}

// passkeyChange ends a Security form: on success a redirect (so reload
// does not repeat it), on a passkey refusal the page with the message.
func (u *UI) passkeyChange(w http.ResponseWriter, r *http.Request, err error, done string) error {
	if err == nil {
		return site.Redirect(w, r, "/security?done="+done)
	}
	if status, msg := passkeyFailure(err); status != 0 {
		u.log.InfoContext(r.Context(), "ui passkey change refused", slog.String("request_id", web.RequestID(r.Context())), slog.String("error", err.Error()))
		return u.renderSecurity(w, r, status, msg)
	}
	return err
}

func (u *UI) passkeyAddBegin(r *http.Request) (any, error) {
	b, err := u.login.BeginPasskeyAdd(r.Context(), site.ViewerFrom(r.Context()).P, web.ClientAddr(r))
	if err != nil {
		return nil, err
	}
	return beginJSON{Options: b.Options, Ceremony: b.Ceremony}, nil
}

func (u *UI) passkeyAdd(w http.ResponseWriter, r *http.Request) error {
	v := site.ViewerFrom(r.Context())
	_, err := u.login.FinishPasskeyAdd(r.Context(), v.P, r.PostForm.Get("ceremony"), r.PostForm.Get("name"), credentialField(r), web.ClientAddr(r))
	return u.passkeyChange(w, r, err, "added")
}

func (u *UI) passkeyRename(w http.ResponseWriter, r *http.Request) error {
	v := site.ViewerFrom(r.Context())
	_, err := u.login.RenamePasskey(r.Context(), v.P, r.PathValue("id"), r.PostForm.Get("name"), web.ClientAddr(r))
	return u.passkeyChange(w, r, err, "renamed")
}

func (u *UI) passkeyRemove(w http.ResponseWriter, r *http.Request) error {
	v := site.ViewerFrom(r.Context())
	err := u.login.DeletePasskey(r.Context(), v.P, r.PathValue("id"), web.ClientAddr(r))
	return u.passkeyChange(w, r, err, "removed")
}
