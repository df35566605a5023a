package httpapi_test

import (
	"net/http"
	"testing"

	"github.com/phivault/phivault/internal/apitest"
)

// docNote is a DocumentReference of pid written by author (a Practitioner
// reference), a draft unless signer is set.
func docNote(pid, author, signer string) map[string]any {
	d := map[string]any{"resourceType": "DocumentReference", "status": "current", "docStatus": "preliminary",
		"subject": map[string]any{"reference": "Patient/" + pid},
		"content": []any{map[string]any{"attachment": map[string]any{"contentType": "text/plain", "data": "aGVsbG8="}}}}
	if author != "" {
		d["author"] = []any{map[string]any{"reference": author}}
	}
	if signer != "" {
		d["docStatus"], d["authenticator"] = "final", map[string]any{"reference": signer}
	}
	return d
}

// TestAuthzNotesWrittenByTheirAuthor (penetration test of the web UI: a
// nurse changed, signed and retracted a physician's notes, and wrote
// notes "signed by" him, through the FHIR API with her session): a user
// writes only notes that name them among their authors, and signs only
// as themself, on every path; service credentials import anything.
func TestAuthzNotesWrittenByTheirAuthor(t *testing.T) {
	apitest.Run(t, func(t *testing.T, s *apitest.Server) {
		pid := s.Create(t, patient(uniq(), nil))
		doc := newActor(t, s, "physician", "")
		nurse := newActor(t, s, "nurse", "")
		careTeam(t, s, pid, doc.fhirUser)
		careTeam(t, s, pid, nurse.fhirUser)

		draft := s.Do(t, "POST", "/fhir/DocumentReference", docNote(pid, doc.fhirUser, ""), doc.wheaders).Want(t, http.StatusCreated).ID()
		cur := s.Do(t, "GET", "/fhir/DocumentReference/"+draft, nil, nil).Want(t, http.StatusOK).JSON

		// The nurse edits the physician's draft, signs it as him, writes
		// a note as him: refused.
		edited := docNote(pid, doc.fhirUser, "")
		edited["id"] = draft
		edited["description"] = "changed"
		s.Do(t, "PUT", "/fhir/DocumentReference/"+draft, edited, nurse.wheaders).Want(t, http.StatusForbidden)
		signed := docNote(pid, doc.fhirUser, doc.fhirUser)
		signed["id"] = draft
		s.Do(t, "PUT", "/fhir/DocumentReference/"+draft, signed, nurse.wheaders).Want(t, http.StatusForbidden)
		s.Do(t, "POST", "/fhir/DocumentReference", docNote(pid, doc.fhirUser, doc.fhirUser), nurse.wheaders).Want(t, http.StatusForbidden)
		s.Do(t, "POST", "/fhir/DocumentReference", docNote(pid, nurse.fhirUser, doc.fhirUser), nurse.wheaders).Want(t, http.StatusForbidden)
		s.Do(t, "PATCH", "/fhir/DocumentReference/"+draft, []any{map[string]any{"op": "replace", "path": "/description", "value": "x"}},
			apitest.H{"Authorization": nurse.wheaders["Authorization"], "Cookie": nurse.wheaders["Cookie"], "X-CSRF-Token": nurse.wheaders["X-CSRF-Token"],
				"Content-Type": "application/json-patch+json"}).Want(t, http.StatusForbidden)
		s.Do(t, "POST", "/fhir", map[string]any{"resourceType": "Bundle", "type": "transaction", "entry": []any{map[string]any{
			"resource": docNote(pid, doc.fhirUser, doc.fhirUser), "request": map[string]any{"method": "POST", "url": "DocumentReference"}}}},
			nurse.wheaders).Want(t, http.StatusForbidden)
		if got := s.Do(t, "GET", "/fhir/DocumentReference/"+draft, nil, nil).Want(t, http.StatusOK).JSON; mustJSON(t, got) != mustJSON(t, cur) {
			t.Fatalf("the draft changed: %v", got)
		}

		// Her own notes, and his own signing and retraction, go through.
		s.Do(t, "POST", "/fhir/DocumentReference", docNote(pid, nurse.fhirUser, nurse.fhirUser), nurse.wheaders).Want(t, http.StatusCreated)
		s.Do(t, "PUT", "/fhir/DocumentReference/"+draft, signed, doc.wheaders).Want(t, http.StatusOK)
		void := s.Do(t, "GET", "/fhir/DocumentReference/"+draft, nil, nil).Want(t, http.StatusOK).JSON
		void["status"] = "entered-in-error"
		s.Do(t, "PUT", "/fhir/DocumentReference/"+draft, void, nurse.wheaders).Want(t, http.StatusForbidden)
		s.Do(t, "PUT", "/fhir/DocumentReference/"+draft, void, doc.wheaders).Want(t, http.StatusOK)

		// Service credentials import notes written elsewhere.
		s.Do(t, "POST", "/fhir/DocumentReference", docNote(pid, doc.fhirUser, doc.fhirUser), nil).Want(t, http.StatusCreated)
	})
}

// TestAuthzFrontDeskRegistrationRestricted (penetration test: the front
// desk opened a sensitive-labelled and a VIP patient to a physician by
// writing a CareTeam): registration reaches only patients whose record is
// open to the clinic.
func TestAuthzFrontDeskRegistrationRestricted(t *testing.T) {
	apitest.Run(t, func(t *testing.T, s *apitest.Server) {
		desk := newActor(t, s, "front-desk", "")
		doc := newActor(t, s, "physician", "")
		team := func(pid string) map[string]any {
			return map[string]any{"resourceType": "CareTeam", "status": "active",
				"subject":     map[string]any{"reference": "Patient/" + pid},
				"participant": []any{map[string]any{"member": map[string]any{"reference": doc.fhirUser}}}}
		}
		vip := patient(uniq(), nil)
		vip["meta"] = map[string]any{"tag": []any{map[string]any{"code": "VIP"}}}
		for name, p := range map[string]map[string]any{
			"V":          labelled(patient(uniq(), nil), "V"),
			"HIV":        labelled(patient(uniq(), nil), "HIV"),
			"42CFRPart2": labelled(patient(uniq(), nil), "42CFRPart2"),
			"VIP":        vip,
		} {
			pid := s.Create(t, p)
			s.Do(t, "POST", "/fhir/CareTeam", team(pid), desk.wheaders).Want(t, http.StatusForbidden, http.StatusNotFound)
			enc := map[string]any{"resourceType": "Encounter", "status": "in-progress",
				"class":       map[string]any{"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
				"subject":     map[string]any{"reference": "Patient/" + pid},
				"participant": []any{map[string]any{"individual": map[string]any{"reference": doc.fhirUser}}}}
			s.Do(t, "POST", "/fhir/Encounter", enc, desk.wheaders).Want(t, http.StatusForbidden, http.StatusNotFound)
			if r := s.Do(t, "GET", "/fhir/Patient/"+pid, nil, doc.headers); r.Status == http.StatusOK {
				t.Errorf("%s: the physician reads the patient after the front desk's registration", name)
			}
		}
		plain := s.Create(t, patient(uniq(), nil))
		s.Do(t, "POST", "/fhir/CareTeam", team(plain), desk.wheaders).Want(t, http.StatusCreated)
		s.Do(t, "GET", "/fhir/Patient/"+plain, nil, doc.headers).Want(t, http.StatusOK)
	})
}
