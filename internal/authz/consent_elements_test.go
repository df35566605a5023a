package authz

import (
	"encoding/json"
	"slices"
	"testing"
	"time"

	"github.com/phivault/phivault/internal/authn"
	"github.com/phivault/phivault/internal/authn/smart/scope"
)

// Every element of a provision is enforced, and what the engine cannot
// decide fails closed: an unknown deny applies, an unknown permit does
// not (issue 11, item 6).
func TestConsentProvisionElements(t *testing.T) {
	now := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
	dr := []string{"Practitioner/dr", "PractitionerRole/dr-cardio", "Organization/dept", "Organization/hospital", "CareTeam/ct1"}
	obs := func(extra map[string]any) *ResourceFacts {
		body := map[string]any{"resourceType": "Observation", "id": "o1", "status": "final",
			"code":              map[string]any{"coding": []any{map[string]any{"system": "http://loinc.org", "code": "1234-5"}}},
			"subject":           map[string]any{"reference": "Patient/p1"},
			"effectiveDateTime": "2020-03-01",
			"performer":         []any{map[string]any{"reference": "Practitioner/author"}},
		}
		for k, v := range extra {
			body[k] = v
		}
		b, _ := json.Marshal(body)
		rf, err := NewResourceFacts("Observation", "o1", b)
		if err != nil {
			t.Fatal(err)
		}
		return rf
	}
	read := ConsentRequest{Actors: dr, Type: "Observation", Actions: []string{"access", "use"}, Purpose: "TREAT", Now: now, Resource: obs(nil)}
	deny := func(p map[string]any) map[string]any {
		p["type"] = "deny"
		return map[string]any{"type": "permit", "provision": []any{p}}
	}
	permit := func(p map[string]any) map[string]any {
		p["type"] = "permit"
		return map[string]any{"type": "deny", "provision": []any{p}}
	}
	coding := func(system, code string) []any { return []any{map[string]any{"system": system, "code": code}} }
	concept := func(system, code string) []any {
		return []any{map[string]any{"coding": coding(system, code)}}
	}
	actor := func(ref string) []any {
		return []any{map[string]any{"role": map[string]any{"coding": coding("http://terminology.hl7.org/CodeSystem/v3-ParticipationType", "PRCP")}, "reference": map[string]any{"reference": ref}}}
	}
	with := func(r ConsentRequest, f func(*ConsentRequest)) ConsentRequest { f(&r); return r }
	for _, tc := range []struct {
		name      string
		provision map[string]any
		req       ConsentRequest
		deny      bool
	}{
		// data
		{"deny one instance", deny(map[string]any{"data": []any{map[string]any{"meaning": "instance", "reference": map[string]any{"reference": "Observation/o1"}}}}), read, true},
		{"deny another instance", deny(map[string]any{"data": []any{map[string]any{"meaning": "instance", "reference": map[string]any{"reference": "Observation/o2"}}}}), read, false},
		{"deny dependents of a patient record", deny(map[string]any{"data": []any{map[string]any{"meaning": "dependents", "reference": map[string]any{"reference": "Practitioner/author"}}}}), read, true},
		{"deny authored by", deny(map[string]any{"data": []any{map[string]any{"meaning": "authoredby", "reference": map[string]any{"reference": "Practitioner/author"}}}}), read, true},
		{"deny related, unresolved: fails closed", deny(map[string]any{"data": []any{map[string]any{"meaning": "related", "reference": map[string]any{"reference": "DiagnosticReport/r1"}}}}), read, true},
		{"deny data by an absolute URL: fails closed", deny(map[string]any{"data": []any{map[string]any{"meaning": "instance", "reference": map[string]any{"reference": "https://elsewhere/fhir/Observation/o9"}}}}), read, true},
		{"permit one instance only: another is not opened", permit(map[string]any{"actor": actor("Practitioner/dr"), "data": []any{map[string]any{"meaning": "instance", "reference": map[string]any{"reference": "Observation/o2"}}}}), read, true},
		{"permit this instance", permit(map[string]any{"actor": actor("Practitioner/dr"), "data": []any{map[string]any{"meaning": "instance", "reference": map[string]any{"reference": "Observation/o1"}}}}), read, false},
		// dataPeriod
		{"deny data of 2020", deny(map[string]any{"dataPeriod": map[string]any{"start": "2020-01-01", "end": "2020-12-31"}}), read, true},
		{"deny data of 2021", deny(map[string]any{"dataPeriod": map[string]any{"start": "2021-01-01", "end": "2021-12-31"}}), read, false},
		{"deny a period on data without a time: fails closed", deny(map[string]any{"dataPeriod": map[string]any{"start": "2021-01-01"}}), with(read, func(r *ConsentRequest) {
			b, _ := json.Marshal(map[string]any{"resourceType": "Observation", "id": "o1"})
			r.Resource, _ = NewResourceFacts("Observation", "o1", b)
		}), true},
		{"permit only 2021 data: 2020 stays denied", permit(map[string]any{"actor": actor("Practitioner/dr"), "dataPeriod": map[string]any{"start": "2021-01-01"}}), read, true},
		// purpose
		{"deny for treatment", deny(map[string]any{"purpose": coding("http://terminology.hl7.org/CodeSystem/v3-ActReason", "TREAT")}), read, true},
		{"deny for treatment covers emergency treatment", deny(map[string]any{"purpose": coding("http://terminology.hl7.org/CodeSystem/v3-ActReason", "TREAT")}), with(read, func(r *ConsentRequest) { r.Purpose = "ETREAT" }), true},
		{"deny for payment, read for treatment", deny(map[string]any{"purpose": coding("http://terminology.hl7.org/CodeSystem/v3-ActReason", "HPAYMT")}), read, false},
		{"deny for a purpose of an unknown system: fails closed", deny(map[string]any{"purpose": coding("urn:other", "X")}), read, true},
		// action
		{"deny access", deny(map[string]any{"action": concept("http://terminology.hl7.org/CodeSystem/consentaction", "access")}), read, true},
		{"deny correct, read", deny(map[string]any{"action": concept("http://terminology.hl7.org/CodeSystem/consentaction", "correct")}), read, false},
		{"deny correct, update", deny(map[string]any{"action": concept("http://terminology.hl7.org/CodeSystem/consentaction", "correct")}), with(read, func(r *ConsentRequest) { r.Actions = []string{"correct"} }), true},
		{"deny disclose, app read", deny(map[string]any{"action": concept("http://terminology.hl7.org/CodeSystem/consentaction", "disclose")}), with(read, func(r *ConsentRequest) { r.Actions = []string{"access", "use", "disclose"} }), true},
		{"deny an unknown action: fails closed", deny(map[string]any{"action": concept("urn:other", "print")}), read, true},
		{"permit an unknown action: not opened", permit(map[string]any{"actor": actor("Practitioner/dr"), "action": concept("urn:other", "print")}), read, true},
		// code
		{"deny a code", deny(map[string]any{"code": concept("http://loinc.org", "1234-5")}), read, true},
		{"deny another code", deny(map[string]any{"code": concept("http://loinc.org", "9999-9")}), read, false},
		{"deny a code, same code in another system", deny(map[string]any{"code": concept("http://snomed.info/sct", "1234-5")}), read, false},
		// class
		{"deny a profile the resource claims", deny(map[string]any{"class": coding("urn:ietf:rfc:3986", "http://example.org/StructureDefinition/p")}), with(read, func(r *ConsentRequest) {
			r.Resource = obs(map[string]any{"meta": map[string]any{"profile": []any{"http://example.org/StructureDefinition/p"}}})
		}), true},
		{"deny a class of an unknown system: fails closed", deny(map[string]any{"class": coding("urn:other", "lab")}), read, true},
		// actors
		{"deny a PractitionerRole of the caller", deny(map[string]any{"actor": actor("PractitionerRole/dr-cardio")}), read, true},
		{"deny a CareTeam of the caller", deny(map[string]any{"actor": actor("CareTeam/ct1")}), read, true},
		{"deny the parent organization", deny(map[string]any{"actor": actor("Organization/hospital")}), read, true},
		{"deny another CareTeam", deny(map[string]any{"actor": actor("CareTeam/ct9")}), read, false},
		{"deny a Group: fails closed", deny(map[string]any{"actor": actor("Group/g1")}), read, true},
		{"permit a Group: not opened", permit(map[string]any{"actor": actor("Group/g1")}), read, true},
		// modifiers
		{"a modifierExtension makes a permit not apply", permit(map[string]any{"actor": actor("Practitioner/dr"), "modifierExtension": []any{map[string]any{"url": "urn:x", "valueBoolean": true}}}), read, true},
		{"a modifierExtension makes a deny apply", deny(map[string]any{"actor": actor("Practitioner/other"), "modifierExtension": []any{map[string]any{"url": "urn:x", "valueBoolean": true}}}), read, false},
		// periods
		{"unreadable period on a deny: fails closed", deny(map[string]any{"period": map[string]any{"start": "soon"}}), read, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := ParseConsent(consentJSONOf(t, tc.provision))
			if err != nil {
				t.Fatal(err)
			}
			if r := c.Evaluate(tc.req); r.Deny != tc.deny {
				t.Fatalf("deny = %v, want %v (%+v)", r.Deny, tc.deny, r)
			}
		})
	}
}

// A modifier extension on an actor provision that does not match the
// caller still makes nothing apply to them beyond "unknown": the deny
// applies. (The case above with another actor shows the actor check
// comes first: "no" beats "unknown".)

// A search probe reports when a consent's answer depends on content.
func TestConsentProbePartial(t *testing.T) {
	c, err := ParseConsent(consentJSONOf(t, map[string]any{"type": "permit", "provision": []any{
		map[string]any{"type": "deny", "securityLabel": []any{map[string]any{"code": "CUSTOM-LABEL"}}}}}))
	if err != nil {
		t.Fatal(err)
	}
	r := c.Evaluate(ConsentRequest{Actors: []string{"Practitioner/dr"}, Type: "Observation", Now: time.Now(), Probe: true})
	if !r.Partial {
		t.Fatalf("a label deny did not make the probe partial: %+v", r)
	}
	c, _ = ParseConsent(consentJSONOf(t, map[string]any{"type": "permit", "provision": []any{
		map[string]any{"type": "deny", "actor": []any{map[string]any{"reference": map[string]any{"reference": "Practitioner/dr"}}}}}}))
	if r := c.Evaluate(ConsentRequest{Actors: []string{"Practitioner/dr"}, Type: "Observation", Now: time.Now(), Probe: true}); r.Partial || !r.Deny {
		t.Fatalf("an actor deny: %+v, want a whole deny", r)
	}
	// A provision that cannot bind this caller leaves the probe whole.
	if r := c.Evaluate(ConsentRequest{Actors: []string{"Practitioner/other"}, Type: "Observation", Now: time.Now(), Probe: true}); r.Partial || r.Deny {
		t.Fatalf("another actor: %+v", r)
	}
}

func TestResourceFactsBounded(t *testing.T) {
	deep := any("x")
	for range maxWalkDepth + 2 {
		deep = map[string]any{"a": deep}
	}
	b, _ := json.Marshal(map[string]any{"resourceType": "Observation", "x": deep})
	if _, err := NewResourceFacts("Observation", "o", b); err == nil {
		t.Fatal("a resource nested beyond the walk bound gave facts")
	}
	if _, err := NewResourceFacts("Observation", "o", []byte("{")); err == nil {
		t.Fatal("malformed JSON gave facts")
	}
}

// A resource naming several patients is decided for each of them.
func TestDecideJoint(t *testing.T) {
	ct := func(id, pid string) Found {
		return Found{Type: "CareTeam", ID: id, Owner: "Patient/" + pid,
			JSON: []byte(`{"resourceType":"CareTeam","status":"active","subject":{"reference":"Patient/` + pid + `"},"participant":[{"member":{"reference":"Practitioner/pr"}}]}`)}
	}
	src := &memSource{res: []Found{ct("c1", "p1")}}
	a, p := testAuthorizer(t, src, nil, nil)
	joint := Target{Type: "Coverage", ID: "cv", Owner: JointPrefix + "x", Patients: []string{"Patient/p1", "Patient/p2"}}
	if d, err := a.Decide(t.Context(), p, Read, joint); err != nil || d.Allowed {
		t.Fatalf("care team of one of two patients: %+v %v, want a denial", d, err)
	}
	src.res = append(src.res, ct("c2", "p2"))
	a.Changed("CareTeam", "Patient/p2")
	if d, err := a.Decide(t.Context(), p, Read, joint); err != nil || !d.Allowed {
		t.Fatalf("care team of both: %+v %v, want an allow", d, err)
	}
	// A consent of either patient that denies the caller denies.
	src.res = append(src.res, Found{Type: "Consent", ID: "k", Owner: "Patient/p2", JSON: consentJSONFor(t, "Patient/p2",
		map[string]any{"type": "permit", "provision": []any{map[string]any{"type": "deny", "actor": []any{map[string]any{"reference": map[string]any{"reference": "Practitioner/pr"}}}}}})})
	a.Changed("Consent", "Patient/p2")
	if d, err := a.Decide(t.Context(), p, Read, joint); err != nil || d.Allowed || !d.Conceal {
		t.Fatalf("the second patient's consent denies: %+v %v", d, err)
	}
	for _, bad := range []Target{
		{Type: "Coverage", Owner: JointPrefix + "x"},
		{Type: "Coverage", Owner: JointPrefix + "x", Patients: []string{"Patient/p1"}},
		{Type: "Coverage", Owner: JointPrefix + "x", Patients: []string{"Patient/p1", "org"}},
	} {
		if d, err := a.Decide(t.Context(), p, Read, bad); err == nil || d.Allowed {
			t.Errorf("joint target %+v: %+v %v, want undecidable", bad, d, err)
		}
	}
}

func consentJSONFor(t *testing.T, patient string, provision map[string]any) []byte {
	t.Helper()
	var m map[string]any
	_ = json.Unmarshal(consentJSONOf(t, provision), &m)
	m["patient"] = map[string]any{"reference": patient}
	b, _ := json.Marshal(m)
	return b
}

// A consent that cannot be read denies the accesses it could bind, and
// fails no decision about anyone else (issue 11, item 4).
func TestUndecidableConsentFailsClosedForItsPatientOnly(t *testing.T) {
	deep := map[string]any{"type": "deny"}
	for range maxProvisionDepth + 1 {
		deep = map[string]any{"type": "permit", "provision": []any{deep}}
	}
	ct := func(id, pid string) Found {
		return Found{Type: "CareTeam", ID: id, Owner: "Patient/" + pid,
			JSON: []byte(`{"resourceType":"CareTeam","status":"active","subject":{"reference":"Patient/` + pid + `"},"participant":[{"member":{"reference":"Practitioner/pr"}}]}`)}
	}
	src := &memSource{res: []Found{ct("c1", "p1"), ct("c2", "p2"),
		{Type: "Consent", ID: "bad", Owner: "Patient/p1", JSON: consentJSONFor(t, "Patient/p1", deep)}}}
	a, p := testAuthorizer(t, src, nil, nil)
	if d, err := a.Decide(t.Context(), p, Read, Target{Type: "Observation", Owner: "Patient/p1"}); err != nil || d.Allowed {
		t.Fatalf("the locked patient: %+v %v, want a denial without error", d, err)
	}
	if d, err := a.Decide(t.Context(), p, Read, Target{Type: "Observation", Owner: "Patient/p2"}); err != nil || !d.Allowed {
		t.Fatalf("another patient: %+v %v", d, err)
	}
	sys := authn.Principal{Kind: "token", ID: "t", Roles: []string{"system"}}
	if d, err := a.Decide(t.Context(), sys, Read, Target{Type: "Observation", Owner: "Patient/p1"}); err != nil || !d.Allowed {
		t.Fatalf("the system token on the locked patient: %+v %v", d, err)
	}
	f, err := a.Narrow(t.Context(), p, Search, "Observation")
	if err != nil {
		t.Fatalf("narrowing with a locked patient among the related: %v", err)
	}
	if !slices.Contains(f.Owners, "Patient/p2") || slices.Contains(f.Owners, "Patient/p1") {
		t.Fatalf("filter %+v: want p2 only", f)
	}
}

// Two principals of one account with different scopes are cached apart
// (issue 11, item 9).
func TestSubjectCacheKeyedByScopes(t *testing.T) {
	src := &memSource{res: []Found{careTeamFound}}
	a, p := testAuthorizer(t, src, nil, nil)
	obs, _ := scope.ParseSet("user/Observation.rs")
	pat, _ := scope.ParseSet("user/Patient.rs")
	app := func(s scope.Set) authn.Principal {
		q := p
		q.Kind, q.Scopes = authn.KindSMARTApp, &s
		return q
	}
	tgt := Target{Type: "Observation", ID: "o", Owner: "Patient/p1"}
	if d, err := a.Decide(t.Context(), app(obs), Read, tgt); err != nil || !d.Allowed {
		t.Fatalf("Observation scope: %+v %v", d, err)
	}
	if d, err := a.Decide(t.Context(), app(pat), Read, tgt); err != nil || d.Allowed {
		t.Fatalf("Patient scope on an Observation, after a cached Observation token: %+v %v", d, err)
	}
	if f, err := a.Narrow(t.Context(), app(pat), Search, "Observation"); err != nil || !f.Nothing() {
		t.Fatalf("Patient-scoped filter on Observation: %+v %v", f, err)
	}
}

// An encounter gives a relationship until its end plus the window.
func TestEncounterRelationshipExpires(t *testing.T) {
	now := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)
	w := DefaultEncounterWindow
	for _, tc := range []struct {
		status     string
		start, end string
		want       bool
	}{
		{"in-progress", "2026-05-31", "", true},
		{"in-progress", "2026-01-02", "", false}, // open-ended: 90 days at most
		{"in-progress", "", "", false},           // no dates: no relationship
		{"planned", "", "", false},
		{"arrived", "", "", false},
		{"finished", "2026-05-01", "2026-05-10", true},
		{"finished", "2026-01-01", "2026-01-05", false},
		{"finished", "", "", false},
		{"finished", "", "2026-05-25", true},
		{"finished", "2026-05-20", "", true},
		{"finished", "2025-05-20", "", false},
		{"planned", "2026-06-05", "", true},
		{"planned", "2026-06-20", "", false}, // more than 7 days ahead
		{"in-progress", "not a date", "", false},
	} {
		var p *period
		if tc.start != "" || tc.end != "" {
			p = &period{Start: tc.start, End: tc.end}
		}
		if got := encounterCurrent(tc.status, p, now, w); got != tc.want {
			t.Errorf("%s %s..%s: %v, want %v", tc.status, tc.start, tc.end, got, tc.want)
		}
	}
	enc := func(id, end string) Found {
		return Found{Type: "Encounter", ID: id, Owner: "Patient/p1", JSON: []byte(`{"resourceType":"Encounter","status":"finished","subject":{"reference":"Patient/p1"},"period":{"start":"2026-01-01","end":"` + end + `"},"participant":[{"individual":{"reference":"Practitioner/pr"}}]}`)}
	}
	a, p := testAuthorizer(t, &memSource{res: []Found{enc("e1", "2026-01-02")}}, nil, func() time.Time { return now })
	if d, err := a.Decide(t.Context(), p, Read, Target{Type: "Observation", Owner: "Patient/p1"}); err != nil || d.Allowed {
		t.Fatalf("an encounter that ended in January: %+v %v", d, err)
	}
	a, p = testAuthorizer(t, &memSource{res: []Found{enc("e1", "2026-05-30")}}, nil, func() time.Time { return now })
	if d, err := a.Decide(t.Context(), p, Read, Target{Type: "Observation", Owner: "Patient/p1"}); err != nil || !d.Allowed {
		t.Fatalf("an encounter that ended two days ago: %+v %v", d, err)
	}
}

// More labels than decided on are undecidable, never truncated.
func TestTooManyLabels(t *testing.T) {
	var sec []any
	for i := range MaxLabels + 1 {
		sec = append(sec, map[string]any{"code": "L" + string(rune('A'+i%26)) + string(rune('a'+i/26))})
	}
	b, _ := json.Marshal(map[string]any{"resourceType": "Observation", "meta": map[string]any{"security": sec}})
	if _, _, err := ResourceLabels(b, false); err == nil {
		t.Fatal("65 labels read without error")
	}
}

// A care team naming the user whose content failed its integrity check
// (its patient's row or data key was changed in the database, SRE
// re-test F2) gives no relationship with its patient, fails no decision
// about another patient, and makes a consent that names it deny (it
// might have applied).
func TestTamperedCareTeamFailsClosedForItsPatientOnly(t *testing.T) {
	ct := func(id, pid string) Found {
		return Found{Type: "CareTeam", ID: id, Owner: "Patient/" + pid,
			JSON: []byte(`{"resourceType":"CareTeam","status":"active","subject":{"reference":"Patient/` + pid + `"},"participant":[{"member":{"reference":"Practitioner/pr"}}]}`)}
	}
	denyC1 := map[string]any{"type": "permit", "provision": []any{map[string]any{"type": "deny",
		"actor": []any{map[string]any{"role": map[string]any{"coding": []any{map[string]any{"code": "PRCP"}}}, "reference": map[string]any{"reference": "CareTeam/c1"}}}}}}
	src := &memSource{res: []Found{
		{Type: "CareTeam", ID: "c1", Owner: "Patient/p1", Tampered: true},
		ct("c2", "p2"), ct("c3", "p3"),
		{Type: "Consent", ID: "k3", Owner: "Patient/p3", JSON: consentJSONFor(t, "Patient/p3", denyC1)}}}
	a, p := testAuthorizer(t, src, nil, nil)
	for _, tc := range []struct {
		owner string
		allow bool
	}{{"Patient/p1", false}, {"Patient/p2", true}, {"Patient/p3", false}} {
		d, err := a.Decide(t.Context(), p, Read, Target{Type: "Observation", Owner: tc.owner})
		if err != nil || d.Allowed != tc.allow {
			t.Errorf("%s: %+v %v, want allowed=%t without error", tc.owner, d, err, tc.allow)
		}
	}
	f, err := a.Narrow(t.Context(), p, Search, "Observation")
	if err != nil {
		t.Fatalf("narrowing with a tampered care team among the user's: %v", err)
	}
	if !slices.Contains(f.Owners, "Patient/p2") || slices.Contains(f.Owners, "Patient/p1") || slices.Contains(f.Owners, "Patient/p3") {
		t.Fatalf("filter %+v: want p2 only", f)
	}
}
