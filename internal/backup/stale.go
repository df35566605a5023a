package backup

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/phivault/phivault/internal/dirlock"
)

// Temporary files. A backup writes a plaintext SQLite snapshot into the
// data directory and a partial ciphertext into a directory store; a
// process killed meanwhile (kill -9, a crash, power loss) leaves them
// behind, the snapshot being a plaintext copy of the database. So each
// lives in a private directory held with an exclusive dirlock for as
// long as its process works on it: a directory whose lock can be taken
// belongs to a dead process and is removed (RemoveStale), whatever its
// age, while a running backup's is never touched.

// Prefixes of the private temporary directories.
const (
	snapshotPrefix = ".backup-" // in the data directory (SQLite snapshot)
	putPrefix      = ".put-"    // in a directory store (partial object)
)

// tempDir makes a private directory parent/prefix<random> (mode 0700),
// held until done, which removes it.
func tempDir(parent, prefix string) (string, func(), error) {
	dir, err := os.MkdirTemp(parent, prefix+"*")
	if err != nil {
		return "", nil, err
	}
	l, err := dirlock.Acquire(dir, dirlock.Exclusive, "backup")
	if err != nil {
		os.RemoveAll(dir)
		return "", nil, err
	}
	return dir, func() {
		os.RemoveAll(dir) // while held: no cleaner removes it under us
		_ = l.Release()
	}, nil
}

// RemoveStale removes what dead backups left in dir: private temporary
// directories (".backup-*" snapshots, ".put-*" partial objects) whose
// lock nobody holds, and the flat ".backup-*.db" (with "-journal",
// "-wal", "-shm") and ".put-*" files of phivault versions before them.
// It returns the names removed, for the caller to report.
func RemoveStale(dir string) ([]string, error) {
	ents, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("backup: looking for stale temporary files in %s: %w", dir, err)
	}
	var removed []string
	for _, e := range ents {
		name := e.Name()
		if !strings.HasPrefix(name, snapshotPrefix) && !strings.HasPrefix(name, putPrefix) {
			continue
		}
		p := filepath.Join(dir, name)
		if e.IsDir() {
			l, err := dirlock.Acquire(p, dirlock.Exclusive, "backup cleanup")
			if err != nil {
				continue // a running backup's (or unreadable): leave it
			}
			err = os.RemoveAll(p)
			_ = l.Release()
			if err != nil {
				return removed, fmt.Errorf("backup: removing stale %s: %w", p, err)
			}
			removed = append(removed, name)
			continue
		}
		if !e.Type().IsRegular() {
			continue
		}
		if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return removed, fmt.Errorf("backup: removing stale %s: %w", p, err)
		}
		removed = append(removed, name)
	}
	return removed, nil
}
