package monitor

import "time"

// Options configure an [Engine].
type Options struct {
	// Source names the events' source in alerts ("phivault", or the
	// name given to an ingest).
	Source string
	// Location is the time zone of rostered hours (default UTC).
	Location *time.Location
}

// Engine consumes events in time order (roughly: a few minutes of
// disorder are tolerated) and yields alerts. It holds bounded state: per
// user and window aggregates, not every event. Not safe for concurrent
// use.
type Engine struct {
	dir *Directory
	opt Options
}

// NewEngine returns an engine explaining accesses against dir. The
// directory may grow between calls to Add (the own-log source adds the
// facts of patients as it meets them); it must not change during one.
func NewEngine(dir *Directory, o Options) *Engine {
	if o.Location == nil {
		o.Location = time.UTC
	}
	return &Engine{dir: dir, opt: o}
}

// Add consumes one event.
func (e *Engine) Add(ev Event) {
	// TODO(issue 16): explanation, detectors, scoring (helper A).
	_ = ev
}

// Alerts returns the alerts created or changed since the last call.
// final closes every open window (the end of an ingested log); a
// continuous source passes false and calls it periodically.
func (e *Engine) Alerts(final bool) []Alert {
	_ = final
	return nil
}
