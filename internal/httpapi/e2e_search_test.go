package httpapi_test

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/phivault/phivault/internal/apitest"
)

const (
	loinc    = "http://loinc.org"
	obsCat   = "http://terminology.hl7.org/CodeSystem/observation-category"
	npi      = "http://hl7.org/fhir/sid/us-npi"
	orgIdent = "https://github.com/synthetichealth/synthea"
)

func coding(system, code string) map[string]any {
	return map[string]any{"coding": []any{map[string]any{"system": system, "code": code}}}
}

func ref(r string) map[string]any { return map[string]any{"reference": r} }

// searchCase is one search and the symbolic names it must find exactly.
type searchCase struct {
	name  string
	query string // after "/fhir/"; {P1} and friends are replaced by ids
	want  []string
	order bool // the order of want matters
}

func TestE2ESearch(t *testing.T) {
	apitest.Run(t, func(t *testing.T, s *apitest.Server) {
		u := uniq()
		famA, famB := "Alpha"+u, "Beta"+u
		idA, idB := "a-"+u, "b-"+u
		ids := map[string]string{} // symbol -> Type/id
		create := func(sym string, res map[string]any) {
			t.Helper()
			id := s.Create(t, res)
			ids[sym] = res["resourceType"].(string) + "/" + id
		}
		bare := func(sym string) string { return strings.SplitN(ids[sym], "/", 2)[1] }

		create("P1", patient(idA, map[string]any{"gender": "male", "birthDate": "1980-05-17",
			"name": []any{map[string]any{"family": famA, "given": []any{"José"}}}}))
		create("P2", patient(idB, map[string]any{"gender": "female", "birthDate": "1980-06-01",
			"name": []any{map[string]any{"family": famA, "given": []any{"Maria"}}}}))
		create("P3", map[string]any{"resourceType": "Patient", "gender": "male", "birthDate": "1975-05-17",
			"name": []any{map[string]any{"family": famB, "given": []any{"Joseph"}}}})
		obs := func(sym, pat, code, when, cat, status string) {
			create(sym, observation(bare(pat), map[string]any{"code": coding(loinc, code), "effectiveDateTime": when,
				"category": []any{coding(obsCat, cat)}, "status": status}))
		}
		obs("O1", "P1", "8302-2", "2021-03-04T10:00:00Z", "vital-signs", "final")
		obs("O2", "P1", "29463-7", "2021-03-05T10:00:00Z", "vital-signs", "amended")
		obs("O3", "P1", "8302-2", "2022-01-01", "laboratory", "final")
		obs("O4", "P2", "8302-2", "2021-03-04T12:00:00Z", "vital-signs", "final")

		p1 := "Patient/" + bare("P1")
		create("Cond", map[string]any{"resourceType": "Condition", "subject": ref(p1), "code": coding("http://snomed.info/sct", "44054006"),
			"category": []any{coding("http://terminology.hl7.org/CodeSystem/condition-category", "encounter-diagnosis")}})
		create("Enc", map[string]any{"resourceType": "Encounter", "status": "finished", "class": map[string]any{"code": "AMB"},
			"subject": ref(p1), "period": map[string]any{"start": "2021-03-04T09:00:00Z", "end": "2021-03-04T11:00:00Z"}})
		create("Imm", map[string]any{"resourceType": "Immunization", "status": "completed", "vaccineCode": coding("http://hl7.org/fhir/sid/cvx", "140"),
			"patient": ref(p1), "occurrenceDateTime": "2020-10-01T10:00:00Z"})
		create("DR", map[string]any{"resourceType": "DiagnosticReport", "status": "final", "code": coding(loinc, "51990-0"), "subject": ref(p1),
			"effectiveDateTime": "2021-03-04T10:00:00Z"})
		create("Doc", map[string]any{"resourceType": "DocumentReference", "status": "current", "subject": ref(p1), "date": "2021-03-04T10:00:00Z",
			"content": []any{map[string]any{"attachment": map[string]any{"contentType": "text/plain", "data": "aGVsbG8="}}}})
		create("MR", map[string]any{"resourceType": "MedicationRequest", "status": "active", "intent": "order", "subject": ref(p1),
			"medicationCodeableConcept": coding("http://www.nlm.nih.gov/research/umls/rxnorm", "314076"), "authoredOn": "2021-03-04T10:00:00Z"})
		create("AI", map[string]any{"resourceType": "AllergyIntolerance", "patient": ref(p1), "code": coding("http://snomed.info/sct", "300916003"),
			"category": []any{"food"}, "recordedDate": "2019-01-01T00:00:00Z"})
		create("Proc", map[string]any{"resourceType": "Procedure", "status": "completed", "subject": ref(p1), "code": coding("http://snomed.info/sct", "430193006"),
			"performedDateTime": "2021-03-04T10:00:00Z"})
		create("Claim", map[string]any{"resourceType": "Claim", "status": "active", "type": coding("http://terminology.hl7.org/CodeSystem/claim-type", "institutional"),
			"use": "claim", "patient": ref(p1), "created": "2021-03-04T10:00:00Z", "provider": map[string]any{"display": "x"},
			"priority":  coding("http://terminology.hl7.org/CodeSystem/processpriority", "normal"),
			"insurance": []any{map[string]any{"sequence": 1, "focal": true, "coverage": map[string]any{"display": "x"}}}})
		create("EOB", map[string]any{"resourceType": "ExplanationOfBenefit", "status": "active", "type": coding("http://terminology.hl7.org/CodeSystem/claim-type", "institutional"),
			"use": "claim", "patient": ref(p1), "created": "2021-03-04T10:00:00Z", "insurer": map[string]any{"display": "x"}, "provider": map[string]any{"display": "x"},
			"outcome": "complete", "insurance": []any{map[string]any{"focal": true, "coverage": map[string]any{"display": "x"}}}})
		create("CT", map[string]any{"resourceType": "CareTeam", "status": "active", "subject": ref(p1),
			"period": map[string]any{"start": "2021-03-04T10:00:00Z"}})
		create("Pract", map[string]any{"resourceType": "Practitioner", "identifier": []any{map[string]any{"system": npi, "value": "npi-" + u}},
			"name": []any{map[string]any{"family": "Doc" + u, "given": []any{"Grégoire"}}}})
		create("Org", map[string]any{"resourceType": "Organization", "identifier": []any{map[string]any{"system": orgIdent, "value": "org-" + u}},
			"name": "Général Hospital " + u})
		create("Loc", map[string]any{"resourceType": "Location", "identifier": []any{map[string]any{"system": orgIdent, "value": "loc-" + u}},
			"name": "Ward " + u})

		expand := func(q string) string {
			for sym := range ids {
				q = strings.ReplaceAll(q, "{"+sym+"}", bare(sym))
			}
			return strings.NewReplacer("{famA}", famA, "{famB}", famB, "{idA}", idA, "{idB}", idB, "{sys}", testSystem, "{u}", u, "{famBl}", strings.ToLower(famB)).Replace(q)
		}
		run := func(t *testing.T, cases []searchCase) {
			for _, c := range cases {
				t.Run(c.name, func(t *testing.T) {
					q := expand(c.query)
					r := s.Do(t, "GET", "/fhir/"+q, nil, nil).Want(t, http.StatusOK)
					if r.JSON["type"] != "searchset" {
						t.Fatalf("type: got %v", r.JSON["type"])
					}
					var want []string
					for _, w := range c.want {
						want = append(want, ids[w])
					}
					got := r.IDs()
					if c.order {
						if !slices.Equal(got, want) {
							t.Errorf("%s: got %v, want in order %v", q, got, want)
						}
						return
					}
					sameSet(t, q, got, want)
				})
			}
		}

		t.Run("Patient", func(t *testing.T) {
			run(t, []searchCase{
				{name: "identifier system|value", query: "Patient?identifier={sys}|{idA}", want: []string{"P1"}},
				{name: "identifier value", query: "Patient?identifier={idA}", want: []string{"P1"}},
				{name: "identifier other system", query: "Patient?identifier=urn:other|{idA}", want: nil},
				{name: "identifier without system", query: "Patient?identifier=|{idA}", want: nil},
				{name: "identifier OR", query: "Patient?identifier={idA},{idB}", want: []string{"P1", "P2"}},
				{name: "name prefix", query: "Patient?name=jos&family={famA},{famB}", want: []string{"P1", "P3"}},
				{name: "name accent-insensitive", query: "Patient?name=jose&family={famA}", want: []string{"P1"}},
				{name: "name case-insensitive", query: "Patient?name=JOSÉ&family={famA},{famB}", want: []string{"P1", "P3"}},
				{name: "name by family", query: "Patient?name=alpha{u}", want: []string{"P1", "P2"}},
				{name: "family", query: "Patient?family={famA}", want: []string{"P1", "P2"}},
				{name: "family lower-case prefix", query: "Patient?family={famBl}", want: []string{"P3"}},
				{name: "family OR", query: "Patient?family={famA},{famB}", want: []string{"P1", "P2", "P3"}},
				{name: "family AND", query: "Patient?family={famA}&family={famB}", want: nil},
				{name: "given", query: "Patient?given=maria", want: []string{"P2"}},
				{name: "given AND prefixes", query: "Patient?given=jose&given=joseph&family={famA},{famB}", want: []string{"P3"}},
				{name: "name:exact", query: "Patient?name:exact=José&family={famA},{famB}", want: []string{"P1"}},
				{name: "name:exact is exact", query: "Patient?name:exact=jose&family={famA},{famB}", want: nil},
				{name: "birthdate day", query: "Patient?birthdate=1980-05-17&family={famA},{famB}", want: []string{"P1"}},
				{name: "birthdate eq day", query: "Patient?birthdate=eq1980-05-17&family={famA},{famB}", want: []string{"P1"}},
				{name: "birthdate month", query: "Patient?birthdate=1980-05&family={famA},{famB}", want: []string{"P1"}},
				{name: "birthdate year", query: "Patient?birthdate=1980&family={famA},{famB}", want: []string{"P1", "P2"}},
				{name: "birthdate OR", query: "Patient?birthdate=1975,1980-06-01&family={famA},{famB}", want: []string{"P2", "P3"}},
				{name: "birthdate ge", query: "Patient?birthdate=ge1980-05-18&family={famA},{famB}", want: []string{"P2"}},
				{name: "birthdate gt day", query: "Patient?birthdate=gt1980-05-17&family={famA},{famB}", want: []string{"P2"}},
				{name: "birthdate gt year", query: "Patient?birthdate=gt1975&family={famA},{famB}", want: []string{"P1", "P2"}},
				{name: "birthdate lt", query: "Patient?birthdate=lt1980-05-17&family={famA},{famB}", want: []string{"P3"}},
				{name: "birthdate le", query: "Patient?birthdate=le1980-05-17&family={famA},{famB}", want: []string{"P1", "P3"}},
				{name: "birthdate between", query: "Patient?birthdate=ge1980-05-17&birthdate=lt1980-06&family={famA},{famB}", want: []string{"P1"}},
				{name: "birthdate ne", query: "Patient?birthdate=ne1980&family={famA},{famB}", want: []string{"P3"}},
				{name: "birthdate sa", query: "Patient?birthdate=sa1979&family={famA},{famB}", want: []string{"P1", "P2"}},
				{name: "birthdate eb", query: "Patient?birthdate=eb1980-06&family={famA},{famB}", want: []string{"P1", "P3"}},
				{name: "birthdate ap", query: "Patient?birthdate=ap1980-05-20&family={famA},{famB}", want: []string{"P1", "P2"}},
				{name: "gender", query: "Patient?gender=male&family={famA},{famB}", want: []string{"P1", "P3"}},
				{name: "_id", query: "Patient?_id={P1},{P3}", want: []string{"P1", "P3"}},
				{name: "_id and family", query: "Patient?_id={P1},{P3}&family={famA}", want: []string{"P1"}},
			})
		})
		t.Run("Patient birthdate times refused", func(t *testing.T) {
			for _, v := range []string{"1980-05-17T10:00:00Z", "ge1980-05-17T10:00", "ne1980,1981"} {
				t.Run(v, func(t *testing.T) {
					r := s.Do(t, "GET", "/fhir/Patient?birthdate="+url.QueryEscape(v), nil, nil).WantOutcome(t, http.StatusBadRequest)
					if !strings.Contains(string(r.Body), "birthdate") {
						t.Errorf("the message does not name the parameter: %s", r)
					}
				})
			}
		})
		t.Run("Observation", func(t *testing.T) {
			run(t, []searchCase{
				{name: "patient Type/id", query: "Observation?patient=Patient/{P1}", want: []string{"O1", "O2", "O3"}},
				{name: "patient bare id", query: "Observation?patient={P1}", want: []string{"O1", "O2", "O3"}},
				{name: "patient absolute URL", query: "Observation?patient=https://example.org/fhir/Patient/{P1}", want: []string{"O1", "O2", "O3"}},
				{name: "subject Type/id", query: "Observation?subject=Patient/{P2}", want: []string{"O4"}},
				{name: "subject bare id", query: "Observation?subject={P2}", want: []string{"O4"}},
				{name: "subject:Patient", query: "Observation?subject:Patient={P1}", want: []string{"O1", "O2", "O3"}},
				{name: "patient OR", query: "Observation?patient={P1},{P2}&code=8302-2", want: []string{"O1", "O3", "O4"}},
				{name: "patient with no observations", query: "Observation?patient={P3}", want: nil},
				{name: "code system|code", query: "Observation?patient={P1}&code=http://loinc.org|8302-2", want: []string{"O1", "O3"}},
				{name: "code", query: "Observation?patient={P1}&code=29463-7", want: []string{"O2"}},
				{name: "code wrong system", query: "Observation?patient={P1}&code=http://snomed.info/sct|8302-2", want: nil},
				{name: "code OR", query: "Observation?patient={P1}&code=8302-2,29463-7", want: []string{"O1", "O2", "O3"}},
				{name: "code:not", query: "Observation?patient={P1}&code:not=8302-2", want: []string{"O2"}},
				{name: "date day", query: "Observation?patient={P1}&date=2021-03-04", want: []string{"O1"}},
				{name: "date month", query: "Observation?patient={P1}&date=2021-03", want: []string{"O1", "O2"}},
				{name: "date eq instant", query: "Observation?patient={P1}&date=eq2021-03-04T10:00:00Z", want: []string{"O1"}},
				{name: "date ne", query: "Observation?patient={P1}&date=ne2021-03-04", want: []string{"O2", "O3"}},
				{name: "date lt day", query: "Observation?patient={P1}&date=lt2021-03-05", want: []string{"O1"}},
				{name: "date le day", query: "Observation?patient={P1}&date=le2021-03-05", want: []string{"O1", "O2"}},
				{name: "date gt day", query: "Observation?patient={P1}&date=gt2021-03-05", want: []string{"O3"}},
				{name: "date ge day", query: "Observation?patient={P1}&date=ge2021-03-05", want: []string{"O2", "O3"}},
				{name: "date sa day", query: "Observation?patient={P1}&date=sa2021-03-04", want: []string{"O2", "O3"}},
				{name: "date eb day", query: "Observation?patient={P1}&date=eb2021-03-05", want: []string{"O1"}},
				{name: "date ap day", query: "Observation?patient={P1}&date=ap2021-03-04", want: []string{"O1", "O2"}},
				{name: "date lt boundary instant", query: "Observation?patient={P1}&date=lt2021-03-04T10:00:00Z", want: nil},
				{name: "date gt boundary instant", query: "Observation?patient={P1}&date=gt2021-03-04T10:00:00Z", want: []string{"O2", "O3"}},
				{name: "date ge and le same instant", query: "Observation?patient={P1}&date=ge2021-03-04T10:00:00Z&date=le2021-03-04T10:00:00Z", want: []string{"O1"}},
				{name: "date with offset", query: "Observation?patient={P1}&date=" + url.QueryEscape("2021-03-04T11:00:00+01:00"), want: []string{"O1"}},
				{name: "date range AND", query: "Observation?patient={P1}&date=ge2021-01-01&date=lt2022", want: []string{"O1", "O2"}},
				{name: "category", query: "Observation?patient={P1}&category=vital-signs", want: []string{"O1", "O2"}},
				{name: "category system|code", query: "Observation?patient={P1}&category=" + obsCat + "|laboratory", want: []string{"O3"}},
				{name: "status", query: "Observation?patient={P1}&status=amended", want: []string{"O2"}},
				{name: "status:not", query: "Observation?patient={P1}&status:not=amended", want: []string{"O1", "O3"}},
				{name: "code and date across patients", query: "Observation?code=8302-2&date=2021-03-04", want: []string{"O1", "O4"}},
			})
		})
		t.Run("other types", func(t *testing.T) {
			run(t, []searchCase{
				{name: "Condition patient", query: "Condition?patient={P1}", want: []string{"Cond"}},
				{name: "Condition code", query: "Condition?subject=Patient/{P1}&code=http://snomed.info/sct|44054006", want: []string{"Cond"}},
				{name: "Condition category", query: "Condition?patient={P1}&category=encounter-diagnosis", want: []string{"Cond"}},
				{name: "Condition other patient", query: "Condition?patient={P2}", want: nil},
				{name: "Encounter date", query: "Encounter?patient={P1}&date=2021-03-04", want: []string{"Enc"}},
				{name: "Encounter status", query: "Encounter?subject={P1}&status=finished", want: []string{"Enc"}},
				{name: "Encounter date outside", query: "Encounter?patient={P1}&date=gt2021-03-04", want: nil},
				{name: "Immunization", query: "Immunization?patient={P1}&date=2020-10&status=completed", want: []string{"Imm"}},
				{name: "DiagnosticReport", query: "DiagnosticReport?patient={P1}&code=51990-0&status=final", want: []string{"DR"}},
				{name: "DocumentReference", query: "DocumentReference?patient={P1}&status=current&date=2021", want: []string{"Doc"}},
				{name: "MedicationRequest", query: "MedicationRequest?patient={P1}&code=314076&status=active", want: []string{"MR"}},
				{name: "AllergyIntolerance", query: "AllergyIntolerance?patient={P1}&code=300916003&category=food", want: []string{"AI"}},
				{name: "Procedure", query: "Procedure?patient={P1}&code=430193006&date=2021-03-04", want: []string{"Proc"}},
				{name: "Claim", query: "Claim?patient={P1}&created=2021-03&status=active", want: []string{"Claim"}},
				{name: "ExplanationOfBenefit", query: "ExplanationOfBenefit?patient={P1}&created=ge2021-03-04&status=active", want: []string{"EOB"}},
				{name: "CareTeam", query: "CareTeam?patient={P1}&status=active&date=ge2021-03-04", want: []string{"CT"}},
				{name: "Practitioner identifier", query: "Practitioner?identifier=" + npi + "|npi-{u}", want: []string{"Pract"}},
				{name: "Practitioner name", query: "Practitioner?name=gregoire&name=doc{u}", want: []string{"Pract"}},
				{name: "Organization identifier", query: "Organization?identifier=org-{u}", want: []string{"Org"}},
				{name: "Organization name", query: "Organization?name=general%20hospital%20{u}", want: []string{"Org"}},
				{name: "Location identifier", query: "Location?identifier=" + orgIdent + "|loc-{u}", want: []string{"Loc"}},
				{name: "Location name", query: "Location?name=ward%20{u}", want: []string{"Loc"}},
				{name: "CareTeam open period not within a day", query: "CareTeam?patient={P1}&date=2021-03-04", want: nil},
				{name: "Location name mismatch", query: "Location?name=hospital%20{u}", want: nil},
			})
		})
		t.Run("sort", func(t *testing.T) {
			byID := []string{"O1", "O2", "O3"}
			slices.SortFunc(byID, func(a, b string) int { return strings.Compare(bare(a), bare(b)) })
			rev := slices.Clone(byID)
			slices.Reverse(rev)
			run(t, []searchCase{
				{name: "date", query: "Observation?patient={P1}&_sort=date", want: []string{"O1", "O2", "O3"}, order: true},
				{name: "-date", query: "Observation?patient={P1}&_sort=-date", want: []string{"O3", "O2", "O1"}, order: true},
				{name: "_lastUpdated", query: "Observation?patient={P1}&_sort=_lastUpdated", want: []string{"O1", "O2", "O3"}, order: true},
				{name: "-_lastUpdated", query: "Observation?patient={P1}&_sort=-_lastUpdated", want: []string{"O3", "O2", "O1"}, order: true},
				{name: "_id", query: "Observation?patient={P1}&_sort=_id", want: byID, order: true},
				{name: "-_id", query: "Observation?patient={P1}&_sort=-_id", want: rev, order: true},
				// Hashed values: the matches are decrypted and ordered (ADR 0038).
				{name: "code,-date", query: "Observation?patient={P1}&_sort=code,-date", want: []string{"O2", "O3", "O1"}, order: true},
				{name: "-status,date", query: "Observation?patient={P1}&_sort=-status,date", want: []string{"O1", "O3", "O2"}, order: true},
			})
			for _, bad := range []string{"value-quantity", "nosuch"} {
				t.Run("refused "+bad, func(t *testing.T) {
					s.Do(t, "GET", "/fhir/Observation?_sort="+bad, nil, nil).WantOutcome(t, http.StatusBadRequest)
				})
			}
		})
		t.Run("_lastUpdated", func(t *testing.T) {
			r := s.Do(t, "GET", "/fhir/Observation/"+bare("O1"), nil, nil).Want(t, http.StatusOK)
			lu := meta(r.JSON)["lastUpdated"].(string)
			run(t, []searchCase{
				{name: "ge own", query: "Observation?patient={P1}&_lastUpdated=ge" + url.QueryEscape(lu), want: []string{"O1", "O2", "O3"}},
				{name: "lt own", query: "Observation?patient={P1}&_lastUpdated=lt" + url.QueryEscape(lu), want: nil},
				{name: "gt 2000", query: "Observation?patient={P1}&_lastUpdated=gt2000", want: []string{"O1", "O2", "O3"}},
				{name: "lt 2000", query: "Observation?patient={P1}&_lastUpdated=lt2000", want: nil},
			})
		})
		t.Run("_count and _total", func(t *testing.T) {
			r := s.Do(t, "GET", "/fhir/Observation?patient="+bare("P1")+"&_count=1&_total=accurate", nil, nil).Want(t, http.StatusOK)
			if n, ok := r.Total(); !ok || n != 3 || len(r.Entries()) != 1 || r.Link("next") == "" {
				t.Errorf("_count=1&_total=accurate: total %d (%v), %d entries, next %q", n, ok, len(r.Entries()), r.Link("next"))
			}
			r = s.Do(t, "GET", "/fhir/Observation?patient="+bare("P1")+"&_count=0", nil, nil).Want(t, http.StatusOK)
			if n, _ := r.Total(); n != 3 || len(r.Entries()) != 0 {
				t.Errorf("_count=0: total %d, %d entries; want the count only", n, len(r.Entries()))
			}
			r = s.Do(t, "GET", "/fhir/Observation?patient="+bare("P1")+"&_summary=count", nil, nil).Want(t, http.StatusOK)
			if n, _ := r.Total(); n != 3 || len(r.Entries()) != 0 {
				t.Errorf("_summary=count: total %d, %d entries; want the count only", n, len(r.Entries()))
			}
			r = s.Do(t, "GET", "/fhir/Observation?patient="+bare("P1")+"&_count=100000", nil, nil).Want(t, http.StatusOK)
			if len(r.Entries()) != 3 {
				t.Errorf("_count=100000: %d entries", len(r.Entries()))
			}
			for _, bad := range []string{"-1", "abc", "1.5", ""} {
				t.Run("refused _count="+bad, func(t *testing.T) {
					s.Do(t, "GET", "/fhir/Observation?_count="+bad, nil, nil).WantOutcome(t, http.StatusBadRequest)
				})
			}
			s.Do(t, "GET", "/fhir/Observation?_total=maybe", nil, nil).WantOutcome(t, http.StatusBadRequest)
		})
		t.Run("paging", func(t *testing.T) {
			var want []string
			for i := range 11 {
				id := s.Create(t, observation(bare("P3"), map[string]any{"effectiveDateTime": fmt.Sprintf("2020-01-%02dT00:00:00Z", i+1)}))
				want = append(want, "Observation/"+id)
			}
			for _, sortBy := range []string{"", "&_sort=date", "&_sort=-_lastUpdated", "&_sort=_id"} {
				t.Run("sort"+sortBy, func(t *testing.T) {
					pages := s.SearchAll(t, "/fhir/Observation?patient="+bare("P3")+"&_count=3"+sortBy)
					var got []string
					for _, p := range pages {
						if len(p.Entries()) > 3 {
							t.Errorf("a page of _count=3 has %d entries", len(p.Entries()))
						}
						got = append(got, p.IDs()...)
					}
					if len(pages) != 4 {
						t.Errorf("pages: got %d, want 4 for 11 results at _count=3", len(pages))
					}
					sameSet(t, "all pages", got, want)
				})
			}
			t.Run("no search values in links", func(t *testing.T) {
				pages := s.SearchAll(t, "/fhir/Patient?family="+famA+"&_count=1")
				var got []string
				for _, p := range pages {
					got = append(got, p.IDs()...)
					for _, l := range p.Links() {
						if strings.Contains(strings.ToLower(l), strings.ToLower(famA)) {
							t.Errorf("link %q contains the searched family name", l)
						}
					}
				}
				sameSet(t, "family pages", got, []string{ids["P1"], ids["P2"]})
			})
			t.Run("cursor bound to its type", func(t *testing.T) {
				r := s.Do(t, "GET", "/fhir/Patient?family="+famA+"&_count=1", nil, nil).Want(t, http.StatusOK)
				next := r.Link("next")
				if next == "" {
					t.Fatal("no next link")
				}
				s.Do(t, "GET", strings.Replace(next, "/fhir/Patient?", "/fhir/Observation?", 1), nil, nil).WantOutcome(t, http.StatusBadRequest)
				s.Do(t, "GET", "/fhir/Patient?_page=AAAA", nil, nil).WantOutcome(t, http.StatusBadRequest)
			})
		})
		t.Run("POST _search", func(t *testing.T) {
			cases := []struct {
				name, path, form string
				want             []string
			}{
				{"form only", "/fhir/Patient/_search", "family=" + famA, []string{"P1", "P2"}},
				{"form and query", "/fhir/Patient/_search?gender=female", "family=" + famA, []string{"P2"}},
				{"form OR", "/fhir/Observation/_search", "patient=" + bare("P1") + "&code=" + url.QueryEscape(loinc+"|29463-7"), []string{"O2"}},
			}
			for _, c := range cases {
				t.Run(c.name, func(t *testing.T) {
					r := s.Do(t, "POST", c.path, c.form, apitest.H{"Content-Type": "application/x-www-form-urlencoded"}).Want(t, http.StatusOK)
					var want []string
					for _, w := range c.want {
						want = append(want, ids[w])
					}
					sameSet(t, c.name, r.IDs(), want)
				})
			}
		})
		t.Run("unknown parameters", func(t *testing.T) {
			cases := []struct {
				name, query string
				lenient     bool
				want        int
			}{
				{"strict unknown", "Patient?family=" + famA + "&shoesize=42", false, 400},
				{"strict unknown control", "Patient?family=" + famA + "&_include=Patient:organization", false, 400},
				{"strict chained to an unknown parameter", "Observation?subject.shoesize=x", false, 400},
				{"chained deeper than two levels", "Observation?encounter.subject:Patient.organization.name=x", false, 400},
				{"strict _sort by a quantity", "Observation?subject=Patient/x&_sort=value-quantity", false, 400},
				{"strict :contains", "Patient?name:contains=jo", false, 400},
				{"strict bad modifier", "Patient?gender:exact=male", false, 400},
				{"lenient unknown", "Patient?family=" + famA + "&shoesize=42", true, 200},
				{"lenient unknown control", "Patient?family=" + famA + "&_include=Patient:organization", true, 200},
			}
			for _, c := range cases {
				t.Run(c.name, func(t *testing.T) {
					h := apitest.H{}
					if c.lenient {
						h["Prefer"] = "handling=lenient"
					}
					r := s.Do(t, "GET", "/fhir/"+c.query, nil, h)
					if c.want != 200 {
						r.WantOutcome(t, c.want)
						return
					}
					r.Want(t, c.want)
					want := []string{ids["P1"], ids["P2"]}
					if c.lenient {
						// The ignored parameter is named in an outcome entry.
						want = append(want, "OperationOutcome/")
						if !outcomeNames(r, strings.Split(strings.Split(c.query, "&")[1], "=")[0]) {
							t.Errorf("%s: no outcome entry names the ignored parameter: %s", c.query, r)
						}
					}
					sameSet(t, c.query, r.IDs(), want)
				})
			}
		})
	})
}
