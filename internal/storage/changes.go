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
	Seq   int64  // unique per row; not in commit order on PostgreSQL
	Owner string // "Patient/<id>", or whatever owner the row was written under
}

// MaxChanges bounds the rows one RecentChanges returns. A reader that
// gets this many cannot know it saw every change and must treat what it
// cached as stale.
const MaxChanges = 10000

// ChangeFeed reads and prunes the change feed. Implementations are safe
// for concurrent use.
type ChangeFeed interface {
	// RecentChanges returns the rows written within window before now,
	// by the database's clock. A row becomes visible when its
	// transaction commits, which may be after later-numbered rows: a
	// reader asks again for a window longer than any write transaction
	// and skips the rows it has seen.
	RecentChanges(ctx context.Context, window time.Duration) ([]Change, error)

	// PruneChanges deletes the rows older than keep and returns how many.
	PruneChanges(ctx context.Context, keep time.Duration) (int64, error)
}
