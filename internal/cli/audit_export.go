package cli

import (
	"fmt"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"
)

// auditExportCmd drains the audit log to the configured SIEM sinks once
// and exits; "phivault serve" runs the same export continuously.
func (e *env) auditExportCmd() *cobra.Command {
	var only string
	cmd := &cobra.Command{
		Use:   "export",
		Short: "Send the audit events not yet exported to the configured SIEM sinks, then exit",
		Long: `Reads the audit log from each sink's cursor, redacts the fields the sink's
"redact" option names, sends the events (JSON lines, syslog over TLS or a
signed webhook) and advances the cursor only after the sink accepted them.
"phivault serve" does the same continuously; this command catches a sink up
by hand, for example after an outage.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			a, err := e.openApp(cmd)
			if err != nil {
				return err
			}
			defer a.Close()
			xs, err := a.Exporters(only)
			if err != nil {
				return err
			}
			if len(xs) == 0 {
				fmt.Fprintln(e.stdout, `no export sinks are configured (the "export" section of phivault.json)`)
				return nil
			}
			var firstErr error
			for _, x := range xs {
				name := x.Sink().Name()
				bar := progressbar.NewOptions64(-1, progressbar.OptionSetWriter(e.stderr),
					progressbar.OptionSetDescription("exporting to "+name), progressbar.OptionShowCount(),
					progressbar.OptionSetItsString("events"), progressbar.OptionShowIts(),
					progressbar.OptionThrottle(100*time.Millisecond))
				n, err := x.Drain(cmd.Context(), func(total int64) { _ = bar.Set64(total) })
				_ = bar.Finish()
				fmt.Fprintln(e.stderr)
				x.Sink().Close()
				if err != nil {
					fmt.Fprintf(e.stdout, "%s: %d events exported, then failed: %v\n", name, n, err)
					if firstErr == nil {
						firstErr = fmt.Errorf("export to %s failed", name)
					}
					continue
				}
				fmt.Fprintf(e.stdout, "%s: %d events exported; the sink is up to date\n", name, n)
			}
			return firstErr
		},
	}
	cmd.Flags().StringVar(&only, "sink", "", "export to this sink only (its name in the configuration)")
	return cmd
}
