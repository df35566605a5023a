package smart

import (
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/phivault/phivault/internal/audit"
	"github.com/phivault/phivault/internal/authn/smart/scope"
)

func TestTokenIssued(t *testing.T) {
	for _, tt := range []struct {
		name string
		alg  jose.SignatureAlgorithm
		key  any
		kid  string
	}{
		{"RS384", jose.RS384, nil, "rsa1"},
		{"ES384", jose.ES384, nil, "ec1"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			key := any(rsaKey)
			if tt.alg == jose.ES384 {
				key = ecKey
			}
			a := sign(t, tt.alg, key, tt.kid, e.claims(e.client))
			r := post(t, e.srv.TokenHandler(), TokenPath, tokenForm(a, "system/Observation.rs system/Patient.read system/Encounter.cruds"))
			if r.code != http.StatusOK {
				t.Fatalf("status %d: %v", r.code, r.body)
			}
			if got := r.hdr.Get("Cache-Control"); got != "no-store" {
				t.Errorf("Cache-Control = %q", got)
			}
			if r.str("token_type") != "Bearer" || r.body["expires_in"] != float64(300) {
				t.Errorf("token_type %q, expires_in %v", r.str("token_type"), r.body["expires_in"])
			}
			// Encounter.cruds is narrowed to what is registered (system/*.rs).
			if got, want := r.str("scope"), "system/Encounter.rs system/Observation.rs system/Patient.rs"; got != want {
				t.Errorf("scope = %q, want %q", got, want)
			}
			tok := r.str("access_token")
			if !strings.HasPrefix(tok, AccessTokenPrefix) || len(tok) != accessTokenLen {
				t.Fatalf("access token %q has the wrong form", tok)
			}
			g, err := e.srv.ValidateAccessToken(t.Context(), tok)
			if err != nil {
				t.Fatal(err)
			}
			if g.ClientID != e.client || !g.Scopes.Allows(scope.System, "Observation", scope.Read) ||
				g.Scopes.Allows(scope.System, "Encounter", scope.Create) || g.Scopes.Allows(scope.System, "Condition", scope.Read) {
				t.Errorf("grant = %+v (%s)", g, g.Scopes)
			}
			if ev := e.audit.last(); ev.Action != audit.ActionTokenCreate || ev.Outcome != audit.OutcomeSuccess || ev.Agent.Client != e.client {
				t.Errorf("audit event = %+v", ev)
			}
			// No secret reaches the audit log.
			b, _ := json.Marshal(e.audit.events)
			if strings.Contains(string(b), tok) || strings.Contains(string(b), a) {
				t.Error("the audit log holds a token or an assertion")
			}
		})
	}
}

// noneAssertion builds an unsigned JWT by hand: go-jose cannot make one.
func noneAssertion(t *testing.T, claims jwt.Claims) string {
	t.Helper()
	h := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none","kid":"rsa1","typ":"JWT"}`))
	p, err := json.Marshal(claims)
	if err != nil {
		t.Fatal(err)
	}
	return h + "." + base64.RawURLEncoding.EncodeToString(p) + "."
}

func TestTokenRefused(t *testing.T) {
	e := newEnv(t)
	pubDER, err := x509.MarshalPKIXPublicKey(&rsaKey.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	good := func() jwt.Claims { return e.claims(e.client) }
	with := func(f func(*jwt.Claims)) jwt.Claims { c := good(); f(&c); return c }
	rs := func(c any) string { return sign(t, jose.RS384, rsaKey, "rsa1", c) }
	now := e.clock.Now()

	tests := []struct {
		name      string
		form      func() map[string]string // overrides of a good token form
		code      int
		err, desc string // desc: a substring of error_description
	}{
		{"alg none", func() map[string]string { return map[string]string{"client_assertion": noneAssertion(t, good())} },
			401, "invalid_client", errAuthFailed},
		{"HS256 with the public key as secret", func() map[string]string {
			return map[string]string{"client_assertion": sign(t, jose.HS256, pubDER, "rsa1", good())}
		}, 401, "invalid_client", errAuthFailed},
		{"RS256", func() map[string]string {
			return map[string]string{"client_assertion": sign(t, jose.RS256, rsaKey, "rsa1", good())}
		}, 401, "invalid_client", errAuthFailed},
		{"PS384", func() map[string]string {
			return map[string]string{"client_assertion": sign(t, jose.PS384, rsaKey, "rsa1", good())}
		}, 401, "invalid_client", errAuthFailed},
		{"ES384 header on the RSA kid", func() map[string]string {
			return map[string]string{"client_assertion": sign(t, jose.ES384, ecKey, "rsa1", good())}
		}, 401, "invalid_client", errAuthFailed},
		{"wrong kid", func() map[string]string {
			return map[string]string{"client_assertion": sign(t, jose.RS384, rsaKey, "nope", good())}
		},
			401, "invalid_client", errAuthFailed},
		{"no kid", func() map[string]string {
			return map[string]string{"client_assertion": sign(t, jose.RS384, rsaKey, "", good())}
		},
			401, "invalid_client", errAuthFailed},
		{"key of another client", func() map[string]string {
			return map[string]string{"client_assertion": sign(t, jose.RS384, rsaKey2, "rsa1", good())}
		}, 401, "invalid_client", errAuthFailed},
		{"unknown iss", func() map[string]string {
			return map[string]string{"client_assertion": rs(with(func(c *jwt.Claims) { c.Issuer, c.Subject = "nobody", "nobody" }))}
		}, 401, "invalid_client", errAuthFailed},
		{"iss of another client", func() map[string]string {
			return map[string]string{"client_assertion": rs(with(func(c *jwt.Claims) { c.Issuer = e.other }))}
		}, 401, "invalid_client", errAuthFailed},
		{"wrong sub", func() map[string]string {
			return map[string]string{"client_assertion": rs(with(func(c *jwt.Claims) { c.Subject = e.other }))}
		}, 401, "invalid_client", "iss and sub"},
		{"wrong aud", func() map[string]string {
			return map[string]string{"client_assertion": rs(with(func(c *jwt.Claims) { c.Audience = jwt.Audience{testBase + "/oauth2/token/"} }))}
		}, 401, "invalid_client", "aud"},
		{"aud list", func() map[string]string {
			return map[string]string{"client_assertion": rs(with(func(c *jwt.Claims) {
				c.Audience = jwt.Audience{testBase + TokenPath, "https://other.example"}
			}))}
		}, 401, "invalid_client", "aud"},
		{"expired", func() map[string]string {
			return map[string]string{"client_assertion": rs(with(func(c *jwt.Claims) { c.Expiry = jwt.NewNumericDate(now.Add(-2 * time.Minute)) }))}
		}, 401, "invalid_client", "expired"},
		{"exp too far", func() map[string]string {
			return map[string]string{"client_assertion": rs(with(func(c *jwt.Claims) { c.Expiry = jwt.NewNumericDate(now.Add(10 * time.Minute)) }))}
		}, 401, "invalid_client", "five minutes"},
		{"no exp", func() map[string]string {
			return map[string]string{"client_assertion": rs(with(func(c *jwt.Claims) { c.Expiry = nil }))}
		}, 401, "invalid_client", "no exp"},
		{"nbf in the future", func() map[string]string {
			return map[string]string{"client_assertion": rs(with(func(c *jwt.Claims) { c.NotBefore = jwt.NewNumericDate(now.Add(3 * time.Minute)) }))}
		}, 401, "invalid_client", "nbf"},
		{"iat in the future", func() map[string]string {
			return map[string]string{"client_assertion": rs(with(func(c *jwt.Claims) { c.IssuedAt = jwt.NewNumericDate(now.Add(3 * time.Minute)) }))}
		}, 401, "invalid_client", "iat"},
		{"missing jti", func() map[string]string {
			return map[string]string{"client_assertion": rs(with(func(c *jwt.Claims) { c.ID = "" }))}
		}, 401, "invalid_client", "jti"},
		{"scope not registered", func() map[string]string {
			return map[string]string{"client_assertion": rs(good()), "scope": "system/Observation.cud"}
		}, 400, "invalid_scope", "none of the requested"},
		{"patient scope", func() map[string]string {
			return map[string]string{"client_assertion": rs(good()), "scope": "patient/*.rs"}
		}, 400, "invalid_scope", "none of the requested"},
		{"malformed scope", func() map[string]string {
			return map[string]string{"client_assertion": rs(good()), "scope": "system/Observation.sr"}
		}, 400, "invalid_scope", "malformed"},
		{"no scope", func() map[string]string { return map[string]string{"client_assertion": rs(good()), "scope": ""} },
			400, "invalid_scope", "required"},
		{"malformed assertion", func() map[string]string { return map[string]string{"client_assertion": "not.a.jwt"} },
			401, "invalid_client", errAuthFailed},
		{"oversized assertion", func() map[string]string {
			return map[string]string{"client_assertion": strings.Repeat("A", MaxAssertionLen+1)}
		}, 401, "invalid_client", errAuthFailed},
		{"oversized body", func() map[string]string { return map[string]string{"padding": strings.Repeat("A", MaxBodyBytes)} },
			400, "invalid_request", "too large"},
		{"wrong assertion type", func() map[string]string {
			return map[string]string{"client_assertion": rs(good()), "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:saml2-bearer"}
		}, 401, "invalid_client", "client_assertion_type"},
		{"no assertion", func() map[string]string { return map[string]string{"client_assertion": ""} },
			400, "invalid_request", "required"},
		{"client_id mismatch", func() map[string]string {
			return map[string]string{"client_assertion": rs(good()), "client_id": e.other}
		}, 401, "invalid_client", "client_id"},
		{"no grant_type", func() map[string]string { return map[string]string{"client_assertion": rs(good()), "grant_type": ""} },
			400, "invalid_request", "grant_type"},
		{"password grant", func() map[string]string {
			return map[string]string{"client_assertion": rs(good()), "grant_type": "password"}
		}, 400, "unsupported_grant_type", "client_credentials"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := tokenForm("", "system/Observation.rs")
			for k, v := range tt.form() {
				if v == "" {
					f.Del(k)
				} else {
					f.Set(k, v)
				}
			}
			r := post(t, e.srv.TokenHandler(), TokenPath, f)
			if r.code != tt.code || r.str("error") != tt.err || !strings.Contains(r.str("error_description"), tt.desc) {
				t.Fatalf("got %d %v, want %d %s (%q)", r.code, r.body, tt.code, tt.err, tt.desc)
			}
			if r.str("access_token") != "" {
				t.Fatal("a refused request got a token")
			}
			if r.hdr.Get("Cache-Control") != "no-store" {
				t.Error("error response without Cache-Control: no-store")
			}
			if ev := e.audit.last(); ev.Outcome != audit.OutcomeDenied {
				// Refusals before the form is read (body too large) are
				// the wrapper's to audit.
				if tt.name != "oversized body" {
					t.Errorf("refusal not audited: last event %+v", ev)
				}
			}
		})
	}
}

func TestTokenReplay(t *testing.T) {
	e := newEnv(t)
	a := sign(t, jose.RS384, rsaKey, "rsa1", e.claims(e.client))
	if r := post(t, e.srv.TokenHandler(), TokenPath, tokenForm(a, "system/*.rs")); r.code != http.StatusOK {
		t.Fatalf("first use: %d %v", r.code, r.body)
	}
	e.clock.Advance(30 * time.Second)
	r := post(t, e.srv.TokenHandler(), TokenPath, tokenForm(a, "system/*.rs"))
	if r.code != http.StatusUnauthorized || r.str("error") != "invalid_client" || !strings.Contains(r.str("error_description"), "already used") {
		t.Fatalf("replay: %d %v", r.code, r.body)
	}
}

func TestTokenRequestShape(t *testing.T) {
	e := newEnv(t)
	a := sign(t, jose.RS384, rsaKey, "rsa1", e.claims(e.client))
	t.Run("GET", func(t *testing.T) {
		r := do(t, e.srv.TokenHandler(), httptest.NewRequest(http.MethodGet, TokenPath+"?"+tokenForm(a, "system/*.rs").Encode(), nil))
		if r.code != http.StatusMethodNotAllowed {
			t.Fatalf("status %d", r.code)
		}
	})
	t.Run("JSON body", func(t *testing.T) {
		req := httptest.NewRequest(http.MethodPost, TokenPath, strings.NewReader(`{"grant_type":"client_credentials"}`))
		req.Header.Set("Content-Type", "application/json")
		if r := do(t, e.srv.TokenHandler(), req); r.str("error") != "invalid_request" {
			t.Fatalf("got %d %v", r.code, r.body)
		}
	})
	t.Run("repeated parameter", func(t *testing.T) {
		f := tokenForm(a, "system/*.rs")
		f.Add("scope", "system/Patient.cruds")
		if r := post(t, e.srv.TokenHandler(), TokenPath, f); r.str("error") != "invalid_request" {
			t.Fatalf("got %d %v", r.code, r.body)
		}
	})
	t.Run("credentials in the query are ignored", func(t *testing.T) {
		req := httptest.NewRequest(http.MethodPost, TokenPath+"?"+tokenForm(a, "system/*.rs").Encode(), strings.NewReader(""))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if r := do(t, e.srv.TokenHandler(), req); r.str("error") != "invalid_request" {
			t.Fatalf("got %d %v", r.code, r.body)
		}
	})
}

func TestDisabledClient(t *testing.T) {
	e := newEnv(t)
	tok := e.token("system/*.rs")
	if _, err := e.srv.ValidateAccessToken(t.Context(), tok); err != nil {
		t.Fatal(err)
	}
	e.store.setDisabled(e.client, true)
	a := sign(t, jose.RS384, rsaKey, "rsa1", e.claims(e.client))
	if r := post(t, e.srv.TokenHandler(), TokenPath, tokenForm(a, "system/*.rs")); r.str("error") != "invalid_client" {
		t.Fatalf("disabled client got %d %v", r.code, r.body)
	}
	// Tokens already issued stop working within the cache TTL.
	e.clock.Advance(DefaultTokenCacheTTL)
	if _, err := e.srv.ValidateAccessToken(t.Context(), tok); !errors.Is(err, ErrInvalidToken) {
		t.Fatalf("token of a disabled client: err = %v", err)
	}
}

func TestAuditFailureFailsRequest(t *testing.T) {
	e := newEnv(t)
	e.audit.fail = true
	a := sign(t, jose.RS384, rsaKey, "rsa1", e.claims(e.client))
	r := post(t, e.srv.TokenHandler(), TokenPath, tokenForm(a, "system/*.rs"))
	if r.code != http.StatusInternalServerError || r.str("access_token") != "" {
		t.Fatalf("got %d %v", r.code, r.body)
	}
	if len(e.store.tokens) != 0 {
		t.Fatal("a token was stored although the audit event was not")
	}
}

func TestValidateAccessToken(t *testing.T) {
	e := newEnv(t)
	tok := e.token("system/*.rs")
	unknown := AccessTokenPrefix + base64.RawURLEncoding.EncodeToString(make([]byte, 32))
	for _, bad := range []string{"", "pva_", tok[:len(tok)-1], tok + "A", "pvt_" + tok[4:], unknown, strings.Repeat("x", 1<<20)} {
		if _, err := e.srv.ValidateAccessToken(t.Context(), bad); !errors.Is(err, ErrInvalidToken) {
			t.Errorf("ValidateAccessToken(%.20q) err = %v", bad, err)
		}
	}
	g, err := e.srv.ValidateAccessToken(t.Context(), tok)
	if err != nil {
		t.Fatal(err)
	}
	if want := e.clock.Now().Add(DefaultAccessTokenTTL); !g.Expires.Equal(want) {
		t.Errorf("Expires = %v, want %v", g.Expires, want)
	}
	e.clock.Advance(DefaultAccessTokenTTL)
	if _, err := e.srv.ValidateAccessToken(t.Context(), tok); !errors.Is(err, ErrInvalidToken) {
		t.Errorf("expired token: err = %v", err)
	}
}

func TestIntrospectAndRevoke(t *testing.T) {
	e := newEnv(t)
	tok := e.token("system/*.rs")
	auth := func(id string) map[string]string {
		key, kid := rsaKey, "rsa1"
		if id == e.other {
			key, kid = rsaKey2, "rsa2"
		}
		return map[string]string{"client_assertion_type": AssertionType, "client_assertion": sign(t, jose.RS384, key, kid, e.claims(id))}
	}
	call := func(h http.Handler, path, id, token string) response {
		f := form("token", token)
		for k, v := range auth(id) {
			f.Set(k, v)
		}
		return post(t, h, path, f)
	}
	introspect, revoke := e.srv.IntrospectHandler(), e.srv.RevokeHandler()

	r := call(introspect, IntrospectPath, e.client, tok)
	if r.code != 200 || r.body["active"] != true || r.str("client_id") != e.client || r.str("scope") != "system/*.rs" {
		t.Fatalf("introspect own token: %d %v", r.code, r.body)
	}
	if r := call(introspect, IntrospectPath, e.other, tok); r.code != 200 || r.body["active"] != false || len(r.body) != 1 {
		t.Fatalf("introspect another client's token: %d %v", r.code, r.body)
	}
	if r := call(introspect, IntrospectPath, e.client, "pva_garbage"); r.body["active"] != false {
		t.Fatalf("introspect garbage: %v", r.body)
	}
	if r := post(t, introspect, IntrospectPath, form("token", tok)); r.code != 400 || r.str("error") != "invalid_request" {
		t.Fatalf("introspect without client authentication: %d %v", r.code, r.body)
	}

	// Another client cannot revoke it; the answer does not say so.
	if r := call(revoke, RevokePath, e.other, tok); r.code != 200 {
		t.Fatalf("revoke by another client: %d %v", r.code, r.body)
	}
	if _, err := e.srv.ValidateAccessToken(t.Context(), tok); err != nil {
		t.Fatalf("another client revoked the token: %v", err)
	}
	if r := call(revoke, RevokePath, e.client, tok); r.code != 200 {
		t.Fatalf("revoke: %d %v", r.code, r.body)
	}
	if ev := e.audit.last(); ev.Action != ActionTokenRevoke || ev.Agent.Client != e.client {
		t.Errorf("revocation audit event = %+v", ev)
	}
	// Revocation through this process is immediate, despite the cache.
	if _, err := e.srv.ValidateAccessToken(t.Context(), tok); !errors.Is(err, ErrInvalidToken) {
		t.Fatalf("revoked token: err = %v", err)
	}
	if r := call(introspect, IntrospectPath, e.client, tok); r.body["active"] != false {
		t.Fatalf("introspect revoked token: %v", r.body)
	}
	if r := call(revoke, RevokePath, e.client, "unknown"); r.code != 200 {
		t.Fatalf("revoke unknown token: %d", r.code)
	}
}

func TestConfiguration(t *testing.T) {
	e := newEnv(t)
	r := do(t, e.srv.ConfigurationHandler(), httptest.NewRequest(http.MethodGet, ConfigurationPath, nil))
	if r.code != 200 {
		t.Fatal(r.code)
	}
	var c Configuration
	b, _ := json.Marshal(r.body)
	if err := json.Unmarshal(b, &c); err != nil {
		t.Fatal(err)
	}
	if c.TokenEndpoint != testBase+TokenPath || c.TokenEndpointAuthMethodsSupported[0] != "private_key_jwt" ||
		strings.Join(c.TokenEndpointAuthSigningAlgs, ",") != "RS384,ES384" || c.GrantTypesSupported[0] != "client_credentials" ||
		c.Capabilities[0] != "client-confidential-asymmetric" || c.RevocationEndpoint != testBase+RevokePath {
		t.Errorf("configuration = %+v", c)
	}
}

func TestNewOptions(t *testing.T) {
	st, a := newMemStore(), &fakeAudit{}
	for _, tt := range []struct {
		name string
		o    Options
	}{
		{"no audit", Options{BaseURL: testBase}},
		{"http base", Options{BaseURL: "http://phivault.example", Audit: a}},
		{"relative base", Options{BaseURL: "/x", Audit: a}},
		{"ttl too long", Options{BaseURL: testBase, Audit: a, AccessTokenTTL: 16 * time.Minute}},
		{"client without timeout", Options{BaseURL: testBase, Audit: a, HTTPClient: &http.Client{}}},
	} {
		if _, err := New(st, tt.o); err == nil {
			t.Errorf("%s: New accepted %+v", tt.name, tt.o)
		}
	}
}

func FuzzAssertion(f *testing.F) {
	e := newEnv(f)
	seeds := []string{
		sign(f, jose.RS384, rsaKey, "rsa1", e.claims(e.client)),
		sign(f, jose.ES384, ecKey, "ec1", e.claims(e.client)),
	}
	// signedPart is header.payload: what the signature covers.
	signedPart := func(s string) string {
		if i := strings.LastIndexByte(s, '.'); i >= 0 {
			return s[:i]
		}
		return s
	}
	for _, s := range seeds {
		f.Add(s)
		f.Add(strings.Replace(s, ".", "..", 1))
	}
	b, err := os.ReadFile("testdata/assertions.txt")
	if err != nil {
		f.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		f.Add(line)
	}
	f.Fuzz(func(t *testing.T, a string) {
		c, _, err := e.srv.auth.verifyAssertion(t.Context(), a)
		if err == nil {
			// Only what the client signed may verify.
			if !slices.ContainsFunc(seeds, func(s string) bool { return signedPart(s) == signedPart(a) }) {
				t.Fatalf("accepted an assertion the client never signed, for %s", c.ID)
			}
			return
		}
		if !errors.Is(err, ErrInvalidClient) {
			t.Fatalf("error %v is not invalid_client", err)
		}
		desc := httpError(err).Msg
		if len(desc) > 100 || (len(a) > 16 && strings.Contains(desc, a)) {
			t.Fatalf("description %q echoes input", desc)
		}
	})
}

func BenchmarkValidateAccessToken(b *testing.B) {
	e := newEnv(b)
	tok := e.token("system/*.rs")
	ctx := b.Context()
	b.ReportAllocs()
	for b.Loop() {
		g, err := e.srv.ValidateAccessToken(ctx, tok)
		if err != nil || !g.Scopes.Allows(scope.System, "Observation", scope.Read) {
			b.Fatal(err)
		}
	}
}
