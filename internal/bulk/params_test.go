package bulk

import (
	"errors"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/phivault/phivault/internal/fhir"
)

func TestParseKickoff(t *testing.T) {
	for _, tc := range []struct {
		name    string
		level   Level
		query   string
		body    string
		lenient bool
		check   func(t *testing.T, r Request)
		wantErr string // substring of the error; "" = no error
	}{
		{name: "empty", level: LevelSystem, check: func(t *testing.T, r Request) {
			if len(r.Types) != 0 || !r.Since.IsZero() || r.Filters != nil {
				t.Fatalf("%+v", r)
			}
		}},
		{name: "types-since", level: LevelSystem, query: "_type=Patient,Observation&_type=Patient&_since=2024-01-02T03:04:05%2B02:00&_outputFormat=ndjson",
			check: func(t *testing.T, r Request) {
				if !slices.Equal(r.Types, []string{"Patient", "Observation"}) || !r.Since.Equal(time.Date(2024, 1, 2, 1, 4, 5, 0, time.UTC)) {
					t.Fatalf("%+v", r)
				}
			}},
		{name: "typeFilter-commas", level: LevelPatient, query: "_typeFilter=" + url.QueryEscape("Observation?code=a,b&status=final,Condition?clinical-status=active"),
			check: func(t *testing.T, r Request) {
				if len(r.Filters["Observation"]) != 1 || len(r.Filters["Condition"]) != 1 {
					t.Fatalf("%+v", r.Filters)
				}
				v, _ := url.ParseQuery(r.Filters["Observation"][0])
				if v.Get("code") != "a,b" || v.Get("status") != "final" {
					t.Fatalf("%v", v)
				}
			}},
		{name: "parameters-body", level: LevelGroup, body: `{"resourceType":"Parameters","parameter":[{"name":"_type","valueString":"Observation"},{"name":"patient","valueReference":{"reference":"Patient/p1"}},{"name":"_since","valueInstant":"2020-01-01T00:00:00Z"}]}`,
			check: func(t *testing.T, r Request) {
				if !slices.Equal(r.Patients, []string{"p1"}) || !slices.Equal(r.Types, []string{"Observation"}) || r.Since.IsZero() {
					t.Fatalf("%+v", r)
				}
			}},
		{name: "lenient-ignores", level: LevelSystem, query: "includeAssociatedData=x&_elements=id&_foo=1", lenient: true,
			check: func(t *testing.T, r Request) {
				if len(r.Ignored) != 3 {
					t.Fatalf("%+v", r.Ignored)
				}
			}},
		{name: "format", level: LevelSystem, query: "_outputFormat=text/csv", wantErr: "_outputFormat"},
		{name: "since-no-zone", level: LevelSystem, query: "_since=2024-01-01T00:00:00", wantErr: "_since"},
		{name: "since-twice", level: LevelSystem, query: "_since=2024-01-01T00:00:00Z&_since=2024-01-01T00:00:00Z", wantErr: "_since"},
		{name: "type-unknown", level: LevelSystem, query: "_type=Nope", wantErr: "_type"},
		{name: "type-auditevent", level: LevelSystem, query: "_type=AuditEvent", wantErr: "_type"},
		{name: "filter-no-query", level: LevelSystem, query: "_typeFilter=Observation", wantErr: "_typeFilter"},
		{name: "filter-result-param", level: LevelSystem, query: "_typeFilter=" + url.QueryEscape("Observation?_include=Observation:subject"), wantErr: "_typeFilter"},
		{name: "filter-outside-type", level: LevelSystem, query: "_type=Patient&_typeFilter=" + url.QueryEscape("Observation?code=x"), wantErr: "_type"},
		{name: "patient-at-system", level: LevelSystem, body: `{"resourceType":"Parameters","parameter":[{"name":"patient","valueReference":{"reference":"Patient/p1"}}]}`, wantErr: "patient"},
		{name: "patient-not-ref", level: LevelPatient, body: `{"resourceType":"Parameters","parameter":[{"name":"patient","valueReference":{"reference":"Group/p1"}}]}`, wantErr: "patient"},
		{name: "body-not-parameters", level: LevelPatient, body: `{"resourceType":"Patient"}`, wantErr: "Parameters"},
		{name: "parameter-two-values", level: LevelPatient, body: `{"resourceType":"Parameters","parameter":[{"name":"_type","valueString":"A","valueCode":"B"}]}`, wantErr: "exactly one value"},
		{name: "strict-unknown", level: LevelSystem, query: "_foo=1", wantErr: "unknown kick-off parameter _foo"},
		{name: "strict-unknown-odd-name", level: LevelSystem, query: url.QueryEscape("a<b>") + "=1", wantErr: "unusual characters"},
		{name: "strict-associated", level: LevelSystem, query: "includeAssociatedData=LatestProvenanceResources", wantErr: "includeAssociatedData"},
		{name: "type-empty", level: LevelSystem, query: "_type=", wantErr: "_type holds an empty entry"},
		{name: "type-only-commas", level: LevelSystem, query: "_type=,,,", wantErr: "_type holds an empty entry"},
		{name: "type-empty-lenient", level: LevelSystem, query: "_type=", lenient: true, wantErr: "_type holds an empty entry"},
		{name: "type-too-many-repeated", level: LevelSystem, query: strings.Repeat("_type=Patient&", MaxTypes) + "_type=Observation", wantErr: "more than 200"},
		{name: "type-too-many-one-value", level: LevelSystem, query: "_type=" + strings.Repeat("Patient,", MaxTypes) + "Patient", wantErr: "more than 200"},
		{name: "type-at-limit", level: LevelSystem, query: strings.Repeat("_type=Patient&", MaxTypes-1) + "_type=Observation", check: func(t *testing.T, r Request) {
			if !slices.Equal(r.Types, []string{"Observation", "Patient"}) && !slices.Equal(r.Types, []string{"Patient", "Observation"}) {
				t.Fatalf("%+v", r.Types)
			}
		}},
		{name: "post-query-and-body", level: LevelSystem, query: "_type=Patient", body: `{"resourceType":"Parameters","parameter":[{"name":"_type","valueString":"Observation"}]}`, wantErr: "Parameters body only"},
		// A literal "+" (decoded as a space) where it is unambiguous.
		{name: "plus-literal", level: LevelSystem, query: "_outputFormat=application/fhir+ndjson&_since=2024-01-02T03:04:05.5+02:00", check: func(t *testing.T, r Request) {
			if !r.Since.Equal(time.Date(2024, 1, 2, 1, 4, 5, 5e8, time.UTC)) {
				t.Fatalf("%+v", r.Since)
			}
		}},
		{name: "plus-other-space", level: LevelSystem, query: "_since=2024-01-02 03:04:05Z", wantErr: "_since"},
		{name: "plus-in-body-not-rewritten", level: LevelSystem, body: `{"resourceType":"Parameters","parameter":[{"name":"_outputFormat","valueString":"application/fhir ndjson"}]}`, wantErr: "_outputFormat"},
		{name: "deid-unknown", level: LevelSystem, query: "_deidentify=k-anon", wantErr: "_deidentify"},
		{name: "deid", level: LevelSystem, query: "_deidentify=safe-harbor", check: func(t *testing.T, r Request) {
			if r.Deidentify != DeidSafeHarbor {
				t.Fatal(r.Deidentify)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			q, err := url.ParseQuery(tc.query)
			if err != nil {
				t.Fatal(err)
			}
			var body []byte
			if tc.body != "" {
				body = []byte(tc.body)
			}
			r, err := ParseKickoff(tc.level, "g1", q, body, tc.lenient)
			if tc.wantErr != "" {
				var pe *ParamError
				if !errors.As(err, &pe) || !strings.Contains(pe.Msg, tc.wantErr) {
					t.Fatalf("error %v, want a ParamError about %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tc.check(t, r)
		})
	}
}

// FuzzParseKickoff: no input panics; every accepted request holds only
// exportable types, filter types among them, valid patient ids, and
// errors never echo a value given.
func FuzzParseKickoff(f *testing.F) {
	f.Add("_type=Patient,Observation&_since=2024-01-01T00:00:00Z", "", false)
	f.Add("_typeFilter="+url.QueryEscape("Observation?code=a,b,Condition?x=1"), "", true)
	f.Add("", `{"resourceType":"Parameters","parameter":[{"name":"patient","valueReference":{"reference":"Patient/a"}}]}`, false)
	f.Add("_outputFormat=application/fhir%2Bndjson&_elements=id", `{"resourceType":"Parameters"}`, true)
	f.Add("_outputFormat=application/fhir+ndjson&_since=2024-01-01T00:00:00+02:00&_type=,", "", false)
	f.Add("_typeFilter=,Observation?,A?b", `{"resourceType":"Parameters","parameter":[{"name":"_since","valueInstant":"x"}]}`, false)
	f.Fuzz(func(t *testing.T, query, body string, lenient bool) {
		q, err := url.ParseQuery(query)
		if err != nil {
			return
		}
		var b []byte
		if body != "" {
			b = []byte(body)
		}
		r, err := ParseKickoff(LevelPatient, "g", q, b, lenient)
		if err != nil {
			var pe *ParamError
			if !errors.As(err, &pe) {
				t.Fatalf("not a ParamError: %v", err)
			}
			const planted = "Zqvxplanted"
			if strings.Contains(query+body, planted) && strings.Contains(pe.Msg, planted) {
				t.Fatalf("the error echoes a value: %q", pe.Msg)
			}
			return
		}
		for _, typ := range r.Types {
			if !fhir.IsStorableType(typ) || typ == "AuditEvent" {
				t.Fatalf("accepted type %q", typ)
			}
		}
		for typ, fs := range r.Filters {
			if !fhir.IsStorableType(typ) || (len(r.Types) > 0 && !slices.Contains(r.Types, typ)) || len(fs) == 0 {
				t.Fatalf("accepted filter type %q", typ)
			}
		}
		for _, p := range r.Patients {
			if !validID(p) {
				t.Fatalf("accepted patient id %q", p)
			}
		}
		if len(r.Types) > MaxTypes || len(r.Patients) > MaxPatients {
			t.Fatal("limits not enforced")
		}
	})
}
