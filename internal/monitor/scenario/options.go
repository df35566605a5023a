package scenario

import (
	"fmt"
	"time"
)

// Options size and seed a scenario. The same Options always give the
// same files, byte for byte.
type Options struct {
	Seed          int64
	Patients      int
	Practitioners int
	Days          int
	// Start is midnight UTC of the first day (default [DefaultStart]).
	Start time.Time
	// Incidents is the number of injected incidents per misuse category
	// (default 3).
	Incidents int
	// Unexplained is how many legitimate chart openings in 1,000 have
	// nothing in the data to explain them (a corridor second opinion, a
	// teaching case, help on another unit nobody wrote down): they are
	// in no truth row, so an engine that alerts on every unexplained
	// access pays for it in precision. Default 10; -1 for none.
	Unexplained int
	// MaxEvents stops the event log after this many events (0: no
	// limit). With a large Days it sizes a speed run; the truth then
	// lists incidents that may lie past the end.
	MaxEvents int64
}

// DefaultStart is a Monday, so that a week of rosters starts the log.
var DefaultStart = time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC)

// Limits on a scenario's size: the context is held in memory (it is
// what a hospital hands over as one Bundle); the event log is not.
const (
	MaxPatients      = 2_000_000
	MaxPractitioners = 100_000
	MaxDays          = 3660
)

// Size returns the Options of a named size: "small" (a ward-sized test,
// a few tens of thousands of events), "medium" (a community hospital for
// a month) or "large" (a 500-bed hospital for a month).
func Size(name string, seed int64) (Options, error) {
	o := Options{Seed: seed}
	switch name {
	case "small":
		o.Patients, o.Practitioners, o.Days, o.Incidents = 2000, 80, 21, 3
	case "medium":
		o.Patients, o.Practitioners, o.Days, o.Incidents = 20000, 400, 28, 6
	case "large":
		o.Patients, o.Practitioners, o.Days, o.Incidents = 100000, 2500, 28, 10
	default:
		return o, fmt.Errorf("unknown scenario size %q: use small, medium or large", name)
	}
	return o, nil
}

func (o Options) withDefaults() (Options, error) {
	if o.Start.IsZero() {
		o.Start = DefaultStart
	}
	if o.Incidents == 0 {
		o.Incidents = 3
	}
	switch o.Unexplained {
	case 0:
		o.Unexplained = 10
	case -1:
		o.Unexplained = 0
	}
	switch {
	case o.Practitioners < minPractitioners || o.Practitioners > MaxPractitioners:
		return o, fmt.Errorf("scenario: Practitioners must be between %d and %d", minPractitioners, MaxPractitioners)
	case o.Patients < 10*o.Practitioners || o.Patients > MaxPatients:
		return o, fmt.Errorf("scenario: Patients must be between 10 x Practitioners and %d", MaxPatients)
	case o.Days < 7 || o.Days > MaxDays:
		return o, fmt.Errorf("scenario: Days must be between 7 and %d", MaxDays)
	case o.Incidents < 1 || o.Incidents > 100:
		return o, fmt.Errorf("scenario: Incidents must be between 1 and 100")
	case o.Unexplained < 0 || o.Unexplained > 1000:
		return o, fmt.Errorf("scenario: Unexplained must be between -1 and 1000")
	case o.MaxEvents < 0:
		return o, fmt.Errorf("scenario: MaxEvents must not be negative")
	}
	return o, nil
}
