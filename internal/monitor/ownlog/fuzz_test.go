package ownlog

import (
	"encoding/json"
	"testing"

	"github.com/phivault/phivault/internal/audit"
)

// The resource decoders read stored FHIR JSON (validated on write, but a
// directory must never panic on any body) and must not invent
// references: every participant and organization is a local reference.
func FuzzResources(f *testing.F) {
	for _, s := range []string{
		`{"participant":[{"individual":{"reference":"PractitionerRole/r1"}}],"period":{"start":"2026-11-01","end":"2026-11"},"serviceProvider":{"reference":"Organization/o1"}}`,
		`{"participant":[{"member":{"reference":"Practitioner/p1"},"onBehalfOf":{"reference":"Organization/o"}}],"managingOrganization":[{"reference":"Organization/o"}]}`,
		`{"performer":[{"reference":"http://x/Practitioner/1"}],"performerType":{"coding":[{"code":"x"}]},"occurrencePeriod":{"start":"bad"}}`,
		`{"availableTime":[{"daysOfWeek":["mon","xyz"],"availableStartTime":"25:00:00","availableEndTime":"08:00"}],"practitioner":{"reference":"Practitioner/a"}}`,
		`{"name":[{"use":"official","family":"F","given":["G"]}],"address":[{"line":["1 A St"]}],"meta":{"security":[{"code":"V"}]}}`,
		`[]`, `null`, `{"period":{"start":2}}`,
	} {
		f.Add("Encounter", []byte(s))
	}
	f.Fuzz(func(t *testing.T, typ string, body []byte) {
		if rel, ok, err := Relation(typ, "x1", body); err == nil && ok {
			for _, r := range append(append([]string{}, rel.Participants...), rel.Organizations...) {
				if localRef(r, "Practitioner") == "" && localRef(r, "PractitionerRole") == "" && localRef(r, "Organization") == "" {
					t.Fatalf("relation names %q, not a local reference", r)
				}
			}
		}
		_, _ = Patient("p", body)
		_, _ = Practitioner("p", body)
		_, _ = Organization("o", body)
		_, _, _, _ = PractitionerRole("r", body)
	})
}

// Convert never panics and never returns an access without a kind.
func FuzzConvert(f *testing.F) {
	f.Add([]byte(`{"action":"read","outcome":"error","status":404,"entities":["Patient/x/_history/2"],"agent":{"user":"u"}}`))
	f.Add([]byte(`{"action":"search-type","outcome":"denied","status":401,"policies":["bearer-refused"]}`))
	f.Add([]byte(`{"action":"mfa-verify","outcome":"denied","agent":{"user":"unknown","session":"s"}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		var ev audit.Event
		if json.Unmarshal(b, &ev) != nil {
			return
		}
		for _, m := range Convert(7, ev, func(string) string { return "Practitioner/p" }) {
			if m.Kind == "" || m.Outcome == "" || m.Ref != "leaf/7" {
				t.Fatalf("converted %+v", m)
			}
		}
	})
}
