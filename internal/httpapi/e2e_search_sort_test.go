package httpapi_test

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/phivault/phivault/internal/apitest"
	"github.com/phivault/phivault/internal/record"
)

// TestSearchSortAuthz holds _sort by hashed values (string, token,
// reference, birth date: the matches are decrypted and ordered, ADR 0038)
// to the rule: the order, the pages and the total hold only what the
// caller may read, and a masked value never decides the order.
func TestSearchSortAuthz(t *testing.T) {
	apitest.Run(t, func(t *testing.T, s *apitest.Server) {
		e := newIncludeEnv(t, s)
		tok := func(c string) string { return url.QueryEscape(testSystem + "|" + c) }

		t.Run("hidden matches are neither ordered nor counted", func(t *testing.T) {
			// codeX: A (on the doctor's care team), B (not), C (consent
			// denies the doctor). The system sees all three.
			path := "/fhir/Observation?code=" + tok(e.codeX) + "&_sort=-subject&_total=accurate"
			for _, c := range []struct {
				who  actor
				want []string
			}{
				{e.doc, []string{"Observation/" + e.obsA}},
				{e.outsider, nil},
				{e.pa, []string{"Observation/" + e.obsA}},
				{e.pb, []string{"Observation/" + e.obsB}},
				{actor{role: "system"}, bySubjectDesc(e, e.obsA, e.obsB, e.obsC)},
			} {
				r := s.Do(t, "GET", path, nil, c.who.headers).Want(t, http.StatusOK)
				m, _ := byMode(t, r)
				if !slices.Equal(m, c.want) {
					t.Errorf("%s: matches %v, want %v", c.who.role, m, c.want)
				}
				if n, ok := r.Total(); !ok || n != len(c.want) {
					t.Errorf("%s: total %d (present %v), want %d", c.who.role, n, ok, len(c.want))
				}
			}
			// A's labelled observation (42 CFR Part 2) is not the doctor's.
			r := s.Do(t, "GET", "/fhir/Observation?subject=Patient/"+e.a+"&_sort=code&_total=accurate", nil, e.doc.headers).Want(t, http.StatusOK)
			m, _ := byMode(t, r)
			if slices.Contains(m, "Observation/"+e.obsA2) || strings.Contains(string(r.Body), "SECRET-PART2") {
				t.Fatalf("a labelled observation reached a sorted search: %v", m)
			}
			if n, _ := r.Total(); n != len(m) {
				t.Fatalf("total %d counts what the page does not show (%v)", n, m)
			}
		})

		t.Run("masked values do not decide the order", func(t *testing.T) {
			// Three patients whose social security numbers run against
			// their ids: the system sorts by them; the front desk, to
			// whom they are masked, gets the order of the ids.
			fam := "Sort" + uniq()
			ids := []string{"srt-a-" + uniq(), "srt-b-" + uniq(), "srt-c-" + uniq()}
			for i, id := range ids {
				res := map[string]any{"resourceType": "Patient", "id": id,
					"name":       []any{map[string]any{"family": fam}},
					"identifier": []any{map[string]any{"system": "http://hl7.org/fhir/sid/us-ssn", "value": fmt.Sprintf("999-00-000%d", 9-i)}}}
				s.Do(t, "PUT", "/fhir/Patient/"+id, res, nil).Want(t, http.StatusCreated)
				ids[i] = "Patient/" + id
			}
			path := "/fhir/Patient?family=" + fam + "&_sort=identifier"
			r := s.Do(t, "GET", path, nil, nil).Want(t, http.StatusOK)
			if got, want := r.IDs(), []string{ids[2], ids[1], ids[0]}; !slices.Equal(got, want) {
				t.Fatalf("system: %v, want %v (by SSN)", got, want)
			}
			r = s.Do(t, "GET", path, nil, e.desk.headers).Want(t, http.StatusOK)
			if strings.Contains(string(r.Body), "999-00-000") {
				t.Fatal("the front desk saw a social security number")
			}
			if got := r.IDs(); !slices.Equal(got, ids) {
				t.Fatalf("front desk: %v, want %v (the SSNs are masked: ties, in id order)", got, ids)
			}
			r = s.Do(t, "GET", path+"&_count=1", nil, e.desk.headers).Want(t, http.StatusOK)
			var got []string
			for _, p := range s.SearchAll(t, path+"&_count=1") {
				got = append(got, p.IDs()...)
			}
			if want := []string{ids[2], ids[1], ids[0]}; !slices.Equal(got, want) {
				t.Fatalf("system over pages of 1: %v, want %v", got, want)
			}
			if next := r.Link("next"); next == "" || strings.Contains(next, fam) {
				t.Fatalf("the next link is missing or holds a search value: %q", next)
			}
		})

		t.Run("refusals", func(t *testing.T) {
			for _, bad := range []string{
				"Observation?subject=Patient/" + e.a + "&_sort=value-quantity",
				"Patient/" + e.a + "/Observation?_sort=code",
				"?_type=Observation&_sort=code",
			} {
				r := s.Do(t, "GET", "/fhir/"+bad, nil, nil).WantOutcome(t, http.StatusBadRequest)
				if strings.Contains(string(r.Body), e.a) {
					t.Fatalf("%s: the refusal echoes a value", bad)
				}
			}
		})

		t.Run("more matches than can be ordered is too costly", func(t *testing.T) {
			fam := "Many" + uniq()
			var entries []any
			for range record.MaxSortMatches + 1 {
				entries = append(entries, map[string]any{
					"resource": map[string]any{"resourceType": "Patient", "name": []any{map[string]any{"family": fam}}},
					"request":  map[string]any{"method": "POST", "url": "Patient"},
				})
			}
			s.Do(t, "POST", "/fhir", map[string]any{"resourceType": "Bundle", "type": "batch", "entry": entries}, nil).Want(t, http.StatusOK)
			r := s.Do(t, "GET", "/fhir/Patient?family="+fam+"&_sort=given", nil, nil).WantOutcome(t, http.StatusBadRequest)
			if !strings.Contains(string(r.Body), "too-costly") || !strings.Contains(string(r.Body), "narrow") {
				t.Fatalf("the refusal does not say why: %s", r.Body)
			}
			// The store's own orders still answer.
			r = s.Do(t, "GET", "/fhir/Patient?family="+fam+"&_sort=-_lastUpdated&_count=5&_total=accurate", nil, nil).Want(t, http.StatusOK)
			if n, _ := r.Total(); n != record.MaxSortMatches+1 {
				t.Fatalf("total %d", n)
			}
		})
	})
}

// bySubjectDesc orders observations of e by their subject reference,
// descending, as _sort=-subject does.
func bySubjectDesc(e includeEnv, obs ...string) []string {
	subj := map[string]string{e.obsA: "Patient/" + e.a, e.obsB: "Patient/" + e.b, e.obsC: "Patient/" + e.c}
	out := slices.Clone(obs)
	slices.SortFunc(out, func(x, y string) int { return strings.Compare(subj[y], subj[x]) })
	for i, o := range out {
		out[i] = "Observation/" + o
	}
	return out
}

// TestSearchSortBundleBudget: the sorted searches of one Bundle share a
// bound (pentest: a batch of many sorted searches cost one request two
// minutes): the first ones answer, the ones beyond the bound are refused
// as too costly in their entry, and unsorted entries still answer.
func TestSearchSortBundleBudget(t *testing.T) {
	s := apitest.Start(t, "sqlite")
	fam := "Budget" + uniq()
	var entries []any
	for range 600 {
		entries = append(entries, map[string]any{
			"resource": map[string]any{"resourceType": "Patient", "name": []any{map[string]any{"family": fam}}},
			"request":  map[string]any{"method": "POST", "url": "Patient"},
		})
	}
	s.Do(t, "POST", "/fhir", map[string]any{"resourceType": "Bundle", "type": "batch", "entry": entries}, nil).Want(t, http.StatusOK)
	get := func(q string) any {
		return map[string]any{"request": map[string]any{"method": "GET", "url": "Patient?family=" + fam + q}}
	}
	// 600 matches each: three fit in 2,000 (1,800), the fourth does not.
	b := map[string]any{"resourceType": "Bundle", "type": "batch", "entry": []any{
		get("&_sort=given&_count=1"), get("&_sort=-given&_count=1"), get("&_sort=given,_id&_count=1"),
		get("&_sort=given&_count=1"), get("&_count=1"),
	}}
	r := s.Do(t, "POST", "/fhir", b, nil).Want(t, http.StatusOK)
	var got []string
	for _, e := range r.Entries() {
		resp, _ := e["response"].(map[string]any)
		st, _ := resp["status"].(string)
		got = append(got, strings.Fields(st)[0])
	}
	if want := []string{"200", "200", "200", "400", "200"}; !slices.Equal(got, want) {
		t.Fatalf("entry statuses %v, want %v: %s", got, want, r.Body)
	}
	if !strings.Contains(string(r.Body), "separate requests") {
		t.Fatalf("the refused entry does not say why: %s", r.Body)
	}
}
