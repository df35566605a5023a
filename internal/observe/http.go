package observe

import (
	"context"
	"maps"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
)

// OtherRoute labels a request no route pattern served (an unknown path
// answered 404 by the mux, a request refused before routing), and every
// route past maxRoutes.
const OtherRoute = "other"

// maxRoutes caps the distinct route labels. phivault registers about a
// hundred patterns; the cap only guards against a caller that passes
// something other than a pattern.
const maxRoutes = 512

// codeClasses are the status labels, indexed by status/100; index 0
// stands for anything outside 100-599.
var codeClasses = [6]string{"other", "1xx", "2xx", "3xx", "4xx", "5xx"}

// routeObs are the pre-curried instruments of one route.
type routeObs struct {
	latency prometheus.Observer
	codes   [len(codeClasses)]prometheus.Counter
	errors  prometheus.Counter
}

type httpMetrics struct {
	requests *prometheus.CounterVec
	errors   *prometheus.CounterVec
	latency  *prometheus.HistogramVec

	mu     sync.Mutex                           // serialises additions to routes
	routes atomic.Pointer[map[string]*routeObs] // copy on write: reads take no lock
}

func newHTTPMetrics(reg prometheus.Registerer) *httpMetrics {
	h := &httpMetrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: namespace, Subsystem: "http", Name: "requests_total",
			Help: "HTTP requests answered, by route pattern and status class."}, []string{"route", "code"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: namespace, Subsystem: "http", Name: "request_errors_total",
			Help: "HTTP requests answered with a server error (5xx), by route pattern."}, []string{"route"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: namespace, Subsystem: "http", Name: "request_duration_seconds",
			Help: "Time from the request's header to the handler's return, by route pattern.", Buckets: latencyBuckets}, []string{"route"}),
	}
	reg.MustRegister(h.requests, h.errors, h.latency)
	empty := map[string]*routeObs{}
	h.routes.Store(&empty)
	return h
}

// route returns the instruments of name, creating them once.
func (h *httpMetrics) route(name string) *routeObs {
	if ro := (*h.routes.Load())[name]; ro != nil {
		return ro
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	cur := *h.routes.Load()
	if ro := cur[name]; ro != nil {
		return ro
	}
	if len(cur) >= maxRoutes {
		name = OtherRoute
		if ro := cur[name]; ro != nil {
			return ro
		}
	}
	ro := &routeObs{latency: h.latency.WithLabelValues(name), errors: h.errors.WithLabelValues(name)}
	for i, c := range codeClasses {
		ro.codes[i] = h.requests.WithLabelValues(name, c)
	}
	next := maps.Clone(cur)
	next[name] = ro
	h.routes.Store(&next)
	return ro
}

func codeIndex(status int) int {
	if status < 100 || status > 599 {
		return 0
	}
	return status / 100
}

// BeginRequest starts the request's server span when tracing is on and
// returns ctx carrying it; without tracing it returns ctx unchanged.
// The span is named when the request ends, once its route is known.
func (m *Metrics) BeginRequest(ctx context.Context) context.Context {
	if m.tracer == nil {
		return ctx
	}
	// WithNewRoot: a client's traceparent is not trusted (doc.go).
	ctx, _ = m.tracer.Start(ctx, "HTTP", trace.WithSpanKind(trace.SpanKindServer), trace.WithNewRoot())
	return ctx
}

// EndRequest records one answered request: route is the ServeMux
// pattern that served it ("" for none: [OtherRoute]), method the
// request's method, status the status sent. It ends the span
// BeginRequest started, named after the route, with the method, route
// and status as its only attributes.
func (m *Metrics) EndRequest(ctx context.Context, route, method string, status int, elapsed time.Duration) {
	if route == "" {
		route = OtherRoute
	}
	ro := m.http.route(route)
	ro.codes[codeIndex(status)].Inc()
	if status >= 500 {
		ro.errors.Inc()
	}
	ro.latency.Observe(elapsed.Seconds())
	if m.tracer == nil {
		return
	}
	span := trace.SpanFromContext(ctx)
	if !span.IsRecording() {
		return
	}
	span.SetName(route)
	span.SetAttributes(attribute.String("http.request.method", knownMethod(method)),
		attribute.String("http.route", route), attribute.Int("http.response.status_code", status))
	if status >= 500 {
		span.SetStatus(codes.Error, http.StatusText(status))
	}
	span.End()
}

// knownMethod is method if it is a standard one, else "_OTHER" (the
// OpenTelemetry convention): a method is client input.
func knownMethod(method string) string {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodOptions, http.MethodConnect, http.MethodTrace:
		return method
	}
	return "_OTHER"
}
