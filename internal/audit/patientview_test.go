package audit_test

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/phivault/phivault/internal/audit"
)

// TestPatientView: a search that returned two patients' resources is
// one event; each patient's view of it holds only their own patient
// reference and resources, the agent's account and role, and no network
// address, session, other patient or other patient's resource (issue
// 11 item 8).
func TestPatientView(t *testing.T) {
	ev := audit.Event{Time: time.Unix(1_800_000_000, 0).UTC(), Action: audit.ActionSearch, Outcome: audit.OutcomeSuccess,
		Agent:   audit.Agent{User: "usr_doc", Role: "physician", Client: "webui", Session: "ses_secret", Address: "10.1.2.3"},
		Purpose: "TREAT", Query: "Observation?code", Policies: []string{"clinician-treatment-read", "part2-needs-consent"}, Status: 200, RequestID: "req1"}
	ev.Touch("Observation/a1/_history/1", "Patient/alice")
	ev.Touch("Observation/b1/_history/3", "Patient/bob")
	ev.Touch("Practitioner/pr/_history/1") // outside every compartment
	ev.Touch("Coverage/ab/_history/1", "Patient/alice", "Patient/bob")
	ev.Touch("Observation/a2/_history/1", "Patient/alice")
	if !slices.Equal(ev.Patients, []string{"Patient/alice", "Patient/bob"}) {
		t.Fatalf("patients %v", ev.Patients)
	}
	for _, tc := range []struct {
		patient string
		want    []string
		others  []string
	}{
		{"Patient/alice", []string{"Observation/a1/_history/1", "Coverage/ab/_history/1", "Observation/a2/_history/1"}, []string{"bob", "b1", "Practitioner"}},
		{"Patient/bob", []string{"Observation/b1/_history/3", "Coverage/ab/_history/1"}, []string{"alice", "a1", "a2", "Practitioner"}},
	} {
		v, ok := ev.PatientView(tc.patient)
		if !ok {
			t.Fatalf("%s: the event touched them", tc.patient)
		}
		if !slices.Equal(v.Entities, tc.want) || !slices.Equal(v.Patients, []string{tc.patient}) {
			t.Errorf("%s sees %v %v, want %v", tc.patient, v.Patients, v.Entities, tc.want)
		}
		b, err := v.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		ae, _ := json.Marshal(v.AuditEvent("7"))
		for _, leak := range append(tc.others, "10.1.2.3", "ses_secret", "part2-needs-consent") {
			if strings.Contains(string(b), leak) || strings.Contains(string(ae), leak) {
				t.Errorf("%s's view holds %q: %s", tc.patient, leak, b)
			}
		}
		if v.Agent.User != "usr_doc" || v.Agent.Role != "physician" || v.Action != ev.Action || !v.Time.Equal(ev.Time) || v.Purpose != "TREAT" {
			t.Errorf("%s's view lost what happened: %+v", tc.patient, v)
		}
	}
	if _, ok := ev.PatientView("Patient/carol"); ok {
		t.Error("a patient the event did not touch sees it")
	}
	if _, ok := ev.PatientView(""); ok {
		t.Error("an empty patient sees the event")
	}

	// An event built without Touch (or written before it existed): whose
	// the entities are is unknown, so a patient sees them only when they
	// are its only patient.
	legacy := audit.Event{Action: audit.ActionSearch, Patients: []string{"Patient/alice", "Patient/bob"},
		Entities: []string{"Observation/a1", "Observation/b1"}, Policies: []string{"p"}}
	if v, _ := legacy.PatientView("Patient/alice"); len(v.Entities) != 0 || v.Policies != nil {
		t.Errorf("legacy two-patient event shows %v %v", v.Entities, v.Policies)
	}
	one := audit.Event{Action: audit.ActionRead, Patients: []string{"Patient/alice"}, Entities: []string{"Observation/a1/_history/2"}, Policies: []string{"p"}}
	if v, _ := one.PatientView("Patient/alice"); !slices.Equal(v.Entities, one.Entities) || !slices.Equal(v.Policies, one.Policies) {
		t.Errorf("a read of the patient's own record shows %v %v", v.Entities, v.Policies)
	}
	// Touch after entities added otherwise keeps the event unattributed.
	mixed := audit.Event{Entities: []string{"X/1"}, Patients: []string{"Patient/alice"}}
	mixed.Touch("Observation/b1", "Patient/bob")
	if v, _ := mixed.PatientView("Patient/bob"); len(v.Entities) != 0 {
		t.Errorf("an unattributed event shows %v", v.Entities)
	}
}

// TestEventCompartmentsOmitted: events without Compartments encode as
// before (the canonical bytes of existing leaves are unchanged).
func TestEventCompartmentsOmitted(t *testing.T) {
	b, err := (audit.Event{Action: audit.ActionRead, Entities: []string{"Patient/1"}}).Marshal()
	if err != nil || strings.Contains(string(b), "compartments") {
		t.Fatalf("%s %v", b, err)
	}
}

// TestPatientViewMonitoring: a monitoring event that names a patient
// (an alert raised on their record, its triage) is in no patient's
// view, and every monitoring action is recognised as one (pen test:
// a patient read an open alert's event through GET /fhir/AuditEvent).
func TestPatientViewMonitoring(t *testing.T) {
	for _, act := range []audit.Action{audit.ActionMonitorIngest, audit.ActionMonitorAlertRead, audit.ActionMonitorDisposition,
		audit.ActionMonitorAssign, audit.ActionMonitorNote, audit.ActionMonitorSuppress, audit.ActionMonitorAlert} {
		if !act.Monitoring() {
			t.Errorf("%s is not recognised as a monitoring action", act)
		}
		ev := audit.Event{Time: time.Unix(1_800_000_000, 0).UTC(), Action: act, Outcome: audit.OutcomeSuccess,
			Agent: audit.Agent{User: "phivault", Client: "monitor"}, Patients: []string{"Patient/alice"}, Entities: []string{"MonitorAlert/x"}}
		if v, ok := ev.PatientView("Patient/alice"); ok {
			t.Errorf("%s: the patient sees the monitoring event %+v", act, v)
		}
	}
	for _, act := range []audit.Action{audit.ActionRead, audit.ActionSearch} {
		if act.Monitoring() {
			t.Errorf("%s is taken for a monitoring action", act)
		}
	}
}
