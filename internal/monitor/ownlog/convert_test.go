package ownlog

import (
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/phivault/phivault/internal/audit"
	"github.com/phivault/phivault/internal/monitor"
	"github.com/phivault/phivault/internal/record"
)

func TestConvert(t *testing.T) {
	at := time.Date(2026, 12, 7, 3, 4, 5, 0, time.UTC)
	accounts := func(a string) string {
		switch a {
		case "u-doc":
			return "Practitioner/pr-1"
		case "u-pat":
			return "Patient/p-9"
		}
		return ""
	}
	clin := audit.Agent{User: "u-doc", Role: "physician", Client: "session", Session: "s-1", Address: "10.0.0.7"}
	many := make([]string, BulkPatients)
	for i := range many {
		many[i] = fmt.Sprintf("Patient/b%d", i)
	}
	base := monitor.Event{Time: at, User: "Practitioner/pr-1", Address: "10.0.0.7", Session: "s-1", Ref: "leaf/42"}
	with := func(f func(*monitor.Event)) monitor.Event { e := base; f(&e); return e }
	cases := []struct {
		name string
		ev   audit.Event
		want []monitor.Event
	}{
		{"read", audit.Event{Action: audit.ActionRead, Outcome: audit.OutcomeSuccess, Agent: clin, Purpose: "TREAT", Patients: []string{"Patient/p1"}, Entities: []string{"Patient/p1/_history/1"}},
			[]monitor.Event{with(func(e *monitor.Event) {
				e.Kind, e.Outcome, e.Patient, e.Action, e.Purpose = monitor.KindAccess, monitor.OutcomeSuccess, "Patient/p1", "read", "TREAT"
			})}},
		{"search of two patients", audit.Event{Action: audit.ActionSearch, Outcome: audit.OutcomeSuccess, Agent: clin, Patients: []string{"Patient/p1", "Patient/p2"}},
			[]monitor.Event{
				with(func(e *monitor.Event) {
					e.Kind, e.Outcome, e.Patient, e.Action = monitor.KindAccess, monitor.OutcomeSuccess, "Patient/p1", "search-type"
				}),
				with(func(e *monitor.Event) {
					e.Kind, e.Outcome, e.Patient, e.Action = monitor.KindAccess, monitor.OutcomeSuccess, "Patient/p2", "search-type"
				}),
			}},
		{"bulk search", audit.Event{Action: audit.ActionSearch, Outcome: audit.OutcomeSuccess, Agent: clin, Patients: many}, nil}, // checked below
		{"break-glass read", audit.Event{Action: audit.ActionEverything, Outcome: audit.OutcomeSuccess, Agent: clin, Purpose: "ETREAT", Patients: []string{"Patient/p3"}},
			[]monitor.Event{with(func(e *monitor.Event) {
				e.Kind, e.Outcome, e.Patient, e.Action, e.Purpose, e.BreakGlass = monitor.KindAccess, monitor.OutcomeSuccess, "Patient/p3", "$everything", "ETREAT", true
			})}},
		{"read of a missing patient", audit.Event{Action: audit.ActionRead, Outcome: audit.OutcomeError, Status: 404, Agent: clin, Entities: []string{"Patient/nosuch"}},
			[]monitor.Event{with(func(e *monitor.Event) {
				e.Kind, e.Outcome, e.Patient, e.Action = monitor.KindAccess, monitor.OutcomeNotFound, "Patient/nosuch", "read"
			})}},
		{"read of a missing observation", audit.Event{Action: audit.ActionRead, Outcome: audit.OutcomeError, Status: 404, Agent: clin, Entities: []string{"Observation/o1"}},
			[]monitor.Event{with(func(e *monitor.Event) {
				e.Kind, e.Outcome, e.Action = monitor.KindAccess, monitor.OutcomeNotFound, "read"
			})}},
		{"denied read", audit.Event{Action: audit.ActionRead, Outcome: audit.OutcomeDenied, Status: 403, Agent: clin, Entities: []string{"Patient/p4"}},
			[]monitor.Event{with(func(e *monitor.Event) {
				e.Kind, e.Outcome, e.Patient, e.Action = monitor.KindAccess, monitor.OutcomeDenied, "Patient/p4", "read"
			})}},
		{"empty search discloses nothing", audit.Event{Action: audit.ActionSearch, Outcome: audit.OutcomeSuccess, Agent: clin}, nil},
		{"patient reads own record", audit.Event{Action: audit.ActionRead, Outcome: audit.OutcomeSuccess, Agent: audit.Agent{User: "u-pat", Client: "session"}, Patients: []string{"Patient/p-9"}},
			[]monitor.Event{{Time: at, Kind: monitor.KindAccess, Outcome: monitor.OutcomeSuccess, User: "User/u-pat", Patient: "Patient/p-9", Action: "read", Ref: "leaf/42"}}},
		{"api token", audit.Event{Action: audit.ActionRead, Outcome: audit.OutcomeSuccess, Agent: audit.Agent{User: "tok1", Client: "token"}, Patients: []string{"Patient/p1"}},
			[]monitor.Event{{Time: at, Kind: monitor.KindAccess, Outcome: monitor.OutcomeSuccess, User: "Client/tok1", Patient: "Patient/p1", Action: "read", Ref: "leaf/42"}}},
		{"failed login of an unknown name", audit.Event{Action: audit.ActionLogin, Outcome: audit.OutcomeDenied, Status: 401, Agent: audit.Agent{User: "unknown", Address: "203.0.113.5"}},
			[]monitor.Event{{Time: at, Kind: monitor.KindLogin, Outcome: monitor.OutcomeFailure, Action: "login", Address: "203.0.113.5", Ref: "leaf/42"}}},
		{"password accepted", audit.Event{Action: audit.ActionLoginPassword, Outcome: audit.OutcomeSuccess, Agent: audit.Agent{User: "u-doc", Address: "10.0.0.7"}},
			[]monitor.Event{{Time: at, Kind: monitor.KindLogin, Outcome: monitor.OutcomeSuccess, User: "Practitioner/pr-1", Action: "login-password", Address: "10.0.0.7", Ref: "leaf/42"}}},
		{"lockout", audit.Event{Action: audit.ActionLockout, Outcome: audit.OutcomeDenied, Agent: audit.Agent{User: "u-doc", Address: "10.0.0.7"}},
			[]monitor.Event{{Time: at, Kind: monitor.KindLogin, Outcome: monitor.OutcomeFailure, User: "Practitioner/pr-1", Action: "lockout", Address: "10.0.0.7", Ref: "leaf/42"}}},
		{"sso refused", audit.Event{Action: audit.ActionSSOLogin, Outcome: audit.OutcomeDenied, Agent: audit.Agent{Address: "10.0.0.8"}},
			[]monitor.Event{{Time: at, Kind: monitor.KindLogin, Outcome: monitor.OutcomeFailure, Action: "sso-login", Address: "10.0.0.8", Ref: "leaf/42"}}},
		{"mfa failure", audit.Event{Action: audit.ActionMFAVerify, Outcome: audit.OutcomeDenied, Agent: audit.Agent{User: "u-doc", Session: "s-1", Address: "10.0.0.7"}},
			[]monitor.Event{with(func(e *monitor.Event) {
				e.Kind, e.Outcome, e.Action = monitor.KindMFA, monitor.OutcomeFailure, "mfa-verify"
			})}},
		{"recovery code", audit.Event{Action: audit.ActionRecoveryCodeUsed, Outcome: audit.OutcomeSuccess, Agent: audit.Agent{User: "u-doc", Address: "10.0.0.7"}},
			[]monitor.Event{{Time: at, Kind: monitor.KindMFA, Outcome: monitor.OutcomeSuccess, User: "Practitioner/pr-1", Action: "recovery-code-used", Address: "10.0.0.7", Ref: "leaf/42"}}},
		{"refused bearer token", audit.Event{Action: audit.ActionSearch, Outcome: audit.OutcomeDenied, Status: 401, Policies: []string{RefusedToken}, Agent: audit.Agent{Address: "198.51.100.2"}},
			[]monitor.Event{{Time: at, Kind: monitor.KindToken, Outcome: monitor.OutcomeFailure, Action: "search-type", Address: "198.51.100.2", Ref: "leaf/42"}}},
		{"no credential is no token", audit.Event{Action: audit.ActionSearch, Outcome: audit.OutcomeDenied, Status: 401, Agent: audit.Agent{Address: "198.51.100.2"}},
			[]monitor.Event{{Time: at, Kind: monitor.KindAccess, Outcome: monitor.OutcomeDenied, Action: "search-type", Address: "198.51.100.2", Ref: "leaf/42"}}},
		{"refused admin request", audit.Event{Action: audit.ActionRequest, Outcome: audit.OutcomeDenied, Status: 403, Agent: clin},
			[]monitor.Event{with(func(e *monitor.Event) {
				e.Kind, e.Outcome, e.Action = monitor.KindOther, monitor.OutcomeDenied, "request"
			})}},
		{"page in a session", audit.Event{Action: audit.ActionRequest, Outcome: audit.OutcomeSuccess, Status: 200, Agent: clin},
			[]monitor.Event{with(func(e *monitor.Event) {
				e.Kind, e.Outcome, e.Action = monitor.KindOther, monitor.OutcomeSuccess, "request"
			})}},
		{"the demo's data load is no access", audit.Event{Action: audit.ActionCreate, Outcome: audit.OutcomeSuccess, Agent: audit.Agent{User: "demo", Client: "cli"}, Purpose: "HOPERAT", Policies: []string{OfflinePolicy}, Patients: []string{"Patient/p1"}}, nil},
		{"an import is no access", audit.Event{Action: audit.ActionImport, Outcome: audit.OutcomeSuccess, Agent: audit.Agent{User: "u-doc", Address: "10.0.0.7"}, Patients: []string{"Patient/p1"}}, nil},
		{"an import in a session is only a session use", audit.Event{Action: audit.ActionImport, Outcome: audit.OutcomeSuccess, Agent: clin, Patients: []string{"Patient/p1"}},
			[]monitor.Event{with(func(e *monitor.Event) {
				e.Kind, e.Outcome, e.Action = monitor.KindOther, monitor.OutcomeSuccess, "import"
			})}},
		{"the offline operator's read is an access", audit.Event{Action: audit.ActionRead, Outcome: audit.OutcomeSuccess, Agent: audit.Agent{User: "ops", Client: "cli"}, Purpose: "HOPERAT", Policies: []string{OfflinePolicy}, Patients: []string{"Patient/p1"}},
			[]monitor.Event{{Time: at, Kind: monitor.KindAccess, Outcome: monitor.OutcomeSuccess, User: "User/ops", Patient: "Patient/p1", Action: "read", Purpose: "HOPERAT", Ref: "leaf/42"}}},
		{"a clinician's create is an access", audit.Event{Action: audit.ActionCreate, Outcome: audit.OutcomeSuccess, Agent: clin, Patients: []string{"Patient/p1"}},
			[]monitor.Event{with(func(e *monitor.Event) {
				e.Kind, e.Outcome, e.Patient, e.Action = monitor.KindAccess, monitor.OutcomeSuccess, "Patient/p1", "create"
			})}},
		{"a refused import counts as a refusal", audit.Event{Action: audit.ActionImport, Outcome: audit.OutcomeDenied, Status: 403, Agent: clin},
			[]monitor.Event{with(func(e *monitor.Event) {
				e.Kind, e.Outcome, e.Action = monitor.KindOther, monitor.OutcomeDenied, "import"
			})}},
		{"quiet success without a session", audit.Event{Action: audit.ActionCapabilities, Outcome: audit.OutcomeSuccess, Agent: audit.Agent{Address: "10.0.0.9"}}, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			c.ev.Time = at
			got := Convert(42, c.ev, accounts)
			if c.name == "bulk search" {
				if len(got) != BulkPatients {
					t.Fatalf("%d events, want %d", len(got), BulkPatients)
				}
				for _, e := range got {
					if !e.Bulk || e.Kind != monitor.KindAccess {
						t.Fatalf("event %+v: want a bulk access", e)
					}
				}
				return
			}
			if !reflect.DeepEqual(got, c.want) {
				t.Errorf("Convert:\n got %+v\nwant %+v", got, c.want)
			}
		})
	}
}

// A search below the bulk bound is not bulk; history-system always is.
func TestConvertBulk(t *testing.T) {
	ev := audit.Event{Action: audit.ActionSearch, Outcome: audit.OutcomeSuccess, Agent: audit.Agent{User: "u"}, Patients: make([]string, BulkPatients-1)}
	for i := range ev.Patients {
		ev.Patients[i] = fmt.Sprintf("Patient/x%d", i)
	}
	if got := Convert(1, ev, nil); got[0].Bulk {
		t.Errorf("a search of %d patients is marked bulk", len(ev.Patients))
	}
	ev.Action, ev.Patients = audit.ActionExport, append(ev.Patients, "Patient/x-last")
	if got := Convert(1, ev, nil); len(got) != BulkPatients || !got[0].Bulk || got[0].Kind != monitor.KindAccess {
		t.Errorf("an export of %d patients' events: %d events, bulk %v", len(ev.Patients), len(got), len(got) > 0 && got[0].Bulk)
	}
	ev.Action, ev.Patients = audit.ActionHistorySystem, ev.Patients[:1]
	if got := Convert(1, ev, nil); !got[0].Bulk {
		t.Error("history-system is not marked bulk")
	}
}

// The offline operator's policy is copied from the record service.
func TestOfflinePolicyIsTheRecordServices(t *testing.T) {
	if OfflinePolicy != record.PolicyOffline {
		t.Fatalf("OfflinePolicy %q, record.PolicyOffline %q", OfflinePolicy, record.PolicyOffline)
	}
}
