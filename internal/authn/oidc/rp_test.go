package oidc_test

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/oauth2-proxy/mockoidc"
	"golang.org/x/oauth2"

	"github.com/phivault/phivault/internal/authn/oidc"
	"github.com/phivault/phivault/internal/identity"
)

// op is a real OpenID provider (mockoidc) served over TLS in the test
// process, and an HTTP client that trusts it.
type op struct {
	*mockoidc.MockOIDC
	roots *x509.CertPool
}

func startOP(t *testing.T) *op {
	t.Helper()
	// Borrow httptest's certificate (valid for 127.0.0.1) for the OP.
	certSrv := httptest.NewUnstartedServer(http.NotFoundHandler())
	certSrv.StartTLS()
	t.Cleanup(certSrv.Close)
	roots := x509.NewCertPool()
	roots.AddCert(certSrv.Certificate())
	tlsCfg := &tls.Config{Certificates: certSrv.TLS.Certificates}

	m, err := mockoidc.NewServer(nil)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Start(tls.NewListener(ln, tlsCfg), tlsCfg); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Shutdown() })
	return &op{MockOIDC: m, roots: roots}
}

// client returns an HTTP client with a timeout that trusts the OP, with
// rewrite (if not nil) applied to the id_token of token responses: a
// network attacker or a broken IdP.
func (o *op) client(rewrite func(idToken string) string) *http.Client {
	var rt http.RoundTripper = &http.Transport{TLSClientConfig: &tls.Config{RootCAs: o.roots}}
	if rewrite != nil {
		rt = rewriteTransport{base: rt, rewrite: rewrite}
	}
	return &http.Client{Timeout: 10 * time.Second, Transport: rt}
}

type rewriteTransport struct {
	base    http.RoundTripper
	rewrite func(string) string
}

func (r rewriteTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := r.base.RoundTrip(req)
	if err != nil || req.URL.Path != mockoidc.TokenEndpoint || resp.StatusCode != http.StatusOK {
		return resp, err
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return nil, err
	}
	var m map[string]any
	if err := json.Unmarshal(body, &m); err != nil {
		return nil, err
	}
	if s, ok := m["id_token"].(string); ok {
		m["id_token"] = r.rewrite(s)
	}
	body, _ = json.Marshal(m)
	resp.Body = io.NopCloser(bytes.NewReader(body))
	resp.ContentLength = int64(len(body))
	resp.Header.Del("Content-Length")
	return resp, nil
}

func (o *op) config() oidc.Config {
	c := o.Config()
	return oidc.Config{
		Issuer:       c.Issuer,
		ClientID:     c.ClientID,
		ClientSecret: c.ClientSecret,
		RedirectURL:  "https://phivault.example/sso/callback",
		Scopes:       []string{"openid", "email", "profile", "groups"},
		RoleMap: map[string]identity.Role{
			"clinicians": identity.RolePhysician,
			"nursing":    identity.RoleNurse,
			"doctors":    identity.RolePhysician,
			"audit":      identity.RoleAuditor,
		},
		ACRValues: []string{"urn:example:loa:mfa"},
	}
}

func (o *op) rp(t *testing.T, cfg oidc.Config, client *http.Client, now func() time.Time) *oidc.RP {
	t.Helper()
	rp, err := oidc.New(t.Context(), cfg, client, now)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return rp
}

// user is a mockoidc.User with the claims an enterprise IdP adds (amr,
// acr) and knobs to make the OP misbehave (issuer, audience, expiry).
type user struct {
	sub, email, name string
	groups           []string
	amr              []string
	acr              string
	issuer           string   // overrides iss if set
	audience         []string // overrides aud if set
	azp              string
}

func (u *user) ID() string { return u.sub }

func (u *user) Userinfo([]string) ([]byte, error) {
	return json.Marshal(map[string]any{"sub": u.sub, "email": u.email})
}

type claims struct {
	*mockoidc.IDTokenClaims
	Email             string   `json:"email,omitempty"`
	EmailVerified     bool     `json:"email_verified,omitempty"`
	PreferredUsername string   `json:"preferred_username,omitempty"`
	Groups            []string `json:"groups,omitempty"`
	AMR               []string `json:"amr,omitempty"`
	ACR               string   `json:"acr,omitempty"`
	AZP               string   `json:"azp,omitempty"`
}

func (u *user) Claims(_ []string, base *mockoidc.IDTokenClaims) (jwt.Claims, error) {
	if u.issuer != "" {
		base.Issuer = u.issuer
	}
	if u.audience != nil {
		base.Audience = u.audience
	}
	return &claims{IDTokenClaims: base, Email: u.email, EmailVerified: true, PreferredUsername: u.name,
		Groups: u.groups, AMR: u.amr, ACR: u.acr, AZP: u.azp}, nil
}

func newFlow(t *testing.T) oidc.Flow {
	t.Helper()
	f, err := oidc.NewFlow(nil)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// authorize drives the OP's authorization endpoint as a browser would
// (without following the redirect back to phivault), checks the state
// that comes back, and returns the code.
func authorize(t *testing.T, o *op, rp *oidc.RP, f oidc.Flow, u mockoidc.User) string {
	t.Helper()
	o.QueueUser(u)
	browser := o.client(nil)
	browser.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	resp, err := browser.Get(rp.AuthURL(f.State, f.Nonce, f.Verifier))
	if err != nil {
		t.Fatalf("authorize: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("authorize: status %d, want 302", resp.StatusCode)
	}
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil {
		t.Fatal(err)
	}
	if got := loc.Scheme + "://" + loc.Host + loc.Path; got != "https://phivault.example/sso/callback" {
		t.Fatalf("redirected to %s, want the configured redirect URL", got)
	}
	if err := oidc.CheckState(loc.Query().Get("state"), f.State); err != nil {
		t.Fatalf("state: %v", err)
	}
	code := loc.Query().Get("code")
	if code == "" {
		t.Fatal("no code in the redirect")
	}
	return code
}

func clinician() *user {
	return &user{sub: "00u1abc", email: "dr.lee@hospital.example", name: "dlee",
		groups: []string{"clinicians", "all-staff", "audit", "doctors"}, amr: []string{"pwd", "otp"}}
}

func TestDiscoveryAndAuthURL(t *testing.T) {
	t.Parallel()
	o := startOP(t)
	rp := o.rp(t, o.config(), o.client(nil), nil)
	f := newFlow(t)
	u, err := url.Parse(rp.AuthURL(f.State, f.Nonce, f.Verifier))
	if err != nil {
		t.Fatal(err)
	}
	if got := u.Scheme + "://" + u.Host + u.Path; got != o.AuthorizationEndpoint() {
		t.Errorf("authorization endpoint %s, want the discovered %s", got, o.AuthorizationEndpoint())
	}
	q := u.Query()
	want := map[string]string{
		"response_type":         "code",
		"client_id":             o.ClientID,
		"state":                 f.State,
		"nonce":                 f.Nonce,
		"code_challenge_method": "S256",
		"code_challenge":        oauth2.S256ChallengeFromVerifier(f.Verifier),
		"redirect_uri":          "https://phivault.example/sso/callback",
		"scope":                 "openid email profile groups",
		"acr_values":            "urn:example:loa:mfa",
	}
	for k, v := range want {
		if q.Get(k) != v {
			t.Errorf("%s = %q, want %q", k, q.Get(k), v)
		}
	}
	if q.Has("code_verifier") || strings.Contains(u.String(), f.Verifier) {
		t.Error("the PKCE verifier left phivault in the authorization URL")
	}
}

func TestNewRejects(t *testing.T) {
	t.Parallel()
	o := startOP(t)
	good := o.config()
	tests := []struct {
		name   string
		cfg    func(c *oidc.Config)
		client *http.Client
		want   error
	}{
		// The RP is configured with another issuer URL than the one the
		// OP's discovery document names (here: a trailing slash).
		{"wrong issuer", func(c *oidc.Config) { c.Issuer += "/" }, o.client(nil), oidc.ErrDiscovery},
		{"no discovery document", func(c *oidc.Config) { c.Issuer += "/elsewhere" }, o.client(nil), oidc.ErrDiscovery},
		{"untrusted TLS certificate", nil, &http.Client{Timeout: 5 * time.Second}, oidc.ErrDiscovery},
		{"plain http issuer", func(c *oidc.Config) { c.Issuer = strings.Replace(c.Issuer, "https:", "http:", 1) }, o.client(nil), oidc.ErrInvalidConfig},
		{"client without timeout", nil, &http.Client{Transport: o.client(nil).Transport}, oidc.ErrInvalidConfig},
		{"no client", nil, nil, oidc.ErrInvalidConfig},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := good
			if tt.cfg != nil {
				tt.cfg(&cfg)
			}
			_, err := oidc.New(t.Context(), cfg, tt.client, nil)
			if !errors.Is(err, tt.want) {
				t.Fatalf("New: %v, want %v", err, tt.want)
			}
		})
	}
}

func TestCodeFlow(t *testing.T) {
	t.Parallel()
	o := startOP(t)
	rp := o.rp(t, o.config(), o.client(nil), nil)
	f := newFlow(t)
	code := authorize(t, o, rp, f, clinician())

	id, err := rp.Exchange(t.Context(), code, f.Verifier, f.Nonce)
	if err != nil {
		t.Fatalf("Exchange: %v", err)
	}
	if id.Issuer != o.Issuer() || id.Subject != "00u1abc" || id.Email != "dr.lee@hospital.example" ||
		!id.EmailVerified || id.Username != "dlee" {
		t.Errorf("identity = %+v", id)
	}
	// "all-staff" is not mapped and is ignored; two groups map to physician.
	if want := []identity.Role{identity.RoleAuditor, identity.RolePhysician}; !slices.Equal(id.Roles, want) {
		t.Errorf("roles = %v, want %v", id.Roles, want)
	}
	if !id.MFA {
		t.Error("amr [pwd otp] was not taken as MFA")
	}

	// The code is single use at the OP: a replay is refused.
	if _, err := rp.Exchange(t.Context(), code, f.Verifier, f.Nonce); !errors.Is(err, oidc.ErrExchange) {
		t.Errorf("replayed code: %v, want ErrExchange", err)
	} else if strings.Contains(err.Error(), code) {
		t.Errorf("error %q quotes the code", err)
	}
}

func TestMFAClaims(t *testing.T) {
	t.Parallel()
	o := startOP(t)
	rp := o.rp(t, o.config(), o.client(nil), nil)
	tests := []struct {
		name string
		amr  []string
		acr  string
		want bool
	}{
		{"password and otp", []string{"pwd", "otp"}, "", true},
		{"password only", []string{"pwd"}, "", false},
		{"no amr or acr", nil, "", false},
		{"hardware key", []string{"hwk"}, "", true},
		{"sms is not accepted by default", []string{"pwd", "sms"}, "", false},
		{"configured acr", []string{"pwd"}, "urn:example:loa:mfa", true},
		{"other acr", nil, "urn:example:loa:1", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u := clinician()
			u.amr, u.acr = tt.amr, tt.acr
			f := newFlow(t)
			id, err := rp.Exchange(t.Context(), authorize(t, o, rp, f, u), f.Verifier, f.Nonce)
			if err != nil {
				t.Fatalf("Exchange: %v", err)
			}
			if id.MFA != tt.want {
				t.Errorf("MFA = %v, want %v (amr %v, acr %q)", id.MFA, tt.want, tt.amr, tt.acr)
			}
		})
	}
}

// TestExchangeRejects covers every way a login must fail after a real
// authorization at the OP.
func TestExchangeRejects(t *testing.T) {
	t.Parallel()
	o := startOP(t)
	later := func() time.Time { return time.Now().Add(time.Hour) } // OP tokens live 10 minutes
	tests := []struct {
		name     string
		user     func(u *user)
		rewrite  func(idToken string) string
		now      func() time.Time
		verifier func(f oidc.Flow) string // default: the flow's
		nonce    func(f oidc.Flow) string // default: the flow's
		want     []error
	}{
		{name: "wrong issuer in token", user: func(u *user) { u.issuer = "https://evil.example/oidc" },
			want: []error{oidc.ErrInvalidToken}},
		{name: "token for another client", user: func(u *user) { u.audience = []string{"another-client"} },
			want: []error{oidc.ErrInvalidToken}},
		{name: "several audiences without azp", user: func(u *user) { u.audience = []string{o.ClientID, "another-client"} },
			want: []error{oidc.ErrInvalidToken}},
		{name: "azp names another client", user: func(u *user) { u.azp = "another-client" },
			want: []error{oidc.ErrInvalidToken}},
		{name: "wrong nonce", nonce: func(oidc.Flow) string { return newFlow(t).Nonce },
			want: []error{oidc.ErrNonce}},
		{name: "empty nonce", nonce: func(oidc.Flow) string { return "" },
			want: []error{oidc.ErrNonce}},
		{name: "expired", now: later,
			want: []error{oidc.ErrInvalidToken, oidc.ErrTokenExpired}},
		{name: "tampered signature", rewrite: tamperSignature,
			want: []error{oidc.ErrInvalidToken}},
		{name: "tampered claims", rewrite: tamperClaims,
			want: []error{oidc.ErrInvalidToken}},
		{name: "alg none", rewrite: algNone,
			want: []error{oidc.ErrInvalidToken}},
		{name: "no id_token", rewrite: func(string) string { return "" },
			want: []error{oidc.ErrInvalidToken}},
		{name: "oversized id_token", rewrite: func(s string) string { return s + strings.Repeat("A", 70<<10) },
			want: []error{oidc.ErrInvalidToken}},
		{name: "wrong PKCE verifier", verifier: func(oidc.Flow) string { return newFlow(t).Verifier },
			want: []error{oidc.ErrExchange}},
		{name: "no mapped group", user: func(u *user) { u.groups = []string{"all-staff", "Clinicians"} },
			want: []error{oidc.ErrNoRole}},
		{name: "no groups", user: func(u *user) { u.groups = nil },
			want: []error{oidc.ErrNoRole}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var seen string // the id_token as the OP sent it
			rewrite := func(s string) string {
				seen = s
				if tt.rewrite != nil {
					return tt.rewrite(s)
				}
				return s
			}
			rp := o.rp(t, o.config(), o.client(rewrite), tt.now)
			u := clinician()
			if tt.user != nil {
				tt.user(u)
			}
			f := newFlow(t)
			code := authorize(t, o, rp, f, u)
			verifier, nonce := f.Verifier, f.Nonce
			if tt.verifier != nil {
				verifier = tt.verifier(f)
			}
			if tt.nonce != nil {
				nonce = tt.nonce(f)
			}
			id, err := rp.Exchange(t.Context(), code, verifier, nonce)
			for _, want := range tt.want {
				if !errors.Is(err, want) {
					t.Errorf("Exchange: %v, want %v", err, want)
				}
			}
			if err == nil {
				t.Fatalf("Exchange accepted the login: %+v", id)
			}
			msg := err.Error()
			for what, secret := range map[string]string{"code": code, "id token": seen, "verifier": f.Verifier,
				"nonce": f.Nonce, "client secret": o.ClientSecret} {
				if secret != "" && strings.Contains(msg, secret) {
					t.Errorf("error %q quotes the %s", msg, what)
				}
			}
			if errors.Is(err, oidc.ErrNoRole) && (id.Subject != u.sub || id.Roles != nil) {
				t.Errorf("ErrNoRole identity = %+v, want the subject and no roles", id)
			}
			if !errors.Is(err, oidc.ErrNoRole) && id.Subject != "" {
				t.Errorf("a refused login returned an identity: %+v", id)
			}
		})
	}
}

func jwtParts(t string) []string { return strings.Split(t, ".") }

func tamperSignature(tok string) string {
	p := jwtParts(tok)
	sig, _ := base64.RawURLEncoding.DecodeString(p[2])
	sig[len(sig)/2] ^= 0x01
	p[2] = base64.RawURLEncoding.EncodeToString(sig)
	return strings.Join(p, ".")
}

// tamperClaims swaps in claims granting a security-admin group while
// keeping the OP's signature.
func tamperClaims(tok string) string {
	p := jwtParts(tok)
	payload, _ := base64.RawURLEncoding.DecodeString(p[1])
	var m map[string]any
	_ = json.Unmarshal(payload, &m)
	m["sub"] = "someone-else"
	payload, _ = json.Marshal(m)
	p[1] = base64.RawURLEncoding.EncodeToString(payload)
	return strings.Join(p, ".")
}

func algNone(tok string) string {
	p := jwtParts(tok)
	return base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none","typ":"JWT"}`)) + "." + p[1] + "."
}
