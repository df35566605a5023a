// Package attempt bounds how fast unauthenticated requests can add
// events to the audit log, and reports what it refused.
//
// Every request to an audited path leaves an event (DESIGN §6), and a
// request that no handler audited gets a generic one from the HTTP layer
// (httpapi, package trail). An unauthenticated client can send such
// requests for free, so, left alone, a flood would fill the log (every
// event is a Merkle leaf kept for six years) and keep the database busy.
// A [Limiter] gives each source address (IPv4 address, IPv6 /64) a token
// bucket, and all addresses together one more: each generic event of a
// request that ended unauthenticated takes a token. Without a token the
// request is answered 429 instead and is only counted; the HTTP layer
// also refuses, before any work, requests without credentials from an
// address whose bucket is empty ([Limiter.Blocked]). Authenticated
// requests are never limited here: their events name an account, which
// is accountable (and login attempts have their own limits).
//
// # What the log still shows
//
// Refused requests are aggregated: [Limiter.Flush] appends one
// [audit.ActionRateLimit] event per address (Agent.Address, Policies
// "attempt-limit" and "count=N", Time the end of the interval) for the
// requests refused since the last flush, and one without an address for
// those of addresses beyond the tracked set. [Limiter.Run] flushes every
// interval and once more when it stops. So a flood costs the log one
// event per address and interval, and the log still says who flooded,
// how much and when. The first requests of each address, up to the
// burst, are recorded one by one.
//
// # Security invariants
//
//   - Memory is bounded: at most MaxAddresses buckets and counters,
//     whatever the number of sources (least recently seen forgotten;
//     counts of addresses beyond the bound go to one shared counter).
//   - Counts are kept until an aggregate event is durable: a failed
//     flush keeps them for the next one.
//
// A Limiter is safe for concurrent use. Its only goroutine is the one
// that calls Run, which the caller owns.
package attempt

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"strconv"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/phivault/phivault/internal/addrlimit"
	"github.com/phivault/phivault/internal/audit"
)

// Defaults for [Options], with their reasons.
const (
	// DefaultRate is 30 unaudited requests a minute per address: a
	// person or an app that has not signed in yet (discovery documents,
	// a token request, a refused call) needs a few; 43,200 a day from
	// one address is already more than the log should carry.
	DefaultRate = rate.Limit(30.0 / 60)
	// DefaultBurst is 60: a clinic behind one NAT address can start
	// many apps at once.
	DefaultBurst = 60
	// DefaultGlobalRate bounds all addresses together at 50 a second, so
	// a flood from many addresses adds at most ≈ 4.3 M events a day
	// (≈ 1.3 GB of log) before it is only counted.
	DefaultGlobalRate = rate.Limit(50)
	// DefaultGlobalBurst lets a start-up wave of 500 clients through.
	DefaultGlobalBurst = 500
	// DefaultMaxAddresses is 10,000 tracked addresses (≈ 2 MB).
	DefaultMaxAddresses = 10_000
	// DefaultInterval is how often refusals are reported: a flood is in
	// the log within 10 seconds and costs it one event per address per
	// 10 seconds.
	DefaultInterval = 10 * time.Second
	// flushTimeout bounds one flush (a few events through the batcher).
	flushTimeout = 10 * time.Second
)

// Recorder makes one event durable; httpapi.AuditRecorder implements it.
type Recorder interface {
	Record(ctx context.Context, ev audit.Event) error
}

// Options configures a [Limiter]. The zero value means the defaults.
type Options struct {
	Rate         rate.Limit // events per second per address; zero means DefaultRate
	Burst        int        // zero means DefaultBurst
	GlobalRate   rate.Limit // zero means DefaultGlobalRate
	GlobalBurst  int        // zero means DefaultGlobalBurst
	MaxAddresses int        // zero means DefaultMaxAddresses
	Interval     time.Duration
	Now          func() time.Time
	// Recorder receives the aggregate events; nil makes Flush keep the
	// counts (and return an error).
	Recorder Recorder
	// Logger receives a warning when a report could not be recorded
	// (the counts are kept); nil discards.
	Logger *slog.Logger
}

// Limiter is the attempt limit. Create it with [New].
type Limiter struct {
	o      Options
	global *rate.Limiter

	mu      sync.Mutex
	buckets *addrlimit.Buckets
	counts  map[netip.Prefix]int64 // refusals since the last flush
	other   int64                  // refusals of addresses beyond MaxAddresses
	since   time.Time              // start of the current report interval
}

// New returns a Limiter for o, filling in defaults.
func New(o Options) *Limiter {
	if o.Rate <= 0 {
		o.Rate = DefaultRate
	}
	if o.Burst <= 0 {
		o.Burst = DefaultBurst
	}
	if o.GlobalRate <= 0 {
		o.GlobalRate = DefaultGlobalRate
	}
	if o.GlobalBurst <= 0 {
		o.GlobalBurst = DefaultGlobalBurst
	}
	if o.MaxAddresses <= 0 {
		o.MaxAddresses = DefaultMaxAddresses
	}
	if o.Interval <= 0 {
		o.Interval = DefaultInterval
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return &Limiter{o: o, global: rate.NewLimiter(o.GlobalRate, o.GlobalBurst),
		buckets: addrlimit.NewBuckets(o.Rate, o.Burst, o.MaxAddresses), counts: make(map[netip.Prefix]int64), since: o.Now()}
}

// Blocked reports whether addr's bucket is empty, without taking a
// token: its requests without credentials are refused before any work.
// retryAfter is when the next token comes.
func (l *Limiter) Blocked(addr netip.Addr) (blocked bool, retryAfter time.Duration) {
	key := addrlimit.Key(addr)
	now := l.o.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	lim, ok := l.buckets.Peek(key)
	if !ok {
		return false, 0
	}
	if lim.TokensAt(now) >= 1 {
		return false, 0
	}
	return true, l.wait(lim, now)
}

// Take takes a token for one generic event of an unauthenticated request
// from addr. ok=false means the request must be answered 429 (after
// retryAfter) and counted with [Limiter.Refused] instead of recorded.
func (l *Limiter) Take(addr netip.Addr) (ok bool, retryAfter time.Duration) {
	key := addrlimit.Key(addr)
	now := l.o.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	lim := l.buckets.Get(key)
	r := lim.ReserveN(now, 1)
	if d := r.DelayFrom(now); d > 0 {
		r.CancelAt(now)
		return false, d
	}
	g := l.global.ReserveN(now, 1)
	if d := g.DelayFrom(now); d > 0 {
		g.CancelAt(now)
		r.CancelAt(now) // the address did not use its token
		return false, d
	}
	return true, 0
}

// Refused counts one refused request of addr for the next aggregate event.
func (l *Limiter) Refused(addr netip.Addr) {
	key := addrlimit.Key(addr)
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, ok := l.counts[key]; ok || len(l.counts) < l.o.MaxAddresses {
		l.counts[key]++
		return
	}
	l.other++
}

func (l *Limiter) wait(lim *rate.Limiter, now time.Time) time.Duration {
	r := lim.ReserveN(now, 1)
	d := r.DelayFrom(now)
	r.CancelAt(now)
	return d
}

// Pending returns the number of refusals not yet reported.
func (l *Limiter) Pending() int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := l.other
	for _, c := range l.counts {
		n += c
	}
	return n
}

// Flush appends one aggregate event per address with refusals since the
// last flush. Counts whose event could not be recorded are kept.
func (l *Limiter) Flush(ctx context.Context) error {
	now := l.o.Now().UTC()
	l.mu.Lock()
	counts, other, since := l.counts, l.other, l.since
	l.counts, l.other, l.since = make(map[netip.Prefix]int64), 0, now
	l.mu.Unlock()
	if len(counts) == 0 && other == 0 {
		return nil
	}
	var firstErr error
	keep := func(key netip.Prefix, n int64, shared bool) {
		l.mu.Lock()
		defer l.mu.Unlock()
		if shared {
			l.other += n
		} else {
			l.counts[key] += n
		}
		if since.Before(l.since) {
			l.since = since
		}
	}
	record := func(key netip.Prefix, n int64, shared bool) {
		if firstErr != nil {
			keep(key, n, shared)
			return
		}
		ev := audit.Event{Time: now, Action: audit.ActionRateLimit, Outcome: audit.OutcomeDenied,
			Policies: []string{"attempt-limit", "count=" + strconv.FormatInt(n, 10), "since=" + since.Format(time.RFC3339)},
			Status:   429}
		if !shared && key.IsValid() {
			ev.Agent.Address = key.Addr().String()
			if key.Bits() != key.Addr().BitLen() {
				ev.Agent.Address = key.String() // an IPv6 /64
			}
		}
		if l.o.Recorder == nil {
			firstErr = fmt.Errorf("reporting refused attempts: no recorder")
		} else if err := l.o.Recorder.Record(ctx, ev); err != nil {
			firstErr = fmt.Errorf("reporting refused attempts: %w", err)
		}
		if firstErr != nil {
			keep(key, n, shared)
		}
	}
	for key, n := range counts {
		record(key, n, false)
	}
	if other > 0 {
		record(netip.Prefix{}, other, true)
	}
	return firstErr
}

// Run flushes every interval until ctx ends, then once more (on a
// context of its own, so the last refusals of a shutdown are reported).
// A failed flush is logged and retried at the next interval.
func (l *Limiter) Run(ctx context.Context) {
	t := time.NewTicker(l.o.Interval)
	defer t.Stop()
	flush := func(ctx context.Context) {
		ctx, cancel := context.WithTimeout(ctx, flushTimeout)
		defer cancel()
		if err := l.Flush(ctx); err != nil {
			l.o.Logger.WarnContext(ctx, "refused attempts not reported yet; retrying", slog.String("error", err.Error()))
		}
	}
	for {
		select {
		case <-ctx.Done():
			flush(context.WithoutCancel(ctx))
			return
		case <-t.C:
			flush(ctx)
		}
	}
}
