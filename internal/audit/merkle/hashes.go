package merkle

import (
	"context"
	"fmt"

	"golang.org/x/mod/sumdb/tlog"
)

// hashSource reads stored hashes by id: storage.LogReader and
// storage.LogTx both have this method.
type hashSource interface {
	ReadHashes(ctx context.Context, ids []int64) ([][]byte, error)
}

// storedHashes adapts a hashSource to tlog.HashReader for one call
// context (tlog's interface has no context).
func storedHashes(ctx context.Context, src hashSource) tlog.HashReader {
	return tlog.HashReaderFunc(func(ids []int64) ([]tlog.Hash, error) {
		raw, err := src.ReadHashes(ctx, ids)
		if err != nil {
			return nil, err
		}
		return toHashes(raw, ids)
	})
}

func toHashes(raw [][]byte, ids []int64) ([]tlog.Hash, error) {
	if len(raw) != len(ids) {
		return nil, fmt.Errorf("read %d tree hashes, want %d", len(raw), len(ids))
	}
	out := make([]tlog.Hash, len(raw))
	for i, b := range raw {
		if len(b) != tlog.HashSize {
			return nil, fmt.Errorf("tree hash %d has %d bytes, want %d", ids[i], len(b), tlog.HashSize)
		}
		copy(out[i][:], b)
	}
	return out, nil
}

// overlay serves hashes written in the current integration from memory
// and the rest from the store, caching what it read.
type overlay struct {
	ctx   context.Context
	src   hashSource
	known map[int64]tlog.Hash
}

func newOverlay(ctx context.Context, src hashSource) *overlay {
	return &overlay{ctx: ctx, src: src, known: make(map[int64]tlog.Hash)}
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
		raw, err := o.src.ReadHashes(o.ctx, miss)
		if err != nil {
			return nil, err
		}
		hs, err := toHashes(raw, miss)
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
	count int64 // leaves appended
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

// append adds leaf hash h as leaf f.count and returns its stored hashes.
func (f *frontier) append(h tlog.Hash) ([]tlog.Hash, error) {
	n := f.count
	hs, err := tlog.StoredHashesForRecordHash(n, h, f)
	if err != nil {
		return nil, err
	}
	for level, x := range hs {
		f.n[level] = n >> uint(level)
		f.h[level] = x
	}
	f.count++
	return hs, nil
}

// root returns the root hash of the leaves appended so far.
func (f *frontier) root() (tlog.Hash, error) { return tlog.TreeHash(f.count, f) }
