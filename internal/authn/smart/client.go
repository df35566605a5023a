package smart

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"slices"
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
	// Public: App Launch without client authentication (PKCE only).
	Public ClientType = "public"
	// Confidential: App Launch with private_key_jwt client authentication.
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
	Disabled     bool // final: a disabled client is never enabled again

	// Approval is where the client stands with the two-person rule
	// (approval.go): only a usable state lets it obtain tokens.
	Approval ClientApproval
	// RegisteredBy is the account id of the administrator who
	// registered the client, "cli" for the offline CLI, "" for a client
	// registered before migration 0020 whose registrar is not known.
	RegisteredBy string
	// ApprovedBy is the account id of the administrator who approved
	// it (ApprovalApproved), "" otherwise.
	ApprovedBy string

	// Purpose is a backend client's registered purpose of use (one of
	// [Purposes]): what its bulk exports disclose for. "" for clients
	// registered without one, which cannot export. Fixed at
	// registration, like the scopes, so an approval covers it.
	Purpose string
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
	// Purpose is the purpose of use of the client's bulk exports (one of
	// [Purposes], or "": the client cannot export).
	Purpose string
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
	// Approval is the state in which a client that needs approval
	// (Client.NeedsApproval) is registered: ApprovalPending (the
	// default, also for ""), or ApprovalBreakGlass for the offline
	// CLI's --break-glass. Any other value is refused by NewRegistry. A
	// client that needs no approval is registered ApprovalNotNeeded.
	Approval ClientApproval
	// RegisteredBy is stored as Client.RegisteredBy: the registering
	// administrator's account id, or "cli".
	RegisteredBy string
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
	switch opts.Approval {
	case "":
		opts.Approval = ApprovalPending
	case ApprovalPending, ApprovalBreakGlass:
	default:
		return nil, fmt.Errorf("smart: new registry: Approval %q: clients that need approval are registered pending, or break-glass", opts.Approval)
	}
	return &Registry{store: store, opts: opts}, nil
}

// create stores c with its approval state: ApprovalNotNeeded when its
// grants reach no patient data, else the registry's Approval.
func (r *Registry) create(ctx context.Context, c Client) error {
	c.Approval, c.RegisteredBy = ApprovalNotNeeded, r.opts.RegisteredBy
	if c.NeedsApproval() {
		c.Approval = r.opts.Approval
	}
	return r.store.CreateClient(ctx, c)
}

// RegisterBackend validates reg and stores a new backend client; it
// returns the new client_id. A client that needs approval is stored in
// the registry's Approval state (pending by default: no token until a
// second administrator approves it). Errors wrap ErrInvalidJWKS for a
// refused key set or URL, scope.ErrSyntax for a refused scope, or the
// store's error.
// Only unrestricted system/ resource scopes may be registered: Backend
// Services acts for no user and no patient.
func (r *Registry) RegisterBackend(ctx context.Context, reg BackendRegistration) (string, error) {
	if err := checkName(reg.Name); err != nil {
		return "", fmt.Errorf("register backend client: %w", err)
	}
	if !ValidPurpose(reg.Purpose) {
		return "", fmt.Errorf("register backend client: %w", ErrPurpose)
	}
	c := Client{ID: r.opts.NewID(), Name: reg.Name, Type: Backend, Created: r.opts.Now().UTC(), Purpose: reg.Purpose}
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
	if err := r.create(ctx, c); err != nil {
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

// AppRegistration is what RegisterApp needs: an App Launch client.
type AppRegistration struct {
	Name string
	// Public apps (browser, mobile) hold no secret: they prove
	// possession of the code with PKCE only. Otherwise the client is
	// confidential and authenticates with private_key_jwt (JWKS or
	// JWKSURL required).
	Public       bool
	JWKS         []byte
	JWKSURL      string
	RedirectURIs []string
	Scopes       scope.Set
}

// MaxRedirectURIs bounds the redirect URIs of one client.
const MaxRedirectURIs = 16

// RegisterApp validates reg and stores a new App Launch client; it
// returns the new client_id, in the registry's Approval state (every
// app needs approval: Client.NeedsApproval). Redirect URIs must be
// absolute https URLs (http only to a loopback host, RFC 8252 §7.3) or
// a private-use scheme with a dot (RFC 8252 §7.1, "com.example.app:/cb"),
// without fragment or credentials; they are later matched by exact
// string comparison.
// Scopes may be patient/ and user/ resource scopes and the non-resource
// scopes; system/ scopes belong to backend clients. Errors wrap
// ErrInvalidRedirectURI, ErrInvalidJWKS or scope.ErrSyntax.
func (r *Registry) RegisterApp(ctx context.Context, reg AppRegistration) (string, error) {
	if err := checkName(reg.Name); err != nil {
		return "", fmt.Errorf("register app client: %w", err)
	}
	c := Client{ID: r.opts.NewID(), Name: reg.Name, Type: Public, Created: r.opts.Now().UTC()}
	if !reg.Public {
		c.Type = Confidential
		switch {
		case len(reg.JWKS) > 0 && reg.JWKSURL != "":
			return "", fmt.Errorf("register app client: give a JWK Set or its URL, not both: %w", ErrInvalidJWKS)
		case len(reg.JWKS) > 0:
			set, err := parseJWKS(reg.JWKS)
			if err != nil {
				return "", fmt.Errorf("register app client: %w", err)
			}
			c.JWKS = set.json
		case reg.JWKSURL != "":
			if err := checkJWKSURL(reg.JWKSURL, r.opts.AllowLoopbackJWKS); err != nil {
				return "", fmt.Errorf("register app client: %w", err)
			}
			c.JWKSURL = reg.JWKSURL
		default:
			return "", fmt.Errorf("register app client: a confidential client needs a JWK Set or its URL (or register it --public): %w", ErrInvalidJWKS)
		}
	} else if len(reg.JWKS) > 0 || reg.JWKSURL != "" {
		return "", fmt.Errorf("register app client: a public client has no keys: %w", ErrInvalidJWKS)
	}
	if len(reg.RedirectURIs) == 0 || len(reg.RedirectURIs) > MaxRedirectURIs {
		return "", fmt.Errorf("register app client: 1 to %d redirect URIs are required: %w", MaxRedirectURIs, ErrInvalidRedirectURI)
	}
	for _, u := range reg.RedirectURIs {
		if err := checkRedirectURI(u); err != nil {
			return "", fmt.Errorf("register app client: %w", err)
		}
	}
	c.RedirectURIs = slices.Clone(reg.RedirectURIs)
	if reg.Scopes.Empty() {
		return "", fmt.Errorf("register app client: at least one scope is required: %w", scope.ErrSyntax)
	}
	resource := false
	for _, s := range reg.Scopes.Scopes() {
		switch {
		case s.Kind == scope.KindResource && s.Context == scope.System:
			return "", fmt.Errorf("register app client: %w %q: system/ scopes belong to backend clients", scope.ErrSyntax, s.String())
		case s.Kind == scope.KindResource && s.Restricted():
			return "", fmt.Errorf("register app client: %w %q: search restrictions in scopes are not supported yet", scope.ErrSyntax, s.String())
		case s.Kind == scope.KindLaunch:
			return "", fmt.Errorf("register app client: %w %q: EHR launch is not supported", scope.ErrSyntax, s.String())
		case s.Kind == scope.KindLaunchContext && s.Launch != "patient":
			return "", fmt.Errorf("register app client: %w %q: only launch/patient is supported", scope.ErrSyntax, s.String())
		case s.Kind == scope.KindResource:
			resource = true
		}
	}
	if !resource {
		return "", fmt.Errorf("register app client: at least one patient/ or user/ scope is required: %w", scope.ErrSyntax)
	}
	c.Scopes = reg.Scopes
	if err := r.create(ctx, c); err != nil {
		return "", fmt.Errorf("register app client: %w", err)
	}
	return c.ID, nil
}

// checkRedirectURI applies the registration rules of RegisterApp.
func checkRedirectURI(raw string) error {
	if raw == "" || len(raw) > MaxRedirectURILen {
		return fmt.Errorf("redirect URI must be 1 to %d bytes: %w", MaxRedirectURILen, ErrInvalidRedirectURI)
	}
	u, err := url.Parse(raw)
	if err != nil || !u.IsAbs() {
		return fmt.Errorf("redirect URI %q is not an absolute URI: %w", truncate(raw, 64), ErrInvalidRedirectURI)
	}
	if u.Fragment != "" || strings.Contains(raw, "#") || u.User != nil {
		return fmt.Errorf("redirect URI %q has a fragment or credentials: %w", truncate(raw, 64), ErrInvalidRedirectURI)
	}
	switch {
	case u.Scheme == "https" && u.Host != "":
		return nil
	case u.Scheme == "http" && isLoopback(u.Hostname()):
		return nil
	case u.Scheme != "http" && u.Scheme != "https" && strings.Contains(u.Scheme, ".") && !strings.EqualFold(u.Scheme, "javascript"):
		return nil
	}
	return fmt.Errorf("redirect URI %q must be https, http on loopback, or a private-use scheme: %w", truncate(raw, 64), ErrInvalidRedirectURI)
}
