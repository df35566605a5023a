package httpapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/phivault/phivault/internal/authn/smart"
	"github.com/phivault/phivault/internal/authn/smart/scope"
	"github.com/phivault/phivault/internal/identity"
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
	recovery []string                      // recovery codes of the last workforce user added
	mine     struct{ patient, obs string } // the launch patient's
	other    struct{ patient, obs string }
}

func startLaunch(t *testing.T, driver string) *launchEnv {
	t.Helper()
	ae := startAuthOn(t, nil, "", driver)
	tok, err := ae.app.Tokens().Create(t.Context(), "seed", []string{"system"})
	if err != nil {
		t.Fatal(err)
	}
	e := &launchEnv{authEnv: ae, driver: driver, token: tok.Reveal()}
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
	reg := e.app.ClientAdmin()
	set, err := scope.ParseSet("openid fhirUser launch/patient offline_access online_access patient/*.rs user/*.rs")
	if err != nil {
		t.Fatal(err)
	}
	id, err := reg.RegisterAppBreakGlass(t.Context(), cliAgent, smart.AppRegistration{Name: name, Public: true, RedirectURIs: []string{appRedirect}, Scopes: set})
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// addLaunchUser creates an account with a FHIR user and, for workforce
// roles, enrols TOTP through /auth; it returns the TOTP secret. A
// practitioner is put on the care team of both test patients: the
// user's own policy (a treatment relationship) allows them, so what a
// test refuses is refused by the token's scopes.
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
	if strings.HasPrefix(fhirUser, "Practitioner/") {
		for _, pid := range []string{e.mine.patient, e.other.patient} {
			e.create(t, map[string]any{"resourceType": "CareTeam", "status": "active",
				"subject":     map[string]any{"reference": "Patient/" + pid},
				"participant": []any{map[string]any{"member": map[string]any{"reference": fhirUser}}}})
		}
	}
	secret, codes, _ := e.enrol(t, username, pw)
	e.clock.Advance(30 * time.Second) // the enrolment code's step is spent
	e.recovery = codes
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
// set, or a recovery code when it is "recovery:<code>") from the first
// page of a flow and returns the next page.
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
	method, code := "totp", ""
	if rc, ok := strings.CutPrefix(secret, "recovery:"); ok {
		method, code = "recovery", rc
	} else {
		code = b.e.code(t, secret, b.e.clock.Now())
	}
	return b.post(t, p, "/oauth2/authorize/mfa", url.Values{"challenge": {p.field(t, "challenge")}, "method": {method}, "code": {code}})
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
