package httpapi_test

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/phivault/phivault/internal/apitest"
	"github.com/phivault/phivault/internal/authn/smart"
	"github.com/phivault/phivault/internal/authn/smart/scope"
)

// backendToken registers a SMART Backend Services client allowed
// system/*.cruds and obtains an access token for the scopes asked,
// through /oauth2/token with a signed RS384 assertion. Each token has a
// client of its own: the authorizer's subject cache is keyed by client
// (a separate defect, issue 11 item 9), and this test is about scopes.
func backendToken(t *testing.T, s *apitest.Server, scopes string) apitest.H {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	set, _ := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &key.PublicKey, KeyID: "k1", Algorithm: "RS384", Use: "sig"}}})
	reg := s.App.ClientAdmin()
	max, err := scope.ParseSet("system/*.cruds")
	if err != nil {
		t.Fatal(err)
	}
	id, err := reg.RegisterBackendBreakGlass(t.Context(), cliAgent, smart.BackendRegistration{Name: "history-client", JWKS: set, Scopes: max})
	if err != nil {
		t.Fatal(err)
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS384, Key: jose.JSONWebKey{Key: key, KeyID: "k1"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	tokenURL := s.URL + "/oauth2/token"
	{
		now := time.Now()
		a, err := jwt.Signed(signer).Claims(jwt.Claims{Issuer: id, Subject: id, Audience: jwt.Audience{tokenURL},
			Expiry: jwt.NewNumericDate(now.Add(2 * time.Minute)), IssuedAt: jwt.NewNumericDate(now), ID: rand.Text()}).Serialize()
		if err != nil {
			t.Fatal(err)
		}
		form := url.Values{"grant_type": {"client_credentials"}, "client_assertion_type": {smart.AssertionType},
			"client_assertion": {a}, "scope": {scopes}}
		resp := s.Do(t, "POST", "/oauth2/token", form.Encode(), apitest.H{"Authorization": apitest.NoAuth,
			"Content-Type": "application/x-www-form-urlencoded"}).Want(t, http.StatusOK)
		var tok struct {
			AccessToken string `json:"access_token"`
			Scope       string `json:"scope"`
		}
		if err := json.Unmarshal(resp.Body, &tok); err != nil || !strings.HasPrefix(tok.AccessToken, "pva_") {
			t.Fatalf("token response is not a pva_ access token (%d bytes)", len(resp.Body))
		}
		if tok.Scope != scopes {
			t.Fatalf("granted scopes %q, want %q", tok.Scope, scopes)
		}
		return apitest.H{"Authorization": "Bearer " + tok.AccessToken}
	}
}

// TestSMARTHistoryScopes: SMART v2 puts instance history under "r" and
// type- and system-level history under "s" (SMART App Launch 2.0,
// "Scopes for requesting FHIR resources"). A token holding only the read
// scope of a type used to page through the type's whole history.
func TestSMARTHistoryScopes(t *testing.T) {
	apitest.Run(t, func(t *testing.T, s *apitest.Server) {
		pid := s.Create(t, map[string]any{"resourceType": "Patient", "gender": "other"})
		oid := s.Create(t, observation(pid, nil))

		typeHistory := "/fhir/Observation/_history"
		instanceHistory := "/fhir/Observation/" + oid + "/_history"
		for _, tc := range []struct {
			scopes string
			path   string
			want   int
		}{
			{"system/Observation.r", typeHistory, http.StatusForbidden},
			{"system/Observation.r", instanceHistory, http.StatusOK},
			{"system/Observation.r", "/fhir/Observation/" + oid + "/_history/1", http.StatusOK},
			{"system/Observation.s", typeHistory, http.StatusOK},
			{"system/Observation.s", instanceHistory, http.StatusForbidden},
			{"system/Observation.rs", typeHistory, http.StatusOK},
			{"system/Patient.s", typeHistory, http.StatusForbidden},
			{"system/*.r", "/fhir/_history", http.StatusForbidden},
			{"system/*.s", "/fhir/_history", http.StatusOK},
		} {
			t.Run(tc.scopes+" "+tc.path, func(t *testing.T) {
				resp := s.Do(t, "GET", tc.path, nil, backendToken(t, s, tc.scopes))
				if tc.want != http.StatusOK {
					resp.WantOutcome(t, tc.want)
					return
				}
				resp.Want(t, tc.want)
				found := false
				for _, e := range resp.Entries() {
					if full, _ := e["fullUrl"].(string); strings.HasSuffix(full, "/Observation/"+oid) {
						found = true
					}
				}
				if !strings.HasSuffix(tc.path, "/_history/1") && !found {
					t.Errorf("the history does not hold Observation/%s: %s", oid, resp)
				}
			})
		}
	})
}
