package httpapi

import (
	"net/http"
	"net/netip"

	"github.com/phivault/phivault/internal/authn/session"
)

// Exported for the web UI (internal/webui), which signs people in with
// the same session cookie as /auth/ and must set it with exactly the
// same attributes. They wrap the unexported helpers so the rules stay in
// one place (auth_session.go).

// SetSessionCookie hands a new session token to the browser (HttpOnly,
// Secure, SameSite=Strict, __Host- rules).
func SetSessionCookie(w http.ResponseWriter, secret session.Secret) { setSessionCookie(w, secret) }

// ClearSessionCookie tells the browser to drop the session cookie.
func ClearSessionCookie(w http.ResponseWriter) { clearSessionCookie(w) }

// ClientAddr is the peer address of r (forwarded headers are not
// trusted); the zero Addr when RemoteAddr does not parse.
func ClientAddr(r *http.Request) netip.Addr { return clientAddr(r) }
