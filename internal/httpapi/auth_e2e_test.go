package httpapi_test

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/time/rate"

	"github.com/phivault/phivault/internal/app"
	"github.com/phivault/phivault/internal/audit"
	"github.com/phivault/phivault/internal/authn/login"
	"github.com/phivault/phivault/internal/authn/password"
	"github.com/phivault/phivault/internal/authn/totp"
	"github.com/phivault/phivault/internal/config"
	"github.com/phivault/phivault/internal/httpapi"
	"github.com/phivault/phivault/internal/identity"
	"github.com/phivault/phivault/internal/keys"
	"github.com/phivault/phivault/internal/storage"
	"github.com/phivault/phivault/internal/storage/postgres/pgtest"
	"github.com/phivault/phivault/internal/storage/sqldb"
	"github.com/phivault/phivault/internal/web"
)

// fakeClock is the injected clock of authentication.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// authEnv is a phivault on SQLite with login enabled, a fake clock and a
// cheap password hasher.
type authEnv struct {
	url    string
	base   string // the configured base URL (the WebAuthn origin)
	app    *app.App
	clock  *fakeClock
	hasher *password.Hasher
	client *http.Client
	logs   *bytes.Buffer
}

func startAuth(t *testing.T, edit func(*login.Options)) *authEnv {
	t.Helper()
	return startAuthHost(t, edit, "")
}

// startAuthHost is startAuth with the base URL naming host (at the
// listener's port) instead of the listener's IP address; passkeys need
// a domain name.
func startAuthHost(t testing.TB, edit func(*login.Options), host string) *authEnv {
	t.Helper()
	return startAuthOn(t, edit, host, "sqlite")
}

// startAuthOn is startAuthHost on driver ("sqlite" or "postgres").
func startAuthOn(t testing.TB, edit func(*login.Options), host, driver string) *authEnv {
	t.Helper()
	dir := t.TempDir()
	c := config.Default(dir)
	c.Storage.Driver = driver
	switch driver {
	case "postgres":
		c.Storage.PostgresURL = pgtest.NewDatabase(t)
	default:
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
	if host != "" {
		_, port, _ := strings.Cut(ts.Listener.Addr().String(), "]:")
		if port == "" {
			_, port, _ = strings.Cut(ts.Listener.Addr().String(), ":")
		}
		c.Server.BaseURL = "https://" + host + ":" + port
	}
	if err := c.Validate(); err != nil {
		ts.Listener.Close()
		t.Fatal(err)
	}
	// Cheap argon2id: these tests are about the protocol, not the cost.
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
	a, err := app.Open(t.Context(), c, logger, app.WithClock(clock.Now), app.WithLoginOptions(func(o *login.Options) {
		o.Hasher = h
		if edit != nil {
			edit(o)
		}
	}))
	if err != nil {
		ts.Listener.Close()
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
	return &authEnv{url: ts.URL, base: c.Server.BaseURL, app: a, clock: clock, hasher: h, client: client, logs: logs}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

// addUser creates an account with password pw.
func (e *authEnv) addUser(t *testing.T, username, pw string, roles ...identity.Role) identity.User {
	t.Helper()
	hash, err := e.hasher.Hash(t.Context(), pw)
	if err != nil {
		t.Fatal(err)
	}
	id, err := identity.NewID(nil)
	if err != nil {
		t.Fatal(err)
	}
	u, err := e.app.Store.(*sqldb.Store).Users().Create(t.Context(), identity.User{ID: id, Username: username, Roles: roles, PasswordHash: hash})
	if err != nil {
		t.Fatal(err)
	}
	return u
}

type resp struct {
	status int
	header http.Header
	body   []byte
	json   map[string]any
}

func (r resp) str(k string) string { s, _ := r.json[k].(string); return s }

// creds is how a request authenticates: a session cookie and its CSRF
// token, or nothing.
type creds struct {
	cookie, csrf string
	bearer       string // an API token instead
}

// token creates an API token with the system role (service credential).
func (e *authEnv) token(t *testing.T) string {
	t.Helper()
	sec, err := e.app.Tokens().Create(t.Context(), "test-"+uniq(), []string{"system"})
	if err != nil {
		t.Fatal(err)
	}
	return sec.Reveal()
}

func (e *authEnv) do(t *testing.T, method, path string, body any, c creds) resp {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(t.Context(), method, e.url+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.cookie != "" {
		req.AddCookie(&http.Cookie{Name: web.SessionCookie, Value: c.cookie})
	}
	if c.csrf != "" {
		req.Header.Set(httpapi.CSRFHeader, c.csrf)
	}
	if c.bearer != "" {
		req.Header.Set("Authorization", "Bearer "+c.bearer)
	}
	res, err := e.client.Do(req)
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

// sessionOf returns the credentials a successful login answered with,
// checking the cookie's attributes.
func sessionOf(t *testing.T, r resp) creds {
	t.Helper()
	if r.status != http.StatusOK {
		t.Fatalf("status %d, want 200: %s", r.status, r.body)
	}
	set := r.header.Get("Set-Cookie")
	for _, attr := range []string{web.SessionCookie + "=pvs_", "Path=/", "HttpOnly", "Secure", "SameSite=Strict"} {
		if !strings.Contains(set, attr) {
			t.Fatalf("Set-Cookie %q lacks %q", set, attr)
		}
	}
	if strings.Contains(set, "Domain=") {
		t.Fatalf("Set-Cookie %q has a Domain (breaks __Host-)", set)
	}
	val := strings.TrimPrefix(strings.SplitN(set, ";", 2)[0], web.SessionCookie+"=")
	csrf := r.str("csrf_token")
	if csrf == "" {
		t.Fatalf("no csrf_token in %s", r.body)
	}
	return creds{cookie: val, csrf: csrf}
}

func (e *authEnv) code(t *testing.T, secret string, at time.Time) string {
	t.Helper()
	c, err := totp.Code(secret, at)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// challenge logs in with a password and returns the MFA challenge.
func (e *authEnv) challenge(t *testing.T, username, pw string) resp {
	t.Helper()
	r := e.do(t, "POST", "/auth/login", map[string]string{"username": username, "password": pw}, creds{})
	if r.status != http.StatusOK || r.json["mfa_required"] != true || r.str("challenge") == "" {
		t.Fatalf("login: %d %s, want an MFA challenge", r.status, r.body)
	}
	if r.header.Get("Set-Cookie") != "" {
		t.Fatalf("a session cookie was set before the second factor")
	}
	return r
}

// enrol runs first login: password, TOTP enrolment, confirmation.
func (e *authEnv) enrol(t *testing.T, username, pw string) (secret string, recoveryCodes []string, c creds) {
	t.Helper()
	ch := e.challenge(t, username, pw)
	if ch.json["enrollment_required"] != true {
		t.Fatalf("login of a new account: %s, want enrollment_required", ch.body)
	}
	enr := e.do(t, "POST", "/auth/mfa/totp/enroll", map[string]string{"challenge": ch.str("challenge")}, creds{})
	if enr.status != http.StatusOK || !strings.HasPrefix(enr.str("otpauth_uri"), "otpauth://totp/") {
		t.Fatalf("enroll: %d %s", enr.status, enr.body)
	}
	png, err := base64.StdEncoding.DecodeString(enr.str("qr_png"))
	if err != nil || !bytes.HasPrefix(png, []byte("\x89PNG")) {
		t.Fatalf("qr_png is not a base64 PNG: %v", err)
	}
	secret = enr.str("secret")
	if strings.Contains(e.logs.String(), secret) {
		t.Fatal("the TOTP secret reached the log")
	}
	conf := e.do(t, "POST", "/auth/mfa/totp/confirm", map[string]string{"challenge": ch.str("challenge"), "code": e.code(t, secret, e.clock.Now())}, creds{})
	c = sessionOf(t, conf)
	for _, v := range conf.json["recovery_codes"].([]any) {
		recoveryCodes = append(recoveryCodes, v.(string))
	}
	if len(recoveryCodes) != 10 {
		t.Fatalf("confirm returned %d recovery codes, want 10", len(recoveryCodes))
	}
	return secret, recoveryCodes, c
}

// verify answers an MFA challenge.
func (e *authEnv) verify(t *testing.T, username, pw, method, code string) resp {
	t.Helper()
	ch := e.challenge(t, username, pw)
	if ch.json["enrollment_required"] == true {
		t.Fatalf("enrolled account asked to enrol: %s", ch.body)
	}
	return e.do(t, "POST", "/auth/mfa/verify", map[string]string{"challenge": ch.str("challenge"), "method": method, "code": code}, creds{})
}

// auditActions returns "action/outcome" of every audit event so far.
func (e *authEnv) auditActions(t *testing.T) []string {
	t.Helper()
	var out []string
	evs, err := e.app.Transparency().Events(t.Context())
	for _, ev := range evs {
		out = append(out, string(ev.Action)+"/"+string(ev.Outcome))
	}
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func wantActions(t *testing.T, got []string, want ...string) {
	t.Helper()
	for _, w := range want {
		if !slices.Contains(got, w) {
			t.Errorf("audit log lacks %s; has %v", w, got)
		}
	}
}

const pw = "correct horse battery staple"

func TestAuthLoginTOTP(t *testing.T) {
	e := startAuth(t, nil)
	// Front desk as well as nurse: registering a patient (the write
	// below, which tests CSRF) is front-desk work under the default
	// authorization policies; a nurse alone needs a care relationship.
	u := e.addUser(t, "nurse.jo", pw, identity.RoleNurse, identity.RoleFrontDesk)
	anon := e.do(t, "GET", "/fhir/Patient?name=x", nil, creds{})
	if anon.status != http.StatusUnauthorized {
		t.Fatalf("anonymous FHIR read: %d", anon.status)
	}

	secret, _, c := e.enrol(t, "nurse.jo", pw)
	if r := e.do(t, "GET", "/fhir/Patient?name=x", nil, c); r.status != http.StatusOK {
		t.Fatalf("FHIR search with the session cookie: %d %s", r.status, r.body)
	}

	// CSRF: a cookie-authenticated write needs the header.
	p := patient(uniq(), nil)
	if r := e.do(t, "POST", "/fhir/Patient", p, creds{cookie: c.cookie}); r.status != http.StatusForbidden || r.json["resourceType"] != "OperationOutcome" {
		t.Fatalf("POST without X-CSRF-Token: %d %s, want 403 OperationOutcome", r.status, r.body)
	}
	if r := e.do(t, "POST", "/fhir/Patient", p, creds{cookie: c.cookie, csrf: wrongToken(c.csrf)}); r.status != http.StatusForbidden {
		t.Fatalf("POST with a wrong X-CSRF-Token: %d", r.status)
	}
	if r := e.do(t, "POST", "/fhir/Patient", p, c); r.status != http.StatusCreated {
		t.Fatalf("POST with X-CSRF-Token: %d %s", r.status, r.body)
	}

	// The enrolment code was used; a later login with the same code fails,
	// a code one step behind or ahead of the clock works once.
	enrolCode := e.code(t, secret, e.clock.Now())
	if r := e.verify(t, "nurse.jo", pw, "totp", enrolCode); r.status != http.StatusUnauthorized {
		t.Fatalf("reused enrolment code: %d %s", r.status, r.body)
	}
	e.clock.Advance(90 * time.Second)
	behind := e.code(t, secret, e.clock.Now().Add(-30*time.Second))
	sessionOf(t, e.verify(t, "nurse.jo", pw, "totp", behind))
	if r := e.verify(t, "nurse.jo", pw, "totp", behind); r.status != http.StatusUnauthorized {
		t.Fatalf("same TOTP code a second time: %d %s", r.status, r.body)
	}
	e.clock.Advance(60 * time.Second)
	ahead := e.code(t, secret, e.clock.Now().Add(30*time.Second))
	sessionOf(t, e.verify(t, "nurse.jo", pw, "totp", ahead))
	if cur := e.code(t, secret, e.clock.Now()); cur != ahead {
		if r := e.verify(t, "nurse.jo", pw, "totp", cur); r.status != http.StatusUnauthorized {
			t.Fatalf("a code older than one already used: %d", r.status)
		}
	}
	e.clock.Advance(90 * time.Second)
	if r := e.verify(t, "nurse.jo", pw, "totp", e.code(t, secret, e.clock.Now().Add(-90*time.Second))); r.status != http.StatusUnauthorized {
		t.Fatalf("a code three steps old: %d", r.status)
	}

	// Own sessions: list, and revoke one by id; logout ends the current.
	ls := e.do(t, "GET", "/auth/sessions", nil, c)
	if ls.status != http.StatusOK || len(ls.json["sessions"].([]any)) != 3 {
		t.Fatalf("GET /auth/sessions: %d %s, want 3 sessions", ls.status, ls.body)
	}
	c2 := sessionOf(t, e.verify(t, "nurse.jo", pw, "totp", e.code(t, secret, e.clock.Now())))
	ls = e.do(t, "GET", "/auth/sessions", nil, c2)
	var other string
	for _, s := range ls.json["sessions"].([]any) {
		// Newest first: the first other one is a verify session, not c.
		if m := s.(map[string]any); m["current"] != true && other == "" {
			other = m["id"].(string)
		}
	}
	if r := e.do(t, "DELETE", "/auth/sessions/"+other, nil, creds{cookie: c2.cookie}); r.status != http.StatusForbidden {
		t.Fatalf("DELETE without CSRF: %d", r.status)
	}
	if r := e.do(t, "DELETE", "/auth/sessions/"+other, nil, c2); r.status != http.StatusNoContent {
		t.Fatalf("DELETE own session: %d %s", r.status, r.body)
	}
	if r := e.do(t, "DELETE", "/auth/sessions/"+other, nil, c2); r.status != http.StatusNotFound {
		t.Fatalf("DELETE a revoked session: %d", r.status)
	}
	if r := e.do(t, "POST", "/auth/logout", nil, creds{cookie: c.cookie}); r.status != http.StatusForbidden {
		t.Fatalf("logout without CSRF: %d", r.status)
	}
	if r := e.do(t, "POST", "/auth/logout", nil, c); r.status != http.StatusNoContent {
		t.Fatalf("logout: %d %s", r.status, r.body)
	}
	if r := e.do(t, "GET", "/fhir/Patient?name=x", nil, c); r.status != http.StatusUnauthorized {
		t.Fatalf("FHIR read after logout: %d", r.status)
	}
	if r := e.do(t, "GET", "/fhir/Patient?name=x", nil, c2); r.status != http.StatusOK {
		t.Fatalf("the other session after logout: %d", r.status)
	}

	// Idle timeout: 15 minutes without a request ends the session.
	e.clock.Advance(15*time.Minute + time.Second)
	if r := e.do(t, "GET", "/fhir/Patient?name=x", nil, c2); r.status != http.StatusUnauthorized {
		t.Fatalf("FHIR read after the idle timeout: %d", r.status)
	}

	got := e.auditActions(t)
	wantActions(t, got, "login-password/success", "mfa-enroll-start/success", "mfa-enroll/success", "login/success",
		"mfa-verify/success", "mfa-verify/denied", "session-revoke/success", "logout/success", "create/success")
	if strings.Contains(e.logs.String(), secret) || strings.Contains(e.logs.String(), c.cookie) {
		t.Error("a secret reached the log")
	}
	_ = u
}

func TestAuthRecoveryCode(t *testing.T) {
	e := startAuth(t, nil)
	e.addUser(t, "dr.who", pw, identity.RolePhysician)
	_, codes, _ := e.enrol(t, "dr.who", pw)
	c := sessionOf(t, e.verify(t, "dr.who", pw, "recovery", strings.ToLower(codes[3])))
	if r := e.do(t, "GET", "/fhir/Patient?name=x", nil, c); r.status != http.StatusOK {
		t.Fatalf("FHIR read with a recovery-code session: %d", r.status)
	}
	if r := e.verify(t, "dr.who", pw, "recovery", codes[3]); r.status != http.StatusUnauthorized {
		t.Fatalf("recovery code used twice: %d %s", r.status, r.body)
	}
	sessionOf(t, e.verify(t, "dr.who", pw, "recovery", codes[4]))
	if r := e.verify(t, "dr.who", pw, "webauthn", codes[5]); r.status != http.StatusUnauthorized {
		t.Fatalf("unknown method: %d", r.status)
	}
	wantActions(t, e.auditActions(t), "recovery-code-used/success", "mfa-verify/denied")
}

func TestAuthEnrolmentChallengeOnlyEnrols(t *testing.T) {
	e := startAuth(t, nil)
	e.addUser(t, "front.desk", pw, identity.RoleFrontDesk)
	ch := e.challenge(t, "front.desk", pw)
	if ch.json["enrollment_required"] != true {
		t.Fatalf("%s", ch.body)
	}
	if r := e.do(t, "POST", "/auth/mfa/verify", map[string]string{"challenge": ch.str("challenge"), "method": "totp", "code": "123456"}, creds{}); r.status != http.StatusUnauthorized {
		t.Fatalf("verify with an enrolment challenge: %d", r.status)
	}
	e.clock.Advance(login.ChallengeTTL)
	if r := e.do(t, "POST", "/auth/mfa/totp/enroll", map[string]string{"challenge": ch.str("challenge")}, creds{}); r.status != http.StatusUnauthorized {
		t.Fatalf("enroll with an expired challenge: %d", r.status)
	}
	if r := e.do(t, "POST", "/auth/mfa/totp/enroll", map[string]string{"challenge": "garbage"}, creds{}); r.status != http.StatusUnauthorized {
		t.Fatalf("enroll with garbage: %d", r.status)
	}
}

func TestAuthSameAnswer(t *testing.T) {
	e := startAuth(t, nil)
	u := e.addUser(t, "billing.bo", pw, identity.RoleBilling)
	e.addUser(t, "off.duty", pw, identity.RoleNurse)
	if _, err := e.app.Store.(*sqldb.Store).Users().SetDisabled(t.Context(), mustID(t, e, "off.duty"), true); err != nil {
		t.Fatal(err)
	}
	login := func(user, p string) resp {
		return e.do(t, "POST", "/auth/login", map[string]string{"username": user, "password": p}, creds{})
	}
	wrong := login("billing.bo", "wrong password here")
	unknown := login("nobody.here", "wrong password here")
	disabled := login("off.duty", pw)
	for name, r := range map[string]resp{"unknown user": unknown, "disabled": disabled} {
		if r.status != wrong.status || !bytes.Equal(r.body, wrong.body) || r.header.Get("Content-Type") != wrong.header.Get("Content-Type") {
			t.Errorf("%s: %d %q; wrong password: %d %q", name, r.status, r.body, wrong.status, wrong.body)
		}
	}
	if wrong.status != http.StatusUnauthorized || wrong.str("error") != "invalid username or password" {
		t.Errorf("wrong password: %d %s", wrong.status, wrong.body)
	}
	// Audit: failures name the real account by id, never an unknown name.
	var agents []string
	err := e.app.Store.ScanAudit(t.Context(), 0, func(_ int64, rec storage.AuditRecord) error {
		b, err := e.app.Log.Open(rec)
		if err != nil {
			return err
		}
		if bytes.Contains(b, []byte("nobody.here")) {
			t.Errorf("audit event holds the typed unknown name: %s", b)
		}
		var ev audit.Event
		_ = json.Unmarshal(b, &ev)
		if ev.Action == audit.ActionLogin {
			agents = append(agents, ev.Agent.User+"/"+string(ev.Outcome))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sameSet(t, "login audit agents", agents, []string{u.ID + "/denied", "unknown/denied", mustID(t, e, "off.duty") + "/denied"})
	if r := e.do(t, "POST", "/auth/login", map[string]any{"username": "x", "password": "y", "extra": 1}, creds{}); r.status != http.StatusBadRequest {
		t.Errorf("unknown field: %d", r.status)
	}
}

func mustID(t *testing.T, e *authEnv, username string) string {
	t.Helper()
	u, err := e.app.Store.(*sqldb.Store).Users().ByUsername(t.Context(), username)
	if err != nil {
		t.Fatal(err)
	}
	return u.ID
}

func TestAuthLockout(t *testing.T) {
	e := startAuth(t, func(o *login.Options) {
		o.Lockout = password.Lockout{FreeFailures: 3, BaseDelay: time.Minute, MaxDelay: time.Hour}
	})
	e.addUser(t, "locked.lu", pw, identity.RoleNurse)
	for i := range 3 {
		if r := e.do(t, "POST", "/auth/login", map[string]string{"username": "locked.lu", "password": "not the password"}, creds{}); r.status != http.StatusUnauthorized {
			t.Fatalf("failure %d: %d", i, r.status)
		}
	}
	r := e.do(t, "POST", "/auth/login", map[string]string{"username": "locked.lu", "password": pw}, creds{})
	if r.status != http.StatusUnauthorized || r.str("error") != "invalid username or password" {
		t.Fatalf("correct password while locked: %d %s", r.status, r.body)
	}
	// Unknown names lock out the same way.
	for range 3 {
		e.do(t, "POST", "/auth/login", map[string]string{"username": "ghost", "password": "x"}, creds{})
	}
	e.clock.Advance(time.Minute + time.Second)
	e.challenge(t, "locked.lu", pw)
	wantActions(t, e.auditActions(t), "lockout/success", "login/denied")

	// Second-factor failures count too.
	secret, _, _ := e.enrol(t, "locked.lu", pw)
	for range 3 {
		if r := e.verify(t, "locked.lu", pw, "totp", "000000"); r.status != http.StatusUnauthorized {
			t.Fatalf("wrong code: %d", r.status)
		}
	}
	ch := e.do(t, "POST", "/auth/login", map[string]string{"username": "locked.lu", "password": pw}, creds{})
	if ch.status != http.StatusUnauthorized {
		t.Fatalf("login after 3 wrong codes: %d %s, want locked", ch.status, ch.body)
	}
	e.clock.Advance(2*time.Minute + time.Second)
	sessionOf(t, e.verify(t, "locked.lu", pw, "totp", e.code(t, secret, e.clock.Now())))
}

func TestAuthAddressRateLimit(t *testing.T) {
	e := startAuth(t, func(o *login.Options) {
		o.AddressLimits = password.AddressLimits{Rate: rate.Every(time.Minute), Burst: 3}
	})
	for i := range 3 {
		if r := e.do(t, "POST", "/auth/login", map[string]string{"username": "user" + string(rune('a'+i)) + "x", "password": "p"}, creds{}); r.status != http.StatusUnauthorized {
			t.Fatalf("attempt %d: %d", i, r.status)
		}
	}
	r := e.do(t, "POST", "/auth/login", map[string]string{"username": "other", "password": "p"}, creds{})
	if r.status != http.StatusTooManyRequests || r.header.Get("Retry-After") == "" {
		t.Fatalf("4th attempt from one address: %d %s (Retry-After %q)", r.status, r.body, r.header.Get("Retry-After"))
	}
	e.clock.Advance(time.Minute)
	if r := e.do(t, "POST", "/auth/login", map[string]string{"username": "other", "password": "p"}, creds{}); r.status != http.StatusUnauthorized {
		t.Fatalf("after a minute: %d", r.status)
	}
	wantActions(t, e.auditActions(t), "login/denied")
}

// TestAuthPatientSession: a patient account (no second factor needed)
// reaches the FHIR API, confined by the policies to its own compartment.
func TestAuthPatientSession(t *testing.T) {
	e := startAuth(t, nil)
	hash, _ := e.hasher.Hash(t.Context(), pw)
	// Two patients, written by the system token.
	own := e.do(t, "POST", "/fhir/Patient", patient(uniq(), nil), creds{bearer: e.token(t)})
	other := e.do(t, "POST", "/fhir/Patient", patient(uniq(), nil), creds{bearer: e.token(t)})
	if own.status != http.StatusCreated || other.status != http.StatusCreated {
		t.Fatalf("creating patients: %d %d", own.status, other.status)
	}
	ownID, otherID := own.json["id"].(string), other.json["id"].(string)
	id, _ := identity.NewID(nil)
	if _, err := e.app.Store.(*sqldb.Store).Users().Create(t.Context(), identity.User{ID: id, Username: "pat.one", Roles: []identity.Role{identity.RolePatient}, FHIRUser: "Patient/" + ownID, PasswordHash: hash}); err != nil {
		t.Fatal(err)
	}
	c := sessionOf(t, e.do(t, "POST", "/auth/login", map[string]string{"username": "pat.one", "password": pw}, creds{}))
	if r := e.do(t, "GET", "/fhir/Patient/"+ownID, nil, c); r.status != http.StatusOK {
		t.Fatalf("patient reads own record: %d %s", r.status, r.body)
	}
	if r := e.do(t, "GET", "/fhir/Patient/"+otherID, nil, c); r.status != http.StatusForbidden {
		t.Fatalf("patient reads another patient: %d, want 403", r.status)
	}
	r := e.do(t, "GET", "/fhir/Patient?_total=accurate", nil, c)
	if r.status != http.StatusOK || r.json["total"] != float64(1) {
		t.Fatalf("patient searches patients: %d total %v, want only its own", r.status, r.json["total"])
	}
	if r := e.do(t, "GET", "/auth/sessions", nil, c); r.status != http.StatusOK {
		t.Fatalf("patient lists own sessions: %d", r.status)
	}
}

// TestAuthTOTPConcurrentReuse sends one TOTP code on several challenges
// at once: the compare-and-set on the stored step lets exactly one in.
func TestAuthTOTPConcurrentReuse(t *testing.T) {
	e := startAuth(t, func(o *login.Options) {
		o.Lockout = password.Lockout{FreeFailures: 50}
		o.AddressLimits = password.AddressLimits{Burst: 1000}
	})
	e.addUser(t, "race.ra", pw, identity.RoleNurse)
	secret, _, _ := e.enrol(t, "race.ra", pw)
	e.clock.Advance(30 * time.Second)
	code := e.code(t, secret, e.clock.Now())
	const n = 16
	chs := make([]string, n)
	for i := range chs {
		chs[i] = e.challenge(t, "race.ra", pw).str("challenge")
	}
	statuses := make([]int, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			statuses[i] = e.do(t, "POST", "/auth/mfa/verify", map[string]string{"challenge": chs[i], "method": "totp", "code": code}, creds{}).status
		})
	}
	wg.Wait()
	ok := 0
	for _, s := range statuses {
		switch s {
		case http.StatusOK:
			ok++
		case http.StatusUnauthorized:
		default:
			t.Errorf("unexpected status %d", s)
		}
	}
	if ok != 1 {
		t.Fatalf("%d logins with one TOTP code (statuses %v), want exactly 1", ok, statuses)
	}
}

// TestAuthDisabledSession: disabling an account ends its cookie's use
// even before its sessions are revoked.
func TestAuthDisabledSession(t *testing.T) {
	e := startAuth(t, nil)
	u := e.addUser(t, "gone.soon", pw, identity.RoleAuditor)
	_, _, c := e.enrol(t, "gone.soon", pw)
	if r := e.do(t, "GET", "/fhir/Patient?name=x", nil, c); r.status != http.StatusOK {
		t.Fatalf("before disabling: %d", r.status)
	}
	if _, err := e.app.Store.(*sqldb.Store).Users().SetDisabled(t.Context(), u.ID, true); err != nil {
		t.Fatal(err)
	}
	r := e.do(t, "GET", "/fhir/Patient?name=x", nil, c)
	if r.status != http.StatusUnauthorized || !strings.Contains(r.header.Get("Set-Cookie"), "Max-Age=0") {
		t.Fatalf("disabled user's session: %d, Set-Cookie %q", r.status, r.header.Get("Set-Cookie"))
	}
}

// wrongToken changes the first character of a token, so that it is
// always different from it (replacing it by a fixed letter would leave
// a token that starts with that letter unchanged, one time in 64).
func wrongToken(tok string) string {
	if tok == "" {
		return "x"
	}
	c := byte('x')
	if tok[0] == c {
		c = 'y'
	}
	return string(c) + tok[1:]
}
