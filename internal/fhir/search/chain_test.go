package search

import (
	"errors"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/phivault/phivault/internal/fhir"
)

func innerTypes(c Chain) []string {
	var out []string
	for _, in := range c.Inner {
		out = append(out, in.Type)
	}
	return out
}

func TestParseChains(t *testing.T) {
	tests := []struct {
		typ, raw string
		name     string
		reverse  bool
		inner    []string // inner types
		term     string   // first term of the innermost predicate, "" to skip
	}{
		{"Observation", "subject:Patient.identifier=MRN|123", "subject:Patient.identifier", false, []string{"Patient"}, "identifier=s3|MRN|123"},
		{"Observation", "patient.name=Smith", "patient.name", false, []string{"Patient"}, "name=smith"},
		// subject refers to Group, Device, Location and Patient: the
		// types with an identifier parameter are searched.
		{"Observation", "subject.identifier=x", "subject.identifier", false, []string{"Location", "Patient"}, "identifier=c|x"},
		{"Observation", "subject:Patient.name:exact=Ann", "subject:Patient.name:exact", false, []string{"Patient"}, "name:exact=Ann"},
		{"Observation", "subject:Patient._id=p1", "subject:Patient._id", false, []string{"Patient"}, ""},
		{"Encounter", "participant.name=lee", "participant.name", false, []string{"Practitioner"}, "name=lee"},
		{"Observation", "encounter.subject:Patient.name=x", "encounter.subject:Patient.name", false, []string{"Encounter"}, ""},
		{"Patient", "_has:Observation:patient:code=1234-5", "_has:Observation:patient:code", true, []string{"Observation"}, "code=c|1234-5"},
		{"Patient", "_has:Observation:subject:status:not=final", "_has:Observation:subject:status:not", true, []string{"Observation"}, "status=c|final"},
		{"Patient", "_has:Encounter:patient:_has:Observation:encounter:code=x", "_has:Encounter:patient:_has:Observation:encounter:code", true, []string{"Encounter"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.typ+"?"+tt.raw, func(t *testing.T) {
			q := mustQuery(t, tt.typ, tt.raw, false)
			if len(q.Chains) != 1 || len(q.Preds) != 0 {
				t.Fatalf("Chains = %+v, Preds = %+v", q.Chains, q.Preds)
			}
			c := q.Chains[0]
			got := innerTypes(c)
			slices.Sort(got)
			if c.Name != tt.name || c.Reverse != tt.reverse || !slices.Equal(got, tt.inner) {
				t.Fatalf("chain %q reverse %v inner %v", c.Name, c.Reverse, got)
			}
			if tt.term != "" {
				in := c.Inner[len(c.Inner)-1]
				if len(in.Preds) != 1 || keys(in.Preds[0].Terms)[0] != tt.term {
					t.Fatalf("inner preds %+v", in.Preds)
				}
			}
		})
	}
	q := mustQuery(t, "Observation", "encounter.subject:Patient.name=x", false)
	deep := q.Chains[0].Inner[0]
	if len(deep.Chains) != 1 || deep.Chains[0].Param.Code != "subject" || deep.Chains[0].Inner[0].Type != "Patient" {
		t.Fatalf("second level = %+v", deep.Chains)
	}
	q = mustQuery(t, "Observation", "subject:Patient._id=p1,p2", false)
	if !slices.Equal(q.Chains[0].Inner[0].ID, []string{"p1", "p2"}) {
		t.Fatalf("inner _id = %v", q.Chains[0].Inner[0].ID)
	}
}

func TestParseChainBounds(t *testing.T) {
	// Each subject.identifier needs two searches (Patient, Location).
	q := url.Values{}
	for i := range MaxChainSearches/2 + 1 {
		q.Add("subject.identifier", strings.Repeat("x", i+1))
	}
	if _, err := testRegistry(t).ParseQuery("Observation", q, false); !errors.Is(err, ErrTooComplex) {
		t.Fatalf("err = %v, want ErrTooComplex", err)
	}
	q.Del("subject.identifier")
	for i := range MaxChainSearches / 2 {
		q.Add("subject.identifier", strings.Repeat("x", i+1))
	}
	if _, err := testRegistry(t).ParseQuery("Observation", q, false); err != nil {
		t.Fatalf("at the bound: %v", err)
	}
}

func TestParseIncludes(t *testing.T) {
	q := mustQuery(t, "Observation", "_include=Observation:subject:Patient&_include:iterate=Patient:*&_revinclude:recurse=*&_include=*", false)
	var names []string
	for _, in := range q.Include {
		names = append(names, in.Name)
	}
	if !slices.Equal(names, []string{"Observation:subject:Patient", "*", "Patient:*"}) {
		t.Fatalf("includes = %q", names)
	}
	if in := q.Include[0]; in.Param.Code != "subject" || in.Target != "Patient" || in.Iterate {
		t.Fatalf("first include = %+v", in)
	}
	if !q.Include[2].Iterate || q.Include[2].Param != nil || q.Include[1].Iterate || len(q.RevInclude) != 1 || !q.RevInclude[0].Iterate || q.RevInclude[0].Source != "*" {
		t.Fatalf("iterate/wildcard = %+v %+v", q.Include, q.RevInclude)
	}
	q = mustQuery(t, "Patient", "_id=p1&_revinclude=Observation:subject&_revinclude=Encounter:*", false)
	if len(q.RevInclude) != 2 || q.RevInclude[0].Param.Code != "subject" || q.RevInclude[1].Param != nil {
		t.Fatalf("revincludes = %+v", q.RevInclude)
	}
}

func TestFollow(t *testing.T) {
	r := testRegistry(t)
	codes := func(ps []*Param) []string {
		var out []string
		for _, p := range ps {
			out = append(out, p.Base+":"+p.Code)
		}
		return out
	}
	if got := codes(r.Follow(Include{Source: "Observation"}, "Observation")); !slices.Equal(got, []string{"Observation:encounter", "Observation:patient", "Observation:subject"}) {
		t.Errorf("Follow(Observation:*) = %v", got)
	}
	if got := r.Follow(Include{Source: "Observation"}, "Patient"); got != nil {
		t.Errorf("Follow of another type = %v", codes(got))
	}
	if got := codes(r.Follow(Include{Source: "Observation", Target: "Encounter"}, "Observation")); !slices.Equal(got, []string{"Observation:encounter"}) {
		t.Errorf("Follow(Observation:*:Encounter) = %v", got)
	}
	back := codes(r.FollowBack(Include{Source: "*"}, "Patient"))
	for _, want := range []string{"Observation:patient", "Observation:subject", "Encounter:patient", "CareTeam:subject"} {
		if !slices.Contains(back, want) {
			t.Errorf("FollowBack(*, Patient) lacks %s: %v", want, back)
		}
	}
	if slices.Contains(back, "Observation:encounter") {
		t.Errorf("FollowBack(*, Patient) holds Observation:encounter")
	}
	if got := r.FollowBack(Include{Source: "Observation", Target: "Encounter"}, "Patient"); got != nil {
		t.Errorf("FollowBack with another target = %v", codes(got))
	}
}

func TestReferencesAndIdentifierModifier(t *testing.T) {
	r := testRegistry(t)
	res, err := fhir.Decode(strings.NewReader(`{"resourceType":"Observation","status":"final","code":{"text":"x"},
		"subject":{"reference":"Patient/p1","identifier":{"system":"urn:mrn","value":"123"}},
		"encounter":{"identifier":{"value":"E9"}}}`), fhir.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	subj, _ := r.Lookup("Observation", "subject")
	if got := r.References(subj, res); !slices.Equal(got, []string{"Patient/p1"}) {
		t.Errorf("References(subject) = %v", got)
	}
	enc, _ := r.Lookup("Observation", "encounter")
	if got := r.References(enc, res); got != nil {
		t.Errorf("References(encounter) of an identifier-only reference = %v", got)
	}
	vals, err := r.Extract(res)
	if err != nil {
		t.Fatal(err)
	}
	index := map[Term]bool{}
	for _, tm := range Terms(vals) {
		index[tm] = true
	}
	for _, raw := range []string{"subject:identifier=urn:mrn|123", "subject:identifier=123", "encounter:identifier=E9", "encounter:identifier=|E9"} {
		q := mustQuery(t, "Observation", raw, false)
		if len(q.Preds) != 1 || !index[q.Preds[0].Terms[0]] {
			t.Errorf("%s: term %+v is not indexed", raw, q.Preds[0].Terms)
		}
	}
	q := mustQuery(t, "Observation", "subject:identifier=urn:mrn|124", false)
	if index[q.Preds[0].Terms[0]] {
		t.Error("another identifier matches")
	}
	q = mustQuery(t, "Observation", "subject=Patient/p1", false)
	if q.Preds[0].Terms[0].Param != "subject" || !index[q.Preds[0].Terms[0]] {
		t.Errorf("the plain reference term moved: %+v", q.Preds[0].Terms)
	}
}
