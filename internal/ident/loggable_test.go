package ident

import (
	"strings"
	"testing"
)

func TestLoggable(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"Patient/p1", "Patient/p1"},
		{"Patient/p1\nFAKE LOG LINE", "Patient/p1?FAKE LOG LINE"},
		{"a\x00b\x7fc\x1b[31m", "a?b?c?[31m"},
		{"bad\xffutf8", "bad?utf8"},
		{strings.Repeat("x", 200), strings.Repeat("x", 128)},
		{"Patient/\x1b[31mred\n", "Patient/?[31mred?"},
		{"Patient/\xff\xfe", "Patient/?"},
		{"org\x7f", "org?"},
		{"Patient/\u00e9\u00e8\x00", "Patient/\u00e9\u00e8?"},
	} {
		if got := Loggable(tt.in); got != tt.want {
			t.Errorf("Loggable(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
