package httpapi_test

import (
	"errors"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/phivault/phivault/internal/apitest"
	"github.com/phivault/phivault/internal/audit"
	"github.com/phivault/phivault/internal/authn/session"
	"github.com/phivault/phivault/internal/identity"
	"github.com/phivault/phivault/internal/storage/sqldb"
)

var jsonBody = apitest.H{"Content-Type": "application/json"}

var enrolSecretRE = regexp.MustCompile(`^pve_[A-Za-z0-9_-]{43}$`)

// auditEvents opens every audit record of s in order.
func auditEvents(t *testing.T, s *apitest.Server) []audit.Event {
	t.Helper()
	evs, err := s.App.Transparency().Events(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return evs
}

// wantAudited fails unless an event with action, outcome and entity exists.
func wantAudited(t *testing.T, s *apitest.Server, act audit.Action, outcome audit.Outcome, entity string) audit.Event {
	t.Helper()
	evs := auditEvents(t, s)
	for _, ev := range evs {
		if ev.Action == act && ev.Outcome == outcome && (entity == "" || slices.Contains(ev.Entities, entity)) {
			return ev
		}
	}
	t.Fatalf("no %s/%s audit event for %q among %d events", act, outcome, entity, len(evs))
	return audit.Event{}
}

func wantAPIError(t *testing.T, r *apitest.Response, status int, msg string) {
	t.Helper()
	r.Want(t, status)
	if e, _ := r.JSON["error"].(string); !strings.Contains(e, msg) {
		t.Fatalf("error: got %s, want one containing %q", r, msg)
	}
	if id, _ := r.JSON["request_id"].(string); id == "" || id != r.Header.Get("X-Request-Id") {
		t.Fatalf("request_id: got %s, want the X-Request-Id header %q", r, r.Header.Get("X-Request-Id"))
	}
}

func sessions(t *testing.T, s *apitest.Server) *session.Manager {
	t.Helper()
	m, err := session.NewManager(s.App.Store.(*sqldb.Store).Sessions(), session.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestAdminAPIRefusesNonAdmins(t *testing.T) {
	apitest.Run(t, func(t *testing.T, s *apitest.Server) {
		phys, err := s.App.Tokens().Create(t.Context(), "ward-app", []string{"physician"})
		if err != nil {
			t.Fatal(err)
		}
		as := apitest.H{"Authorization": "Bearer " + phys.Reveal(), "Content-Type": "application/json"}
		wantAPIError(t, s.Do(t, "GET", "/admin/api/users", nil, as), http.StatusForbidden, "security-admin")
		wantAPIError(t, s.Do(t, "POST", "/admin/api/users", map[string]any{"username": "mallory", "roles": []string{"security-admin"}}, as),
			http.StatusForbidden, "security-admin")
		wantAPIError(t, s.Do(t, "POST", "/admin/api/users/usr_x/disable", nil, as), http.StatusForbidden, "security-admin")
		ev := wantAudited(t, s, audit.ActionUserAdmin, audit.OutcomeDenied, "User/usr_x")
		if ev.Agent.Role != "physician" || ev.Agent.User == "" {
			t.Errorf("denied event agent %+v, want the token id and its role", ev.Agent)
		}
		wantAPIError(t, s.Do(t, "GET", "/admin/api/users", nil, apitest.H{"Authorization": apitest.NoAuth}), http.StatusUnauthorized, "authentication required")
		wantAPIError(t, s.Do(t, "GET", "/admin/api/users", nil, apitest.H{"Authorization": "Bearer pvt_nope"}), http.StatusUnauthorized, "authentication required")
		// Nothing was created.
		r := s.Do(t, "GET", "/admin/api/users", nil, nil).Want(t, http.StatusOK)
		if strings.Contains(string(r.Body), "mallory") {
			t.Errorf("a refused create created a user: %s", r)
		}
	})
}

func TestAdminAPIUsers(t *testing.T) {
	apitest.Run(t, func(t *testing.T, s *apitest.Server) {
		// A researcher: a role that reaches no PHI takes effect at once
		// (the two-person rule is TestSeparationOfDuties').
		r := s.Do(t, "POST", "/admin/api/users", map[string]any{
			"username": "nurse.jo", "display_name": "Jo Nurse", "roles": []string{"researcher"}, "fhir_user": "Practitioner/pr-1",
		}, jsonBody).Want(t, http.StatusCreated)
		secret, _ := r.JSON["enrolment_secret"].(string)
		if !enrolSecretRE.MatchString(secret) {
			t.Fatalf("enrolment secret %q is not pve_ and 43 base64url characters", secret)
		}
		user, _ := r.JSON["user"].(map[string]any)
		id, _ := user["id"].(string)
		if id == "" || user["password_set"] != false || user["mfa_enrolled"] != false || r.Header.Get("Location") != "/admin/api/users/"+id {
			t.Fatalf("created user: %s", r)
		}
		ev := wantAudited(t, s, audit.ActionUserCreate, audit.OutcomeSuccess, "User/"+id)
		if ev.Agent.Role != "system" || ev.Agent.User == "" || ev.Agent.Address == "" {
			t.Errorf("create event agent %+v, want the token id, its role and the address", ev.Agent)
		}

		t.Run("errors", func(t *testing.T) {
			wantAPIError(t, s.Do(t, "POST", "/admin/api/users", map[string]any{"username": "nurse.jo", "roles": []string{"nurse"}}, jsonBody),
				http.StatusConflict, "username is taken")
			wantAPIError(t, s.Do(t, "POST", "/admin/api/users", map[string]any{"username": "nurse.kim", "roles": []string{"surgeon"}}, jsonBody),
				http.StatusBadRequest, "invalid roles")
			wantAPIError(t, s.Do(t, "POST", "/admin/api/users", map[string]any{"username": "Nurse Kim", "roles": []string{"nurse"}}, jsonBody),
				http.StatusBadRequest, "invalid username")
			wantAPIError(t, s.Do(t, "POST", "/admin/api/users", map[string]any{"username": "nurse.kim", "roles": []string{"nurse"}, "password": "x"}, jsonBody),
				http.StatusBadRequest, "not the expected JSON object")
			wantAPIError(t, s.Do(t, "POST", "/admin/api/users", `{"username":"nurse.kim","roles":["nurse"]}`, nil),
				http.StatusUnsupportedMediaType, "application/json")
			wantAPIError(t, s.Do(t, "GET", "/admin/api/users/usr_nobody", nil, nil), http.StatusNotFound, "no such user")
			wantAPIError(t, s.Do(t, "POST", "/admin/api/users/usr_nobody/disable", nil, nil), http.StatusNotFound, "no such user")
			wantAPIError(t, s.Do(t, "GET", "/admin/api/users?limit=100000", nil, nil), http.StatusBadRequest, "limit")
		})

		t.Run("list and show never show secrets", func(t *testing.T) {
			for _, p := range []string{"/admin/api/users", "/admin/api/users/" + id} {
				r := s.Do(t, "GET", p, nil, nil).Want(t, http.StatusOK)
				if !strings.Contains(string(r.Body), `"nurse.jo"`) {
					t.Errorf("GET %s: %s lacks the user", p, r)
				}
				for _, leak := range []string{"pve_", "argon2", "password_hash", "enrolment_secret"} {
					if strings.Contains(string(r.Body), leak) {
						t.Errorf("GET %s: %s contains %q", p, r, leak)
					}
				}
			}
		})

		m := sessions(t, s)
		live := func(t *testing.T) session.Secret {
			t.Helper()
			sec, _, err := m.Create(t.Context(), id, true, "192.0.2.7")
			if err != nil {
				t.Fatal(err)
			}
			if _, err := m.Validate(t.Context(), sec.Reveal()); err != nil {
				t.Fatalf("fresh session: %v", err)
			}
			return sec
		}
		wantRevoked := func(t *testing.T, sec session.Secret) {
			t.Helper()
			if _, err := m.Validate(t.Context(), sec.Reveal()); !errors.Is(err, session.ErrInvalidSession) {
				t.Errorf("session after the change: %v, want ErrInvalidSession", err)
			}
		}

		// Two roles, so that "set roles" below removes one (at once).
		acc, err := s.App.Accounts()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := acc.SetRolesBreakGlass(t.Context(), audit.Agent{Client: "cli"}, id, []identity.Role{identity.RoleResearcher, identity.RoleAuditor}); err != nil {
			t.Fatal(err)
		}
		for _, tc := range []struct {
			name    string
			path    string
			body    any
			action  audit.Action
			revokes bool
			check   func(u map[string]any) bool
		}{
			{"disable", "/disable", nil, audit.ActionUserDisable, true, func(u map[string]any) bool { return u["disabled"] == true }},
			{"enable", "/enable", nil, audit.ActionUserEnable, false, func(u map[string]any) bool { return u["disabled"] == false }},
			{"set roles", "/roles", map[string]any{"roles": []string{"researcher"}}, audit.ActionUserSetRoles, true,
				func(u map[string]any) bool { rs, _ := u["roles"].([]any); return len(rs) == 1 && rs[0] == "researcher" }},
			{"reset mfa", "/reset-mfa", nil, audit.ActionUserResetMFA, true, func(u map[string]any) bool { return u["mfa_enrolled"] == false }},
		} {
			t.Run(tc.name, func(t *testing.T) {
				sec := live(t)
				r := s.Do(t, "POST", "/admin/api/users/"+id+tc.path, tc.body, jsonBody).Want(t, http.StatusOK)
				if !tc.check(r.JSON) {
					t.Errorf("answer %s", r)
				}
				wantAudited(t, s, tc.action, audit.OutcomeSuccess, "User/"+id)
				if tc.revokes {
					wantRevoked(t, sec)
				}
			})
		}
		t.Run("bad roles change nothing", func(t *testing.T) {
			sec := live(t)
			wantAPIError(t, s.Do(t, "POST", "/admin/api/users/"+id+"/roles", map[string]any{"roles": []string{"patient", "nurse"}}, jsonBody),
				http.StatusBadRequest, "invalid roles")
			if _, err := m.Validate(t.Context(), sec.Reveal()); err != nil {
				t.Errorf("a refused change revoked the session: %v", err)
			}
		})
	})
}

func TestEnrol(t *testing.T) {
	apitest.Run(t, func(t *testing.T, s *apitest.Server) {
		r := s.Do(t, "POST", "/admin/api/users", map[string]any{"username": "dr.who", "roles": []string{"physician"}}, jsonBody).Want(t, http.StatusCreated)
		secret, _ := r.JSON["enrolment_secret"].(string)
		id, _ := r.JSON["user"].(map[string]any)["id"].(string)
		r2 := s.Do(t, "POST", "/admin/api/users", map[string]any{"username": "dr.other", "roles": []string{"physician"}}, jsonBody).Want(t, http.StatusCreated)
		otherSecret, _ := r2.JSON["enrolment_secret"].(string)

		pub := apitest.H{"Authorization": apitest.NoAuth, "Content-Type": "application/json"}
		enrol := func(user, secret, pw string) *apitest.Response {
			return s.Do(t, "POST", "/auth/enrol", map[string]any{"username": user, "enrolment_secret": secret, "password": pw}, pub)
		}
		const good = "correct horse battery staple"
		const generic = "the enrolment secret is not valid"

		// Every failure of the secret says the same thing.
		for _, tc := range []struct{ name, user, secret string }{
			{"wrong secret", "dr.who", "pve_" + strings.Repeat("A", 43)},
			{"malformed secret", "dr.who", "hello"},
			{"another user's secret", "dr.who", otherSecret},
			{"unknown user", "nobody", secret},
		} {
			t.Run(tc.name, func(t *testing.T) {
				r := enrol(tc.user, tc.secret, good)
				wantAPIError(t, r, http.StatusBadRequest, generic)
				if r.JSON["error"] != refusedMsg {
					t.Errorf("message differs: %s", r)
				}
			})
		}
		t.Run("weak password refused with the policy message, secret kept", func(t *testing.T) {
			wantAPIError(t, enrol("dr.who", secret, "short"), http.StatusBadRequest, "at least 12 characters")
			wantAPIError(t, enrol("dr.who", secret, "password1234"), http.StatusBadRequest, "too common")
		})
		t.Run("good secret sets the password", func(t *testing.T) {
			enrol("dr.who", secret, good).Want(t, http.StatusOK)
			u := s.Do(t, "GET", "/admin/api/users/"+id, nil, nil).Want(t, http.StatusOK)
			if u.JSON["password_set"] != true {
				t.Errorf("after enrolment: %s", u)
			}
			wantAudited(t, s, audit.ActionUserSetPassword, audit.OutcomeSuccess, "User/"+id)
		})
		t.Run("used secret refused", func(t *testing.T) {
			wantAPIError(t, enrol("dr.who", secret, good+" again"), http.StatusBadRequest, generic)
		})
		t.Run("disabled account refused", func(t *testing.T) {
			id2, _ := r2.JSON["user"].(map[string]any)["id"].(string)
			s.Do(t, "POST", "/admin/api/users/"+id2+"/disable", nil, jsonBody).Want(t, http.StatusOK)
			wantAPIError(t, enrol("dr.other", otherSecret, good), http.StatusBadRequest, generic)
		})
		wantAudited(t, s, audit.ActionUserSetPassword, audit.OutcomeDenied, "")
	})
}

// refusedMsg is the one answer to every failure of an enrolment secret.
const refusedMsg = "the enrolment secret is not valid: it may be wrong, expired or already used"

func TestEnrolRateLimited(t *testing.T) {
	s := apitest.Start(t, "sqlite")
	pub := apitest.H{"Authorization": apitest.NoAuth, "Content-Type": "application/json"}
	var last *apitest.Response
	for range 30 {
		last = s.Do(t, "POST", "/auth/enrol", map[string]any{"username": "x.y", "enrolment_secret": "pve_x", "password": "p"}, pub)
		if last.Status == http.StatusTooManyRequests {
			break
		}
	}
	wantAPIError(t, last, http.StatusTooManyRequests, "too many attempts")
	if last.Header.Get("Retry-After") == "" {
		t.Error("429 without Retry-After")
	}
}
