package httpapi_test

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/phivault/phivault/internal/apitest"
	"github.com/phivault/phivault/internal/audit"
	"github.com/phivault/phivault/internal/authn/smart"
	"github.com/phivault/phivault/internal/authn/smart/scope"
)

// TestSMARTBackendServicesFHIR drives SMART Backend Services through the
// real server: a registered client signs an RS384 assertion with an
// independent JOSE implementation (go-jose), gets an access token at
// /oauth2/token, and reaches /fhir only within its scopes.
func TestSMARTBackendServicesFHIR(t *testing.T) {
	apitest.Run(t, func(t *testing.T, s *apitest.Server) {
		key, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			t.Fatal(err)
		}
		set, _ := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &key.PublicKey, KeyID: "k1", Algorithm: "RS384", Use: "sig"}}})
		reg := s.App.ClientAdmin()
		scopes, err := scope.ParseSet("system/Patient.rs system/Observation.cruds")
		if err != nil {
			t.Fatal(err)
		}
		id, err := reg.RegisterBackendBreakGlass(t.Context(), cliAgent, smart.BackendRegistration{Name: "lab-feed", JWKS: set, Scopes: scopes})
		if err != nil {
			t.Fatal(err)
		}
		signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS384, Key: jose.JSONWebKey{Key: key, KeyID: "k1"}}, nil)
		if err != nil {
			t.Fatal(err)
		}
		tokenURL := s.URL + "/oauth2/token"
		assertion := func() string {
			now := time.Now()
			a, err := jwt.Signed(signer).Claims(jwt.Claims{Issuer: id, Subject: id, Audience: jwt.Audience{tokenURL},
				Expiry: jwt.NewNumericDate(now.Add(2 * time.Minute)), IssuedAt: jwt.NewNumericDate(now), ID: rand.Text()}).Serialize()
			if err != nil {
				t.Fatal(err)
			}
			return a
		}
		form := url.Values{"grant_type": {"client_credentials"}, "client_assertion_type": {smart.AssertionType},
			"client_assertion": {assertion()}, "scope": {"system/Patient.rs system/Observation.rs"}}
		resp := s.Do(t, "POST", "/oauth2/token", form.Encode(), apitest.H{"Authorization": apitest.NoAuth,
			"Content-Type": "application/x-www-form-urlencoded"}).Want(t, http.StatusOK)
		body := resp.Body
		var tok struct {
			AccessToken string `json:"access_token"`
			Scope       string `json:"scope"`
		}
		if err := json.Unmarshal(body, &tok); err != nil || !strings.HasPrefix(tok.AccessToken, "pva_") {
			t.Fatalf("token response is not a pva_ access token (%d bytes)", len(body))
		}
		bearer := apitest.H{"Authorization": "Bearer " + tok.AccessToken}

		// A resource created with the admin token, read with the SMART token.
		created := s.Do(t, "POST", "/fhir/Patient", map[string]any{"resourceType": "Patient", "gender": "female"}, nil).Want(t, http.StatusCreated)
		s.Do(t, "GET", "/fhir/Patient/"+created.ID(), nil, bearer).Want(t, http.StatusOK)
		s.Do(t, "GET", "/fhir/Patient?gender=female", nil, bearer).Want(t, http.StatusOK)
		// Outside the granted scopes: create (only .rs was granted), and a type not granted.
		s.Do(t, "POST", "/fhir/Patient", map[string]any{"resourceType": "Patient"}, bearer).WantOutcome(t, http.StatusForbidden)
		s.Do(t, "GET", "/fhir/Condition?patient="+created.ID(), nil, bearer).WantOutcome(t, http.StatusForbidden)
		bundle := map[string]any{"resourceType": "Bundle", "type": "batch", "entry": []any{
			map[string]any{"request": map[string]any{"method": "DELETE", "url": "Patient/" + created.ID()}}}}
		s.Do(t, "POST", "/fhir", bundle, bearer).WantOutcome(t, http.StatusForbidden)
		s.Do(t, "GET", "/fhir/Patient/"+created.ID(), nil, nil).Want(t, http.StatusOK) // not deleted
		// Each refusal by the scope gate is in the audit log, with the gate
		// as the deciding policy and no search value.
		evs, err := s.App.Transparency().Events(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		var refused []string
		for _, ev := range evs {
			if ev.Outcome == audit.OutcomeDenied && slices.Contains(ev.Policies, "smart-scope") {
				refused = append(refused, string(ev.Action)+" "+ev.Query)
				if strings.Contains(ev.Query, created.ID()) {
					t.Errorf("a refusal's query names an id or value: %q", ev.Query)
				}
			}
		}
		if want := []string{"create POST Patient", "search-type GET Condition"}; len(refused) < 2 || !slices.Equal(refused[:2], want) {
			t.Errorf("audited scope refusals %v, want %v first", refused, want)
		}
		// An unknown or malformed SMART token is a 401, like any bad credential.
		s.Do(t, "GET", "/fhir/Patient", nil, apitest.H{"Authorization": "Bearer pva_" + strings.Repeat("A", 43)}).WantOutcome(t, http.StatusUnauthorized)
		// The discovery document advertises the token endpoint.
		cfg := s.Do(t, "GET", "/.well-known/smart-configuration", nil, nil).Want(t, http.StatusOK)
		if !strings.Contains(cfg.String(), tokenURL) {
			t.Errorf("smart-configuration does not name %s: %s", tokenURL, cfg.String())
		}
	})
}
