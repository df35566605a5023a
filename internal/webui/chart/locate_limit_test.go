package chart

import (
	"testing"
	"time"
)

// TestLocateLimits: LocateBurst look-ups at once per account, then one
// per LocateEvery; accounts do not share a bucket.
func TestLocateLimits(t *testing.T) {
	now := time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)
	l := newLocateLimits(func() time.Time { return now })
	for i := range LocateBurst {
		if !l.allow("a") {
			t.Fatalf("look-up %d refused within the burst", i+1)
		}
	}
	if l.allow("a") {
		t.Fatal("a look-up beyond the burst was allowed")
	}
	if !l.allow("b") {
		t.Fatal("another account shares the bucket")
	}
	now = now.Add(LocateEvery)
	if !l.allow("a") || l.allow("a") {
		t.Fatal("the bucket does not refill one look-up per LocateEvery")
	}
}
