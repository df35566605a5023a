package httpapi

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/phivault/phivault/internal/observe"
	"github.com/phivault/phivault/internal/web"
)

// The metrics' share of the root middleware (withRequest): the same
// public request (GET /healthz, not audited) through the stack without
// and with the observer.
//
//	go test ./internal/httpapi -run '^$' -bench Middleware -benchmem
func BenchmarkMiddleware(b *testing.B) {
	for _, tc := range []struct {
		name string
		obs  RequestObserver
	}{
		{"no observer", nil},
		{"metrics", observe.New(observe.Options{})},
	} {
		b.Run(tc.name, func(b *testing.B) {
			s := New(Options{Logger: slog.New(slog.DiscardHandler), Now: time.Now, Observer: tc.obs})
			mux := http.NewServeMux()
			mux.Handle("GET /healthz", s.handle(func(w http.ResponseWriter, r *http.Request) error {
				w.WriteHeader(http.StatusOK)
				return nil
			}))
			h := s.withRequest(web.SecurityHeaders(withMuxRoute(mux)))
			req := httptest.NewRequest(http.MethodGet, "/healthz", nil)
			b.ReportAllocs()
			for b.Loop() {
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, req)
				if rec.Code != http.StatusOK {
					b.Fatalf("status %d", rec.Code)
				}
			}
		})
	}
}

// The route the observer is told is the mux pattern, from the handler's
// note or, when no handler noted one, the outer mux.
func TestObserverGetsThePattern(t *testing.T) {
	obs := &routes{}
	s := New(Options{Logger: slog.New(slog.DiscardHandler), Now: time.Now, Observer: obs})
	mux := http.NewServeMux()
	mux.Handle("GET /fhir/{type}/{id}", s.handle(func(w http.ResponseWriter, r *http.Request) error { return nil }))
	mux.Handle("GET /raw/{id}", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {})) // notes nothing
	h := s.withRequest(withMuxRoute(mux))
	for _, tc := range []struct{ path, want string }{
		{"/fhir/Patient/p-123", "GET /fhir/{type}/{id}"},
		{"/raw/p-123", "GET /raw/{id}"},
		{"/nothing/p-123", ""},
	} {
		h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, tc.path, nil))
		if got := obs.last; got != tc.want {
			t.Errorf("%s: route %q, want %q", tc.path, got, tc.want)
		}
	}
}

type routes struct{ last string }

func (o *routes) BeginRequest(ctx context.Context) context.Context { return ctx }
func (o *routes) EndRequest(_ context.Context, route, _ string, _ int, _ time.Duration) {
	o.last = route
}
