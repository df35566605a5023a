package authz

import "sync/atomic"

// CacheStats counts the lookups of one fact cache. It is safe for
// concurrent use; the zero value is ready.
type CacheStats struct {
	hits, misses atomic.Uint64
}

// Stats returns the hits and misses so far.
func (c *CacheStats) Stats() (hits, misses uint64) { return c.hits.Load(), c.misses.Load() }

// count adds one lookup, a hit if hit.
func (c *CacheStats) count(hit bool) {
	if hit {
		c.hits.Add(1)
	} else {
		c.misses.Add(1)
	}
}

// Caches returns the authorizer's fact caches by name: "authz_subject"
// (a caller's facts: roles, care teams, grants), "authz_patient" (a
// patient's facts: consents, flags) and "authz_filter" (a search's
// narrowing filter). A lookup that must reload (absent, expired or
// invalidated by a write) is a miss.
func (a *Authorizer) Caches() map[string]*CacheStats {
	return map[string]*CacheStats{"authz_subject": &a.subjectStats, "authz_patient": &a.patientStats, "authz_filter": &a.filterStats}
}
