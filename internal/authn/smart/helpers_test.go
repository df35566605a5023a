package smart

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/phivault/phivault/internal/authn/smart/scope"
)

const testBase = "https://phivault.test"

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time          { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Advance(d time.Duration) { c.mu.Lock(); defer c.mu.Unlock(); c.t = c.t.Add(d) }

// Keys are generated once per test binary: RSA generation is slow.
var (
	keysOnce sync.Once
	rsaKey   *rsa.PrivateKey
	rsaKey2  *rsa.PrivateKey
	ecKey    *ecdsa.PrivateKey
)

func testKeys(t testing.TB) {
	t.Helper()
	keysOnce.Do(func() {
		var err error
		if rsaKey, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
			panic(err)
		}
		if rsaKey2, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
			panic(err)
		}
		if ecKey, err = ecdsa.GenerateKey(elliptic.P384(), rand.Reader); err != nil {
			panic(err)
		}
	})
}

// jwks is the public JWK Set of keys, by kid.
func jwks(t testing.TB, keys map[string]any) []byte {
	t.Helper()
	var set jose.JSONWebKeySet
	for kid, k := range keys {
		set.Keys = append(set.Keys, jose.JSONWebKey{Key: k, KeyID: kid})
	}
	b, err := json.Marshal(set)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

type env struct {
	t      testing.TB
	clock  *clock
	store  *memStore
	audit  *fakeAudit
	srv    *Server
	reg    *Registry
	client string // backend client with kids "rsa1" (RS384) and "ec1" (ES384)
	other  string // a second backend client with kid "rsa2"
}

func newEnv(t testing.TB) *env {
	t.Helper()
	testKeys(t)
	e := &env{t: t, clock: &clock{t: time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)}, store: newMemStore(), audit: &fakeAudit{}}
	var err error
	e.srv, err = New(e.store, Options{BaseURL: testBase, Audit: e.audit, Now: e.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	// Break glass: these clients are usable at once (approval_test.go
	// covers pending and rejected clients).
	e.reg, err = NewRegistry(e.store, RegistryOptions{Now: e.clock.Now, Approval: ApprovalBreakGlass})
	if err != nil {
		t.Fatal(err)
	}
	e.client = e.register(jwks(t, map[string]any{"rsa1": &rsaKey.PublicKey, "ec1": &ecKey.PublicKey}), "system/*.rs system/Patient.cruds")
	e.other = e.register(jwks(t, map[string]any{"rsa2": &rsaKey2.PublicKey}), "system/*.rs")
	return e
}

func (e *env) register(set []byte, scopes string) string {
	e.t.Helper()
	s, err := scope.ParseSet(scopes)
	if err != nil {
		e.t.Fatal(err)
	}
	id, err := e.reg.RegisterBackend(e.t.Context(), BackendRegistration{Name: "lab feed", JWKS: set, Scopes: s})
	if err != nil {
		e.t.Fatal(err)
	}
	return id
}

// claims are the claims of a good assertion from client id at now.
func (e *env) claims(id string) jwt.Claims {
	now := e.clock.Now()
	return jwt.Claims{
		Issuer:   id,
		Subject:  id,
		Audience: jwt.Audience{testBase + TokenPath},
		Expiry:   jwt.NewNumericDate(now.Add(4 * time.Minute)),
		IssuedAt: jwt.NewNumericDate(now),
		ID:       rand.Text(),
	}
}

// sign signs claims with go-jose (the independent implementation).
func sign(t testing.TB, alg jose.SignatureAlgorithm, key any, kid string, claims any) string {
	t.Helper()
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: jose.JSONWebKey{Key: key, KeyID: kid}},
		(&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		t.Fatal(err)
	}
	s, err := jwt.Signed(signer).Claims(claims).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func form(kv ...string) url.Values {
	v := url.Values{}
	for i := 0; i+1 < len(kv); i += 2 {
		v.Set(kv[i], kv[i+1])
	}
	return v
}

func tokenForm(assertion, scopes string) url.Values {
	return form("grant_type", "client_credentials", "client_assertion_type", AssertionType,
		"client_assertion", assertion, "scope", scopes)
}

type response struct {
	code int
	hdr  http.Header
	body map[string]any
}

func (r response) str(k string) string { s, _ := r.body[k].(string); return s }

func post(t testing.TB, h http.Handler, path string, f url.Values) response {
	t.Helper()
	req := httptest.NewRequest(http.MethodPost, path, strings.NewReader(f.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return do(t, h, req)
}

func do(t testing.TB, h http.Handler, req *http.Request) response {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	r := response{code: rec.Code, hdr: rec.Header()}
	if strings.HasPrefix(rec.Header().Get("Content-Type"), "application/json") {
		if err := json.Unmarshal(rec.Body.Bytes(), &r.body); err != nil {
			t.Fatalf("decoding response %q: %v", rec.Body.String(), err)
		}
	}
	return r
}

// token gets an access token for the main client, or fails the test.
func (e *env) token(scopes string) string {
	e.t.Helper()
	a := sign(e.t, jose.RS384, rsaKey, "rsa1", e.claims(e.client))
	r := post(e.t, e.srv.TokenHandler(), TokenPath, tokenForm(a, scopes))
	if r.code != http.StatusOK {
		e.t.Fatalf("token: %d %v", r.code, r.body)
	}
	return r.str("access_token")
}
