package cli

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"github.com/phivault/phivault/internal/app"
	"github.com/phivault/phivault/internal/config"
	"github.com/phivault/phivault/internal/httpapi"
	"github.com/phivault/phivault/internal/throttle"
)

// shutdownTimeout bounds the drain of in-flight requests at shutdown.
// The other timeouts and limits of the server are configuration
// (config: timeouts.*, limits.*; docs/operations.md).
const shutdownTimeout = 30 * time.Second

func (e *env) serveCmd() *cobra.Command {
	var o config.Overrides
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Serve the FHIR API over HTTPS",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := e.loadConfig(o)
			if err != nil {
				return err
			}
			return e.serve(cmd.Context(), c, nil)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.Listen, "listen", "", "address to listen on (overrides server.listen)")
	f.StringVar(&o.PostgresURL, "postgres", "", "PostgreSQL URL (overrides storage; prefer PGPASSWORD for the password)")
	f.StringVar(&o.BaseURL, "base-url", "", "public base URL (overrides server.base_url)")
	return cmd
}

// serve runs the server until ctx ends. started, if set, is called with
// the bound address once the listener is open.
func (e *env) serve(ctx context.Context, c config.Config, started func(addr string)) error {
	// Repeated warnings and errors are capped (package throttle): an
	// outage must not write a line per request and per retry.
	th := throttle.New(slog.NewJSONHandler(e.stderr, &slog.HandlerOptions{Level: slog.LevelInfo}),
		throttle.Options{Repeats: c.Logging.Repeats, Interval: c.Logging.Interval.D()})
	defer th.Flush(context.WithoutCancel(ctx))
	log := slog.New(th)
	a, err := app.Open(ctx, c, log)
	if err != nil {
		return err
	}
	defer a.Close()
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
			return fmt.Errorf("loading TLS certificate (server.tls_cert, server.tls_key): %w", err)
		}
		// TLS 1.3 preferred, nothing below 1.2 (DESIGN §2); Go's default
		// TLS 1.2 suites are AEAD-only with forward secrecy.
		srv.TLSConfig = &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{cert}}
		scheme = "https"
	}
	log.Info("serving", slog.String("address", ln.Addr().String()), slog.String("scheme", scheme), slog.Any("storage", c.Storage))
	if started != nil {
		started(ln.Addr().String())
	}
	stopExport, err := e.startExport(ctx, a, log)
	if err != nil {
		return err
	}
	defer stopExport()
	errc := make(chan error, 1)
	go func() {
		if scheme == "https" {
			errc <- srv.ServeTLS(ln, "", "")
		} else {
			errc <- srv.Serve(ln)
		}
	}()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	// Shutdown order: stop accepting, let in-flight requests finish (their
	// audit records commit), then app.Close drains the audit batcher and
	// closes the database.
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

// startExport runs the reports of refused attempts, the audit index
// follower, the pruning of dead authentication state, the daily
// verification of the audit log, and one exporter per configured SIEM
// sink until the
// returned stop function is called (after the HTTP server has drained;
// the last requests' events are exported on the next start).
func (e *env) startExport(ctx context.Context, a *app.App, log *slog.Logger) (stop func(), err error) {
	xs, err := a.Exporters("")
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(5)
	go func() {
		defer wg.Done()
		a.RunAttemptReports(ctx)
	}()
	go func() {
		defer wg.Done()
		a.RunAuditIndex(ctx)
	}()
	go func() {
		defer wg.Done()
		a.KeyLifecycle().RunKEKEpochs(ctx)
	}()
	go func() {
		defer wg.Done()
		a.RunPrune(ctx)
	}()
	go func() {
		defer wg.Done()
		a.RunLogVerification(ctx)
	}()
	for _, x := range xs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = x.Run(ctx)
		}()
		log.Info("exporting the audit log", slog.String("sink", x.Sink().Name()))
	}
	return func() {
		cancel()
		wg.Wait()
		for _, x := range xs {
			x.Sink().Close()
		}
	}, nil
}
