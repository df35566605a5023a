package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/phivault/phivault/internal/authn"
	"github.com/phivault/phivault/internal/config"
	"github.com/phivault/phivault/internal/identity"
	"github.com/phivault/phivault/internal/observe"
)

// Observability (ADR 0040, docs/observability.md): the metrics registry
// exists in every process (cheap, and nothing reads it unless /metrics
// is served); tracing only when configured. The domains get observers
// and counters through their own small interfaces; only this file and
// package observe know Prometheus and OpenTelemetry.

// Side listener timeouts. The pprof CPU profile and execution trace run
// for ?seconds (default 30) and net/http/pprof refuses a duration past
// the write timeout: 70 s allows a minute's profile.
const (
	sideReadHeaderTimeout = 5 * time.Second
	sideIdleTimeout       = 30 * time.Second
	sideWriteTimeout      = 70 * time.Second
	tracingStopTimeout    = 5 * time.Second
)

// WithSpanExporter turns tracing on with exp as the exporter (spans
// exported synchronously), whatever observability.tracing says: tests
// read the spans from an in-memory exporter.
func WithSpanExporter(exp sdktrace.SpanExporter) Option {
	return func(o *openOptions) { o.spans = exp }
}

// openObservability builds the metrics and, when configured, the
// tracing.
func openObservability(ctx context.Context, c config.Observability, oo openOptions) (*observe.Metrics, *observe.Tracing, error) {
	var tr *observe.Tracing
	if c.Tracing.OTLPEndpoint != "" || oo.spans != nil {
		var err error
		tr, err = observe.NewTracing(ctx, observe.TracingOptions{Endpoint: c.Tracing.OTLPEndpoint,
			SampleRatio: c.Tracing.SampleRatioOrDefault(), Version: Version, Exporter: oo.spans})
		if err != nil {
			return nil, nil, fmt.Errorf("opening tracing (observability.tracing): %w", err)
		}
	}
	o := observe.Options{Version: Version}
	if tr != nil {
		o.Tracer = tr.Tracer()
	}
	return observe.New(o), tr, nil
}

// registerMetrics exports what the opened components count: the cache
// statistics, the database pools and the audit log's integration lag.
func (a *App) registerMetrics() error {
	caches := map[string]observe.CacheStats{
		"api_token": observe.StatsFunc(a.auth.TokenCacheStats),
		"dek":       observe.StatsFunc(a.Keys.DEKCacheStats),
	}
	for name, c := range a.Authz.Caches() {
		caches[name] = c
	}
	var errs []error
	for name, c := range caches {
		errs = append(errs, a.metrics.RegisterCache(name, c))
	}
	for name, db := range a.db.Pools() {
		errs = append(errs, a.metrics.RegisterDB(name, db))
	}
	errs = append(errs, a.metrics.RegisterPending(a.tlog.Source().CountPending))
	errs = append(errs, a.metrics.RegisterBackup(a.backupFigures))
	return errors.Join(errs...)
}

// Metrics returns the application's metrics (registry, observers).
func (a *App) Metrics() *observe.Metrics { return a.metrics }

// metricsHandler is /metrics behind the metrics token, or nil without
// one (the main listener then answers 404).
func (a *App) metricsHandler() http.Handler {
	tok := a.Config.Observability.MetricsToken()
	if tok == "" {
		return nil
	}
	return observe.RequireToken(tok, a.metrics.Handler())
}

// allowProfiling admits a pprof request carrying an admin API token: a
// bearer token with the role security-admin or system (the roles
// /admin/api admits tokens with).
func (a *App) allowProfiling(r *http.Request) error {
	p, err := a.auth.Bearer(r.Context(), r.Header.Get("Authorization"))
	if err != nil {
		return fmt.Errorf("pprof: %w", err)
	}
	if !slices.Contains(p.Roles, string(identity.RoleSecurityAdmin)) && !slices.Contains(p.Roles, string(identity.RoleSystem)) {
		return fmt.Errorf("pprof: token %s lacks security-admin or system: %w", p.ID, authn.ErrUnauthenticated)
	}
	return nil
}

// SideListeners are the observability listeners beside the main one:
// /metrics (observability.metrics_listen) and pprof
// (observability.pprof_listen), each when configured. Plain HTTP.
type SideListeners struct {
	servers []*http.Server
	addrs   map[string]string
}

// StartSideListeners opens and serves the configured side listeners
// until Close. Serve calls it; tests call it to reach them.
func (a *App) StartSideListeners() (*SideListeners, error) {
	o := a.Config.Observability
	l := &SideListeners{addrs: map[string]string{}}
	if o.MetricsListen != "" {
		mux := http.NewServeMux()
		h := a.metrics.Handler()
		if tok := o.MetricsToken(); tok != "" {
			h = observe.RequireToken(tok, h)
		}
		mux.Handle("GET /metrics", h)
		if err := l.start("metrics", o.MetricsListen, mux, a.logger); err != nil {
			return nil, err
		}
		a.logger.Info("serving metrics", slog.String("address", l.addrs["metrics"]), slog.Bool("token", o.MetricsToken() != ""))
	}
	if o.PprofListen != "" {
		if err := l.start("pprof", o.PprofListen, observe.Profiler(a.allowProfiling, a.logger), a.logger); err != nil {
			_ = l.Close(context.Background())
			return nil, err
		}
		a.logger.Warn("pprof is ON: profiles at /debug/pprof/ for admin API tokens", slog.String("address", l.addrs["pprof"]))
	}
	return l, nil
}

func (l *SideListeners) start(name, addr string, h http.Handler, log *slog.Logger) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listening on %s (observability.%s_listen): %w", addr, name, err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: sideReadHeaderTimeout, IdleTimeout: sideIdleTimeout,
		WriteTimeout: sideWriteTimeout, ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}
	l.servers = append(l.servers, srv)
	l.addrs[name] = ln.Addr().String()
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("side listener failed", slog.String("listener", name), slog.String("error", err.Error()))
		}
	}()
	return nil
}

// MetricsAddr is the bound address of the metrics listener, or "".
func (l *SideListeners) MetricsAddr() string { return l.addrs["metrics"] }

// PprofAddr is the bound address of the pprof listener, or "".
func (l *SideListeners) PprofAddr() string { return l.addrs["pprof"] }

// Close stops the side listeners, letting in-flight requests finish
// until ctx ends.
func (l *SideListeners) Close(ctx context.Context) error {
	var errs []error
	for _, s := range l.servers {
		errs = append(errs, s.Shutdown(ctx))
	}
	return errors.Join(errs...)
}

// stopTracing flushes the spans still queued.
func (a *App) stopTracing() error {
	if a.tracing == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), tracingStopTimeout)
	defer cancel()
	return a.tracing.Shutdown(ctx)
}
