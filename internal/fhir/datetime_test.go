package fhir

import (
	"testing"
	"time"
)

func TestParseDateTime(t *testing.T) {
	for _, tc := range []struct {
		in   string
		end  bool
		want time.Time
		ok   bool
	}{
		{"2026-03-02T10:00:00Z", false, time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC), true},
		{"2026-03-02", false, time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC), true},
		{"2026-03-02", true, time.Date(2026, 3, 3, 0, 0, 0, 0, time.UTC).Add(-1), true},
		{"2026-03", true, time.Date(2026, 4, 1, 0, 0, 0, 0, time.UTC).Add(-1), true},
		{"2026", true, time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC).Add(-1), true},
		{"", false, time.Time{}, false},
		{"yesterday", false, time.Time{}, false},
	} {
		got, ok := ParseDateTime(tc.in, tc.end)
		if ok != tc.ok || !got.Equal(tc.want) {
			t.Errorf("ParseDateTime(%q, %v) = %v, %v; want %v, %v", tc.in, tc.end, got, ok, tc.want, tc.ok)
		}
	}
}
