package httpapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/phivault/phivault/internal/app"
	"github.com/phivault/phivault/internal/authn/login"
	"github.com/phivault/phivault/internal/authn/password"
	"github.com/phivault/phivault/internal/authn/smart"
	"github.com/phivault/phivault/internal/authn/smart/scope"
	"github.com/phivault/phivault/internal/config"
	"github.com/phivault/phivault/internal/identity"
	"github.com/phivault/phivault/internal/keys"
	"github.com/phivault/phivault/internal/storage/postgres/pgtest"
	"github.com/phivault/phivault/internal/storage/sqldb"
)

// appRedirect is the registered redirect URI of the test app: never
// dialled; the browser stops at the 303 that points there.
const appRedirect = "https://app.example.org/callback"

// launchEnv is a phivault on one driver with login, a fake clock, an
// API token for seeding data, and two patients with an Observation each.
type launchEnv struct {
	*authEnv
	driver   string
	token    string
	clientID string
	mine     struct{ patient, obs string } // the launch patient's
	other    struct{ patient, obs string }
}

func startLaunch(t *testing.T, driver string) *launchEnv {
	t.Helper()
	dir := t.TempDir()
	c := config.Default(dir)
	c.Storage.Driver = driver
	if driver == "postgres" {
		c.Storage.PostgresURL = pgtest.NewDatabase(t)
	} else {
		c.Storage.SQLitePath = c.Path(c.Storage.SQLitePath)
	}
	if err := os.MkdirAll(c.Path("keys"), 0o700); err != nil {
		t.Fatal(err)
	}
	c.Keys.KeyFile = c.Path(c.Keys.KeyFile)
	if err := keys.CreateKeyFile(c.Keys.KeyFile); err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewUnstartedServer(nil)
	c.Server.BaseURL = "https://" + ts.Listener.Addr().String()
	if err := c.Validate(); err != nil {
		ts.Listener.Close()
		t.Fatal(err)
	}
	h, err := password.NewHasher(password.HasherConfig{Params: password.Params{Memory: 64, Time: 1, Threads: 1}})
	if err != nil {
		t.Fatal(err)
	}
	clock := &fakeClock{t: time.Now().UTC().Truncate(time.Second)}
	logs := &bytes.Buffer{}
	var mu sync.Mutex
	logger := slog.New(slog.NewJSONHandler(writerFunc(func(p []byte) (int, error) {
		mu.Lock()
		defer mu.Unlock()
		return logs.Write(p)
	}), nil))
	a, err := app.Open(t.Context(), c, logger, app.WithClock(clock.Now), app.WithLoginOptions(func(o *login.Options) { o.Hasher = h }))
	if err != nil {
		ts.Listener.Close()
		t.Fatal(err)
	}
	tok, err := a.CreateToken(t.Context(), "seed", []string{"system"})
	if err != nil {
		t.Fatal(err)
	}
	ts.Config.Handler = a.Handler()
	ts.StartTLS()
	t.Cleanup(func() {
		ts.Close()
		if err := a.Close(); err != nil {
			t.Error(err)
		}
	})
	client := ts.Client()
	client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	e := &launchEnv{authEnv: &authEnv{url: ts.URL, app: a, clock: clock, hasher: h, client: client, logs: logs}, driver: driver, token: tok.Reveal()}
	e.mine.patient = e.create(t, map[string]any{"resourceType": "Patient", "name": []any{map[string]any{"family": "Launchling", "given": []any{"Ada"}}}})
	e.mine.obs = e.create(t, launchObservation(e.mine.patient))
	e.other.patient = e.create(t, map[string]any{"resourceType": "Patient", "name": []any{map[string]any{"family": "Otherson", "given": []any{"Bo"}}}})
	e.other.obs = e.create(t, launchObservation(e.other.patient))
	e.clientID = e.registerApp(t, "Test app")
	return e
}

func launchObservation(pid string) map[string]any {
	return map[string]any{"resourceType": "Observation", "status": "final",
		"code":    map[string]any{"coding": []any{map[string]any{"system": "http://loinc.org", "code": "8867-4"}}},
		"subject": map[string]any{"reference": "Patient/" + pid}}
}

// create stores a resource with the API token and returns its id.
func (e *launchEnv) create(t *testing.T, res map[string]any) string {
	t.Helper()
	b, _ := json.Marshal(res)
	req, _ := http.NewRequestWithContext(t.Context(), "POST", e.url+"/fhir/"+res["resourceType"].(string), bytes.NewReader(b))
	req.Header.Set("Authorization", "Bearer "+e.token)
	req.Header.Set("Content-Type", "application/fhir+json")
	resp, err := e.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct{ ID string }
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || resp.StatusCode != http.StatusCreated {
		t.Fatalf("create %s: %d %v", res["resourceType"], resp.StatusCode, err)
	}
	return out.ID
}

func (e *launchEnv) registerApp(t *testing.T, name string) string {
	t.Helper()
	reg, err := e.app.Clients()
	if err != nil {
		t.Fatal(err)
	}
	set, err := scope.ParseSet("openid fhirUser launch/patient offline_access patient/*.rs user/*.rs")
	if err != nil {
		t.Fatal(err)
	}
	id, err := reg.RegisterApp(t.Context(), smart.AppRegistration{Name: name, Public: true, RedirectURIs: []string{appRedirect}, Scopes: set})
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// addLaunchUser creates an account with a FHIR user and, for workforce
// roles, enrols TOTP through /auth; it returns the TOTP secret.
func (e *launchEnv) addLaunchUser(t *testing.T, username, fhirUser string, roles ...identity.Role) string {
	t.Helper()
	hash, err := e.hasher.Hash(t.Context(), pw)
	if err != nil {
		t.Fatal(err)
	}
	id, err := identity.NewID(nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.app.Store.(*sqldb.Store).Users().Create(t.Context(), identity.User{ID: id, Username: username, Roles: roles, PasswordHash: hash, FHIRUser: fhirUser}); err != nil {
		t.Fatal(err)
	}
	if roles[0] == identity.RolePatient {
		return ""
	}
	secret, _, _ := e.enrol(t, username, pw)
	e.clock.Advance(30 * time.Second) // the enrolment code's step is spent
	return secret
}

// browser is a user agent with a cookie jar that stops at any redirect
// leaving the server (to the app).
type browser struct {
	e      *launchEnv
	client *http.Client
}

func (e *launchEnv) browser(t *testing.T) *browser {
	t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	base, _ := url.Parse(e.url)
	c := &http.Client{Transport: e.client.Transport, Jar: jar, CheckRedirect: func(req *http.Request, _ []*http.Request) error {
		if req.URL.Host != base.Host {
			return http.ErrUseLastResponse
		}
		return nil
	}}
	return &browser{e: e, client: c}
}

// page is an HTML answer and the fields of its forms.
type page struct {
	status   int
	location string
	body     string
}

var hiddenRE = regexp.MustCompile(`name="(flow|csrf_token|challenge)" value="([^"]*)"`)

func (p page) field(t *testing.T, name string) string {
	t.Helper()
	for _, m := range hiddenRE.FindAllStringSubmatch(p.body, -1) {
		if m[1] == name {
			return m[2]
		}
	}
	t.Fatalf("page (%d) has no %s field: %.400s", p.status, name, p.body)
	return ""
}

func (b *browser) send(t *testing.T, method, u string, form url.Values) page {
	t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	if strings.HasPrefix(u, "/") {
		u = b.e.url + u
	}
	req, err := http.NewRequestWithContext(t.Context(), method, u, body)
	if err != nil {
		t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	resp, err := b.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if ct := resp.Header.Get("Content-Type"); strings.HasPrefix(ct, "text/html") {
		csp := resp.Header.Get("Content-Security-Policy")
		if strings.Contains(csp, "form-action") || !strings.Contains(csp, "frame-ancestors 'none'") || strings.Contains(csp, "unsafe-inline") {
			t.Errorf("authorize page CSP %q: want frame-ancestors 'none', no form-action, no unsafe-inline", csp)
		}
	}
	return page{status: resp.StatusCode, location: resp.Header.Get("Location"), body: string(raw)}
}

// post submits a form of page p with its flow and CSRF token.
func (b *browser) post(t *testing.T, p page, path string, fields url.Values) page {
	t.Helper()
	fields.Set("flow", p.field(t, "flow"))
	fields.Set("csrf_token", p.field(t, "csrf_token"))
	return b.send(t, "POST", path, fields)
}

// oauthConfig is the app's golang.org/x/oauth2 configuration.
func (e *launchEnv) oauthConfig(clientID, scopes string) *oauth2.Config {
	return &oauth2.Config{ClientID: clientID, RedirectURL: appRedirect, Scopes: strings.Fields(scopes),
		Endpoint: oauth2.Endpoint{AuthURL: e.url + smart.AuthorizePath, TokenURL: e.url + smart.TokenPath, AuthStyle: oauth2.AuthStyleInParams}}
}

func (e *launchEnv) ctx(t *testing.T) context.Context {
	return context.WithValue(t.Context(), oauth2.HTTPClient, e.client)
}

// authURL is the app's authorize request with PKCE S256, aud and nonce.
func (e *launchEnv) authURL(cfg *oauth2.Config, state, verifier string, extra ...oauth2.AuthCodeOption) string {
	opts := append([]oauth2.AuthCodeOption{oauth2.S256ChallengeOption(verifier), oauth2.SetAuthURLParam("aud", e.url+"/fhir"),
		oauth2.SetAuthURLParam("nonce", "n-"+state)}, extra...)
	return cfg.AuthCodeURL(state, opts...)
}

// redirected checks a 303 to the app and returns its query.
func redirected(t *testing.T, p page) url.Values {
	t.Helper()
	if p.status != http.StatusSeeOther || !strings.HasPrefix(p.location, appRedirect+"?") {
		t.Fatalf("status %d Location %q, want a 303 to the app: %.300s", p.status, p.location, p.body)
	}
	u, _ := url.Parse(p.location)
	return u.Query()
}

// signIn walks the sign-in pages (password, then TOTP when secret is
// set) from the first page of a flow and returns the next page.
func (b *browser) signIn(t *testing.T, first page, username, secret string) page {
	t.Helper()
	if first.status != http.StatusOK || !strings.Contains(first.body, `action="/oauth2/authorize/login"`) {
		t.Fatalf("first page: %d, want the sign-in form: %.300s", first.status, first.body)
	}
	p := b.post(t, first, "/oauth2/authorize/login", url.Values{"username": {username}, "password": {pw}})
	if secret == "" {
		return p
	}
	if !strings.Contains(p.body, `action="/oauth2/authorize/mfa"`) {
		t.Fatalf("after the password: %d, want the second-factor form: %.300s", p.status, p.body)
	}
	code := b.e.code(t, secret, b.e.clock.Now())
	return b.post(t, p, "/oauth2/authorize/mfa", url.Values{"challenge": {p.field(t, "challenge")}, "method": {"totp"}, "code": {code}})
}

// pick searches the picker by name and picks patient id.
func (b *browser) pick(t *testing.T, picker page, name, id string) page {
	t.Helper()
	if !strings.Contains(picker.body, `action="/oauth2/authorize/patient"`) {
		t.Fatalf("want the patient picker: %d %.300s", picker.status, picker.body)
	}
	found := b.post(t, picker, "/oauth2/authorize/patient", url.Values{"action": {"search"}, "q": {name}})
	if !strings.Contains(found.body, `value="`+id+`"`) {
		t.Fatalf("the picker did not find Patient/%s by name: %.600s", id, found.body)
	}
	return b.post(t, found, "/oauth2/authorize/patient", url.Values{"action": {"pick"}, "patient": {id}})
}

// consent approves (or denies) at the consent page.
func (b *browser) consent(t *testing.T, p page, decision string) page {
	t.Helper()
	if !strings.Contains(p.body, `action="/oauth2/authorize/consent"`) {
		t.Fatalf("want the consent page: %d %.300s", p.status, p.body)
	}
	return b.post(t, p, "/oauth2/authorize/consent", url.Values{"decision": {decision}})
}

// fhirGet reads path with an access token and returns the status and body.
func (e *launchEnv) fhirGet(t *testing.T, access, path string) (int, []byte) {
	t.Helper()
	req, _ := http.NewRequestWithContext(t.Context(), "GET", e.url+path, nil)
	req.Header.Set("Authorization", "Bearer "+access)
	resp, err := e.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

func wantOAuthError(t *testing.T, err error, code string) {
	t.Helper()
	var re *oauth2.RetrieveError
	if !errors.As(err, &re) || re.ErrorCode != code {
		t.Fatalf("token error %v, want %s", err, code)
	}
}

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

			tok, err := cfg.Exchange(e.ctx(t), q.Get("code"), oauth2.VerifierOption(verifier))
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

			// Nothing secret reached the log.
			logs := e.logs.String()
			for _, s := range []string{access, rt1, tok2.RefreshToken, q.Get("code"), raw, verifier} {
				if s != "" && strings.Contains(logs, s) {
					t.Fatal("a token, code or verifier reached the log")
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
