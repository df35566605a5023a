package httpapi

import (
	"net/http"
	"strings"

	"github.com/rs/cors"
)

// Cross-origin requests (CORS) let browser apps on other origins (SMART
// apps) call the FHIR API, read the SMART configuration and redeem
// codes at the token endpoint. Only the configured origins are allowed
// (none by default), and never with credentials: a cross-origin request
// carries the app's bearer token, not the user's session cookie, so an
// allowed origin cannot ride a signed-in user's session, and "*" is
// safe to send. Preflights are answered here, before authentication.

// corsMaxAge is how long (seconds) a browser may cache a preflight:
// ten minutes keeps preflights rare and a changed policy prompt.
const corsMaxAge = 600

// corsPath reports whether path is one browser apps call cross-origin.
func corsPath(path string) bool {
	switch path {
	case "/fhir", "/.well-known/smart-configuration", "/oauth2/token":
		return true
	}
	return strings.HasPrefix(path, "/fhir/")
}

// withCORS answers preflights and adds the CORS headers on the CORS
// paths when origins is not empty; otherwise it returns next.
func withCORS(origins []string, next http.Handler) http.Handler {
	if len(origins) == 0 {
		return next
	}
	c := cors.New(cors.Options{
		AllowedOrigins: origins,
		AllowedMethods: []string{http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete},
		AllowedHeaders: []string{"Authorization", "Content-Type", "Accept", "Prefer", "If-Match", "If-None-Match",
			"If-None-Exist", "If-Modified-Since", "X-Request-Id"},
		ExposedHeaders:   []string{"ETag", "Location", "Content-Location", "Last-Modified"},
		MaxAge:           corsMaxAge,
		AllowCredentials: false, // never: see above
	})
	h := c.Handler(next)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if corsPath(r.URL.Path) {
			h.ServeHTTP(w, r)
			return
		}
		next.ServeHTTP(w, r)
	})
}
