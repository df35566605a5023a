package smart

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/phivault/phivault/internal/authn/smart/scope"
)

// Endpoint paths of App Launch and OpenID Connect.
const (
	AuthorizePath           = "/oauth2/authorize"
	JWKSPath                = "/oauth2/jwks"
	OpenIDConfigurationPath = "/.well-known/openid-configuration"
)

// idTokenKeyBits: RS256 is the one algorithm every OpenID Connect
// relying party must accept (OIDC Core §15.1); 2048-bit RSA is NIST SP
// 800-57's minimum through 2030 and keeps key generation under a second.
const idTokenKeyBits = 2048

// signingKeyPurpose binds the sealed signing key to this use.
const signingKeyPurpose = "smart-id-token-key"

// signer is the loaded id_token key.
type signer struct {
	kid    string
	signer jose.Signer
	public jose.JSONWebKey
}

// LoadSigningKey loads the id_token signing key, generating and storing
// it (sealed by Options.Sealer) on first start. Several processes
// starting at once converge on the oldest stored key. Without it no
// id_token can be issued and the JWK Set is empty.
func (s *Server) LoadSigningKey(ctx context.Context) error {
	if s.opts.Launch == nil {
		return errors.New("smart: load signing key: App Launch is not configured")
	}
	k, err := s.opts.Launch.SigningKey(ctx)
	if errors.Is(err, ErrNotFound) {
		if err := s.createSigningKey(ctx); err != nil {
			return err
		}
		k, err = s.opts.Launch.SigningKey(ctx)
	}
	if err != nil {
		return fmt.Errorf("smart: load signing key: %w", err)
	}
	der, err := s.opts.Sealer.OpenToken(signingKeyPurpose, k.Sealed)
	if err != nil {
		return fmt.Errorf("smart: opening signing key %s: %w", k.KID, err)
	}
	pk, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return fmt.Errorf("smart: parsing signing key %s: %w", k.KID, err)
	}
	rk, ok := pk.(*rsa.PrivateKey)
	if !ok || k.Alg != string(jose.RS256) {
		return fmt.Errorf("smart: signing key %s is not an RS256 key", k.KID)
	}
	sg, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: jose.JSONWebKey{Key: rk, KeyID: k.KID}},
		(&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		return fmt.Errorf("smart: signing key %s: %w", k.KID, err)
	}
	s.mu.Lock()
	s.signer = &signer{kid: k.KID, signer: sg, public: jose.JSONWebKey{Key: &rk.PublicKey, KeyID: k.KID, Algorithm: string(jose.RS256), Use: "sig"}}
	s.mu.Unlock()
	return nil
}

func (s *Server) createSigningKey(ctx context.Context) error {
	rk, err := rsa.GenerateKey(rand.Reader, idTokenKeyBits)
	if err != nil {
		return fmt.Errorf("smart: generating signing key: %w", err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(rk)
	if err != nil {
		return fmt.Errorf("smart: encoding signing key: %w", err)
	}
	tp, err := (&jose.JSONWebKey{Key: &rk.PublicKey}).Thumbprint(crypto.SHA256)
	if err != nil {
		return fmt.Errorf("smart: signing key thumbprint: %w", err)
	}
	kid := fmt.Sprintf("%x", tp[:12])
	sealed, err := s.opts.Sealer.SealToken(signingKeyPurpose, der)
	if err != nil {
		return fmt.Errorf("smart: sealing signing key: %w", err)
	}
	err = s.opts.Launch.PutSigningKey(ctx, SigningKey{KID: kid, Alg: string(jose.RS256), Sealed: sealed, Created: s.opts.Now().UTC()})
	if err != nil && !errors.Is(err, ErrExists) {
		return fmt.Errorf("smart: storing signing key: %w", err)
	}
	return nil
}

// idClaims are the id_token claims (OIDC Core §2, SMART App Launch
// "scopes for requesting identity data").
type idClaims struct {
	jwt.Claims
	Nonce    string `json:"nonce,omitempty"`
	FHIRUser string `json:"fhirUser,omitempty"`
}

// idToken signs the id_token of an authorization: iss is the server
// base URL, aud the client_id, sub the user id; fhirUser is the full
// URL of the user's FHIR resource when the fhirUser scope was granted.
func (s *Server) idToken(a Authorization, scopes scope.Set, nonce string) (string, error) {
	s.mu.RLock()
	sg := s.signer
	s.mu.RUnlock()
	if sg == nil {
		return "", errors.New("id_token requested but no signing key is loaded")
	}
	now := s.opts.Now()
	c := idClaims{Claims: jwt.Claims{Issuer: s.Issuer(), Subject: a.UserID, Audience: jwt.Audience{a.ClientID},
		IssuedAt: jwt.NewNumericDate(now), Expiry: jwt.NewNumericDate(now.Add(IDTokenTTL))}, Nonce: nonce}
	if scopes.Has(scope.KindFHIRUser) && a.FHIRUser != "" {
		c.FHIRUser = s.FHIRBaseURL() + "/" + a.FHIRUser
	}
	tok, err := jwt.Signed(sg.signer).Claims(c).Serialize()
	if err != nil {
		return "", fmt.Errorf("signing id_token: %w", err)
	}
	return tok, nil
}

// Issuer is the OpenID Connect issuer: the server's base URL.
func (s *Server) Issuer() string { return strings.TrimSuffix(s.opts.BaseURL, "/") }

// JWKSHandler serves GET JWKSPath: the public id_token key.
func (s *Server) JWKSHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		set := jose.JSONWebKeySet{Keys: []jose.JSONWebKey{}}
		s.mu.RLock()
		if s.signer != nil {
			set.Keys = append(set.Keys, s.signer.public)
		}
		s.mu.RUnlock()
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
