package cli

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/phivault/phivault/internal/app"
	"github.com/phivault/phivault/internal/config"
	"github.com/phivault/phivault/internal/identity"
)

func (e *env) serveCmd() *cobra.Command {
	var o config.Overrides
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Serve the FHIR API over HTTPS",
		Long: `serve runs the HTTPS server until interrupted. On a terminal (or with
--log-format=text) it first prints where it listens and what to do next:
the URLs of the web UI and the FHIR API, the CA to trust when the
certificate is the self-signed one of "phivault init", and how to let the
first administrator sign in when none can yet. The log goes to stderr:
compact text lines on a terminal, JSON lines otherwise.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := e.loadConfig(o)
			if err != nil {
				return err
			}
			return e.serve(cmd.Context(), c, "serve", func(a *app.App, addr string) {
				if e.logFormatFor(c.Logging.Format) == config.LogFormatText {
					e.printServing(cmd.Context(), a, addr)
				}
			})
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.Listen, "listen", "", "address to listen on (overrides server.listen)")
	f.StringVar(&o.PostgresURL, "postgres", "", "PostgreSQL URL (overrides storage; prefer PGPASSWORD for the password)")
	f.StringVar(&o.BaseURL, "base-url", "", "public base URL (overrides server.base_url)")
	return cmd
}

// serve runs the server until ctx ends. started, if set, is called with
// the opened instance and the bound address once the server accepts
// requests and its background work has started (so that what it prints
// comes after the start-up log lines).
//
// It holds the data directory shared (ADR 0037): a direct import is
// refused while it serves, and it is refused while one runs.
func (e *env) serve(ctx context.Context, c config.Config, command string, started func(a *app.App, addr string)) error {
	c.Logging.Format = e.logFormatFor(c.Logging.Format)
	log, flush := app.NewLogger(e.stderr, c.Logging)
	defer flush(context.WithoutCancel(ctx))
	a, err := app.Open(ctx, c, log, app.HoldingDataDir(false, command))
	if err != nil {
		return err
	}
	defer a.Close()
	var up func(string)
	if started != nil {
		up = func(addr string) { started(a, addr) }
	}
	return a.Serve(ctx, up)
}

// baseURL is where clients reach the server: server.base_url, unless
// that names this host on another port than the one bound (a --listen
// override, or port 0), else the scheme and the bound address
// (localhost for a wildcard address).
func baseURL(c config.Config, addr string) string {
	scheme := "https"
	if c.Server.Insecure {
		scheme = "http"
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return scheme + "://" + addr
	}
	if b, err := url.Parse(c.Server.BaseURL); err == nil && b.Host != "" {
		if !isLocalHost(b.Hostname()) || b.Port() == port {
			return strings.TrimSuffix(c.Server.BaseURL, "/")
		}
	}
	if ip := net.ParseIP(host); ip == nil || ip.IsUnspecified() || ip.IsLoopback() {
		host = "localhost"
	}
	return scheme + "://" + net.JoinHostPort(host, port)
}

func isLocalHost(h string) bool {
	if h == "localhost" {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

// localCA returns the CA certificate "phivault init" made when the
// server's certificate is the one it issued (DATA/tls/), else "".
func localCA(c config.Config) string {
	ca := filepath.Join(c.DataDir, "tls", "ca.crt")
	if c.Server.Insecure || !fileExists(ca) {
		return ""
	}
	if filepath.Clean(filepath.Dir(c.Server.TLSCert)) != filepath.Dir(ca) {
		return ""
	}
	return ca
}

// printServing tells the person at the terminal where the server listens
// and what to do next.
func (e *env) printServing(ctx context.Context, a *app.App, addr string) {
	c := a.Config
	base := baseURL(c, addr)
	fmt.Fprintf(e.stdout, "\nphivault is serving %s  (listening on %s; data: %s)\n\n", base, addr, c.DataDir)
	fmt.Fprintf(e.stdout, "  Web UI          %s/\n", base)
	fmt.Fprintf(e.stdout, "  FHIR API        %s/fhir   (CapabilityStatement: %s/fhir/metadata)\n", base, base)
	if ca := localCA(c); ca != "" {
		fmt.Fprintf(e.stdout, "  TLS CA          %s   (self-signed: trust it in the browser; curl and phivault take --cacert %s)\n", ca, ca)
	}
	if c.Storage.Driver == "postgres" {
		fmt.Fprintf(e.stdout, "  Storage         PostgreSQL\n")
	}
	if next := e.firstAdminHint(ctx, a); next != "" {
		fmt.Fprintf(e.stdout, "\n%s\n", next)
	}
	fmt.Fprintf(e.stdout, "\nRequests are logged to stderr. Press Ctrl-C to stop.\n")
}

// firstAdminHint says how to let a security administrator sign in when
// none can yet (none exists, or none has set a password), else "".
func (e *env) firstAdminHint(ctx context.Context, a *app.App) string {
	acc, err := a.Accounts()
	if err != nil {
		return ""
	}
	var pending []string
	after := ""
	for {
		us, err := acc.Directory().List(ctx, after, identity.MaxPage)
		if err != nil {
			return ""
		}
		for _, u := range us {
			if u.Disabled || !u.HasRole(identity.RoleSecurityAdmin) {
				continue
			}
			if u.PasswordHash != "" {
				return ""
			}
			pending = append(pending, u.Username)
		}
		if len(us) < identity.MaxPage {
			break
		}
		after = us[len(us)-1].Username
	}
	data := a.Config.DataDir
	if len(pending) == 0 {
		return fmt.Sprintf(`No security administrator can sign in: create one from this host with
  phivault user add NAME --roles security-admin --break-glass --data %s
then set its password with the enrolment secret it prints:
  phivault user set-password --enrolment-secret-file FILE NAME --data %s`, data, data)
	}
	return fmt.Sprintf(`No security administrator has a password yet. Set the password of %q with
the one-time enrolment secret "phivault init" printed (saved in FILE):
  phivault user set-password --enrolment-secret-file FILE %s --data %s
(or POST /auth/enrol); a second factor is enrolled at the first sign-in.
If the secret has expired, create another administrator:
  phivault user add NAME --roles security-admin --break-glass --data %s`, pending[0], pending[0], data, data)
}
