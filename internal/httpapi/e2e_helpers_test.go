package httpapi_test

import (
	"crypto/rand"
	"encoding/hex"
	"slices"
	"testing"
)

// uniq returns a fresh value for identifiers and names, so subtests
// sharing one server never see each other's data.
func uniq() string {
	var b [6]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// testSystem is the identifier system of resources made by these tests.
const testSystem = "urn:phivault:test"

func patient(ident string, more map[string]any) map[string]any {
	p := map[string]any{
		"resourceType": "Patient",
		"identifier":   []any{map[string]any{"system": testSystem, "value": ident}},
	}
	for k, v := range more {
		p[k] = v
	}
	return p
}

func observation(pid string, more map[string]any) map[string]any {
	o := map[string]any{
		"resourceType": "Observation",
		"status":       "final",
		"code":         map[string]any{"coding": []any{map[string]any{"system": "http://loinc.org", "code": "8302-2"}}},
		"subject":      map[string]any{"reference": "Patient/" + pid},
	}
	for k, v := range more {
		o[k] = v
	}
	return o
}

// sameSet fails unless got and want hold the same strings, each once.
func sameSet(t *testing.T, what string, got, want []string) {
	t.Helper()
	g, w := slices.Clone(got), slices.Clone(want)
	slices.Sort(g)
	slices.Sort(w)
	if len(slices.Compact(slices.Clone(g))) != len(g) {
		t.Errorf("%s: duplicates in %v", what, got)
	}
	if !slices.Equal(g, w) {
		t.Errorf("%s: got %v, want %v", what, g, w)
	}
}

func meta(res map[string]any) map[string]any {
	m, _ := res["meta"].(map[string]any)
	return m
}
