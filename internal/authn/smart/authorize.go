package smart

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/phivault/phivault/internal/authn/smart/scope"
)

// Limits and lifetimes of the authorize step.
const (
	// CodeTTL: an authorization code is usable for 60 seconds (RFC 6749
	// §4.1.2 recommends at most ten minutes; the app exchanges it at
	// once, so a short life shrinks the window for a stolen code).
	CodeTTL = 60 * time.Second
	// CodeRetention is how long an expired code row is kept before it is
	// deleted, so a late reuse is still recognised and revokes tokens.
	CodeRetention = 10 * time.Minute
	// FlowTTL bounds the sealed authorize request carried through the
	// login, patient picker and consent pages: time to sign in with a
	// second factor and read the consent screen.
	FlowTTL = 10 * time.Minute
	// MaxStateLen bounds state; apps send 16 to 64 random bytes encoded.
	MaxStateLen = 512
	// MaxNonceLen bounds the OpenID Connect nonce.
	MaxNonceLen = 512
	// MaxRedirectURILen bounds a redirect_uri.
	MaxRedirectURILen = 2048
	// maxClientIDLen bounds a client_id before it is looked up.
	maxClientIDLen = 256
	// challengeLen is a base64url SHA-256 without padding (RFC 7636 §4.2).
	challengeLen = 43
	// Verifier bounds (RFC 7636 §4.1): 43 to 128 unreserved characters.
	minVerifierLen, maxVerifierLen = 43, 128

	// flowPurpose binds sealed authorize flows to this use.
	flowPurpose = "smart-authorize-flow"
	// maxFlowPlain bounds a decrypted flow handed to the JSON decoder.
	maxFlowPlain = 3 * 1024
)

// AuthorizeRequest is a parsed authorize request (RFC 6749 §4.1.1,
// RFC 7636 §4.3, SMART App Launch "authorization request").
type AuthorizeRequest struct {
	ClientID    string    `json:"c"`
	RedirectURI string    `json:"r"`
	State       string    `json:"st"`
	Aud         string    `json:"a"`
	Challenge   string    `json:"pc"`
	Nonce       string    `json:"n,omitempty"`
	Scope       scope.Set `json:"-"`
	RawScope    string    `json:"s"`

	// Err is the first problem found after client_id and redirect_uri:
	// it is answered by a redirect to RedirectURI once the server has
	// checked that URI against the client's registration.
	Err *AuthorizeError `json:"-"`
}

// AuthorizeError is a refused authorize request. Before the client and
// redirect_uri are known good (Redirect false) it must be shown as an
// HTML page; after, it is sent to the app as an RFC 6749 §4.1.2.1 error
// redirect.
type AuthorizeError struct {
	Code     string // RFC 6749 error code
	Desc     string // safe to show: names a parameter, never echoes a value
	Redirect bool
}

func (e *AuthorizeError) Error() string { return e.Code + ": " + e.Desc }

func pageErr(desc string) *AuthorizeError {
	return &AuthorizeError{Code: "invalid_request", Desc: desc}
}

func redirectErr(code, desc string) *AuthorizeError {
	return &AuthorizeError{Code: code, Desc: desc, Redirect: true}
}

// ParseAuthorize parses the parameters of an authorize request
// (untrusted). An error means the request cannot be answered by a
// redirect (client_id or redirect_uri missing, repeated or malformed);
// any other problem is kept in AuthorizeRequest.Err. It checks syntax
// only: the registration of the client and of the redirect_uri is
// [Server.Authorize]'s job. Its work is bounded by the lengths above.
func ParseAuthorize(q url.Values) (AuthorizeRequest, error) {
	one := func(k string) (string, bool) {
		v := q[k]
		if len(v) > 1 {
			return "", false
		}
		if len(v) == 0 {
			return "", true
		}
		return v[0], true
	}
	var req AuthorizeRequest
	id, ok := one("client_id")
	if !ok || id == "" || len(id) > maxClientIDLen || !utf8.ValidString(id) {
		return req, pageErr("client_id is missing, repeated or malformed")
	}
	ru, ok := one("redirect_uri")
	if !ok || ru == "" || len(ru) > MaxRedirectURILen || !utf8.ValidString(ru) {
		return req, pageErr("redirect_uri is missing, repeated or malformed")
	}
	req.ClientID, req.RedirectURI = id, ru

	// From here every problem is redirectable. state is taken first, so
	// that it is echoed in the error redirect when it is well formed.
	fail := func(code, desc string) (AuthorizeRequest, error) {
		if req.Err == nil {
			req.Err = redirectErr(code, desc)
		}
		return req, nil
	}
	for k, v := range q {
		if len(v) > 1 {
			req.State = ""
			return fail("invalid_request", "parameter "+quoteName(k)+" is repeated")
		}
	}
	st := q.Get("state")
	switch {
	case st == "":
		return fail("invalid_request", "state is required")
	case len(st) > MaxStateLen || !printableASCII(st):
		return fail("invalid_request", "state is too long or not printable ASCII")
	}
	req.State = st
	switch rt := q.Get("response_type"); rt {
	case "code":
	case "":
		return fail("invalid_request", "response_type is required")
	default:
		return fail("unsupported_response_type", "only response_type=code is supported")
	}
	if q.Has("launch") {
		return fail("invalid_request", "EHR launch is not supported: use a standalone launch")
	}
	if q.Has("request") || q.Has("request_uri") {
		return fail("request_not_supported", "request objects are not supported")
	}
	switch m := q.Get("code_challenge_method"); m {
	case "S256":
	case "":
		return fail("invalid_request", "PKCE is required: code_challenge_method=S256")
	default:
		return fail("invalid_request", "code_challenge_method must be S256")
	}
	ch := q.Get("code_challenge")
	if len(ch) != challengeLen || !isBase64URL(ch) {
		return fail("invalid_request", "code_challenge must be a base64url SHA-256 (43 characters)")
	}
	req.Challenge = ch
	aud := q.Get("aud")
	if aud == "" {
		return fail("invalid_request", "aud is required (the FHIR base URL)")
	}
	if len(aud) > MaxRedirectURILen || !utf8.ValidString(aud) {
		return fail("invalid_request", "aud is malformed")
	}
	req.Aud = aud
	if n := q.Get("nonce"); n != "" {
		if len(n) > MaxNonceLen || !printableASCII(n) {
			return fail("invalid_request", "nonce is too long or not printable ASCII")
		}
		req.Nonce = n
	}
	raw := q.Get("scope")
	set, err := scope.ParseSet(raw)
	if err != nil {
		return fail("invalid_scope", "the scope parameter is malformed, unknown or too large")
	}
	if set.Empty() {
		return fail("invalid_scope", "scope is required")
	}
	req.Scope, req.RawScope = set, set.String()
	return req, nil
}

func quoteName(k string) string {
	if len(k) > 32 {
		k = k[:32]
	}
	return fmt.Sprintf("%q", strings.Map(func(r rune) rune {
		if r < 0x20 || r > 0x7e {
			return '?'
		}
		return r
	}, k))
}

func printableASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

func isBase64URL(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// isVerifier: RFC 7636 §4.1, [A-Z] / [a-z] / [0-9] / "-" / "." / "_" / "~".
func isVerifier(s string) bool {
	if len(s) < minVerifierLen || len(s) > maxVerifierLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '.' || c == '_' || c == '~') {
			return false
		}
	}
	return true
}

// FHIRBaseURL is the aud every authorize request must name.
func (s *Server) FHIRBaseURL() string { return s.endpoint("/fhir") }

// Authorize parses and validates an authorize request against the
// registered client. It returns the request with the scopes narrowed to
// what the client is registered for. Errors are *AuthorizeError: when
// Redirect is false the caller shows an HTML page and must not redirect;
// when true it redirects with [Server.ErrorRedirect]. A failing store
// returns its own error (answer 503).
func (s *Server) Authorize(ctx context.Context, q url.Values) (AuthorizeRequest, Client, error) {
	req, err := ParseAuthorize(q)
	if err != nil {
		return req, Client{}, err
	}
	c, err := s.store.Client(ctx, req.ClientID)
	switch {
	case errors.Is(err, ErrNotFound):
		return req, Client{}, pageErr("unknown client_id")
	case err != nil:
		return req, Client{}, fmt.Errorf("authorize: looking up client: %w", err)
	case c.Disabled:
		return req, Client{}, pageErr("this client is disabled")
	case !c.Approval.Usable():
		// Two-person rule (approval.go): no user signs in to an app a
		// second administrator has not approved.
		return req, Client{}, pageErr("this app is not approved by this server's administrators")
	case c.Type != Public && c.Type != Confidential:
		return req, Client{}, pageErr("this client may not use the authorization code grant")
	}
	// Exact string comparison (OAuth 2.0 Security BCP §4.1.3): no prefix,
	// no normalisation, no wildcard.
	registered := false
	for _, u := range c.RedirectURIs {
		if u == req.RedirectURI {
			registered = true
		}
	}
	if !registered {
		return req, Client{}, pageErr("redirect_uri is not registered for this client")
	}
	if req.Err != nil {
		return req, c, req.Err
	}
	if base := s.FHIRBaseURL(); req.Aud != base && req.Aud != base+"/" {
		return req, c, redirectErr("invalid_request", "aud must be this server's FHIR base URL")
	}
	granted := scope.Intersect(c.Scopes, req.Scope)
	if !hasResourceScope(granted) {
		return req, c, redirectErr("invalid_scope", "none of the requested resource scopes is registered for this client")
	}
	req.Scope, req.RawScope = granted, granted.String()
	return req, c, nil
}

func hasResourceScope(s scope.Set) bool {
	for _, x := range s.Scopes() {
		if x.Kind == scope.KindResource {
			return true
		}
	}
	return false
}

// ErrorRedirect is the RFC 6749 §4.1.2.1 error redirect for a request
// whose redirect_uri was validated by Authorize.
func ErrorRedirect(req AuthorizeRequest, code, desc string) string {
	v := url.Values{"error": {code}}
	if desc != "" {
		v.Set("error_description", desc)
	}
	if req.State != "" {
		v.Set("state", req.State)
	}
	return appendQuery(req.RedirectURI, v)
}

// appendQuery adds v to the query of a registered redirect URI, keeping
// its own query (RFC 6749 §3.1.2).
func appendQuery(base string, v url.Values) string {
	u, err := url.Parse(base)
	if err != nil {
		return base // unreachable: registered URIs parse
	}
	q := u.Query()
	for k, vs := range v {
		q[k] = vs
	}
	u.RawQuery = q.Encode()
	return u.String()
}

// sealedFlow is a validated request carried through the login and
// consent pages, bound to the browser's flow cookie.
type sealedFlow struct {
	Req     AuthorizeRequest `json:"q"`
	Bind    string           `json:"b"` // SHA-256 of the flow cookie, hex
	Patient string           `json:"p,omitempty"`
	Expires int64            `json:"e"`
}

// Flow is the state of one authorize flow between pages.
type Flow struct {
	Req     AuthorizeRequest
	Patient string // chosen launch patient id, "" until picked
}

// SealFlow seals f for a hidden form field, bound to binding (the flow
// cookie's value): the sealed flow is useless without that cookie.
func (s *Server) SealFlow(f Flow, binding string) (string, error) {
	if s.opts.Sealer == nil {
		return "", errors.New("smart: seal flow: Options.Sealer is not set")
	}
	h := hashToken(binding)
	b, err := json.Marshal(sealedFlow{Req: f.Req, Bind: fmt.Sprintf("%x", h[:]), Patient: f.Patient,
		Expires: s.opts.Now().Add(FlowTTL).Unix()})
	if err != nil {
		return "", fmt.Errorf("encoding authorize flow: %w", err)
	}
	tok, err := s.opts.Sealer.SealToken(flowPurpose, b)
	if err != nil {
		return "", fmt.Errorf("sealing authorize flow: %w", err)
	}
	return tok, nil
}

// OpenFlow opens a sealed flow (untrusted) and checks its binding and
// expiry; every refusal is ErrFlow.
func (s *Server) OpenFlow(sealed, binding string) (Flow, error) {
	if s.opts.Sealer == nil || sealed == "" || binding == "" {
		return Flow{}, ErrFlow
	}
	b, err := s.opts.Sealer.OpenToken(flowPurpose, sealed)
	if err != nil || len(b) > maxFlowPlain {
		return Flow{}, ErrFlow
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var sf sealedFlow
	if err := dec.Decode(&sf); err != nil || dec.More() {
		return Flow{}, ErrFlow
	}
	h := hashToken(binding)
	if !constantTimeEqual(sf.Bind, fmt.Sprintf("%x", h[:])) || s.opts.Now().Unix() >= sf.Expires {
		return Flow{}, ErrFlow
	}
	set, err := scope.ParseSet(sf.Req.RawScope)
	if err != nil {
		return Flow{}, ErrFlow
	}
	sf.Req.Scope = set
	return Flow{Req: sf.Req, Patient: sf.Patient}, nil
}

// FlowCookiePrefix marks the authorize flow cookie's value.
const FlowCookiePrefix = "pvf_"

// NewFlowBinding returns a new flow cookie value: 256 random bits. The
// sealed flow and the CSRF token of the authorize pages are bound to it.
func (s *Server) NewFlowBinding() (string, error) {
	sec, _, err := s.newSecret(FlowCookiePrefix)
	return sec, err
}

// csrfDomain separates the CSRF token from every other hash of the flow
// cookie (the flow binding).
const csrfDomain = "phivault authorize csrf v1\x00"

// FlowCSRF is the CSRF token of the authorize pages of the browser
// holding the flow cookie binding: SHA-256 over a domain prefix and the
// 256-bit cookie value, which a cross-site attacker cannot read (the
// argument of session.CSRFToken).
func FlowCSRF(binding string) string {
	h := sha256.Sum256([]byte(csrfDomain + binding))
	return base64.RawURLEncoding.EncodeToString(h[:])
}

// CheckFlowCSRF reports, in constant time, whether token is the CSRF
// token of binding. A malformed binding never matches.
func CheckFlowCSRF(binding, token string) bool {
	if len(binding) != secretLen || binding[:len(FlowCookiePrefix)] != FlowCookiePrefix || token == "" {
		return false
	}
	return constantTimeEqual(FlowCSRF(binding), token)
}

// Client returns the registered client with this id (ErrNotFound).
func (s *Server) Client(ctx context.Context, id string) (Client, error) {
	return s.store.Client(ctx, id)
}

// LaunchEnabled reports whether App Launch is configured.
func (s *Server) LaunchEnabled() bool { return s.opts.Launch != nil }
