package backup

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"time"
)

// Retention of backups: grandfather-father-son (issue 17, ADR 0051).
//
// A backup is kept when it is the newest backup of one of the Daily most
// recent UTC days that have a backup, of one of the Weekly most recent
// ISO weeks that have one, or of one of the Monthly most recent months
// that have one. Counting only periods that have a backup (as restic's
// --keep-daily does) means an outage of the schedule never lets the
// policy delete the last good backups: it keeps reaching back.
//
// Two backups are always kept whatever the policy: the newest, and the
// newest whose last restore drill passed (the one restore proven to
// work). Prune is idempotent: pruning what it kept deletes nothing more.

// Policy is how many daily, weekly and monthly backups to keep. The
// zero value keeps only the two backups that are always kept.
type Policy struct {
	Daily, Weekly, Monthly int
}

// MaxRetention bounds each count of a Policy (about ten years of months,
// more than any HIPAA schedule needs; a typo of 10000 is refused).
const MaxRetention = 4000

// Validate reports a count that is negative or above MaxRetention.
func (p Policy) Validate() error {
	for _, c := range []struct {
		name string
		n    int
	}{{"daily", p.Daily}, {"weekly", p.Weekly}, {"monthly", p.Monthly}} {
		if c.n < 0 || c.n > MaxRetention {
			return fmt.Errorf("retention.%s is %d: want 0 to %d", c.name, c.n, MaxRetention)
		}
	}
	return nil
}

// Backup is what retention knows of one backup.
type Backup struct {
	Name string
	Time time.Time // when it was taken
	// Drilled is whether the last restore drill of this backup passed.
	Drilled bool
}

// ErrDuplicateName means two backups of the input share a name.
var ErrDuplicateName = errors.New("backup: two backups share a name")

// Prune returns the names of the backups p does not keep, newest first.
// The input is not changed and may be in any order.
func Prune(backups []Backup, p Policy) ([]string, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	bs := slices.Clone(backups)
	// Newest first; equal times by name, so the answer is one answer.
	slices.SortFunc(bs, func(a, b Backup) int {
		if c := b.Time.Compare(a.Time); c != 0 {
			return c
		}
		return cmp.Compare(b.Name, a.Name)
	})
	seen := make(map[string]bool, len(bs))
	for _, b := range bs {
		if seen[b.Name] {
			return nil, fmt.Errorf("%w: %q", ErrDuplicateName, b.Name)
		}
		seen[b.Name] = true
	}
	keep := make([]bool, len(bs))
	if len(bs) > 0 {
		keep[0] = true // the newest
	}
	for i, b := range bs {
		if b.Drilled {
			keep[i] = true // the newest proven by a drill
			break
		}
	}
	periods := []struct {
		n   int
		key func(time.Time) int
	}{
		{p.Daily, func(t time.Time) int { y, m, d := t.Date(); return y*10000 + int(m)*100 + d }},
		{p.Weekly, func(t time.Time) int { y, w := t.ISOWeek(); return y*100 + w }},
		{p.Monthly, func(t time.Time) int { y, m, _ := t.Date(); return y*100 + int(m) }},
	}
	for _, per := range periods {
		last, taken := 0, 0
		for i, b := range bs {
			if taken >= per.n {
				break
			}
			k := per.key(b.Time.UTC())
			if taken > 0 && k == last {
				continue // an older backup of a period already kept
			}
			keep[i] = true
			last = k
			taken++
		}
	}
	var del []string
	for i, b := range bs {
		if !keep[i] {
			del = append(del, b.Name)
		}
	}
	return del, nil
}
