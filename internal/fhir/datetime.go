package fhir

import "time"

// ParseDateTime parses a FHIR date, dateTime or instant of any precision
// ("2026", "2026-03", "2026-03-02", "2026-03-02T10:00:00Z"...). end
// selects the last instant of a partial date (the end of a period);
// false when s is empty or not a FHIR date.
func ParseDateTime(s string, end bool) (time.Time, bool) {
	if s == "" {
		return time.Time{}, false
	}
	for _, l := range []struct {
		layout string
		step   func(time.Time) time.Time
	}{
		{time.RFC3339Nano, nil},
		{"2006-01-02T15:04:05", nil},
		{"2006-01-02", func(t time.Time) time.Time { return t.AddDate(0, 0, 1) }},
		{"2006-01", func(t time.Time) time.Time { return t.AddDate(0, 1, 0) }},
		{"2006", func(t time.Time) time.Time { return t.AddDate(1, 0, 0) }},
	} {
		t, err := time.Parse(l.layout, s)
		if err != nil {
			continue
		}
		if end && l.step != nil {
			t = l.step(t).Add(-time.Nanosecond)
		}
		return t, true
	}
	return time.Time{}, false
}
