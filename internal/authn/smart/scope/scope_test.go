package scope

import (
	"errors"
	"os"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	tests := []struct {
		name, in, want string // want is the canonical form; "" means an error
		err            error
	}{
		{"v2 read search", "patient/Observation.rs", "patient/Observation.rs", nil},
		{"v2 all", "user/*.cruds", "user/*.cruds", nil},
		{"v2 system", "system/*.rs", "system/*.rs", nil},
		{"v2 single letter", "system/Patient.d", "system/Patient.d", nil},
		{"v1 read", "patient/Observation.read", "patient/Observation.rs", nil},
		{"v1 write", "user/Patient.write", "user/Patient.cud", nil},
		{"v1 star", "system/*.*", "system/*.cruds", nil},
		{"restricted", "patient/Observation.rs?category=http://terminology.hl7.org/CodeSystem/observation-category|laboratory",
			"patient/Observation.rs?category=http://terminology.hl7.org/CodeSystem/observation-category|laboratory", nil},
		{"openid", "openid", "openid", nil},
		{"fhirUser", "fhirUser", "fhirUser", nil},
		{"offline", "offline_access", "offline_access", nil},
		{"online", "online_access", "online_access", nil},
		{"launch", "launch", "launch", nil},
		{"launch patient", "launch/patient", "launch/patient", nil},

		{"letters out of order", "patient/Observation.sr", "", ErrSyntax},
		{"repeated letter", "patient/Observation.rrs", "", ErrSyntax},
		{"unknown letter", "patient/Observation.rx", "", ErrSyntax},
		{"empty perms", "patient/Observation.", "", ErrSyntax},
		{"no perms", "patient/Observation", "", ErrSyntax},
		{"bad context", "admin/*.rs", "", ErrSyntax},
		{"lower type", "patient/observation.rs", "", ErrSyntax},
		{"empty type", "patient/.rs", "", ErrSyntax},
		{"unknown word", "email", "", ErrSyntax},
		{"case matters", "OpenID", "", ErrSyntax},
		{"v1 with query", "patient/Observation.read?category=x", "", ErrSyntax},
		{"empty query", "patient/Observation.rs?", "", ErrSyntax},
		{"query without value", "patient/Observation.rs?category", "", ErrSyntax},
		{"query bad char", "patient/Observation.rs?category=<script>", "", ErrSyntax},
		{"empty launch", "launch/", "", ErrSyntax},
		{"nul", "patient/Obs\x00.rs", "", ErrSyntax},
		{"double dot", "patient/Observation.rs.rs", "", ErrSyntax},
		{"too long", "patient/" + strings.Repeat("A", MaxScopeLen) + ".rs", "", ErrTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse(tt.in)
			if tt.err != nil {
				if !errors.Is(err, tt.err) {
					t.Fatalf("Parse(%q) error = %v, want %v", tt.in, err, tt.err)
				}
				if len(err.Error()) > 160 {
					t.Errorf("error text is %d bytes long", len(err.Error()))
				}
				return
			}
			if err != nil {
				t.Fatalf("Parse(%q): %v", tt.in, err)
			}
			if got.String() != tt.want {
				t.Errorf("Parse(%q) = %q, want %q", tt.in, got.String(), tt.want)
			}
		})
	}
}

func TestParseSetBounds(t *testing.T) {
	if _, err := ParseSet(strings.Repeat("openid ", MaxScopes+1)); !errors.Is(err, ErrTooLarge) {
		t.Errorf("too many scopes: err = %v", err)
	}
	if _, err := ParseSet(strings.Repeat(" ", MaxLen+1)); !errors.Is(err, ErrTooLarge) {
		t.Errorf("too long: err = %v", err)
	}
	s, err := ParseSet("  system/*.rs   system/*.read openid ")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := s.String(), "openid system/*.rs"; got != want {
		t.Errorf("dedup: got %q, want %q", got, want)
	}
	if e, _ := ParseSet(""); !e.Empty() {
		t.Error("empty string gives a non-empty set")
	}
}

func TestAllows(t *testing.T) {
	s, err := ParseSet("patient/Observation.rs user/*.r system/Patient.write patient/Condition.rs?category=problem-list-item")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		c    Context
		typ  string
		i    Interaction
		want bool
	}{
		{Patient, "Observation", Read, true},
		{Patient, "Observation", Search, true},
		{Patient, "Observation", Create, false},
		{Patient, "Patient", Read, false},
		{User, "Patient", Read, true},
		{User, "Patient", Search, false},
		{System, "Patient", Create, true},
		{System, "Patient", Update, true},
		{System, "Patient", Delete, true},
		{System, "Patient", Read, false}, // v1 write does not imply read
		{System, "Observation", Create, false},
		{Patient, "Condition", Read, false}, // restricted scopes fail closed
		{Patient, "Observation", Interaction('x'), false},
	}
	for _, tt := range tests {
		if got := s.Allows(tt.c, tt.typ, tt.i); got != tt.want {
			t.Errorf("Allows(%s, %s, %c) = %v, want %v", tt.c, tt.typ, tt.i, got, tt.want)
		}
	}
	if (Set{}).Allows(System, "Patient", Read) {
		t.Error("the zero Set allows something")
	}
}

func TestIntersect(t *testing.T) {
	tests := []struct{ granted, requested, want string }{
		{"system/*.rs", "system/Observation.rs", "system/Observation.rs"},
		{"system/*.rs", "system/Observation.cruds", "system/Observation.rs"},
		{"system/Observation.rs", "system/*.rs", "system/Observation.rs"},
		{"system/Observation.rs", "system/Patient.rs", ""},
		{"system/*.rs", "patient/*.rs", ""},
		{"system/*.rs", "system/*.cud", ""},
		{"system/*.rs", "system/Observation.rs?code=x", ""},
		{"system/*.rs openid", "openid fhirUser system/Patient.read", "openid system/Patient.rs"},
		{"system/*.rs system/Patient.cruds", "system/*.rs", "system/*.rs"},
		{"system/*.rs system/Patient.cruds", "system/*.cruds", "system/*.rs system/Patient.cruds"},
	}
	for _, tt := range tests {
		g, err := ParseSet(tt.granted)
		if err != nil {
			t.Fatal(err)
		}
		r, err := ParseSet(tt.requested)
		if err != nil {
			t.Fatal(err)
		}
		if got := Intersect(g, r).String(); got != tt.want {
			t.Errorf("Intersect(%q, %q) = %q, want %q", tt.granted, tt.requested, got, tt.want)
		}
	}
}

func FuzzParse(f *testing.F) {
	b, err := os.ReadFile("testdata/scopes.txt")
	if err != nil {
		f.Fatal(err)
	}
	for _, s := range strings.Split(string(b), "\n") {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		s, err := ParseSet(in)
		if err != nil {
			if !errors.Is(err, ErrSyntax) && !errors.Is(err, ErrTooLarge) {
				t.Fatalf("unexpected error kind: %v", err)
			}
			if len(err.Error()) > 200 {
				t.Fatalf("error text too long: %d bytes", len(err.Error()))
			}
			return
		}
		// The canonical form must parse back to itself (v1 ".*" grows
		// into ".cruds", so a string near MaxLen may outgrow the bound).
		if len(s.String()) > MaxLen {
			return
		}
		again, err := ParseSet(s.String())
		if err != nil {
			t.Fatalf("canonical form %q does not parse: %v", s.String(), err)
		}
		if again.String() != s.String() {
			t.Fatalf("round trip: %q then %q", s.String(), again.String())
		}
	})
}
