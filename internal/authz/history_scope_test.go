package authz

import (
	"testing"

	"github.com/phivault/phivault/internal/authn"
	"github.com/phivault/phivault/internal/authn/smart/scope"
)

// TestHistoryScopeLevels: SMART v2 puts instance history under "r" and
// type- and system-level history (HistoryType) under "s"; the policies
// decide both as "history".
func TestHistoryScopeLevels(t *testing.T) {
	a, _ := testAuthorizer(t, &memSource{}, nil, nil)
	tgt := Target{Type: "Observation", ID: "o", Owner: "Patient/p1"}
	for i, tc := range []struct {
		scopes string
		action Action
		want   bool
	}{
		{"system/Observation.r", History, true},
		{"system/Observation.r", HistoryType, false},
		{"system/Observation.s", History, false},
		{"system/Observation.s", HistoryType, true},
		{"system/Observation.rs", HistoryType, true},
		{"system/Patient.s", HistoryType, false},
	} {
		set, err := scope.ParseSet(tc.scopes)
		if err != nil {
			t.Fatal(err)
		}
		// One client per case: the subject cache is keyed by principal.
		p := authn.Principal{Kind: "smart-client", ID: "client-" + string(rune('a'+i)), Roles: []string{"system"}, Scopes: &set}
		d, err := a.Decide(t.Context(), p, tc.action, tgt)
		if err != nil {
			t.Fatalf("%s %s: %v", tc.scopes, tc.action, err)
		}
		if d.Allowed != tc.want {
			t.Errorf("%s %s: allowed %v, want %v (policies %v)", tc.scopes, tc.action, d.Allowed, tc.want, d.Policies)
		}
	}
	if _, ok := ParseAction(string(HistoryType)); ok {
		t.Error("history-type is a policy action; policies decide it as history")
	}
}
