package storage

import (
	"context"
	"time"

	"github.com/phivault/phivault/internal/ident"
)

// Current is one resource's current pointer (the row that reads and
// searches start from), without its version's ciphertext.
type Current struct {
	Type        string
	ID          string
	Version     int64
	Owner       ident.Owner
	Deleted     bool
	LastUpdated time.Time
}

// LedgerReader reads what the ledger check (ADR 0016, "phivault
// verify") compares with the signed audit log besides the versions
// (Reader.ScanVersions) and keys (Reader.ScanKeys). Like ScanVersions
// the scans stream in short queries and hold no transaction open
// between calls of fn; they stop at the first error from fn and return
// it.
type LedgerReader interface {
	// ScanCurrent calls fn for every current pointer, in (type, id)
	// order, bytewise: the order of ScanVersions, so the two merge.
	ScanCurrent(ctx context.Context, fn func(Current) error) error
	// ScanIndex calls fn with every index row, in runs of rows of one
	// resource, in the order the driver reads fastest (storage order on
	// SQLite, (type, id) on PostgreSQL): the rows of one resource come
	// in one run when they were written together, as every write and
	// reindex does, but may come in several.
	ScanIndex(ctx context.Context, fn func(typ, id string, rows []IndexRow) error) error
	// Resource reads everything stored about one resource in one
	// snapshot: its versions (ascending, with ciphertext), its current
	// pointer and its index rows. A resource with nothing stored is an
	// empty state, not an error.
	Resource(ctx context.Context, typ, id string) (ResourceState, error)
}

// ResourceState is everything stored about one resource at one moment.
type ResourceState struct {
	Versions []Version // ascending
	Current  *Current  // nil: no current pointer row
	Index    []IndexRow
}
