package audit_test

import (
	"encoding/base64"
	"encoding/json"
	"testing"
	"time"

	"github.com/phivault/phivault/internal/audit"
	"github.com/phivault/phivault/internal/fhir"
)

// Every kind of event renders as an AuditEvent that the R4 schema and
// the required-element rules accept, with the BALP codes.
func TestAuditEventIsValidR4(t *testing.T) {
	v := fhir.NewValidator()
	at := time.Date(2026, 11, 29, 10, 0, 0, 123456000, time.UTC)
	full := audit.Event{
		Time: at, Outcome: audit.OutcomeSuccess, Purpose: "ETREAT",
		Agent:    audit.Agent{User: "u-1", Role: "physician", Client: "app-1", Session: "s-1", Address: "192.0.2.7"},
		Patients: []string{"Patient/p1"}, Entities: []string{"Observation/o1/_history/2"},
		Query: "Observation?code&date", Policies: []string{"care-team-read"}, Status: 200, RequestID: "req-1",
	}
	for _, a := range []audit.Action{
		audit.ActionRead, audit.ActionVRead, audit.ActionSearch, audit.ActionHistory, audit.ActionCreate,
		audit.ActionUpdate, audit.ActionDelete, audit.ActionTransaction, audit.ActionBatch, audit.ActionEverything,
		audit.ActionErase, audit.ActionLogin, audit.ActionLogout, audit.ActionMFAVerify, audit.ActionUserCreate,
		audit.ActionKeyRotate,
	} {
		for _, o := range []audit.Outcome{audit.OutcomeSuccess, audit.OutcomeDenied, audit.OutcomeError} {
			ev := full
			ev.Action, ev.Outcome = a, o
			ae := ev.AuditEvent("42")
			if err := v.Validate(fhir.Resource(ae)); err != nil {
				b, _ := json.Marshal(ae)
				t.Fatalf("%s/%s: %v\n%s", a, o, err, b)
			}
		}
	}
	// A minimal event (no agent user, nothing touched) is valid too.
	if err := v.Validate(fhir.Resource(audit.Event{Time: at, Action: audit.ActionLogout}.AuditEvent("1"))); err != nil {
		t.Fatal(err)
	}
}

func TestAuditEventCodes(t *testing.T) {
	ev := audit.Event{
		Time: time.Unix(0, 0), Action: audit.ActionRead, Outcome: audit.OutcomeDenied, Purpose: "TREAT",
		Agent:    audit.Agent{User: "u-1", Address: "192.0.2.7"},
		Patients: []string{"Patient/p1"}, Query: "Patient?name", RequestID: "r",
		Policies: []string{"deny-sensitive"},
	}
	b, _ := json.Marshal(ev.AuditEvent("7"))
	var got struct {
		Type    struct{ System, Code string }
		Subtype []struct{ System, Code string }
		Action  string
		Outcome string
		Purpose []struct{ Coding []struct{ Code string } } `json:"purposeOfEvent"`
		Agent   []struct {
			Policy  []string
			Network struct{ Address, Type string }
		}
		Entity []struct {
			What  struct{ Reference string }
			Role  struct{ Code string }
			Query string
		}
	}
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	if got.Type.Code != "rest" || got.Subtype[0].Code != "read" || got.Action != "R" || got.Outcome != "4" {
		t.Errorf("type/subtype/action/outcome = %s/%s/%s/%s, want rest/read/R/4", got.Type.Code, got.Subtype[0].Code, got.Action, got.Outcome)
	}
	if got.Purpose[0].Coding[0].Code != "TREAT" {
		t.Errorf("purpose %v", got.Purpose)
	}
	if got.Agent[0].Policy[0] != "deny-sensitive" || got.Agent[0].Network.Address != "192.0.2.7" || got.Agent[0].Network.Type != "2" {
		t.Errorf("agent %+v", got.Agent[0])
	}
	if got.Entity[0].What.Reference != "Patient/p1" || got.Entity[0].Role.Code != "1" {
		t.Errorf("patient entity %+v", got.Entity[0])
	}
	if q, _ := base64.StdEncoding.DecodeString(got.Entity[1].Query); string(q) != "Patient?name" || got.Entity[1].Role.Code != "24" {
		t.Errorf("query entity %+v", got.Entity[1])
	}
}
