package smart

import (
	"encoding/json"
	"net/http"

	"github.com/go-jose/go-jose/v4"
)

// Endpoint paths of App Launch and OpenID Connect.
const (
	AuthorizePath           = "/oauth2/authorize"
	JWKSPath                = "/oauth2/jwks"
	OpenIDConfigurationPath = "/.well-known/openid-configuration"
)

// Configuration is the /.well-known/smart-configuration document (SMART
// App Launch 2.0 §"SMART configuration"): only what this server does.
type Configuration struct {
	Issuer                            string   `json:"issuer,omitempty"`
	JWKSURI                           string   `json:"jwks_uri,omitempty"`
	AuthorizationEndpoint             string   `json:"authorization_endpoint,omitempty"`
	TokenEndpoint                     string   `json:"token_endpoint"`
	IntrospectionEndpoint             string   `json:"introspection_endpoint"`
	RevocationEndpoint                string   `json:"revocation_endpoint"`
	TokenEndpointAuthMethodsSupported []string `json:"token_endpoint_auth_methods_supported"`
	TokenEndpointAuthSigningAlgs      []string `json:"token_endpoint_auth_signing_alg_values_supported"`
	GrantTypesSupported               []string `json:"grant_types_supported"`
	ScopesSupported                   []string `json:"scopes_supported"`
	CodeChallengeMethodsSupported     []string `json:"code_challenge_methods_supported,omitempty"`
	ResponseTypesSupported            []string `json:"response_types_supported,omitempty"`
	Capabilities                      []string `json:"capabilities"`
}

// Configuration returns the discovery document.
func (s *Server) Configuration() Configuration {
	c := s.backendConfiguration()
	if s.opts.Launch == nil {
		return c
	}
	c.Issuer = s.Issuer()
	c.JWKSURI = s.endpoint(JWKSPath)
	c.AuthorizationEndpoint = s.endpoint(AuthorizePath)
	c.TokenEndpointAuthMethodsSupported = []string{"private_key_jwt", "none"}
	c.GrantTypesSupported = []string{"authorization_code", "refresh_token", "client_credentials"}
	c.CodeChallengeMethodsSupported = []string{"S256"}
	c.ResponseTypesSupported = []string{"code"}
	c.ScopesSupported = append([]string{"openid", "fhirUser", "launch/patient", "offline_access", "online_access",
		"patient/*.cruds", "patient/*.rs", "user/*.cruds", "user/*.rs"}, c.ScopesSupported...)
	c.Capabilities = []string{"launch-standalone", "client-public", "client-confidential-asymmetric",
		"context-standalone-patient", "permission-v1", "permission-v2", "permission-patient", "permission-user",
		"permission-offline", "permission-online", "sso-openid-connect"}
	return c
}

func (s *Server) backendConfiguration() Configuration {
	return Configuration{
		TokenEndpoint:                     s.tokenURL,
		IntrospectionEndpoint:             s.endpoint(IntrospectPath),
		RevocationEndpoint:                s.endpoint(RevokePath),
		TokenEndpointAuthMethodsSupported: []string{"private_key_jwt"},
		TokenEndpointAuthSigningAlgs:      []string{"RS384", "ES384"},
		GrantTypesSupported:               []string{"client_credentials"},
		ScopesSupported:                   []string{"system/*.cruds", "system/*.rs", "system/*.read", "system/*.write"},
		Capabilities:                      []string{"client-confidential-asymmetric", "permission-v1", "permission-v2"},
	}
}

// ConfigurationHandler serves GET ConfigurationPath.
func (s *Server) ConfigurationHandler() http.Handler {
	body, err := json.Marshal(s.Configuration())
	if err != nil {
		panic("smart: encoding the configuration: " + err.Error()) // fixed types: programmer error
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "public, max-age=3600")
		_, _ = w.Write(body)
	})
}

// JWKSHandler serves GET JWKSPath: the public id_token key.
func (s *Server) JWKSHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		set := s.ids.jwks()
		w.Header().Set("Cache-Control", "public, max-age=3600")
		writeJSON(w, http.StatusOK, set)
	})
}

// openIDConfiguration is the OpenID Provider metadata (OIDC Discovery
// §3): only what this server does.
type openIDConfiguration struct {
	Issuer                            string   `json:"issuer"`
	AuthorizationEndpoint             string   `json:"authorization_endpoint"`
	TokenEndpoint                     string   `json:"token_endpoint"`
	JWKSURI                           string   `json:"jwks_uri"`
	ResponseTypesSupported            []string `json:"response_types_supported"`
	SubjectTypesSupported             []string `json:"subject_types_supported"`
	IDTokenSigningAlgValuesSupported  []string `json:"id_token_signing_alg_values_supported"`
	ScopesSupported                   []string `json:"scopes_supported"`
	ClaimsSupported                   []string `json:"claims_supported"`
	GrantTypesSupported               []string `json:"grant_types_supported"`
	CodeChallengeMethodsSupported     []string `json:"code_challenge_methods_supported"`
	TokenEndpointAuthMethodsSupported []string `json:"token_endpoint_auth_methods_supported"`
}

// OpenIDConfigurationHandler serves GET OpenIDConfigurationPath.
func (s *Server) OpenIDConfigurationHandler() http.Handler {
	body, err := json.Marshal(openIDConfiguration{
		Issuer:                            s.Issuer(),
		AuthorizationEndpoint:             s.endpoint(AuthorizePath),
		TokenEndpoint:                     s.tokenURL,
		JWKSURI:                           s.endpoint(JWKSPath),
		ResponseTypesSupported:            []string{"code"},
		SubjectTypesSupported:             []string{"public"},
		IDTokenSigningAlgValuesSupported:  []string{string(jose.RS256)},
		ScopesSupported:                   []string{"openid", "fhirUser"},
		ClaimsSupported:                   []string{"iss", "sub", "aud", "exp", "iat", "nonce", "fhirUser"},
		GrantTypesSupported:               []string{"authorization_code", "refresh_token"},
		CodeChallengeMethodsSupported:     []string{"S256"},
		TokenEndpointAuthMethodsSupported: []string{"none", "private_key_jwt"},
	})
	if err != nil {
		panic("smart: encoding the openid configuration: " + err.Error()) // fixed types
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "public, max-age=3600")
		_, _ = w.Write(body)
	})
}
