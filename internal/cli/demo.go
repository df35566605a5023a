package cli

import (
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"

	"github.com/phivault/phivault/internal/app"
	"github.com/phivault/phivault/internal/config"
	"github.com/phivault/phivault/internal/demo"
)

func (e *env) demoCmd() *cobra.Command {
	var patients int
	var listen string
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Create a demo data directory with synthetic patients and serve it",
		Long: `demo initialises a data directory (default ./phivault-demo) if it has none,
loads synthetic patients and creates demo accounts (one per workforce role,
with a password and an enrolled TOTP secret, and a patient account), starts
the HTTPS server and prints where to go, the accounts (with otpauth URIs and
QR codes for an authenticator app) and a fresh API token. The accounts are
kept in DATA/demo-accounts.txt (mode 0600). Run it again to serve the same
data.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if !cmd.Flags().Changed("data") && !cmd.Root().PersistentFlags().Changed("data") {
				e.dataDir = "./phivault-demo"
			}
			return e.runDemo(cmd, patients, listen)
		},
	}
	cmd.Flags().IntVar(&patients, "patients", 25, "synthetic patients to load on first start")
	cmd.Flags().StringVar(&listen, "listen", config.DefaultListen, "address to listen on")
	return cmd
}

func (e *env) runDemo(cmd *cobra.Command, patients int, listen string) error {
	ctx := cmd.Context()
	fresh := !fileExists(filepath.Join(e.dataDir, config.FileName))
	if fresh {
		fmt.Fprintf(e.stderr, "creating demo data directory %s\n", e.dataDir)
		if err := e.runInit(cmd, initOptions{dataDir: e.dataDir, listen: listen, quiet: true}); err != nil {
			return err
		}
	}
	c, err := e.loadConfig(config.Overrides{Listen: listen})
	if err != nil {
		return err
	}
	release, err := app.HoldDataDir(c, false, "demo")
	if err != nil {
		return err
	}
	defer release()
	if fresh {
		bar := progressbar.NewOptions(patients+1, progressbar.OptionSetWriter(e.stderr), progressbar.OptionSetDescription("loading synthetic patients"),
			progressbar.OptionShowCount(), progressbar.OptionThrottle(100*time.Millisecond), progressbar.OptionOnCompletion(func() { fmt.Fprintln(e.stderr) }))
		accs, err := app.SeedDemo(ctx, c, e.logger(), patients, func() { _ = bar.Add(1) })
		if err != nil {
			return err
		}
		_ = bar.Finish()
		if err := demo.WriteAccounts(e.dataDir, accs); err != nil {
			return err
		}
	}
	accs, err := demo.ReadAccounts(e.dataDir)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	a, err := app.Open(ctx, c, e.logger())
	if err != nil {
		return err
	}
	secret, err := a.Tokens().Create(ctx, "demo", []string{"system"})
	a.Close()
	if err != nil {
		return err
	}
	return e.serve(ctx, c, "demo", func(_ *app.App, addr string) {
		base := baseURL(c, addr)
		// The accounts and their QR codes first, the summary last: it is
		// what a person sees when the start-up is done.
		if len(accs) > 0 {
			_ = demo.PrintAccounts(e.stdout, accs, filepath.Join(e.dataDir, demo.AccountsFile))
		}
		ca := filepath.Join(e.dataDir, "tls", "ca.crt")
		fmt.Fprintf(e.stdout, `
phivault demo is running at %s  (data: %s)

  Web UI          %s/   (sign in with a demo account above and its TOTP code)
  FHIR API        %s/fhir   (CapabilityStatement: %s/fhir/metadata)
  TLS CA          %s
  API token       %s

Try:
  curl --cacert %s -H "Authorization: Bearer %s" "%s/fhir/Patient?_count=5"

Requests are logged to stderr. Press Ctrl-C to stop.
`, base, e.dataDir, base, base, base, ca, secret.Reveal(), ca, secret.Reveal(), base)
	})
}
