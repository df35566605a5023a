package httpapi_test

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/oauth2-proxy/mockoidc"

	"github.com/phivault/phivault/internal/app"
	"github.com/phivault/phivault/internal/audit"
	"github.com/phivault/phivault/internal/authn/login"
	"github.com/phivault/phivault/internal/authn/password"
	"github.com/phivault/phivault/internal/config"
	"github.com/phivault/phivault/internal/httpapi/signin"
	"github.com/phivault/phivault/internal/identity"
	"github.com/phivault/phivault/internal/keys"
	"github.com/phivault/phivault/internal/storage/postgres/pgtest"
	"github.com/phivault/phivault/internal/storage/sqldb"
	"github.com/phivault/phivault/internal/web"
)

// ssoEnv is a phivault with enterprise SSO configured against a real
// OpenID provider (mockoidc) served over TLS in the test process, and a
// browser: a client with a cookie jar that follows no redirect.
type ssoEnv struct {
	*authEnv
	op      *mockoidc.MockOIDC
	browser *http.Client
}

// idpUser is a mockoidc user with the claims of an enterprise IdP.
type idpUser struct {
	sub, email, name string
	groups, amr      []string
}

func (u *idpUser) ID() string { return u.sub }

func (u *idpUser) Userinfo([]string) ([]byte, error) {
	return json.Marshal(map[string]any{"sub": u.sub, "email": u.email})
}

type idpClaims struct {
	*mockoidc.IDTokenClaims
	Email             string   `json:"email,omitempty"`
	PreferredUsername string   `json:"preferred_username,omitempty"`
	Groups            []string `json:"groups,omitempty"`
	AMR               []string `json:"amr,omitempty"`
}

func (u *idpUser) Claims(_ []string, base *mockoidc.IDTokenClaims) (jwt.Claims, error) {
	return &idpClaims{IDTokenClaims: base, Email: u.email, PreferredUsername: u.name, Groups: u.groups, AMR: u.amr}, nil
}

func startSSO(t *testing.T, autoProvision bool) *ssoEnv {
	t.Helper()
	return startSSOOn(t, autoProvision, "sqlite")
}

// startSSOOn is startSSO on a storage driver ("sqlite" or "postgres").
func startSSOOn(t *testing.T, autoProvision bool, driver string) *ssoEnv {
	t.Helper()
	// phivault and the OP both serve httptest's certificate (valid for
	// 127.0.0.1), so one client trusts both.
	certSrv := httptest.NewUnstartedServer(http.NotFoundHandler())
	certSrv.StartTLS()
	t.Cleanup(certSrv.Close)
	roots := x509.NewCertPool()
	roots.AddCert(certSrv.Certificate())
	tlsCfg := &tls.Config{Certificates: certSrv.TLS.Certificates}
	newClient := func() *http.Client {
		return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}}}
	}
	m, err := mockoidc.NewServer(nil)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Start(tls.NewListener(ln, tlsCfg), tlsCfg); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Shutdown() })

	dir := t.TempDir()
	c := config.Default(dir)
	c.Storage.SQLitePath = c.Path(c.Storage.SQLitePath)
	if driver == "postgres" {
		c.Storage.Driver, c.Storage.PostgresURL = "postgres", pgtest.NewDatabase(t)
	}
	if err := os.MkdirAll(c.Path("keys"), 0o700); err != nil {
		t.Fatal(err)
	}
	c.Keys.KeyFile = c.Path(c.Keys.KeyFile)
	if err := keys.CreateKeyFile(c.Keys.KeyFile); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(nil)
	c.Server.BaseURL = "https://" + srv.Listener.Addr().String()
	mc := m.Config()
	c.OIDC = &config.OIDC{Enabled: true, Issuer: mc.Issuer, ClientID: mc.ClientID,
		RedirectURL: c.Server.BaseURL + "/auth/oidc/callback", Scopes: []string{"openid", "email", "profile", "groups"},
		RoleMap:       map[string]string{"clinicians": "physician", "nursing": "nurse", "audit": "auditor", "research": "researcher"},
		AutoProvision: &autoProvision}
	c.OIDC.SetClientSecret(mc.ClientSecret)
	if err := c.Validate(); err != nil {
		srv.Listener.Close()
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
	idp := newClient()
	a, err := app.Open(t.Context(), c, logger, app.WithClock(clock.Now), app.WithOIDCClient(idp),
		app.WithLoginOptions(func(o *login.Options) { o.Hasher = h }))
	if err != nil {
		srv.Listener.Close()
		t.Fatal(err)
	}
	if a.SSO == nil {
		t.Fatal("SSO is off although the oidc section is enabled")
	}
	srv.Config.Handler = a.Handler()
	srv.StartTLS()
	t.Cleanup(func() {
		srv.Close()
		if err := a.Close(); err != nil {
			t.Error(err)
		}
	})
	noRedirect := func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	client := newClient()
	client.CheckRedirect = noRedirect
	browser := newClient()
	browser.CheckRedirect = noRedirect
	browser.Jar, err = cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &ssoEnv{authEnv: &authEnv{url: srv.URL, app: a, clock: clock, hasher: h, client: client, logs: logs},
		op: m, browser: browser}
}

// get runs a GET with the browser.
func (e *ssoEnv) get(t *testing.T, u string, accept string) resp {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), "GET", u, nil)
	if err != nil {
		t.Fatal(err)
	}
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	res, err := e.browser.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	out := resp{status: res.StatusCode, header: res.Header, body: b}
	_ = json.Unmarshal(b, &out.json)
	return out
}

// authorize runs /auth/oidc/start and the OP's authorization endpoint
// for u, returning the callback URL the OP redirects the browser to.
func (e *ssoEnv) authorize(t *testing.T, u *idpUser) *url.URL {
	t.Helper()
	start := e.get(t, e.url+"/auth/oidc/start", "")
	if start.status != http.StatusFound {
		t.Fatalf("start: %d %s, want 302", start.status, start.body)
	}
	set := start.header.Get("Set-Cookie")
	for _, attr := range []string{signin.FlowCookie + "=", "Path=/auth/oidc/callback", "Max-Age=600", "HttpOnly", "Secure", "SameSite=Lax"} {
		if !strings.Contains(set, attr) {
			t.Fatalf("flow Set-Cookie %q lacks %q", set, attr)
		}
	}
	e.op.QueueUser(u)
	az := e.get(t, start.header.Get("Location"), "")
	if az.status != http.StatusFound {
		t.Fatalf("authorize: %d %s, want 302", az.status, az.body)
	}
	cb, err := url.Parse(az.header.Get("Location"))
	if err != nil {
		t.Fatal(err)
	}
	if got := cb.Scheme + "://" + cb.Host + cb.Path; got != e.url+"/auth/oidc/callback" {
		t.Fatalf("the OP redirected to %s, want the callback", got)
	}
	return cb
}

// signIn runs the whole browser sign-in and returns the callback's answer.
func (e *ssoEnv) signIn(t *testing.T, u *idpUser, accept string) resp {
	t.Helper()
	return e.get(t, e.authorize(t, u).String(), accept)
}

// sessionCookie returns the session cookie a response set, or "".
func sessionCookie(r resp) string {
	for _, c := range (&http.Response{Header: r.header}).Cookies() {
		if c.Name == web.SessionCookie && c.Value != "" {
			return c.Value
		}
	}
	return ""
}

// ssoSessionOf is sessionOf for a callback, which also deletes the
// flow cookie: it checks the session's Set-Cookie among the others.
func ssoSessionOf(t *testing.T, r resp) creds {
	t.Helper()
	h := r.header.Clone()
	h.Del("Set-Cookie")
	for _, v := range r.header.Values("Set-Cookie") {
		if strings.HasPrefix(v, web.SessionCookie+"=") {
			h.Add("Set-Cookie", v)
		}
	}
	r.header = h
	return sessionOf(t, r)
}

// auditEvents returns every audit event so far.
func (e *ssoEnv) auditEvents(t *testing.T) []audit.Event {
	t.Helper()
	evs, err := e.app.Transparency().Events(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return evs
}

// lastSSO returns the last sso-login event.
func (e *ssoEnv) lastSSO(t *testing.T) audit.Event {
	t.Helper()
	evs := e.auditEvents(t)
	for i := len(evs) - 1; i >= 0; i-- {
		if evs[i].Action == audit.ActionSSOLogin {
			return evs[i]
		}
	}
	t.Fatal("no sso-login audit event")
	return audit.Event{}
}

func (e *ssoEnv) linked(t *testing.T, sub string) (identity.User, bool) {
	t.Helper()
	u, err := e.app.Store.(*sqldb.Store).Users().LinkedUser(t.Context(), e.op.Config().Issuer, sub)
	return u, err == nil
}

func (e *ssoEnv) userCount(t *testing.T) int {
	t.Helper()
	us, err := e.app.Store.(*sqldb.Store).Users().List(t.Context(), "", identity.MaxPage)
	if err != nil {
		t.Fatal(err)
	}
	return len(us)
}

// admit signs u in for the first time (provisioned, its roles awaiting
// approval: 403) and approves the IdP's request as a second
// administrator, so that the next sign-in gets a session.
func (e *ssoEnv) admit(t *testing.T, u *idpUser) identity.User {
	t.Helper()
	r := e.signIn(t, u, "application/json")
	if r.status != http.StatusForbidden || sessionCookie(r) != "" || !strings.Contains(string(r.body), "awaits") {
		t.Fatalf("first sign-in of roles that reach PHI: %d %s, want 403 awaiting approval", r.status, r.body)
	}
	acc, err := e.app.Accounts()
	if err != nil {
		t.Fatal(err)
	}
	got, ok := e.linked(t, u.sub)
	if !ok {
		t.Fatal("no account provisioned")
	}
	req, ok, err := acc.PendingRequest(t.Context(), got.ID)
	if err != nil || !ok || req.RequestedBy != "sso" {
		t.Fatalf("pending request of the IdP: %+v %v %v", req, ok, err)
	}
	approver := audit.Agent{User: "usr_approver", Role: "security-admin", Session: "ses_approver"}
	got, err = acc.Approve(t.Context(), approver, req.ID)
	if err != nil {
		t.Fatal(err)
	}
	return got
}

func drLee(amr ...string) *idpUser {
	return &idpUser{sub: "00u1abc", email: "Dr.Lee@Hospital.example", name: "Dr Lee", groups: []string{"clinicians", "all-staff"}, amr: amr}
}

func TestSSOIdPMFACreatesSession(t *testing.T) {
	t.Parallel()
	e := startSSO(t, true)
	e.admit(t, drLee("pwd", "otp"))
	cb := e.authorize(t, drLee("pwd", "otp"))
	r := e.get(t, cb.String(), "application/json")
	c := ssoSessionOf(t, r)
	if !strings.Contains(r.header.Get("Set-Cookie"), signin.FlowCookie+"=;") {
		t.Errorf("the callback did not delete the flow cookie: %v", r.header.Values("Set-Cookie"))
	}
	u, ok := e.linked(t, "00u1abc")
	if !ok {
		t.Fatal("no account linked to the IdP identity")
	}
	if u.Username != "dr-lee" || !slices.Equal(u.Roles, []identity.Role{identity.RolePhysician}) || u.PasswordHash != "" {
		t.Errorf("provisioned %v, want dr-lee, physician, no password", u)
	}
	if f := e.do(t, "GET", "/fhir/Patient", nil, c); f.status != http.StatusOK {
		t.Fatalf("GET /fhir/Patient with the SSO session: %d %s", f.status, f.body)
	}
	ev := e.lastSSO(t)
	if ev.Outcome != audit.OutcomeSuccess || ev.Agent.User != u.ID || ev.Agent.Session == "" ||
		!slices.Contains(ev.Policies, "issuer="+e.op.Config().Issuer) || !slices.Contains(ev.Policies, "amr=pwd+otp") ||
		!slices.Contains(ev.Policies, "idp-mfa") {
		t.Errorf("sso-login event %+v", ev)
	}
	wantActions(t, e.auditActions(t), "user-create/success", "login/success")
	// No token, code or state in the audit log or the server log.
	for _, ev := range e.auditEvents(t) {
		b, _ := json.Marshal(ev)
		if v := cb.Query().Get("code"); bytes.Contains(b, []byte(v)) {
			t.Fatalf("the authorization code reached the audit log: %s", b)
		}
		if v := cb.Query().Get("state"); bytes.Contains(b, []byte(v)) {
			t.Fatalf("the state reached the audit log: %s", b)
		}
	}
	if strings.Contains(e.logs.String(), cb.Query().Get("code")) {
		t.Fatal("the authorization code reached the log")
	}

	// A browser (no Accept: application/json) is sent to "/" with the
	// session cookie, and the second sign-in reuses the linked account.
	r = e.signIn(t, drLee("otp"), "")
	if r.status != http.StatusFound || r.header.Get("Location") != "/" || sessionCookie(r) == "" {
		t.Fatalf("browser callback: %d Location=%q cookie=%q, want 302 to / with a session", r.status, r.header.Get("Location"), sessionCookie(r))
	}
	if n := e.userCount(t); n != 1 {
		t.Fatalf("%d accounts after two sign-ins of one identity, want 1", n)
	}
}

func TestSSOWithoutIdPMFAAsksForPhivaultMFA(t *testing.T) {
	t.Parallel()
	e := startSSO(t, true)
	e.admit(t, drLee("pwd"))
	r := e.signIn(t, drLee("pwd"), "application/json")
	if r.status != http.StatusOK || r.json["mfa_required"] != true || r.json["enrollment_required"] != true || r.str("challenge") == "" {
		t.Fatalf("callback without IdP MFA: %d %s, want an enrolment challenge", r.status, r.body)
	}
	if sessionCookie(r) != "" {
		t.Fatal("a session cookie was set before the second factor")
	}
	if ev := e.lastSSO(t); !slices.Contains(ev.Policies, "mfa-enroll") || !slices.Contains(ev.Policies, "amr=pwd") {
		t.Errorf("sso-login event %+v", ev)
	}
	// The challenge is phivault's own: enrol TOTP, confirm, use /fhir.
	enr := e.do(t, "POST", "/auth/mfa/totp/enroll", map[string]string{"challenge": r.str("challenge")}, creds{})
	if enr.status != http.StatusOK {
		t.Fatalf("enroll: %d %s", enr.status, enr.body)
	}
	conf := e.do(t, "POST", "/auth/mfa/totp/confirm", map[string]string{"challenge": r.str("challenge"),
		"code": e.code(t, enr.str("secret"), e.clock.Now())}, creds{})
	c := ssoSessionOf(t, conf)
	if f := e.do(t, "GET", "/fhir/Patient", nil, c); f.status != http.StatusOK {
		t.Fatalf("GET /fhir/Patient after phivault MFA: %d %s", f.status, f.body)
	}
	// Next time, an enrolled account is asked to verify, not enrol.
	e.clock.Advance(time.Minute)
	r = e.signIn(t, drLee("pwd"), "application/json")
	if r.json["mfa_required"] != true || r.json["enrollment_required"] != false || sessionCookie(r) != "" {
		t.Fatalf("second sign-in without IdP MFA: %d %s, want a verify challenge", r.status, r.body)
	}
	v := e.do(t, "POST", "/auth/mfa/verify", map[string]string{"challenge": r.str("challenge"), "method": "totp",
		"code": e.code(t, enr.str("secret"), e.clock.Now())}, creds{})
	ssoSessionOf(t, v)
}

func TestSSOBadState(t *testing.T) {
	t.Parallel()
	e := startSSO(t, true)
	tests := []struct {
		name   string
		mangle func(t *testing.T, cb *url.URL)
	}{
		{"tampered state", func(_ *testing.T, cb *url.URL) {
			q := cb.Query()
			q.Set("state", q.Get("state")[1:]+"A")
			cb.RawQuery = q.Encode()
		}},
		{"no state", func(_ *testing.T, cb *url.URL) {
			q := cb.Query()
			q.Del("state")
			cb.RawQuery = q.Encode()
		}},
		{"no flow cookie", func(t *testing.T, _ *url.URL) {
			jar, err := cookiejar.New(nil)
			if err != nil {
				t.Fatal(err)
			}
			e.browser.Jar = jar
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cb := e.authorize(t, drLee("otp"))
			tt.mangle(t, cb)
			r := e.get(t, cb.String(), "application/json")
			if r.status != http.StatusBadRequest || sessionCookie(r) != "" {
				t.Fatalf("callback: %d %s, want 400 and no session", r.status, r.body)
			}
			if ev := e.lastSSO(t); ev.Outcome != audit.OutcomeDenied || !slices.Contains(ev.Policies, "state") {
				t.Errorf("sso-login event %+v, want a denial for the state", ev)
			}
		})
	}
	if n := e.userCount(t); n != 0 {
		t.Fatalf("%d accounts provisioned by forged callbacks", n)
	}
}

func TestSSONoMappedGroup(t *testing.T) {
	t.Parallel()
	e := startSSO(t, true)
	u := drLee("otp")
	u.groups = []string{"all-staff", "visitors"}
	r := e.signIn(t, u, "application/json")
	if r.status != http.StatusForbidden || sessionCookie(r) != "" {
		t.Fatalf("callback: %d %s, want 403 and no session", r.status, r.body)
	}
	if n := e.userCount(t); n != 0 {
		t.Fatalf("%d accounts provisioned for a user without a mapped group", n)
	}
	if ev := e.lastSSO(t); ev.Outcome != audit.OutcomeDenied || !slices.Contains(ev.Policies, "no-role") {
		t.Errorf("sso-login event %+v", ev)
	}
}

func TestSSONoAutoProvision(t *testing.T) {
	t.Parallel()
	e := startSSO(t, false)
	r := e.signIn(t, drLee("otp"), "application/json")
	if r.status != http.StatusForbidden || sessionCookie(r) != "" || e.userCount(t) != 0 {
		t.Fatalf("callback: %d %s, want 403, no session, no account", r.status, r.body)
	}
	if ev := e.lastSSO(t); !slices.Contains(ev.Policies, "not-provisioned") {
		t.Errorf("sso-login event %+v", ev)
	}
}

func TestSSODisabledUser(t *testing.T) {
	t.Parallel()
	e := startSSO(t, true)
	e.admit(t, drLee("otp"))
	ssoSessionOf(t, e.signIn(t, drLee("otp"), "application/json"))
	u, _ := e.linked(t, "00u1abc")
	if _, err := e.app.Store.(*sqldb.Store).Users().SetDisabled(t.Context(), u.ID, true); err != nil {
		t.Fatal(err)
	}
	r := e.signIn(t, drLee("otp"), "application/json")
	if r.status != http.StatusForbidden || sessionCookie(r) != "" {
		t.Fatalf("callback for a disabled account: %d %s, want 403 and no session", r.status, r.body)
	}
	if ev := e.lastSSO(t); ev.Outcome != audit.OutcomeDenied || ev.Agent.User != u.ID || !slices.Contains(ev.Policies, "disabled") {
		t.Errorf("sso-login event %+v", ev)
	}
}

func TestSSORolesFollowIdPGroups(t *testing.T) {
	t.Parallel()
	e := startSSO(t, true)
	e.admit(t, drLee("otp"))
	first := ssoSessionOf(t, e.signIn(t, drLee("otp"), "application/json"))
	u := drLee("otp")
	u.groups = []string{"nursing", "audit"}
	// physician is removed at once; nurse and auditor await approval.
	e.admit(t, u)
	r := e.signIn(t, u, "application/json")
	ssoSessionOf(t, r)
	got, _ := e.linked(t, "00u1abc")
	if want := []identity.Role{identity.RoleAuditor, identity.RoleNurse}; !sameRoleSet(got.Roles, want) {
		t.Fatalf("roles after the groups changed: %v, want %v", got.Roles, want)
	}
	var setRoles int
	for _, ev := range e.auditEvents(t) {
		if ev.Action == audit.ActionUserSetRoles && ev.Agent.User == got.ID {
			setRoles++
		}
	}
	if setRoles != 1 {
		t.Errorf("%d user-set-roles events, want 1", setRoles)
	}
	// The session opened under the old roles was revoked with them.
	if f := e.do(t, "GET", "/fhir/Patient", nil, first); f.status != http.StatusUnauthorized {
		t.Errorf("session from before the role change: %d, want 401", f.status)
	}
	// Unchanged groups change nothing.
	ssoSessionOf(t, e.signIn(t, u, "application/json"))
	n := 0
	for _, ev := range e.auditEvents(t) {
		if ev.Action == audit.ActionUserSetRoles {
			n++
		}
	}
	if n != 1 {
		t.Errorf("%d user-set-roles events after an unchanged sign-in, want 1", n)
	}
}

func sameRoleSet(a, b []identity.Role) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}

// TestSSOGroupsCannotGrantPHI: the IdP's group mapping changes an
// account's roles at its own sign-in; a group that maps to a role that
// reaches PHI only requests it (issue 11 item 7), and the account cannot
// approve its own request.
func TestSSOGroupsCannotGrantPHI(t *testing.T) {
	t.Parallel()
	e := startSSO(t, true)
	u := drLee("otp")
	u.groups = []string{"research"}
	ssoSessionOf(t, e.signIn(t, u, "application/json")) // researcher: no approval needed
	got, _ := e.linked(t, u.sub)
	if !slices.Equal(got.Roles, []identity.Role{identity.RoleResearcher}) {
		t.Fatalf("provisioned roles %v, want researcher", got.Roles)
	}
	u.groups = []string{"research", "clinicians"}
	ssoSessionOf(t, e.signIn(t, u, "application/json"))
	if got, _ = e.linked(t, u.sub); !slices.Equal(got.Roles, []identity.Role{identity.RoleResearcher}) {
		t.Fatalf("roles after a clinicians group appeared: %v, want researcher until approved", got.Roles)
	}
	acc, err := e.app.Accounts()
	if err != nil {
		t.Fatal(err)
	}
	req, ok, err := acc.PendingRequest(t.Context(), got.ID)
	if err != nil || !ok || req.RequestedBy != "sso" || !slices.Contains(req.Roles, identity.RolePhysician) {
		t.Fatalf("pending request %+v %v %v, want the IdP's request for physician", req, ok, err)
	}
	// Signing in again does not stack requests.
	ssoSessionOf(t, e.signIn(t, u, "application/json"))
	if again, _, _ := acc.PendingRequest(t.Context(), got.ID); again.ID != req.ID {
		t.Errorf("a second sign-in replaced the request %s by %s", req.ID, again.ID)
	}
	self := audit.Agent{User: got.ID, Session: "ses_self"}
	if _, err := acc.Approve(t.Context(), self, req.ID); !errors.Is(err, identity.ErrSelf) {
		t.Fatalf("the account approving its own grant: %v, want ErrSelf", err)
	}
	var requested bool
	for _, ev := range e.auditEvents(t) {
		requested = requested || ev.Action == audit.ActionUserGrantRequest && ev.Agent.Client == "sso" && slices.Contains(ev.Entities, "Request/"+req.ID)
	}
	if !requested {
		t.Error("the IdP's request is not audited")
	}
}
