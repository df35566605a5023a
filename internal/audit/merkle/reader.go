package merkle

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/phivault/phivault/internal/audit"
	"github.com/phivault/phivault/internal/storage"
)

// maxEntrySize is the largest leaf an entry bundle can carry: C2SP
// entry bundles prefix each entry with a big-endian uint16 length.
const maxEntrySize = 1<<16 - 1

// Reader serves the published log from storage: checkpoints, hash
// tiles, entry bundles and proofs. It is safe for concurrent use.
type Reader struct {
	store  storage.LogReader
	opener LogKey
}

// NewReader returns a Reader over store. opener opens the sealed entry
// bundles; with a nil opener only checkpoints, tiles and proofs work.
func NewReader(store storage.LogReader, opener LogKey) *Reader {
	return &Reader{store: store, opener: opener}
}

// Checkpoint returns the latest signed checkpoint, or an error wrapping
// ErrNotFound before the first integration.
func (r *Reader) Checkpoint(ctx context.Context) (storage.Checkpoint, error) {
	c, err := r.store.LatestCheckpoint(ctx)
	if errors.Is(err, storage.ErrNotFound) {
		return c, fmt.Errorf("%w: no checkpoint yet", ErrNotFound)
	}
	return c, err
}

// Size returns the size of the latest checkpoint: the number of leaves
// that can be read; 0 before the first integration.
func (r *Reader) Size(ctx context.Context) (int64, error) {
	c, err := r.store.LatestCheckpoint(ctx)
	if errors.Is(err, storage.ErrNotFound) {
		return 0, nil
	}
	return c.Size, err
}

// Tile returns the data of hash tile t (t.L >= 0): t.W hashes of 32
// bytes. The tile must lie within the latest checkpoint; otherwise the
// error wraps ErrNotFound.
func (r *Reader) Tile(ctx context.Context, t tlog.Tile) ([]byte, error) {
	if t.H != TileHeight || t.L < 0 || t.W < 1 || t.W > TileWidth {
		return nil, fmt.Errorf("%w: not a hash tile", ErrBadRequest)
	}
	if err := r.within(ctx, t); err != nil {
		return nil, err
	}
	// The stored tile was written with a checkpoint that covers it, in
	// the same transaction; its first W hashes never change.
	data, err := storedTiles{ctx: ctx, src: r.store}.ReadTiles([]tlog.Tile{t})
	if errors.Is(err, storage.ErrNotFound) {
		return nil, fmt.Errorf("%w: tile %s missing from the store", ErrInconsistent, TilePath(t))
	}
	if err != nil {
		return nil, fmt.Errorf("reading tile %s: %w", TilePath(t), err)
	}
	return data[0], nil
}

// EntryBundle returns the C2SP entry bundle of tile t (t.L == -1): each
// leaf (salt and event bytes, decrypted) prefixed by its length as a
// big-endian uint16. Bundles hold audit events: serve them to auditors
// only. Errors wrap ErrNotFound outside the latest checkpoint.
func (r *Reader) EntryBundle(ctx context.Context, t tlog.Tile) ([]byte, error) {
	if t.H != TileHeight || t.L != -1 || t.W < 1 || t.W > TileWidth {
		return nil, fmt.Errorf("%w: not an entry bundle", ErrBadRequest)
	}
	if err := r.within(ctx, t); err != nil {
		return nil, err
	}
	from := t.N * TileWidth
	var out []byte
	err := r.ScanLeaves(ctx, from, from+int64(t.W), func(i int64, leaf []byte, _ bool) error {
		if len(leaf) > maxEntrySize {
			return fmt.Errorf("entry bundle: leaf %d has %d bytes, more than an entry bundle holds", i, len(leaf))
		}
		out = binary.BigEndian.AppendUint16(out, uint16(len(leaf)))
		out = append(out, leaf...)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// Leaves calls fn with the leaves at indexes (in index order, each
// once), opening each entry bundle they fall in once. Every index must
// be integrated; the caller bounds them by Size.
func (r *Reader) Leaves(ctx context.Context, indexes []int64, fn func(index int64, leaf []byte, v1 bool) error) error {
	idx := slices.Clone(indexes)
	slices.Sort(idx)
	idx = slices.Compact(idx)
	if len(idx) > 0 && idx[0] < 0 {
		return fmt.Errorf("%w: leaf %d", ErrNotFound, idx[0])
	}
	for len(idx) > 0 {
		n := idx[0] / TileWidth
		k := 1
		for k < len(idx) && idx[k]/TileWidth == n {
			k++
		}
		want := idx[:k]
		idx = idx[k:]
		err := r.ScanLeaves(ctx, want[0], want[len(want)-1]+1, func(i int64, leaf []byte, v1 bool) error {
			if _, ok := slices.BinarySearch(want, i); !ok {
				return nil
			}
			return fn(i, leaf, v1)
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// ScanLeaves calls fn with every leaf with index in [from, to), in
// order, decrypted from the entry bundles, and whether it is a format
// v1 leaf (no salt: see audit.LeafEvent). Leaves must be integrated: a
// missing one is an error wrapping ErrInconsistent (the caller bounds to
// by a checkpoint's size). Leaves hold audit events: callers decide who
// sees them.
func (r *Reader) ScanLeaves(ctx context.Context, from, to int64, fn func(index int64, leaf []byte, v1 bool) error) error {
	if r.opener == nil {
		return errors.New("reading audit leaves: no log key")
	}
	if from < 0 || from >= to {
		return nil
	}
	next := from
	first, last := from/TileWidth, (to-1)/TileWidth
	err := r.store.ScanBundles(ctx, first, last+1, func(b storage.Bundle) error {
		if b.N != next/TileWidth {
			return fmt.Errorf("%w: entry bundle %d missing from the store", ErrInconsistent, next/TileWidth)
		}
		leaves, v1, err := r.opener.OpenBundle(b.N, b.Width, b.Sealed)
		if err != nil {
			return fmt.Errorf("%w: %w", ErrInconsistent, err)
		}
		for k := next - b.N*TileWidth; k < int64(len(leaves)) && next < to; k++ {
			if err := fn(next, leaves[k], v1 != nil && v1[k]); err != nil {
				return err
			}
			next++
		}
		if next < to && next < (b.N+1)*TileWidth {
			return errStopScan // the last bundle ends before to
		}
		return nil
	})
	if err != nil && !errors.Is(err, errStopScan) {
		return err
	}
	if next < to {
		return fmt.Errorf("%w: leaf %d missing from the entry bundles", ErrInconsistent, next)
	}
	return nil
}

// within checks that tile t is complete in the latest checkpoint.
func (r *Reader) within(ctx context.Context, t tlog.Tile) error {
	need, ok := tileLeaves(t)
	if !ok {
		return fmt.Errorf("%w: tile %s", ErrNotFound, TilePath(t))
	}
	c, err := r.Checkpoint(ctx)
	if err != nil {
		return err
	}
	if need > c.Size {
		return fmt.Errorf("%w: tile %s is beyond the tree of size %d", ErrNotFound, TilePath(t), c.Size)
	}
	return nil
}

// checkpointFor returns the checkpoint of size, or the latest for 0.
func (r *Reader) checkpointFor(ctx context.Context, size int64) (storage.Checkpoint, error) {
	if size == 0 {
		return r.Checkpoint(ctx)
	}
	c, err := r.store.CheckpointAt(ctx, size)
	if errors.Is(err, storage.ErrNotFound) {
		return c, fmt.Errorf("%w: no checkpoint of size %d", ErrNotFound, size)
	}
	return c, err
}

// InclusionProof returns a C2SP tlog-proof that leaf req.Index is in the
// tree of the checkpoint of size req.Size (0: the latest). The proof
// embeds that signed checkpoint. Errors wrap ErrNotFound when there is
// no checkpoint of that size or the leaf is not in it.
func (r *Reader) InclusionProof(ctx context.Context, req InclusionRequest) ([]byte, error) {
	c, err := r.checkpointFor(ctx, req.Size)
	if err != nil {
		return nil, err
	}
	if req.Index >= c.Size {
		return nil, fmt.Errorf("%w: leaf %d is not in the tree of size %d", ErrNotFound, req.Index, c.Size)
	}
	hr, err := treeHashes(ctx, r.store, c.Size, c.Root)
	if err != nil {
		return nil, err
	}
	p, err := tlog.ProveRecord(c.Size, req.Index, hr)
	if err != nil {
		return nil, fmt.Errorf("proving leaf %d in tree %d: %w", req.Index, c.Size, err)
	}
	return FormatInclusionProof(req.Index, p, c.Note), nil
}

// ConsistencyProof returns the RFC 6962 consistency proof between the
// trees of sizes req.Old and req.New, one base64 hash per line. req.New
// must not exceed the latest checkpoint (ErrNotFound).
func (r *Reader) ConsistencyProof(ctx context.Context, req ConsistencyRequest) ([]byte, error) {
	c, err := r.Checkpoint(ctx)
	if err != nil {
		return nil, err
	}
	if req.New > c.Size {
		return nil, fmt.Errorf("%w: size %d is beyond the tree of size %d", ErrNotFound, req.New, c.Size)
	}
	hr, err := treeHashes(ctx, r.store, c.Size, c.Root)
	if err != nil {
		return nil, err
	}
	p, err := tlog.ProveTree(req.New, req.Old, hr)
	if err != nil {
		return nil, fmt.Errorf("proving consistency %d..%d: %w", req.Old, req.New, err)
	}
	return FormatConsistencyProof(p), nil
}

// EventProof is what a patient view shows for one audit event so the
// patient can check it is in the log: the event's canonical bytes and a
// C2SP tlog-proof whose "extra" line is the leaf's salt. The leaf hash
// is RecordHash(salt || Event); the proof embeds the signed checkpoint.
type EventProof struct {
	Index int64
	Event []byte // canonical event JSON (the caller decides what to show)
	Proof []byte // C2SP tlog-proof, extra = the 16-byte salt
	// LeafHash is the leaf's RFC 6962 hash and HashProof the same
	// tlog-proof without the salt: what someone who may not see the whole
	// event (a patient, of an event that also names others) is given, so
	// that the salt never lets them confirm guesses of the rest.
	LeafHash  tlog.Hash
	HashProof []byte
}

// LeafProof returns the proof for the leaf at index idx (the id of the
// event's FHIR AuditEvent) in the checkpoint of size (0: the latest).
// Errors wrap ErrNotFound for a leaf not in that checkpoint (not yet
// integrated: retry in a second). The caller must only serve it to
// someone allowed to see the event (the patient it names, an auditor).
func (r *Reader) LeafProof(ctx context.Context, idx, size int64) (EventProof, error) {
	if idx < 0 {
		return EventProof{}, fmt.Errorf("%w: leaf %d", ErrNotFound, idx)
	}
	c, err := r.checkpointFor(ctx, size)
	if err != nil {
		return EventProof{}, err
	}
	if idx >= c.Size {
		return EventProof{}, fmt.Errorf("%w: leaf %d is not in the tree of size %d", ErrNotFound, idx, c.Size)
	}
	var leaf []byte
	var legacy bool
	err = r.ScanLeaves(ctx, idx, idx+1, func(_ int64, l []byte, v1 bool) error {
		leaf, legacy = l, v1
		return nil
	})
	if err != nil {
		return EventProof{}, fmt.Errorf("event proof: leaf %d: %w", idx, err)
	}
	hr, err := treeHashes(ctx, r.store, c.Size, c.Root)
	if err != nil {
		return EventProof{}, err
	}
	p, err := tlog.ProveRecord(c.Size, idx, hr)
	if err != nil {
		return EventProof{}, fmt.Errorf("proving leaf %d in tree %d: %w", idx, c.Size, err)
	}
	out := EventProof{Index: idx, LeafHash: tlog.RecordHash(leaf), HashProof: FormatInclusionProof(idx, p, c.Note)}
	if legacy {
		// No salt: the leaf is the event itself; "extra" is empty.
		out.Event, out.Proof = leaf, formatProof([]byte{}, idx, p, c.Note)
		return out, nil
	}
	out.Event, out.Proof = leaf[audit.SaltSize:], formatProof(leaf[:audit.SaltSize], idx, p, c.Note)
	return out, nil
}
