package storage

import (
	"context"
	"time"
)

// Current is one resource's current pointer (the row that reads and
// searches start from), without its version's ciphertext.
type Current struct {
	Type        string
	ID          string
	Version     int64
	Owner       string
	Deleted     bool
	LastUpdated time.Time
}

// LedgerReader reads, in a stable order, what the ledger check (ADR
// 0016, "phivault verify") compares with the signed audit log besides
// the versions (Reader.ScanVersions) and keys (Reader.ScanKeys). Both
// scans go in (type, id) order, bytewise, the order of ScanVersions,
// so a caller can merge the three. Like ScanVersions they stream in
// short queries and hold no transaction open between calls of fn; they
// stop at the first error from fn and return it.
type LedgerReader interface {
	// ScanCurrent calls fn for every current pointer.
	ScanCurrent(ctx context.Context, fn func(Current) error) error
	// ScanIndex calls fn once per resource that has index rows, with
	// all of them (in no particular order).
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
