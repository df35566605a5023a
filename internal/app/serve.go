package app

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/phivault/phivault/internal/config"
	"github.com/phivault/phivault/internal/httpapi"
	"github.com/phivault/phivault/internal/throttle"
)

// shutdownTimeout bounds the drain of in-flight requests at shutdown.
// The other timeouts and limits of the server are configuration
// (config: timeouts.*, limits.*; docs/operations.md).
const shutdownTimeout = 30 * time.Second

// NewLogger returns the server's logger, lines to w in c.Format (JSON
// unless it is "text"; the caller resolves "auto", knowing whether w is a
// terminal), with repeated warnings and errors capped (package
// throttle): an outage must not write a line per request and per retry.
// flush reports what was suppressed; call it at exit.
func NewLogger(w io.Writer, c config.Logging) (log *slog.Logger, flush func(context.Context)) {
	th := throttle.New(LogHandler(w, c.Format), throttle.Options{Repeats: c.Repeats, Interval: c.Interval.D()})
	return slog.New(th), func(ctx context.Context) { th.Flush(ctx) }
}

// LogHandler is the handler of every phivault log: JSON lines, or with
// format "text" compact key=value lines for a person at a terminal, the
// time of day first ("15:04:05.000 INFO request method=GET ...").
func LogHandler(w io.Writer, format string) slog.Handler {
	o := &slog.HandlerOptions{Level: slog.LevelInfo}
	if format != config.LogFormatText {
		return slog.NewJSONHandler(w, o)
	}
	o.ReplaceAttr = func(groups []string, a slog.Attr) slog.Attr {
		if len(groups) == 0 && a.Key == slog.TimeKey && a.Value.Kind() == slog.KindTime {
			return slog.String(slog.TimeKey, a.Value.Time().Format("15:04:05.000"))
		}
		return a
	}
	return slog.NewTextHandler(w, o)
}

// Serve opens the configuration's listener and serves this instance
// until ctx ends, with the background work of its components (see
// runBackground). started, if set, is called with the bound address once
// the server accepts requests and the background work has started (what
// it prints comes after the start-up log). Shutdown stops accepting,
// lets in-flight requests finish (their audit records commit), then
// stops the background work; the caller's Close drains the audit batcher
// and closes the database.
func (a *App) Serve(ctx context.Context, started func(addr string)) error {
	c, log := a.Config, a.logger
	ln, err := net.Listen("tcp", c.Server.Listen)
	if err != nil {
		return fmt.Errorf("listening on %s (server.listen): %w", c.Server.Listen, err)
	}
	lim := httpapi.LimitListener(ln, httpapi.ConnLimits{Max: c.Limits.MaxConnections, PerAddress: c.Limits.MaxConnectionsPerAddress, Logger: log})
	ln = lim
	srv := httpapi.NewHTTPServer(a.Handler(), httpapi.ServerOptions{
		ReadHeader: c.Timeouts.ReadHeader.D(), Idle: c.Timeouts.Idle.D(), Write: c.Timeouts.Write.D(), Logger: log, Conns: lim,
	})
	scheme := "http"
	if !c.Server.Insecure {
		cert, err := tls.LoadX509KeyPair(c.Server.TLSCert, c.Server.TLSKey)
		if err != nil {
			ln.Close()
			return fmt.Errorf("loading TLS certificate (server.tls_cert, server.tls_key): %w", err)
		}
		// TLS 1.3 preferred, nothing below 1.2 (DESIGN §2); Go's default
		// TLS 1.2 suites are AEAD-only with forward secrecy.
		srv.TLSConfig = &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{cert}}
		scheme = "https"
	}
	log.Info("serving", slog.String("address", ln.Addr().String()), slog.String("scheme", scheme), slog.Any("storage", c.Storage))
	stop, err := a.runBackground(ctx)
	if err != nil {
		ln.Close()
		return err
	}
	defer stop()
	side, err := a.StartSideListeners()
	if err != nil {
		ln.Close()
		return err
	}
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
		defer cancel()
		_ = side.Close(sctx)
	}()
	errc := make(chan error, 1)
	go func() {
		if scheme == "https" {
			errc <- srv.ServeTLS(ln, "", "")
		} else {
			errc <- srv.Serve(ln)
		}
	}()
	if started != nil {
		started(ln.Addr().String())
	}
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	log.Info("shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return fmt.Errorf("shutting down: %w", err)
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// runBackground starts the loops the components own: the authorization
// change feed (ADR 0043), the reports of
// refused attempts, the audit index follower and its pruning of dead
// authentication state, the KEK epochs that finish erasures, the daily
// verification of the audit log, the delivery of FHIR Subscriptions, the
// privacy monitor of the own log (one process of a fleet leads it), the
// backup schedule and its restore drills (one process leads it too), and
// one exporter per configured SIEM sink, until the returned stop function is called (after the HTTP
// server has drained; the last requests' events are exported on the
// next start).
func (a *App) runBackground(ctx context.Context) (stop func(), err error) {
	xs, err := a.Exporters("")
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	loops := []func(context.Context){
		a.attempts.Run,
		a.indexer.Run,
		a.keyLife.RunKEKEpochs,
		func(ctx context.Context) { a.db.RunPrune(ctx, a.logger) },
		a.tlog.RunVerification,
		a.subs.Run,
		a.RunBulk, // FHIR Bulk Data exports and their expiry (ADR 0049)
		a.WatchAuthz,
		a.compileSchema,
		a.RunOwnLogMonitor,
		a.RunBackups,
	}
	for _, run := range loops {
		wg.Add(1)
		go func() {
			defer wg.Done()
			run(ctx)
		}()
	}
	for _, x := range xs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = x.Run(ctx)
		}()
		a.logger.Info("exporting the audit log", slog.String("sink", x.Sink().Name()))
	}
	return func() {
		cancel()
		wg.Wait()
		for _, x := range xs {
			x.Sink().Close()
		}
	}, nil
}

// WatchAuthz polls the authorization change feed (ADR 0043) until ctx
// ends, so that this process sees the consent and patient writes of
// every other process on the database. Serve runs it.
func (a *App) WatchAuthz(ctx context.Context) { a.Authz.Watch(ctx, a.db, a.logger) }

// compileSchema compiles the FHIR R4 schema as the server starts, on a
// core the first requests may not need, instead of inside the first
// write (several seconds of CPU: the first transaction Bundles of a load
// waited for it).
func (a *App) compileSchema(ctx context.Context) {
	if err := a.validator.Compile(); err != nil && ctx.Err() == nil {
		a.logger.Error("compiling the FHIR R4 schema; writes will be refused", slog.Any("err", err))
	}
}
