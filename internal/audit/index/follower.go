package index

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/phivault/phivault/internal/audit/export"
)

// followPoll is how often Run brings the index up to date between
// searches (a search also catches up first).
const followPoll = time.Second

// Follower follows the log into the index, one drain at a time in this
// process; another process's drain shows up as a moved cursor, which is
// not an error.
type Follower struct {
	mu        sync.Mutex
	x         *export.Exporter
	integrate func(context.Context) (int64, error)
	alarm     func() error
	logger    *slog.Logger
}

// NewFollower returns the follower that drains x (an exporter into the
// index's Sink). integrate, if set, integrates the pending audit records
// first, so a search sees the events recorded up to now; alarm, if set,
// reports the audit log's alarm, which explains (and silences) a failed
// round.
func NewFollower(x *export.Exporter, integrate func(context.Context) (int64, error), alarm func() error, logger *slog.Logger) *Follower {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Follower{x: x, integrate: integrate, alarm: alarm, logger: logger}
}

// CatchUp integrates and indexes everything recorded up to now.
func (f *Follower) CatchUp(ctx context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	// Integrate first, so a search sees the events recorded up to now
	// (the integrator otherwise runs within a second).
	if f.integrate != nil {
		if _, err := f.integrate(ctx); err != nil {
			return err
		}
	}
	for {
		_, err := f.x.Drain(ctx, nil)
		if !errors.Is(err, export.ErrMoved) {
			return err
		}
	}
}

// Run keeps the index within about a second of the log until ctx ends
// ("phivault serve" runs it). A nil Follower (no index) returns at once.
func (f *Follower) Run(ctx context.Context) {
	if f == nil {
		return
	}
	t := time.NewTicker(followPoll)
	defer t.Stop()
	for {
		f.Round(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Round catches the index up once. A failure is logged, unless the
// audit log's alarm explains it (the integrator refuses to sign, and
// says so once a minute): the index waits for the log, and a line a
// second would bury the alarm.
func (f *Follower) Round(ctx context.Context) {
	err := f.CatchUp(ctx)
	if err == nil || ctx.Err() != nil || (f.alarm != nil && f.alarm() != nil) {
		return
	}
	f.logger.WarnContext(ctx, "audit index: catching up failed; retrying", "err", err)
}
