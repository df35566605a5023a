package app

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/phivault/phivault/internal/audit/export"
	"github.com/phivault/phivault/internal/config"
)

// webhookTimeout bounds one webhook delivery.
const webhookTimeout = 30 * time.Second

// Exporters builds one SIEM exporter per sink of the "export" section,
// or only the named one when only is not empty. The caller runs them
// and closes their sinks.
func (a *App) Exporters(only string) ([]*export.Exporter, error) {
	sq := a.db
	var out []*export.Exporter
	closeAll := func() {
		for _, x := range out {
			x.Sink().Close()
		}
	}
	for _, sc := range a.Config.Export {
		if only != "" && sc.Name != only {
			continue
		}
		sink, err := openSink(sc)
		if err != nil {
			closeAll()
			return nil, err
		}
		red, err := export.NewRedaction(sc.Redact)
		if err != nil {
			sink.Close()
			closeAll()
			return nil, fmt.Errorf("export %s: %w", sc.Name, err)
		}
		x, err := export.New(export.Options{
			Sink: sink, Redact: red, Source: a.tlog.Reader(), Cursors: sq.ExportCursors(), Logger: a.logger,
		})
		if err != nil {
			sink.Close()
			closeAll()
			return nil, err
		}
		out = append(out, x)
	}
	if only != "" && len(out) == 0 {
		return nil, fmt.Errorf("no export sink named %q in the configuration", only)
	}
	return out, nil
}

// openSink builds the sink one configuration entry describes.
func openSink(sc config.ExportSink) (export.Sink, error) {
	switch sc.Type {
	case config.SinkJSONL:
		return export.OpenFile(sc.Name, sc.Path)
	case config.SinkSyslog:
		tc, err := syslogTLS(sc)
		if err != nil {
			return nil, err
		}
		return export.NewSyslog(sc.Name, export.SyslogOptions{Address: sc.Address, TLS: tc, Hostname: sc.Hostname})
	case config.SinkWebhook:
		return export.NewWebhook(sc.Name, export.WebhookOptions{
			URL: sc.URL, Secret: sc.Secret(), Client: &http.Client{Timeout: webhookTimeout},
		})
	}
	return nil, fmt.Errorf("export %s: unknown sink type %q", sc.Name, sc.Type)
}

// syslogTLS is the client TLS configuration of a syslog sink: the
// configured roots (or the system's), the server name to verify, and an
// optional client certificate.
func syslogTLS(sc config.ExportSink) (*tls.Config, error) {
	host, _, _ := net.SplitHostPort(sc.Address)
	tc := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: host}
	if sc.ServerName != "" {
		tc.ServerName = sc.ServerName
	}
	if sc.CAFile != "" {
		pem, err := os.ReadFile(sc.CAFile)
		if err != nil {
			return nil, fmt.Errorf("export %s: reading ca_file: %w", sc.Name, err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("export %s: ca_file holds no PEM certificate", sc.Name)
		}
		tc.RootCAs = pool
	}
	if sc.ClientCert != "" {
		cert, err := tls.LoadX509KeyPair(sc.ClientCert, sc.ClientKey)
		if err != nil {
			return nil, fmt.Errorf("export %s: loading client_cert/client_key: %w", sc.Name, err)
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	return tc, nil
}
