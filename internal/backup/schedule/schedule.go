package schedule

import (
	"context"
	"time"

	"github.com/phivault/phivault/internal/backup"
)

// Schedule says when a step is due: every Every, or once a day at
// Hour:Minute UTC (Daily).
type Schedule struct {
	Every        time.Duration
	Daily        bool
	Hour, Minute int
}

// Interval is the nominal time between two steps (24h for Daily).
func (s Schedule) Interval() time.Duration {
	if s.Daily {
		return 24 * time.Hour
	}
	return s.Every
}

// Next is when the step after one that started at last is due. For a
// daily schedule it is the first Hour:Minute UTC after last, so a
// backup taken late (the server was down) does not shift the schedule.
func (s Schedule) Next(last time.Time) time.Time {
	if !s.Daily {
		return last.Add(s.Every)
	}
	l := last.UTC()
	at := time.Date(l.Year(), l.Month(), l.Day(), s.Hour, s.Minute, 0, 0, time.UTC)
	if !at.After(l) {
		at = at.AddDate(0, 0, 1)
	}
	return at
}

// Engine is what the schedule needs of the backup engine (package
// backup's Create and Drill, connected by app at merge time). Each call
// works on st only; none of them logs a secret.
type Engine interface {
	// Create takes one encrypted backup into st and returns its name
	// (the object whose size is the backup's size).
	Create(ctx context.Context, st backup.Store) (name string, err error)
	// Drill restores the newest backup of st into a scratch place with
	// the drill identity, checks it, and discards it.
	Drill(ctx context.Context, st backup.Store) (DrillResult, error)
	// Remove deletes the backup name and its sidecars from st; a
	// missing backup is not an error.
	Remove(ctx context.Context, st backup.Store, name string) error
}

// DrillResult is what a drill proved.
type DrillResult struct {
	Backup string    // the name of the backup restored
	Taken  time.Time // when that backup was taken (its recovery point)
	// Restore is how long the restore took; zero: the schedule measures
	// the whole Drill call instead.
	Restore time.Duration
}
