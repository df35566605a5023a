package merkle

import (
	"context"
	"errors"
	"fmt"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/phivault/phivault/internal/storage"
)

// tileSource reads stored tiles: storage.LogReader and storage.LogTx
// both have this method.
type tileSource interface {
	ReadTiles(ctx context.Context, refs []storage.TileRef) ([]storage.Tile, error)
}

// storedTiles is a tlog.TileReader over stored hash tiles for one call
// context (tlog's interfaces have none). A stored tile may be wider than
// asked (the last tile of a level grows with the tree): the first W
// hashes of a tile never change, so it is cut to W.
type storedTiles struct {
	ctx context.Context
	src tileSource
}

func (s storedTiles) Height() int { return TileHeight }

func (s storedTiles) ReadTiles(tiles []tlog.Tile) ([][]byte, error) {
	refs := make([]storage.TileRef, len(tiles))
	for i, t := range tiles {
		if t.L < 0 {
			return nil, fmt.Errorf("tile %s is not a hash tile", TilePath(t))
		}
		refs[i] = storage.TileRef{Level: t.L, N: t.N}
	}
	got, err := s.src.ReadTiles(s.ctx, refs)
	if err != nil && !errors.Is(err, storage.ErrNotFound) {
		return nil, storageError{err}
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInconsistent, err)
	}
	out := make([][]byte, len(tiles))
	for i, t := range tiles {
		g := got[i]
		if g.Width < t.W || len(g.Data) != g.Width*tlog.HashSize {
			return nil, fmt.Errorf("%w: stored tile %s has width %d and %d bytes, want at least %d hashes", ErrInconsistent, TilePath(t), g.Width, len(g.Data), t.W)
		}
		out[i] = g.Data[:t.W*tlog.HashSize]
	}
	return out, nil
}

func (storedTiles) SaveTiles([]tlog.Tile, [][]byte) {}

// treeHashes is a tlog.HashReader for the tree of size n with root
// hash root, reading stored tiles and checking each against the root
// (tlog.TileHashReader): every hash it returns is proven to be in that
// tree, so a tampered tile fails here instead of producing a bad proof.
func treeHashes(ctx context.Context, src tileSource, n int64, root []byte) (tlog.HashReader, error) {
	if len(root) != tlog.HashSize {
		return nil, fmt.Errorf("%w: checkpoint root has %d bytes", ErrInconsistent, len(root))
	}
	var h tlog.Hash
	copy(h[:], root)
	return checkedHashes{tlog.TileHashReader(tlog.Tree{N: n, Hash: h}, storedTiles{ctx: ctx, src: src})}, nil
}

// storageError marks an error of the store (I/O) among those of
// tlog.TileHashReader, whose other errors mean a stored tile does not
// match the signed root.
type storageError struct{ err error }

func (e storageError) Error() string { return e.err.Error() }
func (e storageError) Unwrap() error { return e.err }

// checkedHashes wraps the tile checks' failures in ErrInconsistent.
type checkedHashes struct{ r tlog.HashReader }

func (c checkedHashes) ReadHashes(ids []int64) ([]tlog.Hash, error) {
	hs, err := c.r.ReadHashes(ids)
	var se storageError
	switch {
	case err == nil:
		return hs, nil
	case errors.As(err, &se):
		return nil, se.err
	case errors.Is(err, ErrInconsistent):
		return nil, err
	}
	return nil, fmt.Errorf("%w: a stored hash tile does not match the latest signed checkpoint: %w", ErrInconsistent, err)
}

// overlay serves hashes computed in the current integration from memory
// and the older ones from the tree before it.
type overlay struct {
	old   tlog.HashReader // nil for the empty tree
	known map[int64]tlog.Hash
}

func (o *overlay) ReadHashes(ids []int64) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(ids))
	var miss []int64
	for _, id := range ids {
		if _, ok := o.known[id]; !ok {
			miss = append(miss, id)
		}
	}
	if len(miss) > 0 {
		if o.old == nil {
			return nil, fmt.Errorf("tree hash %d is not in the empty tree", miss[0])
		}
		hs, err := o.old.ReadHashes(miss)
		if err != nil {
			return nil, err
		}
		for i, id := range miss {
			o.known[id] = hs[i]
		}
	}
	for i, id := range ids {
		out[i] = o.known[id]
	}
	return out, nil
}

// frontier is a tlog.HashReader holding only the hashes of the latest
// complete subtree at each level: exactly what tlog.StoredHashes reads
// to append the next leaf, and what tlog.TreeHash reads for the root of
// the tree built so far. Memory is O(log n) whatever the log's size, so
// verification streams.
type frontier struct {
	n     [64]int64 // n[level] is the subtree index held at that level, -1 for none
	h     [64]tlog.Hash
	buf   [65]tlog.Hash // append's result
	count int64         // leaves appended
}

func newFrontier() *frontier {
	f := &frontier{}
	for i := range f.n {
		f.n[i] = -1
	}
	return f
}

func (f *frontier) ReadHashes(ids []int64) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(ids))
	for i, id := range ids {
		level, n := tlog.SplitStoredHashIndex(id)
		if level >= len(f.n) || f.n[level] != n {
			return nil, fmt.Errorf("tree hash at level %d index %d is not on the frontier", level, n)
		}
		out[i] = f.h[level]
	}
	return out, nil
}

// append adds leaf hash h as leaf f.count and returns its stored hashes
// (tlog.StoredHashesForRecordHash, computed on the frontier without
// allocating: hs[k] is the hash at tree level k). The slice is valid
// until the next call.
func (f *frontier) append(h tlog.Hash) ([]tlog.Hash, error) {
	n := f.count
	f.buf[0] = h
	k := 0
	for ; (n>>uint(k))&1 == 1; k++ {
		if f.n[k] != n>>uint(k)-1 {
			return nil, fmt.Errorf("tree hash at level %d index %d is not on the frontier", k, n>>uint(k)-1)
		}
		h = tlog.NodeHash(f.h[k], h)
		f.buf[k+1] = h
	}
	for level := 0; level <= k; level++ {
		f.n[level] = n >> uint(level)
		f.h[level] = f.buf[level]
	}
	f.count++
	return f.buf[:k+1], nil
}

// appendNode adds the root h of a complete subtree at tree level level
// (its 1<<level leaves start at f.count, a multiple of 1<<level) and
// returns the stored hashes it completes, hs[k] at tree level level+k.
// The levels below are not updated: only a later appendNode at the same
// level or above, or the end of the tree, may follow.
func (f *frontier) appendNode(level int, h tlog.Hash) ([]tlog.Hash, error) {
	n := f.count >> uint(level)
	if n<<uint(level) != f.count {
		return nil, fmt.Errorf("subtree at level %d cannot start at leaf %d", level, f.count)
	}
	f.buf[0] = h
	k := 0
	for ; (n>>uint(k))&1 == 1; k++ {
		l := level + k
		if f.n[l] != n>>uint(k)-1 {
			return nil, fmt.Errorf("tree hash at level %d index %d is not on the frontier", l, n>>uint(k)-1)
		}
		h = tlog.NodeHash(f.h[l], h)
		f.buf[k+1] = h
	}
	for j := 0; j <= k; j++ {
		f.n[level+j] = n >> uint(j)
		f.h[level+j] = f.buf[j]
	}
	f.count += 1 << uint(level)
	return f.buf[:k+1], nil
}

// root returns the root hash of the leaves appended so far.
func (f *frontier) root() (tlog.Hash, error) { return tlog.TreeHash(f.count, f) }
