package balp

import (
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/phivault/phivault/internal/monitor"
)

// A BALP "read of a patient's resource" event, as the IHE profile's
// examples shape it.
const readEvent = `{"resourceType":"AuditEvent","id":"ae1",
 "type":{"system":"http://terminology.hl7.org/CodeSystem/audit-event-type","code":"rest"},
 "subtype":[{"system":"http://hl7.org/fhir/restful-interaction","code":"read"}],
 "action":"R","recorded":"2026-03-02T14:05:06.123+01:00","outcome":"0",
 "agent":[{"type":{"coding":[{"code":"110153"}]},"who":{"reference":"https://ehr.example/fhir/Device/app"},"requestor":false},
  {"who":{"reference":"Practitioner/p1"},"requestor":true,"policy":["jti-77"],"network":{"address":"10.0.0.7","type":"2"},
   "purposeOfUse":[{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/v3-ActReason","code":"TREAT"}]}]}],
 "entity":[{"what":{"reference":"Patient/pat-9"},"role":{"code":"1"}},{"what":{"reference":"Observation/o1/_history/2"},"role":{"code":"4"}}]}`

func TestParseRead(t *testing.T) {
	evs, err := Parse([]byte(readEvent))
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != 1 {
		t.Fatalf("got %d events, want 1", len(evs))
	}
	e := evs[0]
	want := monitor.Event{Kind: monitor.KindAccess, Outcome: monitor.OutcomeSuccess, User: "Practitioner/p1",
		Patient: "Patient/pat-9", Action: "read", Purpose: "TREAT", Address: "10.0.0.7", Session: "jti-77", Ref: "AuditEvent/ae1"}
	want.Time = e.Time
	if e != want {
		t.Errorf("got %+v\nwant %+v", e, want)
	}
	if !e.Time.Equal(time.Date(2026, 3, 2, 13, 5, 6, 123e6, time.UTC)) {
		t.Errorf("time %v", e.Time)
	}
}

func TestParseKinds(t *testing.T) {
	for _, tc := range []struct {
		name, json string
		kind       monitor.Kind
		outcome    monitor.Outcome
		login      string
		bulk       bool
		n          int
	}{
		{"failed login with an unknown name",
			`{"resourceType":"AuditEvent","id":"a","type":{"system":"http://dicom.nema.org/resources/ontology/DCM","code":"110114"},
			"subtype":[{"system":"http://dicom.nema.org/resources/ontology/DCM","code":"110122"}],"action":"E","recorded":"2026-01-01T00:00:00Z",
			"outcome":"4","agent":[{"who":{"identifier":{"value":"jdoe"}},"requestor":true,"network":{"address":"203.0.113.5"}}]}`,
			monitor.KindLogin, monitor.OutcomeFailure, "jdoe", false, 1},
		{"logout", `{"resourceType":"AuditEvent","id":"a","type":{"code":"110114"},"subtype":[{"code":"110123"}],
			"recorded":"2026-01-01T00:00:00Z","outcome":"0","agent":[{"who":{"reference":"Practitioner/p"},"requestor":true}]}`,
			monitor.KindOther, monitor.OutcomeSuccess, "", false, 1},
		{"mfa failure", `{"resourceType":"AuditEvent","id":"a","type":{"code":"110114"},"subtype":[{"system":"urn:x","code":"mfa-verify"}],
			"recorded":"2026-01-01T00:00:00Z","outcome":"4","agent":[{"who":{"reference":"Practitioner/p"},"requestor":true}]}`,
			monitor.KindMFA, monitor.OutcomeFailure, "", false, 1},
		{"refused token", `{"resourceType":"AuditEvent","id":"a","type":{"code":"rest"},"subtype":[{"code":"ITI-71"}],
			"recorded":"2026-01-01T00:00:00Z","outcome":"8","agent":[{"who":{"reference":"Practitioner/p"},"requestor":true}]}`,
			monitor.KindToken, monitor.OutcomeFailure, "", false, 1},
		{"read not found", `{"resourceType":"AuditEvent","id":"a","type":{"code":"rest"},"subtype":[{"code":"read"}],
			"recorded":"2026-01-01T00:00:00Z","outcome":"4","outcomeDesc":"HTTP 404 Not Found",
			"agent":[{"who":{"reference":"Practitioner/p"},"requestor":true}],"entity":[{"what":{"reference":"Patient/zz"}}]}`,
			monitor.KindAccess, monitor.OutcomeNotFound, "", false, 1},
		{"denied search of two", `{"resourceType":"AuditEvent","id":"a","type":{"code":"rest"},"subtype":[{"code":"search-type"}],
			"recorded":"2026-01-01T00:00:00Z","outcome":"4",
			"agent":[{"who":{"reference":"Practitioner/p"},"requestor":true}],"entity":[{"what":{"reference":"Patient/a"}},{"what":{"reference":"Patient/b"}},{"what":{"reference":"Patient/a"}}]}`,
			monitor.KindAccess, monitor.OutcomeDenied, "", false, 2},
		{"bulk export", `{"resourceType":"AuditEvent","id":"a","type":{"code":"rest"},"subtype":[{"code":"export"}],"action":"E",
			"recorded":"2026-01-01T00:00:00Z","outcome":"0",
			"agent":[{"who":{"reference":"Practitioner/p"},"requestor":true}],"entity":[{"what":{"reference":"Patient/a"}}]}`,
			monitor.KindAccess, monitor.OutcomeSuccess, "", true, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			evs, err := Parse([]byte(tc.json))
			if err != nil {
				t.Fatal(err)
			}
			if len(evs) != tc.n {
				t.Fatalf("got %d events, want %d", len(evs), tc.n)
			}
			e := evs[0]
			if e.Kind != tc.kind || e.Outcome != tc.outcome || e.Login != tc.login || e.Bulk != tc.bulk {
				t.Errorf("got kind %s outcome %s login %q bulk %v", e.Kind, e.Outcome, e.Login, e.Bulk)
			}
		})
	}
}

func TestReaderDirectory(t *testing.T) {
	d := monitor.NewDirectory()
	d.RolePractitioner["PractitionerRole/r1"] = "Practitioner/p1"
	d.Patients["Patient/known"] = &monitor.PatientInfo{Ref: "Patient/known"}
	in := `{"resourceType":"AuditEvent","id":"1","type":{"code":"rest"},"subtype":[{"code":"read"}],"recorded":"2026-01-01T00:00:00Z","outcome":"4","agent":[{"who":{"reference":"PractitionerRole/r1"},"requestor":true}],"entity":[{"what":{"reference":"Patient/nope"}}]}

{"resourceType":"AuditEvent","id":"2","type":{"code":"rest"},"subtype":[{"code":"read"}],"recorded":"2026-01-01T00:00:01Z","outcome":"4","agent":[{"who":{"reference":"PractitionerRole/r1"},"requestor":true}],"entity":[{"what":{"reference":"Patient/known"}}]}
`
	r := NewReader(strings.NewReader(in))
	r.Directory = d
	e1, err := r.Next()
	if err != nil {
		t.Fatal(err)
	}
	e2, err := r.Next()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Next(); err != io.EOF {
		t.Fatalf("want EOF, got %v", err)
	}
	if e1.User != "Practitioner/p1" || e1.Outcome != monitor.OutcomeNotFound || e2.Outcome != monitor.OutcomeDenied {
		t.Errorf("got %+v / %+v", e1, e2)
	}
}

func TestReaderErrorsNameLineNotContent(t *testing.T) {
	secret := "Zebulon-Smithereens"
	in := readEvent + "\n" + `{"resourceType":"AuditEvent","recorded":"` + secret + `"}` + "\n" + `{"x":` + "\n" + strings.Repeat("a", MaxLine+10) + "\n"
	r := NewReader(strings.NewReader(strings.ReplaceAll(readEvent, "\n", "") + "\n" + in[len(readEvent)+1:]))
	if _, err := r.Next(); err != nil {
		t.Fatal(err)
	}
	for i, want := range []string{"line 2", "line 3"} {
		_, err := r.Next()
		if err == nil || !errors.Is(err, ErrLine) || !strings.Contains(err.Error(), want) || strings.Contains(err.Error(), secret) {
			t.Fatalf("error %d: %v", i, err)
		}
	}
	if _, err := r.Next(); err == nil || !strings.Contains(err.Error(), "longer than") {
		t.Fatalf("long line: %v", err)
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte(readEvent))
	f.Add([]byte(`{"resourceType":"AuditEvent","recorded":"2026-01-01T00:00:00Z","agent":[{"who":{"reference":"/"}}],"entity":[{"what":{"reference":"Patient/"}}]}`))
	f.Add([]byte(`{"resourceType":"AuditEvent","type":{"code":"110114"},"recorded":"2026-01-01T00:00:00Z","agent":[{"altId":"x"}]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		evs, err := Parse(b)
		if err != nil {
			if !errors.Is(err, ErrLine) {
				t.Fatalf("error does not wrap ErrLine: %v", err)
			}
			return
		}
		for _, e := range evs {
			if e.Kind == monitor.KindAccess && !strings.HasPrefix(e.Patient, "Patient/") {
				t.Fatalf("access without a patient: %+v", e)
			}
			if len(e.Session) > 256 || len(e.Login) > 256 || len(e.Address) > 256 {
				t.Fatal("unbounded field")
			}
		}
	})
}

// An oversized line costs only itself: the events after it are read
// (found by the outside tester: one long line dropped the rest of the
// log while the ingest reported success).
func TestReaderLongLineInTheMiddle(t *testing.T) {
	line := strings.ReplaceAll(readEvent, "\n", "")
	long := `{"resourceType":"AuditEvent","x":"` + strings.Repeat("A", MaxLine+100) + `"}`
	in := "\xef\xbb\xbf" + line + "\r\n" + long + "\n" + line + "\n" + strings.Repeat(line+"\n", 1000) + long
	r := NewReader(strings.NewReader(in))
	var n, longs int
	for {
		_, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			if !errors.Is(err, ErrLine) || !strings.Contains(err.Error(), "longer than") {
				t.Fatalf("line %d: %v", r.Line(), err)
			}
			longs++
			continue
		}
		n++
	}
	if n != 1002 || longs != 2 {
		t.Fatalf("read %d events and %d long lines, want 1002 and 2", n, longs)
	}
}
