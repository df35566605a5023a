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
	var public bool
	var redirects []string
	add := &cobra.Command{
		Use:   "add NAME",
		Short: "Register a SMART client (backend service or app) and print its client_id",
		Long: `add registers a SMART on FHIR client and prints its client_id.

A backend service (SMART Backend Services) authenticates with private_key_jwt
(RS384 or ES384) at /oauth2/token. Give its public keys as a JWK Set file
(--jwks) or an https URL where it publishes them (--jwks-url), and the
system/ scopes it may be granted (--scope "system/Patient.rs system/Observation.rs").

An app (SMART App Launch) is registered with one or more --redirect-uri,
matched exactly at /oauth2/authorize. With --public it holds no secret and
proves itself with PKCE only (browser and mobile apps); without, it is a
confidential client that authenticates with private_key_jwt (--jwks or
--jwks-url). Its scopes are patient/ and user/ scopes plus openid, fhirUser,
launch/patient, offline_access and online_access
(--scope "openid fhirUser launch/patient offline_access patient/*.rs").`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			set, err := scope.ParseSet(scopes)
			if err != nil {
				return fmt.Errorf("--scope: %w", err)
			}
			app := public || len(redirects) > 0
			if app && len(redirects) == 0 {
				return fmt.Errorf("--redirect-uri: an app needs at least one")
			}
			if public && (jwksFile != "" || jwksURL != "") {
				return fmt.Errorf("--public: a public app has no keys; drop --jwks and --jwks-url")
			}
			if !public && (jwksFile == "") == (jwksURL == "") {
				return fmt.Errorf("--jwks or --jwks-url: give exactly one (or --public for an app without keys)")
			}
			var jwks []byte
			if jwksFile != "" {
				if jwks, err = os.ReadFile(jwksFile); err != nil {
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
			var id string
			if app {
				id, err = r.RegisterApp(cmd.Context(), smart.AppRegistration{Name: args[0], Public: public, JWKS: jwks,
					JWKSURL: jwksURL, RedirectURIs: redirects, Scopes: set})
			} else {
				id, err = r.RegisterBackend(cmd.Context(), smart.BackendRegistration{Name: args[0], JWKS: jwks, JWKSURL: jwksURL, Scopes: set})
			}
			if err != nil {
				return err
			}
			fmt.Fprintln(e.stdout, id)
			return nil
		},
	}
	add.Flags().StringVar(&jwksFile, "jwks", "", "file holding the client's public JWK Set")
	add.Flags().StringVar(&jwksURL, "jwks-url", "", "https URL of the client's public JWK Set")
	add.Flags().StringVar(&scopes, "scope", "", "space-separated scopes the client may be granted")
	add.Flags().BoolVar(&public, "public", false, "an app without keys (PKCE only): browser and mobile apps")
	add.Flags().StringArrayVar(&redirects, "redirect-uri", nil, "an app's redirect URI, matched exactly (repeatable)")
	cmd.AddCommand(add)
	return cmd
}
