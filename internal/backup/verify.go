package backup

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"time"
)

// VerifyOptions configures Verify.
type VerifyOptions struct {
	// Identities decrypt the backup; nil checks the ciphertext hash only.
	Identities Identities
	// KeyIDs, when not nil, are the KEK key ids of the key file the
	// operator means to restore with: the report names the backup's ids
	// it lacks.
	KeyIDs []uint32
	// Auth, when set (the operator's KEK), must accept the manifest's
	// seal: ErrUnauthenticated otherwise.
	Auth ManifestChecker
	// Limits bound the decompressed size (zero: the defaults).
	Limits Limits
	// TempDir holds the SQLite snapshot during its integrity check (mode
	// 0700 directory, removed after); default os.TempDir().
	TempDir  string
	Progress Progress
}

// VerifyReport is what Verify found.
type VerifyReport struct {
	Name   string
	Size   int64
	SHA256 string // matches NAME.sha256
	// Decrypted: the archive was decrypted, every file hash and the
	// manifest checked, and the SQLite snapshot passed integrity_check.
	// False when no identity was given: the hash alone was checked.
	Decrypted bool
	Manifest  *Manifest // when Decrypted
	// Authenticated: the manifest's seal checked with VerifyOptions.Auth.
	Authenticated bool
	// MissingKEKIDs are the manifest's KEK ids absent from
	// VerifyOptions.KeyIDs (nil when not checked or none missing).
	MissingKEKIDs []uint32
	// SummaryMismatch says how NAME.json differs from the manifest ("" if
	// it matches or was not checked).
	SummaryMismatch string
}

// Verify checks backup name in st: always its ciphertext against
// NAME.sha256 (ErrChecksum); with identities also the archive (ErrCorrupt,
// ErrWrongIdentity), and the SQLite snapshot's integrity_check.
func Verify(ctx context.Context, st Store, name string, o VerifyOptions) (VerifyReport, error) {
	r := VerifyReport{Name: name}
	var tmp string
	fn := func(string, int64, io.Reader) error { return nil }
	if o.Identities != nil {
		dir, err := os.MkdirTemp(o.TempDir, "phivault-verify-*")
		if err != nil {
			return r, fmt.Errorf("backup: verify: %w", err)
		}
		defer os.RemoveAll(dir)
		fn = func(entry string, _ int64, rd io.Reader) error {
			if entry != sqliteEntry {
				return nil
			}
			tmp = filepath.Join(dir, "snapshot.db")
			return writeFileFrom(tmp, rd)
		}
	}
	size, sum, a, err := readBackup(ctx, st, name, readOptions{ids: o.Identities, limits: o.Limits, p: o.Progress}, fn)
	if err != nil {
		return r, err
	}
	r.Size, r.SHA256 = size, sum
	if a == nil {
		return r, nil
	}
	m := &a.m
	r.Manifest = m
	if o.KeyIDs != nil {
		r.MissingKEKIDs = MissingKEKIDs(m.KEKIDs, o.KeyIDs)
	}
	// A key file without the backup's KEK keys cannot check its seal
	// either: say the plainer thing (r.MissingKEKIDs) first.
	if o.Auth != nil && len(r.MissingKEKIDs) == 0 {
		if err := checkSeal(o.Auth, *a); err != nil {
			return r, err
		}
		r.Authenticated = true
	}
	if err := checkName(name, *m); err != nil {
		return r, err
	}
	if m.Engine == EngineSQLite {
		if tmp == "" {
			return r, fmt.Errorf("%w: a SQLite backup without %s", ErrCorrupt, sqliteEntry)
		}
		o.Progress.phase("integrity check", 0, 1)
		if err := integrityCheck(ctx, tmp); err != nil {
			return r, err
		}
		o.Progress.phase("integrity check", 1, 1)
	}
	r.Decrypted = true
	if s, err := ReadSummary(ctx, st, name); err == nil {
		r.SummaryMismatch = summaryMismatch(s, m.Summary(name, size, sum))
	}
	return r, nil
}

// ErrMislabelled means a backup's name or NAME.json summary does not
// match its manifest: renamed, or the summary edited (neither is
// authenticated; the manifest is).
var ErrMislabelled = errors.New("backup: the backup's name or summary does not match its manifest")

// checkName refuses a backup whose name does not carry its manifest's
// creation time (a renamed archive: "newest" is chosen by name).
func checkName(name string, m Manifest) error {
	if t, ok := IsBackupName(name); !ok || !t.Equal(m.Created) {
		return fmt.Errorf("%w: %s was created %s by its manifest: renamed", ErrMislabelled, name, m.Created.UTC().Format(time.RFC3339Nano))
	}
	return nil
}

// checkSummary compares NAME.json, when there is one, with the manifest.
func checkSummary(ctx context.Context, st Store, name string, size int64, sum string, m Manifest) error {
	s, err := ReadSummary(ctx, st, name)
	if errors.Is(err, ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("%w: %s%s: %v", ErrMislabelled, name, SummarySuffix, err)
	}
	if d := summaryMismatch(s, m.Summary(name, size, sum)); d != "" {
		return fmt.Errorf("%w: %s%s differs from the manifest (%s): the summary was altered", ErrMislabelled, name, SummarySuffix, d)
	}
	return nil
}

// summaryMismatch names the first field where the stored summary got
// differs from the one the manifest gives.
func summaryMismatch(got, want Summary) string {
	switch {
	case got.Name != want.Name:
		return "name"
	case got.Engine != want.Engine || got.Format != want.Format || got.Schema != want.Schema || got.Version != want.Version:
		return "engine, format, schema or version"
	case !got.Created.Equal(want.Created):
		return "created"
	case got.Checkpoint.Size != want.Checkpoint.Size || string(got.Checkpoint.Root) != string(want.Checkpoint.Root):
		return "checkpoint"
	case !slices.Equal(got.KEKIDs, want.KEKIDs):
		return "KEK ids"
	case got.Size != want.Size || got.SHA256 != want.SHA256:
		return "size or SHA-256"
	}
	return ""
}

// writeFileFrom writes r to a new file at path (mode 0600), fsynced.
func writeFileFrom(path string, r io.Reader) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, fileMode)
	if err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	if _, err := io.Copy(f, r); err != nil {
		f.Close()
		return fmt.Errorf("backup: writing %s: %w", filepath.Base(path), err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("backup: syncing %s: %w", filepath.Base(path), err)
	}
	return f.Close()
}
