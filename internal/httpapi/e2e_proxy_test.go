package httpapi_test

import (
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/phivault/phivault/internal/apitest"
	"github.com/phivault/phivault/internal/audit"
	"github.com/phivault/phivault/internal/authz"
)

// proxyPerson is a RelatedPerson of pid, with the proxy grant extension
// when grant, naming proof when it is not empty.
func proxyPerson(pid string, grant bool, proof string) map[string]any {
	rp := map[string]any{"resourceType": "RelatedPerson", "active": true,
		"patient":      map[string]any{"reference": "Patient/" + pid},
		"relationship": []any{map[string]any{"coding": []any{map[string]any{"system": "http://terminology.hl7.org/CodeSystem/v3-RoleCode", "code": "MTH"}}}},
		"name":         []any{map[string]any{"family": "Roe", "given": []any{"Mary"}}}}
	if grant {
		ext := map[string]any{"url": authz.ProxyExtension}
		if proof != "" {
			ext["extension"] = []any{map[string]any{"url": "proof", "valueString": proof}}
		}
		rp["extension"] = []any{ext}
	}
	return rp
}

// TestAuthzProxy: proxy access for a parent or carer (HIPAA
// §164.502(g)). Who may grant it (the patient, the front desk with the
// proof it checked, service credentials; not a clinician), what the
// proxy reads (the patient's record as the patient does, bar sensitive
// records and what the patient's Consent denies the RelatedPerson), that
// it writes nothing, that revoking ends it, and that its reads are in
// the patient's audit trail.
func TestAuthzProxy(t *testing.T) {
	apitest.Run(t, func(t *testing.T, s *apitest.Server) {
		child := s.Create(t, patient(uniq(), nil))
		other := s.Create(t, patient(uniq(), nil))
		obsC := s.Create(t, observation(child, nil))
		obsPsy := s.Create(t, labelled(observation(child, nil), "PSY"))
		obsPart2 := s.Create(t, labelled(observation(child, nil), "42CFRPart2"))
		obsO := s.Create(t, observation(other, nil))
		desk := newActor(t, s, "front-desk", "")
		doc := newActor(t, s, "physician", "")
		careTeam(t, s, child, doc.fhirUser)
		self := newActor(t, s, "patient", child)

		t.Run("who may grant", func(t *testing.T) {
			s.Do(t, "POST", "/fhir/RelatedPerson", proxyPerson(child, true, ""), desk.wheaders).Want(t, http.StatusForbidden)
			s.Do(t, "POST", "/fhir/RelatedPerson", proxyPerson(child, true, "  "), desk.wheaders).Want(t, http.StatusForbidden)
			s.Do(t, "POST", "/fhir/RelatedPerson", proxyPerson(child, true, "birth certificate seen"), desk.wheaders).Want(t, http.StatusCreated)
			s.Do(t, "POST", "/fhir/RelatedPerson", proxyPerson(child, true, "birth certificate seen"), doc.wheaders).Want(t, http.StatusForbidden)
			s.Do(t, "POST", "/fhir/RelatedPerson", proxyPerson(child, false, ""), doc.wheaders).Want(t, http.StatusCreated)
			s.Do(t, "POST", "/fhir/RelatedPerson", proxyPerson(child, true, ""), self.wheaders).Want(t, http.StatusCreated)
			if r := s.Do(t, "POST", "/fhir/RelatedPerson", proxyPerson(other, true, ""), self.wheaders); r.Status < 400 {
				t.Fatalf("a patient granted proxy access to another patient's record: %s", r)
			}
			// A clinician may not add a grant to a RelatedPerson by an update either.
			plain := s.Create(t, proxyPerson(child, false, ""))
			upd := proxyPerson(child, true, "court order")
			upd["id"] = plain
			s.Do(t, "PUT", "/fhir/RelatedPerson/"+plain, upd, doc.wheaders).Want(t, http.StatusForbidden)
		})

		rp := s.Create(t, proxyPerson(child, true, "birth certificate seen"))
		mother := newActor(t, s, "patient", "RelatedPerson/"+rp)

		t.Run("reads the record as the patient does", func(t *testing.T) {
			s.Do(t, "GET", "/fhir/Observation/"+obsC, nil, mother.headers).Want(t, http.StatusOK)
			s.Do(t, "GET", "/fhir/Patient/"+child, nil, mother.headers).Want(t, http.StatusOK)
			for _, hidden := range []string{"Observation/" + obsPsy, "Observation/" + obsPart2, "Observation/" + obsO, "Patient/" + other} {
				if r := s.Do(t, "GET", "/fhir/"+hidden, nil, mother.headers); r.Status == http.StatusOK {
					t.Errorf("the proxy read %s", hidden)
				}
			}
			r := s.Do(t, "GET", "/fhir/Observation?_total=accurate", nil, mother.headers).Want(t, http.StatusOK)
			if got := r.IDs(); !slices.Equal(got, []string{"Observation/" + obsC}) {
				t.Errorf("the proxy's search: %v", got)
			}
			if n, _ := r.Total(); n != 1 {
				t.Errorf("the proxy's total: %d", n)
			}
			r = s.Do(t, "GET", "/fhir/Patient/"+child+"/$everything", nil, mother.headers).Want(t, http.StatusOK)
			ids := r.IDs()
			if !slices.Contains(ids, "Observation/"+obsC) || slices.Contains(ids, "Observation/"+obsPsy) || slices.Contains(ids, "Observation/"+obsPart2) {
				t.Errorf("the proxy's $everything: %v", ids)
			}
			s.Do(t, "GET", "/fhir/Patient/"+other+"/$everything", nil, mother.headers).WantOutcome(t, http.StatusNotFound, http.StatusForbidden)
		})

		t.Run("writes nothing", func(t *testing.T) {
			s.Do(t, "POST", "/fhir/Observation", observation(child, nil), mother.wheaders).Want(t, http.StatusForbidden)
			s.Do(t, "POST", "/fhir/Consent", consentDeny(child, doc.fhirUser), mother.wheaders).Want(t, http.StatusForbidden)
			again := proxyPerson(child, true, "")
			again["id"] = rp
			if r := s.Do(t, "PUT", "/fhir/RelatedPerson/"+rp, again, mother.wheaders); r.Status < 400 {
				t.Fatalf("the proxy rewrote its own grant: %s", r)
			}
			s.Do(t, "POST", "/fhir/RelatedPerson", proxyPerson(child, true, ""), mother.wheaders).Want(t, http.StatusForbidden)
		})

		t.Run("audited in the patient's trail", func(t *testing.T) {
			evs, err := s.App.Transparency().Events(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			found := false
			for _, ev := range evs {
				if ev.Action == audit.ActionRead && ev.Agent.User == mother.userID && slices.Contains(ev.Patients, "Patient/"+child) &&
					slices.ContainsFunc(ev.Entities, func(x string) bool { return strings.HasPrefix(x, "Observation/"+obsC+"/") }) {
					found = true
				}
			}
			if !found {
				t.Fatal("the proxy's read is not in the audit trail under the patient")
			}
			// The proxy reads the patient's view of the log (the portal's
			// Verify and Download proof), and nobody else's.
			r := s.Do(t, "GET", "/fhir/AuditEvent?_count=50", nil, mother.headers).Want(t, http.StatusOK)
			if len(r.Entries()) == 0 {
				t.Fatal("the proxy sees none of the patient's audit events")
			}
			if strings.Contains(string(r.Body), other) {
				t.Fatalf("the proxy's audit view names another patient: %s", r.Body)
			}
		})

		t.Run("the patient's Consent can deny a proxy", func(t *testing.T) {
			rp2 := s.Create(t, proxyPerson(child, true, "power of attorney"))
			carer := newActor(t, s, "patient", "RelatedPerson/"+rp2)
			s.Do(t, "GET", "/fhir/Observation/"+obsC, nil, carer.headers).Want(t, http.StatusOK)
			s.Do(t, "POST", "/fhir/Consent", consentDeny(child, "RelatedPerson/"+rp2), self.wheaders).Want(t, http.StatusCreated)
			if r := s.Do(t, "GET", "/fhir/Observation/"+obsC, nil, carer.headers); r.Status == http.StatusOK {
				t.Fatal("a proxy the patient's Consent denies still reads the record")
			}
			if ids := s.Do(t, "GET", "/fhir/Observation", nil, carer.headers).Want(t, http.StatusOK).IDs(); len(ids) != 0 {
				t.Fatalf("a denied proxy's search: %v", ids)
			}
			// The other proxy is not named: unchanged.
			s.Do(t, "GET", "/fhir/Observation/"+obsC, nil, mother.headers).Want(t, http.StatusOK)
		})

		t.Run("revoking ends it", func(t *testing.T) {
			cur := s.Do(t, "GET", "/fhir/RelatedPerson/"+rp, nil, nil).Want(t, http.StatusOK).JSON
			cur["active"] = false
			s.Do(t, "PUT", "/fhir/RelatedPerson/"+rp, cur, desk.wheaders).Want(t, http.StatusOK)
			if r := s.Do(t, "GET", "/fhir/Observation/"+obsC, nil, mother.headers); r.Status == http.StatusOK {
				t.Fatal("a revoked proxy still reads the record")
			}
			s.Do(t, "GET", "/fhir/AuditEvent?_count=5", nil, mother.headers).Want(t, http.StatusForbidden)
			// Expired: a period that ended.
			rp3 := proxyPerson(child, true, "birth certificate seen")
			rp3["period"] = map[string]any{"start": "2020-01-01", "end": "2021-01-01"}
			id3 := s.Create(t, rp3)
			old := newActor(t, s, "patient", "RelatedPerson/"+id3)
			if r := s.Do(t, "GET", "/fhir/Observation/"+obsC, nil, old.headers); r.Status == http.StatusOK {
				t.Fatal("an expired proxy grant still reads the record")
			}
		})
	})
}
