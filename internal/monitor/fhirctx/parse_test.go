package fhirctx

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/phivault/phivault/internal/monitor"
)

const bundle = `{"resourceType":"Bundle","type":"collection","meta":{"lastUpdated":"2026-01-01T00:00:00Z"},"entry":[
 {"fullUrl":"urn:uuid:h","resource":{"resourceType":"Organization","id":"hosp","name":"General"}},
 {"fullUrl":"urn:uuid:card","resource":{"resourceType":"Organization","id":"card","name":"Cardiology","partOf":{"reference":"urn:uuid:h"}}},
 {"resource":{"resourceType":"Practitioner","id":"p1","name":[{"use":"old","family":"Old"},{"family":"Rivera","given":["Ana"]}],
   "birthDate":"1980-02-03","address":[{"line":["1 Elm St","Apt 2"],"city":"Springfield","postalCode":"01101"}]}},
 {"resource":{"resourceType":"PractitionerRole","id":"r1","practitioner":{"reference":"Practitioner/p1"},
   "organization":{"reference":"https://ehr.example/fhir/Organization/card/_history/3"},
   "code":[{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/practitioner-role","code":"nurse"}]}],
   "availableTime":[{"daysOfWeek":["mon","tue"],"availableStartTime":"07:00:00","availableEndTime":"19:00:00"},{"daysOfWeek":["sat"],"allDay":true}]}},
 {"resource":{"resourceType":"PractitionerRole","id":"r2","active":false,"practitioner":{"reference":"Practitioner/p1"}}},
 {"fullUrl":"urn:uuid:pat","resource":{"resourceType":"Patient","id":"x1","meta":{"security":[{"system":"http://terminology.hl7.org/CodeSystem/v3-Confidentiality","code":"V"}]},
   "name":[{"use":"official","family":"Rivera","given":["Bo"]}],"birthDate":"1950","address":[{"line":["1 Elm St"],"postalCode":"01101"}]}},
 {"resource":{"resourceType":"Encounter","id":"e1","subject":{"reference":"urn:uuid:pat"},
   "participant":[{"individual":{"reference":"PractitionerRole/r1"}}],"period":{"start":"2026-03-01","end":"2026-03-03T10:00:00Z"},
   "serviceProvider":{"reference":"Organization/card"}}},
 {"resource":{"resourceType":"CareTeam","id":"ct","subject":{"reference":"Patient/x1"},"participant":[{"member":{"reference":"Practitioner/p1"}},{"member":{"reference":"Organization/card"}}]}},
 {"resource":{"resourceType":"ServiceRequest","id":"sr","subject":{"reference":"Patient/x1"},
   "performerType":{"coding":[{"code":"lab"}]},"performer":[{"reference":"Organization/card"}],"occurrenceDateTime":"2026-03-02"}},
 {"resource":{"resourceType":"Account","id":"acc","subject":[{"reference":"Patient/x1"}],"owner":{"reference":"Organization/hosp"}}},
 {"resource":{"resourceType":"Claim","id":"cl","patient":{"reference":"Patient/x1"},"provider":{"reference":"Organization/hosp"},"created":"2026-03-04"}},
 {"resource":{"resourceType":"Observation","id":"o"}},
 {"request":{"method":"DELETE","url":"Patient/y"}}
]}`

func TestParse(t *testing.T) {
	d, st, err := ParseWith(strings.NewReader(bundle), Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if st.Entries != 13 || st.Skipped != 2 || st.ByType["Organization"] != 2 {
		t.Errorf("stats %+v", st)
	}
	if d.Departments["Organization/card"].PartOf != "Organization/hosp" {
		t.Errorf("partOf: %+v", d.Departments["Organization/card"])
	}
	p := d.Practitioners["Practitioner/p1"]
	if p == nil || p.Family != "Rivera" || p.BirthDate != "1980-02-03" || p.Addresses[0].Line != "1 Elm St, Apt 2" {
		t.Fatalf("practitioner %+v", p)
	}
	if len(p.Roles) != 1 {
		t.Fatalf("roles %+v (the inactive one must be dropped)", p.Roles)
	}
	r := p.Roles[0]
	if r.Organization != "Organization/card" || !slices.Equal(r.Codes, []string{"nurse"}) || len(r.Shifts) != 2 {
		t.Errorf("role %+v", r)
	}
	if s := r.Shifts[0]; s.Start != 7*time.Hour || s.End != 19*time.Hour || !slices.Equal(s.Days, []time.Weekday{time.Monday, time.Tuesday}) {
		t.Errorf("shift %+v", s)
	}
	if !r.Shifts[1].AllDay {
		t.Errorf("all-day shift %+v", r.Shifts[1])
	}
	if d.RolePractitioner["PractitionerRole/r1"] != "Practitioner/p1" {
		t.Errorf("role map %v", d.RolePractitioner)
	}
	pat := d.Patients["Patient/x1"]
	if pat == nil || !slices.Equal(pat.Labels, []string{"V"}) || pat.Family != "Rivera" {
		t.Fatalf("patient %+v", pat)
	}
	rels := d.Relations["Patient/x1"]
	kinds := map[monitor.RelationKind]int{}
	for _, rel := range rels {
		kinds[rel.Kind]++
	}
	if kinds[monitor.RelEncounter] != 1 || kinds[monitor.RelCareTeam] != 1 || kinds[monitor.RelOrder] != 1 || kinds[monitor.RelBilling] != 2 {
		t.Fatalf("relations %+v", rels)
	}
	for _, rel := range rels {
		switch rel.Kind {
		case monitor.RelEncounter:
			if !slices.Equal(rel.Participants, []string{"Practitioner/p1"}) || !slices.Contains(rel.Organizations, "Organization/card") {
				t.Errorf("encounter %+v", rel)
			}
			if !rel.Start.Equal(time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)) || !rel.End.Equal(time.Date(2026, 3, 3, 10, 0, 0, 0, time.UTC)) {
				t.Errorf("encounter period %v %v", rel.Start, rel.End)
			}
		case monitor.RelOrder:
			if !slices.Equal(rel.Codes, []string{"lab"}) || !slices.Equal(rel.Organizations, []string{"Organization/card"}) || rel.End.Day() != 2 {
				t.Errorf("order %+v", rel)
			}
		case monitor.RelCareTeam:
			if !slices.Equal(rel.Participants, []string{"Practitioner/p1"}) || !slices.Equal(rel.Organizations, []string{"Organization/card"}) {
				t.Errorf("care team %+v", rel)
			}
		}
	}
}

func TestParseRefuses(t *testing.T) {
	name := "Quixotic-Surname"
	for _, tc := range []struct{ name, in string }{
		{"not json", "hello"},
		{"not a bundle", `{"resourceType":"Patient","id":"x"}`},
		{"no type", `{"entry":[]}`},
		{"bad id", `{"resourceType":"Bundle","entry":[{"resource":{"resourceType":"Patient","id":"a b","name":[{"family":"` + name + `"}]}}]}`},
		{"truncated", `{"resourceType":"Bundle","entry":[{"resource":{"resourceType":"Patient","id":"a","name":[{"family":"` + name},
		{"trailing", `{"resourceType":"Bundle"} {}`},
		{"too deep", `{"resourceType":"Bundle","entry":[` + strings.Repeat("[", 20000) + `]}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse(strings.NewReader(tc.in))
			if err == nil {
				t.Fatal("accepted")
			}
			if strings.Contains(err.Error(), name) {
				t.Fatalf("error quotes the input: %v", err)
			}
		})
	}
	_, _, err := ParseWith(strings.NewReader(bundle), Limits{MaxEntries: 3})
	if err == nil || !strings.Contains(err.Error(), "more than 3") {
		t.Errorf("entry limit: %v", err)
	}
	_, _, err = ParseWith(strings.NewReader(bundle), Limits{MaxResource: 100})
	if err == nil || !strings.Contains(err.Error(), "over the limit") {
		t.Errorf("size limit: %v", err)
	}
	if _, err := Parse(strings.NewReader(`[]`)); !errors.Is(err, ErrNotBundle) {
		t.Errorf("array: %v", err)
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte(bundle))
	f.Add([]byte(`{"resourceType":"Bundle","entry":[{"resource":{"resourceType":"Encounter","id":"e","subject":{"reference":"Patient/p"},"participant":[{"individual":{"reference":"urn:uuid:x"}}]}}]}`))
	f.Add([]byte(`{"resourceType":"Bundle","entry":[{"resource":{"resourceType":"Account","id":"e","subject":{"reference":"Patient/p"}}}]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		d, _, err := ParseWith(strings.NewReader(string(b)), Limits{MaxEntries: 1000, MaxResource: 1 << 16})
		if err != nil {
			return
		}
		for p, rels := range d.Relations {
			if !strings.HasPrefix(p, "Patient/") {
				t.Fatalf("relation owner %q", p)
			}
			for _, r := range rels {
				for _, x := range r.Participants {
					if !strings.HasPrefix(x, "Practitioner/") {
						t.Fatalf("participant %q", x)
					}
				}
			}
		}
	})
}

// Valid R4 resources of every type are accepted, whatever the shape of
// fields the directory does not read (found by the scenario generator:
// ServiceRequest.code is one CodeableConcept, Observation.code too).
func TestParseAcceptsOtherShapes(t *testing.T) {
	in := `{"resourceType":"Bundle","type":"collection","entry":[
	 {"resource":{"resourceType":"Patient","id":"p"}},
	 {"resource":{"resourceType":"Practitioner","id":"n1"}},
	 {"resource":{"resourceType":"ServiceRequest","id":"s","status":"active","intent":"order","code":{"coding":[{"code":"x"}],"text":"CBC"},
	   "subject":{"reference":"Patient/p"},"performerType":{"coding":[{"code":"lab"}]}}},
	 {"resource":{"resourceType":"Observation","id":"o","status":"final","code":{"text":"x"},"subject":{"reference":"Patient/p"},
	   "performer":[{"reference":"Practitioner/n1"}],"valueQuantity":{"value":1},"participant":"odd","name":{"x":1}}},
	 {"resource":{"resourceType":"Procedure","id":"pr","status":"done","subject":{"reference":"Patient/p"},"performer":[{"actor":{"reference":"Practitioner/n1"}}],"code":{"text":"y"}}},
	 {"resource":{"resourceType":"Encounter","id":"e","status":"finished","class":{"code":"IMP"},"subject":{"reference":"Patient/p"},
	   "period":{"start":"2026-03-01T00:00:00Z","end":"2026-03-10T00:00:00Z"},
	   "participant":[{"individual":{"reference":"Practitioner/n1"},"period":{"start":"2026-03-04T07:00:00Z","end":"2026-03-04T19:00:00Z"}}]}}
	]}`
	d, st, err := ParseWith(strings.NewReader(in), Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if st.ByType["ServiceRequest"] != 1 || st.Skipped != 2 {
		t.Errorf("stats %+v", st)
	}
	var cover *monitor.Relation
	for i, r := range d.Relations["Patient/p"] {
		if r.Kind == monitor.RelEncounter && slices.Contains(r.Participants, "Practitioner/n1") {
			cover = &d.Relations["Patient/p"][i]
		}
	}
	if cover == nil || cover.Start.Day() != 4 || cover.End.Day() != 4 {
		t.Fatalf("a participant's own period must bound their relation: %+v", d.Relations["Patient/p"])
	}
}

// A resource of a type read whose fields have an unexpected shape is
// skipped and counted, never a reason to refuse the whole context; a
// resource named only by its fullUrl (a transaction's new resource)
// takes its id from it; a byte order mark is accepted (found by the
// outside tester).
func TestParseTolerates(t *testing.T) {
	in := "\xef\xbb\xbf" + `{"resourceType":"Bundle","type":"transaction","entry":[
	 {"resource":{"resourceType":"Patient","id":"a","birthDate":7}},
	 {"fullUrl":"urn:uuid:0b3a8d6e-9c1f-4d2a-8f5e-1a2b3c4d5e6f","resource":{"resourceType":"Patient","managingOrganization":{"reference":"Organization/o"}},
	  "request":{"method":"POST","url":"Patient"}},
	 {"fullUrl":"https://ehr.example/fhir/Practitioner/n9","resource":{"resourceType":"Practitioner"}},
	 {"resource":{"resourceType":"Encounter","id":"e","subject":{"reference":"urn:uuid:0b3a8d6e-9c1f-4d2a-8f5e-1a2b3c4d5e6f"},"participant":[{"individual":{"reference":"Practitioner/n9"}}]}}
	]}`
	d, st, err := ParseWith(strings.NewReader(in), Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if st.Unreadable != 1 {
		t.Errorf("unreadable %d, want 1", st.Unreadable)
	}
	if d.Patients["Patient/0b3a8d6e-9c1f-4d2a-8f5e-1a2b3c4d5e6f"] == nil || d.Practitioners["Practitioner/n9"] == nil {
		t.Fatalf("resources without an id: %v %v", d.Patients, d.Practitioners)
	}
	if rels := d.Relations["Patient/0b3a8d6e-9c1f-4d2a-8f5e-1a2b3c4d5e6f"]; len(rels) != 1 || rels[0].Participants[0] != "Practitioner/n9" {
		t.Fatalf("relations %+v", rels)
	}
}
