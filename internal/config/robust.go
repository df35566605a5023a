package config

import (
	"encoding/json"
	"fmt"
	"time"
)

// Robustness options (ADR 0023): how long each stage of a
// request may take, how many connections a client may hold, how fast an
// unauthenticated client may add events to the audit log, how long the
// database may make a request wait, and how many repeated warnings a
// failure may write to the log. docs/operations.md has the table.

// Defaults, each with its reason.
const (
	// DefaultReadHeaderTimeout: a client sends its request line and
	// headers in one go; one that trickles them (slowloris) is cut
	// after 5 s. net/http also bounds the TLS handshake with it.
	DefaultReadHeaderTimeout = 5 * time.Second
	// DefaultBodyGrace: a body starts with its headers or within a round
	// trip; 10 s before its pace is enforced covers slow starts.
	DefaultBodyGrace = 10 * time.Second
	// DefaultMinBodyRate: after the grace a body must average 16 KiB/s
	// (a 2G-class link sends more); a client trickling bytes to hold a
	// connection is cut at the first read that falls behind.
	DefaultMinBodyRate = 16 << 10
	// DefaultIdleTimeout: a keep-alive connection waiting for its next
	// request is closed after 30 s; browsers and clients reuse within
	// seconds, and an idle socket held longer only serves an attacker
	// hoarding connection slots.
	DefaultIdleTimeout = 30 * time.Second
	// DefaultHandlerTimeout: a request's work (database waits included)
	// ends after 2 minutes with 503: a 10,000-entry transaction takes
	// seconds; nothing legitimate waits longer, and a stuck request must
	// not hold its resources for ever. Its body must arrive within it too.
	DefaultHandlerTimeout = 2 * time.Minute
	// DefaultWriteTimeout leaves 30 s after the handler timeout to send
	// the answer; a client that reads it slower is disconnected.
	DefaultWriteTimeout = DefaultHandlerTimeout + 30*time.Second
	// DefaultStatementTimeout: no single PostgreSQL statement of phivault
	// runs longer than 30 s (searches are bounded, scans are batched);
	// one that does is cancelled and its request answered 503 rather
	// than holding a connection of the pool.
	DefaultStatementTimeout = 30 * time.Second
	// DefaultLockTimeout: a request that waits longer than 5 s for a
	// database lock (PostgreSQL lock_timeout, SQLite busy_timeout) is
	// answered 503 with Retry-After instead of queuing behind a stuck or
	// hostile lock holder; normal waits (the audit sequence lock,
	// concurrent writers of one resource) last milliseconds.
	DefaultLockTimeout = 5 * time.Second
	// DefaultMaxConnections: 512 open client connections serve hundreds
	// of clients (HTTP/2 multiplexes a browser on one) and keep the
	// process within the common 1,024 open-file limit with room for the
	// database and logs. Further connections wait in the kernel's
	// accept queue only while every connection is in a request: an idle
	// keep-alive connection gives its slot to a new one.
	DefaultMaxConnections = 512
	// DefaultMaxConnectionsPerAddress: one address (a person, or a clinic
	// behind one NAT address) may hold 32, a sixteenth of the total;
	// beyond that its new connections take its own idle connections'
	// slots or are closed at once, so it takes 16 addresses, not 8, to
	// hold every slot (and they must keep them in requests). Set 0 (off)
	// behind a reverse proxy, whose address is every client's.
	DefaultMaxConnectionsPerAddress = 32
	// DefaultAttemptsPerMinute and DefaultAttemptBurst bound the audit
	// events of unauthenticated requests per address (package attempt):
	// 30 a minute, 60 at once.
	DefaultAttemptsPerMinute = 30
	DefaultAttemptBurst      = 60
	// DefaultLogRepeats and DefaultLogInterval cap repeated warnings and
	// errors: at most 10 lines of one message per 10 s, then one line
	// saying how many were suppressed. An outage then writes a few lines
	// a second, not tens of thousands.
	DefaultLogRepeats  = 10
	DefaultLogInterval = 10 * time.Second
)

// Duration is a time.Duration written in the file as a Go duration
// string ("30s", "2m").
type Duration time.Duration

// D returns d as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// MarshalJSON writes d as a duration string.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

// UnmarshalJSON reads a duration string.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("a duration is a string such as \"30s\"")
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("invalid duration %q", s)
	}
	*d = Duration(v)
	return nil
}

// Timeouts bound each stage of a request and each database wait.
type Timeouts struct {
	ReadHeader Duration `json:"read_header"` // request line and headers; also the TLS handshake
	BodyGrace  Duration `json:"body_grace"`  // before limits.min_body_bytes_per_second applies
	Idle       Duration `json:"idle"`        // keep-alive between requests
	Handler    Duration `json:"handler"`     // a request's work, from its header on
	Write      Duration `json:"write"`       // until the answer is sent; at least handler
	Statement  Duration `json:"statement"`   // PostgreSQL statement_timeout
	Lock       Duration `json:"lock"`        // PostgreSQL lock_timeout, SQLite busy_timeout
}

// Logging configures the process log.
type Logging struct {
	// Repeats is how many lines of one warning or error message are
	// written per Interval before the rest are counted and summarised.
	Repeats  int      `json:"repeats"`
	Interval Duration `json:"interval"`
	// Format is the log's format: "json" (one object a line, for
	// collectors), "text" (compact lines for a person) or "auto" (the
	// default: text when standard error is a terminal, else JSON).
	// Env: PHIVAULT_LOG_FORMAT; flag: --log-format.
	Format string `json:"format,omitempty"`
}

// Log formats (Logging.Format).
const (
	LogFormatAuto = "auto"
	LogFormatText = "text"
	LogFormatJSON = "json"
)

// ValidLogFormat reports whether f names a log format ("" is auto).
func ValidLogFormat(f string) bool {
	switch f {
	case "", LogFormatAuto, LogFormatText, LogFormatJSON:
		return true
	}
	return false
}

func defaultTimeouts() Timeouts {
	return Timeouts{
		ReadHeader: Duration(DefaultReadHeaderTimeout), BodyGrace: Duration(DefaultBodyGrace),
		Idle: Duration(DefaultIdleTimeout), Handler: Duration(DefaultHandlerTimeout), Write: Duration(DefaultWriteTimeout),
		Statement: Duration(DefaultStatementTimeout), Lock: Duration(DefaultLockTimeout),
	}
}

func defaultLogging() Logging {
	return Logging{Repeats: DefaultLogRepeats, Interval: Duration(DefaultLogInterval)}
}

// validateRobust checks the options of this file.
func (c Config) validateRobust() error {
	bad := func(opt, why string) error { return fmt.Errorf("%w: %s: %s", ErrInvalid, opt, why) }
	t := c.Timeouts
	for _, d := range []struct {
		name   string
		v      Duration
		lo, hi time.Duration
	}{
		{"timeouts.read_header", t.ReadHeader, 100 * time.Millisecond, time.Minute},
		{"timeouts.body_grace", t.BodyGrace, 100 * time.Millisecond, 10 * time.Minute},
		{"timeouts.idle", t.Idle, time.Second, time.Hour},
		{"timeouts.handler", t.Handler, time.Second, time.Hour},
		{"timeouts.write", t.Write, time.Second, 2 * time.Hour},
		{"timeouts.statement", t.Statement, 100 * time.Millisecond, time.Hour},
		{"timeouts.lock", t.Lock, 10 * time.Millisecond, 10 * time.Minute},
		{"logging.interval", c.Logging.Interval, time.Second, time.Hour},
	} {
		if d.v.D() < d.lo || d.v.D() > d.hi {
			return bad(d.name, fmt.Sprintf("must be between %v and %v", d.lo, d.hi))
		}
	}
	if t.Write < t.Handler {
		return bad("timeouts.write", "must be at least timeouts.handler, or answers of slow requests are cut off")
	}
	l := c.Limits
	switch {
	case l.MaxConnections < 1 || l.MaxConnections > 1_000_000:
		return bad("limits.max_connections", "must be between 1 and 1000000")
	case l.MaxConnectionsPerAddress < 0 || l.MaxConnectionsPerAddress > l.MaxConnections:
		return bad("limits.max_connections_per_address", "must be between 0 (off) and limits.max_connections")
	case l.MinBodyRate < 0:
		return bad("limits.min_body_bytes_per_second", "must not be negative (0: off)")
	case l.AttemptsPerMinute < 1:
		return bad("limits.unauthenticated_events_per_minute", "must be at least 1")
	case l.AttemptBurst < 1:
		return bad("limits.unauthenticated_event_burst", "must be at least 1")
	case c.Logging.Repeats < 1:
		return bad("logging.repeats", "must be at least 1")
	case !ValidLogFormat(c.Logging.Format):
		return bad("logging.format", `must be "auto", "text" or "json"`)
	}
	return nil
}
