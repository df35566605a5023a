package cli

import (
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/phivault/phivault/internal/monitor/scenario"
)

// synthMonitorCmd writes a monitoring scenario: a hospital's context
// Bundle, its access log with injected misuse, and the ground truth.
func (e *env) synthMonitorCmd() *cobra.Command {
	var (
		size string
		seed int64
		days int
		out  string
	)
	cmd := &cobra.Command{
		Use:   "monitor",
		Short: "Generate a hospital access log with injected misuse, for privacy monitoring (deterministic)",
		Long: `synth monitor writes into --out the files another system would hand over:
context.json (a FHIR R4 Bundle: departments, staff with rosters, patients,
encounters, care teams, orders, accounts), events.ndjson (FHIR AuditEvent
NDJSON in the IHE BALP shape) and truth.tsv (the injected misuse: user,
patient, category, address). The same --size and --seed always give the same
files. Feed them to "phivault monitor ingest"; bench/monitoreval scores them.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			o, err := scenario.Size(size, seed)
			if err != nil {
				return err
			}
			if days != 0 {
				o.Days = days
			}
			s, err := scenario.New(o)
			if err != nil {
				return err
			}
			if err := os.MkdirAll(out, 0o755); err != nil {
				return fmt.Errorf("creating --out: %w", err)
			}
			var n int64
			for _, f := range []struct {
				name  string
				write func(io.Writer) error
			}{
				{"context.json", s.WriteContext},
				{"events.ndjson", func(w io.Writer) (err error) { n, err = s.WriteEvents(w); return err }},
				{"truth.tsv", s.WriteTruth},
			} {
				if err := writeSynthFile(filepath.Join(out, f.name), f.write); err != nil {
					return err
				}
			}
			fmt.Fprintf(e.stdout, "wrote %d events and %d truth rows to %s\n", n, len(s.Truth()), out)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&size, "size", "small", "small, medium or large")
	f.Int64Var(&seed, "seed", 1, "random seed")
	f.IntVar(&days, "days", 0, "days of log (default: the size's)")
	f.StringVar(&out, "out", "synth-monitor", "output directory")
	return cmd
}

func writeSynthFile(path string, write func(io.Writer) error) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("creating %s: %w", path, err)
	}
	if err := write(f); err != nil {
		f.Close()
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return f.Close()
}
