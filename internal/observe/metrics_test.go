package observe_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/phivault/phivault/internal/observe"
)

// labelValues gathers m and returns the values of label in family.
func labelValues(t *testing.T, m *observe.Metrics, family, label string) map[string]bool {
	t.Helper()
	fams, err := m.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]bool{}
	for _, f := range fams {
		if f.GetName() != family {
			continue
		}
		for _, mt := range f.GetMetric() {
			for _, lp := range mt.GetLabel() {
				if lp.GetName() == label {
					out[lp.GetValue()] = true
				}
			}
		}
	}
	return out
}

func family(t *testing.T, m *observe.Metrics, name string) *dto.MetricFamily {
	t.Helper()
	fams, err := m.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fams {
		if f.GetName() == name {
			return f
		}
	}
	return nil
}

func TestRequestLabels(t *testing.T) {
	m := observe.New(observe.Options{Version: "test"})
	ctx := t.Context()
	tests := []struct {
		name, route string
		status      int
		wantRoute   string
		wantCode    string
	}{
		{"pattern", "GET /fhir/{type}/{id}", 200, "GET /fhir/{type}/{id}", "2xx"},
		{"no pattern", "", 404, observe.OtherRoute, "4xx"},
		{"server error", "POST /fhir/{type}", 503, "POST /fhir/{type}", "5xx"},
		{"no status", "GET /healthz", 0, "GET /healthz", "other"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m.EndRequest(m.BeginRequest(ctx), tt.route, http.MethodGet, tt.status, time.Millisecond)
			if !labelValues(t, m, "phivault_http_requests_total", "route")[tt.wantRoute] {
				t.Errorf("no series for route %q", tt.wantRoute)
			}
			if !labelValues(t, m, "phivault_http_requests_total", "code")[tt.wantCode] {
				t.Errorf("no series for code %q", tt.wantCode)
			}
		})
	}
	errs := family(t, m, "phivault_http_request_errors_total")
	if errs == nil {
		t.Fatal("no error counter")
	}
	for _, mt := range errs.GetMetric() {
		route := mt.GetLabel()[0].GetValue()
		if want := map[string]float64{"POST /fhir/{type}": 1}[route]; mt.GetCounter().GetValue() != want {
			t.Errorf("errors of %q = %v, want %v", route, mt.GetCounter().GetValue(), want)
		}
	}
}

// However many names a caller passes, the route label stays bounded.
func TestRouteLabelsAreCapped(t *testing.T) {
	m := observe.New(observe.Options{})
	for i := range 2000 {
		m.EndRequest(t.Context(), fmt.Sprintf("GET /r%d", i), http.MethodGet, 200, time.Millisecond)
	}
	routes := labelValues(t, m, "phivault_http_request_duration_seconds", "route")
	if len(routes) > 513 || len(routes) < 100 {
		t.Errorf("%d route labels, want at most 512 and other", len(routes))
	}
	if !routes[observe.OtherRoute] {
		t.Error("routes past the cap are not counted as other")
	}
}

func TestRequireToken(t *testing.T) {
	const tok = "0123456789abcdef0123456789abcdef"
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte("metrics")) })
	tests := []struct {
		name, token, header string
		want                int
	}{
		{"right", tok, "Bearer " + tok, 200},
		{"scheme case", tok, "bearer " + tok, 200},
		{"none", tok, "", 401},
		{"wrong", tok, "Bearer " + strings.Repeat("x", len(tok)), 401},
		{"prefix", tok, "Bearer " + tok[:10], 401},
		{"longer", tok, "Bearer " + tok + "x", 401},
		{"basic", tok, "Basic " + tok, 401},
		{"empty configured token", "", "Bearer ", 401},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			req := httptest.NewRequest(http.MethodGet, "/metrics", nil)
			if tt.header != "" {
				req.Header.Set("Authorization", tt.header)
			}
			observe.RequireToken(tt.token, ok).ServeHTTP(rec, req)
			if rec.Code != tt.want {
				t.Errorf("status %d, want %d", rec.Code, tt.want)
			}
			if tt.want != 200 && strings.Contains(rec.Body.String(), "metrics") {
				t.Error("a refused request got the metrics")
			}
		})
	}
}

type stats struct{ h, m uint64 }

func (s stats) Stats() (uint64, uint64) { return s.h, s.m }

func TestCachesAndPending(t *testing.T) {
	m := observe.New(observe.Options{})
	if err := m.RegisterCache("dek", stats{7, 3}); err != nil {
		t.Fatal(err)
	}
	if err := m.RegisterCache("dek", stats{1, 1}); err == nil {
		t.Error("a cache name registered twice")
	}
	hits := family(t, m, "phivault_cache_hits_total")
	if hits == nil || hits.GetMetric()[0].GetCounter().GetValue() != 7 {
		t.Errorf("hits %v, want 7", hits)
	}
	n := int64(5)
	var fail error
	if err := m.RegisterPending(func(context.Context) (int64, error) { return n, fail }); err != nil {
		t.Fatal(err)
	}
	if f := family(t, m, "phivault_audit_log_pending_records"); f == nil || f.GetMetric()[0].GetGauge().GetValue() != 5 {
		t.Errorf("pending %v, want 5", f)
	}
	fail = errors.New("database down")
	if f := family(t, m, "phivault_audit_log_pending_records"); f != nil {
		t.Errorf("a failed count is exported: %v", f)
	}
}

// Spans are named after the route; their attributes are the method,
// route and status, nothing a client chose.
func TestRequestSpan(t *testing.T) {
	exp := tracetest.NewInMemoryExporter()
	tr, err := observe.NewTracing(t.Context(), observe.TracingOptions{SampleRatio: 1, Exporter: exp})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tr.Shutdown(context.Background()) })
	m := observe.New(observe.Options{Tracer: tr.Tracer()})

	ctx := m.BeginRequest(t.Context())
	m.Authz().Decided(ctx, observe.OpDecide, time.Now().Add(-time.Millisecond), nil)
	m.Audit().Recorded(ctx, time.Now().Add(-time.Millisecond), errors.New("audit record Patient/secret-id failed"))
	m.EndRequest(ctx, "GET /fhir/{type}/{id}", "BREW", 503, 2*time.Millisecond)

	spans := exp.GetSpans()
	if len(spans) != 3 {
		t.Fatalf("%d spans, want 3", len(spans))
	}
	byName := map[string]tracetest.SpanStub{}
	for _, s := range spans {
		byName[s.Name] = s
		for _, kv := range s.Attributes {
			if strings.Contains(kv.Value.String(), "secret-id") || strings.Contains(kv.Value.String(), "BREW") {
				t.Errorf("span %s: attribute %s=%s", s.Name, kv.Key, kv.Value.String())
			}
		}
		if strings.Contains(s.Status.Description, "secret-id") {
			t.Errorf("span %s: status %q carries the error text", s.Name, s.Status.Description)
		}
	}
	root, ok := byName["GET /fhir/{type}/{id}"]
	if !ok {
		t.Fatalf("no span named after the route: %v", byName)
	}
	for _, child := range []string{"authz.decide", "audit.record"} {
		if c, ok := byName[child]; !ok || c.Parent.SpanID() != root.SpanContext.SpanID() {
			t.Errorf("%s is not a child of the request span", child)
		}
	}
}

// Without a tracer BeginRequest leaves the context as it is.
func TestNoTracingNoSpan(t *testing.T) {
	m := observe.New(observe.Options{})
	ctx := t.Context()
	if got := m.BeginRequest(ctx); got != ctx {
		t.Error("BeginRequest changed the context without tracing")
	}
}
