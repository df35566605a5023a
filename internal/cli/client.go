package cli

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/phivault/phivault/internal/authn/smart"
	"github.com/phivault/phivault/internal/authn/smart/scope"
)

func (e *env) clientCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "client", Short: "Register SMART on FHIR clients"}
	var jwksFile, jwksURL, scopes string
	add := &cobra.Command{
		Use:   "add NAME",
		Short: "Register a SMART Backend Services client and print its client_id",
		Long: `add registers a backend service that authenticates with private_key_jwt
(RS384 or ES384) at /oauth2/token. Give its public keys as a JWK Set file
(--jwks) or an https URL where it publishes them (--jwks-url), and the
system/ scopes it may be granted (--scope "system/Patient.rs system/Observation.rs").`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if (jwksFile == "") == (jwksURL == "") {
				return fmt.Errorf("--jwks or --jwks-url: give exactly one")
			}
			set, err := scope.ParseSet(scopes)
			if err != nil {
				return fmt.Errorf("--scope: %w", err)
			}
			reg := smart.BackendRegistration{Name: args[0], JWKSURL: jwksURL, Scopes: set}
			if jwksFile != "" {
				if reg.JWKS, err = os.ReadFile(jwksFile); err != nil {
					return fmt.Errorf("--jwks: %w", err)
				}
			}
			a, err := e.openApp(cmd)
			if err != nil {
				return err
			}
			defer a.Close()
			r, err := a.Clients()
			if err != nil {
				return err
			}
			id, err := r.RegisterBackend(cmd.Context(), reg)
			if err != nil {
				return err
			}
			fmt.Fprintln(e.stdout, id)
			return nil
		},
	}
	add.Flags().StringVar(&jwksFile, "jwks", "", "file holding the client's public JWK Set")
	add.Flags().StringVar(&jwksURL, "jwks-url", "", "https URL of the client's public JWK Set")
	add.Flags().StringVar(&scopes, "scope", "", "space-separated system/ scopes the client may be granted")
	cmd.AddCommand(add)
	return cmd
}
