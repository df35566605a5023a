package portal

import (
	"strconv"
	"testing"
	"time"
)

func TestGroupVisits(t *testing.T) {
	t0 := time.Date(2026, 3, 4, 10, 0, 0, 0, time.UTC)
	row := func(id int, agent, why string, at time.Duration, outcome string) accessRow {
		return accessRow{ID: strconv.Itoa(id), Agent: agent, Who: agent, Role: "physician", Why: why, When: t0.Add(-at), What: "looked at your details", Outcome: outcome}
	}
	for _, tc := range []struct {
		name   string
		rows   []accessRow
		counts []int
	}{
		{name: "empty"},
		{name: "one visit of one actor", rows: []accessRow{row(9, "a", "your care", 0, "done"), row(8, "a", "your care", time.Second, "done"), row(7, "a", "your care", 10*time.Minute, "done")}, counts: []int{3}},
		{name: "another actor between splits", rows: []accessRow{row(9, "a", "your care", 0, "done"), row(8, "b", "your care", time.Second, "done"), row(7, "a", "your care", 2*time.Second, "done")}, counts: []int{1, 1, 1}},
		{name: "another purpose splits", rows: []accessRow{row(9, "a", "your care", 0, "done"), row(8, "a", "emergency access", time.Second, "done")}, counts: []int{1, 1}},
		{name: "a long pause splits", rows: []accessRow{row(9, "a", "your care", 0, "done"), row(8, "a", "your care", visitGap+time.Second, "done")}, counts: []int{1, 1}},
		{name: "concurrent events a little out of time order", rows: []accessRow{row(9, "a", "your care", time.Millisecond, "done"), row(8, "a", "your care", 0, "done"), row(7, "a", "your care", 2*time.Millisecond, "done")}, counts: []int{3}},
		{name: "the gap is between neighbours", rows: []accessRow{row(9, "a", "your care", 0, "done"), row(8, "a", "your care", 20*time.Minute, "done"), row(7, "a", "your care", 40*time.Minute, "refused")}, counts: []int{3}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			gs := groupVisits(tc.rows, visitGap)
			var counts []int
			total := 0
			for _, g := range gs {
				counts = append(counts, g.Count())
				total += g.Count()
				if g.ID != g.Entries[0].ID {
					t.Errorf("visit %+v: its id is not its newest entry's", g)
				}
				for _, x := range g.Entries {
					if x.When.Before(g.Oldest) || x.When.After(g.Newest) {
						t.Errorf("visit %v..%v: entry %s at %v outside it", g.Oldest, g.Newest, x.ID, x.When)
					}
				}
			}
			if total != len(tc.rows) {
				t.Errorf("%d entries in visits, want every one of %d", total, len(tc.rows))
			}
			if len(counts) != len(tc.counts) {
				t.Fatalf("visits %v, want %v", counts, tc.counts)
			}
			for i := range counts {
				if counts[i] != tc.counts[i] {
					t.Fatalf("visits %v, want %v", counts, tc.counts)
				}
			}
		})
	}
	g := groupVisits([]accessRow{row(2, "a", "x", 0, "done"), row(1, "a", "x", time.Second, "refused")}, visitGap)[0]
	if g.Failures != 1 {
		t.Errorf("failures %d, want 1", g.Failures)
	}
	g.Whats = []string{"a", "b", "c", "d", "e"}
	if got := g.What(); got != "a; b; c; and 2 more" {
		t.Errorf("What() = %q", got)
	}
}
