package storage

import (
	"context"
	"time"
)

// The transparency log (ADR 0010). Audit records are sequenced first
// (AppendAudit: durable rows, in commit order); an integrator then gives
// each a leaf index, stores the Merkle tree's hashes and a signed
// checkpoint, all in one transaction ([LogStore.Integrate]). These
// types carry no PHI: bodies stay sealed, hashes are of salted leaves.

// LogLeaf is one audit record with its place in the tree.
type LogLeaf struct {
	Seq      int64 // sequence number (commit order)
	Index    int64 // leaf index; -1 while not integrated
	Time     time.Time
	Body     []byte // sealed under the log key
	LeafHash []byte // as stored at sequencing; nil for legacy records
}

// Checkpoint is one signed tree head: the tree of Size leaves has root
// hash Root; Note is the C2SP signed note as published.
type Checkpoint struct {
	Size    int64
	Root    []byte
	Note    []byte
	Created time.Time
}

// LogTx is the integrator's view of one transaction. It is only handed
// out by [LogStore.Integrate], which holds the integration lock, so no
// other integrator runs concurrently anywhere (PostgreSQL: across
// processes). Not safe for concurrent use.
type LogTx interface {
	// Size is the number of integrated leaves (the next leaf index).
	Size(ctx context.Context) (int64, error)
	// Latest returns the newest checkpoint, or ErrNotFound for none.
	Latest(ctx context.Context) (Checkpoint, error)
	// Pending returns up to limit records without a leaf index, in
	// sequence order (Index is -1). Body is nil when LeafHash is set.
	Pending(ctx context.Context, limit int) ([]LogLeaf, error)
	// ReadHashes returns the stored hashes with the given ids, in order;
	// ErrNotFound if one is missing.
	ReadHashes(ctx context.Context, ids []int64) ([][]byte, error)
	// Assign gives records seqs the leaf indexes first, first+1, ...;
	// it fails if any already has one.
	Assign(ctx context.Context, first int64, seqs []int64) error
	// PutHashes stores hashes under ids first, first+1, ...
	PutHashes(ctx context.Context, first int64, hashes [][]byte) error
	// PutCheckpoint stores a checkpoint; ErrConflict if its size exists.
	PutCheckpoint(ctx context.Context, c Checkpoint) error
}

// LogStore is the persistence of the transparency log.
type LogStore interface {
	LogReader
	// Integrate runs fn in one write transaction holding the
	// integration lock (a database advisory lock on PostgreSQL; the
	// single writer on SQLite) and commits if fn returns nil. Like
	// Store.Update it may run fn again after a lost race.
	Integrate(ctx context.Context, fn func(LogTx) error) error
}

// LogReader reads the published log. Safe for concurrent use.
type LogReader interface {
	// LatestCheckpoint returns the newest checkpoint, or ErrNotFound.
	LatestCheckpoint(ctx context.Context) (Checkpoint, error)
	// CheckpointAt returns the checkpoint of a tree size, or ErrNotFound.
	CheckpointAt(ctx context.Context, size int64) (Checkpoint, error)
	// ScanCheckpoints calls fn for every checkpoint in size order.
	ScanCheckpoints(ctx context.Context, fn func(Checkpoint) error) error
	// ReadHashes returns the stored hashes with the given ids, in order;
	// ErrNotFound if one is missing.
	ReadHashes(ctx context.Context, ids []int64) ([][]byte, error)
	// ScanLeaves calls fn for the integrated leaves with index in
	// [from, to), in index order. A missing index is not skipped
	// silently: fn sees the leaves that exist, so callers compare
	// indexes.
	ScanLeaves(ctx context.Context, from, to int64, fn func(LogLeaf) error) error
	// ScanHashes calls fn for the stored hashes with id in [from, to), in
	// id order (missing ids are skipped: callers compare ids).
	ScanHashes(ctx context.Context, from, to int64, fn func(id int64, hash []byte) error) error
	// ScanPending calls fn for every record not yet integrated, in
	// sequence order (Index is -1).
	ScanPending(ctx context.Context, fn func(LogLeaf) error) error
	// CountPending returns the number of records not yet integrated.
	CountPending(ctx context.Context) (int64, error)
	// LeafIndexOf returns the leaf index of the record with sequence
	// number seq: -1 if not yet integrated, ErrNotFound if no such record.
	LeafIndexOf(ctx context.Context, seq int64) (int64, error)
}
