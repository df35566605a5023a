package httpapi_test

import (
	"errors"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/phivault/phivault/internal/apitest"
	"github.com/phivault/phivault/internal/audit"
	"github.com/phivault/phivault/internal/authn/session"
	"github.com/phivault/phivault/internal/authn/smart"
	"github.com/phivault/phivault/internal/authn/smart/scope"
	"github.com/phivault/phivault/internal/httpapi"
	"github.com/phivault/phivault/internal/identity"
	"github.com/phivault/phivault/internal/identity/account"
	"github.com/phivault/phivault/internal/storage"
	"github.com/phivault/phivault/internal/storage/sqldb"
	"github.com/phivault/phivault/internal/web"
)

// sodEnv is a server with security administrators signed in with a
// second factor, as a console would be.
type sodEnv struct {
	s   *apitest.Server
	acc *account.Service
	m   *session.Manager
}

func newSoD(t *testing.T, s *apitest.Server) *sodEnv {
	t.Helper()
	acc, err := s.App.Accounts()
	if err != nil {
		t.Fatal(err)
	}
	return &sodEnv{s: s, acc: acc, m: sessions(t, s)}
}

var cliAgent = audit.Agent{Client: "cli"}

// account creates an account outside the two-person rule (the offline
// CLI's break-glass path, as an installation starts).
func (e *sodEnv) account(t *testing.T, name, fhirUser string, roles ...identity.Role) identity.User {
	t.Helper()
	u, _, err := e.acc.AddBreakGlass(t.Context(), cliAgent, identity.User{Username: name, DisplayName: name, Roles: roles, FHIRUser: fhirUser})
	if err != nil {
		t.Fatalf("adding %s: %v", name, err)
	}
	return u
}

// as returns the headers of a session of u with a verified second factor.
func (e *sodEnv) as(t *testing.T, u identity.User) apitest.H {
	t.Helper()
	sec, _, err := e.m.Create(t.Context(), u.ID, true, "192.0.2.10")
	if err != nil {
		t.Fatal(err)
	}
	return apitest.H{"Authorization": apitest.NoAuth, "Cookie": web.SessionCookie + "=" + sec.Reveal(),
		httpapi.CSRFHeader: session.CSRFToken(sec.Reveal()), "Content-Type": "application/json"}
}

func (e *sodEnv) roles(t *testing.T, id string) []identity.Role {
	t.Helper()
	u, err := e.acc.Directory().ByID(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	return u.Roles
}

func wantRoles(t *testing.T, got []identity.Role, want ...identity.Role) {
	t.Helper()
	if identity.FormatRoles(got) != identity.FormatRoles(want) {
		t.Fatalf("roles %v, want %v", got, want)
	}
}

func alertKinds(t *testing.T, s *apitest.Server, userID string) []string {
	t.Helper()
	r := s.Do(t, "GET", "/admin/api/alerts", nil, nil).Want(t, http.StatusOK)
	var kinds []string
	as, _ := r.JSON["alerts"].([]any)
	for _, a := range as {
		m, _ := a.(map[string]any)
		if m["user"] == userID {
			kinds = append(kinds, m["kind"].(string))
		}
	}
	return kinds
}

// TestSeparationOfDuties: issue 11 item 7. A security admin gave
// themselves clinical access by adding a role to their own account, or
// by binding a new account to a clinician's Practitioner. Now nobody
// changes their own account, a FHIR user has one enabled account, and
// a grant that reaches PHI needs a second administrator.
func TestSeparationOfDuties(t *testing.T) {
	apitest.Run(t, func(t *testing.T, s *apitest.Server) {
		e := newSoD(t, s)
		alice := e.account(t, "admin.alice", "", identity.RoleSecurityAdmin)
		bob := e.account(t, "admin.bob", "", identity.RoleSecurityAdmin)
		asAlice, asBob := e.as(t, alice), e.as(t, bob)

		t.Run("no change of one's own account", func(t *testing.T) {
			for _, tc := range []struct{ path, body string }{
				{"/roles", `{"roles":["security-admin","physician"]}`},
				{"/roles", `{"roles":["researcher"]}`},
				{"/disable", ""},
				{"/reset-mfa", ""},
			} {
				var body any
				if tc.body != "" {
					body = tc.body
				}
				wantAPIError(t, s.Do(t, "POST", "/admin/api/users/"+alice.ID+tc.path, body, asAlice), http.StatusForbidden, "separation of duties")
			}
			wantRoles(t, e.roles(t, alice.ID), identity.RoleSecurityAdmin)
			ev := wantAudited(t, s, audit.ActionUserSetRoles, audit.OutcomeDenied, "User/"+alice.ID)
			if ev.Agent.User != alice.ID || !slices.Contains(ev.Policies, "separation-of-duties") {
				t.Errorf("refusal audited as %+v", ev)
			}
		})

		t.Run("a grant that reaches PHI waits for a second administrator", func(t *testing.T) {
			clin := e.account(t, "dr.jones", "Practitioner/pr-jones", identity.RoleResearcher)
			old, _, err := e.m.Create(t.Context(), clin.ID, true, "192.0.2.20")
			if err != nil {
				t.Fatal(err)
			}
			r := s.Do(t, "POST", "/admin/api/users/"+clin.ID+"/roles", `{"roles":["researcher","physician"]}`, asAlice).Want(t, http.StatusAccepted)
			pend, _ := r.JSON["pending_request"].(map[string]any)
			reqID, _ := pend["id"].(string)
			if reqID == "" || pend["requested_by"] != alice.ID {
				t.Fatalf("no pending request in %s", r)
			}
			wantRoles(t, e.roles(t, clin.ID), identity.RoleResearcher) // not in force yet
			if kinds := alertKinds(t, s, clin.ID); !slices.Contains(kinds, "role-grant-requested") {
				t.Errorf("alerts about the account %v, want role-grant-requested", kinds)
			}
			list := s.Do(t, "GET", "/admin/api/requests", nil, asBob).Want(t, http.StatusOK)
			if rs, _ := list.JSON["requests"].([]any); len(rs) != 1 {
				t.Fatalf("pending requests: %s", list)
			}
			// Not by the requester, not by a service credential.
			wantAPIError(t, s.Do(t, "POST", "/admin/api/requests/"+reqID+"/approve", nil, asAlice), http.StatusForbidden, "separation of duties")
			wantAPIError(t, s.Do(t, "POST", "/admin/api/requests/"+reqID+"/approve", nil, jsonBody), http.StatusForbidden, "second factor")
			wantAudited(t, s, audit.ActionUserGrantApprove, audit.OutcomeDenied, "Request/"+reqID)
			wantRoles(t, e.roles(t, clin.ID), identity.RoleResearcher)

			s.Do(t, "POST", "/admin/api/requests/"+reqID+"/approve", nil, asBob).Want(t, http.StatusOK)
			wantRoles(t, e.roles(t, clin.ID), identity.RoleResearcher, identity.RolePhysician)
			if _, err := e.m.Validate(t.Context(), old.Reveal()); !errors.Is(err, session.ErrInvalidSession) {
				t.Errorf("the account's session outlived the grant: %v", err)
			}
			ev := wantAudited(t, s, audit.ActionUserGrantApprove, audit.OutcomeSuccess, "Request/"+reqID)
			if ev.Agent.User != bob.ID || !slices.Contains(ev.Policies, "requested-by="+alice.ID) {
				t.Errorf("approval audited as %+v", ev)
			}
			wantAudited(t, s, audit.ActionUserGrantRequest, audit.OutcomeSuccess, "Request/"+reqID)
			if kinds := alertKinds(t, s, clin.ID); !slices.Contains(kinds, "role-grant-approved") {
				t.Errorf("alerts about the account %v, want role-grant-approved", kinds)
			}
			// Decided: gone.
			wantAPIError(t, s.Do(t, "POST", "/admin/api/requests/"+reqID+"/approve", nil, asBob), http.StatusNotFound, "no such")
		})

		t.Run("an administrator's own grant needs someone else", func(t *testing.T) {
			r := s.Do(t, "POST", "/admin/api/users/"+alice.ID+"/roles", `{"roles":["security-admin","nurse"]}`, asBob).Want(t, http.StatusAccepted)
			reqID := r.JSON["pending_request"].(map[string]any)["id"].(string)
			wantAPIError(t, s.Do(t, "POST", "/admin/api/requests/"+reqID+"/approve", nil, asAlice), http.StatusForbidden, "separation of duties")
			wantAPIError(t, s.Do(t, "POST", "/admin/api/requests/"+reqID+"/approve", nil, asBob), http.StatusForbidden, "separation of duties")
			wantRoles(t, e.roles(t, alice.ID), identity.RoleSecurityAdmin)
			// The requester withdraws it.
			s.Do(t, "POST", "/admin/api/requests/"+reqID+"/reject", nil, asBob).Want(t, http.StatusNoContent)
			wantAudited(t, s, audit.ActionUserGrantReject, audit.OutcomeSuccess, "Request/"+reqID)
			wantRoles(t, e.roles(t, alice.ID), identity.RoleSecurityAdmin)
		})

		t.Run("two administrators approving at once", func(t *testing.T) {
			carol := e.account(t, "admin.carol", "", identity.RoleSecurityAdmin)
			asCarol := e.as(t, carol)
			x := e.account(t, "dr.race", "", identity.RoleResearcher)
			r := s.Do(t, "POST", "/admin/api/users/"+x.ID+"/roles", `{"roles":["researcher","billing"]}`, asAlice).Want(t, http.StatusAccepted)
			reqID := r.JSON["pending_request"].(map[string]any)["id"].(string)
			codes := make([]int, 2)
			var wg sync.WaitGroup
			for i, h := range []apitest.H{asBob, asCarol} {
				wg.Go(func() {
					rr, err := s.Send(t.Context(), "POST", "/admin/api/requests/"+reqID+"/approve", nil, h)
					if err == nil {
						codes[i] = rr.Status
					}
				})
			}
			wg.Wait()
			slices.Sort(codes)
			if codes[0] != http.StatusOK || codes[1] != http.StatusNotFound {
				t.Fatalf("concurrent approvals answered %v, want one 200 and one 404", codes)
			}
			wantRoles(t, e.roles(t, x.ID), identity.RoleResearcher, identity.RoleBilling)
		})

		t.Run("a new account's PHI roles wait too", func(t *testing.T) {
			r := s.Do(t, "POST", "/admin/api/users", `{"username":"nurse.new","display_name":"New Nurse","roles":["nurse"]}`, asAlice).Want(t, http.StatusCreated)
			user := r.JSON["user"].(map[string]any)
			if rs, _ := user["roles"].([]any); len(rs) != 0 || user["pending_request"] == nil {
				t.Fatalf("a new nurse account: %s, want no role in force and a pending request", r)
			}
			// A second administrator account made by one admin alone
			// would approve that admin's requests: it waits too.
			r = s.Do(t, "POST", "/admin/api/users", `{"username":"admin.sock","display_name":"Sock","roles":["security-admin"]}`, asAlice).Want(t, http.StatusCreated)
			if rs, _ := r.JSON["user"].(map[string]any)["roles"].([]any); len(rs) != 0 {
				t.Fatalf("a new security admin took effect without approval: %s", r)
			}
		})

		t.Run("a request is approved for the account as it was", func(t *testing.T) {
			x := e.account(t, "dr.stale", "", identity.RoleResearcher)
			r := s.Do(t, "POST", "/admin/api/users/"+x.ID+"/roles", `{"roles":["researcher","nurse"]}`, asAlice).Want(t, http.StatusAccepted)
			reqID := r.JSON["pending_request"].(map[string]any)["id"].(string)
			wantAPIError(t, s.Do(t, "POST", "/admin/api/users/"+x.ID+"/roles", `{"roles":["researcher","billing"]}`, asBob), http.StatusConflict, "already waiting")
			if _, err := e.acc.SetRolesBreakGlass(t.Context(), cliAgent, x.ID, []identity.Role{identity.RoleResearcher, identity.RoleAuditor}); err != nil {
				t.Fatal(err)
			}
			wantAPIError(t, s.Do(t, "POST", "/admin/api/requests/"+reqID+"/approve", nil, asBob), http.StatusConflict, "changed since")
			wantRoles(t, e.roles(t, x.ID), identity.RoleResearcher, identity.RoleAuditor)
			if kinds := alertKinds(t, s, x.ID); !slices.Contains(kinds, "role-grant-break-glass") {
				t.Errorf("a grant outside the rule raised %v, want role-grant-break-glass", kinds)
			}
		})

		t.Run("requests expire", func(t *testing.T) {
			x := e.account(t, "dr.late", "", identity.RoleResearcher)
			r := s.Do(t, "POST", "/admin/api/users/"+x.ID+"/roles", `{"roles":["researcher","nurse"]}`, asAlice).Want(t, http.StatusAccepted)
			reqID := r.JSON["pending_request"].(map[string]any)["id"].(string)
			later := e.acc.WithClock(func() time.Time { return time.Now().Add(identity.RequestTTL + time.Minute) })
			bobAgent := audit.Agent{User: bob.ID, Session: "ses_test"}
			if _, err := later.Approve(t.Context(), bobAgent, reqID); !errors.Is(err, identity.ErrRequestStale) {
				t.Fatalf("approving an expired request: %v, want ErrRequestStale", err)
			}
			if _, ok, err := later.PendingRequest(t.Context(), x.ID); ok || err != nil {
				t.Errorf("an expired request is still pending (%v)", err)
			}
			wantRoles(t, e.roles(t, x.ID), identity.RoleResearcher)
		})

		t.Run("a backend client registered by an admin waits for another", func(t *testing.T) {
			ca := s.App.ClientAdmin()
			sc, err := scope.ParseSet("system/Patient.rs")
			if err != nil {
				t.Fatal(err)
			}
			id, err := ca.RegisterBackend(t.Context(), audit.Agent{User: alice.ID, Session: "ses_a", Client: "webui"},
				smart.BackendRegistration{Name: "nightly export", JWKSURL: "https://keys.example/jwks.json", Scopes: sc})
			if err != nil {
				t.Fatal(err)
			}
			r := s.Do(t, "GET", "/admin/api/alerts", nil, nil).Want(t, http.StatusOK)
			found := false
			for _, a := range r.JSON["alerts"].([]any) {
				m := a.(map[string]any)
				found = found || m["kind"] == "client-grant-requested" && m["user"] == alice.ID && m["ref"] == "Client/"+id
			}
			if !found {
				t.Errorf("no alert for the backend client: %s", r)
			}
			if c, err := ca.Client(t.Context(), id); err != nil || c.Approval != smart.ApprovalPending {
				t.Errorf("the client is %+v (%v), want pending", c, err)
			}
		})

		t.Run("a FHIR user has at most one enabled account", func(t *testing.T) {
			real := e.account(t, "dr.real", "Practitioner/pr-real", identity.RoleResearcher)
			wantAPIError(t, s.Do(t, "POST", "/admin/api/users", `{"username":"dr.copy","roles":["researcher"],"fhir_user":"Practitioner/pr-real"}`, asAlice),
				http.StatusConflict, "already bound")
			if _, err := e.acc.Directory().ByUsername(t.Context(), "dr.copy"); !errors.Is(err, identity.ErrNotFound) {
				t.Fatalf("the refused account exists: %v", err)
			}
			// Any change of an account's FHIR user meets the same rule.
			other := e.account(t, "dr.other", "Practitioner/pr-other", identity.RoleResearcher)
			_, err := account.Apply(t.Context(), sqldb.NewUnit[account.Tx](s.App.Store.(*sqldb.Store)), other.ID, account.Change{Op: "move",
				Change: func(u *identity.User) { u.FHIRUser = "Practitioner/pr-real" },
				Audit: func(identity.User) (storage.AuditRecord, error) {
					return storage.AuditRecord{Time: time.Now(), Body: []byte("x")}, nil
				}})
			if !errors.Is(err, identity.ErrFHIRUserBound) {
				t.Fatalf("moving an account onto a bound FHIR user: %v, want ErrFHIRUserBound", err)
			}
			s.Do(t, "POST", "/admin/api/users/"+real.ID+"/disable", nil, asAlice).Want(t, http.StatusOK)
			s.Do(t, "POST", "/admin/api/users", `{"username":"dr.successor","roles":["researcher"],"fhir_user":"Practitioner/pr-real"}`, asAlice).Want(t, http.StatusCreated)
			wantAPIError(t, s.Do(t, "POST", "/admin/api/users/"+real.ID+"/enable", nil, asBob), http.StatusConflict, "already bound")
		})
	})
}
