package cli

import (
	"errors"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/phivault/phivault/internal/identity"
	"github.com/phivault/phivault/internal/identity/account"
)

func (e *env) tokenCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "token", Short: "Manage API tokens for service accounts"}
	var roles string
	var breakGlass bool
	create := &cobra.Command{
		Use:   "create NAME",
		Short: "Create an API token and print it once",
		Long: `create issues an API token for a service account with --roles and prints it
once.

A token whose roles reach patient data (system, the clinical roles, front
desk, billing, privacy officer, auditor, patient) or make a security admin is a
grant outside the two-person rule (ADR 0018, ADR 0020): the offline CLI issues
it only with --break-glass, which records it in the audit log and raises an
alert for the privacy officer. It is meant for an operator who holds the key
file and the data directory. Prefer a SMART Backend Services client approved
in the console ("phivault client add"). A token whose roles reach no patient
data (researcher) needs no --break-glass. The admin token "init" prints is the
bootstrap.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			rs := strings.Split(roles, ",")
			for i := range rs {
				rs[i] = strings.TrimSpace(rs[i])
				if _, err := identity.ParseRole(rs[i]); err != nil {
					return fmt.Errorf("--roles: %q: %w", rs[i], err)
				}
			}
			a, err := e.openApp(cmd)
			if err != nil {
				return err
			}
			defer a.Close()
			secret, err := a.Tokens().CreateOffline(cmd.Context(), cliAgent(), args[0], rs, breakGlass)
			if errors.Is(err, account.ErrTokenBreakGlass) {
				return errors.New("--break-glass: a token with these roles reaches patient data (or administers accounts), which needs a second security administrator's approval: register a SMART Backend Services client in the console instead, or pass --break-glass (an operator with the key file and the data directory; audited, and an alert is raised)")
			}
			if err != nil {
				return err
			}
			fmt.Fprintln(e.stdout, secret.Reveal())
			return nil
		},
	}
	create.Flags().StringVar(&roles, "roles", "system", "comma-separated roles")
	create.Flags().BoolVar(&breakGlass, "break-glass", false, "issue a token whose roles reach patient data outside the two-person rule; audited, raises an alert")
	cmd.AddCommand(create)
	return cmd
}
