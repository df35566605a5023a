package smart

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/phivault/phivault/internal/authn/smart/scope"
)

func TestRegisterBackend(t *testing.T) {
	testKeys(t)
	rsa1024, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	p256, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	raw := func(keys ...jose.JSONWebKey) []byte {
		b, err := json.Marshal(jose.JSONWebKeySet{Keys: keys})
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	sys := mustScopes(t, "system/*.rs")
	tests := []struct {
		name string
		reg  BackendRegistration
		err  error // nil: accepted
	}{
		{"RSA 2048", BackendRegistration{Name: "a", JWKS: raw(jose.JSONWebKey{Key: &rsaKey.PublicKey, KeyID: "k"}), Scopes: sys}, nil},
		{"EC P-384 with alg", BackendRegistration{Name: "a", JWKS: raw(jose.JSONWebKey{Key: &ecKey.PublicKey, KeyID: "k", Algorithm: "ES384", Use: "sig"}), Scopes: sys}, nil},
		{"https URL", BackendRegistration{Name: "a", JWKSURL: "https://lab.example/jwks.json", Scopes: sys}, nil},
		{"RSA 1024", BackendRegistration{Name: "a", JWKS: raw(jose.JSONWebKey{Key: &rsa1024.PublicKey, KeyID: "k"}), Scopes: sys}, ErrInvalidJWKS},
		{"EC P-256", BackendRegistration{Name: "a", JWKS: raw(jose.JSONWebKey{Key: &p256.PublicKey, KeyID: "k"}), Scopes: sys}, ErrInvalidJWKS},
		{"no kid", BackendRegistration{Name: "a", JWKS: raw(jose.JSONWebKey{Key: &rsaKey.PublicKey}), Scopes: sys}, ErrInvalidJWKS},
		{"private RSA key", BackendRegistration{Name: "a", JWKS: raw(jose.JSONWebKey{Key: rsaKey, KeyID: "k"}), Scopes: sys}, ErrInvalidJWKS},
		{"private EC key", BackendRegistration{Name: "a", JWKS: raw(jose.JSONWebKey{Key: ecKey, KeyID: "k"}), Scopes: sys}, ErrInvalidJWKS},
		{"symmetric key", BackendRegistration{Name: "a", JWKS: raw(jose.JSONWebKey{Key: []byte("0123456789abcdef0123456789abcdef"), KeyID: "k"}), Scopes: sys}, ErrInvalidJWKS},
		{"RSA key with alg RS256", BackendRegistration{Name: "a", JWKS: raw(jose.JSONWebKey{Key: &rsaKey.PublicKey, KeyID: "k", Algorithm: "RS256"}), Scopes: sys}, ErrInvalidJWKS},
		{"encryption key", BackendRegistration{Name: "a", JWKS: raw(jose.JSONWebKey{Key: &rsaKey.PublicKey, KeyID: "k", Use: "enc"}), Scopes: sys}, ErrInvalidJWKS},
		{"duplicate kid", BackendRegistration{Name: "a", JWKS: raw(jose.JSONWebKey{Key: &rsaKey.PublicKey, KeyID: "k"}, jose.JSONWebKey{Key: &ecKey.PublicKey, KeyID: "k"}), Scopes: sys}, ErrInvalidJWKS},
		{"empty set", BackendRegistration{Name: "a", JWKS: []byte(`{"keys":[]}`), Scopes: sys}, ErrInvalidJWKS},
		{"not JSON", BackendRegistration{Name: "a", JWKS: []byte(`keys`), Scopes: sys}, ErrInvalidJWKS},
		{"too large", BackendRegistration{Name: "a", JWKS: []byte(`{"keys":[` + strings.Repeat(" ", MaxJWKSBytes) + `]}`), Scopes: sys}, ErrInvalidJWKS},
		{"both", BackendRegistration{Name: "a", JWKS: raw(jose.JSONWebKey{Key: &rsaKey.PublicKey, KeyID: "k"}), JWKSURL: "https://lab.example/jwks", Scopes: sys}, ErrInvalidJWKS},
		{"neither", BackendRegistration{Name: "a", Scopes: sys}, ErrInvalidJWKS},
		{"http URL", BackendRegistration{Name: "a", JWKSURL: "http://lab.example/jwks", Scopes: sys}, ErrInvalidJWKS},
		{"loopback http not allowed", BackendRegistration{Name: "a", JWKSURL: "http://127.0.0.1/jwks", Scopes: sys}, ErrInvalidJWKS},
		{"URL with credentials", BackendRegistration{Name: "a", JWKSURL: "https://u:p@lab.example/jwks", Scopes: sys}, ErrInvalidJWKS},
		{"patient scope", BackendRegistration{Name: "a", JWKSURL: "https://lab.example/jwks", Scopes: mustScopes(t, "patient/*.rs")}, scope.ErrSyntax},
		{"openid", BackendRegistration{Name: "a", JWKSURL: "https://lab.example/jwks", Scopes: mustScopes(t, "openid system/*.rs")}, scope.ErrSyntax},
		{"restricted scope", BackendRegistration{Name: "a", JWKSURL: "https://lab.example/jwks", Scopes: mustScopes(t, "system/Observation.rs?category=laboratory")}, scope.ErrSyntax},
		{"no scope", BackendRegistration{Name: "a", JWKSURL: "https://lab.example/jwks"}, scope.ErrSyntax},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := newMemStore()
			reg, err := NewRegistry(st, RegistryOptions{})
			if err != nil {
				t.Fatal(err)
			}
			id, err := reg.RegisterBackend(t.Context(), tt.reg)
			if tt.err == nil {
				if err != nil {
					t.Fatal(err)
				}
				c, err := st.Client(t.Context(), id)
				if err != nil || c.Type != Backend || c.Scopes.String() != tt.reg.Scopes.String() {
					t.Fatalf("stored client %+v, %v", c, err)
				}
				if c.Approval != ApprovalPending {
					t.Fatalf("a backend client with %s is stored %q, want pending (two-person rule)", c.Scopes, c.Approval)
				}
				if strings.Contains(string(c.JWKS), `"d"`) {
					t.Fatal("private material stored")
				}
				return
			}
			if !errors.Is(err, tt.err) {
				t.Fatalf("err = %v, want %v", err, tt.err)
			}
			if len(st.clients) != 0 {
				t.Fatal("a refused client was stored")
			}
		})
	}
}

func mustScopes(t *testing.T, s string) scope.Set {
	t.Helper()
	set, err := scope.ParseSet(s)
	if err != nil {
		t.Fatal(err)
	}
	return set
}

func TestJWKSURL(t *testing.T) {
	testKeys(t)
	var fetches atomic.Int32
	var body atomic.Value
	body.Store(jwks(t, map[string]any{"ec1": &ecKey.PublicKey}))
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fetches.Add(1)
		if r.URL.Path == "/redirect" {
			http.Redirect(w, r, "/jwks", http.StatusFound)
			return
		}
		_, _ = w.Write(body.Load().([]byte))
	}))
	t.Cleanup(ts.Close)

	clk := &clock{t: time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)}
	st, au := newMemStore(), &fakeAudit{}
	hc := ts.Client()
	hc.Timeout = 5 * time.Second
	srv, err := New(st, Options{BaseURL: testBase, Audit: au, Now: clk.Now, AllowLoopbackJWKS: true, HTTPClient: hc})
	if err != nil {
		t.Fatal(err)
	}
	if hc.CheckRedirect != nil {
		t.Fatal("New changed the caller's http.Client")
	}
	reg, _ := NewRegistry(st, RegistryOptions{AllowLoopbackJWKS: true, Now: clk.Now, Approval: ApprovalBreakGlass})
	sys := mustScopes(t, "system/*.rs")
	id, err := reg.RegisterBackend(t.Context(), BackendRegistration{Name: "url", JWKSURL: ts.URL + "/jwks", Scopes: sys})
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, clock: clk}
	get := func(key any, alg jose.SignatureAlgorithm, kid string) response {
		return post(t, srv.TokenHandler(), TokenPath, tokenForm(sign(t, alg, key, kid, e.claims(id)), "system/*.rs"))
	}
	for range 2 {
		if r := get(ecKey, jose.ES384, "ec1"); r.code != 200 {
			t.Fatalf("token: %d %v", r.code, r.body)
		}
	}
	if n := fetches.Load(); n != 1 {
		t.Errorf("%d fetches for two requests, want 1 (cached)", n)
	}
	// Key rotation: the new kid is found once the rate limit allows a refetch.
	body.Store(jwks(t, map[string]any{"ec1": &ecKey.PublicKey, "rsa1": &rsaKey.PublicKey}))
	if r := get(rsaKey, jose.RS384, "rsa1"); r.code != 401 {
		t.Fatalf("unknown kid within the refetch interval: %d %v", r.code, r.body)
	}
	clk.Advance(jwksMinRefresh)
	if r := get(rsaKey, jose.RS384, "rsa1"); r.code != 200 {
		t.Fatalf("rotated key: %d %v", r.code, r.body)
	}
	if n := fetches.Load(); n != 2 {
		t.Errorf("%d fetches, want 2", n)
	}

	// A redirect is not followed.
	id2, err := reg.RegisterBackend(t.Context(), BackendRegistration{Name: "redir", JWKSURL: ts.URL + "/redirect", Scopes: sys})
	if err != nil {
		t.Fatal(err)
	}
	before := fetches.Load()
	r := post(t, srv.TokenHandler(), TokenPath, tokenForm(sign(t, jose.ES384, ecKey, "ec1", e.claims(id2)), "system/*.rs"))
	if r.code != 401 || fetches.Load() != before+1 {
		t.Fatalf("redirected JWKS: %d %v, %d fetches", r.code, r.body, fetches.Load()-before)
	}
}
