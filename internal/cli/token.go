package cli

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"
)

func (e *env) tokenCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "token", Short: "Manage API tokens for service accounts"}
	var roles string
	create := &cobra.Command{
		Use:   "create NAME",
		Short: "Create an API token and print it once",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			a, err := e.openApp(cmd)
			if err != nil {
				return err
			}
			defer a.Close()
			secret, err := a.CreateToken(cmd.Context(), args[0], strings.Split(roles, ","))
			if err != nil {
				return err
			}
			fmt.Fprintln(e.stdout, secret.Reveal())
			return nil
		},
	}
	create.Flags().StringVar(&roles, "roles", "system", "comma-separated roles")
	cmd.AddCommand(create)
	return cmd
}
