package smart

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/phivault/phivault/internal/authn/smart/scope"
)

// ClientType says how a client authenticates and which grants it may use.
type ClientType string

// Client types.
const (
	// Backend: SMART Backend Services, client_credentials with
	// private_key_jwt and system/ scopes.
	Backend ClientType = "backend"
	// Public: App Launch without client authentication (next slice).
	Public ClientType = "public"
	// Confidential: App Launch with client authentication (next slice).
	Confidential ClientType = "confidential"
)

// Client is a registered OAuth client. Exactly one of JWKS and JWKSURL is
// set for a backend client.
type Client struct {
	ID           string
	Name         string // label chosen by the administrator; not PHI
	Type         ClientType
	JWKS         []byte // validated public JWK Set (JSON); nil if JWKSURL
	JWKSURL      string // https URL of the JWK Set; "" if JWKS
	RedirectURIs []string
	Scopes       scope.Set // the most the client may be granted
	Created      time.Time
	Disabled     bool
}

// Limits on registration input.
const (
	// MaxClientNameLen bounds the label.
	MaxClientNameLen = 100
	// MaxJWKSURLLen bounds a JWKS URL.
	MaxJWKSURLLen = 2048
)

// BackendRegistration is what RegisterBackend needs.
type BackendRegistration struct {
	Name    string
	JWKS    []byte // inline JWK Set, or
	JWKSURL string // its https URL
	Scopes  scope.Set
}

// RegistryOptions configures a Registry. The zero value means defaults.
type RegistryOptions struct {
	// AllowLoopbackJWKS accepts http:// JWKS URLs on a loopback host
	// (development and tests). Default false: https only.
	AllowLoopbackJWKS bool
	// Now is the clock. Default time.Now.
	Now func() time.Time
	// NewID returns a new client id. Default: a random UUID (122 bits).
	NewID func() string
}

// Registry registers clients: the privileged side of the client store.
type Registry struct {
	store ClientStore
	opts  RegistryOptions
}

// NewRegistry returns a Registry over store.
func NewRegistry(store ClientStore, opts RegistryOptions) (*Registry, error) {
	if store == nil {
		return nil, errors.New("smart: new registry: nil store")
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.NewID == nil {
		opts.NewID = func() string { return uuid.NewString() }
	}
	return &Registry{store: store, opts: opts}, nil
}

// RegisterBackend validates reg and stores a new backend client; it
// returns the new client_id. Errors wrap ErrInvalidJWKS for a refused key
// set or URL, scope.ErrSyntax for a refused scope, or the store's error.
// Only unrestricted system/ resource scopes may be registered: Backend
// Services acts for no user and no patient.
func (r *Registry) RegisterBackend(ctx context.Context, reg BackendRegistration) (string, error) {
	if err := checkName(reg.Name); err != nil {
		return "", fmt.Errorf("register backend client: %w", err)
	}
	c := Client{ID: r.opts.NewID(), Name: reg.Name, Type: Backend, Created: r.opts.Now().UTC()}
	switch {
	case len(reg.JWKS) > 0 && reg.JWKSURL != "":
		return "", fmt.Errorf("register backend client: give a JWK Set or its URL, not both: %w", ErrInvalidJWKS)
	case len(reg.JWKS) > 0:
		set, err := parseJWKS(reg.JWKS)
		if err != nil {
			return "", fmt.Errorf("register backend client: %w", err)
		}
		c.JWKS = set.json
	case reg.JWKSURL != "":
		if err := checkJWKSURL(reg.JWKSURL, r.opts.AllowLoopbackJWKS); err != nil {
			return "", fmt.Errorf("register backend client: %w", err)
		}
		c.JWKSURL = reg.JWKSURL
	default:
		return "", fmt.Errorf("register backend client: a JWK Set or its URL is required: %w", ErrInvalidJWKS)
	}
	if reg.Scopes.Empty() {
		return "", fmt.Errorf("register backend client: at least one scope is required: %w", scope.ErrSyntax)
	}
	for _, s := range reg.Scopes.Scopes() {
		if s.Kind != scope.KindResource || s.Context != scope.System {
			return "", fmt.Errorf("register backend client: %w %q: backend clients get system/ scopes only", scope.ErrSyntax, s.String())
		}
		if s.Restricted() {
			return "", fmt.Errorf("register backend client: %w %q: search restrictions in scopes are not supported yet", scope.ErrSyntax, s.String())
		}
	}
	c.Scopes = reg.Scopes
	if err := r.store.CreateClient(ctx, c); err != nil {
		return "", fmt.Errorf("register backend client: %w", err)
	}
	return c.ID, nil
}

func checkName(n string) error {
	if n == "" || len(n) > MaxClientNameLen || !utf8.ValidString(n) {
		return fmt.Errorf("client name must be 1 to %d bytes of UTF-8", MaxClientNameLen)
	}
	for _, r := range n {
		if r < 0x20 || r == 0x7f {
			return errors.New("client name contains a control character")
		}
	}
	return nil
}

// checkJWKSURL accepts absolute https URLs without credentials or
// fragment; http only to a loopback host when allowLoopback.
func checkJWKSURL(raw string, allowLoopback bool) error {
	if len(raw) > MaxJWKSURLLen {
		return fmt.Errorf("JWKS URL longer than %d bytes: %w", MaxJWKSURLLen, ErrInvalidJWKS)
	}
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("JWKS URL does not parse: %w", ErrInvalidJWKS)
	}
	if u.User != nil || u.Fragment != "" || u.Host == "" || u.Opaque != "" {
		return fmt.Errorf("JWKS URL must be absolute, without credentials or fragment: %w", ErrInvalidJWKS)
	}
	switch u.Scheme {
	case "https":
		return nil
	case "http":
		if allowLoopback && isLoopback(u.Hostname()) {
			return nil
		}
	}
	return fmt.Errorf("JWKS URL must use https: %w", ErrInvalidJWKS)
}

func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
