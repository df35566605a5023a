package lifecycle

import (
	"strings"
	"testing"
)

// An owner read from a tampered key record is logged bounded, valid
// UTF-8 and without control characters.
func TestSafeID(t *testing.T) {
	for in, want := range map[string]string{
		"Patient/p1":               "Patient/p1",
		"Patient/\x1b[31mred\n":    "Patient/?[31mred?",
		"Patient/\xff\xfe":         "Patient/?",
		"org\x7f":                  "org?",
		strings.Repeat("a", 200):   strings.Repeat("a", 128),
		"Patient/\u00e9\u00e8\x00": "Patient/\u00e9\u00e8?",
	} {
		if got := safeID(in); got != want {
			t.Errorf("safeID(%q) = %q, want %q", in, got, want)
		}
	}
}
