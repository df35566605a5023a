package storagetest

import (
	"slices"
	"testing"

	"github.com/phivault/phivault/internal/storage"
)

// testHistoryAt: HistoryQuery.AtFrom/AtTo keep the versions current at
// some time of the period (FHIR _at), delete markers included.
func testHistoryAt(t *testing.T, s storage.Store) {
	put(t, s, ver("Observation", "a", 1, "Patient/a", at(10)))
	put(t, s, ver("Observation", "a", 2, "Patient/a", at(20)))
	put(t, s, ver("Observation", "a", 3, "Patient/a", at(30)))
	put(t, s, ver("Observation", "b", 1, "Patient/a", at(15)))
	gone := ver("Observation", "b", 2, "Patient/a", at(25))
	gone.Deleted, gone.Ciphertext = true, nil
	put(t, s, gone)
	put(t, s, ver("Observation", "c", 1, "Patient/a", at(40)))
	for _, tc := range []struct {
		name     string
		from, to int
		want     []string
	}{
		{"before anything", 5, 5, nil},
		{"an instant", 22, 22, []string{"Observation/a/2", "Observation/b/1"}},
		{"the instant of a write", 20, 20, []string{"Observation/a/2", "Observation/b/1"}},
		{"after a delete", 26, 26, []string{"Observation/b/2", "Observation/a/2"}},
		{"a period", 12, 31, []string{"Observation/a/3", "Observation/b/2", "Observation/a/2", "Observation/b/1", "Observation/a/1"}},
		{"the end", 50, 50, []string{"Observation/c/1", "Observation/a/3", "Observation/b/2"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			vs, err := s.History(t.Context(), storage.HistoryQuery{Type: "Observation", Count: 20, AtFrom: at(tc.from), AtTo: at(tc.to)})
			if err != nil {
				t.Fatal(err)
			}
			if got := refs(vs); !slices.Equal(got, tc.want) {
				t.Errorf("history _at %d..%d: %v, want %v", tc.from, tc.to, got, tc.want)
			}
		})
	}
	// Instance and system history take it too.
	vs, err := s.History(t.Context(), storage.HistoryQuery{Type: "Observation", ID: "a", Count: 5, AtFrom: at(25), AtTo: at(25)})
	if err != nil || !slices.Equal(refs(vs), []string{"Observation/a/2"}) {
		t.Errorf("instance history _at: %v %v", refs(vs), err)
	}
	vs, err = s.History(t.Context(), storage.HistoryQuery{Count: 5, AtFrom: at(12), AtTo: at(12)})
	if err != nil || !slices.Equal(refs(vs), []string{"Observation/a/1"}) {
		t.Errorf("system history _at: %v %v", refs(vs), err)
	}
}
