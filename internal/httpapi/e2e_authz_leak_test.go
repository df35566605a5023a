package httpapi_test

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/phivault/phivault/internal/apitest"
	"github.com/phivault/phivault/internal/audit"
	"github.com/phivault/phivault/internal/record"
	"github.com/phivault/phivault/internal/storage"
)

// leakEnv: a physician on Patient A's care team; Patient B unrelated.
// Each has an Observation with the same code; A also has a 42 CFR
// Part 2 Observation with that code (hidden without consent).
type leakEnv struct {
	doc                  actor
	a, b                 string // patient ids
	obsA, obsB, obsPart2 string
	code                 string
}

func newLeakEnv(t *testing.T, s *apitest.Server) leakEnv {
	t.Helper()
	e := leakEnv{a: s.Create(t, patient(uniq(), nil)), b: s.Create(t, patient(uniq(), nil)), code: "lk" + uniq()}
	e.doc = newActor(t, s, "physician", "")
	careTeam(t, s, e.a, e.doc.fhirUser)
	obs := func(pid, label string) string {
		o := observation(pid, map[string]any{"code": map[string]any{"coding": []any{map[string]any{"system": testSystem, "code": e.code}}},
			"valueString": "SECRET-VALUE-" + pid})
		return s.Create(t, labelled(o, label))
	}
	e.obsA, e.obsB, e.obsPart2 = obs(e.a, ""), obs(e.b, ""), obs(e.a, "42CFRPart2")
	return e
}

func (e leakEnv) search(t *testing.T, s *apitest.Server, q string, h apitest.H) *apitest.Response {
	t.Helper()
	return s.Do(t, "GET", "/fhir/"+q, nil, h)
}

// TestAuthzSearchLeaks holds search narrowing to one test per channel a
// search could use to learn about resources the caller may not see.
func TestAuthzSearchLeaks(t *testing.T) {
	apitest.Run(t, func(t *testing.T, s *apitest.Server) {
		e := newLeakEnv(t, s)
		codeQ := "code=" + url.QueryEscape(testSystem+"|"+e.code)
		onlyA := []string{"Observation/" + e.obsA}

		t.Run("matches", func(t *testing.T) {
			r := e.search(t, s, "Observation?"+codeQ, e.doc.headers).Want(t, http.StatusOK)
			sameSet(t, "ids", r.IDs(), onlyA)
		})
		t.Run("total", func(t *testing.T) {
			r := e.search(t, s, "Observation?"+codeQ+"&_total=accurate", e.doc.headers).Want(t, http.StatusOK)
			if fmt.Sprint(r.JSON["total"]) != "1" {
				t.Fatalf("total %v, want 1 (the hidden ones must not count)", r.JSON["total"])
			}
		})
		t.Run("count only", func(t *testing.T) {
			r := e.search(t, s, "Observation?"+codeQ+"&_summary=count", e.doc.headers).Want(t, http.StatusOK)
			if fmt.Sprint(r.JSON["total"]) != "1" {
				t.Fatalf("_summary=count total %v, want 1", r.JSON["total"])
			}
			r = e.search(t, s, "Observation?"+codeQ+"&_count=0", e.doc.headers).Want(t, http.StatusOK)
			if fmt.Sprint(r.JSON["total"]) != "1" {
				t.Fatalf("_count=0 total %v, want 1", r.JSON["total"])
			}
		})
		t.Run("paging", func(t *testing.T) {
			var got []string
			r := e.search(t, s, "Observation?"+codeQ+"&_count=1", e.doc.headers).Want(t, http.StatusOK)
			for i := 0; ; i++ {
				got = append(got, r.IDs()...)
				next := ""
				for _, l := range r.JSON["link"].([]any) {
					if m := l.(map[string]any); m["relation"] == "next" {
						next = m["url"].(string)
					}
				}
				if next == "" || i > 5 {
					break
				}
				r = s.Do(t, "GET", next, nil, e.doc.headers).Want(t, http.StatusOK)
			}
			sameSet(t, "paged ids", got, onlyA)
		})
		t.Run("predicate on a hidden patient", func(t *testing.T) {
			r := e.search(t, s, "Observation?subject=Patient/"+e.b+"&_total=accurate", e.doc.headers).Want(t, http.StatusOK)
			if len(r.IDs()) != 0 || fmt.Sprint(r.JSON["total"]) != "0" {
				t.Fatalf("probing patient B: %v total %v", r.IDs(), r.JSON["total"])
			}
			r = e.search(t, s, "Patient?_id="+e.b+"&_total=accurate", e.doc.headers).Want(t, http.StatusOK)
			if fmt.Sprint(r.JSON["total"]) != "0" {
				t.Fatalf("Patient?_id of an unrelated patient: total %v", r.JSON["total"])
			}
		})
		t.Run("predicate on a hidden label", func(t *testing.T) {
			r := e.search(t, s, "Observation?_id="+e.obsPart2+"&_total=accurate", e.doc.headers).Want(t, http.StatusOK)
			if fmt.Sprint(r.JSON["total"]) != "0" {
				t.Fatalf("_id of a Part 2 observation: total %v", r.JSON["total"])
			}
		})
		// Includes, chains and _has are searches of the caller too: they
		// answer, and show nothing of B's or the Part 2 record
		// (e2e_search_include_test.go covers them role by role).
		for name, tc := range map[string]struct {
			q    string
			want []string
		}{
			"_include":    {"Observation?" + codeQ + "&_include=Observation:subject", []string{"Observation/" + e.obsA, "Patient/" + e.a}},
			"_revinclude": {"Patient?_id=" + e.a + "," + e.b + "&_revinclude=Observation:subject", []string{"Patient/" + e.a, "Observation/" + e.obsA}},
			"chained":     {"Observation?subject:Patient._id=" + e.a + "," + e.b, onlyA},
			"_has":        {"Patient?_has:Observation:subject:code=" + url.QueryEscape(testSystem+"|"+e.code), []string{"Patient/" + e.a}},
		} {
			for _, lenient := range []bool{false, true} {
				t.Run(fmt.Sprintf("%s lenient=%v", name, lenient), func(t *testing.T) {
					h := apitest.H{}
					if lenient {
						h["Prefer"] = "handling=lenient"
					}
					for k, v := range e.doc.headers {
						h[k] = v
					}
					r := e.search(t, s, tc.q, h).Want(t, http.StatusOK)
					sameSet(t, name, r.IDs(), tc.want)
					if body := string(r.Body); strings.Contains(body, "SECRET-VALUE-"+e.b) || strings.Contains(body, e.obsPart2) {
						t.Fatalf("%s revealed a hidden resource: %s", name, body)
					}
				})
			}
		}
		// _has on Patient must not reveal values of restricted
		// Observations: patients found through a hidden Observation's
		// value are not returned, lenient or not.
		t.Run("_has does not reveal restricted values", func(t *testing.T) {
			h := apitest.H{"Prefer": "handling=lenient"}
			for k, v := range e.doc.headers {
				h[k] = v
			}
			r := e.search(t, s, "Patient?_has:Observation:subject:value-string=SECRET-VALUE-"+e.b+"&_total=accurate", h).Want(t, http.StatusOK)
			if slices.Contains(r.IDs(), "Patient/"+e.b) {
				t.Fatal("_has matched an unrelated patient through its observation")
			}
		})
		t.Run("conditional create does not match hidden", func(t *testing.T) {
			o := observation(e.a, map[string]any{"code": map[string]any{"coding": []any{map[string]any{"system": testSystem, "code": e.code}}}})
			r := s.Do(t, "POST", "/fhir/Observation", o, apitest.H{"Authorization": apitest.NoAuth, "Cookie": e.doc.wheaders["Cookie"],
				"X-CSRF-Token": e.doc.wheaders["X-CSRF-Token"], "If-None-Exist": "_id=" + e.obsB})
			if r.Status != http.StatusCreated {
				t.Fatalf("If-None-Exist on a hidden resource: %d, want 201 (no match visible)", r.Status)
			}
		})
		t.Run("old version of a since-labelled resource", func(t *testing.T) {
			id := s.Create(t, observation(e.a, nil))
			s.Do(t, "GET", "/fhir/Observation/"+id+"/_history/1", nil, e.doc.headers).Want(t, http.StatusOK)
			o := labelled(observation(e.a, nil), "42CFRPart2")
			o["id"] = id
			s.Do(t, "PUT", "/fhir/Observation/"+id, o, nil).Want(t, http.StatusOK)
			s.Do(t, "GET", "/fhir/Observation/"+id+"/_history/1", nil, e.doc.headers).WantOutcome(t, http.StatusNotFound)
			s.Do(t, "GET", "/fhir/Observation/"+id+"/_history", nil, e.doc.headers).WantOutcome(t, http.StatusNotFound)
		})
		t.Run("history", func(t *testing.T) {
			r := s.Do(t, "GET", "/fhir/Observation/_history?_count=1000", nil, e.doc.headers).Want(t, http.StatusOK)
			for _, en := range r.Entries() {
				u, _ := en["fullUrl"].(string)
				if strings.HasSuffix(u, "/"+e.obsB) || strings.HasSuffix(u, "/"+e.obsPart2) {
					t.Fatalf("type history shows hidden %s", u)
				}
			}
		})
		t.Run("everything leaves out the labelled", func(t *testing.T) {
			r := s.Do(t, "GET", "/fhir/Patient/"+e.a+"/$everything", nil, e.doc.headers).Want(t, http.StatusOK)
			if ids := r.IDs(); slices.Contains(ids, "Observation/"+e.obsPart2) || !slices.Contains(ids, "Observation/"+e.obsA) {
				t.Fatalf("$everything: %v", ids)
			}
		})
		t.Run("denials are audited with the deciding policy", func(t *testing.T) {
			s.Do(t, "GET", "/fhir/Observation/"+e.obsPart2, nil, e.doc.headers).WantOutcome(t, http.StatusNotFound)
			s.Do(t, "GET", "/fhir/Observation/"+e.obsB, nil, e.doc.headers).WantOutcome(t, http.StatusForbidden)
			evs, err := s.App.Transparency().Events(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			var part2, norel bool
			for _, ev := range evs {
				if ev.Action != audit.ActionRead || ev.Outcome != audit.OutcomeDenied || ev.Agent.User != e.doc.userID {
					continue
				}
				part2 = part2 || slices.Contains(ev.Entities, "Observation/"+e.obsPart2+"/_history/1") && slices.Contains(ev.Policies, "part2-needs-consent")
				norel = norel || slices.Contains(ev.Entities, "Observation/"+e.obsB+"/_history/1") && slices.Contains(ev.Policies, "default-deny")
			}
			if !part2 || !norel {
				t.Fatalf("denials audited: part2 %v, no relationship %v", part2, norel)
			}
			for _, ev := range evs {
				if ev.Action == audit.ActionRead && ev.Outcome == audit.OutcomeSuccess && ev.Agent.User == e.doc.userID && len(ev.Policies) == 0 {
					t.Fatalf("an allowed read without deciding policies: %+v", ev)
				}
			}
		})
	})
}

func breakGlassBody(text string) map[string]any {
	return map[string]any{"resourceType": "Parameters", "parameter": []any{
		map[string]any{"name": "reason", "valueCode": "ETREAT"},
		map[string]any{"name": "text", "valueString": text}}}
}

// TestAuthzBreakGlass: a physician without a relationship breaks the
// glass on one patient: access to that patient only, audited ETREAT,
// with an alert and a review the privacy officer closes.
func TestAuthzBreakGlass(t *testing.T) {
	apitest.Run(t, func(t *testing.T, s *apitest.Server) {
		doc := newActor(t, s, "physician", "")
		p, other := s.Create(t, patient(uniq(), nil)), s.Create(t, patient(uniq(), nil))
		obs, otherObs := s.Create(t, observation(p, nil)), s.Create(t, observation(other, nil))
		s.Do(t, "GET", "/fhir/Observation/"+obs, nil, doc.headers).WantOutcome(t, http.StatusForbidden)

		desk := newActor(t, s, "front-desk", "")
		s.Do(t, "POST", "/fhir/Patient/"+p+"/$break-glass", breakGlassBody("x"), desk.wheaders).WantOutcome(t, http.StatusForbidden)
		s.Do(t, "POST", "/fhir/Patient/"+p+"/$break-glass", map[string]any{"resourceType": "Parameters"}, doc.wheaders).WantOutcome(t, http.StatusBadRequest)
		s.Do(t, "POST", "/fhir/Patient/nope-"+uniq()+"/$break-glass", breakGlassBody("x"), doc.wheaders).WantOutcome(t, http.StatusNotFound)

		const phi = "SECRET-REASON-TEXT"
		r := s.Do(t, "POST", "/fhir/Patient/"+p+"/$break-glass", breakGlassBody(phi), doc.wheaders).Want(t, http.StatusCreated)
		if r.JSON["resourceType"] != "Parameters" {
			t.Fatalf("answer: %s", r)
		}
		s.Do(t, "GET", "/fhir/Observation/"+obs, nil, doc.headers).Want(t, http.StatusOK)
		s.Do(t, "GET", "/fhir/Observation/"+otherObs, nil, doc.headers).WantOutcome(t, http.StatusForbidden)
		sr := s.Do(t, "GET", "/fhir/Observation?subject=Patient/"+p, nil, doc.headers).Want(t, http.StatusOK)
		sameSet(t, "search under the grant", sr.IDs(), []string{"Observation/" + obs})

		evs, err := s.App.Transparency().Events(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		var opened, etreat bool
		for _, ev := range evs {
			if ev.Agent.User != doc.userID {
				continue
			}
			opened = opened || ev.Action == audit.ActionBreakGlass && ev.Outcome == audit.OutcomeSuccess && ev.Purpose == "ETREAT" && slices.Contains(ev.Policies, "break-glass-open")
			etreat = etreat || ev.Action == audit.ActionRead && ev.Outcome == audit.OutcomeSuccess && ev.Purpose == "ETREAT" && slices.Contains(ev.Policies, "break-glass-access")
		}
		if !opened || !etreat {
			t.Fatalf("audit: grant opened %v, read under ETREAT %v", opened, etreat)
		}
		if strings.Contains(s.Logs(), phi) {
			t.Fatal("the free-text reason reached the server log")
		}

		// The privacy officer's desk: an alert and an open review.
		alerts := s.Do(t, "GET", "/admin/api/alerts", nil, nil).Want(t, http.StatusOK)
		if !strings.Contains(string(alerts.Body), `"priority":"high"`) || !strings.Contains(string(alerts.Body), "Patient/"+p) {
			t.Fatalf("alerts: %s", alerts.Body)
		}
		rv := s.Do(t, "GET", "/admin/api/break-glass/reviews", nil, nil).Want(t, http.StatusOK)
		list, _ := rv.JSON["reviews"].([]any)
		var id string
		for _, x := range list {
			m := x.(map[string]any)
			if m["patient"] == "Patient/"+p && m["user"] == doc.userID {
				id, _ = m["id"].(string)
			}
		}
		if id == "" {
			t.Fatalf("no open review for the grant: %s", rv.Body)
		}
		jsonDoc := apitest.H{"Content-Type": "application/json"}
		for k, v := range doc.wheaders {
			jsonDoc[k] = v
		}
		po := newActor(t, s, "privacy-officer", "")
		asPO := apitest.H{"Content-Type": "application/json"}
		for k, v := range po.wheaders {
			asPO[k] = v
		}
		close := "/admin/api/break-glass/reviews/" + id + "/close"
		s.Do(t, "POST", close, map[string]any{"outcome": "appropriate"}, jsonDoc).Want(t, http.StatusForbidden)
		s.Do(t, "POST", close, map[string]any{"outcome": "appropriate", "note": "bell\u0007"}, asPO).Want(t, http.StatusBadRequest)
		s.Do(t, "POST", close, map[string]any{"outcome": "appropriate", "note": "Checked with the ward: a real emergency."}, asPO).Want(t, http.StatusOK)
		s.Do(t, "POST", close, map[string]any{"outcome": "appropriate"}, asPO).Want(t, http.StatusConflict)
		s.Do(t, "GET", "/admin/api/break-glass/reviews", nil, po.headers).Want(t, http.StatusOK)
		evs, err = s.App.Transparency().Events(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		closed := false
		for _, ev := range evs {
			closed = closed || ev.Action == audit.ActionReviewClose && ev.Agent.User == po.userID && slices.Contains(ev.Entities, "Review/"+id)
		}
		if !closed {
			t.Fatal("closing the review was not audited")
		}
	})
}

// TestAuthzConsentAndMasking: a patient writes a Consent that denies a
// physician on the care team, then lifts it; front desk sees no SSN.
func TestAuthzConsentAndMasking(t *testing.T) {
	apitest.Run(t, func(t *testing.T, s *apitest.Server) {
		pid := s.Create(t, patient(uniq(), map[string]any{"identifier": []any{
			map[string]any{"system": testSystem, "value": uniq()},
			map[string]any{"system": "http://hl7.org/fhir/sid/us-ssn", "value": "999-12-3456"}}}))
		other := s.Create(t, patient(uniq(), nil))
		pat := newActor(t, s, "patient", pid)
		doc := newActor(t, s, "physician", "")
		careTeam(t, s, pid, doc.fhirUser)
		obs := s.Create(t, observation(pid, nil))
		s.Do(t, "GET", "/fhir/Observation/"+obs, nil, doc.headers).Want(t, http.StatusOK)

		s.Do(t, "POST", "/fhir/Consent", consentDeny(other, doc.fhirUser), pat.wheaders).WantOutcome(t, http.StatusForbidden)
		s.Do(t, "POST", "/fhir/Observation", observation(pid, nil), pat.wheaders).WantOutcome(t, http.StatusForbidden)
		cid := s.Do(t, "POST", "/fhir/Consent", consentDeny(pid, doc.fhirUser), pat.wheaders).Want(t, http.StatusCreated).ID()
		s.Do(t, "GET", "/fhir/Observation/"+obs, nil, doc.headers).WantOutcome(t, http.StatusNotFound)
		r := s.Do(t, "GET", "/fhir/Observation?subject=Patient/"+pid+"&_total=accurate", nil, doc.headers).Want(t, http.StatusOK)
		if fmt.Sprint(r.JSON["total"]) != "0" {
			t.Fatalf("search under a denying consent: total %v", r.JSON["total"])
		}
		c := consentDeny(pid, doc.fhirUser)
		c["id"], c["status"] = cid, "inactive"
		s.Do(t, "PUT", "/fhir/Consent/"+cid, c, pat.wheaders).Want(t, http.StatusOK)
		s.Do(t, "GET", "/fhir/Observation/"+obs, nil, doc.headers).Want(t, http.StatusOK)

		// Nobody but the patient writes its consent, and clinicians do
		// not grant themselves relationships.
		self := consentDeny(pid, doc.fhirUser)
		self["provision"] = map[string]any{"type": "permit"}
		s.Do(t, "POST", "/fhir/Consent", self, doc.wheaders).WantOutcome(t, http.StatusForbidden)
		s.Do(t, "POST", "/fhir/CareTeam", map[string]any{"resourceType": "CareTeam", "status": "active",
			"subject":     map[string]any{"reference": "Patient/" + pid},
			"participant": []any{map[string]any{"member": map[string]any{"reference": doc.fhirUser}}}}, doc.wheaders).WantOutcome(t, http.StatusForbidden)

		// A Part 2 record needs the patient's consent naming the actor
		// and the label; with it, read and search both reach it.
		p2 := s.Create(t, labelled(observation(pid, nil), "42CFRPart2"))
		s.Do(t, "GET", "/fhir/Observation/"+p2, nil, doc.headers).WantOutcome(t, http.StatusNotFound)
		permit := consentDeny(pid, doc.fhirUser)
		permit["provision"] = map[string]any{"type": "permit", "provision": []any{map[string]any{"type": "permit",
			"actor":         []any{map[string]any{"role": map[string]any{"coding": []any{map[string]any{"code": "PRCP"}}}, "reference": map[string]any{"reference": doc.fhirUser}}},
			"securityLabel": []any{map[string]any{"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "42CFRPart2"}}}}}
		s.Do(t, "POST", "/fhir/Consent", permit, pat.wheaders).Want(t, http.StatusCreated)
		s.Do(t, "GET", "/fhir/Observation/"+p2, nil, doc.headers).Want(t, http.StatusOK)
		r = s.Do(t, "GET", "/fhir/Observation?subject=Patient/"+pid, nil, doc.headers).Want(t, http.StatusOK)
		sameSet(t, "search with a Part 2 consent", r.IDs(), []string{"Observation/" + obs, "Observation/" + p2})
		other2 := s.Create(t, labelled(observation(other, nil), "42CFRPart2"))
		careTeam(t, s, other, doc.fhirUser)
		s.Do(t, "GET", "/fhir/Observation/"+other2, nil, doc.headers).WantOutcome(t, http.StatusNotFound)

		// Minimum necessary: front desk reads the patient without the SSN.
		desk := newActor(t, s, "front-desk", "")
		pr := s.Do(t, "GET", "/fhir/Patient/"+pid, nil, desk.headers).Want(t, http.StatusOK)
		if strings.Contains(string(pr.Body), "999-12-3456") || !strings.Contains(string(pr.Body), `"REDACTED"`) {
			t.Fatalf("front desk sees: %s", pr.Body)
		}
		sr := s.Do(t, "GET", "/fhir/Patient?_id="+pid, nil, desk.headers).Want(t, http.StatusOK)
		if strings.Contains(string(sr.Body), "999-12-3456") {
			t.Fatal("front desk search shows the SSN")
		}
		s.Do(t, "GET", "/fhir/Patient/"+pid, nil, pat.headers).Want(t, http.StatusOK)
		evs, err := s.App.Transparency().Events(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		purposes := map[string]string{}
		for _, ev := range evs {
			if ev.Action == audit.ActionRead && ev.Outcome == audit.OutcomeSuccess {
				purposes[ev.Agent.User] = ev.Purpose
			}
		}
		if purposes[pat.userID] != "PATRQT" || purposes[desk.userID] != "HOPERAT" || purposes[doc.userID] != "TREAT" {
			t.Fatalf("purposes of use: patient %q, front desk %q, physician %q", purposes[pat.userID], purposes[desk.userID], purposes[doc.userID])
		}
		dr := s.Do(t, "GET", "/fhir/Patient/"+pid, nil, doc.headers).Want(t, http.StatusOK)
		if !strings.Contains(string(dr.Body), "999-12-3456") {
			t.Fatal("the treating physician does not see the SSN")
		}
	})
}

// TestAuthzReindex: data indexed before the participant and label rows
// existed (simulated by emptying a CareTeam's index) grants nothing —
// fail closed — until "reindex" recomputes the rows.
func TestAuthzReindex(t *testing.T) {
	apitest.Run(t, func(t *testing.T, s *apitest.Server) {
		pid := s.Create(t, patient(uniq(), nil))
		doc := newActor(t, s, "physician", "")
		ct := s.Create(t, map[string]any{"resourceType": "CareTeam", "status": "active",
			"subject":     map[string]any{"reference": "Patient/" + pid},
			"participant": []any{map[string]any{"member": map[string]any{"reference": doc.fhirUser}}}})
		obs := s.Create(t, observation(pid, nil))
		if err := s.App.Store.Update(t.Context(), func(tx storage.Tx) error {
			return tx.ReplaceIndex(t.Context(), "CareTeam", ct, 1, nil)
		}); err != nil {
			t.Fatal(err)
		}
		s.App.Authz.Invalidate()
		s.Do(t, "GET", "/fhir/Observation/"+obs, nil, doc.headers).WantOutcome(t, http.StatusForbidden)
		n, err := s.App.Record.Reindex(t.Context(), record.Caller{Agent: audit.Agent{Client: "test"}, Guard: record.Offline()}, nil)
		if err != nil || n < 4 {
			t.Fatalf("Reindex = %d, %v", n, err)
		}
		s.Do(t, "GET", "/fhir/Observation/"+obs, nil, doc.headers).Want(t, http.StatusOK)
	})
}
