package backup

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
)

// dirMode and fileMode: backups are ciphertext, but who has taken one
// and when is nobody else's business either.
const (
	dirMode  os.FileMode = 0o700
	fileMode os.FileMode = 0o600
)

// DirStore is a Store in a local directory (a mounted volume, a NAS). It
// is safe for concurrent use by several processes: Put writes a
// temporary file, fsyncs it, renames it into place and fsyncs the
// directory, so a reader never sees a partial object and a crash leaves
// either the old state or the new one.
type DirStore struct {
	dir string
}

var _ Store = (*DirStore)(nil)

// NewDirStore returns the store in dir, creating it (mode 0700) if it
// does not exist.
func NewDirStore(dir string) (*DirStore, error) {
	if dir == "" {
		return nil, errors.New("backup: directory store: empty path")
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("backup: directory store %s: %w", dir, err)
	}
	if err := os.MkdirAll(abs, dirMode); err != nil {
		return nil, fmt.Errorf("backup: creating %s: %w", abs, err)
	}
	return &DirStore{dir: abs}, nil
}

// String is the directory.
func (d *DirStore) String() string { return d.dir }

// Put stores r's bytes as name, atomically.
func (d *DirStore) Put(ctx context.Context, name string, r io.Reader) (err error) {
	if err := ValidName(name); err != nil {
		return err
	}
	tmpDir, done, err := tempDir(d.dir, putPrefix)
	if err != nil {
		return fmt.Errorf("backup: putting %s: %w", name, err)
	}
	defer done()
	tmp := filepath.Join(tmpDir, "object")
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, fileMode)
	if err != nil {
		return fmt.Errorf("backup: putting %s: %w", name, err)
	}
	defer func() {
		if err != nil {
			f.Close()
		}
	}()
	if _, err := io.Copy(f, ctxReader{ctx, r}); err != nil {
		return fmt.Errorf("backup: writing %s: %w", name, err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("backup: syncing %s: %w", name, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("backup: closing %s: %w", name, err)
	}
	if err := os.Rename(tmp, filepath.Join(d.dir, name)); err != nil {
		return fmt.Errorf("backup: renaming %s: %w", name, err)
	}
	return syncDir(d.dir)
}

// Get opens name; ErrNotExist when it is missing.
func (d *DirStore) Get(_ context.Context, name string) (io.ReadCloser, error) {
	if err := ValidName(name); err != nil {
		return nil, err
	}
	f, err := os.Open(filepath.Join(d.dir, name))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w: %s", ErrNotExist, name)
	}
	if err != nil {
		return nil, fmt.Errorf("backup: opening %s: %w", name, err)
	}
	return f, nil
}

// List returns the regular files with valid names (temporary files of a
// Put in progress start with "." and are left out).
func (d *DirStore) List(_ context.Context) ([]Object, error) {
	ents, err := os.ReadDir(d.dir)
	if err != nil {
		return nil, fmt.Errorf("backup: listing %s: %w", d.dir, err)
	}
	var out []Object
	for _, e := range ents {
		if !e.Type().IsRegular() || ValidName(e.Name()) != nil || e.Name()[0] == '.' {
			continue
		}
		info, err := e.Info()
		if err != nil {
			continue // removed meanwhile
		}
		out = append(out, Object{Name: e.Name(), Size: info.Size(), Modified: info.ModTime()})
	}
	return out, nil
}

// RemoveStale removes the temporary files of puts whose process died
// (see the package function RemoveStale) and returns their names.
func (d *DirStore) RemoveStale() ([]string, error) { return RemoveStale(d.dir) }

// Delete removes name; a missing name is not an error.
func (d *DirStore) Delete(_ context.Context, name string) error {
	if err := ValidName(name); err != nil {
		return err
	}
	if err := os.Remove(filepath.Join(d.dir, name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("backup: deleting %s: %w", name, err)
	}
	return syncDir(d.dir)
}

// syncDir fsyncs a directory, so a rename or removal in it is durable.
func syncDir(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("backup: syncing %s: %w", dir, err)
	}
	defer f.Close()
	if err := f.Sync(); err != nil {
		return fmt.Errorf("backup: syncing %s: %w", dir, err)
	}
	return nil
}

// ctxReader stops a copy when ctx ends.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
