package deid

import (
	"regexp"
	"strconv"
	"time"
)

// The lexical forms of FHIR R4 date, dateTime and instant (the patterns
// of the R4 JSON schema), and of time.
var (
	datePattern     = regexp.MustCompile(`^([0-9]{4})(-(0[1-9]|1[0-2])(-(0[1-9]|[12][0-9]|3[01]))?)?$`)
	dateTimePattern = regexp.MustCompile(`^[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])T([01][0-9]|2[0-3]):[0-5][0-9]:([0-5][0-9]|60)(\.[0-9]+)?(Z|[+-]((0[0-9]|1[0-3]):[0-5][0-9]|14:00))$`)
	timePattern     = regexp.MustCompile(`^([01][0-9]|2[0-3]):[0-5][0-9]:([0-5][0-9]|60)(\.[0-9]+)?$`)
)

// date applies the date rule to a date or dateTime value: its year
// only (Safe Harbor, §164.514(b)(2)(i)(C)), or in date-shift mode the
// same precision moved by the walk's shift (a time in UTC, since an
// offset hints at a place).
func (w *walk) date(v any, prim string) (any, bool) {
	s, ok := v.(string)
	if !ok {
		w.count(reasonMalformed)
		return nil, false
	}
	m := datePattern.FindStringSubmatch(s)
	isDate := m != nil
	if !isDate && (prim == "date" || !dateTimePattern.MatchString(s)) {
		w.count(reasonMalformed)
		return nil, false
	}
	year := s[:4]
	if w.t.opts.DateShiftDays == 0 {
		if s != year {
			w.count(reasonDateYear)
		}
		return year, true
	}
	if isDate && m[2] == "" {
		return year, true // a year alone: nothing finer to hide
	}
	w.count(reasonDateShift)
	if isDate {
		y, _ := strconv.Atoi(year)
		mo, _ := strconv.Atoi(m[3])
		if m[4] == "" {
			// Year and month: shift the middle of the month.
			return time.Date(y, time.Month(mo), 15, 0, 0, 0, 0, time.UTC).AddDate(0, 0, w.shift).Format("2006-01"), true
		}
		d, _ := strconv.Atoi(m[5])
		return time.Date(y, time.Month(mo), d, 0, 0, 0, 0, time.UTC).AddDate(0, 0, w.shift).Format(time.DateOnly), true
	}
	return w.shiftTime(s)
}

// instant applies the date rule to an instant. An instant has no
// year-only form (R4 requires it to the second), so in year mode it is
// dropped; in date-shift mode it is shifted.
func (w *walk) instant(v any) (any, bool) {
	s, ok := v.(string)
	if !ok || !dateTimePattern.MatchString(s) {
		w.count(reasonMalformed)
		return nil, false
	}
	if w.t.opts.DateShiftDays == 0 {
		w.count(reasonInstant)
		return nil, false
	}
	w.count(reasonDateShift)
	return w.shiftTime(s)
}

func (w *walk) shiftTime(s string) (any, bool) {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil { // a leap second, which Go does not parse
		w.count(reasonMalformed)
		return nil, false
	}
	return t.UTC().AddDate(0, 0, w.shift).Format("2006-01-02T15:04:05Z"), true
}

// birth is a birth date as far as it is known.
type birth struct {
	year, month, day int // month and day 0 when unknown
}

func parseBirth(s string) (birth, bool) {
	m := datePattern.FindStringSubmatch(s)
	if m == nil {
		if !dateTimePattern.MatchString(s) {
			return birth{}, false
		}
		m = datePattern.FindStringSubmatch(s[:10])
	}
	var b birth
	b.year, _ = strconv.Atoi(m[1])
	b.month, _ = strconv.Atoi(m[3])
	b.day, _ = strconv.Atoi(m[5])
	return b, true
}

// maxAge is the oldest the person born at b can be at now, in whole
// years: exact for a full date; for a year or month alone, as if born
// on its first day, so the rule errs towards "90 or older".
func (b birth) maxAge(now time.Time) int {
	age := now.Year() - b.year
	mo, d := b.month, b.day
	if mo == 0 {
		mo, d = 1, 1
	} else if d == 0 {
		d = 1
	}
	if int(now.Month()) < mo || (int(now.Month()) == mo && now.Day() < d) {
		age--
	}
	return age
}
