package site

import (
	"net/http"
	"path"
	"strings"
)

// Return after sign-in: a signed-out browser that asks for a page (a
// GET) is sent to /login, and the page it asked for is kept in a
// __Host- cookie (HttpOnly, SameSite=Strict, short-lived). When the
// sign-in ends with a session (password only, second factor, first
// enrolment or passkey), the browser goes to that page instead of the
// start page. UI paths carry opaque ids only, never PHI (searches are
// POSTed), so the cookie holds no PHI either.
//
// The saved value is checked with [ReturnPath] both when it is saved
// and when it is used: only a same-origin absolute path, from a small
// set of characters, can come out, so the cookie cannot become an open
// redirect even if a browser or a proxy altered it.

// returnCookie holds the page asked for while signed out.
const returnCookie = "__Host-phivault_return"

// returnTTL is how long the page asked for is remembered: the password,
// the second factor (five-minute challenge, login.ChallengeTTL) and a
// first enrolment fit with room; after that the start page is a fine
// landing.
const returnTTL = 15 * 60 // seconds

// maxReturnPath bounds the saved path: UI paths are short (opaque ids,
// a few query parameters).
const maxReturnPath = 512

// noReturn are the path prefixes never returned to: the sign-in and
// enrolment pages themselves (a loop), sign-out and the static files.
var noReturn = []string{"/login", "/logout", "/signed-out", "/enrol", "/auth/", "/session/", "/static/"}

// ReturnPath reports whether raw may be a post-sign-in target and
// returns it. It accepts only an absolute path of unreserved URL
// characters and "/", already clean (no "//", "/./", "/../", no
// trailing "/"), optionally followed by a query of unreserved
// characters, "=", "&" and ":". So no scheme, no host ("//host",
// "/\host"), no percent-encoding (no encoded "/" or "\"), no fragment,
// no control or non-ASCII characters, and no sign-in page.
func ReturnPath(raw string) (string, bool) {
	if raw == "" || len(raw) > maxReturnPath || raw[0] != '/' {
		return "", false
	}
	p, q, _ := strings.Cut(raw, "?")
	for i := 0; i < len(p); i++ {
		if !unreserved(p[i]) && p[i] != '/' {
			return "", false
		}
	}
	if path.Clean(p) != p {
		return "", false
	}
	for i := 0; i < len(q); i++ {
		if c := q[i]; !unreserved(c) && c != '=' && c != '&' && c != ':' {
			return "", false
		}
	}
	for _, pre := range noReturn {
		if p == strings.TrimSuffix(pre, "/") || strings.HasPrefix(p, pre) {
			return "", false
		}
	}
	return raw, true
}

// unreserved is RFC 3986 §2.3's unreserved set.
func unreserved(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '.' || c == '_' || c == '~'
}

// rememberReturn keeps r's target for after sign-in, when r is a GET of
// a page that may be returned to.
func rememberReturn(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		return
	}
	p, ok := ReturnPath(r.URL.RequestURI())
	if !ok || p == "/" {
		return
	}
	http.SetCookie(w, &http.Cookie{Name: returnCookie, Value: p, Path: "/", MaxAge: returnTTL,
		Secure: true, HttpOnly: true, SameSite: http.SameSiteStrictMode})
}

// TakeReturn returns the page to go to after a sign-in that has just
// started a session: the page asked for while signed out, or "/". The
// saved page is forgotten.
func TakeReturn(w http.ResponseWriter, r *http.Request) string {
	c, err := r.Cookie(returnCookie)
	if err != nil {
		return "/"
	}
	http.SetCookie(w, &http.Cookie{Name: returnCookie, Value: "", Path: "/", MaxAge: -1,
		Secure: true, HttpOnly: true, SameSite: http.SameSiteStrictMode})
	if p, ok := ReturnPath(c.Value); ok {
		return p
	}
	return "/"
}
