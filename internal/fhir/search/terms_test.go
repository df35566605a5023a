package search

import (
	"slices"
	"testing"
	"time"
)

func TestNormalize(t *testing.T) {
	tests := []struct{ in, want string }{
		{"Godínez202", "godinez202"},
		{"  Zoë   Ångström\t", "zoe angstrom"},
		{"ﬁnn", "finn"}, // NFKD folds the ligature
		{"O'BRIEN-Smith", "o'brien-smith"},
		{"Ⅻ", "xii"},
		{"", ""},
		{" \n ", ""},
	}
	for _, tt := range tests {
		if got := Normalize(tt.in); got != tt.want {
			t.Errorf("Normalize(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func keys(ts []Term) []string {
	var out []string
	for _, t := range ts {
		out = append(out, t.Param+"="+t.Key)
	}
	return out
}

func TestIndexTerms(t *testing.T) {
	day := func(s string) (time.Time, time.Time) {
		lo, hi, _, _ := parseDate(s)
		return lo, hi
	}
	bdLo, bdHi := day("1976-01-14")
	bmLo, bmHi := day("1976-01")
	tests := []struct {
		name string
		v    Value
		want []string
	}{
		{"coding", Value{Param: "code", Type: Token, System: "http://loinc.org", Code: "1-8", HasSystem: true},
			[]string{"code=c|1-8", "code=s16|http://loinc.org|1-8", "code=y|http://loinc.org"}},
		{"code without system", Value{Param: "status", Type: Token, Code: "final"},
			[]string{"status=c|final", "status=n|final"}},
		{"string", Value{Param: "family", Type: String, Str: "Kühn"},
			[]string{"family=k", "family=ku", "family=kuh", "family=kuhn", "family:exact=Kühn"}},
		{"reference", Value{Param: "subject", Type: Reference, Ref: "Patient/p1"},
			[]string{"subject=Patient/p1"}},
		{"birthdate day", Value{Param: "birthdate", Type: Date, Identifying: true, Lo: bdLo, Hi: bdHi},
			[]string{"birthdate=d|1976-01-14", "birthdate=m|1976-01", "birthdate=y|1976"}},
		{"birthdate month", Value{Param: "birthdate", Type: Date, Identifying: true, Lo: bmLo, Hi: bmHi},
			[]string{"birthdate=m|1976-01", "birthdate=y|1976"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := keys(IndexTerms(tt.v))
			if !slices.Equal(got, tt.want) {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
	dt := IndexTerms(Value{Param: "date", Type: Date, Lo: bdLo, Hi: bdHi})
	if len(dt) != 1 || !dt[0].IsDate || dt[0].Lo != bdLo.UnixMicro() || dt[0].Hi != bdHi.UnixMicro() {
		t.Errorf("clinical date terms = %+v, want one plaintext range", dt)
	}
	for _, term := range IndexTerms(Value{Param: "birthdate", Type: Date, Identifying: true, Lo: bdLo, Hi: bdHi}) {
		if term.IsDate || term.Lo != 0 || term.Hi != 0 {
			t.Errorf("identifying date produced a plaintext range: %+v", term)
		}
	}
}

func TestStringPrefixesAreBounded(t *testing.T) {
	long := "abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyz"
	ts := IndexTerms(Value{Param: "name", Type: String, Str: long})
	if len(ts) != MaxPrefixRunes+1 {
		t.Fatalf("%d terms, want %d", len(ts), MaxPrefixRunes+1)
	}
}

func TestTermsDeduplicates(t *testing.T) {
	vs := []Value{
		{Param: "name", Type: String, Str: "Ann"},
		{Param: "name", Type: String, Str: "Anne"},
	}
	got := keys(Terms(vs))
	want := []string{"name=a", "name=an", "name=ann", "name:exact=Ann", "name=anne", "name:exact=Anne"}
	if !slices.Equal(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
}
