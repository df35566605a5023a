package fhirconformance_test

import (
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/phivault/phivault/internal/apitest"
)

// searchData is a small population of its own for the search checks.
type searchData struct {
	fam                string // family-name prefix of every patient
	p1, p2, p3, p4, p5 string // patients
	o1, o2, o3         string // observations: o1, o2 of p1; o3 of p2
	e1                 string // encounter of p1, referenced by o1
	before             string // an instant before any of them was made
}

func seedSearch(t *testing.T, s *apitest.Server) *searchData {
	t.Helper()
	d := &searchData{fam: "Fam" + newKey(), before: time.Now().Add(-2 * time.Second).UTC().Format(time.RFC3339)}
	sys := newSystem()
	name := func(family string) []any { return []any{map[string]any{"family": family, "given": []any{"Ann"}}} }
	d.p1 = s.Create(t, patientRes(sys, "p1", map[string]any{"name": name(d.fam + "alpha"), "gender": "female", "birthDate": "1980-05-10"}))
	d.p2 = s.Create(t, patientRes(sys, "p2", map[string]any{"name": name(d.fam + "beta"), "gender": "male", "birthDate": "1990-01-01"}))
	d.p3 = s.Create(t, patientRes(sys, "p3", map[string]any{"name": name(d.fam + "alpha"), "birthDate": "2000-12-31"}))
	d.p4 = s.Create(t, patientRes(sys, "p4", map[string]any{"name": name(d.fam + "gamma"), "gender": "female"}))
	d.p5 = s.Create(t, patientRes(sys, "p5", map[string]any{"name": name(d.fam + "delta"), "gender": "other"}))
	d.e1 = s.Create(t, encounterRes(d.p1, nil))
	d.o1 = s.Create(t, observationRes(d.p1, map[string]any{"effectiveDateTime": "2020-01-15", "encounter": ref("Encounter/" + d.e1)}))
	d.o2 = s.Create(t, observationRes(d.p1, map[string]any{"effectiveDateTime": "2020-06-30T10:00:00Z", "status": "preliminary"}))
	d.o3 = s.Create(t, observationRes(d.p2, map[string]any{"effectiveDateTime": "2021-03-01",
		"code": map[string]any{"coding": []any{map[string]any{"system": "http://loinc.org", "code": "29463-7"}}}}))
	return d
}

func pats(ids ...string) []string {
	out := make([]string, len(ids))
	for i, id := range ids {
		out[i] = "Patient/" + id
	}
	return out
}

func obss(ids ...string) []string {
	out := make([]string, len(ids))
	for i, id := range ids {
		out[i] = "Observation/" + id
	}
	return out
}

// checkSearch: R4 search.html and http.html#search.
func checkSearch(t *testing.T, s *apitest.Server) {
	d := seedSearch(t, s)
	all := pats(d.p1, d.p2, d.p3, d.p4, d.p5)
	byFam := "/fhir/Patient?" + query("family", d.fam)

	t.Run("searchset Bundle shape", func(t *testing.T) {
		// http.html#search: the answer is a Bundle of type searchset;
		// search.html#conformance and bundle.html: a self link, fullUrl
		// of each entry ([base]/[type]/[id]), search.mode match; total,
		// when present, counts the matches (search.html#total).
		r := search(t, s, byFam+"&_total=accurate")
		if r.Link("self") == "" {
			t.Errorf("no self link: %s", r)
		}
		for _, e := range r.Entries() {
			res, _ := e["resource"].(map[string]any)
			if fu, _ := e["fullUrl"].(string); res == nil || fu != s.URL+"/fhir/"+apitest.Ref(res) {
				t.Errorf("entry fullUrl %v for %v", e["fullUrl"], res["id"])
			}
		}
		sameSet(t, "matches", matches(r), all)
		if n, ok := r.Total(); !ok || n != 5 {
			t.Errorf("_total=accurate: total %v (present %v), want 5", n, ok)
		}
		r = search(t, s, byFam)
		if n, ok := r.Total(); ok && n != 5 {
			t.Errorf("total: got %d, want 5 (or absent)", n)
		}
	})
	t.Run("_count pages with next links that work", func(t *testing.T) {
		// search.html#count and http.html#paging: at most _count matches
		// a page; following next links yields every match once; total
		// (when present) is the count of all matches, on every page.
		pages := s.SearchAll(t, byFam+"&_count=2&_total=accurate")
		if len(pages) != 3 {
			t.Errorf("pages: got %d, want 3 for 5 matches at _count=2", len(pages))
		}
		var got []string
		for i, p := range pages {
			if n := len(matches(p)); n > 2 {
				t.Errorf("page %d: %d matches at _count=2", i, n)
			}
			if p.Link("self") == "" {
				t.Errorf("page %d: no self link", i)
			}
			if n, ok := p.Total(); ok && n != 5 {
				t.Errorf("page %d: total %d, want 5", i, n)
			}
			got = append(got, matches(p)...)
		}
		sameSet(t, "paged matches", got, all)
	})
	t.Run("GET and POST _search are equivalent", func(t *testing.T) {
		// http.html#search: "POST [base]/[type]/_search" with
		// application/x-www-form-urlencoded parameters "has exactly the
		// same semantics"; parameters may be in both the URL and body.
		get := search(t, s, byFam+"&gender=female")
		form := apitest.H{"Content-Type": "application/x-www-form-urlencoded"}
		post := s.Do(t, "POST", "/fhir/Patient/_search", query("family", d.fam, "gender", "female"), form).Want(t, http.StatusOK)
		if post.JSON["type"] != "searchset" {
			t.Fatalf("POST _search: %s", post)
		}
		sameSet(t, "GET", matches(get), pats(d.p1, d.p4))
		sameSet(t, "POST", matches(post), matches(get))
		mixed := s.Do(t, "POST", "/fhir/Patient/_search?"+query("family", d.fam), query("gender", "female"), form).Want(t, http.StatusOK)
		sameSet(t, "POST with URL and body parameters", matches(mixed), matches(get))
	})
	t.Run("string: starts-with, case-insensitive, :exact", func(t *testing.T) {
		// search.html#string: "By default, a field matches a string query
		// if the value of the field equals or starts with the supplied
		// parameter value, after both have been normalized by case and
		// accent"; ":exact ... the search parameter value must match the
		// whole string, including casing and accents".
		sameSet(t, "family (upper case)", matches(search(t, s, "/fhir/Patient?"+query("family", strings.ToUpper(d.fam+"alpha")))), pats(d.p1, d.p3))
		sameSet(t, ":exact", matches(search(t, s, "/fhir/Patient?"+query("family:exact", d.fam+"alpha"))), pats(d.p1, d.p3))
		sameSet(t, ":exact prefix", matches(search(t, s, "/fhir/Patient?"+query("family:exact", d.fam+"alp"))), nil)
		sameSet(t, ":exact other case", matches(search(t, s, "/fhir/Patient?"+query("family:exact", strings.ToUpper(d.fam+"alpha")))), nil)
	})
	t.Run("OR with commas, AND with repeats", func(t *testing.T) {
		// search.html#combining: "param=a,b" matches either value; a
		// repeated parameter must match each.
		sameSet(t, "gender=male,other", matches(search(t, s, byFam+"&"+query("gender", "male,other"))), pats(d.p2, d.p5))
		sameSet(t, "_id=a,b", matches(search(t, s, "/fhir/Patient?"+query("_id", d.p1+","+d.p2))), pats(d.p1, d.p2))
		sameSet(t, "family twice", matches(search(t, s, byFam+"&"+query("family", d.fam+"al"))), pats(d.p1, d.p3))
	})
	t.Run(":missing and :not", func(t *testing.T) {
		// search.html#modifiers: ":missing=true" matches resources without
		// a value, false those with one; token ":not" reverses the match
		// ("all resources that do not have a matching item", so those
		// without a value too).
		sameSet(t, "gender:missing=true", matches(search(t, s, byFam+"&gender:missing=true")), pats(d.p3))
		sameSet(t, "gender:missing=false", matches(search(t, s, byFam+"&gender:missing=false")), pats(d.p1, d.p2, d.p4, d.p5))
		sameSet(t, "gender:not=female", matches(search(t, s, byFam+"&gender:not=female")), pats(d.p2, d.p3, d.p5))
		sameSet(t, "birthdate:missing=true", matches(search(t, s, byFam+"&birthdate:missing=true")), pats(d.p4, d.p5))
	})
	t.Run("date prefixes", func(t *testing.T) {
		// search.html#date and #prefix: a date value is an implicit range
		// at its precision; eq: the target range is inside it; gt/lt: the
		// range above/below the value intersects the target; ge/le; ne.
		p1obs := "/fhir/Observation?" + query("subject", "Patient/"+d.p1) + "&"
		cases := []struct {
			q    string
			want []string
		}{
			{"date=2020-01-15", obss(d.o1)},
			{"date=2020-01", obss(d.o1)},
			{"date=2020", obss(d.o1, d.o2)},
			{"date=eq2020-06-30", obss(d.o2)},
			{"date=gt2020-01-15", obss(d.o2)},
			{"date=ge2020-01-15", obss(d.o1, d.o2)},
			{"date=lt2020-06-30", obss(d.o1)},
			{"date=le2020-06-30T10:00:00Z", obss(d.o1, d.o2)},
			{"date=ne2020-01-15", obss(d.o2)},
			{"date=ge2020-01-01&date=lt2020-02-01", obss(d.o1)},
			{"date=sa2020-01-15", obss(d.o2)},
			{"date=eb2020-06-30", obss(d.o1)},
		}
		for _, c := range cases {
			sameSet(t, c.q, matches(search(t, s, p1obs+c.q)), c.want)
		}
		sameSet(t, "birthdate=lt1985", matches(search(t, s, byFam+"&birthdate=lt1985")), pats(d.p1))
		sameSet(t, "birthdate=ge1990-01-01", matches(search(t, s, byFam+"&birthdate=ge1990-01-01")), pats(d.p2, d.p3))
		sameSet(t, "_lastUpdated=gt(before)", matches(search(t, s, byFam+"&"+query("_lastUpdated", "gt"+d.before))), all)
		sameSet(t, "_lastUpdated=lt(before)", matches(search(t, s, byFam+"&"+query("_lastUpdated", "lt"+d.before))), nil)
	})
	t.Run("reference parameters", func(t *testing.T) {
		// search.html#reference: "[type]/[id]", a bare id, and an
		// absolute URL on the server's base all name the same target.
		want := obss(d.o1, d.o2)
		sameSet(t, "subject=Patient/id", matches(search(t, s, "/fhir/Observation?"+query("subject", "Patient/"+d.p1))), want)
		sameSet(t, "subject=id", matches(search(t, s, "/fhir/Observation?"+query("subject", d.p1))), want)
		sameSet(t, "subject=url", matches(search(t, s, "/fhir/Observation?"+query("subject", s.URL+"/fhir/Patient/"+d.p1))), want)
		sameSet(t, "patient=id", matches(search(t, s, "/fhir/Observation?"+query("patient", d.p1))), want)
		sameSet(t, "subject:Patient=id", matches(search(t, s, "/fhir/Observation?"+query("subject:Patient", d.p1))), want)
		sameSet(t, "encounter", matches(search(t, s, "/fhir/Observation?"+query("encounter", "Encounter/"+d.e1))), obss(d.o1))
	})
	t.Run("chained parameters and _has", func(t *testing.T) {
		// search.html#chaining: "subject:Patient.name=peter";
		// #has: "_has:Observation:patient:code=1234-5" selects patients
		// referenced by matching observations.
		sameSet(t, "subject:Patient.family", matches(search(t, s, "/fhir/Observation?"+query("subject:Patient.family", d.fam+"alpha"))), obss(d.o1, d.o2))
		sameSet(t, "patient.family", matches(search(t, s, "/fhir/Observation?"+query("patient.family", d.fam+"beta"))), obss(d.o3))
		sameSet(t, "_has", matches(search(t, s, byFam+"&"+query("_has:Observation:subject:code", "http://loinc.org|29463-7"))), pats(d.p2))
		sameSet(t, "_has (status)", matches(search(t, s, byFam+"&"+query("_has:Observation:patient:status", "preliminary"))), pats(d.p1))
	})
	t.Run("_include and _revinclude", func(t *testing.T) {
		// search.html#include: included resources are entries with
		// search.mode include, listed once; total counts matches only
		// (bundle.html Bundle.total: "It does not include search.mode =
		// 'include' or 'outcome' entries").
		r := search(t, s, "/fhir/Observation?"+query("subject", "Patient/"+d.p1, "_include", "Observation:subject", "_total", "accurate"))
		sameSet(t, "matches", matches(r), obss(d.o1, d.o2))
		sameSet(t, "included", byMode(r, "include"), pats(d.p1))
		if n, ok := r.Total(); !ok || n != 2 {
			t.Errorf("total with _include: %d (present %v), want 2", n, ok)
		}
		r = search(t, s, "/fhir/Patient?"+query("_id", d.p1, "_revinclude", "Observation:subject"))
		sameSet(t, "revinclude matches", matches(r), pats(d.p1))
		sameSet(t, "revincluded", byMode(r, "include"), obss(d.o1, d.o2))
		r = search(t, s, "/fhir/Observation?"+query("_id", d.o1, "_include", "Observation:encounter", "_include", "Observation:patient"))
		sameSet(t, "two _include", byMode(r, "include"), []string{"Encounter/" + d.e1, "Patient/" + d.p1})
	})
	t.Run("_sort", func(t *testing.T) {
		// search.html#sort: "_sort=date" ascending, "-date" descending.
		p1obs := "/fhir/Observation?" + query("subject", "Patient/"+d.p1)
		if got := matches(search(t, s, p1obs+"&_sort=date")); !slices.Equal(got, obss(d.o1, d.o2)) {
			t.Errorf("_sort=date: got %v", got)
		}
		if got := matches(search(t, s, p1obs+"&_sort=-date")); !slices.Equal(got, obss(d.o2, d.o1)) {
			t.Errorf("_sort=-date: got %v", got)
		}
		if got := matches(search(t, s, byFam+"&_sort=-_lastUpdated")); !slices.Equal(got, pats(d.p5, d.p4, d.p3, d.p2, d.p1)) {
			t.Errorf("_sort=-_lastUpdated: got %v, want newest first", got)
		}
		if got := allMatches(t, s, byFam+"&_sort=_lastUpdated&_count=2"); !slices.Equal(got, all) {
			t.Errorf("_sort=_lastUpdated over pages: got %v, want %v", got, all)
		}
		// search.html#sort: "_sort=status,-date,category": each key in
		// turn; a string parameter orders by its value, a token by its
		// code (docs/fhir.md: decrypted and ordered, within a bound).
		for _, c := range []struct {
			sort string
			want []string
		}{
			{"family,-birthdate", pats(d.p3, d.p1, d.p2, d.p5, d.p4)},
			{"-family,birthdate", pats(d.p4, d.p5, d.p2, d.p1, d.p3)},
			{"gender,family", pats(d.p1, d.p4, d.p2, d.p5, d.p3)},     // no gender: last
			{"-birthdate,family", pats(d.p3, d.p2, d.p1, d.p5, d.p4)}, // no birth date: last
		} {
			if got := matches(search(t, s, byFam+"&_sort="+c.sort)); !slices.Equal(got, c.want) {
				t.Errorf("_sort=%s: got %v, want %v", c.sort, got, c.want)
			}
			if got := allMatches(t, s, byFam+"&_sort="+c.sort+"&_count=2"); !slices.Equal(got, c.want) {
				t.Errorf("_sort=%s over pages of 2: got %v, want %v", c.sort, got, c.want)
			}
		}
		// A sort phivault cannot do is refused (400), not ignored.
		r := s.Do(t, "GET", "/fhir/Observation?"+query("subject", "Patient/"+d.p1)+"&_sort=value-quantity", nil, nil).Want(t, http.StatusBadRequest)
		wantOutcomeBody(t, r)
	})
	t.Run("_summary=count", func(t *testing.T) {
		// search.html#summary: "_summary=count: Return only the count of
		// matching resources, without returning the actual matches".
		r := search(t, s, byFam+"&_summary=count")
		if n, ok := r.Total(); !ok || n != 5 {
			t.Errorf("total: got %d (present %v), want 5", n, ok)
		}
		if len(matches(r)) != 0 {
			t.Errorf("_summary=count returned matches: %v", matches(r))
		}
	})
	t.Run("_elements marks SUBSETTED", func(t *testing.T) {
		// search.html#elements: only the listed elements (and mandatory
		// ones) are returned; "Servers SHOULD mark the resources with the
		// tag SUBSETTED" (http://terminology.hl7.org/CodeSystem/v3-ObservationValue).
		r := search(t, s, byFam+"&_elements=gender")
		if len(r.Resources()) != 5 {
			t.Fatalf("got %d resources", len(r.Resources()))
		}
		for _, res := range r.Resources() {
			if res["name"] != nil || res["identifier"] != nil || res["birthDate"] != nil {
				t.Errorf("_elements=gender returned other elements: %v", res)
			}
			if res["id"] == nil {
				t.Errorf("_elements dropped id: %v", res)
			}
			if !hasTag(res, "http://terminology.hl7.org/CodeSystem/v3-ObservationValue", "SUBSETTED") {
				t.Errorf("no SUBSETTED tag: %v", res["meta"])
			}
		}
		r = s.Do(t, "GET", "/fhir/Patient/"+d.p1+"?_elements=gender", nil, nil).Want(t, http.StatusOK)
		if r.JSON["gender"] != "female" || r.JSON["name"] != nil || !hasTag(r.JSON, "http://terminology.hl7.org/CodeSystem/v3-ObservationValue", "SUBSETTED") {
			t.Errorf("read with _elements: %s", r)
		}
	})
	t.Run("unknown parameters: strict and lenient handling", func(t *testing.T) {
		// search.html#errors: with "Prefer: handling=strict" the server
		// returns an error for an unknown or unsupported parameter; with
		// "handling=lenient" it ignores it, and the self link holds only
		// the parameters used (search.html#conformance). Without Prefer
		// the server chooses: phivault is strict (docs/fhir.md).
		q := byFam + "&nosuchparam=1"
		r := s.Do(t, "GET", q, nil, apitest.H{"Prefer": "handling=strict"}).Want(t, http.StatusBadRequest)
		wantOutcomeBody(t, r)
		s.Do(t, "GET", q, nil, nil).Want(t, http.StatusBadRequest)
		r = s.Do(t, "GET", byFam+"&family:frobnicate=x", nil, apitest.H{"Prefer": "handling=strict"}).Want(t, http.StatusBadRequest)
		wantOutcomeBody(t, r)
		r = s.Do(t, "GET", q, nil, apitest.H{"Prefer": "handling=lenient"}).Want(t, http.StatusOK)
		sameSet(t, "lenient matches", matches(r), all)
		// R4 wants the parameters used in the self link. phivault
		// deliberately seals them in an opaque _page cursor (search
		// values can be PHI and must not travel in URLs, proxies or
		// logs: docs/fhir.md) and lists the ignored parameters in an
		// OperationOutcome entry (search.mode outcome) instead. So: no
		// search value in the link, the ignored parameter reported, and
		// the self link replays the search that was run.
		self := r.Link("self")
		if plain, _ := url.QueryUnescape(self); strings.Contains(plain, d.fam) || strings.Contains(plain, "nosuchparam") {
			t.Errorf("self link %q shows the search", self)
		}
		var reported bool
		for _, e := range r.Entries() {
			sm, _ := e["search"].(map[string]any)
			if res, _ := e["resource"].(map[string]any); sm["mode"] == "outcome" && res["resourceType"] == "OperationOutcome" &&
				strings.Contains(string(mustJSON(t, res)), "nosuchparam") {
				reported = true
			}
		}
		if !reported {
			t.Errorf("lenient: the ignored parameter is not reported in an outcome entry: %s", r)
		}
		again := s.Do(t, "GET", self, nil, apitest.H{"Prefer": "handling=lenient"}).Want(t, http.StatusOK)
		sameSet(t, "self link replayed", matches(again), all)
	})
	t.Run("unknown type and system search", func(t *testing.T) {
		// http.html#search: an unsupported type is 404. System search
		// "GET [base]?params": phivault requires _type (docs/fhir.md),
		// and answers with the parameters common to the types.
		s.Do(t, "GET", "/fhir/NoSuchType?_id=1", nil, nil).Want(t, http.StatusNotFound)
		r := search(t, s, "/fhir?"+query("_type", "Patient,Observation", "_id", d.p1+","+d.o1))
		sameSet(t, "system search", matches(r), []string{"Patient/" + d.p1, "Observation/" + d.o1})
		form := apitest.H{"Content-Type": "application/x-www-form-urlencoded"}
		p := s.Do(t, "POST", "/fhir/_search", query("_type", "Patient,Observation", "_id", d.p1+","+d.o1), form).Want(t, http.StatusOK)
		sameSet(t, "POST system search", matches(p), matches(r))
	})
}
