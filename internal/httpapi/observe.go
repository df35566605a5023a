package httpapi

import (
	"context"
	"net/http"
	"time"
)

// RequestObserver watches every request answered by [Server.Handler]
// (package observe implements it: metrics and spans). Its methods must
// be safe for concurrent use and must not block.
type RequestObserver interface {
	// BeginRequest is called first, and returns the context the request
	// runs with (carrying its span).
	BeginRequest(ctx context.Context) context.Context
	// EndRequest is called once the request is answered: route is the
	// ServeMux pattern that served it ("" for none), never its path;
	// status is the status sent (0 if none was).
	EndRequest(ctx context.Context, route, method string, status int, elapsed time.Duration)
}

// metricsRoute mounts /metrics on mux: h when metrics are on the main
// listener (package observe wraps it in its bearer-token check), 404
// otherwise, so the path never falls through to the web UI.
func (s *Server) metricsRoute(mux *http.ServeMux) {
	h := s.metrics
	if h == nil {
		h = http.NotFoundHandler()
	}
	mux.Handle("GET /metrics", h)
}

// routeOf returns the route of a finished request for the metrics: the
// pattern a handler noted (web.NoteRoute, the finest), else the outer
// mux's pattern, else "".
func routeOf(st *reqState) string {
	if r := st.notes.Route(); r != "" {
		return r
	}
	return st.muxRoute
}

// withMuxRoute records, after mux has served r, the pattern it chose
// (ServeMux sets it on r itself) for routeOf.
func withMuxRoute(mux *http.ServeMux) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mux.ServeHTTP(w, r)
		if st := stateFrom(r.Context()); st != nil {
			st.muxRoute = r.Pattern
		}
	})
}
