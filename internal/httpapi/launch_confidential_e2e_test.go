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
	"golang.org/x/oauth2"

	"github.com/phivault/phivault/internal/authn/smart"
	"github.com/phivault/phivault/internal/authn/smart/scope"
	"github.com/phivault/phivault/internal/identity"
)

// TestSMARTLaunchConfidential: a confidential asymmetric app exchanges
// its code with a private_key_jwt assertion (and PKCE); without the
// assertion it is refused.
func TestSMARTLaunchConfidential(t *testing.T) {
	forDrivers(t, testLaunchConfidential)
}

func testLaunchConfidential(t *testing.T, driver string) {
	e := startLaunch(t, driver)
	e.addLaunchUser(t, "dr.quinn", "Practitioner/pr-3", identity.RolePhysician)
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	set, _ := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &key.PublicKey, KeyID: "k1", Algorithm: "RS384", Use: "sig"}}})
	reg := e.app.ClientAdmin()
	sc, _ := scope.ParseSet("openid fhirUser user/*.rs offline_access")
	id, err := reg.RegisterAppBreakGlass(t.Context(), cliAgent, smart.AppRegistration{Name: "dashboard", JWKS: set, RedirectURIs: []string{appRedirect}, Scopes: sc})
	if err != nil {
		t.Fatal(err)
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS384, Key: jose.JSONWebKey{Key: key, KeyID: "k1"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	assertion := func() oauth2.AuthCodeOption {
		now := e.clock.Now()
		a, err := jwt.Signed(signer).Claims(jwt.Claims{Issuer: id, Subject: id, Audience: jwt.Audience{e.url + smart.TokenPath},
			Expiry: jwt.NewNumericDate(now.Add(2 * time.Minute)), IssuedAt: jwt.NewNumericDate(now), ID: rand.Text()}).Serialize()
		if err != nil {
			t.Fatal(err)
		}
		return oauth2.SetAuthURLParam("client_assertion", a)
	}
	typ := oauth2.SetAuthURLParam("client_assertion_type", smart.AssertionType)

	cfg := e.oauthConfig(id, "openid fhirUser user/*.rs offline_access")
	b := e.browser(t)
	codeOf := func(state, verifier string) string {
		p := b.send(t, "GET", e.authURL(cfg, state, verifier), nil)
		if state == "c1" {
			// A recovery code is a second factor inside the flow too.
			p = b.signIn(t, p, "dr.quinn", "recovery:"+e.recovery[0])
		}
		return redirected(t, b.consent(t, p, "approve")).Get("code")
	}

	verifier := oauth2.GenerateVerifier()
	tok, err := cfg.Exchange(e.ctx(t), codeOf("c1", verifier), oauth2.VerifierOption(verifier), typ, assertion())
	if err != nil {
		t.Fatal(err)
	}
	// user/ scopes of a workforce user: not confined to one patient.
	for _, path := range []string{"/fhir/Observation/" + e.other.obs, "/fhir/Observation/" + e.mine.obs} {
		if got, _ := e.fhirGet(t, tok.AccessToken, path); got != http.StatusOK {
			t.Errorf("GET %s with user/*.rs: %d", path, got)
		}
	}
	// A scope never grants more than the user's own access: user/*.rs does
	// not reach a patient the physician has no treatment relationship with.
	stranger := e.create(t, map[string]any{"resourceType": "Patient", "name": []any{map[string]any{"family": "Stranger"}}})
	strangerObs := e.create(t, launchObservation(stranger))
	if got, _ := e.fhirGet(t, tok.AccessToken, "/fhir/Observation/"+strangerObs); got != http.StatusForbidden && got != http.StatusNotFound {
		t.Errorf("GET another patient's Observation with user/*.rs and no relationship: %d, want 403 or 404", got)
	}
	if got, _ := e.fhirGet(t, tok.AccessToken, "/fhir/Condition?patient="+e.mine.patient); got != http.StatusOK {
		t.Errorf("search with user/*.rs: %d", got)
	}
	if got, _ := e.fhirGet(t, tok.AccessToken, "/fhir/Observation/"+e.mine.obs+"/_history/1"); got != http.StatusOK {
		t.Errorf("vread with user/*.rs: %d", got)
	}
	// Introspection by the client names the user.
	form := url.Values{"token": {tok.AccessToken}, "client_assertion_type": {smart.AssertionType}}
	now := e.clock.Now()
	a, _ := jwt.Signed(signer).Claims(jwt.Claims{Issuer: id, Subject: id, Audience: jwt.Audience{e.url + smart.TokenPath},
		Expiry: jwt.NewNumericDate(now.Add(2 * time.Minute)), IssuedAt: jwt.NewNumericDate(now), ID: rand.Text()}).Serialize()
	form.Set("client_assertion", a)
	req, _ := http.NewRequestWithContext(t.Context(), "POST", e.url+smart.IntrospectPath, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := e.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var in struct {
		Active   bool   `json:"active"`
		Sub      string `json:"sub"`
		FHIRUser string `json:"fhirUser"`
	}
	err = json.NewDecoder(resp.Body).Decode(&in)
	resp.Body.Close()
	if err != nil || !in.Active || in.Sub == "" || in.FHIRUser != e.url+"/fhir/Practitioner/pr-3" {
		t.Errorf("introspection: %+v, %v", in, err)
	}

	// Refresh also needs the assertion.
	if _, err := cfg.TokenSource(e.ctx(t), &oauth2.Token{RefreshToken: tok.RefreshToken}).Token(); err == nil {
		t.Fatal("a confidential client refreshed without its assertion")
	}

	// Without the assertion the code is not exchanged.
	v2 := oauth2.GenerateVerifier()
	_, err = cfg.Exchange(e.ctx(t), codeOf("c2", v2), oauth2.VerifierOption(v2))
	wantOAuthError(t, err, "invalid_client")
}
