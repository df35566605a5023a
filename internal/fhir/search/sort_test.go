package search

import (
	"net/url"
	"slices"
	"testing"

	"github.com/phivault/phivault/internal/fhir"
)

func TestParseSortValueKeys(t *testing.T) {
	r := testRegistry(t)
	for _, tc := range []struct {
		typ, raw string
		want     []SortSpec
	}{
		{"Patient", "family,-given", []SortSpec{{Param: "family", Value: true}, {Param: "given", Desc: true, Value: true}}},
		{"Patient", "-birthdate", []SortSpec{{Param: "birthdate", Desc: true, Value: true}}},
		{"Observation", "code,-date", []SortSpec{{Param: "code", Value: true}, {Param: "date", Desc: true}}},
		{"Observation", "subject,_id", []SortSpec{{Param: "subject", Value: true}, {Param: "_id"}}},
		{"Observation", "-date,_lastUpdated", []SortSpec{{Param: "date", Desc: true}, {Param: "_lastUpdated"}}},
	} {
		vals, err := url.ParseQuery("_sort=" + tc.raw)
		if err != nil {
			t.Fatal(err)
		}
		q, err := r.ParseQuery(tc.typ, vals, false)
		if err != nil {
			t.Fatalf("%s?_sort=%s: %v", tc.typ, tc.raw, err)
		}
		if !slices.Equal(q.Sort, tc.want) {
			t.Errorf("%s?_sort=%s: Sort = %+v, want %+v", tc.typ, tc.raw, q.Sort, tc.want)
		}
		if got, want := ValueSort(q.Sort), ValueSort(tc.want); got != want || (tc.raw == "-date,_lastUpdated") == got {
			t.Errorf("%s?_sort=%s: ValueSort = %v", tc.typ, tc.raw, got)
		}
	}
}

func TestSortKey(t *testing.T) {
	r := testRegistry(t)
	pat := fhir.Resource{
		"resourceType": "Patient",
		"name": []any{
			map[string]any{"family": "Ürban", "given": []any{"Zoë", "Anna"}},
			map[string]any{"family": "Bishop"},
		},
		"gender":    "female",
		"birthDate": "1970-03",
	}
	for _, tc := range []struct {
		so   SortSpec
		want string
		ok   bool
	}{
		{SortSpec{Param: "family"}, "bishop\x00Bishop", true},              // lowest ascending
		{SortSpec{Param: "family", Desc: true}, "urban\x00Ürban", true},    // highest descending, accents folded
		{SortSpec{Param: "given"}, "anna\x00Anna", true},                   //
		{SortSpec{Param: "gender"}, "female\x00", true},                    // a code without a system
		{SortSpec{Param: "birthdate"}, "1970-03-01T00:00:00.000000", true}, // start of the month ascending
		{SortSpec{Param: "birthdate", Desc: true}, "1970-03-31T23:59:59.999999", true},
		{SortSpec{Param: "general-practitioner"}, "", false}, // no value
		{SortSpec{Param: "colour"}, "", false},               // unknown
	} {
		got, ok := r.SortKey(pat, tc.so)
		if got != tc.want || ok != tc.ok {
			t.Errorf("SortKey(%+v) = %q, %v; want %q, %v", tc.so, got, ok, tc.want, tc.ok)
		}
	}
	obs := fhir.Resource{
		"resourceType": "Observation",
		"code":         map[string]any{"coding": []any{map[string]any{"system": "http://loinc.org", "code": "8867-4"}, map[string]any{"system": "http://snomed.info/sct", "code": "364075005"}}},
		"subject":      map[string]any{"reference": "Patient/p1", "identifier": map[string]any{"system": "urn:mrn", "value": "000"}},
	}
	if got, _ := r.SortKey(obs, SortSpec{Param: "code"}); got != "364075005\x00http://snomed.info/sct" {
		t.Errorf("code ascending = %q", got)
	}
	if got, _ := r.SortKey(obs, SortSpec{Param: "code", Desc: true}); got != "8867-4\x00http://loinc.org" {
		t.Errorf("code descending = %q", got)
	}
	// The reference, never the column of its identifier.
	if got, _ := r.SortKey(obs, SortSpec{Param: "subject"}); got != "Patient/p1" {
		t.Errorf("subject = %q", got)
	}
}
