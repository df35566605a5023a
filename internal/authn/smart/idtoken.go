package smart

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/phivault/phivault/internal/authn/smart/scope"
)

// idTokenKeyBits: RS256 is the one algorithm every OpenID Connect
// relying party must accept (OIDC Core §15.1); 2048-bit RSA is NIST SP
// 800-57's minimum through 2030 and keeps key generation under a second.
const idTokenKeyBits = 2048

// signingKeyPurpose binds the sealed signing key to this use.
const signingKeyPurpose = "smart-id-token-key"

// idSigner is the OpenID Connect id_token signing key: it loads (or
// creates) the sealed key, signs id_tokens and publishes the public key
// (the JWK Set at JWKSPath). Its mutex guards cur.
type idSigner struct {
	launch   LaunchStore // nil: App Launch is off
	sealer   Sealer
	now      func() time.Time
	baseURL  string // Options.BaseURL
	fhirBase string // Server.FHIRBaseURL

	mu  sync.RWMutex
	cur *signer // nil until load
}

// signer is the loaded id_token key.
type signer struct {
	kid    string
	signer jose.Signer
	public jose.JSONWebKey
}

// load is [Server.LoadSigningKey].
func (ids *idSigner) load(ctx context.Context) error {
	if ids.launch == nil {
		return errors.New("smart: load signing key: App Launch is not configured")
	}
	k, err := ids.launch.SigningKey(ctx)
	if errors.Is(err, ErrNotFound) {
		if err := ids.create(ctx); err != nil {
			return err
		}
		k, err = ids.launch.SigningKey(ctx)
	}
	if err != nil {
		return fmt.Errorf("smart: load signing key: %w", err)
	}
	der, err := ids.sealer.OpenToken(signingKeyPurpose, k.Sealed)
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
	ids.mu.Lock()
	ids.cur = &signer{kid: k.KID, signer: sg, public: jose.JSONWebKey{Key: &rk.PublicKey, KeyID: k.KID, Algorithm: string(jose.RS256), Use: "sig"}}
	ids.mu.Unlock()
	return nil
}

func (ids *idSigner) create(ctx context.Context) error {
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
	sealed, err := ids.sealer.SealToken(signingKeyPurpose, der)
	if err != nil {
		return fmt.Errorf("smart: sealing signing key: %w", err)
	}
	err = ids.launch.PutSigningKey(ctx, SigningKey{KID: kid, Alg: string(jose.RS256), Sealed: sealed, Created: ids.now().UTC()})
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
func (ids *idSigner) idToken(a Authorization, scopes scope.Set, nonce string) (string, error) {
	ids.mu.RLock()
	sg := ids.cur
	ids.mu.RUnlock()
	if sg == nil {
		return "", errors.New("id_token requested but no signing key is loaded")
	}
	now := ids.now()
	c := idClaims{Claims: jwt.Claims{Issuer: ids.Issuer(), Subject: a.UserID, Audience: jwt.Audience{a.ClientID},
		IssuedAt: jwt.NewNumericDate(now), Expiry: jwt.NewNumericDate(now.Add(IDTokenTTL))}, Nonce: nonce}
	if scopes.Has(scope.KindFHIRUser) && a.FHIRUser != "" {
		c.FHIRUser = ids.fhirBase + "/" + a.FHIRUser
	}
	tok, err := jwt.Signed(sg.signer).Claims(c).Serialize()
	if err != nil {
		return "", fmt.Errorf("signing id_token: %w", err)
	}
	return tok, nil
}

// Issuer is the OpenID Connect issuer: the server's base URL.
func (ids *idSigner) Issuer() string { return strings.TrimSuffix(ids.baseURL, "/") }

// jwks is the public JWK Set: the loaded key, or none.
func (ids *idSigner) jwks() jose.JSONWebKeySet {
	set := jose.JSONWebKeySet{Keys: []jose.JSONWebKey{}}
	ids.mu.RLock()
	if ids.cur != nil {
		set.Keys = append(set.Keys, ids.cur.public)
	}
	ids.mu.RUnlock()
	return set
}
