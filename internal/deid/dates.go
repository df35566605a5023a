package deid

import (
	"regexp"
	"strconv"
	"time"
)

// The lexical forms of FHIR R4 date, dateTime and instant (the patterns
// of the R4 JSON schema).
var (
	datePattern     = regexp.MustCompile(`^([0-9]{4})(-(0[1-9]|1[0-2])(-(0[1-9]|[12][0-9]|3[01]))?)?$`)
	dateTimePattern = regexp.MustCompile(`^[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])T([01][0-9]|2[0-3]):[0-5][0-9]:([0-5][0-9]|60)(\.[0-9]+)?(Z|[+-]((0[0-9]|1[0-3]):[0-5][0-9]|14:00))$`)
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
	if w.t.over89Year(year) {
		w.count(reasonDateOver89)
		return nil, false
	}
	if w.t.opts.DateShiftDays == 0 {
		if s != year {
			w.count(reasonDateYear)
		}
		return year, true
	}
	if isDate && m[2] == "" {
		return year, true // a year alone: nothing finer to hide
	}
	var out string
	if isDate {
		y, _ := strconv.Atoi(year)
		mo, _ := strconv.Atoi(m[3])
		if m[4] == "" {
			// Year and month: shift the middle of the month.
			out = time.Date(y, time.Month(mo), 15, 0, 0, 0, 0, time.UTC).AddDate(0, 0, w.shift).Format("2006-01")
		} else {
			d, _ := strconv.Atoi(m[5])
			out = time.Date(y, time.Month(mo), d, 0, 0, 0, 0, time.UTC).AddDate(0, 0, w.shift).Format(time.DateOnly)
		}
	} else {
		t, ok := w.shiftTime(s)
		if !ok {
			return nil, false
		}
		out = t
	}
	if w.t.over89Year(out[:4]) {
		// Shifted into such a year (a date early in the year after it).
		w.count(reasonDateOver89)
		return nil, false
	}
	w.count(reasonDateShift)
	return out, true
}

// over89Year reports whether a date of year (4 digits) is indicative of
// an age over 89 (§164.514(b)(2)(i)(C)): its year is at most the
// export's year minus 90, so a person born then could be 90 or older.
// Such dates are removed wherever they are, whoever they concern: a
// birth year survives in many places besides birthDate (an answer, an
// observation's value, a relative's history).
func (t *Transformer) over89Year(year string) bool {
	y, err := strconv.Atoi(year)
	return err != nil || y <= t.opts.Now.Year()-(oldestKeptAge+1)
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
	out, ok := w.shiftTime(s)
	if !ok {
		return nil, false
	}
	if w.t.over89Year(s[:4]) || w.t.over89Year(out[:4]) {
		w.count(reasonDateOver89)
		return nil, false
	}
	w.count(reasonDateShift)
	return out, true
}

func (w *walk) shiftTime(s string) (string, bool) {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil { // a leap second, which Go does not parse
		w.count(reasonMalformed)
		return "", false
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
