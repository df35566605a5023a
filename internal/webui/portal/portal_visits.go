package portal

import (
	"slices"
	"strconv"
	"strings"
	"time"
)

// Visits: one person working on a record for one purpose opens the
// patient, then each section, in a few seconds: a dozen log entries for
// what the patient sees as one visit. The access page gathers such runs
// into one line with a count; the entries stay listed under it, each
// with its own log position, Verify and Download proof, so grouping
// hides nothing and every entry can still be checked.

// visitGap is the longest pause between two entries of one visit. A
// clinician's chart view reads its sections within seconds; half an
// hour keeps a consultation together without merging a morning's and an
// afternoon's visits.
const visitGap = 30 * time.Minute

// accessGroup is one visit: consecutive entries (newest first) of one
// actor, in one role, for one purpose, none more than visitGap after the
// next.
type accessGroup struct {
	ID       string    // the newest entry's log position, for the row's id
	Newest   time.Time // the latest entry's time
	Oldest   time.Time // the earliest entry's time
	Who      string
	Role     string
	Org      string
	Why      string
	You      bool
	Whats    []string // what was done, each once, in order of appearance
	Failures int      // entries that were refused or failed
	Entries  []accessRow
}

// Count is the number of entries in the visit.
func (g accessGroup) Count() int { return len(g.Entries) }

// Span says whether the visit lasted past its first minute (the page
// then shows its start too).
func (g accessGroup) Span() bool { return g.Newest.Sub(g.Oldest) >= time.Minute }

// sameVisit says whether row continues the visit g. Rows come in log
// order, newest first; events recorded concurrently (a chart's section
// reads) may be a few microseconds out of time order, so the gap is
// measured either way.
func sameVisit(g *accessGroup, row accessRow, gap time.Duration) bool {
	last := g.Entries[len(g.Entries)-1]
	d := last.When.Sub(row.When)
	return last.Agent == row.Agent && last.Who == row.Who && last.Role == row.Role && last.Why == row.Why &&
		d <= gap && d >= -gap
}

// groupVisits gathers rows (newest first, as the index returns them)
// into visits. A visit never spans two pages: the next page starts a
// new one.
func groupVisits(rows []accessRow, gap time.Duration) []accessGroup {
	var out []accessGroup
	for _, row := range rows {
		if n := len(out); n > 0 && sameVisit(&out[n-1], row, gap) {
			g := &out[n-1]
			g.Entries = append(g.Entries, row)
			if row.When.Before(g.Oldest) {
				g.Oldest = row.When
			}
			if row.When.After(g.Newest) {
				g.Newest = row.When
			}
			if !slices.Contains(g.Whats, row.What) {
				g.Whats = append(g.Whats, row.What)
			}
			if row.Outcome != "done" {
				g.Failures++
			}
			continue
		}
		g := accessGroup{ID: row.ID, Newest: row.When, Oldest: row.When, Who: row.Who, Role: row.Role, Org: row.Org, Why: row.Why,
			You: row.You, Whats: []string{row.What}, Entries: []accessRow{row}}
		if row.Outcome != "done" {
			g.Failures = 1
		}
		out = append(out, g)
	}
	return out
}

// maxWhats is how many different things a visit's line names before it
// says "and N more" (the entries under it name each).
const maxWhats = 3

// What says what was done in the visit, in words.
func (g accessGroup) What() string {
	if len(g.Whats) <= maxWhats {
		return strings.Join(g.Whats, "; ")
	}
	return strings.Join(g.Whats[:maxWhats], "; ") + "; and " + strconv.Itoa(len(g.Whats)-maxWhats) + " more"
}
