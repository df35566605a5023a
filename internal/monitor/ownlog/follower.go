package ownlog

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/phivault/phivault/internal/audit"
	"github.com/phivault/phivault/internal/audit/export"
	"github.com/phivault/phivault/internal/monitor"
)

// CursorName is the follower's cursor among the log's followers
// (audit_export_cursors, beside the SIEM sinks and the subscriptions).
const CursorName = "monitor/phivault"

// SourceName names phivault's own log in alerts.
const SourceName = "phivault"

// Leader is the claim on the duty of following the log, which one
// process of a fleet runs (sqldb.Leader implements it).
type Leader interface {
	// Lead reports whether this process leads now, taking the duty if
	// it is free.
	Lead(ctx context.Context) (bool, error)
	// Release gives the duty up.
	Release()
}

// SaveFunc stores alerts, upserting by Key (the alerts service's Save),
// and returns the stored ids in the order given, once committed.
type SaveFunc func(ctx context.Context, as []monitor.Alert) (ids []string, err error)

// NotifyFunc is told the alerts just stored and their ids, once the
// cursor has moved past their events; it picks those to notify (high
// severity). It must not block for long and cannot fail the follower: a
// notification that cannot be sent is the notifier's to log.
type NotifyFunc func(ctx context.Context, as []monitor.Alert, ids []string)

// Follower defaults.
const (
	// DefaultInterval is how often the follower reads the log when it
	// has caught up: alerts appear within this plus the integration
	// delay (about a second) of the access, well within the minute the
	// issue asks for.
	DefaultInterval = 15 * time.Second
	// DefaultBatch is how many leaves one step reads.
	DefaultBatch = 5000
	// DefaultWarmUp is how many leaves before the cursor a new leader
	// replays into its engine, without storing alerts, so that per user
	// windows and baselines do not start empty after a take-over.
	DefaultWarmUp = 20000
)

// FollowerOptions configure a [Follower]. Source, Cursors, Loader,
// Leader and Save are required.
type FollowerOptions struct {
	Source   export.Source
	Cursors  export.Cursors
	Loader   *Loader
	Leader   Leader
	Save     SaveFunc
	Notify   NotifyFunc // nil: none
	Engine   monitor.Options
	Interval time.Duration // DefaultInterval if 0
	Batch    int           // DefaultBatch if 0
	WarmUp   int64         // DefaultWarmUp if 0; negative: none
	Logger   *slog.Logger
}

// Follower follows phivault's audit log with one long-lived engine:
// each step reads the leaves after its cursor, converts them, feeds the
// engine, stores the alerts it yields and then advances the cursor. It
// is driven by one goroutine ([Follower.Run] or [Follower.Step]).
type Follower struct {
	o       FollowerOptions
	engine  *monitor.Engine
	pending []monitor.Alert // yielded, not yet stored
	// pendFrom and pendTo are the leaves whose alerts pending holds
	// (the engine has consumed them).
	pendFrom, pendTo int64
	leading          bool // as of the last round, for the log
}

// NewFollower validates o.
func NewFollower(o FollowerOptions) (*Follower, error) {
	if o.Source == nil || o.Cursors == nil || o.Loader == nil || o.Leader == nil || o.Save == nil {
		return nil, errors.New("monitor follower: source, cursors, loader, leader and save are required")
	}
	if o.Interval <= 0 {
		o.Interval = DefaultInterval
	}
	if o.Batch <= 0 {
		o.Batch = DefaultBatch
	}
	if o.WarmUp == 0 {
		o.WarmUp = DefaultWarmUp
	}
	if o.Engine.Source == "" {
		o.Engine.Source = SourceName
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return &Follower{o: o}, nil
}

// Run follows the log until ctx ends: every Interval it asks to lead
// and, while it leads, steps until it has caught up. A process that
// stops leading drops its engine (the new leader warms its own up). A
// failure is logged (never an event field) and retried next interval.
func (f *Follower) Run(ctx context.Context) {
	defer f.o.Leader.Release()
	t := time.NewTicker(f.o.Interval)
	defer t.Stop()
	for {
		f.round(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// round is one interval's work.
func (f *Follower) round(ctx context.Context) {
	lead, err := f.o.Leader.Lead(ctx)
	if err != nil && ctx.Err() == nil {
		f.o.Logger.WarnContext(ctx, "privacy monitor: cannot tell whether this process leads; retrying", slog.Any("err", err))
	}
	if lead != f.leading {
		f.leading = lead
		if lead {
			f.o.Logger.InfoContext(ctx, "privacy monitor: this process now follows the own audit log (it leads the duty)")
		} else {
			f.o.Logger.InfoContext(ctx, "privacy monitor: this process no longer leads the own-log follower")
		}
	}
	if !lead {
		f.reset()
		return
	}
	for ctx.Err() == nil {
		n, err := f.Step(ctx)
		switch {
		case errors.Is(err, export.ErrMoved):
			// Another process advanced the cursor: it led meanwhile.
			f.o.Logger.WarnContext(ctx, "privacy monitor: another process moved the cursor; restarting from it")
			f.reset()
			return
		case err != nil:
			if ctx.Err() == nil {
				f.o.Logger.WarnContext(ctx, "privacy monitor: following the audit log failed; retrying", slog.Any("err", err))
			}
			return
		case n == 0:
			return
		}
	}
}

// reset drops the engine and what it yielded but did not store.
func (f *Follower) reset() {
	f.engine, f.pending = nil, nil
}

// Step does at most one batch: it stores alerts a failed step left,
// reads the leaves after the cursor, converts and scores them, stores
// the alerts, and advances the cursor. It returns how many leaves it
// consumed (0 when caught up). On an error the cursor stays where it
// was; the events already fed to the engine are not fed again (their
// alerts are kept and stored by the next Step).
func (f *Follower) Step(ctx context.Context) (int, error) {
	from, err := f.o.Cursors.Cursor(ctx, CursorName)
	if err != nil {
		return 0, fmt.Errorf("monitor follower: reading the cursor: %w", err)
	}
	if f.engine == nil {
		if err := f.warmUp(ctx, from); err != nil {
			return 0, err
		}
	}
	if f.pending != nil {
		// A failed step: the engine has consumed [pendFrom, pendTo).
		if from != f.pendFrom {
			f.reset() // another process moved the cursor meanwhile
			return 0, fmt.Errorf("monitor follower: the cursor is at %d, not %d: %w", from, f.pendFrom, export.ErrMoved)
		}
		if err := f.store(ctx, from, f.pendTo); err != nil {
			return 0, err
		}
		return int(f.pendTo - from), nil
	}
	size, err := f.o.Source.Size(ctx)
	if err != nil {
		return 0, fmt.Errorf("monitor follower: reading the log size: %w", err)
	}
	to := min(size, from+int64(f.o.Batch))
	if to <= from {
		return 0, nil
	}
	evs, idx, err := f.read(ctx, from, to)
	if err != nil {
		return 0, err
	}
	if err := f.feed(ctx, evs, idx); err != nil {
		f.reset() // the engine may hold part of the batch: start again from the cursor
		return 0, err
	}
	f.pending, f.pendFrom, f.pendTo = f.engine.Alerts(false), from, to
	if f.pending == nil {
		f.pending = []monitor.Alert{}
	}
	if err := f.store(ctx, from, to); err != nil {
		return 0, err
	}
	return int(to - from), nil
}

// store saves the pending alerts, advances the cursor from from to to,
// then hands the saved alerts to Notify.
func (f *Follower) store(ctx context.Context, from, to int64) error {
	var ids []string
	if len(f.pending) > 0 {
		var err error
		if ids, err = f.o.Save(ctx, f.pending); err != nil {
			return fmt.Errorf("monitor follower: storing %d alerts: %w", len(f.pending), err)
		}
	}
	if err := f.o.Cursors.Advance(ctx, CursorName, from, to); err != nil {
		if errors.Is(err, export.ErrMoved) {
			f.reset() // another process stored these leaves: its engine is the one that saw them
		}
		return fmt.Errorf("monitor follower: advancing the cursor to %d: %w", to, err)
	}
	saved := f.pending
	f.pending = nil
	if f.o.Notify != nil && len(saved) > 0 && len(ids) == len(saved) {
		f.o.Notify(ctx, saved, ids)
	}
	return nil
}

// warmUp makes a fresh engine and replays the WarmUp leaves before
// from into it, dropping their alerts (the process that led before
// stored them).
func (f *Follower) warmUp(ctx context.Context, from int64) error {
	f.engine = monitor.NewEngine(f.o.Loader.Directory(), f.o.Engine)
	lo := max(0, from-max(0, f.o.WarmUp))
	for lo < from {
		to := min(from, lo+int64(f.o.Batch))
		evs, idx, err := f.read(ctx, lo, to)
		if err == nil {
			err = f.feed(ctx, evs, idx)
		}
		if err != nil {
			f.engine = nil
			return err
		}
		f.engine.Alerts(false)
		lo = to
	}
	return nil
}

// read decodes the leaves in [from, to).
func (f *Follower) read(ctx context.Context, from, to int64) ([]audit.Event, []int64, error) {
	evs := make([]audit.Event, 0, to-from)
	idx := make([]int64, 0, to-from)
	err := f.o.Source.ScanLeaves(ctx, from, to, func(i int64, leaf []byte, v1 bool) error {
		_, b, err := audit.LeafEvent(leaf, v1)
		if err != nil {
			return fmt.Errorf("leaf %d: %w", i, err)
		}
		var ev audit.Event
		if err := json.Unmarshal(b, &ev); err != nil {
			return fmt.Errorf("decoding leaf %d: %w", i, err)
		}
		evs, idx = append(evs, ev), append(idx, i)
		return nil
	})
	if err != nil {
		return nil, nil, fmt.Errorf("monitor follower: reading the log after %d: %w", from, err)
	}
	return evs, idx, nil
}

// feed loads what the events need and adds them to the engine.
func (f *Follower) feed(ctx context.Context, evs []audit.Event, idx []int64) error {
	if err := f.o.Loader.Prepare(ctx, evs); err != nil {
		return err
	}
	for i, ev := range evs {
		for _, m := range Convert(idx[i], ev, f.o.Loader.Account) {
			f.engine.Add(m)
		}
	}
	return nil
}
