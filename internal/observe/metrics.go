package observe

import (
	"context"
	"database/sql"
	"fmt"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.opentelemetry.io/otel/trace"
)

// namespace prefixes every phivault metric.
const namespace = "phivault"

// scrapeTimeout bounds the database queries a scrape runs (the audit
// log's pending records): a slow database must not hold the scrape, and
// Prometheus's own default timeout is 10 s.
const scrapeTimeout = 2 * time.Second

// Options configures [New]. The zero value is valid: no tracing.
type Options struct {
	// Version is exported as phivault_build_info{version}.
	Version string
	// Tracer makes spans of requests, authorization decisions and audit
	// waits; nil: no tracing (the default).
	Tracer trace.Tracer
}

// Metrics is the application's registry and the instruments the
// components report to. It is safe for concurrent use.
type Metrics struct {
	reg    *prometheus.Registry
	tracer trace.Tracer // nil: no spans
	http   *httpMetrics

	batchSize     prometheus.Histogram
	batchWait     prometheus.Histogram
	batchCommit   prometheus.Histogram
	batchFailures prometheus.Counter
	auditWait     prometheus.Histogram

	decide, narrow prometheus.Observer
}

// latencyBuckets are the request and decision buckets, in seconds: a
// cached read takes well under a millisecond, a large transaction
// seconds.
var latencyBuckets = []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}

// New returns the metrics in a new registry with the Go runtime and
// process collectors and phivault_build_info.
func New(o Options) *Metrics {
	reg := prometheus.NewRegistry()
	m := &Metrics{reg: reg, tracer: o.Tracer, http: newHTTPMetrics(reg)}
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: namespace, Name: "build_info",
			Help: "Always 1; the version label is phivault's version.", ConstLabels: prometheus.Labels{"version": o.Version}},
			func() float64 { return 1 }),
	)
	m.registerAudit()
	m.registerAuthz()
	return m
}

// Registry returns the registry, for tests and for collectors the
// caller adds.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Handler serves the registry in the Prometheus exposition formats. It
// does not authenticate: mount it behind [RequireToken] or on a
// loopback listener.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError, Registry: m.reg})
}

// RegisterDB exports the pool statistics of db (go_sql_* with the label
// db_name=name): open, in-use and idle connections, waits and closes.
func (m *Metrics) RegisterDB(name string, db *sql.DB) error {
	if err := m.reg.Register(collectors.NewDBStatsCollector(db, name)); err != nil {
		return fmt.Errorf("registering the %s pool metrics: %w", name, err)
	}
	return nil
}

// RegisterPending exports phivault_audit_log_pending_records, the audit
// records appended but not yet integrated into the transparency log
// (the integration lag), read by count at each scrape within
// scrapeTimeout. A failed count leaves the metric out of that scrape.
func (m *Metrics) RegisterPending(count func(ctx context.Context) (int64, error)) error {
	if err := m.reg.Register(pendingCollector{count: count, desc: pendingDesc}); err != nil {
		return fmt.Errorf("registering the audit log lag metric: %w", err)
	}
	return nil
}

var pendingDesc = prometheus.NewDesc(namespace+"_audit_log_pending_records",
	"Audit records appended but not yet integrated into the signed transparency log.", nil, nil)

// pendingCollector reads the pending count at scrape time.
type pendingCollector struct {
	count func(ctx context.Context) (int64, error)
	desc  *prometheus.Desc
}

func (c pendingCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c pendingCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), scrapeTimeout)
	defer cancel()
	n, err := c.count(ctx)
	if err != nil {
		return // absent from this scrape; the database metrics show why
	}
	ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, float64(n))
}
