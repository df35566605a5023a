package smart

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Endpoint paths, relative to Options.BaseURL.
const (
	TokenPath         = "/oauth2/token"
	IntrospectPath    = "/oauth2/introspect"
	RevokePath        = "/oauth2/revoke"
	ConfigurationPath = "/.well-known/smart-configuration"
)

// Security constants.
const (
	// MaxAssertionLifetime: SMART Backend Services says exp SHOULD be no
	// more than five minutes in the future.
	MaxAssertionLifetime = 5 * time.Minute
	// ClockSkew is the leeway on exp, nbf and iat between our clock and
	// the client's (RFC 7519 §4.1.4 "a small leeway").
	ClockSkew = 60 * time.Second
	// MaxAssertionLen bounds a client assertion: a JWS of a few claims
	// signed with an 8192-bit RSA key is under 2 KiB.
	MaxAssertionLen = 8 << 10
	// MaxBodyBytes bounds a request body: an assertion and a scope string.
	MaxBodyBytes = 16 << 10
	// maxJTILen bounds a stored jti.
	maxJTILen = 256

	// DefaultAccessTokenTTL: SMART Backend Services recommends access
	// tokens of five minutes.
	DefaultAccessTokenTTL = 5 * time.Minute
	// MaxAccessTokenTTL caps an access token's life at 15 minutes
	// (docs/smart.md): a stolen one is useful only briefly.
	MaxAccessTokenTTL = 15 * time.Minute
	// DefaultTokenCacheTTL bounds how long ValidateAccessToken trusts a
	// cached lookup: the latency of a revocation made by another process
	// or of disabling a client.
	DefaultTokenCacheTTL = 10 * time.Second
	// maxCachedTokens bounds the cache's memory.
	maxCachedTokens = 50_000

	// AssertionType is the only client_assertion_type (RFC 7523 §2.2).
	AssertionType = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
)

// Options configures a Server. Fields marked required have no default.
type Options struct {
	// BaseURL is the public base URL of phivault, e.g.
	// "https://phivault.example.org" (required). The token endpoint URL,
	// which assertions must name as aud, is BaseURL + TokenPath.
	BaseURL string

	// HTTPClient fetches JWK Sets published at a URL. Default: a client
	// with DefaultJWKSTimeout. A client without a Timeout is refused.
	HTTPClient *http.Client

	// AllowLoopbackJWKS accepts http:// JWKS URLs on loopback hosts
	// (tests and development). Default false.
	AllowLoopbackJWKS bool

	// JWKSCacheTTL is how long a fetched JWK Set is used. Default
	// DefaultJWKSCacheTTL.
	JWKSCacheTTL time.Duration

	// AccessTokenTTL is the lifetime of issued tokens. Default
	// DefaultAccessTokenTTL; at most MaxAccessTokenTTL.
	AccessTokenTTL time.Duration

	// TokenCacheTTL is how long ValidateAccessToken caches a lookup.
	// Default DefaultTokenCacheTTL; negative disables the cache.
	TokenCacheTTL time.Duration

	// Audit records token events (required).
	Audit Auditor

	// Launch stores App Launch authorizations, codes, refresh tokens and
	// the id_token key. Nil: App Launch is off (Backend Services only).
	Launch LaunchStore
	// Sealer seals the id_token signing key at rest and the authorize
	// flow between pages (the keyring). Required with Launch.
	Sealer Sealer
	// Users, if set, is asked at every refresh whether the user who
	// approved the app is still active.
	Users UserChecker

	// Logger receives internal failure details. Default: discard.
	Logger *slog.Logger

	// Now is the clock. Default time.Now.
	Now func() time.Time

	// Rand is the source of token secrets. Default crypto/rand.Reader.
	Rand io.Reader
}

// Server is the authorization server: the token, introspection,
// revocation and discovery endpoints and the authorize flow they serve.
// It delegates the domain to its parts (see the package doc).
type Server struct {
	store    Store
	opts     Options
	tokenURL string
	log      *slog.Logger

	auth     *clientAuth // client authentication
	tokens   *tokens     // access tokens: issue, validate, cache, revoke
	families *families   // App Launch authorizations and their tokens
	ids      *idSigner   // the id_token signing key
	rec      *recorder   // audit events
}

// New validates opts and returns a Server over store.
func New(store Store, opts Options) (*Server, error) {
	if store == nil {
		return nil, errors.New("smart: new: nil store")
	}
	if opts.Audit == nil {
		return nil, errors.New("smart: new: Options.Audit is required")
	}
	u, err := url.Parse(opts.BaseURL)
	if err != nil || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" ||
		(u.Scheme != "https" && !(u.Scheme == "http" && isLoopback(u.Hostname()))) {
		return nil, fmt.Errorf("smart: new: Options.BaseURL %q must be an absolute https URL", opts.BaseURL)
	}
	if opts.HTTPClient == nil {
		opts.HTTPClient = &http.Client{Timeout: DefaultJWKSTimeout}
	}
	if opts.HTTPClient.Timeout <= 0 {
		return nil, errors.New("smart: new: Options.HTTPClient must have a Timeout")
	}
	switch {
	case opts.JWKSCacheTTL == 0:
		opts.JWKSCacheTTL = DefaultJWKSCacheTTL
	case opts.JWKSCacheTTL < 0:
		return nil, errors.New("smart: new: Options.JWKSCacheTTL is negative")
	}
	switch {
	case opts.AccessTokenTTL == 0:
		opts.AccessTokenTTL = DefaultAccessTokenTTL
	case opts.AccessTokenTTL < 0 || opts.AccessTokenTTL > MaxAccessTokenTTL:
		return nil, fmt.Errorf("smart: new: Options.AccessTokenTTL %v is not in (0, %v]", opts.AccessTokenTTL, MaxAccessTokenTTL)
	}
	if opts.TokenCacheTTL == 0 {
		opts.TokenCacheTTL = DefaultTokenCacheTTL
	}
	if opts.Launch != nil && opts.Sealer == nil {
		return nil, errors.New("smart: new: Options.Sealer is required with Options.Launch")
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Rand == nil {
		opts.Rand = rand.Reader
	}
	s := &Server{
		store:    store,
		opts:     opts,
		tokenURL: strings.TrimSuffix(opts.BaseURL, "/") + TokenPath,
		log:      opts.Logger,
		tokens:   newTokens(store, opts),
	}
	s.rec = &recorder{audit: opts.Audit, now: opts.Now}
	s.families = &families{launch: opts.Launch, tokens: s.tokens, rec: s.rec}
	s.auth = &clientAuth{store: store, keys: newKeyResolver(opts.HTTPClient, opts.JWKSCacheTTL, opts.AllowLoopbackJWKS, opts.Now),
		tokenURL: s.tokenURL, now: opts.Now}
	s.ids = &idSigner{launch: opts.Launch, sealer: opts.Sealer, now: opts.Now, baseURL: opts.BaseURL, fhirBase: s.FHIRBaseURL()}
	return s, nil
}

// ValidateAccessToken returns the grant of a bearer token. Every failure
// (malformed, unknown, expired, revoked, client disabled) returns an
// error wrapping ErrInvalidToken; a failing store returns its error
// instead, which must be answered 503, not 401. Lookups are cached for
// Options.TokenCacheTTL (see the package doc on revocation latency).
func (s *Server) ValidateAccessToken(ctx context.Context, token string) (Grant, error) {
	return s.tokens.validate(ctx, token)
}

// LoadSigningKey loads the id_token signing key, generating and storing
// it (sealed by Options.Sealer) on first start. Several processes
// starting at once converge on the oldest stored key. Without it no
// id_token can be issued and the JWK Set is empty.
func (s *Server) LoadSigningKey(ctx context.Context) error { return s.ids.load(ctx) }

// Issuer is the OpenID Connect issuer: the server's base URL.
func (s *Server) Issuer() string { return s.ids.Issuer() }

// TokenURL is the token endpoint URL: the aud every assertion must carry.
func (s *Server) TokenURL() string { return s.tokenURL }

func (s *Server) endpoint(path string) string {
	return strings.TrimSuffix(s.opts.BaseURL, "/") + path
}
