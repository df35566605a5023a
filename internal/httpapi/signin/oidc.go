package signin

import (
	"context"
	"errors"
	"mime"
	"net/http"
	"net/netip"
	"strings"

	"github.com/phivault/phivault/internal/authn/login"
	"github.com/phivault/phivault/internal/authn/oidc"
	"github.com/phivault/phivault/internal/authn/sso"
	"github.com/phivault/phivault/internal/web"
)

// SSO is enterprise sign-in ([sso.Service]).
type SSO interface {
	// Start returns the IdP authorization URL and the sealed flow to
	// keep in the browser until the callback.
	Start() (authURL, flow string, err error)
	// Finish completes the sign-in from the callback; errors are sso's.
	Finish(ctx context.Context, cb sso.Callback, addr netip.Addr) (login.Result, error)
}

var _ SSO = (*sso.Service)(nil)

// FlowCookie holds the sealed oidc flow between /auth/oidc/start and
// the callback. The __Secure- prefix makes browsers require Secure; the
// __Host- prefix cannot be used because the cookie is scoped to the
// callback path. It is SameSite=Lax, not Strict: the callback is a
// top-level cross-site navigation from the IdP (see oidc.Flow).
const FlowCookie = "__Secure-phivault_oidc_flow"

// flowCookiePath scopes the flow cookie to the one route that reads it.
const flowCookiePath = "/auth/oidc/callback"

// maxCallbackQuery bounds the callback's query string before it is
// parsed (a code of oidc's 4 KiB cap, a state and an error fit).
const maxCallbackQuery = 8 << 10

// ssoRoutes mounts enterprise sign-in.
//
//	GET /auth/oidc/start     302 to the IdP, setting the flow cookie
//	GET /auth/oidc/callback  the IdP's redirect: deletes the flow cookie,
//	                         then a session (302 to "/" with the session
//	                         cookie, or JSON with Accept: application/json)
//	                         or phivault's MFA challenge (JSON, as POST
//	                         /auth/login answers)
func (h *Handler) ssoRoutes(mux *http.ServeMux) {
	mux.Handle("GET /auth/oidc/start", h.handle(h.ssoStart))
	mux.Handle("GET "+flowCookiePath, h.handle(h.ssoCallback))
}

func (h *Handler) ssoStart(w http.ResponseWriter, r *http.Request) error {
	u, flow, err := h.sso.Start()
	if err != nil {
		return err
	}
	http.SetCookie(w, &http.Cookie{Name: FlowCookie, Value: flow, Path: flowCookiePath,
		MaxAge: int(oidc.FlowTTL.Seconds()), Secure: true, HttpOnly: true, SameSite: http.SameSiteLaxMode})
	http.Redirect(w, r, u, http.StatusFound)
	return nil
}

func (h *Handler) ssoCallback(w http.ResponseWriter, r *http.Request) error {
	// One use: the flow cookie goes whatever the outcome.
	http.SetCookie(w, &http.Cookie{Name: FlowCookie, Value: "", Path: flowCookiePath, MaxAge: -1,
		Secure: true, HttpOnly: true, SameSite: http.SameSiteLaxMode})
	cb := sso.Callback{}
	if c, err := r.Cookie(FlowCookie); err == nil {
		cb.Flow = c.Value
	}
	if len(r.URL.RawQuery) <= maxCallbackQuery {
		q := r.URL.Query()
		cb.State, cb.Code, cb.Error = q.Get("state"), q.Get("code"), q.Get("error")
	}
	res, err := h.sso.Finish(r.Context(), cb, web.ClientAddr(r))
	if err != nil {
		return ssoErr(err)
	}
	if res.Session == nil {
		writeChallenge(w, res)
		return nil
	}
	if wantsJSON(r) {
		writeStarted(w, *res.Session, nil)
		return nil
	}
	web.SetSessionCookie(w, res.Session.Secret)
	http.Redirect(w, r, "/", http.StatusFound)
	return nil
}

// ssoErr maps sso refusals to statuses; the oidc detail stays in the log.
func ssoErr(err error) error {
	for _, m := range []struct {
		sentinel error
		status   int
	}{
		{sso.ErrState, http.StatusBadRequest},
		{sso.ErrFailed, http.StatusUnauthorized},
		{sso.ErrNoRole, http.StatusForbidden},
		{sso.ErrRefused, http.StatusForbidden},
		{sso.ErrAwaitingApproval, http.StatusForbidden},
	} {
		if errors.Is(err, m.sentinel) {
			return &web.Error{Status: m.status, Msg: m.sentinel.Error(), Err: err}
		}
	}
	return err
}

// writeChallenge answers a login that owes a second factor, as POST
// /auth/login does.
func writeChallenge(w http.ResponseWriter, res login.Result) {
	writeAuthJSON(w, http.StatusOK, map[string]any{"mfa_required": true, "enrollment_required": res.EnrollmentRequired,
		"methods": res.Methods, "challenge": res.Challenge})
}

// wantsJSON reports whether the Accept header names application/json.
func wantsJSON(r *http.Request) bool {
	for _, part := range strings.Split(r.Header.Get("Accept"), ",") {
		if mt, _, err := mime.ParseMediaType(strings.TrimSpace(part)); err == nil && mt == mediaJSON {
			return true
		}
	}
	return false
}
