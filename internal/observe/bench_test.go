package observe_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/phivault/phivault/internal/observe"
)

// The per-request cost of the metrics: what withRequest adds to every
// request (BeginRequest and EndRequest), with tracing off (the
// default) and on at the default 1% sampling.
//
//	go test ./internal/observe -run '^$' -bench Request -benchmem

var routes = []string{"GET /fhir/{type}/{id}", "GET /fhir/{type}", "POST /fhir/{type}", "GET /healthz"}

func benchRequest(b *testing.B, m *observe.Metrics) {
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	i := 0
	for b.Loop() {
		c := m.BeginRequest(ctx)
		m.EndRequest(c, routes[i%len(routes)], http.MethodGet, 200, 300*time.Microsecond)
		i++
	}
}

func BenchmarkRequestNoTracing(b *testing.B) {
	benchRequest(b, observe.New(observe.Options{}))
}

func BenchmarkRequestParallel(b *testing.B) {
	m := observe.New(observe.Options{})
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		ctx := context.Background()
		i := 0
		for pb.Next() {
			m.EndRequest(m.BeginRequest(ctx), routes[i%len(routes)], http.MethodGet, 200, 300*time.Microsecond)
			i++
		}
	})
}

func BenchmarkRequestTracingSampled1pc(b *testing.B) {
	tr, err := observe.NewTracing(context.Background(), observe.TracingOptions{SampleRatio: 0.01, Exporter: discard{}})
	if err != nil {
		b.Fatal(err)
	}
	defer func() { _ = tr.Shutdown(context.Background()) }()
	benchRequest(b, observe.New(observe.Options{Tracer: tr.Tracer()}))
}

// discard is an exporter that drops every span.
type discard struct{}

func (discard) ExportSpans(context.Context, []sdktrace.ReadOnlySpan) error { return nil }
func (discard) Shutdown(context.Context) error                             { return nil }
