package deid_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/phivault/phivault/internal/deid"
)

// The leaks an outside tester found, with the tester's inputs. Each
// must stay closed.

// leakObservation carries identifiers in codes, displays and text, a
// birth year of a 96-year-old in a component, an age answer as an
// integer and a time of day.
const leakObservation = `{"resourceType":"Observation","id":"o1","status":"final",
 "code":{"coding":[{"system":"http://loinc.org","code":"30525-0","display":"Age"}],"text":"Age"},
 "subject":{"reference":"Patient/p1"},
 "valueInteger":96,
 "component":[
  {"code":{"coding":[{"system":"http://hospital.example/local","code":"LOC1","display":"DISP Call 555-867-5309"}]},"valueString":"x"},
  {"code":{"coding":[{"system":"http://loinc.org","code":"21112-8","display":"Born on 1930-05-17","version":"2.74","userSelected":true}]},"valueDateTime":"1930"},
  {"code":{"coding":[{"system":"http://loinc.org","code":"8302-2"}]},"valueCodeableConcept":{"coding":[{"system":"http://snomed.info/sct","code":"160903007","display":"SSN 999-12-3456"}],"text":"SSN 999-12-3456"}},
  {"code":{"coding":[{"system":"http://loinc.org","code":"21612-7"}]},"valueInteger":96},
  {"code":{"coding":[{"system":"http://loinc.org","code":"8867-4"}]},"valueTime":"10:11:12"}
 ]}`

const leakQuestionnaireResponse = `{"resourceType":"QuestionnaireResponse","id":"q1","status":"completed","subject":{"reference":"Patient/p1"},
 "item":[{"linkId":"1","answer":[{"valueCoding":{"system":"http://hospital.example/qr","code":"QRCODE-Zyxwvut"}},
  {"valueCoding":{"code":"QRCODE-Zyxwvut"}},
  {"valueCoding":{"system":"http://terminology.hl7.org/CodeSystem/v2-0136","code":"QRCODE-5558675309"}},
  {"valueDate":"1930"},{"valueDateTime":"1930-05-17"},{"valueTime":"10:11:12"},{"valueInteger":96}]}]}`

const leakPatient = `{"resourceType":"Patient","id":"p1","gender":"female","birthDate":"1980-02-03",
 "identifier":[{"type":{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/v2-0203","code":"MR","display":"MRDISP-Zyxwvut"}],"text":"MRDISP-Zyxwvut"},"value":"X1"},
  {"type":{"coding":[{"system":"http://hl7.org/fhir/sid/us-ssn","code":"999-12-3456"}]},"value":"X2"}],
 "extension":[{"url":"http://hl7.org/fhir/us/core/StructureDefinition/us-core-race","extension":[
  {"url":"ombCategory","valueCoding":{"system":"urn:oid:2.16.840.1.113883.6.238","code":"2106-3","display":"White"}},
  {"url":"detailed","valueCoding":{"system":"urn:oid:2.16.840.1.113883.6.238","code":"2108-9","display":"RACEDISP Grandma Zyxwvut of Elm St"}},
  {"url":"detailed","valueCoding":{"system":"urn:oid:2.16.840.1.113883.6.238","code":"RACECODE-Zyxwvut"}}]}],
 "address":[{"state":"ZZ Near Elm St","country":"Near the Mill","postalCode":"03755"},{"state":"NH","country":"US"},{"state":"New Hampshire","country":"USA"},{"state":"CA-ON","country":"CAN"}]}`

func TestLeakCodesAndDisplays(t *testing.T) {
	for _, o := range []deid.Options{{}, {DateShiftDays: 30}} {
		tr := newT(t, o)
		for _, body := range []string{leakObservation, leakQuestionnaireResponse, leakPatient} {
			_, out := run(t, tr, []byte(body))
			mustAbsent(t, out, "DISP Call", "555-867", "5558675309", "Born on", "1930", "SSN", "999-12", "QRCODE", "Zyxwvut",
				"MRDISP", "RACEDISP", "Grandma", "hospital.example", `"display":"Age"`, `"display":"White"`, "LOC1",
				`"version"`, "10:11:12", "Elm St", "Near the Mill", `"text"`)
		}
		r := tr.Report()
		if r.Removed["Observation"]["coding not of a standard terminology, or code not of its syntax"] == 0 ||
			r.Removed["Observation"]["Coding.display (free text)"] == 0 || r.Removed["Patient"]["address state or country not recognised"] != 2 {
			t.Errorf("report: %+v", r.Removed)
		}
	}
	// What stays: system and code of standard terminologies, and
	// userSelected.
	m, out := run(t, newT(t, deid.Options{}), []byte(leakObservation))
	for _, s := range []string{`"30525-0"`, `"21112-8"`, `"160903007"`, `"8302-2"`, `"userSelected":true`} {
		if !strings.Contains(out, s) {
			t.Errorf("lost %s: %s", s, out)
		}
	}
	if n := len(m["component"].([]any)); n != 4 {
		t.Errorf("%d components, want 4 (the one with a local code and a string value has nothing left)", n)
	}
	p, out := run(t, newT(t, deid.Options{}), []byte(leakPatient))
	for _, s := range []string{`"MR"`, `"2106-3"`, `"2108-9"`} {
		if !strings.Contains(out, s) {
			t.Errorf("lost %s: %s", s, out)
		}
	}
	var states, countries []string
	for _, a := range p["address"].([]any) {
		am := a.(map[string]any)
		states = append(states, fmt.Sprint(am["state"]))
		countries = append(countries, fmt.Sprint(am["country"]))
	}
	if fmt.Sprint(states) != "[<nil> NH New Hampshire CA-ON]" || fmt.Sprint(countries) != "[<nil> US USA CAN]" {
		t.Errorf("states %v, countries %v", states, countries)
	}
}

func TestLeakDatesOver89(t *testing.T) {
	// The export year is 2026: any date in 1936 or before indicates an
	// age over 89, wherever it is and whoever it concerns.
	for _, o := range []deid.Options{{}, {DateShiftDays: 30}, {DateShiftDays: deid.MaxDateShiftDays}} {
		tr := newT(t, o)
		for _, body := range []string{
			leakObservation, leakQuestionnaireResponse,
			`{"resourceType":"Condition","subject":{"reference":"Patient/p1"},"onsetDateTime":"1936-12-31T23:00:00Z","recordedDate":"1936-06"}`,
			`{"resourceType":"Encounter","status":"finished","class":{"code":"AMB"},"period":{"start":"1937-01-02","end":"2020-01-01"}}`,
		} {
			_, out := run(t, tr, []byte(body))
			mustAbsent(t, out, `"1930`, `"1936`)
			if o.DateShiftDays == 0 && strings.Contains(out, `"1937"`) != strings.Contains(body, "1937") {
				t.Errorf("the year 1937 (age 89 at most) was not kept: %s", out)
			}
		}
	}
	// With a shift, a date just after the cutoff year may be moved into
	// it: it is removed then too.
	tr := newT(t, deid.Options{DateShiftDays: deid.MaxDateShiftDays})
	for i := range 20 {
		_, out := run(t, tr, []byte(fmt.Sprintf(`{"resourceType":"Condition","subject":{"reference":"Patient/s%d"},"onsetDateTime":"1937-01-05"}`, i)))
		mustAbsent(t, out, `"1936`, `"193`+"5", `"1934`)
	}
}

func TestLeakAgeAnswers(t *testing.T) {
	tr := newT(t, deid.Options{})
	m, _ := run(t, tr, []byte(leakObservation))
	want := `map[code:a comparator:>= system:http://unitsofmeasure.org unit:a value:90]`
	if _, has := m["valueInteger"]; has || fmt.Sprint(m["valueQuantity"]) != want {
		t.Errorf("age 96 as an integer: valueInteger %v, valueQuantity %v", m["valueInteger"], m["valueQuantity"])
	}
	c := m["component"].([]any)[2].(map[string]any)
	if _, has := c["valueInteger"]; has || fmt.Sprint(c["valueQuantity"]) != want {
		t.Errorf("component age 96: %v", c)
	}
	for _, tc := range []struct{ value, want string }{
		{`"valueInteger":45`, `"valueInteger":45`},
		{`"valueQuantity":{"value":97}`, `"value":90`},
		{`"valueQuantity":{"value":97,"unit":"years"}`, `"value":90`},
		{`"valueQuantity":{"value":1000,"unit":"months"}`, `"value":1000`},
		{`"valueQuantity":{"value":91,"unit":"a","system":"http://unitsofmeasure.org","code":"a"}`, `"value":90`},
	} {
		body := `{"resourceType":"Observation","status":"final","code":{"coding":[{"system":"http://loinc.org","code":"21612-7"}]},` + tc.value + `}`
		_, out := run(t, tr, []byte(body))
		if !strings.Contains(out, tc.want) {
			t.Errorf("%s: %s, want %s", tc.value, out, tc.want)
		}
	}
}

func TestQuantityUnits(t *testing.T) {
	tr := newT(t, deid.Options{})
	for _, tc := range []struct{ q, want string }{
		{`{"value":61.5,"unit":"kg","system":"http://unitsofmeasure.org","code":"kg"}`, `{"code":"kg","system":"http://unitsofmeasure.org","unit":"kg","value":61.5}`},
		{`{"value":120,"unit":"mm[Hg]","system":"http://unitsofmeasure.org","code":"mm[Hg]"}`, `{"code":"mm[Hg]","system":"http://unitsofmeasure.org","unit":"mm[Hg]","value":120}`},
		{`{"value":3,"unit":"Call 555-867-5309","system":"http://unitsofmeasure.org","code":"{tablets}"}`, `{"code":"{tablets}","system":"http://unitsofmeasure.org","value":3}`},
		{`{"value":3,"unit":"x","system":"http://unitsofmeasure.org","code":"{Call5558675309}"}`, `{"value":3}`},
		{`{"value":3,"unit":"tab","system":"http://hospital.example/units","code":"TAB-Zyxwvut"}`, `{"value":3}`},
	} {
		m, _ := run(t, tr, []byte(`{"resourceType":"Observation","status":"final","code":{"coding":[{"system":"http://loinc.org","code":"29463-7"}]},"valueQuantity":`+tc.q+`}`))
		b, _ := json.Marshal(m["valueQuantity"])
		if string(b) != tc.want {
			t.Errorf("%s became %s, want %s", tc.q, b, tc.want)
		}
	}
}

// TestCodeElements: a code element of a value set the schema lists must
// be a member; any other must be a short token (no spaces, no run of 5
// digits); birth sex must be of its value set.
func TestCodeElements(t *testing.T) {
	tr := newT(t, deid.Options{})
	m, out := run(t, tr, []byte(`{"resourceType":"Patient","gender":"QRCODE-Zyxwvut","language":"Call 555-867-5309",
	 "extension":[{"url":"http://hl7.org/fhir/us/core/StructureDefinition/us-core-birthsex","valueCode":"QRCODE-Zyxwvut"}]}`))
	mustAbsent(t, out, "QRCODE", "555-867", "birthsex")
	if _, has := m["gender"]; has {
		t.Error("a gender outside its value set was kept")
	}
	_, out = run(t, tr, []byte(`{"resourceType":"MedicationRequest","status":"5558675309","intent":"order","subject":{"reference":"Patient/p"},"language":"en-US",
	 "extension":[{"url":"http://hl7.org/fhir/us/core/StructureDefinition/us-core-birthsex","valueCode":"F"}]}`))
	mustAbsent(t, out, "5558675309")
	for _, s := range []string{`"intent":"order"`, `"language":"en-US"`} {
		if !strings.Contains(out, s) {
			t.Errorf("lost %s: %s", s, out)
		}
	}
	_, out = run(t, tr, []byte(`{"resourceType":"Patient","gender":"male","extension":[{"url":"http://hl7.org/fhir/us/core/StructureDefinition/us-core-birthsex","valueCode":"M"}]}`))
	if !strings.Contains(out, `"gender":"male"`) || !strings.Contains(out, `"valueCode":"M"`) {
		t.Errorf("gender or birth sex lost: %s", out)
	}
}
