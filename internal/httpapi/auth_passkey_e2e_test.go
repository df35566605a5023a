package httpapi_test

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/phivault/phivault/internal/apitest"
	"github.com/phivault/phivault/internal/audit"
	"github.com/phivault/phivault/internal/authn/login"
	"github.com/phivault/phivault/internal/authn/passkey"
	"github.com/phivault/phivault/internal/authn/passkey/passkeytest"
	"github.com/phivault/phivault/internal/authn/password"
	"github.com/phivault/phivault/internal/httpapi/signin"
	"github.com/phivault/phivault/internal/identity"
	"github.com/phivault/phivault/internal/storage/sqldb"
)

// startPasskeys is startAuth on https://localhost:<port>, so the
// relying party (and its origin) exists.
func startPasskeys(t *testing.T, edit func(*login.Options)) *authEnv {
	t.Helper()
	return startAuthHost(t, edit, "localhost")
}

func (e *authEnv) authenticator(t *testing.T) *passkeytest.Authenticator {
	t.Helper()
	a, err := passkeytest.New(e.base)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// optionsOf returns the "options" of a begin answer as JSON.
func optionsOf(t *testing.T, r resp) []byte {
	t.Helper()
	if r.status != http.StatusOK || r.str("ceremony") == "" {
		t.Fatalf("begin: %d %s", r.status, r.body)
	}
	b, err := json.Marshal(r.json["options"])
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// enrolPasskey runs a first login that enrols a on the password step.
func (e *authEnv) enrolPasskey(t *testing.T, username, pw string, a *passkeytest.Authenticator) (resp, creds) {
	t.Helper()
	ch := e.challenge(t, username, pw)
	if ch.json["enrollment_required"] != true || !slices.Contains(anyStrings(ch.json["methods"]), "webauthn") {
		t.Fatalf("first login: %s, want enrolment with webauthn offered", ch.body)
	}
	b := e.do(t, "POST", "/auth/webauthn/register/begin", map[string]string{"challenge": ch.str("challenge")}, creds{})
	cred, err := a.Register(optionsOf(t, b))
	if err != nil {
		t.Fatal(err)
	}
	fin := e.do(t, "POST", "/auth/webauthn/register/finish", map[string]any{"challenge": ch.str("challenge"),
		"ceremony": b.str("ceremony"), "name": "Work laptop", "credential": json.RawMessage(cred)}, creds{})
	return fin, sessionOf(t, fin)
}

// passkeyLogin runs password + passkey and returns the finish answer
// and what was sent, for replays.
func (e *authEnv) passkeyLogin(t *testing.T, username, pw string, a *passkeytest.Authenticator) (resp, map[string]any) {
	t.Helper()
	ch := e.challenge(t, username, pw)
	b := e.do(t, "POST", "/auth/webauthn/login/begin", map[string]string{"challenge": ch.str("challenge")}, creds{})
	cred, err := a.Assert(optionsOf(t, b))
	if err != nil {
		t.Fatal(err)
	}
	body := map[string]any{"challenge": ch.str("challenge"), "ceremony": b.str("ceremony"), "credential": json.RawMessage(cred)}
	return e.do(t, "POST", "/auth/webauthn/login/finish", body, creds{}), body
}

func anyStrings(v any) []string {
	var out []string
	l, _ := v.([]any)
	for _, x := range l {
		s, _ := x.(string)
		out = append(out, s)
	}
	return out
}

func TestPasskeyEnrolAndSignIn(t *testing.T) {
	for _, driver := range apitest.Drivers {
		t.Run(driver, func(t *testing.T) { testPasskeyEnrolAndSignIn(t, startAuthOn(t, nil, "localhost", driver)) })
	}
}

func testPasskeyEnrolAndSignIn(t *testing.T, e *authEnv) {
	u := e.addUser(t, "dr.pk", pw, identity.RolePhysician)
	a := e.authenticator(t)
	fin, c := e.enrolPasskey(t, "dr.pk", pw, a)
	if n := len(anyStrings(fin.json["recovery_codes"])); n != 10 {
		t.Fatalf("%d recovery codes, want 10", n)
	}
	pk, _ := fin.json["passkey"].(map[string]any)
	if pk["name"] != "Work laptop" || pk["id"] == "" {
		t.Fatalf("passkey: %v", pk)
	}
	if r := e.do(t, "GET", "/fhir/Patient?identifier=x", nil, c); r.status != http.StatusOK {
		t.Fatalf("FHIR search after passkey enrolment: %d %s", r.status, r.body)
	}
	e.wantEvent(t, audit.ActionMFAEnroll, audit.OutcomeSuccess, "Passkey/"+pk["id"].(string))
	if r := e.do(t, "POST", "/auth/logout", nil, c); r.status != http.StatusNoContent {
		t.Fatalf("logout: %d", r.status)
	}

	ch := e.challenge(t, "dr.pk", pw)
	if got := anyStrings(ch.json["methods"]); !slices.Equal(got, []string{"webauthn", "recovery"}) {
		t.Errorf("methods = %v, want [webauthn recovery]", got)
	}
	// TOTP is not enrolled: no code works.
	if r := e.do(t, "POST", "/auth/mfa/verify", map[string]string{"challenge": ch.str("challenge"), "method": "totp", "code": "123456"}, creds{}); r.status != http.StatusUnauthorized {
		t.Fatalf("totp for a passkey account: %d", r.status)
	}

	r, body := e.passkeyLogin(t, "dr.pk", pw, a)
	c2 := sessionOf(t, r)
	if r := e.do(t, "GET", "/fhir/Patient?identifier=x", nil, c2); r.status != http.StatusOK {
		t.Fatalf("FHIR search after passkey sign-in: %d %s", r.status, r.body)
	}
	ev := e.wantEvent(t, audit.ActionMFAVerify, audit.OutcomeSuccess, "Passkey/"+pk["id"].(string))
	if ev.Agent.User != u.ID || !slices.Contains(ev.Policies, "webauthn") {
		t.Errorf("mfa-verify event: %+v", ev)
	}

	// The same answer again, with the same (still valid) login challenge
	// and ceremony: refused, counted, audited.
	again := e.do(t, "POST", "/auth/webauthn/login/finish", body, creds{})
	if again.status != http.StatusUnauthorized || again.str("error") != passkey.ErrRejected.Error() || again.header.Get("Set-Cookie") != "" {
		t.Fatalf("replayed answer: %d %s", again.status, again.body)
	}
	denied := e.lastEvent(t, audit.ActionMFAVerify, audit.OutcomeDenied)
	if !slices.Contains(denied.Policies, "webauthn") {
		t.Errorf("replay audit: %+v", denied)
	}

	// Nothing secret or identifying reached the log.
	logs := e.logs.String()
	for name, v := range map[string]string{
		"credential id": base64.RawURLEncoding.EncodeToString(a.CredentialID()),
		"ceremony":      body["ceremony"].(string),
		"challenge":     body["challenge"].(string),
	} {
		if strings.Contains(logs, v) {
			t.Errorf("the %s reached the log", name)
		}
	}
}

// lastEvent returns the last audit event with action and outcome.
func (e *authEnv) lastEvent(t *testing.T, act audit.Action, outcome audit.Outcome) audit.Event {
	t.Helper()
	evs := e.events(t)
	for i := len(evs) - 1; i >= 0; i-- {
		if evs[i].Action == act && evs[i].Outcome == outcome {
			return evs[i]
		}
	}
	t.Fatalf("no %s/%s audit event", act, outcome)
	return audit.Event{}
}

func TestPasskeySignInRefusals(t *testing.T) {
	e := startPasskeys(t, func(o *login.Options) {
		o.Lockout = password.Lockout{FreeFailures: 6, BaseDelay: time.Minute, MaxDelay: time.Hour}
		o.AddressLimits = password.AddressLimits{Burst: 1000}
	})
	e.addUser(t, "nurse.pk", pw, identity.RoleNurse)
	e.addUser(t, "other.pk", pw, identity.RoleNurse)
	a := e.authenticator(t)
	e.enrolPasskey(t, "nurse.pk", pw, a)
	otherKey := e.authenticator(t)
	e.enrolPasskey(t, "other.pk", pw, otherKey)

	refuse := func(name string, a *passkeytest.Authenticator, wantMsg string) {
		t.Helper()
		r, _ := e.passkeyLogin(t, "nurse.pk", pw, a)
		if r.status != http.StatusUnauthorized || r.str("error") != wantMsg || r.header.Get("Set-Cookie") != "" {
			t.Fatalf("%s: %d %s", name, r.status, r.body)
		}
	}
	rejected := passkey.ErrRejected.Error()
	a.Counter = 10
	if r, _ := e.passkeyLogin(t, "nurse.pk", pw, a); r.status != http.StatusOK {
		t.Fatalf("valid sign-in with counter: %d %s", r.status, r.body)
	}
	stored := a.Counter // 11: the server stored it

	// Expired ceremony: begin, wait past the TTL, finish.
	ch := e.challenge(t, "nurse.pk", pw)
	b := e.do(t, "POST", "/auth/webauthn/login/begin", map[string]string{"challenge": ch.str("challenge")}, creds{})
	cred, _ := a.Assert(optionsOf(t, b))
	e.clock.Advance(passkey.CeremonyTTL + time.Second)
	r := e.do(t, "POST", "/auth/webauthn/login/finish", map[string]any{"challenge": ch.str("challenge"), "ceremony": b.str("ceremony"), "credential": json.RawMessage(cred)}, creds{})
	if r.status != http.StatusUnauthorized || r.str("error") != passkey.ErrInvalidCeremony.Error() {
		t.Fatalf("expired ceremony: %d %s", r.status, r.body)
	}
	// A registration ceremony is not a login ceremony.
	ch = e.challenge(t, "nurse.pk", pw)
	e.do(t, "POST", "/auth/webauthn/login/begin", map[string]string{"challenge": ch.str("challenge")}, creds{})
	if r := e.do(t, "POST", "/auth/webauthn/login/finish", map[string]any{"challenge": ch.str("challenge"), "ceremony": ch.str("challenge"), "credential": json.RawMessage(`{}`)}, creds{}); r.status != http.StatusUnauthorized {
		t.Fatalf("login challenge as ceremony: %d %s", r.status, r.body)
	}

	a.Origin = "https://evil.example"
	refuse("origin of another site", a, rejected)
	a.Origin = strings.Replace(e.base, "https://", "http://", 1)
	refuse("http origin", a, rejected)
	a.Origin = e.base
	a.RPID = "example.com"
	refuse("rp id of another site", a, rejected)
	a.RPID = ""
	a.UV = false
	refuse("no user verification", a, rejected)
	a.UV = true
	refuse("another user's credential", otherKey, rejected)

	// Counter: a clone repeats a count the server has seen.
	a.Counter, a.Step = stored, 0
	refuse("sign count regression", a, rejected)
	ev := e.lastEvent(t, audit.ActionMFAVerify, audit.OutcomeDenied)
	if !slices.Contains(ev.Policies, "sign-count-regression") {
		t.Errorf("clone warning not audited: %+v", ev)
	}
	if !strings.Contains(e.logs.String(), "possible cloned authenticator") {
		t.Error("clone warning not logged")
	}
	a.Step = 1

	// Six refused answers so far lock the account: even a valid passkey is
	// refused until the lockout ends, like a correct TOTP code.
	if r := e.do(t, "POST", "/auth/login", map[string]string{"username": "nurse.pk", "password": pw}, creds{}); r.status != http.StatusUnauthorized {
		t.Fatalf("login while locked: %d %s", r.status, r.body)
	}
	wantActions(t, e.auditActions(t), "lockout/success")
	e.clock.Advance(time.Hour)
	if r, _ := e.passkeyLogin(t, "nurse.pk", pw, a); r.status != http.StatusOK {
		t.Fatalf("after the lockout: %d %s", r.status, r.body)
	}
}

func TestPasskeyManagement(t *testing.T) {
	e := startPasskeys(t, func(o *login.Options) { o.AddressLimits = password.AddressLimits{Burst: 1000} })
	e.addUser(t, "tech.pk", pw, identity.RoleNurse)
	_, _, c := e.enrol(t, "tech.pk", pw) // TOTP first

	if r := e.do(t, "POST", "/auth/webauthn/register/begin", map[string]string{}, creds{cookie: c.cookie}); r.status != http.StatusForbidden {
		t.Fatalf("add without the CSRF header: %d %s", r.status, r.body)
	}
	if r := e.do(t, "POST", "/auth/webauthn/register/begin", map[string]string{}, creds{}); r.status != http.StatusUnauthorized {
		t.Fatalf("add without a session: %d %s", r.status, r.body)
	}
	add := func(a *passkeytest.Authenticator, name string) string {
		t.Helper()
		b := e.do(t, "POST", "/auth/webauthn/register/begin", map[string]string{}, c)
		cred, err := a.Register(optionsOf(t, b))
		if err != nil {
			t.Fatal(err)
		}
		r := e.do(t, "POST", "/auth/webauthn/register/finish", map[string]any{"ceremony": b.str("ceremony"), "name": name, "credential": json.RawMessage(cred)}, c)
		if r.status != http.StatusCreated {
			t.Fatalf("add passkey: %d %s", r.status, r.body)
		}
		return r.json["passkey"].(map[string]any)["id"].(string)
	}
	k1, k2 := e.authenticator(t), e.authenticator(t)
	id1 := add(k1, "Phone")
	e.clock.Advance(time.Second)
	id2 := add(k2, "")
	e.wantEvent(t, audit.ActionPasskeyAdd, audit.OutcomeSuccess, "Passkey/"+id1)

	list := e.do(t, "GET", "/auth/passkeys", nil, c)
	if list.status != http.StatusOK || strings.Contains(string(list.body), base64.RawURLEncoding.EncodeToString(k1.CredentialID())) {
		t.Fatalf("list: %d %s", list.status, list.body)
	}
	items, _ := list.json["passkeys"].([]any)
	if len(items) != 2 || items[0].(map[string]any)["name"] != "Phone" || !strings.HasPrefix(items[1].(map[string]any)["name"].(string), "Passkey added ") {
		t.Fatalf("list: %s", list.body)
	}
	if r := e.do(t, "PATCH", "/auth/passkeys/"+id2, map[string]string{"name": " Security key\n"}, c); r.status != http.StatusOK || r.str("name") != "Security key" {
		t.Fatalf("rename: %d %s", r.status, r.body)
	}
	if r := e.do(t, "PATCH", "/auth/passkeys/"+id2, map[string]string{"name": "x"}, creds{cookie: c.cookie}); r.status != http.StatusForbidden {
		t.Fatalf("rename without CSRF: %d", r.status)
	}
	e.wantEvent(t, audit.ActionPasskeyRename, audit.OutcomeSuccess, "Passkey/"+id2)

	// Another user cannot see or touch them.
	e.addUser(t, "intruder.pk", pw, identity.RoleNurse)
	_, _, ic := e.enrol(t, "intruder.pk", pw)
	if r := e.do(t, "DELETE", "/auth/passkeys/"+id1, nil, ic); r.status != http.StatusNotFound {
		t.Fatalf("deleting another user's passkey: %d %s", r.status, r.body)
	}
	if r := e.do(t, "GET", "/auth/passkeys", nil, ic); len(r.json["passkeys"].([]any)) != 0 {
		t.Fatalf("intruder sees %s", r.body)
	}

	// The same authenticator twice: excluded and refused.
	b := e.do(t, "POST", "/auth/webauthn/register/begin", map[string]string{}, c)
	cred, _ := k1.Register(optionsOf(t, b))
	if r := e.do(t, "POST", "/auth/webauthn/register/finish", map[string]any{"ceremony": b.str("ceremony"), "credential": json.RawMessage(cred)}, c); r.status != http.StatusUnauthorized {
		t.Fatalf("same authenticator twice: %d %s", r.status, r.body)
	}
	e.lastEvent(t, audit.ActionPasskeyAdd, audit.OutcomeDenied)

	// With TOTP enrolled every passkey may go.
	for _, id := range []string{id1, id2} {
		if r := e.do(t, "DELETE", "/auth/passkeys/"+id, nil, c); r.status != http.StatusNoContent {
			t.Fatalf("delete: %d %s", r.status, r.body)
		}
	}
	e.wantEvent(t, audit.ActionPasskeyRemove, audit.OutcomeSuccess, "Passkey/"+id2)
}

func TestPasskeyLastFactorAndReset(t *testing.T) {
	for _, driver := range apitest.Drivers {
		t.Run(driver, func(t *testing.T) {
			testPasskeyLastFactorAndReset(t, startAuthOn(t, func(o *login.Options) { o.AddressLimits = password.AddressLimits{Burst: 1000} }, "localhost", driver))
		})
	}
}

func testPasskeyLastFactorAndReset(t *testing.T, e *authEnv) {
	u := e.addUser(t, "solo.pk", pw, identity.RoleNurse)
	a := e.authenticator(t)
	fin, c := e.enrolPasskey(t, "solo.pk", pw, a)
	id := fin.json["passkey"].(map[string]any)["id"].(string)
	r := e.do(t, "DELETE", "/auth/passkeys/"+id, nil, c)
	if r.status != http.StatusConflict || r.str("error") != login.ErrLastFactor.Error() {
		t.Fatalf("deleting the only factor: %d %s", r.status, r.body)
	}
	e.wantEvent(t, audit.ActionPasskeyRemove, audit.OutcomeDenied, "Passkey/"+id)
	if r, _ := e.passkeyLogin(t, "solo.pk", pw, a); r.status != http.StatusOK {
		t.Fatalf("the passkey was removed anyway: %d", r.status)
	}

	// An administrator's MFA reset removes the passkeys and the sessions.
	acc, err := e.app.Accounts()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := acc.ResetMFA(t.Context(), audit.Agent{Client: "test"}, u.ID); err != nil {
		t.Fatal(err)
	}
	if r := e.do(t, "GET", "/auth/passkeys", nil, c); r.status != http.StatusUnauthorized {
		t.Fatalf("session after MFA reset: %d", r.status)
	}
	ch := e.challenge(t, "solo.pk", pw)
	if ch.json["enrollment_required"] != true {
		t.Fatalf("after reset: %s, want enrolment", ch.body)
	}
	if r := e.do(t, "POST", "/auth/webauthn/login/begin", map[string]string{"challenge": ch.str("challenge")}, creds{}); r.status != http.StatusUnauthorized {
		t.Fatalf("passkey login with an enrolment challenge: %d %s", r.status, r.body)
	}
	// The old authenticator can enrol again (its credential was deleted).
	e.enrolPasskey(t, "solo.pk", pw, a)
}

func TestPasskeyBadInput(t *testing.T) {
	e := startPasskeys(t, nil)
	e.addUser(t, "bad.pk", pw, identity.RoleNurse)
	ch := e.challenge(t, "bad.pk", pw)
	b := e.do(t, "POST", "/auth/webauthn/register/begin", map[string]string{"challenge": ch.str("challenge")}, creds{})
	base := map[string]any{"challenge": ch.str("challenge"), "ceremony": b.str("ceremony")}
	for _, tc := range []struct {
		name   string
		body   any
		status int
	}{
		{"credential not an object", merge(base, "credential", "x"), http.StatusBadRequest},
		{"credential missing", base, http.StatusBadRequest},
		{"unknown field", merge(merge(base, "credential", map[string]any{}), "extra", 1), http.StatusBadRequest},
		{"empty credential", merge(base, "credential", map[string]any{}), http.StatusUnauthorized},
		{"garbage credential", merge(base, "credential", map[string]any{"id": "!!", "rawId": 5, "response": "no"}), http.StatusUnauthorized},
		{"too large", merge(base, "credential", map[string]any{"id": strings.Repeat("A", 64<<10)}), http.StatusRequestEntityTooLarge},
		{"forged ceremony", merge(merge(base, "ceremony", "v1.forged"), "credential", map[string]any{}), http.StatusUnauthorized},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := e.do(t, "POST", "/auth/webauthn/register/finish", tc.body, creds{})
			if r.status != tc.status || r.str("error") == "" {
				t.Fatalf("%d %s, want %d with an error", r.status, r.body, tc.status)
			}
		})
	}
	req, _ := http.NewRequestWithContext(t.Context(), "POST", e.url+"/auth/webauthn/login/finish", strings.NewReader(`{}`))
	req.Header.Set("Content-Type", "text/plain")
	res, err := e.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusUnsupportedMediaType {
		t.Fatalf("text/plain body: %d", res.StatusCode)
	}
}

func merge(m map[string]any, k string, v any) map[string]any {
	out := map[string]any{k: v}
	for kk, vv := range m {
		if kk != k {
			out[kk] = vv
		}
	}
	return out
}

func TestPasskeysDisabledOnIPBaseURL(t *testing.T) {
	e := startAuth(t, nil)
	e.addUser(t, "ip.pk", pw, identity.RoleNurse)
	ch := e.challenge(t, "ip.pk", pw)
	if got := anyStrings(ch.json["methods"]); !slices.Equal(got, []string{"totp"}) {
		t.Errorf("methods = %v, want [totp]", got)
	}
	if r := e.do(t, "POST", "/auth/webauthn/register/begin", map[string]string{"challenge": ch.str("challenge")}, creds{}); r.status != http.StatusNotFound {
		t.Fatalf("passkeys on an IP base URL: %d %s", r.status, r.body)
	}
}

func TestWebAuthnScript(t *testing.T) {
	e := startPasskeys(t, nil)
	r := e.do(t, "GET", signin.WebAuthnScriptPath, nil, creds{})
	if r.status != http.StatusOK || r.header.Get("Content-Type") != "text/javascript; charset=utf-8" ||
		r.header.Get("X-Content-Type-Options") != "nosniff" || r.header.Get("ETag") == "" ||
		!strings.Contains(r.header.Get("Cache-Control"), "max-age") {
		t.Fatalf("GET %s: %d %v", signin.WebAuthnScriptPath, r.status, r.header)
	}
	for _, banned := range []string{"eval(", "new Function", "innerHTML", "document.write", "http://", "https://"} {
		if strings.Contains(string(r.body), banned) {
			t.Errorf("webauthn.js contains %q", banned)
		}
	}
	req, _ := http.NewRequestWithContext(t.Context(), "GET", e.url+signin.WebAuthnScriptPath, nil)
	req.Header.Set("If-None-Match", r.header.Get("ETag"))
	res, err := e.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusNotModified {
		t.Errorf("revalidation: %d, want 304", res.StatusCode)
	}
}

func TestPasskeyAddNeedsVerifiedSession(t *testing.T) {
	e := startPasskeys(t, nil)
	hash, _ := e.hasher.Hash(t.Context(), pw)
	id, _ := identity.NewID(nil)
	if _, err := e.app.Store.(*sqldb.Store).Users().Create(t.Context(), identity.User{ID: id, Username: "pat.pk",
		Roles: []identity.Role{identity.RolePatient}, FHIRUser: "Patient/p1", PasswordHash: hash}); err != nil {
		t.Fatal(err)
	}
	// A patient account signs in with its password alone: that session
	// has no verified second factor and may not add a passkey.
	c := sessionOf(t, e.do(t, "POST", "/auth/login", map[string]string{"username": "pat.pk", "password": pw}, creds{}))
	r := e.do(t, "POST", "/auth/webauthn/register/begin", map[string]string{}, c)
	if r.status != http.StatusForbidden || r.str("error") != login.ErrNeedsVerifiedSession.Error() {
		t.Fatalf("add from a password-only session: %d %s", r.status, r.body)
	}
	// API tokens are not sessions.
	req, _ := http.NewRequestWithContext(t.Context(), "GET", e.url+"/auth/passkeys", nil)
	tok, err := e.app.Tokens().Create(t.Context(), "svc", []string{"system"})
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+tok.Reveal())
	res, err := e.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusUnauthorized {
		t.Fatalf("GET /auth/passkeys with an API token: %d", res.StatusCode)
	}
}

// TestPasskeyConcurrentReplay sends one genuine answer many times at
// once: the ceremony is single use across connections (and, on
// PostgreSQL, across pool connections), so exactly one session starts.
func TestPasskeyConcurrentReplay(t *testing.T) {
	for _, driver := range apitest.Drivers {
		t.Run(driver, func(t *testing.T) {
			e := startAuthOn(t, func(o *login.Options) {
				o.Lockout = password.Lockout{FreeFailures: 50}
				o.AddressLimits = password.AddressLimits{Burst: 1000}
			}, "localhost", driver)
			e.addUser(t, "race.pk", pw, identity.RoleNurse)
			a := e.authenticator(t)
			e.enrolPasskey(t, "race.pk", pw, a)
			ch := e.challenge(t, "race.pk", pw)
			b := e.do(t, "POST", "/auth/webauthn/login/begin", map[string]string{"challenge": ch.str("challenge")}, creds{})
			cred, err := a.Assert(optionsOf(t, b))
			if err != nil {
				t.Fatal(err)
			}
			body := map[string]any{"challenge": ch.str("challenge"), "ceremony": b.str("ceremony"), "credential": json.RawMessage(cred)}
			const n = 8
			statuses := make([]int, n)
			var wg sync.WaitGroup
			for i := range n {
				wg.Go(func() { statuses[i] = e.do(t, "POST", "/auth/webauthn/login/finish", body, creds{}).status })
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
				t.Fatalf("%d sessions from one passkey answer (statuses %v), want exactly 1", ok, statuses)
			}
		})
	}
}
