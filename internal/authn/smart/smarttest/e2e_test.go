package smarttest_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/phivault/phivault/internal/audit"
	"github.com/phivault/phivault/internal/authn/smart"
	"github.com/phivault/phivault/internal/authn/smart/scope"
	"github.com/phivault/phivault/internal/storage/sqlite"
)

type nopAudit struct{ n int }

func (a *nopAudit) Record(context.Context, audit.Event) error { a.n++; return nil }

// TestBackendServicesSQLite drives the flow over a real database: register
// an ES384 client, get a token, use it, replay the assertion, revoke.
func TestBackendServicesSQLite(t *testing.T) {
	db, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "phivault.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	st := db.Smart()
	const base = "https://phivault.test"
	srv, err := smart.New(st, smart.Options{BaseURL: base, Audit: &nopAudit{}})
	if err != nil {
		t.Fatal(err)
	}
	reg, err := smart.NewRegistry(st, smart.RegistryOptions{Approval: smart.ApprovalBreakGlass, RegisteredBy: "cli"})
	if err != nil {
		t.Fatal(err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	set, _ := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &key.PublicKey, KeyID: "k1", Algorithm: "ES384", Use: "sig"}}})
	scopes, _ := scope.ParseSet("system/Observation.rs system/Patient.read")
	id, err := reg.RegisterBackend(t.Context(), smart.BackendRegistration{Name: "lab", JWKS: set, Scopes: scopes})
	if err != nil {
		t.Fatal(err)
	}

	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES384, Key: jose.JSONWebKey{Key: key, KeyID: "k1"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	assertion, err := jwt.Signed(signer).Claims(jwt.Claims{Issuer: id, Subject: id, Audience: jwt.Audience{srv.TokenURL()},
		Expiry: jwt.NewNumericDate(now.Add(3 * time.Minute)), IssuedAt: jwt.NewNumericDate(now), ID: rand.Text()}).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	post := func(h http.Handler, f url.Values) (int, map[string]any) {
		req := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(f.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		var body map[string]any
		_ = json.Unmarshal(rec.Body.Bytes(), &body)
		return rec.Code, body
	}
	f := url.Values{"grant_type": {"client_credentials"}, "client_assertion_type": {smart.AssertionType},
		"client_assertion": {assertion}, "scope": {"system/Observation.rs system/Condition.rs"}}
	code, body := post(srv.TokenHandler(), f)
	if code != 200 || body["scope"] != "system/Observation.rs" {
		t.Fatalf("token: %d %v", code, body)
	}
	tok := body["access_token"].(string)
	g, err := srv.ValidateAccessToken(t.Context(), tok)
	if err != nil || g.ClientID != id || !g.Scopes.Allows(scope.System, "Observation", scope.Search) {
		t.Fatalf("validate: %+v %v", g, err)
	}
	if code, body := post(srv.TokenHandler(), f); code != 401 || body["error"] != "invalid_client" {
		t.Fatalf("replay: %d %v", code, body)
	}
	// Revocation seen by a second server instance over the same database
	// (another process) once its cache has not seen the token.
	srv2, _ := smart.New(st, smart.Options{BaseURL: base, Audit: &nopAudit{}})
	if _, err := srv2.ValidateAccessToken(t.Context(), tok); err != nil {
		t.Fatal(err)
	}
	if err := st.RevokeToken(t.Context(), hash(tok)); err != nil {
		t.Fatal(err)
	}
	srv3, _ := smart.New(st, smart.Options{BaseURL: base, Audit: &nopAudit{}})
	if _, err := srv3.ValidateAccessToken(t.Context(), tok); !errors.Is(err, smart.ErrInvalidToken) {
		t.Fatalf("revoked in the database: err = %v", err)
	}
}
