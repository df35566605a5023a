package cli

import (
	"fmt"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"
)

func (e *env) verifyCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "verify",
		Short: "Open every stored version, check its integrity, and name tampered rows",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			a, err := e.openApp(cmd)
			if err != nil {
				return err
			}
			defer a.Close()
			bar := progressbar.NewOptions64(-1, progressbar.OptionSetWriter(e.stderr),
				progressbar.OptionSetDescription("verifying versions"), progressbar.OptionShowCount(), progressbar.OptionShowIts())
			r, err := a.Verify(cmd.Context(), func() { _ = bar.Add(1) })
			_ = bar.Finish()
			fmt.Fprintln(e.stderr)
			if err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "versions %d: %d verified, %d delete markers, %d of erased patients\n", r.Versions, r.Opened, r.Deleted, r.Erased)
			for _, p := range r.Problems {
				fmt.Fprintf(e.stdout, "TAMPERED %s: %s\n", p.Ref, p.Reason)
			}
			if len(r.Problems) > 0 {
				return fmt.Errorf("verification failed: %d problem(s)", len(r.Problems))
			}
			fmt.Fprintln(e.stdout, "OK: every stored version opened and matched its row")
			return nil
		},
	}
}
