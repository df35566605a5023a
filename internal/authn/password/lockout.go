package password

import "time"

// Defaults for [Lockout], with their reasons. NIST SP 800-63B §5.2.2
// (rev4 §3.2.2) requires limiting consecutive failed attempts on one
// account to no more than 100, and suggests delays that grow with each
// failure so a legitimate user is slowed rather than locked out for good.
const (
	// DefaultFreeFailures is 5: typos and a forgotten caps lock cost
	// nothing; the sixth attempt after five failures waits.
	DefaultFreeFailures = 5
	// DefaultBaseDelay is 1 minute after the 5th failure, doubling with
	// each further failure: 1, 2, 4, ... minutes.
	DefaultBaseDelay = time.Minute
	// DefaultMaxDelay caps the delay at 1 hour: an online guesser gets at
	// most 24 guesses a day, while the real user is never locked out for
	// longer than an hour by someone else's guessing.
	DefaultMaxDelay = time.Hour
	// DefaultMaxFailures is 100, NIST's ceiling: at the 100th consecutive
	// failure the account stays locked until an administrator resets it
	// (or the user recovers it) with [Lockout.Succeed]. With the delays
	// above that takes over three days of guessing.
	DefaultMaxFailures = 100
)

// AccountState is one account's consecutive-failure record. The caller
// stores it with the account (it must survive restarts and be shared by
// every server) and updates it with [Lockout.Fail] and [Lockout.Succeed].
// The zero value is an account with no failures.
//
// To keep "no such user" indistinguishable from "wrong password", keep a
// state for login names that have no account too (keyed by the name as
// typed, normalised), so unknown names lock out exactly as real ones do.
type AccountState struct {
	Failures    int       // consecutive failures since the last success
	LockedUntil time.Time // zero when not locked; far future when hard-locked
}

// Lockout is the per-account backoff policy: pure logic over an injected
// time and an [AccountState] the caller persists. The zero value uses the
// Default constants. A Lockout is a value and safe for concurrent use;
// serialising updates of one account's state is the caller's storage's
// job (read-modify-write in one transaction).
type Lockout struct {
	FreeFailures int           // zero means DefaultFreeFailures
	BaseDelay    time.Duration // zero means DefaultBaseDelay
	MaxDelay     time.Duration // zero means DefaultMaxDelay
	MaxFailures  int           // zero means DefaultMaxFailures
}

// hardLocked is LockedUntil for an account locked until reset: far enough
// away never to pass, and still representable in every database.
func hardLocked() time.Time { return time.Date(9999, 12, 31, 0, 0, 0, 0, time.UTC) }

// Allow reports whether a login attempt on the account may proceed at
// now. When it may not, retryAfter is how long to wait (for a Retry-After
// header), or zero when the account is locked until reset. Answer a
// refused attempt with the same message as a wrong password, and do not
// run the password check: the attempt counts as nothing.
func (l Lockout) Allow(s AccountState, now time.Time) (ok bool, retryAfter time.Duration) {
	l = l.withDefaults()
	if s.Failures >= l.MaxFailures {
		return false, 0
	}
	if now.Before(s.LockedUntil) {
		return false, s.LockedUntil.Sub(now)
	}
	return true, 0
}

// Fail returns the state after a failed attempt at now: one more failure
// and, from the FreeFailures-th failure on, a lock of BaseDelay doubled
// per further failure, capped at MaxDelay; at MaxFailures the account is
// locked until [Lockout.Succeed].
func (l Lockout) Fail(s AccountState, now time.Time) AccountState {
	l = l.withDefaults()
	s.Failures++
	switch {
	case s.Failures >= l.MaxFailures:
		s.Failures = l.MaxFailures
		s.LockedUntil = hardLocked()
	case s.Failures >= l.FreeFailures:
		s.LockedUntil = now.Add(l.delay(s.Failures - l.FreeFailures))
	}
	return s
}

// Succeed returns the state after a successful login or an administrator
// reset: no failures, not locked.
func (Lockout) Succeed() AccountState { return AccountState{} }

// delay is BaseDelay × 2^n, capped at MaxDelay without overflowing.
func (l Lockout) delay(n int) time.Duration {
	d := l.BaseDelay
	for range n {
		if d >= l.MaxDelay/2 {
			return l.MaxDelay
		}
		d *= 2
	}
	return min(d, l.MaxDelay)
}

func (l Lockout) withDefaults() Lockout {
	if l.FreeFailures <= 0 {
		l.FreeFailures = DefaultFreeFailures
	}
	if l.BaseDelay <= 0 {
		l.BaseDelay = DefaultBaseDelay
	}
	if l.MaxDelay <= 0 {
		l.MaxDelay = DefaultMaxDelay
	}
	if l.MaxFailures <= 0 {
		l.MaxFailures = DefaultMaxFailures
	}
	return l
}
