package chart

import (
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Look-ups outside one's care tell names and birth dates, so a clinician
// may make only so many: LocateBurst at once, then one every
// LocateEvery (a penetration test harvested the name and birth date of
// every patient with thirty three-letter searches in a few seconds).
// Beyond it the search page says so and offers nothing outside the
// clinician's care until the bucket refills; the searches themselves,
// and what the clinician may read, are unchanged.
const (
	LocateBurst = 10
	LocateEvery = 3 * time.Minute
)

// maxLocateAccounts bounds the accounts whose buckets are kept; beyond
// it every bucket is dropped (each starts full again: the bound is on
// memory, and a flood of accounts is not a clinician's).
const maxLocateAccounts = 10000

// locateLimits is a token bucket per account.
type locateLimits struct {
	mu      sync.Mutex
	buckets map[string]*rate.Limiter
	now     func() time.Time
}

func newLocateLimits(now func() time.Time) *locateLimits {
	return &locateLimits{buckets: map[string]*rate.Limiter{}, now: now}
}

// allow takes one look-up from account's bucket.
func (l *locateLimits) allow(account string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	b, ok := l.buckets[account]
	if !ok {
		if len(l.buckets) >= maxLocateAccounts {
			clear(l.buckets)
		}
		b = rate.NewLimiter(rate.Every(LocateEvery), LocateBurst)
		l.buckets[account] = b
	}
	return b.AllowN(l.now(), 1)
}
