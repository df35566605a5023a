package observe

import (
	"crypto/subtle"
	"log/slog"
	"net/http"
	"net/http/pprof"
	"strings"
)

// RequireToken serves next only to requests that carry "Authorization:
// Bearer <token>"; others get 401 with no body. The comparison takes
// the same time whatever the presented token's content (crypto/subtle;
// only a different length answers sooner, and the length is not the
// secret). An empty token refuses every request.
func RequireToken(token string, next http.Handler) http.Handler {
	want := []byte(token)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		scheme, got, ok := strings.Cut(r.Header.Get("Authorization"), " ")
		if !ok || !strings.EqualFold(scheme, "Bearer") || len(want) == 0 ||
			subtle.ConstantTimeCompare([]byte(strings.TrimSpace(got)), want) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="metrics"`)
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// Profiler returns the net/http/pprof handlers under /debug/pprof/ on a
// mux of their own (never http.DefaultServeMux, which phivault does not
// serve). allow decides each request (the admin API token, package
// app): a non-nil error answers 401 and is logged without the
// credential. /debug/pprof/cmdline is not served: the command line can
// carry a database URL with its password (--postgres). Every allowed request is logged: a profile is a view of
// the process's memory layout and its goroutines' stacks.
func Profiler(allow func(*http.Request) error, log *slog.Logger) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index) // the index and every named profile (heap, goroutine, ...)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := allow(r); err != nil {
			log.Warn("pprof request refused", slog.String("path", r.URL.Path), slog.String("error", err.Error()))
			w.Header().Set("WWW-Authenticate", `Bearer realm="pprof"`)
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		log.Info("pprof request", slog.String("path", r.URL.Path))
		mux.ServeHTTP(w, r)
	})
}
