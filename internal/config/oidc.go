package config

import (
	"log/slog"
)

// maxSecretFile bounds the client secret file read at start-up.
const maxSecretFile = 4 << 10

// OIDC is the "oidc" section: enterprise SSO through an OpenID Connect
// IdP (package oidc documents each option). Without the section, or
// with enabled false, SSO is off.
//
// The client secret is never read from this file or a flag (STYLE rule
// 23): it comes from the PHIVAULT_OIDC_CLIENT_SECRET environment
// variable or else from client_secret_file (mode 0600 or stricter), and
// it is not written back by [Write].
type OIDC struct {
	Enabled          bool              `json:"enabled"`
	Issuer           string            `json:"issuer"`             // PHIVAULT_OIDC_ISSUER
	ClientID         string            `json:"client_id"`          // PHIVAULT_OIDC_CLIENT_ID
	ClientSecretFile string            `json:"client_secret_file"` // relative to the data directory
	RedirectURL      string            `json:"redirect_url"`       // PHIVAULT_OIDC_REDIRECT_URL; https://<base>/auth/oidc/callback
	Scopes           []string          `json:"scopes,omitempty"`
	GroupsClaim      string            `json:"groups_claim,omitempty"`
	RoleMap          map[string]string `json:"role_map"` // IdP group -> phivault role
	MFAValues        []string          `json:"mfa_values,omitempty"`
	ACRValues        []string          `json:"acr_values,omitempty"`
	// AutoProvision creates an account on a first sign-in; nil means
	// true. false: only identities already linked may sign in.
	AutoProvision *bool `json:"auto_provision,omitempty"`

	clientSecret string // from the environment or the file; never marshalled
}

// On reports whether SSO is configured and enabled (nil-safe).
func (o *OIDC) On() bool { return o != nil && o.Enabled }

// Provision reports whether a first sign-in creates an account.
func (o *OIDC) Provision() bool { return o.AutoProvision == nil || *o.AutoProvision }

// LogValue implements [slog.LogValuer]: the secret is never logged.
func (o OIDC) LogValue() slog.Value {
	secret := "unset"
	if o.clientSecret != "" {
		secret = "REDACTED"
	}
	return slog.GroupValue(
		slog.String("issuer", o.Issuer),
		slog.String("client_id", o.ClientID),
		slog.String("client_secret", secret),
		slog.String("redirect_url", o.RedirectURL),
		slog.Any("scopes", o.Scopes),
		slog.Int("role_map_entries", len(o.RoleMap)),
	)
}

// readSecret fills the client secret from the file when the environment
// did not (nil-safe; a disabled section reads nothing).
func (o *OIDC) readSecret() error {
	if !o.On() || o.clientSecret != "" || o.ClientSecretFile == "" {
		return nil
	}
	v, err := readSecretFile("oidc.client_secret_file", o.ClientSecretFile)
	if err != nil {
		return err
	}
	o.clientSecret = v
	return nil
}

// ClientSecret returns the client secret read from the environment or
// the secret file ("" when none).
func (o OIDC) ClientSecret() string { return o.clientSecret }

// SetClientSecret sets the client secret (tests and callers that build
// a Config without [Load]).
func (o *OIDC) SetClientSecret(secret string) { o.clientSecret = secret }
