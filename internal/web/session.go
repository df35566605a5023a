package web

import (
	"net/http"

	"github.com/phivault/phivault/internal/authn/session"
)

// SessionCookie is the session cookie's name, shared by the JSON login
// API and the web UI. The __Host- prefix makes browsers accept it only
// with Secure, Path=/ and no Domain, so a sibling subdomain cannot plant
// or overwrite it (RFC 6265bis §4.1.3.2).
const SessionCookie = "__Host-phivault_session"

// SetSessionCookie hands a new session token to the browser: HttpOnly
// (no script reads it), Secure, SameSite=Strict (no cross-site request
// carries it), Path=/ as the __Host- prefix requires.
func SetSessionCookie(w http.ResponseWriter, secret session.Secret) {
	http.SetCookie(w, &http.Cookie{Name: SessionCookie, Value: secret.Reveal(), Path: "/",
		Secure: true, HttpOnly: true, SameSite: http.SameSiteStrictMode})
}

// ClearSessionCookie tells the browser to drop the session cookie, with
// the same attributes it was set with.
func ClearSessionCookie(w http.ResponseWriter) {
	http.SetCookie(w, &http.Cookie{Name: SessionCookie, Value: "", Path: "/", MaxAge: -1,
		Secure: true, HttpOnly: true, SameSite: http.SameSiteStrictMode})
}

// SessionToken returns the session cookie's value, and whether r carries
// the cookie at all (an empty value counts as carried). The value is a
// secret: never log it.
func SessionToken(r *http.Request) (string, bool) {
	c, err := r.Cookie(SessionCookie)
	if err != nil {
		return "", false
	}
	return c.Value, true
}
