package search

import (
	"errors"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/phivault/phivault/internal/fhir"
)

func mustQuery(t *testing.T, typ, raw string, lenient bool) *Query {
	t.Helper()
	q, err := url.ParseQuery(raw)
	if err != nil {
		t.Fatal(err)
	}
	out, err := testRegistry(t).ParseQuery(typ, q, lenient)
	if err != nil {
		t.Fatalf("ParseQuery(%s?%s): %v", typ, raw, err)
	}
	return out
}

func TestParseQuery(t *testing.T) {
	q := mustQuery(t, "Observation", "code=http://loinc.org|8302-2,|x,y&status:not=final&date=ge2020-01&date=lt2021&_count=5000&_sort=-date,_id&_total=accurate&_format=json&subject:Patient=p1&patient=Patient/p2&encounter:missing=true&_id=a,b&_lastUpdated=gt2024-01-01T10:00:00Z", false)
	if q.Count != MaxCount || q.Total != "accurate" || !slices.Equal(q.ID, []string{"a", "b"}) {
		t.Errorf("Count, Total, ID = %d, %q, %q", q.Count, q.Total, q.ID)
	}
	if !slices.Equal(q.Sort, []SortSpec{{Param: "date", Desc: true}, {Param: "_id"}}) {
		t.Errorf("Sort = %+v", q.Sort)
	}
	if len(q.LastUpdated) != 1 || q.LastUpdated[0].Op != OpGt {
		t.Errorf("LastUpdated = %+v", q.LastUpdated)
	}
	byParam := map[string][]Pred{}
	for _, p := range q.Preds {
		byParam[p.Param.Code] = append(byParam[p.Param.Code], p)
	}
	if got := keys(byParam["code"][0].Terms); !slices.Equal(got, []string{"code=s16|http://loinc.org|8302-2", "code=n|x", "code=c|y"}) {
		t.Errorf("code terms = %q", got)
	}
	if st := byParam["status"][0]; !st.Negate || keys(st.Terms)[0] != "status=c|final" {
		t.Errorf("status:not = %+v", st)
	}
	if d := byParam["date"]; len(d) != 2 || d[0].Dates[0].Op != OpGe || d[1].Dates[0].Op != OpLt {
		t.Errorf("date preds = %+v", d)
	}
	if got := keys(byParam["subject"][0].Terms); got[0] != "subject=Patient/p1" {
		t.Errorf("subject:Patient terms = %q", got)
	}
	if got := keys(byParam["patient"][0].Terms); got[0] != "patient=Patient/p2" {
		t.Errorf("patient terms = %q", got)
	}
	if m := byParam["encounter"][0].Missing; m == nil || !*m {
		t.Errorf("encounter:missing = %v", m)
	}
	if q := mustQuery(t, "Patient", "", false); q.Count != DefaultCount || len(q.Preds) != 0 {
		t.Errorf("empty query = %+v", q)
	}
}

func TestParseQueryStrings(t *testing.T) {
	q := mustQuery(t, "Patient", "family=God%C3%ADnez&given:exact=Sang383&name=a%5C,b", false)
	got := map[string][]string{}
	for _, p := range q.Preds {
		got[p.Param.Code] = keys(p.Terms)
	}
	if !slices.Equal(got["family"], []string{"family=godinez"}) ||
		!slices.Equal(got["given"], []string{"given:exact=Sang383"}) ||
		!slices.Equal(got["name"], []string{"name=a,b"}) {
		t.Errorf("terms = %q", got)
	}
}

func TestParseQueryBirthdate(t *testing.T) {
	for in, want := range map[string]string{
		"1976": "birthdate=y|1976", "1976-01": "birthdate=m|1976-01", "eq1976-01-14": "birthdate=d|1976-01-14",
	} {
		q := mustQuery(t, "Patient", "birthdate="+in, false)
		if got := keys(q.Preds[0].Terms); len(got) != 1 || got[0] != want || len(q.Preds[0].Dates) != 0 {
			t.Errorf("birthdate=%s: terms %q dates %v, want %s", in, got, q.Preds[0].Dates, want)
		}
	}
}

func TestParseQueryErrors(t *testing.T) {
	long := strings.Repeat("x", MaxValueLen+1)
	many := strings.Repeat("a,", MaxAlternatives) + "a"
	var tooMany []string
	for range MaxParams + 1 {
		tooMany = append(tooMany, "status=final")
	}
	tests := []struct {
		typ, raw string
		want     error
	}{
		{"Observation", "colour=red", ErrUnknownParam},
		{"Observation", "name=x", ErrUnknownParam},
		{"PractitionerRole", "name=x", ErrUnknownParam},
		{"Immunization", "code=x", ErrUnknownParam},
		{"Claim", "date=2020", ErrUnknownParam},
		{"Project", "name=x", fhir.ErrUnknownType},
		{"Parameters", "", fhir.ErrUnknownType},
		{"Patient", "name:contains=Zyx", ErrUnsupported},
		{"Patient", "name:text=Zyx", ErrUnsupported},
		{"Observation", "code:below=Zyx", ErrUnsupported},
		{"Observation", "status:text=Zyx", ErrUnsupported},
		{"Observation", "subject:Practitioner=Zyx", ErrUnsupported},
		{"Observation", "subject.colour=Zyx", ErrUnknownParam},
		{"Observation", "subject:Zyx.name=Zyx", ErrInvalidValue},
		{"Observation", "subject:Encounter.name=Zyx", ErrInvalidValue},
		{"Observation", "status.name=Zyx", ErrInvalidValue},
		{"Observation", "subject.=Zyx", ErrInvalidValue},
		{"Observation", "subject.name:contains=Zyx", ErrUnsupported},
		{"Observation", "encounter.subject.organization.name=Zyx", ErrUnsupported},
		{"Observation", "subject._count=1", ErrUnsupported},
		{"Patient", "_has:Observation:patient=Zyx", ErrInvalidValue},
		{"Patient", "_has:Zyx:patient:code=Zyx", ErrInvalidValue},
		{"Patient", "_has:Observation:colour:code=Zyx", ErrUnknownParam},
		{"Patient", "_has:Observation:code:code=Zyx", ErrInvalidValue},
		{"Patient", "_has:Encounter:participant:status=Zyx", ErrInvalidValue},
		{"Patient", "_has:Encounter:patient:_has:Observation:encounter:subject:Patient.name=Zyx", ErrUnsupported},
		{"Observation", "code:identifier=Zyx", ErrUnsupported},
		{"Observation", "date=xx2020", ErrInvalidValue},
		{"Observation", "date=Zyx", ErrInvalidValue},
		{"Observation", "date=2021-02-30", ErrInvalidValue},
		{"Patient", "birthdate=1976-01-14T10:00:00Z", ErrInvalidValue},
		{"Patient", "birthdate=ge1976-01-14T10:00:00Z", ErrInvalidValue},
		{"Patient", "birthdate=ne1976,1980", ErrUnsupported},
		{"Patient", "birthdate=xx1976", ErrInvalidValue},
		{"Observation", "_sort=value-quantity", ErrUnsupported},
		{"Observation", "_sort=code-value-quantity", ErrUnsupported},
		{"Observation", "_sort=colour", ErrUnsupported},
		{"Observation", "_summary=maybe", ErrInvalidValue},
		{"Observation", "_include:Zyx=Observation:subject", ErrUnsupported},
		{"Observation", "_include=Zyx", ErrInvalidValue},
		{"Observation", "_include=Zyx:subject", ErrInvalidValue},
		{"Observation", "_include=Observation:colour", ErrUnknownParam},
		{"Observation", "_include=Observation:status", ErrInvalidValue},
		{"Observation", "_include=Observation:subject:Encounter", ErrInvalidValue},
		{"Observation", "_include=Encounter:subject", ErrInvalidValue},
		{"Observation", "_revinclude=Observation:encounter", ErrInvalidValue},
		{"Observation", "_include=Observation:a:b:c", ErrInvalidValue},
		{"Observation", strings.Repeat("_include=*&", MaxIncludes) + "_revinclude=*", ErrTooComplex},
		{"Observation", "_count=-1", ErrInvalidValue},
		{"Observation", "_count=Zyx", ErrInvalidValue},
		{"Observation", "_count=1&_count=2", ErrInvalidValue},
		{"Observation", "_total=Zyx", ErrInvalidValue},
		{"Observation", "_id=a/b", ErrInvalidValue},
		{"Observation", "_lastUpdated=gt2020,lt2021", ErrUnsupported},
		{"Observation", "code=|", ErrInvalidValue},
		{"Observation", "code=a|b|c", ErrInvalidValue},
		{"Observation", "code=", ErrInvalidValue},
		{"Observation", "code=a,,b", ErrInvalidValue},
		{"Observation", "subject=Zyx Zyx", ErrInvalidValue},
		{"Observation", "encounter:missing=maybe", ErrInvalidValue},
		{"Patient", "family=%20%20", ErrInvalidValue},
		{"Patient", "family=" + long, ErrTooComplex},
		{"Patient", "family=" + many, ErrTooComplex},
		{"Observation", strings.Join(tooMany, "&"), ErrTooComplex},
	}
	for _, tt := range tests {
		t.Run(tt.typ+"?"+tt.raw[:min(len(tt.raw), 40)], func(t *testing.T) {
			q, err := url.ParseQuery(tt.raw)
			if err != nil {
				t.Fatal(err)
			}
			_, err = testRegistry(t).ParseQuery(tt.typ, q, false)
			if !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
			if strings.Contains(err.Error(), "Zyx") || strings.Contains(err.Error(), "xxxx") {
				t.Errorf("error echoes a value: %v", err)
			}
		})
	}
}

func TestParseQueryDoesNotEchoParamNames(t *testing.T) {
	q := url.Values{"Zyx Zyx <script>": {"1"}}
	_, err := testRegistry(t).ParseQuery("Patient", q, false)
	if !errors.Is(err, ErrUnknownParam) || strings.Contains(err.Error(), "Zyx") {
		t.Fatalf("err = %v", err)
	}
	_, err = testRegistry(t).ParseQuery("Patient", url.Values{"colour": {"1"}}, false)
	if err == nil || !strings.Contains(err.Error(), "colour") {
		t.Errorf("a well-formed unknown parameter is not named: %v", err)
	}
}

func TestParseQueryLenient(t *testing.T) {
	q := mustQuery(t, "Observation", "colour=red&_summary=text&_include=Observation:colour&status=final&subject.colour=x&_has:Observation:colour:code=x", true)
	if !slices.Equal(q.Ignored, []string{"_has:Observation:colour:code", "_include", "colour", "subject.colour"}) {
		t.Errorf("Ignored = %q", q.Ignored)
	}
	if len(q.Preds) != 1 || len(q.Chains) != 0 || len(q.Include) != 0 {
		t.Errorf("Preds = %+v, Chains = %+v, Include = %+v", q.Preds, q.Chains, q.Include)
	}
	// Malformed values of supported parameters are errors even if lenient.
	_, err := testRegistry(t).ParseQuery("Observation", url.Values{"date": {"bogus"}}, true)
	if !errors.Is(err, ErrInvalidValue) {
		t.Errorf("lenient bad date: err = %v", err)
	}
}

// TestQueryMatchesIndex is the agreement test: for every value extracted
// from the testdata resources, the query a client would write for it
// yields a term that the value's index terms contain.
func TestQueryMatchesIndex(t *testing.T) {
	r := testRegistry(t)
	for _, name := range []string{"Patient", "Practitioner", "Organization", "Location", "Observation", "Condition",
		"Encounter", "Immunization", "DiagnosticReport", "DocumentReference", "Claim", "ExplanationOfBenefit"} {
		res := loadResource(t, name)
		vals, err := r.Extract(res)
		if err != nil {
			t.Fatal(err)
		}
		for _, v := range vals {
			if v.terms != nil {
				continue // computed terms: params_test.go
			}
			var queries []string
			switch v.Type {
			case Token:
				queries = []string{v.Code}
				if v.HasSystem {
					queries = append(queries, v.System+"|"+v.Code)
				} else {
					queries = append(queries, "|"+v.Code)
				}
			case String:
				n := []rune(Normalize(v.Str))
				queries = []string{v.Str, strings.ToUpper(v.Str), string(n[:min(3, len(n))])}
				if v.Param == "name" || v.Param == "family" || v.Param == "given" {
					queries = append(queries, "exact:"+v.Str)
				}
			case Reference:
				_, id, _ := strings.Cut(v.Ref, "/")
				queries = []string{v.Ref, id, "https://example.org/fhir/" + v.Ref}
			case Date:
				if v.Identifying {
					queries = []string{v.Lo.Format("2006"), v.Lo.Format("2006-01"), v.Lo.Format("2006-01-02")}
				}
			}
			index := map[string]bool{}
			for _, k := range keys(IndexTerms(v)) {
				index[k] = true
			}
			for _, qv := range queries {
				key := v.Param
				if s, ok := strings.CutPrefix(qv, "exact:"); ok {
					key, qv = v.Param+":exact", s
				}
				qv = strings.NewReplacer(`\`, `\\`, `,`, `\,`).Replace(qv)
				q, err := r.ParseQuery(name, url.Values{key: {qv}}, false)
				if err != nil {
					t.Errorf("%s %s: %v", name, key, err)
					continue
				}
				// The terms of one value are alternatives (OR): a bare
				// reference id expands to every target type, and one of
				// them must be the value's own index term.
				matched := false
				for _, k := range keys(q.Preds[0].Terms) {
					matched = matched || index[k]
				}
				if !matched {
					t.Errorf("%s: query %s=… gives terms %q, none among the value's index terms", name, key, keys(q.Preds[0].Terms))
				}
			}
		}
	}
}

func TestParseQuerySummaryCount(t *testing.T) {
	q := mustQuery(t, "Observation", "status=final&_summary=count", false)
	if q.Summary != "count" {
		t.Errorf("Summary = %q, want count", q.Summary)
	}
}
