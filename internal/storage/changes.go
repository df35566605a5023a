package storage

import (
	"context"
	"time"
)

// Change is one row of the authorization change feed (ADR 0043): a
// write of a resource that a patient's authorization facts are built
// from (the Patient, its Consents and RelatedPersons) under Owner. The
// database appends it in the writing transaction itself (a trigger), so
// every write path and every process is covered.
type Change struct {
	Seq   int64  // unique per row; in commit order on SQLite, not on PostgreSQL
	Owner string // "Patient/<id>", or whatever owner the row was written under
}

// MaxChanges bounds the rows one RecentChanges returns. A reader that
// gets this many cannot know it saw every change and must treat what it
// cached as stale.
const MaxChanges = 10000

// ChangeFeed reads and prunes the change feed. Implementations are safe
// for concurrent use.
type ChangeFeed interface {
	// ChangesSince returns the rows that may have become visible since
	// the poll that returned cursor (0 for the first poll), in sequence
	// order, at most MaxChanges, and the cursor for the next poll. A row
	// may be returned again by later polls (PostgreSQL, while a
	// transaction older than it runs); never is one skipped, however
	// long its transaction ran.
	ChangesSince(ctx context.Context, cursor int64) (changes []Change, next int64, err error)

	// PruneChanges deletes the rows older than keep and returns how many.
	PruneChanges(ctx context.Context, keep time.Duration) (int64, error)
}
