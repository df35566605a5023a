package deid_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/phivault/phivault/internal/deid"
)

// now is the export time of the tests.
var now = time.Date(2026, 12, 8, 12, 0, 0, 0, time.UTC)

func newT(t *testing.T, o deid.Options) *deid.Transformer {
	t.Helper()
	if o.Now.IsZero() {
		o.Now = now
	}
	tr, err := deid.New(o)
	if err != nil {
		t.Fatal(err)
	}
	return tr
}

func fixture(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// run transforms body and returns the output as a tree and as text.
func run(t *testing.T, tr *deid.Transformer, body []byte) (map[string]any, string) {
	t.Helper()
	var h struct{ ResourceType string }
	if err := json.Unmarshal(body, &h); err != nil {
		t.Fatal(err)
	}
	out, err := tr.Transform(h.ResourceType, body)
	if err != nil {
		t.Fatalf("Transform: %v", err)
	}
	var m map[string]any
	if err := json.Unmarshal(out, &m); err != nil {
		t.Fatalf("output is not JSON: %v", err)
	}
	return m, string(out)
}

func mustAbsent(t *testing.T, out string, values ...string) {
	t.Helper()
	lo := strings.ToLower(out)
	for _, v := range values {
		if strings.Contains(lo, strings.ToLower(v)) {
			t.Errorf("the output holds %q", v)
		}
	}
}

func TestPatientIdentifiersRemoved(t *testing.T) {
	tr := newT(t, deid.Options{})
	m, out := run(t, tr, fixture(t, "patient.json"))
	mustAbsent(t, out,
		// names, the contact's name, the narrative
		"Ollivander", "Marguerite", "Aurelia", "Mrs.", "Bartholomew", "Elmstead",
		// telecom, URLs, photo
		"555-867-5309", "867-5309", "m.ollivander", "example.net", "SGVsbG8", "photos.example",
		// address below the state, geolocation, birth place, maiden name
		"Wexhampton", "Essex", "01944", "1234", "42.578", "70.771", "Tintagelford", "Featherstonhaugh", "SW1A",
		// identifiers and their issuers, ids, references, displays
		"999-41-7723", "41-7723", "MRN-00417723", "S99917723", "hospital.example.org", "2.16.840.1.113883.4.3.25",
		"pat-1", "prac-7", "org-2", "ehr.example.org", "Fairweather", "Ignatius",
		// dates finer than the year, meta
		"07-19", "1961-", "2023-11", "04:12", "hospital-feed", "import-hash", "9f8e7d6c5b4a", "lastUpdated", "versionId",
		// free text
		"Cornish", "Married to",
	)
	for k, want := range map[string]any{"birthDate": "1961", "deceasedDateTime": "2023", "gender": "female"} {
		if m[k] != want {
			t.Errorf("%s = %v, want %v", k, m[k], want)
		}
	}
	for _, k := range []string{"name", "telecom", "photo", "text", "contact"} {
		if c, ok := m["contact"].([]any); k == "contact" && ok {
			if s := fmt.Sprint(c); strings.Contains(s, "name") || strings.Contains(s, "telecom") {
				t.Errorf("contact keeps %s", s)
			}
			continue
		}
		if _, ok := m[k]; ok {
			t.Errorf("%s kept", k)
		}
	}
	// Kept: the SSN system (it names a kind, not an issuer), coded
	// race, birth sex, US Core profile, marital status code.
	for _, s := range []string{"http://hl7.org/fhir/sid/us-ssn", "2106-3", "us-core-birthsex", "us-core-patient", `"M"`, "v3-MaritalStatus"} {
		if !strings.Contains(out, s) {
			t.Errorf("the output lost %q", s)
		}
	}
	if strings.Contains(out, "Married") || !strings.Contains(fmt.Sprint(m["maritalStatus"]), "coding") {
		t.Errorf("maritalStatus = %v", m["maritalStatus"])
	}
	// The resource is marked.
	sec := fmt.Sprint(m["meta"].(map[string]any)["security"])
	for _, c := range []string{"PSEUDED", "REDACTED", "v3-Confidentiality"} {
		if !strings.Contains(sec, c) {
			t.Errorf("meta.security %s lacks %s", sec, c)
		}
	}
}

func TestPostalCodes(t *testing.T) {
	tr := newT(t, deid.Options{})
	m, _ := run(t, tr, fixture(t, "patient.json"))
	var got []string
	for _, a := range m["address"].([]any) {
		am := a.(map[string]any)
		for k := range am {
			if k != "postalCode" && k != "state" && k != "country" && k != "use" && k != "type" {
				t.Errorf("address keeps %s", k)
			}
		}
		z, _ := am["postalCode"].(string)
		got = append(got, z)
	}
	// 01944-1234 → 019; 03601 (area 036, restricted) → 000; a UK
	// postcode → dropped.
	if want := []string{"019", "000", ""}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("postal codes %q, want %q", got, want)
	}
}

func TestRestrictedZIPList(t *testing.T) {
	tr := newT(t, deid.Options{})
	for _, z := range []string{"036", "059", "063", "102", "203", "556", "692", "790", "821", "823", "830", "831", "878", "879", "884", "890", "893"} {
		body := fmt.Sprintf(`{"resourceType":"Location","address":{"postalCode":"%s42"}}`, z)
		m, _ := run(t, tr, []byte(body))
		if got := m["address"].(map[string]any)["postalCode"]; got != "000" {
			t.Errorf("ZIP %s42 became %v, want 000", z, got)
		}
	}
	m, _ := run(t, tr, []byte(`{"resourceType":"Location","address":{"postalCode":"03701"},"position":{"latitude":43.1,"longitude":-72.2}}`))
	if got := m["address"].(map[string]any)["postalCode"]; got != "037" {
		t.Errorf("ZIP 03701 became %v, want 037", got)
	}
	if _, ok := m["position"]; ok {
		t.Error("Location.position kept")
	}
}

func TestDatesToTheYear(t *testing.T) {
	tr := newT(t, deid.Options{})
	m, out := run(t, tr, fixture(t, "observation.json"))
	p := m["effectivePeriod"].(map[string]any)
	if p["start"] != "2023" || p["end"] != "2023" {
		t.Errorf("effectivePeriod = %v", p)
	}
	if _, ok := m["issued"]; ok {
		t.Error("an instant was kept (it has no year-only form)")
	}
	if regexp.MustCompile(`"[0-9]{4}-`).MatchString(out) {
		t.Errorf("a date finer than the year: %s", out)
	}
}

func TestAgeOver89(t *testing.T) {
	tr := newT(t, deid.Options{})
	for _, tc := range []struct {
		birth string
		over  bool
	}{
		{now.AddDate(-95, 0, 0).Format(time.DateOnly), true},
		{now.AddDate(-90, 0, 0).Format(time.DateOnly), true},
		// 89 until tomorrow, but born in a year that indicates 90 or
		// older (export year - 90): the year goes, into the category.
		{now.AddDate(-90, 0, 1).Format(time.DateOnly), true},
		{now.AddDate(-89, 0, 0).Format(time.DateOnly), false},
		{now.AddDate(-89, 0, 0).Format("2006"), false}, // 88 or 89
		{now.AddDate(-90, 0, 0).Format("2006"), true},  // 89 or 90: errs towards 90+
		{now.AddDate(-90, 0, 0).Format("2006-01"), true},
	} {
		body := fmt.Sprintf(`{"resourceType":"Patient","id":"p","birthDate":%q,"deceasedBoolean":false}`, tc.birth)
		m, out := run(t, tr, []byte(body))
		_, has := m["birthDate"]
		marked := strings.Contains(out, deid.Over90URL) && strings.Contains(out, `"masked"`)
		if has == tc.over || marked != tc.over {
			t.Errorf("born %s: birthDate kept %v, marked 90+ %v; want 90+ %v", tc.birth, has, marked, tc.over)
		}
		if !tc.over && m["birthDate"] != tc.birth[:4] {
			t.Errorf("born %s: birthDate %v", tc.birth, m["birthDate"])
		}
	}
	// Ages in any resource: 93.5 years becomes ">= 90 a".
	m, _ := run(t, tr, fixture(t, "observation.json"))
	if q := m["valueQuantity"].(map[string]any); fmt.Sprint(q["value"]) != "90" || q["comparator"] != ">=" || q["code"] != "a" {
		t.Errorf("valueQuantity = %v", q)
	}
	for _, tc := range []struct{ q, want string }{
		{`{"value":1100,"unit":"mo","system":"http://unitsofmeasure.org","code":"mo"}`, "90"},
		{`{"value":33000,"code":"d","system":"http://unitsofmeasure.org"}`, "90"},
		{`{"value":45,"unit":"a","system":"http://unitsofmeasure.org","code":"a"}`, "45"},
		{`{"value":120,"unit":"kg","system":"http://unitsofmeasure.org","code":"kg"}`, "120"},
	} {
		body := `{"resourceType":"Condition","subject":{"reference":"Patient/p"},"onsetAge":` + tc.q + `}`
		m, _ := run(t, tr, []byte(body))
		if got := fmt.Sprint(m["onsetAge"].(map[string]any)["value"]); got != tc.want {
			t.Errorf("onsetAge %s became %s, want %s", tc.q, got, tc.want)
		}
	}
}

func TestFreeText(t *testing.T) {
	tr := newT(t, deid.Options{})
	_, out := run(t, tr, fixture(t, "observation.json"))
	mustAbsent(t, out, "Rosalind", "Gloucester", "Wilhelmina", "Trask", "Wexhampton", "Glucometer", "4471", "LOT-88123", "00844588003288", "7654321")
	// Displays and CodeableConcept.text are free text: removed, even
	// when the text equals a display; system and code stay.
	if strings.Contains(out, `"text"`) || strings.Contains(out, `"display":"Age"`) || !strings.Contains(out, `"30525-0"`) {
		t.Errorf("code.text or a display kept, or the code lost: %s", out)
	}
	_, out = run(t, tr, fixture(t, "bundle.json"))
	mustAbsent(t, out, "Eustace", "neighbour", "Rosalind", "rosalind@", "1990-10")
}

func TestPseudonymsConsistent(t *testing.T) {
	tr := newT(t, deid.Options{})
	pat, _ := run(t, tr, fixture(t, "patient.json"))
	obs, out := run(t, tr, fixture(t, "observation.json"))
	pid := pat["id"].(string)
	if !regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`).MatchString(pid) {
		t.Errorf("pseudonym %q is not a UUID", pid)
	}
	subj := obs["subject"].(map[string]any)
	if subj["reference"] != "Patient/"+pid || subj["display"] != nil {
		t.Errorf("subject = %v, want Patient/%s without display", subj, pid)
	}
	// The conditional reference is dropped; the contained device is
	// referenced by its pseudonym.
	if strings.Contains(out, "Practitioner?") || strings.Contains(out, "9999917723") {
		t.Error("a conditional reference was kept")
	}
	dev := obs["contained"].([]any)[0].(map[string]any)
	if obs["device"].(map[string]any)["reference"] != "#"+dev["id"].(string) {
		t.Errorf("contained reference %v, contained id %v", obs["device"], dev["id"])
	}
	// urn:uuid and fullUrl: the Bundle's Encounter matches the
	// Observation's encounter reference, and its subject the Patient.
	b, _ := run(t, tr, fixture(t, "bundle.json"))
	e := b["entry"].([]any)[0].(map[string]any)
	enc := e["resource"].(map[string]any)
	if obs["encounter"].(map[string]any)["reference"] != e["fullUrl"] || e["fullUrl"] != "urn:uuid:"+enc["id"].(string) {
		t.Errorf("fullUrl %v, encounter id %v, reference %v", e["fullUrl"], enc["id"], obs["encounter"])
	}
	if enc["subject"].(map[string]any)["reference"] != "urn:uuid:"+pid {
		t.Errorf("the Encounter's subject %v, want urn:uuid:%s", enc["subject"], pid)
	}
	// An absolute fullUrl becomes relative, the same as a reference.
	rp := b["entry"].([]any)[1].(map[string]any)
	if rp["fullUrl"] != "RelatedPerson/"+rp["resource"].(map[string]any)["id"].(string) {
		t.Errorf("fullUrl %v", rp["fullUrl"])
	}
	// Identifier values: the same value, the same pseudonym, in one
	// export; another export: another pseudonym.
	ssn := pat["identifier"].([]any)[0].(map[string]any)["value"].(string)
	again, _ := run(t, tr, fixture(t, "patient.json"))
	if again["identifier"].([]any)[0].(map[string]any)["value"] != ssn || again["id"] != pid {
		t.Error("the same export gave two pseudonyms to one value")
	}
	other, _ := run(t, newT(t, deid.Options{}), fixture(t, "patient.json"))
	if other["id"] == pid || other["identifier"].([]any)[0].(map[string]any)["value"] == ssn {
		t.Error("two exports share a pseudonym")
	}
}

func TestDateShift(t *testing.T) {
	tr := newT(t, deid.Options{DateShiftDays: 30})
	shiftOf := func(got, orig string) int {
		g, err1 := time.Parse(time.DateOnly, got[:10])
		o, err2 := time.Parse(time.DateOnly, orig)
		if err1 != nil || err2 != nil {
			t.Fatalf("dates %q, %q", got, orig)
		}
		return int(g.Sub(o).Hours() / 24)
	}
	offsets := map[int]bool{}
	for i := range 20 {
		pid := fmt.Sprintf("p%d", i)
		p, _ := run(t, tr, []byte(fmt.Sprintf(`{"resourceType":"Patient","id":%q,"birthDate":"1980-06-15"}`, pid)))
		o, _ := run(t, tr, []byte(fmt.Sprintf(`{"resourceType":"Observation","status":"final","code":{"text":"x"},"subject":{"reference":"Patient/%s"},"effectiveDateTime":"2020-01-10T23:30:00-05:00"}`, pid)))
		e, _ := run(t, tr, []byte(fmt.Sprintf(`{"resourceType":"Encounter","status":"finished","class":{"code":"AMB"},"subject":{"reference":"urn:uuid:%s"},"period":{"start":"2020-01-11"}}`, pid)))
		s1 := shiftOf(p["birthDate"].(string), "1980-06-15")
		s2 := shiftOf(o["effectiveDateTime"].(string), "2020-01-11") // 23:30 -05:00 is the 11th in UTC
		s3 := shiftOf(e["period"].(map[string]any)["start"].(string), "2020-01-11")
		if s1 != s2 || s2 != s3 || s1 < -30 || s1 > 30 {
			t.Errorf("patient %d: shifts %d, %d, %d", i, s1, s2, s3)
		}
		if !strings.HasSuffix(o["effectiveDateTime"].(string), "Z") {
			t.Errorf("a shifted time keeps its offset: %v", o["effectiveDateTime"])
		}
		offsets[s1] = true
	}
	if len(offsets) < 5 {
		t.Errorf("20 patients share %d offsets", len(offsets))
	}
	if _, err := deid.New(deid.Options{DateShiftDays: deid.MaxDateShiftDays + 1}); err == nil {
		t.Error("a shift over the maximum was accepted")
	}
}

func TestFailClosed(t *testing.T) {
	tr := newT(t, deid.Options{})
	for name, tc := range map[string]struct {
		typ, body string
		err       error
	}{
		"modifier extension": {"Observation", `{"resourceType":"Observation","status":"final","code":{"text":"x"},"modifierExtension":[{"url":"https://x.example/neg","valueBoolean":true}]}`, deid.ErrDropped},
		"nested modifier":    {"Observation", `{"resourceType":"Observation","status":"final","code":{"text":"x"},"component":[{"code":{"text":"y"},"modifierExtension":[{"url":"https://x.example/neg","valueBoolean":true}]}]}`, deid.ErrDropped},
		"Binary":             {"Binary", `{"resourceType":"Binary","contentType":"text/plain","data":"aGVsbG8="}`, deid.ErrDropped},
		"not JSON":           {"Patient", `{"resourceType":"Patient",`, deid.ErrInput},
		"another type":       {"Patient", `{"resourceType":"Observation","status":"final","code":{"text":"x"}}`, deid.ErrInput},
		"not R4":             {"Project", `{"resourceType":"Project"}`, deid.ErrInput},
	} {
		_, err := tr.Transform(tc.typ, []byte(tc.body))
		if !errors.Is(err, tc.err) {
			t.Errorf("%s: %v, want %v", name, err, tc.err)
		}
	}
	// Unknown elements and extensions are dropped and counted.
	m, out := run(t, tr, []byte(`{"resourceType":"Patient","id":"x","favouriteColour":"teal-77","extension":[{"url":"https://x.example/nickname","valueString":"Bubbles-91"}],"gender":"male"}`))
	mustAbsent(t, out, "teal-77", "Bubbles-91", "favouriteColour")
	if m["gender"] != "male" {
		t.Error("gender lost")
	}
	r := tr.Report()
	if r.Removed["Patient"]["element not in the R4 schema"] == 0 || r.Removed["Patient"]["extension not understood"] == 0 ||
		r.Dropped["Observation"]["modifier extension not understood"] != 2 || r.Dropped["Binary"]["Binary resource"] != 1 {
		t.Errorf("report: %+v", r)
	}
	if b, _ := json.Marshal(r); strings.Contains(string(b), "teal") || strings.Contains(string(b), "Bubbles") {
		t.Error("the report holds a value")
	}
}

func TestConcurrentUse(t *testing.T) {
	tr := newT(t, deid.Options{DateShiftDays: 10})
	body := fixture(t, "patient.json")
	want, err := tr.Transform("Patient", body)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 20 {
				got, err := tr.Transform("Patient", body)
				if err != nil || string(got) != string(want) {
					t.Error("concurrent Transform gave another answer")
					return
				}
			}
		})
	}
	wg.Wait()
	if n := tr.Report().Written["Patient"]; n != 161 {
		t.Errorf("written %d, want 161", n)
	}
}

// TestRelativesOver89: the rule covers relatives too.
func TestRelativesOver89(t *testing.T) {
	tr := newT(t, deid.Options{})
	old := now.AddDate(-93, 0, 0).Format(time.DateOnly)
	for _, body := range []string{
		`{"resourceType":"RelatedPerson","patient":{"reference":"Patient/p"},"birthDate":"` + old + `"}`,
		`{"resourceType":"FamilyMemberHistory","status":"completed","patient":{"reference":"Patient/p"},"relationship":{"text":"x"},"bornDate":"` + old + `"}`,
	} {
		m, out := run(t, tr, []byte(body))
		if strings.Contains(out, old[:4]) || !strings.Contains(out, deid.Over90URL) {
			t.Errorf("%v: the birth year of a relative of 93 kept, or no 90-or-older mark", m["resourceType"])
		}
	}
}
