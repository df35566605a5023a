package cli

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/phivault/phivault/internal/authn/smart"
	"github.com/phivault/phivault/internal/authn/smart/scope"
)

func (e *env) clientCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "client", Short: "Register SMART on FHIR clients"}
	var jwksFile, jwksURL, scopes, purpose string
	var public, breakGlass bool
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
(--scope "openid fhirUser launch/patient offline_access patient/*.rs").

A client whose grants reach patient data (every app, and every backend
service but one that only reads terminology and conformance resources)
needs a second security administrator's approval (two-person rule): register
it in the console, where another security admin approves it. The offline
CLI registers such a client only with --break-glass, which makes it usable
at once and raises an alert for the privacy officer: it is meant for an
operator who holds the key file and the data directory.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			set, err := scope.ParseSet(scopes)
			if err != nil {
				return fmt.Errorf("--scope: %w", err)
			}
			app := public || len(redirects) > 0
			if app && purpose != "" {
				return errors.New("--purpose: only backend clients have a purpose of use (an app acts for its user)")
			}
			if !smart.ValidPurpose(purpose) {
				return fmt.Errorf("--purpose: unknown purpose of use; one of %s", strings.Join(smart.Purposes, ", "))
			}
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
			ca := a.ClientAdmin()
			ctx := cmd.Context()
			// Without --break-glass, a client that needs approval is
			// refused (smart.ErrRequester: the CLI is no administrator's
			// account) after its registration is validated.
			var id string
			switch {
			case app && breakGlass:
				id, err = ca.RegisterAppBreakGlass(ctx, cliAgent(), smart.AppRegistration{Name: args[0], Public: public, JWKS: jwks,
					JWKSURL: jwksURL, RedirectURIs: redirects, Scopes: set})
			case app:
				id, err = ca.RegisterApp(ctx, cliAgent(), smart.AppRegistration{Name: args[0], Public: public, JWKS: jwks,
					JWKSURL: jwksURL, RedirectURIs: redirects, Scopes: set})
			case breakGlass:
				id, err = ca.RegisterBackendBreakGlass(ctx, cliAgent(), smart.BackendRegistration{Name: args[0], JWKS: jwks, JWKSURL: jwksURL, Scopes: set, Purpose: purpose})
			default:
				id, err = ca.RegisterBackend(ctx, cliAgent(), smart.BackendRegistration{Name: args[0], JWKS: jwks, JWKSURL: jwksURL, Scopes: set, Purpose: purpose})
			}
			if errors.Is(err, smart.ErrRequester) {
				return errors.New("--break-glass: this client reaches patient data, so it needs a second security administrator's approval: register it in the console (SMART clients; another security admin approves it under Pending approvals), or pass --break-glass (an operator with the key file and the data directory; an alert is raised)")
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
	add.Flags().StringVar(&purpose, "purpose", "", "backend clients: the purpose of use of its bulk exports ("+strings.Join(smart.Purposes, ", ")+"); without it the client cannot use $export")
	add.Flags().StringVar(&scopes, "scope", "", "space-separated scopes the client may be granted")
	add.Flags().BoolVar(&public, "public", false, "an app without keys (PKCE only): browser and mobile apps")
	add.Flags().StringArrayVar(&redirects, "redirect-uri", nil, "an app's redirect URI, matched exactly (repeatable)")
	add.Flags().BoolVar(&breakGlass, "break-glass", false, "register a client that reaches patient data at once, outside the two-person rule; raises an alert (when no second administrator can approve in the console)")
	cmd.AddCommand(add)
	return cmd
}
