package merkle

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// Source is where a monitor reads a log: its latest checkpoint and its
// hash tiles. Both results are untrusted; the monitor checks them.
type Source interface {
	// Checkpoint returns the latest signed checkpoint, at most
	// MaxCheckpointSize bytes.
	Checkpoint(ctx context.Context) ([]byte, error)
	// Tile returns the data of hash tile t (height TileHeight).
	Tile(ctx context.Context, t tlog.Tile) ([]byte, error)
}

// MonitorState is what a monitor remembers between runs: the last
// checkpoint it accepted. It is saved as JSON.
type MonitorState struct {
	Origin     string    `json:"origin"`
	Size       int64     `json:"size"`
	Root       tlog.Hash `json:"root"`
	Checkpoint string    `json:"checkpoint"` // the signed note, as evidence
}

// ParseMonitorState decodes a saved state. Errors wrap ErrBadRequest.
func ParseMonitorState(b []byte) (MonitorState, error) {
	var s MonitorState
	if len(b) > 4*MaxCheckpointSize {
		return s, fmt.Errorf("%w: monitor state too large", ErrBadRequest)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&s); err != nil {
		return MonitorState{}, fmt.Errorf("%w: monitor state: %v", ErrBadRequest, err)
	}
	if s.Size < 0 {
		return MonitorState{}, fmt.Errorf("%w: monitor state: negative size", ErrBadRequest)
	}
	return s, nil
}

// Monitor checks a remote log through its public endpoints only. It is
// safe for concurrent use.
type Monitor struct {
	src      Source
	origin   string
	verifier note.Verifier
}

// NewMonitor returns a monitor of the log whose checkpoints have origin
// and are signed by v.
func NewMonitor(src Source, origin string, v note.Verifier) *Monitor {
	return &Monitor{src: src, origin: origin, verifier: v}
}

// Check fetches the latest checkpoint, checks its signature and, when
// prev is not nil, that it is consistent with prev (proving it with the
// log's tiles). It returns the new state to save. Errors wrap
// ErrSignature, ErrFork, ErrRollback or ErrRewrite for an alarm, and
// anything else for a failure to fetch. On an alarm the returned state
// is prev: the caller keeps the evidence, never the bad checkpoint.
func (m *Monitor) Check(ctx context.Context, prev *MonitorState) (MonitorState, error) {
	raw, err := m.src.Checkpoint(ctx)
	if err != nil {
		return keep(prev), fmt.Errorf("fetching checkpoint: %w", err)
	}
	c, err := OpenCheckpoint(raw, m.origin, m.verifier)
	if err != nil {
		return keep(prev), err
	}
	return m.Advance(ctx, prev, c)
}

// Advance checks checkpoint c (already signature-checked) against prev
// as Check does.
func (m *Monitor) Advance(ctx context.Context, prev *MonitorState, c Checkpoint) (MonitorState, error) {
	next := MonitorState{Origin: c.Origin, Size: c.Size, Root: c.Root, Checkpoint: string(c.Note)}
	// The tiles must prove the new root: a log serving tiles that do not
	// match its own checkpoint is broken or lying.
	hr := tlog.TileHashReader(tlog.Tree{N: c.Size, Hash: c.Root}, &tileReader{ctx: ctx, src: m.src})
	if prev == nil {
		if c.Size > 0 {
			if _, err := tlog.TreeHash(c.Size, hr); err != nil {
				return MonitorState{}, fmt.Errorf("%w: tiles do not match the checkpoint of size %d: %v", ErrRewrite, c.Size, err)
			}
		}
		return next, nil
	}
	if prev.Origin != "" && prev.Origin != c.Origin {
		return *prev, fmt.Errorf("%w: origin %q, the saved state is for %q", ErrSignature, c.Origin, prev.Origin)
	}
	switch {
	case c.Size < prev.Size:
		return *prev, fmt.Errorf("%w: size %d after %d", ErrRollback, c.Size, prev.Size)
	case c.Size == prev.Size:
		if c.Root != prev.Root {
			return *prev, fmt.Errorf("%w: size %d has root %s, earlier %s", ErrFork, c.Size, c.Root, prev.Root)
		}
		return next, nil
	}
	if prev.Size == 0 {
		return next, nil // every tree extends the empty one
	}
	p, err := tlog.ProveTree(c.Size, prev.Size, hr)
	if err != nil {
		var fe *fetchError
		if errors.As(err, &fe) {
			return *prev, fmt.Errorf("fetching tiles: %w", err)
		}
		return *prev, fmt.Errorf("%w: from size %d to %d: %v", ErrRewrite, prev.Size, c.Size, err)
	}
	if err := tlog.CheckTree(p, c.Size, c.Root, prev.Size, prev.Root); err != nil {
		return *prev, fmt.Errorf("%w: from size %d to %d: %v", ErrRewrite, prev.Size, c.Size, err)
	}
	return next, nil
}

func keep(prev *MonitorState) MonitorState {
	if prev == nil {
		return MonitorState{}
	}
	return *prev
}

// fetchError marks a tile that could not be fetched (as opposed to one
// that does not match the tree).
type fetchError struct{ err error }

func (e *fetchError) Error() string { return e.err.Error() }
func (e *fetchError) Unwrap() error { return e.err }

// tileReader adapts a Source to tlog.TileReader. tlog checks every tile
// against the tree hash before using it.
type tileReader struct {
	ctx context.Context
	src Source
}

func (r *tileReader) Height() int { return TileHeight }

func (r *tileReader) ReadTiles(tiles []tlog.Tile) ([][]byte, error) {
	out := make([][]byte, len(tiles))
	for i, t := range tiles {
		b, err := r.src.Tile(r.ctx, t)
		if err != nil {
			return nil, &fetchError{fmt.Errorf("tile %s: %w", TilePath(t), err)}
		}
		if len(b) != t.W*tlog.HashSize {
			return nil, fmt.Errorf("tile %s has %d bytes, want %d", TilePath(t), len(b), t.W*tlog.HashSize)
		}
		out[i] = b
	}
	return out, nil
}

func (r *tileReader) SaveTiles([]tlog.Tile, [][]byte) {}
