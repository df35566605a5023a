package oidc

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	gooidc "github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
)

const (
	// maxResponseBytes caps every response body read from the IdP
	// (discovery, JWKS, token): these are a few KiB in practice, and an
	// unbounded read would let a faulty or hostile IdP exhaust memory
	// (STYLE rule 24).
	maxResponseBytes = 1 << 20

	// maxIDTokenBytes caps the ID token handed to the verifier. Entra ID
	// stops listing groups in the token after 200 ("overage"); 64 KiB
	// holds several times that and bounds the JSON and signature work.
	maxIDTokenBytes = 64 << 10

	// maxCodeBytes caps the authorization code taken from the callback's
	// query string (untrusted) before it is sent anywhere.
	maxCodeBytes = 4 << 10

	// maxReasonBytes caps the library-supplied detail quoted in errors.
	maxReasonBytes = 200
)

// signingAlgs are the only ID token signature algorithms accepted: the
// asymmetric JWS algorithms (RFC 7518 §3.1). "none" and the HMAC
// algorithms are refused whatever the discovery document advertises, so
// a token cannot be forged with the client secret or without a key
// (algorithm confusion).
var signingAlgs = []string{
	gooidc.RS256, gooidc.RS384, gooidc.RS512,
	gooidc.PS256, gooidc.PS384, gooidc.PS512,
	gooidc.ES256, gooidc.ES384, gooidc.ES512,
	gooidc.EdDSA,
}

// RP is phivault's OpenID Connect relying party for one IdP: it builds
// authorization requests (code flow with PKCE S256 and a nonce) and turns
// the returned code into a verified [Identity].
//
// An RP is safe for concurrent use and holds no per-login state: the
// caller keeps each login's [Flow]. It keeps the IdP's signing keys
// cached (refetched when a token names an unknown key).
type RP struct {
	cfg      Config
	client   *http.Client
	oauth    *oauth2.Config
	verifier *gooidc.IDTokenVerifier
}

// New validates cfg and runs OIDC discovery against cfg.Issuer
// (OIDC Discovery §4) using httpClient, which is also used for the JWKS
// and token endpoints. httpClient is required and must have a Timeout:
// an IdP that stops answering must not hold logins forever (STYLE rule
// 29). New does not modify it. now is the clock for ID token expiry; nil
// means time.Now.
//
// Errors wrap [ErrInvalidConfig] (bad cfg or client) or [ErrDiscovery]
// (the IdP could not be reached, named another issuer, or advertised a
// non-https endpoint or no PKCE S256).
func New(ctx context.Context, cfg Config, httpClient *http.Client, now func() time.Time) (*RP, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if httpClient == nil || httpClient.Timeout <= 0 {
		return nil, fmt.Errorf("%w: the IdP HTTP client must be set and have a timeout", ErrInvalidConfig)
	}
	if now == nil {
		now = time.Now
	}
	cfg = cfg.withDefaults()

	client := *httpClient
	base := client.Transport
	if base == nil {
		base = http.DefaultTransport
	}
	client.Transport = limitTransport{base: base}

	provider, err := gooidc.NewProvider(gooidc.ClientContext(ctx, &client), cfg.Issuer)
	if err != nil {
		var mismatch *gooidc.IssuerMismatchError
		if errors.As(err, &mismatch) {
			return nil, fmt.Errorf("%w: %s names issuer %q, configured %q", ErrDiscovery,
				safe(cfg.Issuer), safe(mismatch.Discovered), safe(cfg.Issuer))
		}
		return nil, fmt.Errorf("%w: %s: %s", ErrDiscovery, safe(cfg.Issuer), safe(err.Error()))
	}
	endpoint := provider.Endpoint()
	for _, e := range []struct{ name, u string }{{"authorization_endpoint", endpoint.AuthURL}, {"token_endpoint", endpoint.TokenURL}} {
		if u, err := url.Parse(e.u); err != nil || u.Scheme != "https" || u.Host == "" {
			return nil, fmt.Errorf("%w: %s: %s is not an https URL", ErrDiscovery, safe(cfg.Issuer), e.name)
		}
	}
	var meta struct {
		PKCE []string `json:"code_challenge_methods_supported"`
	}
	if err := provider.Claims(&meta); err != nil {
		return nil, fmt.Errorf("%w: %s: reading metadata: %s", ErrDiscovery, safe(cfg.Issuer), safe(err.Error()))
	}
	// An IdP that states its PKCE methods must list S256 (RFC 8414 §2);
	// one that is silent is still sent a challenge, which RFC 7636
	// servers ignore only if they do not implement PKCE at all.
	if meta.PKCE != nil && !slices.Contains(meta.PKCE, "S256") {
		return nil, fmt.Errorf("%w: %s does not support PKCE S256", ErrDiscovery, safe(cfg.Issuer))
	}

	return &RP{
		cfg:    cfg,
		client: &client,
		oauth: &oauth2.Config{
			ClientID:     cfg.ClientID,
			ClientSecret: cfg.ClientSecret,
			Endpoint:     endpoint,
			RedirectURL:  cfg.RedirectURL,
			Scopes:       cfg.Scopes,
		},
		verifier: provider.Verifier(&gooidc.Config{
			ClientID:             cfg.ClientID,
			SupportedSigningAlgs: signingAlgs,
			Now:                  now,
		}),
	}, nil
}

// AuthURL returns the IdP authorization URL to redirect the browser to,
// for the authorization code flow with state, nonce and a PKCE S256
// challenge derived from verifier (RFC 7636 §4.2; the verifier itself
// never leaves phivault until the code exchange). Pass the fields of a
// fresh [NewFlow]. When [Config.ACRValues] is set they are sent as
// acr_values.
//
// AuthURL panics if any argument is empty: that is a programming error
// which would switch off CSRF, replay or code-injection protection.
func (rp *RP) AuthURL(state, nonce, verifier string) string {
	if state == "" || nonce == "" || verifier == "" {
		panic("oidc: AuthURL needs a state, a nonce and a PKCE verifier")
	}
	opts := []oauth2.AuthCodeOption{gooidc.Nonce(nonce), oauth2.S256ChallengeOption(verifier)}
	if len(rp.cfg.ACRValues) > 0 {
		opts = append(opts, oauth2.SetAuthURLParam("acr_values", strings.Join(rp.cfg.ACRValues, " ")))
	}
	return rp.oauth.AuthCodeURL(state, opts...)
}

// Exchange redeems the authorization code from the callback (after the
// caller has checked the state with [CheckState]) with the PKCE verifier
// and client secret, verifies the returned ID token, and maps it to an
// [Identity]. verifier and expectedNonce come from the caller's [Flow].
//
// The ID token must be signed with an asymmetric key from the IdP's
// JWKS, issued by [Config.Issuer], addressed to [Config.ClientID] (and,
// when it names other audiences too, authorized for it by azp), unexpired
// by the clock given to [New], have a subject, and carry expectedNonce.
//
// Errors wrap [ErrExchange], [ErrInvalidToken] (with [ErrTokenExpired]
// for expiry), [ErrNonce] or [ErrNoRole]. With ErrNoRole the returned
// Identity is filled in except for Roles, for the audit record; with any
// other error it is the zero value. Context cancellation is reported as
// ErrExchange wrapping ctx.Err().
func (rp *RP) Exchange(ctx context.Context, code, verifier, expectedNonce string) (Identity, error) {
	if code == "" || len(code) > maxCodeBytes {
		return Identity{}, fmt.Errorf("%w: code missing or longer than %d bytes", ErrExchange, maxCodeBytes)
	}
	if verifier == "" || expectedNonce == "" {
		// A missing nonce or verifier means the caller lost the Flow:
		// never exchange without them.
		return Identity{}, fmt.Errorf("%w: no nonce or PKCE verifier for this login", ErrNonce)
	}
	ctx = gooidc.ClientContext(ctx, rp.client)

	tok, err := rp.oauth.Exchange(ctx, code, oauth2.VerifierOption(verifier))
	if err != nil {
		if ctxErr := ctx.Err(); ctxErr != nil {
			return Identity{}, fmt.Errorf("%w: %w", ErrExchange, ctxErr)
		}
		var re *oauth2.RetrieveError
		if errors.As(err, &re) {
			// Only the RFC 6749 §5.2 error code: the description and body
			// may echo the code.
			return Identity{}, fmt.Errorf("%w: token endpoint answered %d %s", ErrExchange,
				statusOf(re.Response), safeCode(re.ErrorCode))
		}
		return Identity{}, fmt.Errorf("%w: %s", ErrExchange, safe(err.Error()))
	}
	raw, _ := tok.Extra("id_token").(string)
	if raw == "" {
		return Identity{}, fmt.Errorf("%w: no id_token in the token response", ErrInvalidToken)
	}
	if len(raw) > maxIDTokenBytes {
		return Identity{}, fmt.Errorf("%w: id_token longer than %d bytes", ErrInvalidToken, maxIDTokenBytes)
	}
	idt, err := rp.verifier.Verify(ctx, raw)
	if err != nil {
		var expired *gooidc.TokenExpiredError
		if errors.As(err, &expired) {
			return Identity{}, fmt.Errorf("%w: %w at %s", ErrInvalidToken, ErrTokenExpired, expired.Expiry.UTC().Format(time.RFC3339))
		}
		// go-oidc's messages name the check that failed and public values
		// (issuer, audience, times); they never quote the token.
		return Identity{}, fmt.Errorf("%w: %s", ErrInvalidToken, safe(err.Error()))
	}
	if !equalSecret(idt.Nonce, expectedNonce) {
		return Identity{}, ErrNonce
	}

	var payload rawClaims
	if err := idt.Claims(&payload); err != nil {
		return Identity{}, fmt.Errorf("%w: reading claims", ErrInvalidToken)
	}
	var azp struct {
		AZP string `json:"azp"`
	}
	_ = idt.Claims(&azp) // same payload, decoded above
	// OIDC Core §3.1.3.7 steps 4-5: with several audiences, azp must be
	// present; when present it must be us.
	if (len(idt.Audience) > 1 && azp.AZP == "") || (azp.AZP != "" && azp.AZP != rp.cfg.ClientID) {
		return Identity{}, fmt.Errorf("%w: token authorized for another party", ErrInvalidToken)
	}
	id, err := parseClaims(&rp.cfg, payload)
	id.Issuer = idt.Issuer
	if err != nil && !errors.Is(err, ErrNoRole) {
		return Identity{}, err
	}
	return id, err
}

// rawClaims keeps the verified payload bytes for parseClaims.
type rawClaims []byte

func (r *rawClaims) UnmarshalJSON(b []byte) error {
	*r = append((*r)[:0], b...)
	return nil
}

func statusOf(r *http.Response) int {
	if r == nil {
		return 0
	}
	return r.StatusCode
}

// safe makes library- or IdP-supplied text fit for an error message:
// printable ASCII only, at most maxReasonBytes.
func safe(s string) string {
	b := make([]byte, 0, min(len(s), maxReasonBytes))
	for i := 0; i < len(s) && len(b) < maxReasonBytes; i++ {
		c := s[i]
		if c < 0x20 || c > 0x7e {
			c = '?'
		}
		b = append(b, c)
	}
	if len(s) > maxReasonBytes {
		return string(b) + "..."
	}
	return string(b)
}

// safeCode keeps an OAuth error code only if it has the RFC 6749 §5.2
// shape (lower case letters and underscores), which cannot carry a secret.
func safeCode(s string) string {
	if s == "" || len(s) > 64 || strings.TrimLeft(s, "abcdefghijklmnopqrstuvwxyz_") != "" {
		return "(no standard error code)"
	}
	return s
}

// limitTransport fails any response body read past maxResponseBytes.
type limitTransport struct{ base http.RoundTripper }

func (t limitTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.base.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	resp.Body = &limitedBody{rc: resp.Body, left: maxResponseBytes}
	return resp, nil
}

type limitedBody struct {
	rc   io.ReadCloser
	left int64
}

var errResponseTooLarge = fmt.Errorf("identity provider response larger than %d bytes", maxResponseBytes)

func (b *limitedBody) Read(p []byte) (int, error) {
	if b.left <= 0 {
		// Probe one byte: a body of exactly the limit is fine.
		var one [1]byte
		n, err := b.rc.Read(one[:])
		if n > 0 {
			return 0, errResponseTooLarge
		}
		return 0, err
	}
	if int64(len(p)) > b.left {
		p = p[:b.left]
	}
	n, err := b.rc.Read(p)
	b.left -= int64(n)
	return n, err
}

func (b *limitedBody) Close() error { return b.rc.Close() }
