package search

import (
	"regexp"
	"strconv"
	"time"
)

// FHIR date, dateTime and instant, plus the search-only forms without
// seconds (2020-01-02T10:00) or without zone:
// year[-month[-day[Thh:mm[:ss[.fraction]][zone]]]].
var dateRE = regexp.MustCompile(`^(\d{4})(?:-(\d{2})(?:-(\d{2})(?:T(\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?(Z|[+-]\d{2}:\d{2})?)?)?)?$`)

// Bounds of open-ended periods, in the unix-microsecond range used by
// the index: a Period without start begins at minTime, without end never
// ends (maxTime).
var (
	minTime = time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC)
	maxTime = time.Date(9999, 12, 31, 23, 59, 59, 999999000, time.UTC)
)

// precision of a parsed date value.
type precision int

const (
	precYear precision = iota + 1
	precMonth
	precDay
	precTime
)

// parseDate parses s and returns the range [lo, hi] it denotes at its
// precision: "2020" is 2020-01-01T00:00:00Z .. 2020-12-31T23:59:59.999999Z.
// A time without zone is read as UTC; an offset is honoured. Both bounds
// are UTC with microsecond precision. ok is false for malformed or
// impossible values (2021-02-30).
func parseDate(s string) (lo, hi time.Time, p precision, ok bool) {
	m := dateRE.FindStringSubmatch(s)
	if m == nil {
		return lo, hi, 0, false
	}
	num := func(i int, def int) int {
		if m[i] == "" {
			return def
		}
		n, _ := strconv.Atoi(m[i])
		return n
	}
	y, mo, d := num(1, 0), num(2, 1), num(3, 1)
	hh, mm, ss := num(4, 0), num(5, 0), num(6, 0)
	if mo < 1 || mo > 12 || d < 1 || d > 31 || hh > 23 || mm > 59 || ss > 60 {
		return lo, hi, 0, false
	}
	if ss == 60 {
		ss = 59 // leap second: FHIR allows :60; Go does not
	}
	loc := time.UTC
	if z := m[8]; z != "" && z != "Z" {
		oh, _ := strconv.Atoi(z[1:3])
		om, _ := strconv.Atoi(z[4:6])
		if oh > 14 || om > 59 {
			return lo, hi, 0, false
		}
		off := oh*3600 + om*60
		if z[0] == '-' {
			off = -off
		}
		loc = time.FixedZone("", off)
	}
	var ns int
	frac := m[7]
	if frac != "" {
		padded := (frac + "000000000")[:9]
		ns, _ = strconv.Atoi(padded)
	}
	lo = time.Date(y, time.Month(mo), d, hh, mm, ss, ns, loc)
	if lo.Day() != d || int(lo.Month()) != mo { // 2021-02-30 normalised away
		return lo, hi, 0, false
	}
	switch {
	case m[2] == "":
		p, hi = precYear, lo.AddDate(1, 0, 0)
	case m[3] == "":
		p, hi = precMonth, lo.AddDate(0, 1, 0)
	case m[4] == "":
		p, hi = precDay, lo.AddDate(0, 0, 1)
	case m[6] == "":
		p, hi = precTime, lo.Add(time.Minute)
	case frac == "":
		p, hi = precTime, lo.Add(time.Second)
	default:
		p = precTime
		unit := time.Microsecond
		if len(frac) < 6 {
			unit = time.Duration(pow10(9 - len(frac)))
		}
		hi = lo.Add(unit)
	}
	lo = lo.UTC().Truncate(time.Microsecond)
	hi = hi.UTC().Truncate(time.Microsecond).Add(-time.Microsecond)
	if hi.Before(lo) {
		hi = lo
	}
	return lo, hi, p, true
}

func pow10(n int) int64 {
	v := int64(1)
	for range n {
		v *= 10
	}
	return v
}

// DateRange parses a FHIR date, dateTime or instant (no search prefix)
// into the inclusive range it denotes at its precision, as a date search
// parameter reads it: "2020" is the whole year. ok is false for malformed
// or impossible values. Operation parameters use it (_at, start, end).
func DateRange(s string) (lo, hi time.Time, ok bool) {
	lo, hi, _, ok = parseDate(s)
	return lo, hi, ok
}
