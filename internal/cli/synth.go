package cli

import (
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"

	"github.com/phivault/phivault/internal/synth"
)

func (e *env) synthCmd() *cobra.Command {
	var (
		patients int
		seed     int64
		out      string
	)
	cmd := &cobra.Command{
		Use:   "synth",
		Short: "Generate realistic synthetic patients as FHIR Bundles (deterministic)",
		Long: `synth writes one batch Bundle of organisations, locations and practitioners
(0000000-shared.json) and one transaction Bundle per patient into --out. The same
--seed always gives the same files. Load them with "phivault import DIR".`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if patients < 1 || patients > synth.MaxPatients {
				return fmt.Errorf("--patients must be between 1 and %d", synth.MaxPatients)
			}
			if err := os.MkdirAll(out, 0o755); err != nil {
				return fmt.Errorf("creating --out: %w", err)
			}
			bar := progressbar.NewOptions(patients+1, progressbar.OptionSetWriter(e.stderr),
				progressbar.OptionSetDescription("generating"), progressbar.OptionShowCount(),
				progressbar.OptionThrottle(100*time.Millisecond),
				progressbar.OptionOnCompletion(func() { fmt.Fprintln(e.stderr) }))
			err := synth.Generate(cmd.Context(), synth.Options{Patients: patients, Seed: seed, Start: synth.DefaultStart},
				func(name string, bundle []byte) error {
					_ = bar.Add(1)
					return os.WriteFile(filepath.Join(out, name), bundle, 0o644)
				})
			if err != nil {
				return err
			}
			_ = bar.Finish()
			fmt.Fprintf(e.stdout, "wrote %d patients to %s\n", patients, out)
			return nil
		},
	}
	f := cmd.Flags()
	f.IntVar(&patients, "patients", 10, "number of patients")
	f.Int64Var(&seed, "seed", 1, "random seed")
	f.StringVar(&out, "out", "synth-data", "output directory")
	cmd.AddCommand(e.synthMonitorCmd())
	return cmd
}
