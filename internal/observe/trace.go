package observe

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// exportTimeout bounds one export of spans to the collector: a collector
// that does not answer must cost the process a dropped batch, not a
// growing queue.
const exportTimeout = 10 * time.Second

// TracingOptions configures [NewTracing].
type TracingOptions struct {
	// Endpoint is the collector's OTLP/HTTP traces URL, e.g.
	// http://127.0.0.1:4318/v1/traces. Required unless Exporter is set.
	Endpoint string
	// SampleRatio is the share of requests traced, in (0, 1].
	SampleRatio float64
	// Version is the service.version resource attribute.
	Version string
	// Exporter replaces the OTLP exporter (tests: an in-memory one,
	// exported synchronously).
	Exporter sdktrace.SpanExporter
}

// Tracing is a tracer provider that exports to a collector. Shutdown
// flushes and stops it; its owner (package app) calls it at Close.
type Tracing struct {
	tp *sdktrace.TracerProvider
}

// NewTracing returns the tracing of o. It does not connect: the first
// export does, in the background.
func NewTracing(ctx context.Context, o TracingOptions) (*Tracing, error) {
	if o.SampleRatio <= 0 || o.SampleRatio > 1 {
		return nil, fmt.Errorf("new tracing: sample ratio %v is not in (0, 1]", o.SampleRatio)
	}
	res := resource.NewSchemaless(attribute.String("service.name", "phivault"), attribute.String("service.version", o.Version))
	opts := []sdktrace.TracerProviderOption{sdktrace.WithResource(res), sdktrace.WithSampler(sdktrace.TraceIDRatioBased(o.SampleRatio))}
	if o.Exporter != nil {
		opts = append(opts, sdktrace.WithSyncer(o.Exporter))
	} else {
		if o.Endpoint == "" {
			return nil, errors.New("new tracing: no OTLP endpoint")
		}
		exp, err := otlptracehttp.New(ctx, otlptracehttp.WithEndpointURL(o.Endpoint), otlptracehttp.WithTimeout(exportTimeout))
		if err != nil {
			return nil, fmt.Errorf("new tracing: OTLP exporter: %w", err)
		}
		opts = append(opts, sdktrace.WithBatcher(exp))
	}
	return &Tracing{tp: sdktrace.NewTracerProvider(opts...)}, nil
}

// Tracer returns phivault's tracer, for [Options.Tracer].
func (t *Tracing) Tracer() trace.Tracer { return t.tp.Tracer("github.com/phivault/phivault") }

// Shutdown exports the spans still queued and stops the provider.
func (t *Tracing) Shutdown(ctx context.Context) error {
	if err := t.tp.Shutdown(ctx); err != nil {
		return fmt.Errorf("stopping tracing: %w", err)
	}
	return nil
}
