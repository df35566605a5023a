package httpapi_test

import (
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/phivault/phivault/internal/audit"
	"github.com/phivault/phivault/internal/authn/login"
	"github.com/phivault/phivault/internal/authn/password"
	"github.com/phivault/phivault/internal/identity"
)

// events returns every audit event of e so far.
func (e *authEnv) events(t *testing.T) []audit.Event {
	t.Helper()
	evs, err := e.app.Transparency().Events(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return evs
}

// wantEvent returns the last audit event with action, outcome and entity,
// failing if there is none.
func (e *authEnv) wantEvent(t *testing.T, act audit.Action, outcome audit.Outcome, entity string) audit.Event {
	t.Helper()
	evs := e.events(t)
	for i := len(evs) - 1; i >= 0; i-- {
		if ev := evs[i]; ev.Action == act && ev.Outcome == outcome && slices.Contains(ev.Entities, entity) {
			return ev
		}
	}
	t.Fatalf("no %s/%s audit event for %q among %d events", act, outcome, entity, len(evs))
	return audit.Event{}
}

// currentSession returns the id of the session c authenticates.
func (e *authEnv) currentSession(t *testing.T, c creds) string {
	t.Helper()
	r := e.do(t, "GET", "/auth/sessions", nil, c)
	if r.status != http.StatusOK {
		t.Fatalf("GET /auth/sessions: %d %s", r.status, r.body)
	}
	for _, x := range r.json["sessions"].([]any) {
		if m := x.(map[string]any); m["current"] == true {
			return m["id"].(string)
		}
	}
	t.Fatalf("no current session in %s", r.body)
	return ""
}

// wantLive fails unless c still authenticates (live) or is refused with
// 401 (!live).
func (e *authEnv) wantLive(t *testing.T, name string, c creds, live bool) {
	t.Helper()
	r := e.do(t, "GET", "/auth/sessions", nil, c)
	switch {
	case live && r.status != http.StatusOK:
		t.Errorf("%s: %d %s, want a live session", name, r.status, r.body)
	case !live && r.status != http.StatusUnauthorized:
		t.Errorf("%s: %d %s, want 401 (revoked)", name, r.status, r.body)
	}
}

// secondSession logs username in again with TOTP (after the step the
// previous code used) and returns the new session's credentials.
func (e *authEnv) secondSession(t *testing.T, username, pw, secret string) creds {
	t.Helper()
	e.clock.Advance(30 * time.Second)
	return sessionOf(t, e.verify(t, username, pw, "totp", e.code(t, secret, e.clock.Now())))
}

func TestAdminSessionsE2E(t *testing.T) {
	e := startAuth(t, func(o *login.Options) { o.AddressLimits = password.AddressLimits{Burst: 1000} })
	adm := e.addUser(t, "sec.ada", pw, identity.RoleSecurityAdmin)
	nurse := e.addUser(t, "nurse.ann", pw, identity.RoleNurse)
	_, _, ac := e.enrol(t, "sec.ada", pw)
	secret, _, n1 := e.enrol(t, "nurse.ann", pw)
	n2 := e.secondSession(t, "nurse.ann", pw, secret)
	s1, s2 := e.currentSession(t, n1), e.currentSession(t, n2)
	adminSession := e.currentSession(t, ac)

	t.Run("non-admin refused", func(t *testing.T) {
		if r := e.do(t, "GET", "/admin/api/users/"+nurse.ID+"/sessions", nil, n1); r.status != http.StatusForbidden {
			t.Errorf("nurse lists sessions: %d %s, want 403", r.status, r.body)
		}
		if r := e.do(t, "DELETE", "/admin/api/sessions/"+s2, nil, n1); r.status != http.StatusForbidden || !strings.Contains(r.str("error"), "security-admin") {
			t.Errorf("nurse revokes a session by admin API: %d %s, want 403", r.status, r.body)
		}
		ev := e.wantEvent(t, audit.ActionUserAdmin, audit.OutcomeDenied, "Session/"+s2)
		if ev.Agent.User != nurse.ID || ev.Agent.Session != s1 {
			t.Errorf("denied event agent %+v, want the nurse and her session", ev.Agent)
		}
		e.wantLive(t, "session after a refused revocation", n2, true)
	})

	t.Run("list", func(t *testing.T) {
		r := e.do(t, "GET", "/admin/api/users/"+nurse.ID+"/sessions", nil, ac)
		if r.status != http.StatusOK {
			t.Fatalf("admin lists sessions: %d %s", r.status, r.body)
		}
		var ids []string
		for _, x := range r.json["sessions"].([]any) {
			m := x.(map[string]any)
			if m["user_id"] != nurse.ID || m["mfa"] != true {
				t.Errorf("listed session %v", m)
			}
			ids = append(ids, m["id"].(string))
		}
		slices.Sort(ids)
		want := []string{s1, s2}
		slices.Sort(want)
		if !slices.Equal(ids, want) {
			t.Errorf("listed %v, want %v", ids, want)
		}
		for _, leak := range []string{"pvs_", n1.cookie, n2.cookie, "token"} {
			if strings.Contains(string(r.body), leak) {
				t.Errorf("session list %s contains %q", r.body, leak)
			}
		}
		if r := e.do(t, "GET", "/admin/api/users/usr_nobody/sessions", nil, ac); r.status != http.StatusNotFound {
			t.Errorf("sessions of an unknown user: %d %s, want 404", r.status, r.body)
		}
	})

	t.Run("revoke", func(t *testing.T) {
		if r := e.do(t, "DELETE", "/admin/api/sessions/"+s1, nil, creds{cookie: ac.cookie}); r.status != http.StatusForbidden {
			t.Errorf("admin DELETE without CSRF token: %d %s, want 403", r.status, r.body)
		}
		e.wantLive(t, "session after a DELETE without CSRF", n1, true)
		if r := e.do(t, "DELETE", "/admin/api/sessions/"+s1, nil, ac); r.status != http.StatusNoContent {
			t.Fatalf("admin revokes: %d %s, want 204", r.status, r.body)
		}
		e.wantLive(t, "revoked session", n1, false)
		e.wantLive(t, "the user's other session", n2, true)
		e.wantLive(t, "the admin's session", ac, true)
		ev := e.wantEvent(t, audit.ActionSessionRevoke, audit.OutcomeSuccess, "Session/"+s1)
		if ev.Agent.User != adm.ID || ev.Agent.Session != adminSession || ev.Agent.Role != "security-admin" || !slices.Contains(ev.Entities, "User/"+nurse.ID) {
			t.Errorf("revoke event %+v, want the admin as agent and the nurse as entity", ev)
		}
		if r := e.do(t, "DELETE", "/admin/api/sessions/"+s1, nil, ac); r.status != http.StatusNotFound || r.str("error") != "no such session" {
			t.Errorf("revoking a revoked session: %d %s, want 404", r.status, r.body)
		}
	})
}

func TestAuthChangePassword(t *testing.T) {
	e := startAuth(t, func(o *login.Options) {
		o.Lockout = password.Lockout{FreeFailures: 3, BaseDelay: time.Minute, MaxDelay: time.Hour}
		o.AddressLimits = password.AddressLimits{Burst: 1000}
	})
	u := e.addUser(t, "nurse.pat", pw, identity.RoleNurse)
	secret, _, c1 := e.enrol(t, "nurse.pat", pw)
	c2 := e.secondSession(t, "nurse.pat", pw, secret)
	const newPW = "plum tuesday lantern orbit"
	change := func(c creds, current, next string) resp {
		return e.do(t, "POST", "/auth/password", map[string]string{"current_password": current, "new_password": next}, c)
	}

	t.Run("csrf required", func(t *testing.T) {
		if r := change(creds{cookie: c1.cookie}, pw, newPW); r.status != http.StatusForbidden {
			t.Fatalf("without X-CSRF-Token: %d %s, want 403", r.status, r.body)
		}
		if r := change(creds{}, pw, newPW); r.status != http.StatusUnauthorized {
			t.Fatalf("without a session: %d %s, want 401", r.status, r.body)
		}
	})

	t.Run("wrong current password is counted", func(t *testing.T) {
		for i := range 3 {
			r := change(c1, "not the password", newPW)
			if r.status != http.StatusUnauthorized || r.str("error") != login.ErrWrongPassword.Error() {
				t.Fatalf("wrong current password %d: %d %s, want 401", i, r.status, r.body)
			}
		}
		e.wantLive(t, "session after wrong current passwords", c1, true)
		// Three failures lock the account for login and for changes alike.
		if r := e.do(t, "POST", "/auth/login", map[string]string{"username": "nurse.pat", "password": pw}, creds{}); r.status != http.StatusUnauthorized {
			t.Errorf("login after 3 wrong current passwords: %d %s, want locked out", r.status, r.body)
		}
		if r := change(c1, pw, newPW); r.status != http.StatusUnauthorized {
			t.Errorf("correct current password while locked: %d %s, want 401", r.status, r.body)
		}
		acts := e.auditActions(t)
		wantActions(t, acts, "user-set-password/denied", "lockout/success")
		e.clock.Advance(2 * time.Minute)
		// Keep the sessions alive across the lockout (idle timeout 15 min).
		e.wantLive(t, "first session", c1, true)
		e.wantLive(t, "second session", c2, true)
	})

	t.Run("weak new password", func(t *testing.T) {
		for _, tc := range []struct{ name, pw, msg string }{
			{"short", "short", password.ErrTooShort.Error()},
			{"common", "password12345678", password.ErrCommon.Error()},
			{"user name", "nurse.pat is my name", password.ErrContext.Error()},
		} {
			r := change(c1, pw, tc.pw)
			if r.status != http.StatusBadRequest || r.str("error") != tc.msg {
				t.Errorf("%s: %d %s, want 400 %q", tc.name, r.status, r.body, tc.msg)
			}
		}
		e.wantLive(t, "session after refused changes", c2, true)
	})

	t.Run("success", func(t *testing.T) {
		old := e.currentSession(t, c1)
		r := change(c1, pw, newPW)
		nc := sessionOf(t, r)
		if nc.cookie == c1.cookie {
			t.Fatal("the session cookie was not rotated")
		}
		e.wantLive(t, "the caller's old cookie", c1, false)
		e.wantLive(t, "the user's other session", c2, false)
		e.wantLive(t, "the caller's new cookie", nc, true)
		ev := e.wantEvent(t, audit.ActionUserSetPassword, audit.OutcomeSuccess, "User/"+u.ID)
		if ev.Agent.User != u.ID || ev.Agent.Session != old || !slices.Contains(ev.Entities, "Session/"+e.currentSession(t, nc)) {
			t.Errorf("set-password event %+v, want the user, the old session and the new one", ev)
		}
		// The new session keeps its second factor: it reaches the FHIR
		// API, and its CSRF token works on state changes.
		if r := e.do(t, "GET", "/fhir/Patient?identifier=x", nil, nc); r.status != http.StatusOK {
			t.Errorf("FHIR with the new cookie: %d %s", r.status, r.body)
		}
		if r := e.do(t, "DELETE", "/auth/sessions/ses_00000000000000000000000000000000", nil, nc); r.status != http.StatusNotFound {
			t.Errorf("state change with the new CSRF token: %d %s, want 404 (passed the CSRF check)", r.status, r.body)
		}
		if r := e.do(t, "GET", "/auth/sessions", nil, nc); len(r.json["sessions"].([]any)) != 1 {
			t.Errorf("sessions after the change: %s, want only the new one", r.body)
		}

		if r := e.do(t, "POST", "/auth/login", map[string]string{"username": "nurse.pat", "password": pw}, creds{}); r.status != http.StatusUnauthorized {
			t.Errorf("login with the old password: %d %s, want 401", r.status, r.body)
		}
		e.wantLive(t, "a login with the new password", e.secondSession(t, "nurse.pat", newPW, secret), true)
	})
}
