package search

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/phivault/phivault/internal/fhir"
)

// render gives a Value a comparable string form for tests.
func render(v Value) string {
	switch v.Type {
	case Token:
		if v.HasSystem {
			return v.System + "|" + v.Code
		}
		return v.Code
	case String:
		return v.Str
	case Reference:
		return v.Ref
	case Date:
		return v.Lo.Format(time.RFC3339Nano) + ".." + v.Hi.Format(time.RFC3339Nano)
	case URI:
		return v.Str
	}
	return strings.Join(keys(v.terms), " ")
}

func TestNewSupportsTheTable(t *testing.T) {
	r := testRegistry(t)
	n := 0
	for typ, codes := range supported {
		want := len(codes) + len(metaParams)
		if typ == "Observation" {
			want += len(observationParams)
		}
		if got := len(r.Params(typ)); got != want {
			t.Errorf("%s: %d params, want %d", typ, got, want)
		}
		n += len(codes)
	}
	if _, ok := r.Lookup("PractitionerRole", "name"); ok {
		t.Error("PractitionerRole:name is supported but R4 does not define it")
	}
	if _, ok := r.Lookup("Immunization", "code"); ok {
		t.Error("Immunization:code is supported but R4 defines vaccine-code instead")
	}
	p, _ := r.Lookup("Patient", "birthdate")
	if p == nil || !p.Identifying() || p.Type != Date {
		t.Errorf("Patient:birthdate = %+v, want an identifying date parameter", p)
	}
	if p, _ := r.Lookup("Observation", "code"); p.Identifying() {
		t.Error("Observation:code is identifying")
	}
	t.Logf("%d parameters over %d types", n, len(supported))
}

// TestExtractSynthea checks every supported parameter of every type in the
// testdata against values read off the Synthea resources by hand.
func TestExtractSynthea(t *testing.T) {
	r := testRegistry(t)
	const pat = "Patient/23dc3811-ae4e-fc12-fe61-b4a54b057624"
	tests := []struct {
		file, param string
		want        []string // all must be among the rendered values of param
	}{
		{"Patient", "identifier", []string{"http://hl7.org/fhir/sid/us-ssn|999-63-3036", "https://github.com/synthetichealth/synthea|23dc3811-ae4e-fc12-fe61-b4a54b057624"}},
		{"Patient", "name", []string{"Kuhic920", "Sang383", "Mr."}},
		{"Patient", "family", []string{"Kuhic920"}},
		{"Patient", "given", []string{"Sang383"}},
		{"Patient", "birthdate", []string{"1976-01-14T00:00:00Z..1976-01-14T23:59:59.999999Z"}},
		{"Patient", "gender", []string{"male"}},
		{"Patient", "telecom", []string{"phone|555-410-4554"}},
		{"Practitioner", "identifier", []string{"http://hl7.org/fhir/sid/us-npi|9999999999"}},
		{"Practitioner", "name", []string{"Bruen238", "Rosette746", "Dr."}},
		{"Organization", "identifier", []string{"https://github.com/synthetichealth/synthea|ef58ea08-d883-3957-8300-150554edc8fb"}},
		{"Organization", "name", []string{"HEALTHALLIANCE HOSPITALS, INC"}},
		{"Location", "identifier", []string{"https://github.com/synthetichealth/synthea|1ee7e785-1991-34c3-9d64-8bed2e20233a"}},
		{"Location", "name", []string{"HEALTHALLIANCE HOSPITALS, INC"}},
		{"Observation", "patient", []string{pat}},
		{"Observation", "subject", []string{pat}},
		{"Observation", "code", []string{"http://loinc.org|5089AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}},
		{"Observation", "category", []string{"http://terminology.hl7.org/CodeSystem/observation-category|survey"}},
		{"Observation", "status", []string{"final"}},
		{"Observation", "encounter", []string{"Encounter/42a06f0c-57a1-3da7-9d20-9cb0e7cf112d"}},
		{"Observation", "date", []string{"1995-02-03T06:21:13Z..1995-02-03T06:21:13.999999Z"}},
		{"Condition", "patient", []string{pat}},
		{"Condition", "subject", []string{pat}},
		{"Condition", "code", []string{"http://snomed.info/sct|112141AAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}},
		{"Condition", "category", []string{"http://terminology.hl7.org/CodeSystem/condition-category|encounter-diagnosis"}},
		{"Condition", "encounter", []string{"Encounter/beef9a78-cc05-914f-5260-2305dd5ab820"}},
		{"Encounter", "patient", []string{pat}},
		{"Encounter", "subject", []string{pat}},
		{"Encounter", "status", []string{"finished"}},
		{"Encounter", "date", []string{"1995-02-03T06:21:13Z..1995-02-04T06:21:13.999999Z"}},
		// Synthea's participant is a conditional reference (resolved on
		// import); a literal one is tested in TestExtractParticipant.
		{"Encounter", "participant", nil},
		{"Immunization", "patient", []string{pat}},
		{"Immunization", "status", []string{"completed"}},
		{"Immunization", "date", []string{"1976-04-21T06:21:13Z..1976-04-21T06:21:13.999999Z"}},
		{"DiagnosticReport", "patient", []string{pat}},
		{"DiagnosticReport", "subject", []string{pat}},
		{"DiagnosticReport", "code", []string{"http://loinc.org|34117-2", "http://loinc.org|51847-2"}},
		{"DiagnosticReport", "category", []string{"http://loinc.org|34117-2"}},
		{"DiagnosticReport", "status", []string{"final"}},
		{"DiagnosticReport", "encounter", []string{"Encounter/880bdf5a-8244-0919-f8b3-8d6478ebd21b"}},
		{"DiagnosticReport", "date", []string{"1976-02-18T06:21:13Z..1976-02-18T06:21:13.999999Z"}},
		{"DocumentReference", "patient", []string{pat}},
		{"DocumentReference", "subject", []string{pat}},
		{"DocumentReference", "category", []string{"http://hl7.org/fhir/us/core/CodeSystem/us-core-documentreference-category|clinical-note"}},
		{"DocumentReference", "status", []string{"superseded"}},
		{"DocumentReference", "encounter", []string{"Encounter/880bdf5a-8244-0919-f8b3-8d6478ebd21b"}},
		{"DocumentReference", "date", []string{"1976-02-18T06:21:13.674Z..1976-02-18T06:21:13.674999Z"}},
		{"Claim", "patient", []string{pat}},
		{"Claim", "status", []string{"active"}},
		{"Claim", "created", []string{"1996-10-11T06:21:13Z..1996-10-11T06:21:13.999999Z"}},
		{"Claim", "encounter", []string{"Encounter/384a6676-f051-8a67-05c7-2672fe383b29"}},
		{"ExplanationOfBenefit", "patient", []string{pat}},
		{"ExplanationOfBenefit", "status", []string{"active"}},
		{"ExplanationOfBenefit", "encounter", []string{"Encounter/384a6676-f051-8a67-05c7-2672fe383b29"}},
		{"ExplanationOfBenefit", "created", []string{"1996-10-11T06:21:13Z..1996-10-11T06:21:13.999999Z"}},
	}
	covered := map[string]bool{}
	for _, tt := range tests {
		t.Run(tt.file+"."+tt.param, func(t *testing.T) {
			vals, err := r.Extract(loadResource(t, tt.file))
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, v := range vals {
				if v.Param == tt.param {
					got = append(got, render(v))
				}
			}
			for _, w := range tt.want {
				if !slices.Contains(got, w) {
					t.Errorf("values %q lack %q", got, w)
				}
			}
		})
		covered[tt.file+"."+tt.param] = true
	}
	// PractitionerRole's references in Synthea are logical (identifier
	// only): nothing to extract but the identifier, tested below.
	for _, typ := range []string{"Patient", "Practitioner", "Organization", "Location", "Observation", "Condition",
		"Encounter", "Immunization", "DiagnosticReport", "DocumentReference", "Claim", "ExplanationOfBenefit"} {
		for _, p := range r.Params(typ) {
			if isMetaParam(p.Code) || typ == "Observation" && slices.Contains(observationParams, p.Code) {
				continue // params_test.go
			}
			if !covered[typ+"."+p.Code] {
				t.Errorf("no Synthea test for %s:%s", typ, p.Code)
			}
		}
	}
}

// TestExtractNonSyntheaTypes covers the supported types Synthea does not
// produce, with hand-written R4 resources.
func TestExtractNonSyntheaTypes(t *testing.T) {
	r := testRegistry(t)
	tests := []struct {
		body  string
		param string
		want  []string
	}{
		{`{"resourceType":"PractitionerRole","identifier":[{"value":"r1"}],"practitioner":{"reference":"Practitioner/p1"},"organization":{"reference":"https://example.org/fhir/Organization/o1/_history/3"}}`,
			"practitioner", []string{"Practitioner/p1"}},
		{`{"resourceType":"PractitionerRole","organization":{"reference":"https://example.org/fhir/Organization/o1/_history/3"}}`,
			"organization", []string{"Organization/o1"}},
		{`{"resourceType":"PractitionerRole","identifier":[{"value":"r1"}]}`, "identifier", []string{"r1"}},
		{`{"resourceType":"MedicationRequest","status":"active","intent":"order","subject":{"reference":"Patient/p"},"medicationCodeableConcept":{"coding":[{"system":"http://www.nlm.nih.gov/research/umls/rxnorm","code":"313782"}]},"category":[{"coding":[{"code":"outpatient"}]}],"encounter":{"reference":"Encounter/e"},"dosageInstruction":[{"timing":{"event":["2020-03","2020-04-01T10:00:00+02:00"]}}]}`,
			"code", []string{"http://www.nlm.nih.gov/research/umls/rxnorm|313782"}},
		{`{"resourceType":"MedicationRequest","status":"active","intent":"order","subject":{"reference":"Patient/p"},"medicationReference":{"reference":"Medication/m"}}`,
			"code", nil},
		{`{"resourceType":"MedicationRequest","subject":{"reference":"Patient/p"},"dosageInstruction":[{"timing":{"event":["2020-03","2020-04-01T10:00:00+02:00"]}}]}`,
			"date", []string{"2020-03-01T00:00:00Z..2020-03-31T23:59:59.999999Z", "2020-04-01T08:00:00Z..2020-04-01T08:00:00.999999Z"}},
		{`{"resourceType":"MedicationRequest","subject":{"reference":"Patient/p"},"status":"active"}`, "patient", []string{"Patient/p"}},
		{`{"resourceType":"MedicationRequest","subject":{"reference":"Group/g"}}`, "patient", nil},
		{`{"resourceType":"MedicationRequest","subject":{"reference":"Group/g"}}`, "subject", []string{"Group/g"}},
		{`{"resourceType":"AllergyIntolerance","patient":{"reference":"Patient/p"},"code":{"coding":[{"system":"s","code":"c"}]},"category":["food"],"recordedDate":"2019"}`,
			"category", []string{"food"}},
		{`{"resourceType":"AllergyIntolerance","patient":{"reference":"Patient/p"},"recordedDate":"2019"}`,
			"date", []string{"2019-01-01T00:00:00Z..2019-12-31T23:59:59.999999Z"}},
		{`{"resourceType":"Procedure","status":"completed","subject":{"reference":"Patient/p"},"performedPeriod":{"start":"2020-01-01"}}`,
			"date", []string{"2020-01-01T00:00:00Z..9999-12-31T23:59:59.999999Z"}},
		{`{"resourceType":"Procedure","status":"completed","subject":{"reference":"Patient/p"},"code":{"text":"no coding"}}`,
			"code", nil},
		{`{"resourceType":"CareTeam","subject":{"reference":"Patient/p"},"period":{"end":"2021-06-30T12:00:00-05:00"},"category":[{"coding":[{"system":"http://loinc.org","code":"LA27976-2"}]}]}`,
			"date", []string{"0001-01-01T00:00:00Z..2021-06-30T17:00:00.999999Z"}},
		{`{"resourceType":"Observation","status":"final","code":{"text":"x"},"subject":{"reference":"Patient/p"},"effectivePeriod":{"start":"2020-01-01T00:00:00Z","end":"2020-01-02T00:00:00Z"}}`,
			"date", []string{"2020-01-01T00:00:00Z..2020-01-02T00:00:00.999999Z"}},
		{`{"resourceType":"Observation","status":"final","code":{"text":"x"},"subject":{"reference":"urn:uuid:0d1c"}}`, "subject", nil},
		{`{"resourceType":"Observation","status":"final","code":{"text":"x"},"subject":{"reference":"Patient?identifier=x|1"}}`, "subject", nil},
		{`{"resourceType":"Observation","status":"final","code":{"text":"x"},"subject":{"reference":"#p1"}}`, "subject", nil},
		{`{"resourceType":"Patient","active":true,"name":[{"text":"Zoë  Ångström"}],"address":[{"city":"x"}]}`, "name", []string{"Zoë  Ångström"}},
	}
	for i, tt := range tests {
		t.Run(fmt.Sprint(i, tt.param), func(t *testing.T) {
			vals, err := r.Extract(decode(t, tt.body))
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, v := range vals {
				if v.Param == tt.param {
					got = append(got, render(v))
				}
			}
			slices.Sort(got)
			want := slices.Clone(tt.want)
			slices.Sort(want)
			if !slices.Equal(got, want) {
				t.Errorf("got %q, want %q", got, want)
			}
		})
	}
}

func TestExtractRejectsImpossibleDate(t *testing.T) {
	r := testRegistry(t)
	res := decode(t, `{"resourceType":"Observation","status":"final","code":{"text":"x"},"effectiveDateTime":"2021-02-30"}`)
	_, err := r.Extract(res)
	if !errors.Is(err, fhir.ErrInvalid) {
		t.Fatalf("err = %v, want ErrInvalid", err)
	}
	if strings.Contains(err.Error(), "2021") {
		t.Errorf("error echoes the value: %v", err)
	}
}

func TestExtractBoundsValues(t *testing.T) {
	r := testRegistry(t)
	var sb strings.Builder
	sb.WriteString(`{"resourceType":"Patient","identifier":[`)
	for i := range 5000 {
		if i > 0 {
			sb.WriteByte(',')
		}
		fmt.Fprintf(&sb, `{"value":"%d"}`, i)
	}
	sb.WriteString(`]}`)
	if _, err := r.Extract(decode(t, sb.String())); !errors.Is(err, fhir.ErrTooLarge) {
		t.Fatalf("err = %v, want ErrTooLarge", err)
	}
}

func TestParseDate(t *testing.T) {
	tests := []struct {
		in     string
		lo, hi string
		ok     bool
	}{
		{"2020", "2020-01-01T00:00:00Z", "2020-12-31T23:59:59.999999Z", true},
		{"2020-02", "2020-02-01T00:00:00Z", "2020-02-29T23:59:59.999999Z", true},
		{"2020-02-29", "2020-02-29T00:00:00Z", "2020-02-29T23:59:59.999999Z", true},
		{"2020-02-29T10:00", "2020-02-29T10:00:00Z", "2020-02-29T10:00:59.999999Z", true},
		{"2020-02-29T10:00:00+02:00", "2020-02-29T08:00:00Z", "2020-02-29T08:00:00.999999Z", true},
		{"2020-02-29T23:30:00-05:00", "2020-03-01T04:30:00Z", "2020-03-01T04:30:00.999999Z", true},
		{"2020-02-29T10:00:00.5Z", "2020-02-29T10:00:00.5Z", "2020-02-29T10:00:00.599999Z", true},
		{"2020-02-29T10:00:00.123456789Z", "2020-02-29T10:00:00.123456Z", "2020-02-29T10:00:00.123456Z", true},
		{"2021-02-29", "", "", false},
		{"2020-13", "", "", false},
		{"2020-1-1", "", "", false},
		{"20", "", "", false},
		{"2020-01-01T25:00:00Z", "", "", false},
		{"2020-01-01T10:00:00+15:00", "", "", false},
		{"2020-01-01 10:00", "", "", false},
	}
	for _, tt := range tests {
		lo, hi, _, ok := parseDate(tt.in)
		if ok != tt.ok {
			t.Errorf("parseDate(%q) ok = %v", tt.in, ok)
			continue
		}
		if !ok {
			continue
		}
		if got := lo.Format(time.RFC3339Nano); got != tt.lo {
			t.Errorf("parseDate(%q) lo = %s, want %s", tt.in, got, tt.lo)
		}
		if got := hi.Format(time.RFC3339Nano); got != tt.hi {
			t.Errorf("parseDate(%q) hi = %s, want %s", tt.in, got, tt.hi)
		}
	}
}

// TestExtractParticipant: Encounter and CareTeam participants are
// indexed (authorization finds a practitioner's patients through them).
func TestExtractParticipant(t *testing.T) {
	r, err := New()
	if err != nil {
		t.Fatal(err)
	}
	for _, res := range []fhir.Resource{
		{"resourceType": "Encounter", "id": "e1", "status": "finished", "class": map[string]any{"code": "AMB"},
			"participant": []any{map[string]any{"individual": map[string]any{"reference": "Practitioner/pr-1"}}}},
		{"resourceType": "CareTeam", "id": "c1", "participant": []any{map[string]any{"member": map[string]any{"reference": "Practitioner/pr-1"}}}},
	} {
		vals, err := r.Extract(res)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, v := range vals {
			if v.Param == "participant" {
				got = append(got, render(v))
			}
		}
		if !slices.Contains(got, "Practitioner/pr-1") {
			t.Errorf("%s participant values %q lack Practitioner/pr-1", res.Type(), got)
		}
	}
}
