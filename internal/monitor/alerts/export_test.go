package alerts

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/phivault/phivault/internal/monitor"
)

func TestParseSince(t *testing.T) {
	now := time.Date(2026, 3, 2, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		in   string
		want time.Time
		ok   bool
	}{
		{"", time.Time{}, true},
		{"24h", now.Add(-24 * time.Hour), true},
		{"90m", now.Add(-90 * time.Minute), true},
		{"7d", now.Add(-7 * 24 * time.Hour), true},
		{"2026-03-01T00:00:00Z", time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC), true},
		{"-1h", time.Time{}, false},
		{"yesterday", time.Time{}, false},
		{"99999999d", time.Time{}, false},
	} {
		got, err := ParseSince(tc.in, now)
		if (err == nil) != tc.ok || !got.Equal(tc.want) {
			t.Errorf("ParseSince(%q) = %v, %v; want %v (ok %v)", tc.in, got, err, tc.want, tc.ok)
		}
	}
}

func TestWriteTSV(t *testing.T) {
	as := []JSON{
		{User: "Practitioner/p1", Patients: []string{"Patient/b", "Patient/a", "Patient/a"}, Category: monitor.CatBulk, Score: 0.91234, Explanation: "exported\t2\npatients"},
		{Address: "10.0.0.1", Category: monitor.CatCredential, Score: 0.5, Explanation: "spraying"},
	}
	var b bytes.Buffer
	if err := WriteTSV(&b, as); err != nil {
		t.Fatal(err)
	}
	want := "Practitioner/p1\tPatient/a\tbulk\t0.912\texported 2 patients\n" +
		"Practitioner/p1\tPatient/b\tbulk\t0.912\texported 2 patients\n" +
		"\t\tcredential\t0.500\tspraying\n"
	if b.String() != want {
		t.Errorf("tsv:\n%q\nwant\n%q", b.String(), want)
	}
}

// FuzzParseSince: any input is parsed or refused, never a time after now.
func FuzzParseSince(f *testing.F) {
	for _, s := range []string{"", "24h", "7d", "2026-03-01T00:00:00Z", "-5m", "1e9h", "9223372036854775807d", "d", "1.5h"} {
		f.Add(s)
	}
	now := time.Date(2026, 3, 2, 12, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, s string) {
		got, err := ParseSince(s, now)
		if err != nil {
			return
		}
		if _, rfc := time.Parse(time.RFC3339, s); rfc != nil && got.After(now) {
			t.Errorf("ParseSince(%q) = %v, after now", s, got)
		}
	})
}

// FuzzWriteTSV: whatever the values, every line has five fields and one
// line is written per distinct patient (at least one per alert).
func FuzzWriteTSV(f *testing.F) {
	f.Add("Practitioner/p1", "Patient/a", "Patient/b", "exported\t2\r\npatients")
	f.Add("", "", "", "")
	f.Fuzz(func(t *testing.T, user, p1, p2, expl string) {
		var ps []string
		for _, p := range []string{p1, p2} {
			if p != "" {
				ps = append(ps, p)
			}
		}
		var b bytes.Buffer
		if err := WriteTSV(&b, []JSON{{User: user, Patients: ps, Category: monitor.CatBrowsing, Score: 0.5, Explanation: expl}}); err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(strings.TrimSuffix(b.String(), "\n"), "\n")
		if len(ps) > 0 && len(lines) != len(uniq(ps)) || len(ps) == 0 && len(lines) != 1 {
			t.Fatalf("%d lines for patients %q", len(lines), ps)
		}
		for _, l := range lines {
			if n := len(strings.Split(l, "\t")); n != 5 {
				t.Fatalf("a line of %d fields: %q", n, l)
			}
		}
	})
}

func uniq(ps []string) map[string]bool {
	m := map[string]bool{}
	for _, p := range ps {
		m[p] = true
	}
	return m
}
