package backup

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// ErrMissingKEK means the key file given for a restore lacks KEK key ids
// that wrap the backup's data keys: typically a backup taken before a KEK
// epoch (an erasure) whose old key was destroyed. Only an escrowed copy of
// the old key file restores it (by design: erased patients stay erased).
var ErrMissingKEK = errors.New("backup: the key file lacks KEK keys this backup needs")

// RestoreOptions configures Restore.
type RestoreOptions struct {
	Identities Identities
	// KeyIDs are the KEK key ids of the key file to restore with; the
	// restore fails with ErrMissingKEK, before anything is kept, when the
	// backup needs others. Nil skips the check (a KMS KEK).
	KeyIDs []uint32
	// Auth is the operator's KEK (*keys.KEK, from the key file restored
	// with): the manifest's seal must check with it (required;
	// ErrUnauthenticated).
	Auth ManifestChecker
	// Limits bound the decompressed size (zero: the defaults).
	Limits Limits
	// DataDir is the new data directory: missing or empty (ErrNotEmpty).
	DataDir string
	// Postgres is the URL of an empty database for a PostgreSQL backup.
	Postgres string
	Progress Progress
}

// Restored is a backup restored.
type Restored struct {
	Name     string
	Manifest Manifest
	DataDir  string
	// Database is the SQLite file in DataDir ("" for PostgreSQL).
	Database string
}

// Restore restores backup name from st into o.DataDir (the data
// directory's files and, for SQLite, the database as DataDir/phivault.db)
// and, for PostgreSQL, into the empty database o.Postgres. Nothing is
// kept unless the whole archive checked out (ciphertext hash, every
// file's hash, manifest, key ids): the files are written to a staging
// directory and moved into place at the end, the PostgreSQL tables are
// copied in one transaction committed at the end. It does not open or
// verify the restored instance: the caller does (app.RestoreBackup).
func Restore(ctx context.Context, st Store, name string, o RestoreOptions) (_ Restored, err error) {
	if o.DataDir == "" {
		return Restored{}, errors.New("backup: restore: no target data directory")
	}
	if o.Auth == nil {
		return Restored{}, fmt.Errorf("%w: restore: no KEK to check the manifest's seal with", ErrUnauthenticated)
	}
	if err := emptyOrMissing(o.DataDir); err != nil {
		return Restored{}, err
	}
	created := false
	if _, serr := os.Stat(o.DataDir); errors.Is(serr, fs.ErrNotExist) {
		created = true
	}
	if err := os.MkdirAll(o.DataDir, dirMode); err != nil {
		return Restored{}, fmt.Errorf("backup: restore: %w", err)
	}
	stage, err := os.MkdirTemp(o.DataDir, ".restoring-*")
	if err != nil {
		return Restored{}, fmt.Errorf("backup: restore: %w", err)
	}
	defer func() {
		os.RemoveAll(stage)
		if err != nil && created {
			os.RemoveAll(o.DataDir)
		}
	}()
	var pg *pgRestore
	defer func() {
		if pg != nil {
			pg.close(context.WithoutCancel(ctx))
		}
	}()
	var migrations []int
	fn := func(entry string, size int64, r io.Reader) error {
		switch {
		case entry == sqliteEntry:
			return writeFileFrom(filepath.Join(stage, "phivault.db"), o.Progress.reader(ctx, "restore", size, r))
		case strings.HasPrefix(entry, dataPrefix):
			rel := strings.TrimPrefix(entry, dataPrefix)
			if rel == "phivault.db" || rel == "" {
				return fmt.Errorf("%w: entry %q", ErrCorrupt, entry)
			}
			dst := filepath.Join(stage, filepath.FromSlash(rel))
			if err := os.MkdirAll(filepath.Dir(dst), dirMode); err != nil {
				return fmt.Errorf("backup: restore: %w", err)
			}
			return writeFileFrom(dst, r)
		case entry == pgMigrations:
			if o.Postgres == "" {
				return errors.New("backup: this is a PostgreSQL backup: give the URL of an empty database (--postgres)")
			}
			b, err := io.ReadAll(io.LimitReader(r, maxManifestBytes))
			if err != nil {
				return fmt.Errorf("%w: %s: %v", ErrCorrupt, entry, err)
			}
			if err := json.Unmarshal(b, &migrations); err != nil || len(migrations) == 0 {
				return fmt.Errorf("%w: %s does not list migrations", ErrCorrupt, entry)
			}
			if pg, err = openPGRestore(ctx, o.Postgres); err != nil {
				return err
			}
			o.Progress.phase("schema", 0, 1)
			return pg.schema(ctx, migrations)
		case strings.HasPrefix(entry, pgPrefix):
			if pg == nil {
				return fmt.Errorf("%w: table data before %s", ErrCorrupt, pgMigrations)
			}
			return pg.chunk(ctx, entry, o.Progress.reader(ctx, "restore", size, r))
		}
		return fmt.Errorf("%w: unexpected entry %q", ErrCorrupt, entry)
	}
	size, sum, a, err := readBackup(ctx, st, name, readOptions{ids: o.Identities, limits: o.Limits, p: o.Progress}, fn)
	if err != nil {
		return Restored{}, err
	}
	if a == nil {
		return Restored{}, errors.New("backup: restore: no identity to decrypt with")
	}
	m := &a.m
	if o.KeyIDs != nil {
		if miss := MissingKEKIDs(m.KEKIDs, o.KeyIDs); len(miss) > 0 {
			return Restored{}, fmt.Errorf("%w: KEK key ids %v (the key file has %v); after a KEK epoch only an escrowed copy of the old key file restores an older backup", ErrMissingKEK, miss, o.KeyIDs)
		}
	}
	if err := checkSeal(o.Auth, *a); err != nil {
		return Restored{}, err
	}
	if err := checkName(name, *m); err != nil {
		return Restored{}, err
	}
	if err := checkSummary(ctx, st, name, size, sum, *m); err != nil {
		return Restored{}, err
	}
	if m.Engine == EnginePostgres && (pg == nil || !slices.Equal(m.Migrations, migrations)) {
		return Restored{}, fmt.Errorf("%w: the migrations listed twice differ", ErrCorrupt)
	}
	if pg != nil {
		if err := pg.commit(ctx); err != nil {
			return Restored{}, err
		}
	}
	ents, err := os.ReadDir(stage)
	if err != nil {
		return Restored{}, fmt.Errorf("backup: restore: %w", err)
	}
	for _, e := range ents {
		if err := os.Rename(filepath.Join(stage, e.Name()), filepath.Join(o.DataDir, e.Name())); err != nil {
			return Restored{}, fmt.Errorf("backup: restore: %w", err)
		}
	}
	if err := syncDir(o.DataDir); err != nil {
		return Restored{}, err
	}
	r := Restored{Name: name, Manifest: *m, DataDir: o.DataDir}
	if m.Engine == EngineSQLite {
		r.Database = filepath.Join(o.DataDir, "phivault.db")
	}
	return r, nil
}

// emptyOrMissing refuses a directory that holds anything.
func emptyOrMissing(dir string) error {
	f, err := os.Open(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("backup: restore target: %w", err)
	}
	defer f.Close()
	names, err := f.Readdirnames(1)
	if err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("backup: restore target %s: %w", dir, err)
	}
	if len(names) > 0 {
		return fmt.Errorf("%w: %s is not empty", ErrNotEmpty, dir)
	}
	return nil
}
