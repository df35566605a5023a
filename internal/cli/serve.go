package cli

import (
	"context"

	"github.com/spf13/cobra"

	"github.com/phivault/phivault/internal/app"
	"github.com/phivault/phivault/internal/config"
)

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
	log, flush := app.NewLogger(e.stderr, c.Logging)
	defer flush(context.WithoutCancel(ctx))
	a, err := app.Open(ctx, c, log)
	if err != nil {
		return err
	}
	defer a.Close()
	return a.Serve(ctx, started)
}
