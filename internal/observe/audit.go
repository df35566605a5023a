package observe

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
)

// batchBuckets are the audit batch sizes: powers of two up to the
// batcher's default maximum of 256 records.
var batchBuckets = prometheus.ExponentialBuckets(1, 2, 9)

// waitBuckets are the batcher's waits, in seconds: its default delay is
// 2 ms, a commit takes one fsync.
var waitBuckets = []float64{.00005, .0001, .00025, .0005, .001, .002, .005, .01, .025, .05, .1, .25, .5, 1, 5}

func (m *Metrics) registerAudit() {
	m.batchSize = prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: namespace, Subsystem: "audit", Name: "batch_size",
		Help: "Audit records per group commit of the audit batcher.", Buckets: batchBuckets})
	m.batchWait = prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: namespace, Subsystem: "audit", Name: "batch_wait_seconds",
		Help: "Time a batch's first record waited for the batch to fill, before its commit began.", Buckets: waitBuckets})
	m.batchCommit = prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: namespace, Subsystem: "audit", Name: "batch_commit_seconds",
		Help: "Time of one batch's commit (the append and its fsync).", Buckets: waitBuckets})
	m.batchFailures = prometheus.NewCounter(prometheus.CounterOpts{Namespace: namespace, Subsystem: "audit", Name: "batch_failures_total",
		Help: "Audit batches whose commit failed (their requests were answered 503)."})
	m.auditWait = prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: namespace, Subsystem: "audit", Name: "record_wait_seconds",
		Help: "Time a request waited for its audit record to be durable.", Buckets: waitBuckets})
	m.reg.MustRegister(m.batchSize, m.batchWait, m.batchCommit, m.batchFailures, m.auditWait)
}

// Audit returns the observer of the audit batcher (audit.BatchObserver).
func (m *Metrics) Audit() AuditObserver { return AuditObserver{m: m} }

// AuditObserver records the audit batcher's batches and waits. Its
// zero value is not usable; get it from [Metrics.Audit].
type AuditObserver struct{ m *Metrics }

// Batched records one group commit of size records whose first record
// waited wait for the batch, committed in commit; failed says the
// commit failed.
func (o AuditObserver) Batched(size int, wait, commit time.Duration, failed bool) {
	o.m.batchSize.Observe(float64(size))
	o.m.batchWait.Observe(wait.Seconds())
	o.m.batchCommit.Observe(commit.Seconds())
	if failed {
		o.m.batchFailures.Inc()
	}
}

// Recorded records one request's wait, from start, for its audit record
// to be durable, and with tracing on adds it to the request's trace as
// the span "audit.record".
func (o AuditObserver) Recorded(ctx context.Context, start time.Time, err error) {
	end := time.Now()
	o.m.auditWait.Observe(end.Sub(start).Seconds())
	o.m.childSpan(ctx, "audit.record", start, end, err)
}

// childSpan adds a finished span under ctx's span, when tracing is on
// and ctx's span is recording. Its only attribute is the outcome.
func (m *Metrics) childSpan(ctx context.Context, name string, start, end time.Time, err error) {
	if m.tracer == nil || !trace.SpanFromContext(ctx).IsRecording() {
		return
	}
	_, span := m.tracer.Start(ctx, name, trace.WithTimestamp(start))
	if err != nil {
		// The error's text can name ids: only its presence is recorded.
		span.SetStatus(codes.Error, "failed")
	}
	span.End(trace.WithTimestamp(end))
}
