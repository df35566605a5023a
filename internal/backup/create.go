package backup

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"time"

	"filippo.io/age"
)

// dataPrefix is the archive directory of the data directory's files.
const dataPrefix = "data/"

// Source is a database to snapshot: SQLiteSource or PostgresSource.
type Source interface {
	// Engine is EngineSQLite or EnginePostgres.
	Engine() string
	// snapshot writes one consistent snapshot into a and returns the
	// manifest's facts about it (schema, checkpoint, KEK ids, counts).
	snapshot(ctx context.Context, a *archiveWriter, p Progress) (Manifest, error)
}

// DataFile is a file of the data directory that a restore needs beside
// the database: the configuration, the verifier key, policy overrides,
// TLS files. Name is its path relative to the data directory ("tls/
// server.crt"); Path where to read it. The key file is never one.
type DataFile struct {
	Name string
	Path string
}

// CreateOptions configures Create.
type CreateOptions struct {
	// Recipients encrypt the backup (at least one; ParseRecipients).
	Recipients Recipients
	// Files are the data directory's files to include (see DataFile).
	Files []DataFile
	// Sealer seals the manifest under the deployment's KEK (*keys.KEK;
	// required, ErrNoSealer): restore refuses a backup whose seal does
	// not check with the operator's key file.
	Sealer ManifestSealer
	// Version is phivault's version, recorded in the manifest.
	Version string
	// Now is the clock; nil is time.Now.
	Now      func() time.Time
	Progress Progress
}

// Created is a backup just stored.
type Created struct {
	Name     string
	Manifest Manifest
	Size     int64  // of the ciphertext
	SHA256   string // of the ciphertext, hex (also in NAME.sha256)
	// Stale are the temporary files of dead backups removed before this
	// one (RemoveStale; the caller fills it in to report them).
	Stale []string
}

// Create takes a snapshot of src, archives it with o.Files, encrypts it
// to o.Recipients and stores it in dst under a new name, followed by its
// sidecars NAME.sha256 and NAME.json (Summary). Nothing unencrypted
// reaches dst; the snapshot streams from the database through tar, zstd
// and age to dst (SQLite: through a temporary copy in the data
// directory, removed before Create returns). A failure leaves no archive
// under its final name.
func Create(ctx context.Context, dst Store, src Source, o CreateOptions) (Created, error) {
	if len(o.Recipients) == 0 {
		return Created{}, ErrNoRecipient
	}
	if o.Sealer == nil {
		return Created{}, ErrNoSealer
	}
	now := time.Now
	if o.Now != nil {
		now = o.Now
	}
	started := now().UTC()
	name := NewName(started)
	for _, f := range o.Files {
		if err := validEntryName(dataPrefix + f.Name); err != nil || path.Clean(f.Name) != f.Name {
			return Created{}, fmt.Errorf("backup: data file %q: not a clean relative name", f.Name)
		}
	}

	pr, pw := io.Pipe()
	type made struct {
		m   Manifest
		err error
	}
	done := make(chan made, 1)
	go func() {
		m, err := writeArchive(ctx, pw, src, o, started)
		pw.CloseWithError(err) // nil: EOF for Put
		done <- made{m, err}
	}()
	h := sha256.New()
	cr := &countReader{r: io.TeeReader(pr, h)}
	perr := dst.Put(ctx, name, o.Progress.reader(ctx, "upload", -1, cr))
	pr.CloseWithError(errors.New("backup: upload ended")) // unblocks the writer if Put stopped early
	res := <-done
	if perr != nil {
		// The store's error first: the writer's is then only the closed
		// pipe (or the cause, which Put reports too).
		_ = dst.Delete(context.WithoutCancel(ctx), name)
		if res.err != nil && !errors.Is(perr, res.err) {
			return Created{}, fmt.Errorf("backup: storing %s in %s: %w (writer: %v)", name, dst, perr, res.err)
		}
		return Created{}, fmt.Errorf("backup: storing %s in %s: %w", name, dst, perr)
	}
	if res.err != nil {
		_ = dst.Delete(context.WithoutCancel(ctx), name)
		return Created{}, res.err
	}
	sum := hex.EncodeToString(h.Sum(nil))
	if err := dst.Put(ctx, name+SumSuffix, bytesReader([]byte(sum+"  "+name+"\n"))); err != nil {
		return Created{}, fmt.Errorf("backup: storing %s%s: %w", name, SumSuffix, err)
	}
	sb, err := json.MarshalIndent(res.m.Summary(name, cr.n, sum), "", "  ")
	if err != nil {
		return Created{}, fmt.Errorf("backup: encoding the summary: %w", err)
	}
	if err := dst.Put(ctx, name+SummarySuffix, bytesReader(append(sb, '\n'))); err != nil {
		return Created{}, fmt.Errorf("backup: storing %s%s: %w", name, SummarySuffix, err)
	}
	return Created{Name: name, Manifest: res.m, Size: cr.n, SHA256: sum}, nil
}

// writeArchive writes age(zstd(tar)) of the snapshot and files to w.
func writeArchive(ctx context.Context, w io.Writer, src Source, o CreateOptions, created time.Time) (Manifest, error) {
	ew, err := age.Encrypt(w, o.Recipients...)
	if err != nil {
		return Manifest{}, fmt.Errorf("backup: encrypting: %w", err)
	}
	a, err := newArchiveWriter(ew, created)
	if err != nil {
		return Manifest{}, err
	}
	m, err := src.snapshot(ctx, a, o.Progress)
	if err != nil {
		return Manifest{}, err
	}
	for _, f := range o.Files {
		if err := addDataFile(ctx, a, f, o.Progress); err != nil {
			return Manifest{}, err
		}
	}
	m.Format, m.Engine, m.Version, m.Created = FormatVersion, src.Engine(), o.Version, created
	m, err = a.finish(m, o.Sealer)
	if err != nil {
		return Manifest{}, err
	}
	if err := ew.Close(); err != nil {
		return Manifest{}, fmt.Errorf("backup: encrypting: %w", err)
	}
	return m, nil
}

func addDataFile(ctx context.Context, a *archiveWriter, f DataFile, p Progress) error {
	info, err := os.Lstat(f.Path)
	if err != nil {
		return fmt.Errorf("backup: data file %s: %w", f.Name, err)
	}
	if !info.Mode().IsRegular() {
		return fmt.Errorf("backup: data file %s is not a regular file", f.Name)
	}
	return addFile(ctx, a, dataPrefix+f.Name, f.Path, p)
}
