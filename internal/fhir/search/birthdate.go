package search

import (
	"fmt"
	"time"
)

// Range searches on an identifying date (Patient.birthdate).
//
// A birth date is never stored as a plaintext range: it is indexed as
// blind keys for its year, month and day (IndexTerms). A range query is
// answered from those same keys: the range of days it denotes is cut
// into the fewest whole days, months and years (a partial month of days,
// a partial year of months, whole years, then months and days again), and
// the query matches any of their keys. ge1980-06-15 becomes the days
// 1980-06-15..30, the months 1980-07..12 and the years 1981..now. No new
// key is indexed and nothing new is stored, so a range search leaks to
// the index holder nothing that equality search did not: which rows share
// a year, month or day key (now many at once, in one query).
//
// Limits, stated in docs/fhir.md: days before MinBirthYear and after next
// year are outside every open-ended range; a birth date recorded with
// less precision than the query's boundary (a year only, "1980") matches
// a range only if its whole period lies inside the range, where R4 would
// also match an overlap.

// MinBirthYear is the first year an open-ended birth date range covers.
const MinBirthYear = 1800

// identifyingDateTerms returns the index terms that answer one date
// search value on an identifying date parameter, and whether the
// predicate is negated (ne). alts is the number of comma-separated
// alternatives: ne cannot be combined with others.
func identifyingDateTerms(p *Param, name, v string, alts int, now time.Time) ([]Term, bool, error) {
	op, v, err := datePrefix(name, v)
	if err != nil {
		return nil, false, err
	}
	lo, hi, prec, ok := parseDate(v)
	if !ok {
		return nil, false, fmt.Errorf("parsing search parameter %s: not a valid date: %w", name, ErrInvalidValue)
	}
	if prec == precTime {
		return nil, false, fmt.Errorf("parsing search parameter %s: want a date (YYYY, YYYY-MM or YYYY-MM-DD), not a time: %w", name, ErrInvalidValue)
	}
	switch op {
	case OpEq, OpNe:
		if op == OpNe && alts > 1 {
			return nil, false, fmt.Errorf("parsing search parameter %s: ne cannot be combined with other values (repeat the parameter instead): %w", name, ErrUnsupported)
		}
		key := dayKey(lo)
		switch prec {
		case precYear:
			key = yearKey(lo)
		case precMonth:
			key = monthKey(lo)
		}
		return []Term{{Param: p.Code, Key: key}}, op == OpNe, nil
	}
	first := time.Date(MinBirthYear, 1, 1, 0, 0, 0, 0, time.UTC)
	last := time.Date(now.UTC().Year()+1, 12, 31, 0, 0, 0, 0, time.UTC)
	lo, hi = day(lo), day(hi) // hi: the last day of the value's period
	var from, to time.Time
	switch op {
	case OpGt, OpSa:
		from, to = hi.AddDate(0, 0, 1), last
	case OpGe:
		from, to = lo, last
	case OpLt, OpEb:
		from, to = first, lo.AddDate(0, 0, -1)
	case OpLe:
		from, to = first, hi
	case OpAp:
		wlo, whi := approximately(lo, hi.AddDate(0, 0, 1).Add(-time.Microsecond), now)
		from, to = day(wlo), day(whi)
	}
	if from.Before(first) {
		from = first
	}
	if to.After(last) {
		to = last
	}
	terms := dayBuckets(p.Code, from, to)
	if len(terms) == 0 {
		// An empty range matches nothing: a key no value has.
		terms = []Term{{Param: p.Code, Key: "none|"}}
	}
	return terms, false, nil
}

// day truncates t to its UTC day.
func day(t time.Time) time.Time {
	t = t.UTC()
	return time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC)
}

// dayBuckets covers the days from..to (inclusive) with the fewest day,
// month and year keys.
func dayBuckets(param string, from, to time.Time) []Term {
	var out []Term
	add := func(k string) { out = append(out, Term{Param: param, Key: k}) }
	for d := from; !d.After(to); {
		switch {
		case d.YearDay() == 1 && !d.AddDate(1, 0, -1).After(to):
			add(yearKey(d))
			d = d.AddDate(1, 0, 0)
		case d.Day() == 1 && !d.AddDate(0, 1, -1).After(to):
			add(monthKey(d))
			d = d.AddDate(0, 1, 0)
		default:
			add(dayKey(d))
			d = d.AddDate(0, 0, 1)
		}
	}
	return out
}
