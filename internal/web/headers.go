package web

import "net/http"

// SecurityHeaders sets the headers every response carries: HSTS for two
// years, no MIME sniffing, a CSP that allows nothing (pages that need
// more set their own), no framing, no Referer, and no caching (answers
// carry PHI or session state; static assets override Cache-Control).
func SecurityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Strict-Transport-Security", "max-age=63072000; includeSubDomains")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Cache-Control", "no-store")
		next.ServeHTTP(w, r)
	})
}
