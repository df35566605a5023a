package ident

import (
	"strings"
	"testing"
)

func TestParseRef(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want Ref
		ok   bool
	}{
		{"Patient/p1", PatientRef("p1"), true},
		{"Observation/a.b-C9", RefTo("Observation", "a.b-C9"), true},
		{"Patient/" + strings.Repeat("x", 64), PatientRef(strings.Repeat("x", 64)), true},
		{"Patient/" + strings.Repeat("x", 65), Ref{}, false},
		{"Patient/", Ref{}, false},
		{"/p1", Ref{}, false},
		{"patient/p1", Ref{}, false},
		{"Patient/p1/_history/2", Ref{}, false},
		{"https://x.example/fhir/Patient/p1", Ref{}, false},
		{"#contained", Ref{}, false},
		{"Patient?identifier=x", Ref{}, false},
		{"Patient/p 1", Ref{}, false},
		{"Pati3nt/p1", Ref{}, false},
		{"", Ref{}, false},
	} {
		got, ok := ParseRef(tt.in)
		if got != tt.want || ok != tt.ok {
			t.Errorf("ParseRef(%q) = %v, %v; want %v, %v", tt.in, got, ok, tt.want, tt.ok)
		}
		if ok && got.String() != tt.in {
			t.Errorf("ParseRef(%q).String() = %q", tt.in, got.String())
		}
	}
	if (Ref{}).String() != "" || !PatientRef("p").IsPatient() || RefTo("Practitioner", "d").IsPatient() {
		t.Error("Ref.String or IsPatient is wrong")
	}
}

func TestOwner(t *testing.T) {
	for _, tt := range []struct {
		o    Owner
		kind OwnerKind
		pid  string
	}{
		{PatientOwner("p1"), OwnerPatient, "p1"},
		{JointOwner("ab12"), OwnerJoint, ""},
		{Org, OwnerOrg, ""},
		{SystemOwner("auth-rows"), OwnerSystem, ""},
		{"Patient/", OwnerUnknown, ""},
		{"Joint/", OwnerUnknown, ""},
		{"system/", OwnerUnknown, ""},
		{"organisation", OwnerUnknown, ""},
		{"", OwnerUnknown, ""},
	} {
		if got := tt.o.Kind(); got != tt.kind {
			t.Errorf("Owner(%q).Kind() = %d, want %d", tt.o, got, tt.kind)
		}
		pid, ok := tt.o.PatientID()
		if pid != tt.pid || ok != (tt.kind == OwnerPatient) {
			t.Errorf("Owner(%q).PatientID() = %q, %v", tt.o, pid, ok)
		}
		if tt.o.IsPatient() != (tt.kind == OwnerPatient) || tt.o.IsJoint() != (tt.kind == OwnerJoint) || tt.o.IsSystem() != (tt.kind == OwnerSystem) {
			t.Errorf("Owner(%q): Is* disagree with Kind", tt.o)
		}
	}
	if PatientOwner("p1").String() != PatientRef("p1").String() {
		t.Error("a patient's owner is not the patient's reference")
	}
}

// FuzzParseRef: any input either fails or round-trips through String.
func FuzzParseRef(f *testing.F) {
	for _, s := range []string{"Patient/p1", "Observation/x.y", "a/b", "Patient//x", "Patient/p1/x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, ok := ParseRef(s)
		if !ok {
			if r != (Ref{}) {
				t.Fatalf("ParseRef(%q) failed but returned %v", s, r)
			}
			return
		}
		if r.String() != s || !ValidType(r.Type) || !ValidID(r.ID) {
			t.Fatalf("ParseRef(%q) = %v does not round-trip", s, r)
		}
	})
}
