package httpapi_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/phivault/phivault/internal/apitest"
)

// The penetration test's patient: the SSN is coded (us-ssn), and copied
// into the narrative, a contained RelatedPerson's us-ssn identifier, an
// identifier typed only by type.text "SSN", an extension and a contact's
// telecom; a driver's licence typed DL.
const (
	maskSSN = "999-45-7835"
	maskDL  = "D7730412"
)

func maskedPatient(mrn string) map[string]any {
	return patient(mrn, map[string]any{
		"identifier": []any{
			map[string]any{"system": testSystem, "value": mrn},
			map[string]any{"system": "http://hl7.org/fhir/sid/us-ssn", "value": maskSSN},
			map[string]any{"type": map[string]any{"text": "SSN"}, "value": maskSSN},
			map[string]any{"system": "urn:oid:2.16.840.1.113883.4.3.25",
				"type":  map[string]any{"coding": []any{map[string]any{"system": "http://terminology.hl7.org/CodeSystem/v2-0203", "code": "DL"}}},
				"value": maskDL},
		},
		"text": map[string]any{"status": "generated",
			"div": `<div xmlns="http://www.w3.org/1999/xhtml">Jane Roe, SSN ` + maskSSN + `</div>`},
		"contained": []any{map[string]any{"resourceType": "RelatedPerson", "id": "mother",
			"patient":    map[string]any{"reference": "#"},
			"identifier": []any{map[string]any{"system": "http://hl7.org/fhir/sid/us-ssn", "value": maskSSN}},
			"name":       []any{map[string]any{"family": "Roe"}}}},
		"link":      []any{map[string]any{"other": map[string]any{"reference": "#mother"}, "type": "seealso"}},
		"extension": []any{map[string]any{"url": "http://example.org/fhir/StructureDefinition/registration-note", "valueString": "SSN " + maskSSN}},
		"contact":   []any{map[string]any{"name": map[string]any{"family": "Roe"}, "telecom": []any{map[string]any{"system": "phone", "value": maskSSN}}}},
		"telecom":   []any{map[string]any{"system": "phone", "value": "555-0100"}},
		"name":      []any{map[string]any{"family": "Roe", "given": []any{"Jane"}}},
	})
}

// withoutContact is body (a resource or a Bundle) without the contact
// elements of its resources: the one copy of the SSN masking does not
// reach (a telecom value is free text, not pattern-matched).
func withoutContact(t *testing.T, body []byte) string {
	t.Helper()
	var m any
	if err := json.Unmarshal(body, &m); err != nil {
		t.Fatal(err)
	}
	var strip func(any)
	strip = func(x any) {
		switch v := x.(type) {
		case map[string]any:
			delete(v, "contact")
			for _, y := range v {
				strip(y)
			}
		case []any:
			for _, y := range v {
				strip(y)
			}
		}
	}
	strip(m)
	b, _ := json.Marshal(m)
	return string(b)
}

// TestAuthzMaskCopies: a masked view hides the SSN's copies outside the
// coded identifier: the narrative is withheld, contained resources are
// masked, identifiers typed by text, and free-text extensions.
func TestAuthzMaskCopies(t *testing.T) {
	apitest.Run(t, func(t *testing.T, s *apitest.Server) {
		mrn := uniq()
		pid := s.Create(t, maskedPatient(mrn))
		claim := s.Create(t, map[string]any{"resourceType": "Claim", "status": "active",
			"type": coding("http://terminology.hl7.org/CodeSystem/claim-type", "institutional"),
			"use":  "claim", "patient": map[string]any{"reference": "Patient/" + pid}, "created": "2021-03-04T10:00:00Z",
			"provider":  map[string]any{"display": "x"},
			"priority":  coding("http://terminology.hl7.org/CodeSystem/processpriority", "normal"),
			"insurance": []any{map[string]any{"sequence": 1, "focal": true, "coverage": map[string]any{"display": "x"}}}})
		desk := newActor(t, s, "front-desk", "")
		billing := newActor(t, s, "billing", "")
		for _, c := range []struct {
			who  actor
			path string
		}{
			{desk, "/fhir/Patient/" + pid},
			{desk, "/fhir/Patient/" + pid + "?_summary=text"},
			{desk, "/fhir/Patient?_id=" + pid},
			{desk, "/fhir/Patient/" + pid + "/_history/1"},
			{billing, "/fhir/Patient/" + pid},
			{billing, "/fhir/Claim?_id=" + claim + "&_include=Claim:patient"},
		} {
			r := s.Do(t, "GET", c.path, nil, c.who.headers).Want(t, http.StatusOK)
			if !strings.Contains(string(r.Body), `"REDACTED"`) {
				t.Errorf("%s %s: not labelled REDACTED: %s", c.who.role, c.path, r.Body)
			}
			if got := withoutContact(t, r.Body); strings.Contains(got, maskSSN) || strings.Contains(got, maskDL) {
				t.Errorf("%s %s shows a masked identifier outside contact: %s", c.who.role, c.path, got)
			}
			if !strings.Contains(string(r.Body), "Narrative withheld") {
				t.Errorf("%s %s: the narrative is not withheld: %s", c.who.role, c.path, r.Body)
			}
		}
		// What the mask keeps is still there.
		r := s.Do(t, "GET", "/fhir/Patient/"+pid, nil, desk.headers).Want(t, http.StatusOK)
		body := string(r.Body)
		for _, want := range []string{mrn, "555-0100", `"mother"`, `"Roe"`, `"status":"empty"`} {
			if !strings.Contains(body, want) {
				t.Errorf("front desk's view lacks %s: %s", want, body)
			}
		}
		// The unmasked caller sees every copy.
		r = s.Do(t, "GET", "/fhir/Patient/"+pid, nil, nil).Want(t, http.StatusOK)
		if n := strings.Count(string(r.Body), maskSSN); n != 6 || strings.Contains(string(r.Body), "REDACTED") {
			t.Errorf("the system caller sees the SSN %d times (want 6): %s", n, r.Body)
		}
	})
}

// TestAuthzMaskUpdateKeeps: front desk edits the phone of a patient it
// sees masked; the update keeps what the mask hid, and a masked caller
// cannot set or change masked identifiers.
func TestAuthzMaskUpdateKeeps(t *testing.T) {
	apitest.Run(t, func(t *testing.T, s *apitest.Server) {
		mrn := uniq()
		pid := s.Create(t, maskedPatient(mrn))
		orig := s.Do(t, "GET", "/fhir/Patient/"+pid, nil, nil).Want(t, http.StatusOK).JSON
		desk := newActor(t, s, "front-desk", "")

		check := func(what, phone string) {
			t.Helper()
			r := s.Do(t, "GET", "/fhir/Patient/"+pid, nil, nil).Want(t, http.StatusOK)
			got := r.JSON
			for _, k := range []string{"identifier", "text", "contained", "extension", "contact"} {
				if a, b := mustJSON(t, got[k]), mustJSON(t, orig[k]); a != b {
					t.Errorf("%s: %s changed:\n got %s\nwant %s", what, k, a, b)
				}
			}
			if strings.Contains(string(r.Body), "REDACTED") {
				t.Errorf("%s: the view's REDACTED label was stored: %s", what, r.Body)
			}
			if !strings.Contains(mustJSON(t, got["telecom"]), phone) {
				t.Errorf("%s: the phone edit was lost: %s", what, r.Body)
			}
		}

		// PUT of the masked view with a new phone.
		view := s.Do(t, "GET", "/fhir/Patient/"+pid, nil, desk.headers).Want(t, http.StatusOK).JSON
		view["telecom"] = []any{map[string]any{"system": "phone", "value": "555-0101"}}
		r := s.Do(t, "PUT", "/fhir/Patient/"+pid, view, desk.wheaders).Want(t, http.StatusOK)
		if got := withoutContact(t, r.Body); strings.Contains(got, maskSSN) || strings.Contains(got, maskDL) {
			t.Errorf("the update's answer shows a masked identifier: %s", r.Body)
		}
		check("PUT", "555-0101")

		// A masked caller's own masked identifiers, narrative and free-text
		// extension are not stored: the current version's stay.
		view = s.Do(t, "GET", "/fhir/Patient/"+pid, nil, desk.headers).Want(t, http.StatusOK).JSON
		ids, _ := view["identifier"].([]any)
		view["identifier"] = append(ids, map[string]any{"system": "http://hl7.org/fhir/sid/us-ssn", "value": "999-00-0001"},
			map[string]any{"type": map[string]any{"text": "Driver's License"}, "value": "X1"})
		view["text"] = map[string]any{"status": "generated", "div": `<div xmlns="http://www.w3.org/1999/xhtml">rewritten</div>`}
		view["extension"] = []any{map[string]any{"url": "http://example.org/fhir/StructureDefinition/registration-note", "valueString": "new"}}
		cs, _ := view["contained"].([]any)
		rp, _ := cs[0].(map[string]any)
		rp["identifier"] = []any{map[string]any{"system": "http://hl7.org/fhir/sid/us-ssn", "value": "999-00-0002"}}
		view["telecom"] = []any{map[string]any{"system": "phone", "value": "555-0102"}}
		s.Do(t, "PUT", "/fhir/Patient/"+pid, view, desk.wheaders).Want(t, http.StatusOK)
		check("PUT setting masked elements", "555-0102")

		// Conditional update (by the MRN, an unmasked system) and a
		// transaction entry take the same path.
		view = s.Do(t, "GET", "/fhir/Patient/"+pid, nil, desk.headers).Want(t, http.StatusOK).JSON
		view["telecom"] = []any{map[string]any{"system": "phone", "value": "555-0103"}}
		s.Do(t, "PUT", "/fhir/Patient?identifier="+url.QueryEscape(testSystem+"|"+mrn), view, desk.wheaders).Want(t, http.StatusOK)
		check("conditional PUT", "555-0103")

		view = s.Do(t, "GET", "/fhir/Patient/"+pid, nil, desk.headers).Want(t, http.StatusOK).JSON
		view["telecom"] = []any{map[string]any{"system": "phone", "value": "555-0104"}}
		s.Do(t, "POST", "/fhir", map[string]any{"resourceType": "Bundle", "type": "transaction", "entry": []any{map[string]any{
			"resource": view, "request": map[string]any{"method": "PUT", "url": "Patient/" + pid}}}}, desk.wheaders).Want(t, http.StatusOK)
		check("transaction PUT", "555-0104")

		// An unmasked caller still replaces what it sends.
		full := s.Do(t, "GET", "/fhir/Patient/"+pid, nil, nil).Want(t, http.StatusOK).JSON
		full["identifier"] = []any{map[string]any{"system": testSystem, "value": mrn}}
		s.Do(t, "PUT", "/fhir/Patient/"+pid, full, nil).Want(t, http.StatusOK)
		if r := s.Do(t, "GET", "/fhir/Patient/"+pid, nil, nil).Want(t, http.StatusOK); strings.Contains(mustJSON(t, r.JSON["identifier"]), maskSSN) {
			t.Errorf("the system caller's update did not remove the SSN: %s", r.Body)
		}
	})
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestAuthzMaskIdentifierSearch: a caller shown patients masked cannot
// use identifier search as a lookup oracle for the masked values; a
// value in an unmasked system still finds the patient.
func TestAuthzMaskIdentifierSearch(t *testing.T) {
	apitest.Run(t, func(t *testing.T, s *apitest.Server) {
		mrn := uniq()
		pid := s.Create(t, maskedPatient(mrn))
		s.Create(t, map[string]any{"resourceType": "Claim", "status": "active",
			"type": coding("http://terminology.hl7.org/CodeSystem/claim-type", "institutional"),
			"use":  "claim", "patient": map[string]any{"reference": "Patient/" + pid,
				"identifier": map[string]any{"system": "http://hl7.org/fhir/sid/us-ssn", "value": maskSSN}},
			"created":   "2021-03-04T10:00:00Z",
			"provider":  map[string]any{"display": "x"},
			"priority":  coding("http://terminology.hl7.org/CodeSystem/processpriority", "normal"),
			"insurance": []any{map[string]any{"sequence": 1, "focal": true, "coverage": map[string]any{"display": "x"}}}})
		desk := newActor(t, s, "front-desk", "")
		billing := newActor(t, s, "billing", "")
		doc := newActor(t, s, "physician", "")
		careTeam(t, s, pid, doc.fhirUser)
		q := url.QueryEscape
		ssnSys := "http://hl7.org/fhir/sid/us-ssn"
		ofType := "http://terminology.hl7.org/CodeSystem/v2-0203|SS|" + maskSSN
		ofTypeDL := "http://terminology.hl7.org/CodeSystem/v2-0203|DL|" + maskDL
		for _, c := range []struct {
			who  actor
			path string
		}{
			{desk, "/fhir/Patient?identifier=" + q(maskSSN)},
			{desk, "/fhir/Patient?identifier=" + q("|"+maskSSN)},
			{desk, "/fhir/Patient?identifier=" + q(ssnSys+"|"+maskSSN)},
			{desk, "/fhir/Patient?identifier=" + q(ssnSys+"|")},
			{desk, "/fhir/Patient?identifier=" + q(testSystem+"|"+mrn+","+maskSSN)},
			{desk, "/fhir/Patient?identifier:not=" + q(maskSSN)},
			{desk, "/fhir/Patient?identifier:of-type=" + q(ofType)},
			{desk, "/fhir/Patient?identifier:of-type=" + q(ofTypeDL)},
			{desk, "/fhir?_type=Patient&identifier=" + q(maskSSN)},
			{billing, "/fhir/Patient?identifier=" + q(maskSSN)},
			{billing, "/fhir/Claim?patient.identifier=" + q(maskSSN)},
			{billing, "/fhir/Claim?patient:Patient.identifier=" + q(ssnSys+"|"+maskSSN)},
			{billing, "/fhir/Claim?patient:identifier=" + q(maskSSN)},
			{billing, "/fhir/Claim?patient.identifier:of-type=" + q(ofType)},
		} {
			r := s.Do(t, "GET", c.path, nil, c.who.headers)
			r.WantOutcome(t, http.StatusForbidden)
			if strings.Contains(string(r.Body), maskSSN) || !strings.Contains(string(r.Body), "masked") {
				t.Errorf("%s %s: %s", c.who.role, c.path, r.Body)
			}
		}
		// Conditional create: If-None-Exist would answer 200 with the match.
		s.Do(t, "POST", "/fhir/Patient", patient(uniq(), nil), withHeaders(desk.wheaders, map[string]string{"If-None-Exist": "identifier=" + q(maskSSN)})).
			WantOutcome(t, http.StatusForbidden)

		// Values in an unmasked system, :missing, and callers who see
		// identifiers in clear.
		for _, c := range []struct {
			who  actor
			path string
		}{
			{desk, "/fhir/Patient?identifier=" + q(testSystem+"|"+mrn)},
			{desk, "/fhir/Patient?identifier=" + q(testSystem+"|")},
			{desk, "/fhir/Patient?_id=" + pid + "&identifier:missing=false"},
			{billing, "/fhir/Claim?patient.identifier=" + q(testSystem+"|"+mrn)},
			{doc, "/fhir/Patient?identifier=" + q(maskSSN)},
			{actor{role: "system"}, "/fhir/Patient?identifier=" + q(maskSSN)},
			{actor{role: "system"}, "/fhir/Patient?identifier:of-type=" + q(ofTypeDL)},
		} {
			r := s.Do(t, "GET", c.path, nil, c.who.headers).Want(t, http.StatusOK)
			if n, _ := r.Total(); len(r.IDs()) == 0 && n == 0 {
				t.Errorf("%s %s found nothing: %s", c.who.role, c.path, r.Body)
			}
		}
	})
}

// TestAuthzMaskCarriers: a resource of another type that carries a
// person's government identifiers (a Claim naming its patient by SSN, a
// contained RelatedPerson, a Coverage subscriber; a contained Patient is
// refused at write) is masked there on every
// read path, and a masked caller's update keeps what it could not see.
func TestAuthzMaskCarriers(t *testing.T) {
	apitest.Run(t, func(t *testing.T, s *apitest.Server) {
		pid := s.Create(t, maskedPatient(uniq()))
		ssn := map[string]any{"system": "http://hl7.org/fhir/sid/us-ssn", "value": maskSSN}
		claim := s.Create(t, map[string]any{"resourceType": "Claim", "status": "active",
			"identifier": []any{map[string]any{"system": testSystem, "value": "claim-1"},
				map[string]any{"type": map[string]any{"text": "Social Security Number"}, "value": maskSSN}},
			"type":    coding("http://terminology.hl7.org/CodeSystem/claim-type", "institutional"),
			"use":     "claim",
			"patient": map[string]any{"reference": "Patient/" + pid, "identifier": ssn},
			"created": "2021-03-04T10:00:00Z",
			"contained": []any{map[string]any{"resourceType": "RelatedPerson", "id": "subscriber", "patient": map[string]any{"reference": "Patient/" + pid},
				"identifier": []any{map[string]any{"system": "http://hl7.org/fhir/sid/us-ssn", "value": maskSSN}},
				"text":       map[string]any{"status": "generated", "div": `<div xmlns="http://www.w3.org/1999/xhtml">SSN ` + maskSSN + `</div>`},
				"name":       []any{map[string]any{"family": "Roe"}}}},
			"provider": map[string]any{"display": "x"},
			"priority": coding("http://terminology.hl7.org/CodeSystem/processpriority", "normal"),
			"insurance": []any{map[string]any{"sequence": 1, "focal": true,
				"coverage": map[string]any{"display": "x", "identifier": map[string]any{"type": map[string]any{"coding": []any{map[string]any{"code": "SB"}}}, "value": maskSSN}}}},
			"text": map[string]any{"status": "generated", "div": `<div xmlns="http://www.w3.org/1999/xhtml">Claim for an ambulatory visit</div>`}})
		cov := s.Create(t, map[string]any{"resourceType": "Coverage", "status": "active",
			"beneficiary": map[string]any{"reference": "Patient/" + pid},
			"subscriber":  map[string]any{"reference": "Patient/" + pid, "identifier": ssn},
			"payor":       []any{map[string]any{"display": "Payer"}}})
		billing := newActor(t, s, "billing", "")
		for _, path := range []string{
			"/fhir/Claim/" + claim,
			"/fhir/Claim/" + claim + "/_history/1",
			"/fhir/Claim?_id=" + claim,
			"/fhir/Claim?patient=" + pid + "&_sort=-created",
			"/fhir/Claim/_history?_count=50",
			"/fhir/Coverage/" + cov,
			"/fhir/Claim?_id=" + claim + "&_include=Claim:patient",
			"/fhir/Coverage?_id=" + cov,
		} {
			r := s.Do(t, "GET", path, nil, billing.headers).Want(t, http.StatusOK)
			if strings.Contains(withoutContact(t, r.Body), maskSSN) {
				t.Errorf("billing %s shows the SSN: %s", path, r.Body)
			}
			if strings.HasPrefix(path, "/fhir/Claim") && !strings.Contains(string(r.Body), `"REDACTED"`) {
				t.Errorf("billing %s: not labelled REDACTED", path)
			}
		}
		// What the mask keeps: the claim's narrative, its own identifier,
		// the references themselves.
		r := s.Do(t, "GET", "/fhir/Claim/"+claim, nil, billing.headers).Want(t, http.StatusOK)
		for _, want := range []string{"claim-1", "ambulatory visit", `"Patient/` + pid + `"`, `"subscriber"`, "Narrative withheld"} {
			if !strings.Contains(string(r.Body), want) {
				t.Errorf("billing's view lacks %s: %s", want, r.Body)
			}
		}
		// The system caller sees every copy (4 in the claim).
		r = s.Do(t, "GET", "/fhir/Claim/"+claim, nil, nil).Want(t, http.StatusOK)
		if n := strings.Count(string(r.Body), maskSSN); n != 5 || strings.Contains(string(r.Body), "REDACTED") {
			t.Errorf("the system caller sees the SSN %d times (want 5): %s", n, r.Body)
		}
		orig := r.JSON

		// Billing updates the claim it sees masked: the status changes,
		// every hidden copy stays, and what billing adds of them is dropped.
		view := s.Do(t, "GET", "/fhir/Claim/"+claim, nil, billing.headers).Want(t, http.StatusOK).JSON
		view["status"] = "cancelled"
		pat, _ := view["patient"].(map[string]any)
		pat["display"] = "Jane Roe"
		cs, _ := view["contained"].([]any)
		sub, _ := cs[0].(map[string]any)
		sub["identifier"] = []any{map[string]any{"system": "http://hl7.org/fhir/sid/us-ssn", "value": "999-00-0009"}}
		s.Do(t, "PUT", "/fhir/Claim/"+claim, view, billing.wheaders).Want(t, http.StatusOK)
		got := s.Do(t, "GET", "/fhir/Claim/"+claim, nil, nil).Want(t, http.StatusOK)
		if got.JSON["status"] != "cancelled" || strings.Contains(string(got.Body), "999-00-0009") || strings.Contains(string(got.Body), "REDACTED") {
			t.Fatalf("billing's update: %s", got.Body)
		}
		if n := strings.Count(string(got.Body), maskSSN); n != 5 {
			t.Errorf("after billing's update the SSN is kept %d times (want 5): %s", n, got.Body)
		}
		for _, k := range []string{"identifier", "contained", "insurance", "text"} {
			if a, b := mustJSON(t, got.JSON[k]), mustJSON(t, orig[k]); a != b {
				t.Errorf("%s changed by billing's update:\n got %s\nwant %s", k, a, b)
			}
		}
		if p, _ := got.JSON["patient"].(map[string]any); p["display"] != "Jane Roe" || mustJSON(t, p["identifier"]) != mustJSON(t, ssn) {
			t.Errorf("patient reference after billing's update: %v", p)
		}
	})
}
