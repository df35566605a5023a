// Package throttle caps repeated warnings and errors in the process log.
//
// A failure that every request meets (the database unreachable, a
// locked table) would otherwise write one or more error lines per
// request and per retry of every background loop: a PostgreSQL outage
// once wrote 77,210 lines (52 MB) in 12 seconds, burying the first
// useful line and filling disks. A [Handler] wraps the real slog
// handler and, per message, passes the first Repeats lines of each
// Interval; the rest are counted, and when the interval is over (at the
// next line logged, whatever its level, or at [Handler.Flush]) one
// warning per message says how many were suppressed:
//
//	{"level":"WARN","msg":"log lines suppressed","message":"request failed","level_suppressed":"ERROR","count":4711,"interval":"10s"}
//
// Lines below the throttled level (the access log's Info lines, one
// per request) pass untouched.
//
// A message is known by its text with digit runs folded and cut at 64
// bytes, so net/http's "TLS handshake error from 192.0.2.7:51234"
// lines count as one message; attributes are ignored (they carry request
// ids). At most MaxMessages messages are tracked per interval; lines of
// further messages share one counter.
//
// A Handler and the handlers derived from it (WithAttrs, WithGroup)
// share one state and are safe for concurrent use.
package throttle

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// Defaults for [Options], with their reasons.
const (
	// DefaultRepeats lines of one message per interval show the failure
	// and its first request ids.
	DefaultRepeats = 10
	// DefaultInterval: a summary at most every 10 s keeps an outage to a
	// few lines a second.
	DefaultInterval = 10 * time.Second
	// DefaultMaxMessages bounds the tracked messages, the shared counter
	// included (the code has a few hundred distinct ones).
	DefaultMaxMessages = 256
	// keyLen is how much of a message names it.
	keyLen = 64
	// otherKey collects messages beyond MaxMessages.
	otherKey = "(other messages)"
)

// Options configures a [Handler]. The zero value means the defaults.
type Options struct {
	Repeats     int
	Interval    time.Duration
	MaxMessages int
	// Level is the lowest level throttled; zero means slog.LevelWarn.
	Level slog.Leveler
	Now   func() time.Time
}

// Handler is a throttling slog.Handler.
type Handler struct {
	next slog.Handler
	st   *state
}

type state struct {
	o     Options
	base  slog.Handler // summaries go here, without derived attributes
	mu    sync.Mutex
	start time.Time
	msgs  map[string]*counter
}

type counter struct {
	level      slog.Level
	passed     int
	suppressed int64
}

// New returns a Handler passing at most o.Repeats lines of each message
// per o.Interval to next.
func New(next slog.Handler, o Options) *Handler {
	if o.Repeats <= 0 {
		o.Repeats = DefaultRepeats
	}
	if o.Interval <= 0 {
		o.Interval = DefaultInterval
	}
	if o.MaxMessages <= 0 {
		o.MaxMessages = DefaultMaxMessages
	}
	if o.Level == nil {
		o.Level = slog.LevelWarn
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Handler{next: next, st: &state{o: o, base: next, start: o.Now(), msgs: make(map[string]*counter)}}
}

// Enabled implements slog.Handler.
func (h *Handler) Enabled(ctx context.Context, l slog.Level) bool { return h.next.Enabled(ctx, l) }

// Handle implements slog.Handler.
func (h *Handler) Handle(ctx context.Context, r slog.Record) error {
	pass, summaries := h.st.admit(r)
	for _, s := range summaries {
		_ = h.st.base.Handle(ctx, s)
	}
	if !pass {
		return nil
	}
	return h.next.Handle(ctx, r)
}

// WithAttrs implements slog.Handler.
func (h *Handler) WithAttrs(as []slog.Attr) slog.Handler {
	return &Handler{next: h.next.WithAttrs(as), st: h.st}
}

// WithGroup implements slog.Handler.
func (h *Handler) WithGroup(name string) slog.Handler {
	return &Handler{next: h.next.WithGroup(name), st: h.st}
}

// Flush writes the summaries of the current interval now (at shutdown).
func (h *Handler) Flush(ctx context.Context) {
	h.st.mu.Lock()
	sums := h.st.roll(h.st.o.Now())
	h.st.mu.Unlock()
	for _, s := range sums {
		_ = h.st.base.Handle(ctx, s)
	}
}

// admit counts r and says whether it passes, with the summaries of an
// interval that just ended.
func (st *state) admit(r slog.Record) (bool, []slog.Record) {
	now := st.o.Now()
	st.mu.Lock()
	defer st.mu.Unlock()
	var sums []slog.Record
	if now.Sub(st.start) >= st.o.Interval {
		sums = st.roll(now)
	}
	if r.Level < st.o.Level.Level() {
		return true, sums
	}
	k := key(r.Message)
	c, ok := st.msgs[k]
	if !ok {
		if len(st.msgs) >= st.o.MaxMessages-1 { // one slot is the shared counter's
			k = otherKey
			c = st.msgs[k]
		}
		if c == nil {
			c = &counter{level: r.Level}
			st.msgs[k] = c
		}
	}
	if c.passed < st.o.Repeats {
		c.passed++
		return true, sums
	}
	c.suppressed++
	return false, sums
}

// roll ends the interval: one summary per message with suppressed
// lines. st.mu must be held.
func (st *state) roll(now time.Time) []slog.Record {
	var out []slog.Record
	for k, c := range st.msgs {
		if c.suppressed == 0 {
			continue
		}
		r := slog.NewRecord(now, slog.LevelWarn, "log lines suppressed", 0)
		r.AddAttrs(slog.String("message", k), slog.String("level_suppressed", c.level.String()),
			slog.Int64("count", c.suppressed), slog.Duration("interval", st.o.Interval))
		out = append(out, r)
	}
	clear(st.msgs)
	st.start = now
	return out
}

// key names a message: digit runs folded to one '#', cut at keyLen bytes.
func key(msg string) string {
	b := make([]byte, 0, keyLen)
	digit := false
	for i := 0; i < len(msg) && len(b) < keyLen; i++ {
		c := msg[i]
		if c >= '0' && c <= '9' {
			if !digit {
				b = append(b, '#')
			}
			digit = true
			continue
		}
		digit = false
		b = append(b, c)
	}
	return string(b)
}
