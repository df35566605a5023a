package httpapi_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/phivault/phivault/internal/apitest"
	"github.com/phivault/phivault/internal/audit"
	"github.com/phivault/phivault/internal/ident"
	"github.com/phivault/phivault/internal/keys"
	"github.com/phivault/phivault/internal/record"
	"github.com/phivault/phivault/internal/storage"
)

// Regression tests for the authorization leaks of issue 11 (items 2-6,
// 9, 14): each failed on the code before the fix.

func privacyConsent(pid string, provision map[string]any) map[string]any {
	return map[string]any{"resourceType": "Consent", "status": "active",
		"scope":     map[string]any{"coding": []any{map[string]any{"system": "http://terminology.hl7.org/CodeSystem/consentscope", "code": "patient-privacy"}}},
		"category":  []any{map[string]any{"coding": []any{map[string]any{"system": "http://loinc.org", "code": "59284-0"}}}},
		"patient":   map[string]any{"reference": "Patient/" + pid},
		"provision": provision,
	}
}

func consentActor(ref string) map[string]any {
	return map[string]any{"role": map[string]any{"coding": []any{map[string]any{"system": "http://terminology.hl7.org/CodeSystem/v3-ParticipationType", "code": "PRCP"}}},
		"reference": map[string]any{"reference": ref}}
}

func denyLabel(code string) map[string]any {
	return map[string]any{"type": "permit", "provision": []any{map[string]any{"type": "deny",
		"securityLabel": []any{map[string]any{"system": "urn:phivault:test:labels", "code": code}}}}}
}

func total(t *testing.T, r *apitest.Response) int {
	t.Helper()
	n, ok := r.Total()
	if !ok {
		t.Fatalf("no total in %s", r)
	}
	return n
}

func withHeaders(h apitest.H, more apitest.H) apitest.H {
	out := apitest.H{}
	for k, v := range h {
		out[k] = v
	}
	for k, v := range more {
		out[k] = v
	}
	return out
}

// Item 2: type- and system-level history serve no version of a record
// that is sensitive now, and decide every version on the current one.
func TestHistoryDecidedOnCurrentVersion(t *testing.T) {
	apitest.Run(t, func(t *testing.T, s *apitest.Server) {
		pid := s.Create(t, patient(uniq(), nil))
		doc := newActor(t, s, "physician", "")
		careTeam(t, s, pid, doc.fhirUser)
		code := "hx" + uniq()
		obs := observation(pid, map[string]any{"code": map[string]any{"coding": []any{map[string]any{"system": testSystem, "code": code}}}})
		id := s.Create(t, obs) // v1: unlabelled
		obs["id"] = id
		labelled(obs, "42CFRPart2")
		s.Do(t, "PUT", "/fhir/Observation/"+id, obs, nil).Want(t, http.StatusOK) // v2: Part 2 since
		visible := s.Create(t, observation(pid, nil))

		r := s.Do(t, "GET", "/fhir/Observation/_history?_count=1000", nil, doc.headers).Want(t, http.StatusOK)
		for _, e := range r.Entries() {
			if u, _ := e["fullUrl"].(string); strings.HasSuffix(u, "/Observation/"+id) {
				t.Fatalf("type history serves a version of a record labelled 42 CFR Part 2 since: %v", e["response"])
			}
		}
		if !slices.Contains(r.IDs(), "Observation/"+visible) {
			t.Fatalf("type history lacks the visible Observation: %v", r.IDs())
		}
		s.Do(t, "GET", "/fhir/Observation/"+id+"/_history/1", nil, doc.headers).WantOutcome(t, http.StatusNotFound)
		s.Do(t, "GET", "/fhir/Observation/"+id+"/_history", nil, doc.headers).WantOutcome(t, http.StatusNotFound)
		// System history: not for a caller restricted to some patients
		// (its paging would tell the server-wide write volume).
		s.Do(t, "GET", "/fhir/_history", nil, doc.headers).WantOutcome(t, http.StatusForbidden)
		r = s.Do(t, "GET", "/fhir/_history?_count=5", nil, nil).Want(t, http.StatusOK)
		if len(r.Entries()) != 5 {
			t.Fatalf("system history for the system token: %d entries", len(r.Entries()))
		}
		wantAudited(t, s, audit.ActionHistorySystem, audit.OutcomeDenied, "")
		wantAudited(t, s, audit.ActionHistoryType, audit.OutcomeSuccess, "Observation/"+visible+"/_history/1")

		// Pages are filled with visible versions: hidden ones do not make
		// short pages or extra next links.
		other := s.Create(t, patient(uniq(), nil))
		for range 3 {
			s.Create(t, observation(other, nil)) // hidden: no relationship
			s.Create(t, observation(pid, nil))
		}
		var got []string
		next := "/fhir/Observation/_history?_count=2"
		for i := 0; next != "" && i < 50; i++ {
			r := s.Do(t, "GET", next, nil, doc.headers).Want(t, http.StatusOK)
			if n := len(r.Entries()); n != 2 && r.Link("next") != "" {
				t.Fatalf("page %d has %d entries and a next link", i, n)
			}
			got = append(got, r.IDs()...)
			next = r.Link("next")
		}
		for _, ref := range got {
			if !strings.HasPrefix(ref, "Observation/") {
				t.Fatalf("unexpected entry %s", ref)
			}
		}
	})
}

// Item 3: a resource naming two patients belongs to both.
func TestJointOwnership(t *testing.T) {
	apitest.Run(t, func(t *testing.T, s *apitest.Server) {
		child := s.Create(t, patient(uniq(), nil))
		parent := s.Create(t, patient(uniq(), nil))
		cov := s.Create(t, map[string]any{"resourceType": "Coverage", "status": "active",
			"beneficiary": map[string]any{"reference": "Patient/" + child},
			"subscriber":  map[string]any{"reference": "Patient/" + parent},
			"payor":       []any{map[string]any{"display": "Payer"}}})
		perf := s.Create(t, observation(child, map[string]any{"performer": []any{map[string]any{"reference": "Patient/" + parent}}}))
		appt := s.Create(t, map[string]any{"resourceType": "Appointment", "status": "booked", "participant": []any{
			map[string]any{"actor": map[string]any{"reference": "Patient/" + child}, "status": "accepted"},
			map[string]any{"actor": map[string]any{"reference": "Patient/" + parent}, "status": "accepted"}}})
		childOnly := newActor(t, s, "physician", "")
		careTeam(t, s, child, childOnly.fhirUser)
		both := newActor(t, s, "physician", "")
		careTeam(t, s, child, both.fhirUser)
		careTeam(t, s, parent, both.fhirUser)
		refs := []string{"Coverage/" + cov, "Observation/" + perf}
		for _, role := range []string{"researcher", "front-desk", "nurse", "auditor"} {
			a := newActor(t, s, role, "")
			for _, ref := range append(refs, "Appointment/"+appt) {
				if r := s.Do(t, "GET", "/fhir/"+ref, nil, a.headers); r.Status == http.StatusOK && !(role == "front-desk" && strings.HasPrefix(ref, "Appointment/")) {
					t.Errorf("%s reads %s, which names two patients it has no relationship with", role, ref)
				}
			}
		}
		for _, ref := range refs {
			s.Do(t, "GET", "/fhir/"+ref, nil, childOnly.headers).WantOutcome(t, http.StatusForbidden, http.StatusNotFound)
			s.Do(t, "GET", "/fhir/"+ref, nil, both.headers).Want(t, http.StatusOK)
		}
		r := s.Do(t, "GET", "/fhir/Coverage?_id="+cov+"&_total=accurate", nil, childOnly.headers).Want(t, http.StatusOK)
		if total(t, r) != 0 {
			t.Fatalf("search by the child's clinician counts the joint Coverage: %s", r)
		}
		r = s.Do(t, "GET", "/fhir/Patient/"+child+"/$everything", nil, both.headers).Want(t, http.StatusOK)
		for _, ref := range refs {
			if !slices.Contains(r.IDs(), ref) {
				t.Errorf("$everything of the child for a clinician of both lacks %s", ref)
			}
		}
		r = s.Do(t, "GET", "/fhir/Patient/"+child+"/$everything", nil, childOnly.headers).Want(t, http.StatusOK)
		for _, ref := range refs {
			if slices.Contains(r.IDs(), ref) {
				t.Errorf("$everything of the child for the child's clinician holds %s", ref)
			}
		}
		// Both patients see the access in their own access trail.
		ev := wantAudited(t, s, audit.ActionRead, audit.OutcomeSuccess, "Coverage/"+cov+"/_history/1")
		if !slices.Contains(ev.Patients, "Patient/"+child) || !slices.Contains(ev.Patients, "Patient/"+parent) {
			t.Errorf("the read of the joint Coverage names %v, want both patients", ev.Patients)
		}
		// A consent of either patient binds.
		s.Create(t, privacyConsent(parent, map[string]any{"type": "permit", "provision": []any{map[string]any{"type": "deny",
			"actor": []any{consentActor(both.fhirUser)}}}}))
		s.Do(t, "GET", "/fhir/Coverage/"+cov, nil, both.headers).WantOutcome(t, http.StatusNotFound)
		// Erasing either patient makes it unreadable, to everyone.
		s.Do(t, "POST", "/fhir/Patient/"+parent+"/$erase", nil, nil).Want(t, http.StatusOK)
		for _, ref := range append(refs, "Appointment/"+appt) {
			if r := s.Do(t, "GET", "/fhir/"+ref, nil, nil); r.Status == http.StatusOK {
				t.Errorf("%s is readable after one of its patients was erased", ref)
			}
		}
		r = s.Do(t, "GET", "/fhir/Patient/"+child+"/$everything", nil, nil).Want(t, http.StatusOK)
		for _, ref := range refs {
			if slices.Contains(r.IDs(), ref) {
				t.Errorf("$everything of the child still holds %s after the parent's erasure", ref)
			}
		}
		// A contained Patient or an identifier-only patient reference is
		// refused: it would hold a patient's data without belonging to one.
		s.Do(t, "POST", "/fhir/Observation", observation(child, map[string]any{
			"contained": []any{map[string]any{"resourceType": "Patient", "id": "p1"}},
			"performer": []any{map[string]any{"reference": "#p1"}}}), nil).WantOutcome(t, http.StatusUnprocessableEntity)
		s.Do(t, "POST", "/fhir/Observation", map[string]any{"resourceType": "Observation", "status": "final",
			"code":    map[string]any{"text": "x"},
			"subject": map[string]any{"type": "Patient", "identifier": map[string]any{"system": testSystem, "value": "mrn-1"}}}, nil).WantOutcome(t, http.StatusUnprocessableEntity)
	})
}

// Item 4: a Consent nested beyond what authorization reads is refused
// when written; one stored before (older data) locks only its own
// patient, and a security administrator can repair it.
func TestUndecidableConsent(t *testing.T) {
	apitest.Run(t, func(t *testing.T, s *apitest.Server) {
		deep := map[string]any{"type": "deny"}
		for range 12 {
			deep = map[string]any{"type": "permit", "provision": []any{deep}}
		}
		locked := s.Create(t, patient(uniq(), nil))
		r := s.Do(t, "POST", "/fhir/Consent", privacyConsent(locked, deep), nil).WantOutcome(t, http.StatusUnprocessableEntity)
		if !strings.Contains(string(r.Body), "nested deeper") {
			t.Fatalf("the refusal does not say why: %s", r)
		}
		// Store one anyway, as older data would be: a valid consent,
		// then its version re-sealed with the deep body.
		ctx := t.Context()
		legacy := func(pid string) string {
			cid := s.Create(t, privacyConsent(pid, map[string]any{"type": "permit"}))
			body := privacyConsent(pid, deep)
			body["id"] = cid
			body["meta"] = map[string]any{"versionId": "1"}
			b, _ := json.Marshal(body)
			rec, err := s.App.Store.Key(ctx, ident.PatientOwner(pid))
			if err != nil {
				t.Fatal(err)
			}
			dek, err := s.App.Keys.DEK(rec)
			if err != nil {
				t.Fatal(err)
			}
			ct, err := dek.Seal(b, keys.ResourceAD{Type: "Consent", ID: cid, Version: 1, Owner: ident.PatientOwner(pid)})
			if err != nil {
				t.Fatal(err)
			}
			if err := s.App.Store.Update(ctx, func(tx storage.Tx) error {
				return tx.RewriteCiphertext(ctx, storage.VersionRef{Type: "Consent", ID: cid, Version: 1}, ct)
			}); err != nil {
				t.Fatal(err)
			}
			s.App.Authz.Invalidate()
			return cid
		}
		cid := legacy(locked)

		other := s.Create(t, patient(uniq(), nil))
		doc := newActor(t, s, "physician", "")
		careTeam(t, s, locked, doc.fhirUser)
		careTeam(t, s, other, doc.fhirUser)
		obsLocked, obsOther := s.Create(t, observation(locked, nil)), s.Create(t, observation(other, nil))
		s.App.Authz.Invalidate()
		// Another patient's records and searches are not affected.
		s.Do(t, "GET", "/fhir/Observation/"+obsOther, nil, doc.headers).Want(t, http.StatusOK)
		r = s.Do(t, "GET", "/fhir/Observation?_count=100", nil, doc.headers).Want(t, http.StatusOK)
		if !slices.Contains(r.IDs(), "Observation/"+obsOther) || slices.Contains(r.IDs(), "Observation/"+obsLocked) {
			t.Fatalf("search with a locked patient among the related: %v", r.IDs())
		}
		s.Do(t, "GET", "/fhir/Patient?_count=100", nil, withHeaders(newActor(t, s, "front-desk", "").headers, nil)).Want(t, http.StatusOK)
		// The locked patient: closed to the clinician, open to the
		// service token (exempt from consents).
		s.Do(t, "GET", "/fhir/Observation/"+obsLocked, nil, doc.headers).WantOutcome(t, http.StatusNotFound)
		s.Do(t, "GET", "/fhir/Observation/"+obsLocked, nil, nil).Want(t, http.StatusOK)

		// Repair: a security administrator lists and retires it.
		admin := newActor(t, s, "security-admin", "")
		r = s.Do(t, "GET", "/admin/api/consents/undecidable", nil, admin.headers).Want(t, http.StatusOK)
		if !strings.Contains(string(r.Body), `"id":"`+cid+`"`) || strings.Contains(string(r.Body), "provision") {
			t.Fatalf("listing: %s", r)
		}
		s.Do(t, "POST", "/admin/api/consents/"+cid+"/retire", nil, admin.wheaders).Want(t, http.StatusOK)
		s.Do(t, "GET", "/fhir/Observation/"+obsLocked, nil, doc.headers).Want(t, http.StatusOK)
		ev := wantAudited(t, s, audit.ActionUpdate, audit.OutcomeSuccess, "Consent/"+cid+"/_history/2")
		if !slices.Contains(ev.Policies, "consent-repair") || ev.Agent.User != admin.userID || !slices.Contains(ev.Patients, "Patient/"+locked) {
			t.Fatalf("repair event %+v", ev)
		}
		// The patient can fix their own: their consent does not bind them.
		self := s.Create(t, patient(uniq(), nil))
		own := legacy(self)
		pat := newActor(t, s, "patient", self)
		careTeam(t, s, self, doc.fhirUser)
		obsSelf := s.Create(t, observation(self, nil))
		s.App.Authz.Invalidate()
		s.Do(t, "GET", "/fhir/Observation/"+obsSelf, nil, doc.headers).WantOutcome(t, http.StatusNotFound)
		s.Do(t, "GET", "/fhir/Consent/"+own, nil, pat.headers).Want(t, http.StatusOK)
		fixed := privacyConsent(self, map[string]any{"type": "permit"})
		fixed["id"] = own
		s.Do(t, "PUT", "/fhir/Consent/"+own, fixed, pat.wheaders).Want(t, http.StatusOK)
		s.Do(t, "GET", "/fhir/Observation/"+obsSelf, nil, doc.headers).Want(t, http.StatusOK)
		// A consent that can be enforced is not the administrator's to change.
		ok := s.Create(t, privacyConsent(other, map[string]any{"type": "permit"}))
		s.Do(t, "POST", "/admin/api/consents/"+ok+"/retire", nil, admin.wheaders).Want(t, http.StatusConflict)
		s.Do(t, "POST", "/admin/api/consents/"+cid+"/retire", nil, doc.wheaders).Want(t, http.StatusForbidden)
	})
}

// Item 5: a consent that denies a label outside the built-in list hides
// those records from every count and conditional, not only from reads.
func TestConsentCustomLabelNarrowing(t *testing.T) {
	apitest.Run(t, func(t *testing.T, s *apitest.Server) {
		pid := s.Create(t, patient(uniq(), nil))
		doc := newActor(t, s, "physician", "")
		careTeam(t, s, pid, doc.fhirUser)
		label := "CUSTOM-" + strings.ToUpper(uniq())
		code, ident := "cl"+uniq(), "hidden-"+uniq()
		mk := func(l, when, own string) string {
			o := observation(pid, map[string]any{
				"code":              map[string]any{"coding": []any{map[string]any{"system": testSystem, "code": code}, map[string]any{"system": testSystem, "code": own}}},
				"effectiveDateTime": when})
			if l != "" {
				o["meta"] = map[string]any{"security": []any{map[string]any{"system": "urn:phivault:test:labels", "code": l}}}
			}
			return s.Create(t, o)
		}
		hidden := mk(label, "2021-03-04", ident)
		shown := mk("", "2022-05-06", "shown-"+uniq())
		s.Create(t, privacyConsent(pid, denyLabel(label)))
		codeQ := "code=" + url.QueryEscape(testSystem+"|"+code)
		s.Do(t, "GET", "/fhir/Observation/"+hidden, nil, doc.headers).WantOutcome(t, http.StatusNotFound)
		for q, want := range map[string]int{
			"Observation?" + codeQ + "&_total=accurate":                                      1,
			"Observation?" + codeQ + "&_summary=count":                                       1,
			"Observation?" + codeQ + "&_count=0":                                             1,
			"Observation?_id=" + hidden + "&_total=accurate":                                 0,
			"Observation?" + codeQ + "&date=2021-03-04&_total=accurate":                      0,
			"Observation?" + codeQ + "&date=lt2022&_total=accurate":                          0,
			"Observation?code=" + url.QueryEscape(testSystem+"|"+ident) + "&_total=accurate": 0,
		} {
			r := s.Do(t, "GET", "/fhir/"+q, nil, doc.headers).Want(t, http.StatusOK)
			if got := total(t, r); got != want {
				t.Errorf("%s: total %d, want %d", q, got, want)
			}
			if strings.Contains(string(r.Body), hidden) {
				t.Errorf("%s: the answer names the hidden record", q)
			}
		}
		r := s.Do(t, "GET", "/fhir/Observation?"+codeQ, nil, doc.headers).Want(t, http.StatusOK)
		sameSet(t, "matches", r.IDs(), []string{"Observation/" + shown})
		// A conditional reference in a transaction resolves only to a
		// record the caller may see, and never writes the hidden id.
		note := map[string]any{"resourceType": "Observation", "status": "final", "code": map[string]any{"text": "note"},
			"subject":   map[string]any{"reference": "Patient/" + pid},
			"hasMember": []any{map[string]any{"reference": "Observation?code=" + url.QueryEscape(testSystem+"|"+ident)}}}
		r = s.Do(t, "POST", "/fhir", bundle("transaction", entry("urn:uuid:"+uuidLike(), "POST", "Observation", note, nil)), doc.wheaders)
		if strings.Contains(string(r.Body), hidden) {
			t.Fatalf("transaction answer names the hidden record: %s", r)
		}
		if r.Status == http.StatusOK {
			t.Fatalf("a conditional reference resolved to a hidden record: %s", r)
		}
		// The same conditional reference resolves for the patient's own
		// consent-exempt service credential.
		s.Do(t, "POST", "/fhir", bundle("transaction", entry("urn:uuid:"+uuidLike(), "POST", "Observation", note, nil)), nil).Want(t, http.StatusOK)
		// If-None-Exist matches only what the caller may see: the hidden
		// one is not returned, and the answer is a create like for an
		// identifier no record has.
		o := observation(pid, map[string]any{"code": map[string]any{"coding": []any{map[string]any{"system": testSystem, "code": ident}}}})
		r = s.Do(t, "POST", "/fhir/Observation", o, withHeaders(doc.wheaders, apitest.H{"If-None-Exist": "code=" + url.QueryEscape(testSystem+"|"+ident)}))
		if r.Status != http.StatusCreated || strings.Contains(string(r.Body), hidden) {
			t.Fatalf("conditional create over a hidden match: %s", r)
		}
		_ = r
	})
}

// Item 6: consent provisions about codes, data instances, purposes and
// actors named by PractitionerRole or CareTeam are enforced end to end.
func TestConsentProvisionElementsEnforced(t *testing.T) {
	apitest.Run(t, func(t *testing.T, s *apitest.Server) {
		pid := s.Create(t, patient(uniq(), nil))
		doc := newActor(t, s, "physician", "")
		careTeam(t, s, pid, doc.fhirUser)
		secret := "sc" + uniq()
		coded := s.Create(t, observation(pid, map[string]any{"code": map[string]any{"coding": []any{map[string]any{"system": testSystem, "code": secret}}}}))
		plain := s.Create(t, observation(pid, nil))
		one := s.Create(t, observation(pid, nil))
		s.Create(t, privacyConsent(pid, map[string]any{"type": "permit", "provision": []any{
			map[string]any{"type": "deny", "code": []any{map[string]any{"coding": []any{map[string]any{"system": testSystem, "code": secret}}}}},
			map[string]any{"type": "deny", "data": []any{map[string]any{"meaning": "instance", "reference": map[string]any{"reference": "Observation/" + one}}}},
		}}))
		s.Do(t, "GET", "/fhir/Observation/"+coded, nil, doc.headers).WantOutcome(t, http.StatusNotFound)
		s.Do(t, "GET", "/fhir/Observation/"+one, nil, doc.headers).WantOutcome(t, http.StatusNotFound)
		s.Do(t, "GET", "/fhir/Observation/"+plain, nil, doc.headers).Want(t, http.StatusOK)
		r := s.Do(t, "GET", "/fhir/Observation?subject=Patient/"+pid+"&_total=accurate", nil, doc.headers).Want(t, http.StatusOK)
		if slices.Contains(r.IDs(), "Observation/"+coded) || slices.Contains(r.IDs(), "Observation/"+one) || !slices.Contains(r.IDs(), "Observation/"+plain) {
			t.Fatalf("search: %v", r.IDs())
		}
		if n := total(t, r); n != len(r.IDs()) {
			t.Fatalf("total %d for %d visible", n, len(r.IDs()))
		}
		// A CareTeam named as actor: its members are bound.
		p2 := s.Create(t, patient(uniq(), nil))
		nurse := newActor(t, s, "nurse", "")
		team := s.Create(t, map[string]any{"resourceType": "CareTeam", "status": "active",
			"subject":     map[string]any{"reference": "Patient/" + p2},
			"participant": []any{map[string]any{"member": map[string]any{"reference": nurse.fhirUser}}}})
		o2 := s.Create(t, observation(p2, nil))
		s.Do(t, "GET", "/fhir/Observation/"+o2, nil, nurse.headers).Want(t, http.StatusOK)
		s.Create(t, privacyConsent(p2, map[string]any{"type": "permit", "provision": []any{map[string]any{"type": "deny",
			"actor": []any{consentActor("CareTeam/" + team)}}}}))
		s.Do(t, "GET", "/fhir/Observation/"+o2, nil, nurse.headers).WantOutcome(t, http.StatusNotFound)
		// A purpose: billing (HPAYMT) denied, treatment not.
		p3 := s.Create(t, patient(uniq(), nil))
		cov := s.Create(t, coverage(p3))
		billing := newActor(t, s, "billing", "")
		s.Do(t, "GET", "/fhir/Coverage/"+cov, nil, billing.headers).Want(t, http.StatusOK)
		s.Create(t, privacyConsent(p3, map[string]any{"type": "permit", "provision": []any{map[string]any{"type": "deny",
			"purpose": []any{map[string]any{"system": "http://terminology.hl7.org/CodeSystem/v3-ActReason", "code": "HPAYMT"}}}}}))
		s.Do(t, "GET", "/fhir/Coverage/"+cov, nil, billing.headers).WantOutcome(t, http.StatusNotFound)
		r = s.Do(t, "GET", "/fhir/Coverage?_id="+cov+"&_total=accurate", nil, billing.headers).Want(t, http.StatusOK)
		if total(t, r) != 0 {
			t.Fatalf("billing search under a payment deny: %s", r)
		}
	})
}

// Item 9: If-Match, $break-glass and labels past the limit tell nothing
// and decide nothing on a truncated view.
func TestExistenceOraclesClosed(t *testing.T) {
	apitest.Run(t, func(t *testing.T, s *apitest.Server) {
		pid := s.Create(t, patient(uniq(), nil))
		doc := newActor(t, s, "physician", "")
		careTeam(t, s, pid, doc.fhirUser)
		hidden := s.Create(t, labelled(observation(pid, nil), "42CFRPart2"))
		body := func(id string) map[string]any { o := observation(pid, nil); o["id"] = id; return o }
		ifMatch := withHeaders(doc.wheaders, apitest.H{"If-Match": `W/"1"`})
		missing := "m" + uniq()
		rm := s.Do(t, "PUT", "/fhir/Observation/"+missing, body(missing), ifMatch)
		rh := s.Do(t, "PUT", "/fhir/Observation/"+hidden, body(hidden), ifMatch)
		if rm.Status != rh.Status || rm.Status != http.StatusPreconditionFailed {
			t.Fatalf("PUT If-Match: missing id %d, hidden id %d; want the same 412", rm.Status, rh.Status)
		}
		wantAudited(t, s, audit.ActionUpdate, audit.OutcomeDenied, "Observation/"+hidden+"/_history/1")
		// $break-glass: a role that may not break the glass gets 403
		// whether or not the patient exists.
		bg := map[string]any{"resourceType": "Parameters", "parameter": []any{
			map[string]any{"name": "reason", "valueCode": "ETREAT"}, map[string]any{"name": "text", "valueString": "probe"}}}
		for _, role := range []string{"researcher", "front-desk", "auditor", "security-admin"} {
			a := newActor(t, s, role, "")
			r1 := s.Do(t, "POST", "/fhir/Patient/"+pid+"/$break-glass", bg, a.wheaders)
			r2 := s.Do(t, "POST", "/fhir/Patient/nope"+uniq()+"/$break-glass", bg, a.wheaders)
			if r1.Status != http.StatusForbidden || r2.Status != http.StatusForbidden {
				t.Errorf("%s $break-glass: existing %d, unknown %d; want 403 for both", role, r1.Status, r2.Status)
			}
		}
		r := s.Do(t, "POST", "/fhir/Patient/nope"+uniq()+"/$break-glass", bg, doc.wheaders).WantOutcome(t, http.StatusNotFound)
		_ = r
		wantAudited(t, s, audit.ActionBreakGlass, audit.OutcomeError, "")
		// More security labels than authorization decides on: refused,
		// not truncated.
		var sec []any
		for i := range 65 {
			sec = append(sec, map[string]any{"system": "urn:phivault:test:labels", "code": fmt.Sprintf("L%02d", i)})
		}
		o := observation(pid, map[string]any{"meta": map[string]any{"security": sec}})
		s.Do(t, "POST", "/fhir/Observation", o, nil).WantOutcome(t, http.StatusUnprocessableEntity)
	})
}

// Item 9: an encounter's relationship ends some time after the encounter.
func TestEncounterRelationshipExpires(t *testing.T) {
	apitest.Run(t, func(t *testing.T, s *apitest.Server) {
		nurse := newActor(t, s, "nurse", "")
		enc := func(pid, start, end string) {
			s.Create(t, map[string]any{"resourceType": "Encounter", "status": "finished",
				"class":       map[string]any{"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
				"subject":     map[string]any{"reference": "Patient/" + pid},
				"period":      map[string]any{"start": start, "end": end},
				"participant": []any{map[string]any{"individual": map[string]any{"reference": nurse.fhirUser}}}})
		}
		old, recent := s.Create(t, patient(uniq(), nil)), s.Create(t, patient(uniq(), nil))
		enc(old, "2019-01-01T08:00:00Z", "2019-01-01T09:00:00Z")
		enc(recent, time.Now().Add(-48*time.Hour).UTC().Format(time.RFC3339), time.Now().Add(-47*time.Hour).UTC().Format(time.RFC3339))
		oOld, oRecent := s.Create(t, observation(old, nil)), s.Create(t, observation(recent, nil))
		s.Do(t, "GET", "/fhir/Observation/"+oOld, nil, nurse.headers).WantOutcome(t, http.StatusForbidden)
		s.Do(t, "GET", "/fhir/Observation/"+oRecent, nil, nurse.headers).Want(t, http.StatusOK)
	})
}

// Item 14: a purpose of use is recorded only for the decision it was
// used in: after breaking the glass on one patient, a search returning
// that patient and a care-team patient leaves one ETREAT event naming
// the first, and one TREAT event naming the second.
func TestPurposeRecordedPerDecision(t *testing.T) {
	apitest.Run(t, func(t *testing.T, s *apitest.Server) {
		mine, emergency := s.Create(t, patient(uniq(), nil)), s.Create(t, patient(uniq(), nil))
		doc := newActor(t, s, "physician", "")
		careTeam(t, s, mine, doc.fhirUser)
		code := "pu" + uniq()
		withCode := func(pid string) string {
			return s.Create(t, observation(pid, map[string]any{"code": map[string]any{"coding": []any{map[string]any{"system": testSystem, "code": code}}}}))
		}
		oMine, oEmergency := withCode(mine), withCode(emergency)
		bg := map[string]any{"resourceType": "Parameters", "parameter": []any{
			map[string]any{"name": "reason", "valueCode": "ETREAT"}, map[string]any{"name": "text", "valueString": "collapsed in the lobby"}}}
		s.Do(t, "POST", "/fhir/Patient/"+emergency+"/$break-glass", bg, doc.wheaders).Want(t, http.StatusCreated)
		r := s.Do(t, "GET", "/fhir/Observation?code="+url.QueryEscape(testSystem+"|"+code), nil, withHeaders(doc.headers, apitest.H{"X-Request-Id": "purpose-" + uniq()})).Want(t, http.StatusOK)
		sameSet(t, "search", r.IDs(), []string{"Observation/" + oMine, "Observation/" + oEmergency})
		var treat, etreat *audit.Event
		for _, ev := range auditEvents(t, s) {
			if ev.Action != audit.ActionSearch || !strings.Contains(ev.Query, "code") || ev.Agent.User != doc.userID {
				continue
			}
			switch ev.Purpose {
			case "TREAT":
				treat = &ev
			case "ETREAT":
				etreat = &ev
			}
		}
		if treat == nil || etreat == nil {
			t.Fatalf("want a TREAT and an ETREAT search event; have %v %v", treat, etreat)
		}
		if !slices.Equal(treat.Patients, []string{"Patient/" + mine}) || !slices.Equal(etreat.Patients, []string{"Patient/" + emergency}) {
			t.Fatalf("TREAT names %v, ETREAT names %v", treat.Patients, etreat.Patients)
		}
		// A read of the care-team patient afterwards is treatment.
		s.Do(t, "GET", "/fhir/Observation/"+oMine, nil, doc.headers).Want(t, http.StatusOK)
		ev := wantAudited(t, s, audit.ActionRead, audit.OutcomeSuccess, "Observation/"+oMine+"/_history/1")
		if ev.Purpose != "TREAT" {
			t.Fatalf("read of the care-team patient recorded as %s", ev.Purpose)
		}
	})
}

// Item 3, data written before: reindex moves every version of a
// resource naming two patients from the organisation's key to a joint
// key, so erasing either patient makes all of them unreadable.
func TestReindexMovesJointResources(t *testing.T) {
	apitest.Run(t, func(t *testing.T, s *apitest.Server) {
		ctx := t.Context()
		a, b := s.Create(t, patient(uniq(), nil)), s.Create(t, patient(uniq(), nil))
		s.Create(t, map[string]any{"resourceType": "Basic", "code": map[string]any{"text": "org key"}}) // the org key exists
		orgRec, err := s.App.Store.Key(ctx, "org")
		if err != nil {
			t.Fatal(err)
		}
		dek, err := s.App.Keys.DEK(orgRec)
		if err != nil {
			t.Fatal(err)
		}
		id := "legacy" + uniq()
		for v := int64(1); v <= 2; v++ {
			body, _ := json.Marshal(map[string]any{"resourceType": "Coverage", "id": id, "status": "active",
				"meta":        map[string]any{"versionId": fmt.Sprint(v), "lastUpdated": "2024-01-01T00:00:00.000000Z"},
				"beneficiary": map[string]any{"reference": "Patient/" + a},
				"subscriber":  map[string]any{"reference": "Patient/" + b},
				"payor":       []any{map[string]any{"display": "Payer"}}})
			ct, err := dek.Seal(body, keys.ResourceAD{Type: "Coverage", ID: id, Version: v, Owner: "org"})
			if err != nil {
				t.Fatal(err)
			}
			ver := storage.Version{Type: "Coverage", ID: id, Version: v, Owner: "org", Ciphertext: ct, LastUpdated: time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)}
			if err := s.App.Store.Update(ctx, func(tx storage.Tx) error { return tx.Put(ctx, ver, nil) }); err != nil {
				t.Fatal(err)
			}
		}
		s.App.Authz.Invalidate()
		// The legacy rows are blessed as found, as an upgrade would
		// (verify --baseline), so the ledger can vouch for what follows.
		if rep, err := s.App.Ledger().Baseline(ctx, nil); err != nil {
			t.Fatalf("baseline: %v (%+v)", err, rep.Data.Problems)
		}
		researcher := newActor(t, s, "researcher", "")
		if v, err := s.App.Store.Current(ctx, "Coverage", id); err != nil || v.Owner != "org" {
			t.Fatalf("before reindex: owner %q %v, want the organisation's key (the defect)", v.Owner, err)
		}
		if _, err := s.App.Record.Reindex(ctx, record.Caller{Agent: audit.Agent{Client: "test"}, Guard: record.Offline()}, nil); err != nil {
			t.Fatal(err)
		}
		s.App.Authz.Invalidate()
		for v := int64(1); v <= 2; v++ {
			ver, err := s.App.Store.VersionOf(ctx, "Coverage", id, v)
			if err != nil || !ver.Owner.IsJoint() {
				t.Fatalf("version %d after reindex: owner %q %v, want a joint owner", v, ver.Owner, err)
			}
		}
		s.Do(t, "GET", "/fhir/Coverage/"+id, nil, researcher.headers).WantOutcome(t, http.StatusForbidden, http.StatusNotFound)
		s.Do(t, "GET", "/fhir/Coverage/"+id+"/_history/1", nil, nil).Want(t, http.StatusOK)
		s.Do(t, "POST", "/fhir/Patient/"+b+"/$erase", nil, nil).Want(t, http.StatusOK)
		for _, path := range []string{"/fhir/Coverage/" + id, "/fhir/Coverage/" + id + "/_history/1", "/fhir/Coverage/" + id + "/_history/2"} {
			if r := s.Do(t, "GET", path, nil, nil); r.Status == http.StatusOK {
				t.Errorf("%s readable after one of its patients was erased", path)
			}
		}
		// The re-owned versions and the erasure of a joint key are in the
		// ledger: the database verifies against the log.
		rep, err := s.App.Ledger().Verify(ctx, nil)
		if err != nil || !rep.OK() {
			t.Fatalf("verify after reindex and erasure: %v %s %+v", err, rep.LogDivergence, rep.Data.Problems)
		}
	})
}

// $everything pages are filled with what the caller may see: a short
// page would tell that hidden records (42 CFR Part 2 here) exist.
func TestEverythingPagesFilled(t *testing.T) {
	apitest.Run(t, func(t *testing.T, s *apitest.Server) {
		pid := s.Create(t, patient(uniq(), nil))
		doc := newActor(t, s, "physician", "")
		careTeam(t, s, pid, doc.fhirUser)
		var hidden []string
		for range 4 {
			hidden = append(hidden, s.Create(t, labelled(observation(pid, nil), "42CFRPart2")))
			s.Create(t, observation(pid, nil))
		}
		var got []string
		next := "/fhir/Patient/" + pid + "/$everything?_count=2"
		for i := 0; next != "" && i < 20; i++ {
			r := s.Do(t, "GET", next, nil, doc.headers).Want(t, http.StatusOK)
			if n := len(r.Entries()); n != 2 && r.Link("next") != "" {
				t.Fatalf("page %d has %d entries and a next link", i, n)
			}
			got = append(got, r.IDs()...)
			next = r.Link("next")
		}
		for _, h := range hidden {
			if slices.Contains(got, "Observation/"+h) {
				t.Fatalf("$everything served a Part 2 record to a clinician without consent")
			}
		}
		if len(got) != 1+4+1 { // the Patient, 4 Observations, the CareTeam
			t.Fatalf("$everything pages hold %d entries, want 6: %v", len(got), got)
		}
	})
}

// Stored AuditEvent resources would be forged log entries in a
// patient's compartment: refused on every write path.
func TestAuditEventsNotWritable(t *testing.T) {
	apitest.Run(t, func(t *testing.T, s *apitest.Server) {
		pid := s.Create(t, patient(uniq(), nil))
		ae := map[string]any{"resourceType": "AuditEvent", "recorded": "2026-01-01T00:00:00Z",
			"type":   map[string]any{"system": "http://terminology.hl7.org/CodeSystem/audit-event-type", "code": "rest"},
			"agent":  []any{map[string]any{"requestor": true, "who": map[string]any{"reference": "Practitioner/x"}}},
			"source": map[string]any{"observer": map[string]any{"display": "forged"}},
			"entity": []any{map[string]any{"what": map[string]any{"reference": "Patient/" + pid}}}}
		s.Do(t, "POST", "/fhir/AuditEvent", ae, nil).WantOutcome(t, http.StatusUnprocessableEntity, http.StatusMethodNotAllowed, http.StatusNotFound)
		r := s.Do(t, "POST", "/fhir", bundle("transaction", entry("urn:uuid:"+uuidLike(), "POST", "AuditEvent", ae, nil)), nil)
		if r.Status == http.StatusOK {
			t.Fatalf("a transaction stored an AuditEvent: %s", r)
		}
		r = s.Do(t, "GET", "/fhir/Patient/"+pid+"/$everything", nil, nil).Want(t, http.StatusOK)
		for _, id := range r.IDs() {
			if strings.HasPrefix(id, "AuditEvent/") {
				t.Fatalf("$everything holds a stored AuditEvent %s", id)
			}
		}
	})
}
