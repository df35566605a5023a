package storage

import (
	"context"
	"time"
)

// The transparency log (ADR 0010, ADR 0014). Audit records are
// sequenced first (AppendAudit: durable rows, in commit order); an
// integrator then gives each a leaf index, moves it into its sealed
// entry bundle, stores the hash tiles and a signed checkpoint and
// deletes the record, all in one transaction ([LogStore.Integrate]).
// These types carry no PHI: bundles and bodies stay sealed, hashes are
// of salted leaves.

// LogLeaf is one audit record not yet in the tree (or, for a database
// written before entry bundles, one integrated under the old layout).
type LogLeaf struct {
	Seq      int64 // sequence number (commit order)
	Index    int64 // leaf index; -1 while not integrated
	Time     time.Time
	Body     []byte // sealed under the log key
	LeafHash []byte // as stored at sequencing; nil for legacy records
}

// Bundle is one sealed entry bundle: the leaves with indexes
// [N*256, N*256+Width), sealed together under the log key (ADR 0014).
// Integrated events live only here: the integrator moves each pending
// record into its bundle and deletes the record in one transaction.
type Bundle struct {
	N      int64
	Width  int
	Sealed []byte
}

// Tile is one stored hash tile (C2SP tlog-tiles, height 8): Width
// hashes of 32 bytes at tile level Level (tree level 8*Level), the
// nodes [N*256, N*256+Width) of that level. The last tile of a level
// is partial and rewritten as the tree grows; full tiles never change.
type Tile struct {
	Level int
	N     int64
	Width int
	Data  []byte
}

// TileRef names a stored tile.
type TileRef struct {
	Level int
	N     int64
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
	// Size is the number of integrated leaves: the leaves held by the
	// stored bundles (the next leaf index).
	Size(ctx context.Context) (int64, error)
	// Latest returns the newest checkpoint, or ErrNotFound for none.
	Latest(ctx context.Context) (Checkpoint, error)
	// Pending returns up to limit records without a leaf index, in
	// sequence order (Index is -1), with their sealed bodies.
	Pending(ctx context.Context, limit int) ([]LogLeaf, error)
	// Legacy returns up to limit records integrated under the layout
	// before entry bundles (one row per leaf, with a leaf index), from
	// leaf index from on, in index order. Empty once converted.
	Legacy(ctx context.Context, from int64, limit int) ([]LogLeaf, error)
	// Bundle returns bundle n, or ErrNotFound.
	Bundle(ctx context.Context, n int64) (Bundle, error)
	// ReadTiles returns the stored tiles refs name, in order; a missing
	// tile is ErrNotFound.
	ReadTiles(ctx context.Context, refs []TileRef) ([]Tile, error)
	// PutBundle stores b, replacing a narrower bundle n.
	PutBundle(ctx context.Context, b Bundle) error
	// PutTiles stores tiles, replacing narrower ones at the same place.
	PutTiles(ctx context.Context, tiles []Tile) error
	// Remove deletes the records seqs once they are in a bundle: every
	// one must exist and be pending (Legacy ones: integrated), or it
	// fails with ErrConflict.
	Remove(ctx context.Context, seqs []int64, legacy bool) error
	// DropLegacyHashes deletes the tree hashes of the old layout once
	// its leaves are converted.
	DropLegacyHashes(ctx context.Context) error
	// PutCheckpoint stores a checkpoint; ErrConflict if its size exists.
	PutCheckpoint(ctx context.Context, c Checkpoint) error
	// AnchorState returns whether the checkpoint kept outside the
	// database may be created when it is missing: AnchorNew,
	// AnchorUpgrade or AnchorKept (also when nothing is stored: fail
	// closed).
	AnchorState(ctx context.Context) (string, error)
	// SetAnchorState records state (one of the Anchor* constants).
	SetAnchorState(ctx context.Context, state string) error
}

// Anchor states (LogTx.AnchorState).
const (
	// AnchorNew: no checkpoint was signed yet; the first integration
	// creates the kept checkpoint.
	AnchorNew = "new"
	// AnchorUpgrade: the log was signed by a version that kept no
	// checkpoint outside the database; the first integration keeps the
	// latest verified checkpoint.
	AnchorUpgrade = "upgrade"
	// AnchorKept: the kept checkpoint was established; its absence is
	// an integrity alarm.
	AnchorKept = "kept"
)

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
	// ReadTiles returns the stored tiles refs name, in order; a missing
	// tile is ErrNotFound.
	ReadTiles(ctx context.Context, refs []TileRef) ([]Tile, error)
	// ScanTiles calls fn for the stored tiles of one level with N in
	// [from, to), in order. Missing tiles are skipped: callers compare N.
	ScanTiles(ctx context.Context, level int, from, to int64, fn func(Tile) error) error
	// ScanBundles calls fn for the stored bundles with N in [from, to),
	// in order. Missing bundles are skipped: callers compare N.
	ScanBundles(ctx context.Context, from, to int64, fn func(Bundle) error) error
	// ScanPending calls fn for every record not yet integrated, in
	// sequence order (Index is -1).
	ScanPending(ctx context.Context, fn func(LogLeaf) error) error
	// CountPending returns the number of records not yet integrated.
	CountPending(ctx context.Context) (int64, error)
	// CountLegacy returns the number of records integrated under the
	// layout before entry bundles and not yet converted.
	CountLegacy(ctx context.Context) (int64, error)
	// FirstLegacy returns the record of that layout with the smallest
	// leaf index, or ErrNotFound.
	FirstLegacy(ctx context.Context) (LogLeaf, error)
	// StoredSize is LogTx.Size outside a transaction: the leaves the
	// stored bundles hold.
	StoredSize(ctx context.Context) (int64, error)
}

// Verification is the outcome of one full verification of the audit log
// (table audit_verifications).
type Verification struct {
	Finished time.Time
	Size     int64  // leaves covered
	OK       bool   // no divergence
	Detail   string // the first divergence, or ""; never event content
}
