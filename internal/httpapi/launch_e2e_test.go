package httpapi_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/phivault/phivault/internal/audit"
	"github.com/phivault/phivault/internal/authn/smart"
	"github.com/phivault/phivault/internal/identity"
	"github.com/phivault/phivault/internal/storage/sqldb"
)

// TestSMARTLaunchStandalone drives a standalone launch end to end with a
// real OAuth2 client (golang.org/x/oauth2) and a cookie-jar browser over
// HTTPS, on both drivers: sign-in with TOTP inside the flow, the
// patient picker, consent, code exchange with PKCE, the id_token
// verified with go-oidc through discovery and the JWK Set, FHIR reads
// inside and outside the patient's compartment, refresh rotation, and
// refresh-token reuse revoking the family.
func TestSMARTLaunchStandalone(t *testing.T) {
	for _, driver := range []string{"sqlite", "postgres"} {
		t.Run(driver, func(t *testing.T) {
			e := startLaunch(t, driver)
			secret := e.addLaunchUser(t, "dr.grey", "Practitioner/pr-1", identity.RolePhysician)
			cfg := e.oauthConfig(e.clientID, "openid fhirUser launch/patient offline_access patient/*.rs")
			verifier := oauth2.GenerateVerifier()

			b := e.browser(t)
			first := b.send(t, "GET", e.authURL(cfg, "st-1", verifier), nil)
			picker := b.signIn(t, first, "dr.grey", secret)
			cons := b.pick(t, picker, "Launchling", e.mine.patient)
			for _, words := range []string{"Read and search all kinds of records of the chosen patient", "Keep access when you are not using it"} {
				if !strings.Contains(cons.body, words) {
					t.Errorf("consent page does not say %q", words)
				}
			}
			q := redirected(t, b.consent(t, cons, "approve"))
			if q.Get("state") != "st-1" || !strings.HasPrefix(q.Get("code"), smart.CodePrefix) {
				t.Fatalf("redirect query %v: want state st-1 and a code", q)
			}

			code := q.Get("code")
			tok, err := cfg.Exchange(e.ctx(t), code, oauth2.VerifierOption(verifier))
			if err != nil {
				t.Fatal(err)
			}
			if tok.Extra("patient") != e.mine.patient || tok.RefreshToken == "" || !strings.Contains(tok.Extra("scope").(string), "patient/*.rs") {
				t.Fatalf("token response: patient %v, refresh %t, scope %v", tok.Extra("patient"), tok.RefreshToken != "", tok.Extra("scope"))
			}

			// The id_token, verified as a relying party would.
			provider, err := oidc.NewProvider(oidc.ClientContext(t.Context(), e.client), e.url)
			if err != nil {
				t.Fatal(err)
			}
			raw, _ := tok.Extra("id_token").(string)
			idt, err := provider.Verifier(&oidc.Config{ClientID: e.clientID, Now: e.clock.Now}).Verify(t.Context(), raw)
			if err != nil {
				t.Fatal(err)
			}
			var claims struct {
				FHIRUser string `json:"fhirUser"`
			}
			if err := idt.Claims(&claims); err != nil {
				t.Fatal(err)
			}
			if idt.Nonce != "n-st-1" || claims.FHIRUser != e.url+"/fhir/Practitioner/pr-1" || idt.Issuer != e.url {
				t.Fatalf("id_token nonce %q fhirUser %q iss %q", idt.Nonce, claims.FHIRUser, idt.Issuer)
			}

			// FHIR: the chosen patient's compartment only.
			access := tok.AccessToken
			for _, c := range []struct {
				path string
				want int
			}{
				{"/fhir/Patient/" + e.mine.patient, http.StatusOK},
				{"/fhir/Observation/" + e.mine.obs, http.StatusOK},
				{"/fhir/Observation?patient=" + e.mine.patient, http.StatusOK},
				{"/fhir/Patient/" + e.mine.patient + "/$everything", http.StatusOK},
				{"/fhir/Patient/" + e.other.patient, http.StatusForbidden},
				{"/fhir/Observation/" + e.other.obs, http.StatusForbidden},
				{"/fhir/Observation?patient=" + e.other.patient, http.StatusForbidden},
				{"/fhir/Observation", http.StatusForbidden},
				{"/fhir/Observation/does-not-exist", http.StatusForbidden},
				{"/fhir/Observation?patient=" + e.mine.patient + "&_include=Observation:subject", http.StatusForbidden},
				{"/fhir/Patient/" + e.mine.patient + "%2F..%2F" + e.other.patient, http.StatusForbidden},
				{"/fhir/_history", http.StatusForbidden},
				{"/fhir/Observation/" + e.mine.obs + "/_history", http.StatusForbidden},
			} {
				if got, body := e.fhirGet(t, access, c.path); got != c.want {
					t.Errorf("GET %s: %d, want %d: %.200s", c.path, got, c.want, body)
				}
			}
			if _, body := e.fhirGet(t, access, "/fhir/Observation?patient="+e.mine.patient); strings.Contains(string(body), e.other.obs) {
				t.Error("a compartment search returned another patient's Observation")
			}

			// Refresh rotation: a new refresh token each time; the old is spent.
			rt1 := tok.RefreshToken
			tok2, err := cfg.TokenSource(e.ctx(t), &oauth2.Token{RefreshToken: rt1}).Token()
			if err != nil {
				t.Fatal(err)
			}
			if tok2.RefreshToken == "" || tok2.RefreshToken == rt1 || tok2.AccessToken == access {
				t.Fatal("refresh did not rotate the refresh token")
			}
			if got, _ := e.fhirGet(t, tok2.AccessToken, "/fhir/Observation/"+e.mine.obs); got != http.StatusOK {
				t.Fatalf("refreshed access token: %d", got)
			}
			// Reuse of the spent token: refused, and the whole family is revoked.
			_, err = cfg.TokenSource(e.ctx(t), &oauth2.Token{RefreshToken: rt1}).Token()
			wantOAuthError(t, err, "invalid_grant")
			for _, a := range []string{access, tok2.AccessToken} {
				if got, _ := e.fhirGet(t, a, "/fhir/Observation/"+e.mine.obs); got != http.StatusUnauthorized {
					t.Errorf("access token of a revoked family: %d, want 401", got)
				}
			}
			_, err = cfg.TokenSource(e.ctx(t), &oauth2.Token{RefreshToken: tok2.RefreshToken}).Token()
			wantOAuthError(t, err, "invalid_grant")
			wantActions(t, e.auditActions(t), "oauth-authorize/success", "token-create/success", "token-refresh/success",
				"token-family-revoke/success", "token-refresh/denied")

			// Deny at consent: access_denied with the state, no code. The
			// browser's session skips the sign-in.
			p := b.send(t, "GET", e.authURL(cfg, "st-2", oauth2.GenerateVerifier()), nil)
			p = b.pick(t, p, "Launchling", e.mine.patient)
			q = redirected(t, b.consent(t, p, "deny"))
			if q.Get("error") != "access_denied" || q.Get("state") != "st-2" || q.Has("code") {
				t.Fatalf("deny redirect %v", q)
			}

			// Nothing secret reached the log or the audit trail, nor the
			// patient's name (PHI shown to the user in the picker).
			evs, err := e.app.Transparency().Events(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			trail, _ := json.Marshal(evs)
			for where, text := range map[string]string{"log": e.logs.String(), "audit trail": string(trail)} {
				for _, s := range []string{access, rt1, tok2.RefreshToken, code, raw, verifier, "Launchling"} {
					if s != "" && strings.Contains(text, s) {
						t.Fatalf("a token, code, verifier or name reached the %s", where)
					}
				}
			}
		})
	}
}

// TestSMARTLaunchPatientAccount: a patient account gets its own linked
// Patient without a picker, and user/ scopes reach only its own record.
func TestSMARTLaunchPatientAccount(t *testing.T) {
	forDrivers(t, testLaunchPatientAccount)
}

// forDrivers runs fn on SQLite and PostgreSQL.
func forDrivers(t *testing.T, fn func(t *testing.T, driver string)) {
	for _, d := range []string{"sqlite", "postgres"} {
		t.Run(d, func(t *testing.T) { fn(t, d) })
	}
}

func testLaunchPatientAccount(t *testing.T, driver string) {
	e := startLaunch(t, driver)
	e.addLaunchUser(t, "ada", "Patient/"+e.mine.patient, identity.RolePatient)
	cfg := e.oauthConfig(e.clientID, "openid fhirUser launch/patient user/*.rs")
	verifier := oauth2.GenerateVerifier()
	b := e.browser(t)
	cons := b.signIn(t, b.send(t, "GET", e.authURL(cfg, "p-1", verifier), nil), "ada", "")
	q := redirected(t, b.consent(t, cons, "approve"))
	tok, err := cfg.Exchange(e.ctx(t), q.Get("code"), oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatal(err)
	}
	if tok.Extra("patient") != e.mine.patient || tok.RefreshToken != "" {
		t.Fatalf("patient %v, refresh token issued %t (no offline_access asked)", tok.Extra("patient"), tok.RefreshToken != "")
	}
	if got, _ := e.fhirGet(t, tok.AccessToken, "/fhir/Observation/"+e.mine.obs); got != http.StatusOK {
		t.Errorf("own Observation: %d", got)
	}
	if got, _ := e.fhirGet(t, tok.AccessToken, "/fhir/Observation/"+e.other.obs); got != http.StatusForbidden {
		t.Errorf("another patient's Observation with user/ scopes of a patient account: %d, want 403", got)
	}
	if got, _ := e.fhirGet(t, tok.AccessToken, "/fhir/Observation?patient="+e.mine.patient); got != http.StatusOK {
		t.Errorf("own compartment search: %d", got)
	}

	// A disabled account's app can no longer refresh.
	off := e.oauthConfig(e.clientID, "offline_access patient/*.rs")
	v := oauth2.GenerateVerifier()
	q = redirected(t, b.consent(t, b.send(t, "GET", e.authURL(off, "p-2", v), nil), "approve"))
	tok, err = off.Exchange(e.ctx(t), q.Get("code"), oauth2.VerifierOption(v))
	if err != nil || tok.RefreshToken == "" {
		t.Fatalf("exchange: %v", err)
	}
	u, err := e.app.Store.(*sqldb.Store).Users().ByUsername(t.Context(), "ada")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.app.Store.(*sqldb.Store).Users().SetDisabled(t.Context(), u.ID, true); err != nil {
		t.Fatal(err)
	}
	_, err = off.TokenSource(e.ctx(t), &oauth2.Token{RefreshToken: tok.RefreshToken}).Token()
	wantOAuthError(t, err, "invalid_grant")

	// Nor can an app whose user lost a role it was authorized with (the
	// grant kept the roles of consent time: an outside pentest refreshed
	// patient-reading tokens for 90 days after a physician became an
	// auditor).
	e.addLaunchUser(t, "bea", "Patient/"+e.other.patient, identity.RolePatient)
	b2 := e.browser(t)
	v = oauth2.GenerateVerifier()
	cons2 := b2.signIn(t, b2.send(t, "GET", e.authURL(off, "p-3", v), nil), "bea", "")
	q = redirected(t, b2.consent(t, cons2, "approve"))
	tok, err = off.Exchange(e.ctx(t), q.Get("code"), oauth2.VerifierOption(v))
	if err != nil || tok.RefreshToken == "" {
		t.Fatalf("exchange: %v", err)
	}
	next, err := off.TokenSource(e.ctx(t), &oauth2.Token{RefreshToken: tok.RefreshToken}).Token()
	if err != nil {
		t.Fatalf("refresh with the roles unchanged: %v", err)
	}
	bea, err := e.app.Store.(*sqldb.Store).Users().ByUsername(t.Context(), "bea")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.app.Store.(*sqldb.Store).Users().SetRoles(t.Context(), bea.ID, nil); err != nil {
		t.Fatal(err)
	}
	_, err = off.TokenSource(e.ctx(t), &oauth2.Token{RefreshToken: next.RefreshToken}).Token()
	wantOAuthError(t, err, "invalid_grant")
}

// TestSMARTLaunchRefusals: the negative cases of the authorize and
// token endpoints.
func TestSMARTLaunchRefusals(t *testing.T) {
	forDrivers(t, testLaunchRefusals)
}

func testLaunchRefusals(t *testing.T, driver string) {
	e := startLaunch(t, driver)
	secret := e.addLaunchUser(t, "dr.house", "Practitioner/pr-2", identity.RolePhysician)
	cfg := e.oauthConfig(e.clientID, "openid launch/patient patient/*.rs")
	b := e.browser(t)

	// Sign in once; later flows reuse the session.
	verifier := oauth2.GenerateVerifier()
	picker := b.signIn(t, b.send(t, "GET", e.authURL(cfg, "s0", verifier), nil), "dr.house", secret)
	// A form without its CSRF token is refused, and nothing is granted.
	noCSRF := b.send(t, "POST", "/oauth2/authorize/patient", url.Values{"flow": {picker.field(t, "flow")}, "action": {"pick"}, "patient": {e.mine.patient}})
	if noCSRF.status != http.StatusForbidden || noCSRF.location != "" {
		t.Fatalf("form without CSRF token: %d %q, want 403 and no redirect", noCSRF.status, noCSRF.location)
	}
	wrongCSRF := b.send(t, "POST", "/oauth2/authorize/patient", url.Values{"flow": {picker.field(t, "flow")}, "csrf_token": {"x"}, "action": {"pick"}, "patient": {e.mine.patient}})
	if wrongCSRF.status != http.StatusForbidden {
		t.Fatalf("form with a wrong CSRF token: %d, want 403", wrongCSRF.status)
	}

	// code gets a fresh code through the whole flow.
	code := func(t *testing.T, verifier string) string {
		t.Helper()
		p := b.send(t, "GET", e.authURL(cfg, "s", verifier), nil)
		p = b.pick(t, p, "Launchling", e.mine.patient)
		return redirected(t, b.consent(t, p, "approve")).Get("code")
	}

	t.Run("authorize without redirect", func(t *testing.T) {
		good, _ := url.Parse(e.authURL(cfg, "s", verifier))
		for _, c := range []struct {
			name string
			edit func(q url.Values)
		}{
			{"unregistered redirect_uri", func(q url.Values) { q.Set("redirect_uri", "https://evil.example.org/callback") }},
			{"altered redirect_uri (path)", func(q url.Values) { q.Set("redirect_uri", appRedirect+"/x") }},
			{"altered redirect_uri (query)", func(q url.Values) { q.Set("redirect_uri", appRedirect+"?a=1") }},
			{"altered redirect_uri (case)", func(q url.Values) { q.Set("redirect_uri", strings.ToUpper(appRedirect)) }},
			{"missing redirect_uri", func(q url.Values) { q.Del("redirect_uri") }},
			{"unknown client", func(q url.Values) { q.Set("client_id", "nobody") }},
			{"repeated client_id", func(q url.Values) { q.Add("client_id", "x") }},
			{"markup in client_id", func(q url.Values) { q.Set("client_id", `<script>alert(1)</script>`) }},
			{"markup in redirect_uri", func(q url.Values) { q.Set("redirect_uri", `https://x/"><script>alert(1)</script>`) }},
		} {
			t.Run(c.name, func(t *testing.T) {
				q := good.Query()
				c.edit(q)
				u := *good
				u.RawQuery = q.Encode()
				p := b.send(t, "GET", u.String(), nil)
				if p.status != http.StatusBadRequest || p.location != "" || !strings.Contains(p.body, "<html") {
					t.Fatalf("%d Location %q: want a 400 HTML page and no redirect", p.status, p.location)
				}
				if strings.Contains(p.body, "<script") || strings.Contains(p.body, "evil.example") {
					t.Fatal("the error page echoes the request")
				}
			})
		}
	})

	t.Run("authorize error redirects", func(t *testing.T) {
		good, _ := url.Parse(e.authURL(cfg, "s-r", verifier))
		for _, c := range []struct {
			name, error, state string
			edit               func(q url.Values)
		}{
			{"missing PKCE", "invalid_request", "s-r", func(q url.Values) { q.Del("code_challenge"); q.Del("code_challenge_method") }},
			{"plain PKCE", "invalid_request", "s-r", func(q url.Values) { q.Set("code_challenge_method", "plain") }},
			{"missing state", "invalid_request", "", func(q url.Values) { q.Del("state") }},
			{"wrong aud", "invalid_request", "s-r", func(q url.Values) { q.Set("aud", "https://other.example.org/fhir") }},
			{"token response type", "unsupported_response_type", "s-r", func(q url.Values) { q.Set("response_type", "token") }},
			{"unregistered scope", "invalid_scope", "s-r", func(q url.Values) { q.Set("scope", "system/*.rs") }},
		} {
			t.Run(c.name, func(t *testing.T) {
				q := good.Query()
				c.edit(q)
				u := *good
				u.RawQuery = q.Encode()
				rq := redirected(t, b.send(t, "GET", u.String(), nil))
				if rq.Get("error") != c.error || rq.Get("state") != c.state || rq.Has("code") {
					t.Fatalf("redirect query %v: want error %s, state %q", rq, c.error, c.state)
				}
			})
		}
	})

	t.Run("wrong verifier", func(t *testing.T) {
		c := code(t, verifier)
		_, err := cfg.Exchange(e.ctx(t), c, oauth2.VerifierOption(oauth2.GenerateVerifier()))
		wantOAuthError(t, err, "invalid_grant")
		// The code was spent by the failed attempt.
		_, err = cfg.Exchange(e.ctx(t), c, oauth2.VerifierOption(verifier))
		wantOAuthError(t, err, "invalid_grant")
	})
	t.Run("code reuse revokes", func(t *testing.T) {
		c := code(t, verifier)
		tok, err := cfg.Exchange(e.ctx(t), c, oauth2.VerifierOption(verifier))
		if err != nil {
			t.Fatal(err)
		}
		if got, _ := e.fhirGet(t, tok.AccessToken, "/fhir/Patient/"+e.mine.patient); got != http.StatusOK {
			t.Fatalf("fresh token: %d", got)
		}
		_, err = cfg.Exchange(e.ctx(t), c, oauth2.VerifierOption(verifier))
		wantOAuthError(t, err, "invalid_grant")
		if got, _ := e.fhirGet(t, tok.AccessToken, "/fhir/Patient/"+e.mine.patient); got != http.StatusUnauthorized {
			t.Fatalf("token of a reused code: %d, want 401", got)
		}
	})
	t.Run("expired code", func(t *testing.T) {
		c := code(t, verifier)
		e.clock.Advance(smart.CodeTTL + time.Second)
		_, err := cfg.Exchange(e.ctx(t), c, oauth2.VerifierOption(verifier))
		wantOAuthError(t, err, "invalid_grant")
	})
	t.Run("client mismatch", func(t *testing.T) {
		c := code(t, verifier)
		other := e.oauthConfig(e.registerApp(t, "Other app"), "patient/*.rs")
		_, err := other.Exchange(e.ctx(t), c, oauth2.VerifierOption(verifier))
		wantOAuthError(t, err, "invalid_grant")
	})
	t.Run("redirect_uri mismatch at token", func(t *testing.T) {
		c := code(t, verifier)
		other := *cfg
		other.RedirectURL = appRedirect + "/other"
		_, err := other.Exchange(e.ctx(t), c, oauth2.VerifierOption(verifier))
		wantOAuthError(t, err, "invalid_grant")
	})
	t.Run("revoke refresh token", func(t *testing.T) {
		off := e.oauthConfig(e.clientID, "launch/patient offline_access patient/*.rs")
		v := oauth2.GenerateVerifier()
		p := b.send(t, "GET", e.authURL(off, "rv", v), nil)
		p = b.pick(t, p, "Launchling", e.mine.patient)
		tok, err := off.Exchange(e.ctx(t), redirected(t, b.consent(t, p, "approve")).Get("code"), oauth2.VerifierOption(v))
		if err != nil || tok.RefreshToken == "" {
			t.Fatalf("exchange: %v (refresh token %t)", err, tok != nil && tok.RefreshToken != "")
		}
		// RFC 7009 with the public client's client_id.
		form := url.Values{"client_id": {e.clientID}, "token": {tok.RefreshToken}}
		req, _ := http.NewRequestWithContext(t.Context(), "POST", e.url+smart.RevokePath, strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		resp, err := e.client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("revoke: %d", resp.StatusCode)
		}
		_, err = off.TokenSource(e.ctx(t), &oauth2.Token{RefreshToken: tok.RefreshToken}).Token()
		wantOAuthError(t, err, "invalid_grant")
		if got, _ := e.fhirGet(t, tok.AccessToken, "/fhir/Patient/"+e.mine.patient); got != http.StatusUnauthorized {
			t.Fatalf("access token after its refresh token was revoked: %d, want 401", got)
		}
	})
	t.Run("online_access lifetime", func(t *testing.T) {
		on := e.oauthConfig(e.clientID, "launch/patient online_access patient/*.rs")
		v := oauth2.GenerateVerifier()
		p := b.pick(t, b.send(t, "GET", e.authURL(on, "on", v), nil), "Launchling", e.mine.patient)
		tok, err := on.Exchange(e.ctx(t), redirected(t, b.consent(t, p, "approve")).Get("code"), oauth2.VerifierOption(v))
		if err != nil || tok.RefreshToken == "" {
			t.Fatalf("exchange: %v (online_access must give a refresh token)", err)
		}
		e.clock.Advance(smart.OnlineRefreshTTL - time.Minute)
		tok, err = on.TokenSource(e.ctx(t), &oauth2.Token{RefreshToken: tok.RefreshToken}).Token()
		if err != nil {
			t.Fatalf("refresh within the idle time: %v", err)
		}
		e.clock.Advance(smart.OnlineRefreshTTL + time.Second)
		_, err = on.TokenSource(e.ctx(t), &oauth2.Token{RefreshToken: tok.RefreshToken}).Token()
		wantOAuthError(t, err, "invalid_grant")
	})
	t.Run("discovery", func(t *testing.T) {
		r := e.do(t, "GET", "/.well-known/smart-configuration", nil, creds{})
		for _, want := range []string{`"authorization_endpoint":"` + e.url + `/oauth2/authorize"`, `"code_challenge_methods_supported":["S256"]`,
			"launch-standalone", "client-public", "context-standalone-patient", "permission-patient", "permission-user", "permission-offline", "sso-openid-connect"} {
			if !strings.Contains(string(r.body), want) {
				t.Errorf("smart-configuration lacks %s", want)
			}
		}
	})
}

// TestSMARTLaunchPickerAuthorized: the patient picker searches and reads
// through the signed-in user's own authorization (issue 11, item 1),
// for every workforce role: it lists the patient exactly when the role
// may read it (clinicians on the care team, front desk, billing and the
// privacy officer),
// finds nothing for the others, by name or by id, and the audit log
// records each picker search with the user's policies and purpose.
func TestSMARTLaunchPickerAuthorized(t *testing.T) {
	forDrivers(t, testLaunchPickerAuthorized)
}

func testLaunchPickerAuthorized(t *testing.T, driver string) {
	e := startLaunch(t, driver)
	for i, rc := range []struct {
		role  identity.Role
		finds bool
	}{
		{identity.RolePhysician, true}, {identity.RoleNurse, true}, {identity.RoleFrontDesk, true}, {identity.RoleBilling, true},
		{identity.RolePrivacyOfficer, true}, // Patient demographics for the privacy office's lookups (ADR 0036)
		{identity.RoleResearcher, false}, {identity.RoleAuditor, false}, {identity.RoleSecurityAdmin, false},
	} {
		role := rc.role
		username := fmt.Sprintf("picker.%s", role)
		secret := e.addLaunchUser(t, username, fmt.Sprintf("Practitioner/pk-%d", i), role)
		cfg := e.oauthConfig(e.clientID, "openid fhirUser launch/patient patient/*.rs")
		b := e.browser(t)
		picker := b.signIn(t, b.send(t, "GET", e.authURL(cfg, "pk", oauth2.GenerateVerifier()), nil), username, secret)
		if !strings.Contains(picker.body, `action="/oauth2/authorize/patient"`) {
			t.Fatalf("%s: want the patient picker: %d %.300s", role, picker.status, picker.body)
		}
		for _, q := range []string{"Launchling", e.mine.patient} {
			found := b.post(t, picker, "/oauth2/authorize/patient", url.Values{"action": {"search"}, "q": {q}})
			listed := strings.Contains(found.body, `name="patient" value="`+e.mine.patient+`"`)
			if listed != rc.finds {
				t.Errorf("%s: the picker lists the patient: %v, want %v (query %q)", role, listed, rc.finds, q)
			}
			if !rc.finds && (strings.Contains(found.body, "Patients found") || !strings.Contains(found.body, "No patient found")) {
				t.Errorf("%s: the picker answered a patient it may not read otherwise than one that does not exist (query %q)", role, q)
			}
		}
		if !rc.finds {
			picked := b.post(t, picker, "/oauth2/authorize/patient", url.Values{"action": {"pick"}, "patient": {e.mine.patient}})
			missing := b.post(t, picker, "/oauth2/authorize/patient", url.Values{"action": {"pick"}, "patient": {"no-such-" + e.mine.patient}})
			if strings.Contains(picked.body, `action="/oauth2/authorize/consent"`) || picked.status != missing.status {
				t.Errorf("%s: picking a patient it may not read: %d, an unknown one: %d", role, picked.status, missing.status)
			}
		}
		evs, err := e.app.Transparency().Events(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		user, err := e.app.Store.(*sqldb.Store).Users().ByUsername(t.Context(), username)
		if err != nil {
			t.Fatal(err)
		}
		searched := false
		for _, ev := range evs {
			if ev.Agent.User != user.ID || ev.Action != audit.ActionSearch {
				continue
			}
			searched = true
			if len(ev.Policies) == 0 || (!rc.finds && (ev.Outcome != audit.OutcomeDenied || ev.Purpose == "TREAT" || len(ev.Patients) != 0)) {
				t.Errorf("%s: picker search audited as %+v", role, ev)
			}
		}
		if !searched {
			t.Errorf("%s: the picker's search left no audit event", role)
		}
	}
}
