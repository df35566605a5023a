package httpapi_test

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/phivault/phivault/internal/apitest"
	"github.com/phivault/phivault/internal/audit"
	"github.com/phivault/phivault/internal/config"
	"github.com/phivault/phivault/internal/fhir"
	"github.com/phivault/phivault/internal/identity"
)

// eventsOf returns the audit events recorded for the request that was
// answered r (by its X-Request-Id).
func eventsOf(t *testing.T, evs []audit.Event, r *apitest.Response) []audit.Event {
	t.Helper()
	id := r.Header.Get("X-Request-Id")
	if id == "" {
		t.Fatalf("no X-Request-Id in %s", r)
	}
	var out []audit.Event
	for _, ev := range evs {
		if ev.RequestID == id {
			out = append(out, ev)
		}
	}
	return out
}

// planted is a value that must never reach the audit trail: a search
// value, a path segment that is no id, a body field.
const planted = "Quorvalenskiwicz"

// TestAttemptsAudited: every request to /fhir, /auth and /admin leaves
// an event with the outcome of its answer, including those no handler
// audited before (issue 11 item 13): reads, vreads, histories,
// $everything and deletes of ids that do not exist, a PUT answered 412,
// $break-glass on an unknown patient, unauthenticated and malformed
// requests, unsupported media types, oversized bodies, unknown routes,
// methods not allowed; and the type- and system-level history subtypes.
func TestAttemptsAudited(t *testing.T) {
	for _, d := range apitest.Drivers {
		t.Run(d, func(t *testing.T) {
			s := apitest.StartWith(t, d, func(c *config.Config) { c.Limits.MaxBodyBytes = 64 << 10 })
			pid := s.Create(t, patient(uniq(), nil))
			missing := "missing-" + uniq()
			noAuth := apitest.H{"Authorization": apitest.NoAuth}
			big := `{"resourceType":"Patient","name":[{"family":"` + strings.Repeat("x", 70<<10) + `"}]}`
			glass := map[string]any{"resourceType": "Parameters", "parameter": []any{
				map[string]any{"name": "reason", "valueCode": "emergency"}, map[string]any{"name": "text", "valueString": "unconscious"}}}
			cases := []struct {
				name         string
				method, path string
				body         any
				headers      apitest.H
				status       int // 0: any error status
				action       audit.Action
				outcome      audit.Outcome // "": from the status
				entity       string
			}{
				{"read of an unknown id", "GET", "/fhir/Patient/" + missing, nil, nil, 404, audit.ActionRead, audit.OutcomeError, "Patient/" + missing},
				{"vread of an unknown id", "GET", "/fhir/Patient/" + missing + "/_history/1", nil, nil, 404, audit.ActionVRead, audit.OutcomeError, "Patient/" + missing + "/_history/1"},
				{"vread of an unknown version", "GET", "/fhir/Patient/" + pid + "/_history/9", nil, nil, 404, audit.ActionVRead, audit.OutcomeError, "Patient/" + pid + "/_history/9"},
				{"history of an unknown id", "GET", "/fhir/Patient/" + missing + "/_history", nil, nil, 404, audit.ActionHistory, audit.OutcomeError, "Patient/" + missing},
				{"$everything of an unknown patient", "GET", "/fhir/Patient/" + missing + "/$everything", nil, nil, 404, audit.ActionEverything, audit.OutcomeError, "Patient/" + missing},
				{"delete of an unknown id", "DELETE", "/fhir/Patient/" + missing, nil, nil, 404, audit.ActionDelete, audit.OutcomeError, "Patient/" + missing},
				{"PUT answered 412", "PUT", "/fhir/Patient/" + pid, patient(uniq(), map[string]any{"id": pid}), apitest.H{"If-Match": `W/"9"`}, 412, audit.ActionUpdate, audit.OutcomeError, "Patient/" + pid},
				{"PUT with If-Match of an unknown id", "PUT", "/fhir/Patient/" + missing, patient(uniq(), map[string]any{"id": missing}), apitest.H{"If-Match": `W/"1"`}, 0, audit.ActionUpdate, "", "Patient/" + missing},
				{"$break-glass on an unknown patient", "POST", "/fhir/Patient/" + missing + "/$break-glass", glass, nil, 0, audit.ActionBreakGlass, "", "Patient/" + missing},
				{"no credential", "GET", "/fhir/Patient?name=" + planted, nil, noAuth, 401, audit.ActionSearch, audit.OutcomeDenied, ""},
				{"a wrong token", "GET", "/fhir/Patient/" + pid, nil, apitest.H{"Authorization": "Bearer pvt_" + planted}, 401, audit.ActionRead, audit.OutcomeDenied, "Patient/" + pid},
				{"malformed body", "POST", "/fhir/Patient", `{"resourceType":"Patient","name":[{"family":"` + planted + `"`, nil, 400, audit.ActionCreate, audit.OutcomeError, ""},
				{"unsupported media type", "POST", "/fhir/Patient", "family=" + planted, apitest.H{"Content-Type": "text/plain"}, 415, audit.ActionCreate, audit.OutcomeError, ""},
				{"body too large", "POST", "/fhir/Patient", big, nil, 413, audit.ActionCreate, audit.OutcomeError, ""},
				{"unknown type", "GET", "/fhir/" + planted, nil, nil, 404, audit.ActionRequest, audit.OutcomeError, ""},
				{"unknown route", "GET", "/fhir/Patient/" + pid + "/" + planted + "/x", nil, nil, 404, audit.ActionRequest, audit.OutcomeError, ""},
				{"method not allowed", "DELETE", "/fhir/AuditEvent/1", nil, nil, 405, audit.ActionDelete, audit.OutcomeError, "AuditEvent/1"},
				// Paths are case-sensitive: /FHIR is no FHIR route, but a 404
				// OperationOutcome that is audited, never the web UI's page.
				{"upper-case FHIR base", "GET", "/FHIR/Patient/" + pid, nil, nil, 404, audit.ActionRequest, audit.OutcomeError, ""},
				{"mixed-case FHIR base without a credential", "GET", "/Fhir/metadata", nil, noAuth, 404, audit.ActionRequest, audit.OutcomeError, ""},
				// The other audited areas in another case: the UI's 404, audited.
				{"upper-case console", "GET", "/ADMIN/api/users", nil, noAuth, 404, audit.ActionRequest, audit.OutcomeError, ""},
				{"upper-case sign-in", "POST", "/AUTH/login", nil, noAuth, 404, audit.ActionRequest, audit.OutcomeError, ""},
				{"mixed-case authorization server", "GET", "/OAuth2/authorize", nil, noAuth, 404, audit.ActionRequest, audit.OutcomeError, ""},
				// Every path but the public ones is audited (fail closed): the
				// bare areas, odd spellings, the UI's pages in another case,
				// the log's entry bundles in another case, a scanner's guess.
				{"bare sign-in area", "GET", "/auth", nil, noAuth, 404, audit.ActionRequest, audit.OutcomeError, ""},
				{"bare authorization server", "GET", "/oauth2", nil, noAuth, 404, audit.ActionRequest, audit.OutcomeError, ""},
				{"FHIR base with a parameter", "GET", "/fhir;x/Patient", nil, nil, 404, audit.ActionRequest, audit.OutcomeError, ""},
				{"FHIR base with a backslash", "GET", `/fhir\Patient`, nil, nil, 404, audit.ActionRequest, audit.OutcomeError, ""},
				{"UI page in another case", "GET", "/PATIENTS", nil, noAuth, 404, audit.ActionRequest, audit.OutcomeError, ""},
				{"entry bundles in another case", "GET", "/LOG/tile/entries/000", nil, noAuth, 404, audit.ActionRequest, audit.OutcomeError, ""},
				{"a scanner's guess", "GET", "/wp-login.php", nil, noAuth, 404, audit.ActionRequest, audit.OutcomeError, ""},
				{"POST to a public page", "POST", "/trust", nil, noAuth, 0, audit.ActionRequest, audit.OutcomeError, ""},
				{"capabilities", "GET", "/fhir/metadata", nil, noAuth, 200, audit.ActionCapabilities, audit.OutcomeSuccess, ""},
				{"type history", "GET", "/fhir/Patient/_history", nil, nil, 200, audit.ActionHistoryType, audit.OutcomeSuccess, "Patient/" + pid + "/_history/1"},
				{"system history", "GET", "/fhir/_history", nil, nil, 200, audit.ActionHistorySystem, audit.OutcomeSuccess, "Patient/" + pid + "/_history/1"},
				{"malformed sign-in", "POST", "/auth/login", `{"username":"` + planted, apitest.H{"Content-Type": "application/json", "Authorization": apitest.NoAuth}, 400, audit.ActionRequest, audit.OutcomeError, ""},
				{"own sessions without a session", "GET", "/auth/sessions", nil, noAuth, 401, audit.ActionRequest, audit.OutcomeDenied, ""},
				{"administration without a credential", "GET", "/admin/api/users", nil, noAuth, 401, audit.ActionRequest, audit.OutcomeDenied, ""},
				{"administration, unknown route", "GET", "/admin/api/" + planted, nil, nil, 404, audit.ActionRequest, audit.OutcomeError, ""},
				{"administration, malformed body", "POST", "/admin/api/users", `{"username":`, apitest.H{"Content-Type": "application/json"}, 400, audit.ActionRequest, audit.OutcomeError, ""},
			}
			for _, tt := range cases {
				t.Run(tt.name, func(t *testing.T) {
					r := s.Do(t, tt.method, tt.path, tt.body, tt.headers)
					if tt.status != 0 {
						r.Want(t, tt.status)
						if tt.status >= 400 && strings.HasPrefix(strings.ToLower(tt.path), "/fhir") {
							r.WantOutcome(t, tt.status)
						}
					} else if r.Status < 400 {
						t.Fatalf("status: got %s, want an error", r)
					}
					evs := eventsOf(t, auditEvents(t, s), r)
					want := tt.outcome
					if want == "" {
						want = audit.OutcomeError
						if r.Status == 401 || r.Status == 403 {
							want = audit.OutcomeDenied
						}
					}
					i := slices.IndexFunc(evs, func(ev audit.Event) bool {
						return ev.Action == tt.action && ev.Outcome == want && (ev.Status == 0 || ev.Status == r.Status) &&
							(tt.entity == "" || slices.Contains(ev.Entities, tt.entity))
					})
					if i < 0 {
						t.Fatalf("no %s/%s event (entity %q) for %s %s answered %d; the request's events: %+v", tt.action, want, tt.entity, tt.method, tt.path, r.Status, evs)
					}
					b, _ := json.Marshal(evs)
					if strings.Contains(string(b), planted) {
						t.Fatalf("the event carries a value of the request: %s", b)
					}
				})
			}
		})
	}
}

// TestAttemptAuditEventView: the FHIR AuditEvent view and the audit
// index serve the new subtypes (history-type, history-system) and the
// generic events as valid R4 AuditEvents, so auditors find them.
func TestAttemptAuditEventView(t *testing.T) {
	apitest.Run(t, func(t *testing.T, s *apitest.Server) {
		v := fhir.NewValidator()
		s.Create(t, patient(uniq(), nil))
		s.Do(t, "GET", "/fhir/Patient/_history", nil, nil).Want(t, http.StatusOK)
		s.Do(t, "GET", "/fhir/_history", nil, nil).Want(t, http.StatusOK)
		s.Do(t, "GET", "/fhir/metadata", nil, apitest.H{"Authorization": apitest.NoAuth}).Want(t, http.StatusOK)
		s.Do(t, "GET", "/admin/api/users", nil, apitest.H{"Authorization": apitest.NoAuth}).Want(t, http.StatusUnauthorized)
		aud := auditorHeaders(t, s)
		for _, subtype := range []string{"history-type", "history-system", "capabilities", "request"} {
			r := s.Do(t, "GET", "/fhir/AuditEvent?subtype="+subtype, nil, aud).Want(t, http.StatusOK)
			got := r.Resources()
			if len(got) == 0 {
				t.Fatalf("no AuditEvent with subtype %s", subtype)
			}
			for _, ae := range got {
				if err := v.Validate(fhir.Resource(ae)); err != nil {
					t.Fatalf("invalid AuditEvent: %v", err)
				}
				b, _ := json.Marshal(ae["subtype"])
				if !strings.Contains(string(b), `"code":"`+subtype+`"`) {
					t.Fatalf("subtype %s: got %s", subtype, b)
				}
			}
		}
		// The FHIR code of the instance level finds phivault's "history".
		s.Do(t, "GET", "/fhir/AuditEvent?subtype=history-instance", nil, aud).Want(t, http.StatusOK)
	})
}

// TestCSRFRefusalAudited: a state-changing request from a valid session
// without its CSRF token is refused (403) on /fhir, /admin/api and
// /auth, and each refusal is an event that names the session's account
// and the "csrf" check.
func TestCSRFRefusalAudited(t *testing.T) {
	for _, d := range apitest.Drivers {
		t.Run(d, func(t *testing.T) {
			e := startAuthOn(t, nil, "", d)
			u := e.addUser(t, "csrf-"+uniq(), pw, identity.RolePhysician)
			_, _, c := e.enrol(t, u.Username, pw)
			noToken := creds{cookie: c.cookie}
			for _, tc := range []struct{ method, path string }{
				{"POST", "/fhir/Patient"},
				{"POST", "/admin/api/users"},
				{"DELETE", "/auth/sessions/ses_" + uniq()},
				{"POST", "/auth/logout"},
			} {
				r := e.do(t, tc.method, tc.path, map[string]any{"resourceType": "Patient"}, noToken)
				if r.status != http.StatusForbidden {
					t.Fatalf("%s %s without the CSRF token: %d %s, want 403", tc.method, tc.path, r.status, r.body)
				}
				id := r.header.Get("X-Request-Id")
				var got *audit.Event
				for _, ev := range e.events(t) {
					if ev.RequestID == id {
						got = &ev
					}
				}
				if got == nil || got.Outcome != audit.OutcomeDenied || got.Agent.User != u.ID || !slices.Contains(got.Policies, "csrf") {
					t.Fatalf("%s %s: the refusal's event is %+v, want a denial naming %s and the csrf check", tc.method, tc.path, got, u.ID)
				}
			}
		})
	}
}
