package merkle

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// A database can be rewritten by whoever has write access to it: the
// audit tables emptied and a new log signed from size 0, or an old
// backup put back. Checkpoints kept outside the database bound that
// (ADR 0016): the integrator keeps the last checkpoint it signed in an
// [Anchor] (a file beside the key file) and refuses to sign a tree
// smaller than, or inconsistent with, it or with a witness's co-signed
// checkpoint; "audit verify" checks the log against them too.

// Anchor keeps a checkpoint outside the database.
type Anchor interface {
	// Load returns the kept checkpoint (a C2SP signed note), or nil
	// when none is kept yet. Errors are I/O.
	Load() ([]byte, error)
	// Save replaces the kept checkpoint by note, durably. The caller
	// saves only checkpoints that extend the kept one.
	Save(note []byte) error
	// Name says where the checkpoint is kept, for messages.
	Name() string
}

// ReadOnly wraps an Anchor whose checkpoint is maintained by someone
// else (a witness's co-signed checkpoint that the operator copies in):
// it is checked, never written.
type ReadOnly struct{ Anchor }

// Save implements Anchor: it does nothing.
func (ReadOnly) Save([]byte) error { return nil }

// FileAnchor keeps the checkpoint in a file. Its zero value is not
// usable; Path is required. It is safe for concurrent use by one
// process (Save replaces the file atomically); processes of a fleet
// each keep their own file, or share one whose newest writer wins (each
// saves only what it checked against the database).
type FileAnchor struct {
	Path string
}

// maxAnchorSize bounds what Load reads: a checkpoint with witness
// cosignatures (MaxCheckpointSize).
const maxAnchorSize = MaxCheckpointSize

// Load implements Anchor. A missing file is no checkpoint.
func (a FileAnchor) Load() ([]byte, error) {
	f, err := os.Open(a.Path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading the kept checkpoint: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxAnchorSize+1))
	if err != nil {
		return nil, fmt.Errorf("reading the kept checkpoint %s: %w", a.Path, err)
	}
	if len(b) > maxAnchorSize {
		return nil, fmt.Errorf("reading the kept checkpoint %s: larger than %d bytes", a.Path, maxAnchorSize)
	}
	return b, nil
}

// Save implements Anchor: a temporary file in the same directory,
// fsynced, renamed over Path, and the directory fsynced, so a crash
// leaves the old checkpoint or the new one. Mode 0600: a checkpoint is
// public, but the directory is the key file's.
func (a FileAnchor) Save(note []byte) error {
	dir := filepath.Dir(a.Path)
	f, err := os.CreateTemp(dir, ".checkpoint-*")
	if err != nil {
		return fmt.Errorf("keeping the checkpoint: %w", err)
	}
	defer os.Remove(f.Name())
	if _, err := f.Write(note); err != nil {
		f.Close()
		return fmt.Errorf("keeping the checkpoint: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("keeping the checkpoint: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("keeping the checkpoint: %w", err)
	}
	if err := os.Rename(f.Name(), a.Path); err != nil {
		return fmt.Errorf("keeping the checkpoint: %w", err)
	}
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
	return nil
}

// Name implements Anchor.
func (a FileAnchor) Name() string { return a.Path }
