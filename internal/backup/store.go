// Package backup takes encrypted, verifiable backups of a phivault
// deployment, restores them, and drills the restore (issue 17).
//
// Security invariants: nothing unencrypted leaves the data directory;
// an archive is untrusted input until its manifest's hashes and its KEK
// seal (seal.go) check, so restore keeps everything provisional until
// then; decompression is capped (limits.go); temporary plaintext is
// removed, also after a killed process (stale.go).
package backup

import (
	"context"
	"errors"
	"io"
	"time"
)

// ErrNotExist means the named object is not in the store.
var ErrNotExist = errors.New("backup: no such object")

// Object is one object of a Store: a backup file or its sidecar.
type Object struct {
	Name     string // a flat name, no directories ("phivault-20261208T010203Z.age")
	Size     int64
	Modified time.Time
}

// Store is where backups are kept: a directory or an S3-compatible
// bucket. Names are flat and chosen by this package; a Store never
// interprets the bytes. Put is atomic: a reader never sees a partial
// object under its final name.
type Store interface {
	Put(ctx context.Context, name string, r io.Reader) error
	Get(ctx context.Context, name string) (io.ReadCloser, error) // ErrNotExist when missing
	List(ctx context.Context) ([]Object, error)                  // every object, any order
	Delete(ctx context.Context, name string) error               // no error when missing
	String() string                                              // where, without credentials
}
