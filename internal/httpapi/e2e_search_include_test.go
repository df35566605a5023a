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
)

// includeEnv is the data of the include, chain and _has tests.
//
//   - Patient A: on the physician's care team; the portal patient pa is
//     A. A has obsA (code X, its subject also carries A's MRN as a
//     Reference.identifier), obsA2 (code Y, labelled 42 CFR Part 2:
//     hidden from the physician), obsA3 (code Z, in encounter encHid,
//     an Encounter labelled Part 2 with status in-progress) and encA
//     (finished).
//   - Patient B: unrelated to everyone but its own portal patient pb;
//     obsB has code X too.
//   - Patient C: on the care team, but C's Consent denies the physician;
//     obsC has code X.
type includeEnv struct {
	doc, outsider, pa, pb, desk actor
	a, b, c                     string
	mrnA, mrnB                  string
	obsA, obsA2, obsA3, obsB    string
	obsC, encA, encHid          string
	careTeamA                   string // the physician's CareTeam of A
	codeX, codeY, codeZ         string
}

func newIncludeEnv(t *testing.T, s *apitest.Server) includeEnv {
	t.Helper()
	e := includeEnv{mrnA: "A" + uniq(), mrnB: "B" + uniq(), codeX: "x" + uniq(), codeY: "y" + uniq(), codeZ: "z" + uniq()}
	e.a = s.Create(t, patient(e.mrnA, nil))
	e.b = s.Create(t, patient(e.mrnB, nil))
	e.c = s.Create(t, patient(uniq(), nil))
	e.doc = newActor(t, s, "physician", "")
	e.outsider = newActor(t, s, "physician", "")
	e.desk = newActor(t, s, "front-desk", "")
	e.pa = newActor(t, s, "patient", e.a)
	e.pb = newActor(t, s, "patient", e.b)
	careTeam(t, s, e.a, e.doc.fhirUser)
	careTeam(t, s, e.c, e.doc.fhirUser)
	if ids := s.Do(t, "GET", "/fhir/CareTeam?subject=Patient/"+e.a, nil, nil).Want(t, http.StatusOK).IDs(); len(ids) == 1 {
		e.careTeamA = ids[0]
	} else {
		t.Fatalf("care teams of A: %v", ids)
	}
	s.Create(t, consentDeny(e.c, e.doc.fhirUser))
	code := func(c string) map[string]any {
		return map[string]any{"coding": []any{map[string]any{"system": testSystem, "code": c}}}
	}
	e.obsA = s.Create(t, observation(e.a, map[string]any{"code": code(e.codeX),
		"subject": map[string]any{"reference": "Patient/" + e.a, "identifier": map[string]any{"system": testSystem, "value": e.mrnA}}}))
	e.obsA2 = s.Create(t, labelled(observation(e.a, map[string]any{"code": code(e.codeY), "valueString": "SECRET-PART2"}), "42CFRPart2"))
	e.encA = s.Create(t, map[string]any{"resourceType": "Encounter", "status": "finished",
		"class": map[string]any{"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"}, "subject": map[string]any{"reference": "Patient/" + e.a}})
	e.encHid = s.Create(t, labelled(map[string]any{"resourceType": "Encounter", "status": "in-progress",
		"class": map[string]any{"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"}, "subject": map[string]any{"reference": "Patient/" + e.a}}, "42CFRPart2"))
	e.obsA3 = s.Create(t, observation(e.a, map[string]any{"code": code(e.codeZ), "encounter": map[string]any{"reference": "Encounter/" + e.encHid}}))
	e.obsB = s.Create(t, observation(e.b, map[string]any{"code": code(e.codeX),
		"subject": map[string]any{"reference": "Patient/" + e.b, "identifier": map[string]any{"system": testSystem, "value": e.mrnB}}}))
	e.obsC = s.Create(t, observation(e.c, map[string]any{"code": code(e.codeX)}))
	return e
}

// readable reports whether a may read ref ("Type/id") on its own.
func readable(t *testing.T, s *apitest.Server, a actor, ref string) bool {
	t.Helper()
	r := s.Do(t, "GET", "/fhir/"+ref, nil, a.headers)
	switch r.Status {
	case http.StatusOK:
		return true
	case http.StatusNotFound, http.StatusForbidden, http.StatusGone:
		return false
	}
	t.Fatalf("GET %s: %s", ref, r)
	return false
}

// byMode splits a searchset's entries into matches and includes
// ("Type/id"), failing on any other mode.
func byMode(t *testing.T, r *apitest.Response) (match, include []string) {
	t.Helper()
	for _, en := range r.Entries() {
		res, _ := en["resource"].(map[string]any)
		sm, _ := en["search"].(map[string]any)
		switch sm["mode"] {
		case "match":
			match = append(match, apitest.Ref(res))
		case "include":
			include = append(include, apitest.Ref(res))
		default:
			t.Fatalf("entry with search mode %v: %v", sm["mode"], en)
		}
	}
	return match, include
}

// TestSearchIncludeChainAuthz holds _include, _revinclude, chains, _has
// and :identifier to THE RULE, role by role: what each returns is what
// the caller could read one by one, and the expected sets are exact.
func TestSearchIncludeChainAuthz(t *testing.T) {
	apitest.Run(t, func(t *testing.T, s *apitest.Server) {
		e := newIncludeEnv(t, s)
		sys := actor{role: "system"}
		q := func(c string) string { return url.QueryEscape(testSystem + "|" + c) }
		P := func(id string) string { return "Patient/" + id }
		O := func(id string) string { return "Observation/" + id }
		E := func(id string) string { return "Encounter/" + id }
		type want struct{ match, include []string }
		cases := []struct {
			name, query string
			by          map[string]want // actor name -> want
		}{
			{"_include subject", "Observation?code=" + q(e.codeX) + "&_include=Observation:subject", map[string]want{
				"doc":      {[]string{O(e.obsA)}, []string{P(e.a)}},
				"outsider": {},
				"pa":       {[]string{O(e.obsA)}, []string{P(e.a)}},
				"pb":       {[]string{O(e.obsB)}, []string{P(e.b)}},
				"system":   {[]string{O(e.obsA), O(e.obsB), O(e.obsC)}, []string{P(e.a), P(e.b), P(e.c)}},
			}},
			{"_include with target type", "Observation?code=" + q(e.codeZ) + "&_include=Observation:encounter:Encounter&_include=Observation:subject:Patient", map[string]want{
				"doc":    {[]string{O(e.obsA3)}, []string{P(e.a)}}, // encHid is Part 2
				"pb":     {},
				"system": {[]string{O(e.obsA3)}, []string{P(e.a), E(e.encHid)}},
			}},
			{"_revinclude", "Patient?_id=" + e.a + "," + e.b + "," + e.c + "&_revinclude=Observation:subject", map[string]want{
				"doc":      {[]string{P(e.a)}, []string{O(e.obsA), O(e.obsA3)}},
				"outsider": {},
				"pa":       {[]string{P(e.a)}, []string{O(e.obsA), O(e.obsA2), O(e.obsA3)}},
				"pb":       {[]string{P(e.b)}, []string{O(e.obsB)}},
				"system":   {[]string{P(e.a), P(e.b), P(e.c)}, []string{O(e.obsA), O(e.obsA2), O(e.obsA3), O(e.obsB), O(e.obsC)}},
			}},
			{"_revinclude:iterate and _include:iterate", "Patient?_id=" + e.a + "&_revinclude=Observation:subject&_include:iterate=Observation:encounter", map[string]want{
				"doc":    {[]string{P(e.a)}, []string{O(e.obsA), O(e.obsA3)}},
				"pb":     {},
				"system": {[]string{P(e.a)}, []string{O(e.obsA), O(e.obsA2), O(e.obsA3), E(e.encHid)}},
			}},
			{"wildcards", "Observation?_id=" + e.obsA3 + "&_include=*&_revinclude:iterate=*", map[string]want{
				"doc": {[]string{O(e.obsA3)}, []string{P(e.a), O(e.obsA), E(e.encA), e.careTeamA}},
				"pb":  {},
			}},
			{"chain to an identifier", "Observation?subject:Patient.identifier=" + q(e.mrnB), map[string]want{
				"doc":      {},
				"outsider": {},
				"pa":       {},
				"pb":       {[]string{O(e.obsB)}, nil},
				"system":   {[]string{O(e.obsB)}, nil},
			}},
			{"chain without a type", "Observation?patient.identifier=" + q(e.mrnA) + "&code=" + q(e.codeX), map[string]want{
				"doc": {[]string{O(e.obsA)}, nil},
				"pb":  {},
				"pa":  {[]string{O(e.obsA)}, nil},
			}},
			{"chain through a hidden encounter", "Observation?encounter.status=in-progress&subject=" + P(e.a), map[string]want{
				"doc":    {},
				"system": {[]string{O(e.obsA3)}, nil},
			}},
			{"two-level chain", "Observation?encounter.subject:Patient.identifier=" + q(e.mrnA), map[string]want{
				"doc":    {},
				"system": {[]string{O(e.obsA3)}, nil},
			}},
			{"_has", "Patient?_has:Observation:subject:code=" + q(e.codeX), map[string]want{
				"doc":      {[]string{P(e.a)}, nil},
				"outsider": {},
				"pa":       {[]string{P(e.a)}, nil},
				"pb":       {[]string{P(e.b)}, nil},
				"system":   {[]string{P(e.a), P(e.b), P(e.c)}, nil},
			}},
			{"_has through a hidden record", "Patient?_has:Observation:subject:code=" + q(e.codeY), map[string]want{
				"doc":    {},
				"pb":     {},
				"system": {[]string{P(e.a)}, nil},
			}},
			{"nested _has", "Patient?_has:Encounter:patient:_has:Observation:encounter:code=" + q(e.codeZ), map[string]want{
				"doc":    {},
				"system": {[]string{P(e.a)}, nil},
			}},
			{":identifier", "Observation?subject:identifier=" + q(e.mrnA), map[string]want{
				"doc":      {[]string{O(e.obsA)}, nil},
				"outsider": {},
				"pa":       {[]string{O(e.obsA)}, nil},
				"pb":       {},
				"system":   {[]string{O(e.obsA)}, nil},
			}},
			{"front desk: includes masked, no clinical", "Patient?_id=" + e.a + "&_revinclude=Observation:subject", map[string]want{
				"desk": {[]string{P(e.a)}, []string{}},
			}},
		}
		actors := map[string]actor{"doc": e.doc, "outsider": e.outsider, "pa": e.pa, "pb": e.pb, "system": sys, "desk": e.desk}
		for _, tc := range cases {
			for _, name := range slices.Sorted(func(yield func(string) bool) {
				for k := range actors {
					if !yield(k) {
						return
					}
				}
			}) {
				a := actors[name]
				t.Run(tc.name+"/"+name, func(t *testing.T) {
					r := s.Do(t, "GET", "/fhir/"+tc.query+"&_total=accurate", nil, a.headers).Want(t, http.StatusOK)
					match, include := byMode(t, r)
					// Everything returned is readable one by one.
					for _, ref := range slices.Concat(match, include) {
						if !readable(t, s, a, ref) {
							t.Errorf("%s got %s, which it cannot read", name, ref)
						}
					}
					if strings.Contains(string(r.Body), "SECRET-PART2") && name != "pa" && name != "system" {
						t.Errorf("%s got the Part 2 record's content", name)
					}
					if total, _ := r.Total(); total != len(match) {
						t.Errorf("total %d, matches %v", total, match)
					}
					w, ok := tc.by[name]
					if !ok {
						return
					}
					sameSet(t, "matches", match, w.match)
					if w.include != nil || len(w.match) == 0 {
						sameSet(t, "includes", include, w.include)
					}
				})
			}
		}

		t.Run("paging pages the matches; includes ride with each page", func(t *testing.T) {
			r := s.Do(t, "GET", "/fhir/Observation?subject="+P(e.a)+"&_include=Observation:subject&_count=1&_total=accurate", nil, e.doc.headers).Want(t, http.StatusOK)
			var matches []string
			for i := 0; ; i++ {
				m, inc := byMode(t, r)
				if len(m) != 1 {
					t.Fatalf("page %d: matches %v", i, m)
				}
				sameSet(t, "page includes", inc, []string{P(e.a)})
				matches = append(matches, m...)
				next := r.Link("next")
				if next == "" || i > 5 {
					break
				}
				r = s.Do(t, "GET", next, nil, e.doc.headers).Want(t, http.StatusOK)
			}
			sameSet(t, "paged matches", matches, []string{O(e.obsA), O(e.obsA3)})
		})

		t.Run("included resources are audited like matches", func(t *testing.T) {
			s.Do(t, "GET", "/fhir/Observation?_id="+e.obsA+"&_include=Observation:subject", nil, e.doc.headers).Want(t, http.StatusOK)
			evs, err := s.App.Transparency().Events(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			found := false
			for _, ev := range evs {
				if ev.Action == audit.ActionSearch && ev.Agent.User == e.doc.userID && slices.ContainsFunc(ev.Entities, func(x string) bool { return strings.HasPrefix(x, P(e.a)+"/_history/") }) &&
					slices.ContainsFunc(ev.Entities, func(x string) bool { return strings.HasPrefix(x, O(e.obsA)+"/_history/") }) {
					found = true
				}
			}
			if !found {
				t.Fatal("no search event names both the match and the included patient")
			}
		})

		t.Run("chain inner searches are audited", func(t *testing.T) {
			s.Do(t, "GET", "/fhir/Observation?subject:Patient.identifier="+q(e.mrnA), nil, e.doc.headers).Want(t, http.StatusOK)
			evs, err := s.App.Transparency().Events(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			found := false
			for _, ev := range evs {
				if ev.Action == audit.ActionSearch && ev.Agent.User == e.doc.userID && strings.HasPrefix(ev.Query, "Patient?identifier (for Observation?subject:Patient.identifier)") &&
					slices.ContainsFunc(ev.Entities, func(x string) bool { return strings.HasPrefix(x, P(e.a)+"/_history/") }) {
					found = true
				}
				if strings.Contains(ev.Query, e.mrnA) {
					t.Fatal("an audit query holds a search value")
				}
			}
			if !found {
				t.Fatal("the chain's inner search left no audit event")
			}
		})

		t.Run("front desk gets included patients masked", func(t *testing.T) {
			pid := s.Create(t, patient(uniq(), map[string]any{"identifier": []any{
				map[string]any{"system": "http://hl7.org/fhir/sid/us-ssn", "value": "999-77-1234"}}}))
			r := s.Do(t, "GET", "/fhir/Observation?subject="+P(pid)+"&_include=Observation:subject", nil, e.desk.headers).Want(t, http.StatusOK)
			if strings.Contains(string(r.Body), "999-77-1234") {
				t.Fatal("an include showed a masked identifier")
			}
			s.Create(t, observation(pid, nil))
			r = s.Do(t, "GET", "/fhir/Patient?_id="+pid+"&_revinclude=Observation:subject", nil, e.desk.headers).Want(t, http.StatusOK)
			m, inc := byMode(t, r)
			if strings.Contains(string(r.Body), "999-77-1234") || len(inc) != 0 {
				t.Fatalf("front desk: matches %v includes %v body %s", m, inc, r.Body)
			}
		})

		t.Run("refusals", func(t *testing.T) {
			for _, bad := range []string{
				"Observation?_include=Observation:colour",
				"Observation?subject.colour=1",
				"Patient?_has:Observation:colour:code=1",
				"Observation?_sort=value-quantity",
				"Patient?_sort=colour",
			} {
				r := s.Do(t, "GET", "/fhir/"+bad, nil, e.doc.headers).WantOutcome(t, http.StatusBadRequest)
				if strings.Contains(string(r.Body), e.mrnA) {
					t.Fatalf("%s: the refusal echoes a value", bad)
				}
			}
			// Lenient: ignored and said so, never a search of everything.
			r := s.Do(t, "GET", "/fhir/Observation?subject.colour=1&_include=Observation:colour", nil,
				apitest.H{"Prefer": "handling=lenient", "Authorization": e.doc.headers["Authorization"], "Cookie": e.doc.headers["Cookie"]}).Want(t, http.StatusOK)
			if !strings.Contains(string(r.Body), `"mode":"outcome"`) || !strings.Contains(string(r.Body), `"expression":["_include"]`) ||
				!strings.Contains(string(r.Body), `"expression":["subject.colour"]`) {
				t.Fatalf("lenient does not say what it ignored: %s", r.Body)
			}
			// Conditional operations refuse chains (they run in a transaction).
			r = s.Do(t, "POST", "/fhir/Observation", observation(e.a, nil), apitest.H{"If-None-Exist": "subject:Patient.identifier=" + q(e.mrnA)})
			if r.Status != http.StatusBadRequest {
				t.Fatalf("conditional create with a chain: %s", r)
			}
		})
	})
}

// TestSearchIncludeBounds: a page carries at most record.MaxIncluded
// included resources and then says it left some out; a chain or _has
// whose inner search finds more than record.MaxChainMatches is refused
// as too costly, never answered from a truncated set.
func TestSearchIncludeBounds(t *testing.T) {
	s := apitest.Start(t, "sqlite")
	pid := s.Create(t, patient(uniq(), nil))
	code, family := "k"+uniq(), "bound"+uniq()
	var entries []any
	add := func(res map[string]any) {
		entries = append(entries, map[string]any{"resource": res, "request": map[string]any{"method": "POST", "url": res["resourceType"]}})
	}
	for range record.MaxIncluded + 1 {
		add(observation(pid, map[string]any{"code": map[string]any{"coding": []any{map[string]any{"system": testSystem, "code": code}}}}))
	}
	for range record.MaxChainMatches + 1 {
		add(patient(uniq(), map[string]any{"name": []any{map[string]any{"family": family}}}))
	}
	s.Do(t, "POST", "/fhir", map[string]any{"resourceType": "Bundle", "type": "transaction", "entry": entries}, nil).Want(t, http.StatusOK)

	r := s.Do(t, "GET", "/fhir/Patient?_id="+pid+"&_revinclude=Observation:subject", nil, nil).Want(t, http.StatusOK)
	var match, include, outcome int
	for _, en := range r.Entries() {
		switch en["search"].(map[string]any)["mode"] {
		case "match":
			match++
		case "include":
			include++
		case "outcome":
			outcome++
			if !strings.Contains(fmt.Sprint(en["resource"]), "limited to") {
				t.Fatalf("outcome entry: %v", en)
			}
		}
	}
	if match != 1 || include != record.MaxIncluded || outcome != 1 {
		t.Fatalf("match %d include %d outcome %d", match, include, outcome)
	}
	if total, _ := r.Total(); total != 1 {
		t.Fatalf("total %d counts includes", total)
	}
	for _, q := range []string{
		"Observation?subject:Patient.family=" + family,
		"Patient?_has:Observation:subject:code=" + url.QueryEscape(testSystem+"|"+code),
	} {
		r := s.Do(t, "GET", "/fhir/"+q, nil, nil).WantOutcome(t, http.StatusBadRequest)
		if !strings.Contains(string(r.Body), "too-costly") || strings.Contains(string(r.Body), family) || strings.Contains(string(r.Body), code) {
			t.Fatalf("%s: %s", q, r.Body)
		}
	}
}
