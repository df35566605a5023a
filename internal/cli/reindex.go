package cli

import (
	"fmt"

	"github.com/spf13/cobra"
)

func (e *env) reindexCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "reindex",
		Short: "Recompute the search and authorization index rows of every resource",
		Long: `reindex decrypts every current resource and rewrites its index rows. Run it
once after upgrading to a version that indexes more (authorization: CareTeam and
Encounter participants, security labels; search: number, quantity, uri, composite
and meta parameters, token :text, :of-type and system keys); until then
relationships in older data are not found (access is denied, not granted), nor are
older resources by the newer search parameters. Audited; safe while serving.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			a, err := e.openApp(cmd)
			if err != nil {
				return err
			}
			defer a.Close()
			n, err := a.Operator("").Reindex(cmd.Context(), func(n int64) { fmt.Fprintf(e.stderr, "reindexed %d resources\n", n) })
			if err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "reindexed %d resources\n", n)
			return nil
		},
	}
}
