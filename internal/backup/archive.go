package backup

import (
	"archive/tar"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/klauspost/compress/zstd"
)

// The archive is a tar stream, compressed with zstd, encrypted with age:
// age(zstd(tar)). Its entries are the snapshot's files and, last,
// manifest.json with the SHA-256 of each. Every entry is a regular file;
// names are checked by validEntryName before anything is written.

// chunkSize is the largest entry a streamed table is cut into: a tar
// entry needs its size up front, and a COPY stream has none, so the
// stream is buffered a chunk at a time (memory, never a file).
const chunkSize = 8 << 20

// maxDecoderMemory bounds zstd's window when reading an archive someone
// else may have made (anyone holding the recipient can encrypt to it).
const maxDecoderMemory = 256 << 20

// archiveWriter writes the tar entries and remembers their hashes.
type archiveWriter struct {
	tw    *tar.Writer
	zw    *zstd.Encoder
	files []File
	now   time.Time
}

func newArchiveWriter(w io.Writer, now time.Time) (*archiveWriter, error) {
	zw, err := zstd.NewWriter(w, zstd.WithEncoderLevel(zstd.SpeedDefault))
	if err != nil {
		return nil, fmt.Errorf("backup: compressing: %w", err)
	}
	return &archiveWriter{tw: tar.NewWriter(zw), zw: zw, now: now}, nil
}

// add writes one entry of size bytes read from r.
func (a *archiveWriter) add(name string, size int64, r io.Reader) error {
	if err := validEntryName(name); err != nil {
		return err
	}
	hdr := &tar.Header{Typeflag: tar.TypeReg, Name: name, Size: size, Mode: 0o600, ModTime: a.now, Format: tar.FormatPAX}
	if err := a.tw.WriteHeader(hdr); err != nil {
		return fmt.Errorf("backup: archiving %s: %w", name, err)
	}
	h := sha256.New()
	n, err := io.Copy(a.tw, io.TeeReader(io.LimitReader(r, size), h))
	if err != nil {
		return fmt.Errorf("backup: archiving %s: %w", name, err)
	}
	if n != size {
		return fmt.Errorf("backup: archiving %s: %d of %d bytes (changed while read?)", name, n, size)
	}
	a.files = append(a.files, File{Name: name, Size: size, SHA256: hex.EncodeToString(h.Sum(nil))})
	return nil
}

// finish writes the manifest (with the files' hashes) and its seal, and
// closes the tar and zstd streams (not the writer under them).
func (a *archiveWriter) finish(m Manifest, sealer ManifestSealer) (Manifest, error) {
	m.Files = a.files
	if err := m.check(); err != nil {
		return Manifest{}, fmt.Errorf("backup: the manifest written would not parse: %w", err)
	}
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return Manifest{}, fmt.Errorf("backup: encoding the manifest: %w", err)
	}
	hdr := &tar.Header{Typeflag: tar.TypeReg, Name: manifestName, Size: int64(len(b)), Mode: 0o600, ModTime: a.now, Format: tar.FormatPAX}
	if err := a.tw.WriteHeader(hdr); err != nil {
		return Manifest{}, fmt.Errorf("backup: writing the manifest: %w", err)
	}
	if _, err := a.tw.Write(b); err != nil {
		return Manifest{}, fmt.Errorf("backup: writing the manifest: %w", err)
	}
	digest := sha256.Sum256(b)
	seal, err := sealer.SealBackupManifest(digest[:])
	if err != nil {
		return Manifest{}, fmt.Errorf("backup: sealing the manifest: %w", err)
	}
	hdr = &tar.Header{Typeflag: tar.TypeReg, Name: sealName, Size: int64(len(seal)), Mode: 0o600, ModTime: a.now, Format: tar.FormatPAX}
	if err := a.tw.WriteHeader(hdr); err != nil {
		return Manifest{}, fmt.Errorf("backup: writing the manifest's seal: %w", err)
	}
	if _, err := a.tw.Write(seal); err != nil {
		return Manifest{}, fmt.Errorf("backup: writing the manifest's seal: %w", err)
	}
	if err := a.tw.Close(); err != nil {
		return Manifest{}, fmt.Errorf("backup: closing the archive: %w", err)
	}
	if err := a.zw.Close(); err != nil {
		return Manifest{}, fmt.Errorf("backup: closing the compression: %w", err)
	}
	return m, nil
}

// chunker cuts a stream of unknown length into entries prefix/00000001,
// prefix/00000002, ... of at most chunkSize bytes.
type chunker struct {
	a      *archiveWriter
	prefix string
	buf    []byte
	n      int
}

func (c *chunker) Write(p []byte) (int, error) {
	total := len(p)
	for len(p) > 0 {
		k := min(len(p), chunkSize-len(c.buf))
		c.buf = append(c.buf, p[:k]...)
		p = p[k:]
		if len(c.buf) == chunkSize {
			if err := c.flush(); err != nil {
				return 0, err
			}
		}
	}
	return total, nil
}

// flush writes the buffer as the next chunk (also an empty one, so that
// an empty table still has its entry).
func (c *chunker) flush() error {
	c.n++
	name := fmt.Sprintf("%s/%08d", c.prefix, c.n)
	err := c.a.add(name, int64(len(c.buf)), bytesReader(c.buf))
	c.buf = c.buf[:0]
	return err
}

// close flushes what is left (the first chunk even when empty).
func (c *chunker) close() error {
	if len(c.buf) > 0 || c.n == 0 {
		return c.flush()
	}
	return nil
}

// ErrCorrupt means the archive's content does not match its manifest, or
// is not an archive of this format: tampered, truncated or made by
// something else. The message names the entry.
var ErrCorrupt = errors.New("backup: archive content does not match its manifest")

// entryFunc receives each entry but the manifest, in order; it must read
// r to its end (readArchive hashes what it reads).
type entryFunc func(name string, size int64, r io.Reader) error

// archived is what readArchive found: the checked manifest, the SHA-256
// of its bytes and the seal that followed it (nil when none).
type archived struct {
	m      Manifest
	digest [sha256.Size]byte
	seal   []byte
}

// readArchive reads a decrypted archive: it calls fn for every entry
// (checking names and that no entry is listed twice), hashes it, then
// parses the manifest and checks that it lists exactly the entries read,
// with their sizes and hashes. Nothing in the archive is trusted before
// that final check, and before the caller checked the seal: fn must keep
// its output provisional until then. The decompressed stream may not
// exceed budget bytes (ErrTooLarge): an entry announcing more fails
// before fn sees it.
func readArchive(r io.Reader, fn entryFunc, budget int64) (archived, error) {
	zr, err := zstd.NewReader(r, zstd.WithDecoderMaxMemory(maxDecoderMemory), zstd.WithDecoderConcurrency(1))
	if err != nil {
		return archived{}, fmt.Errorf("backup: decompressing: %w", err)
	}
	defer zr.Close()
	capped := &capReader{r: zr, left: budget, budget: budget}
	tr := tar.NewReader(capped)
	got := make(map[string]File)
	var order []string
	var manifest, seal []byte
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if errors.Is(err, ErrTooLarge) {
			return archived{}, err
		}
		if err != nil {
			return archived{}, fmt.Errorf("%w: reading the archive: %v", ErrCorrupt, err)
		}
		if hdr.Typeflag != tar.TypeReg {
			return archived{}, fmt.Errorf("%w: entry %q is not a regular file", ErrCorrupt, hdr.Name)
		}
		if hdr.Size > capped.left {
			return archived{}, fmt.Errorf("%w: entry %q announces %d bytes, more than the %d bytes this archive may expand to", ErrTooLarge, hdr.Name, hdr.Size, budget)
		}
		if seal != nil || (manifest != nil && hdr.Name != sealName) {
			return archived{}, fmt.Errorf("%w: entry %q after the manifest", ErrCorrupt, hdr.Name)
		}
		if hdr.Name == sealName {
			if manifest == nil || hdr.Size > maxSealBytes {
				return archived{}, fmt.Errorf("%w: misplaced or oversized manifest seal", ErrCorrupt)
			}
			if seal, err = io.ReadAll(tr); err != nil {
				return archived{}, fmt.Errorf("%w: reading the manifest's seal: %v", ErrCorrupt, err)
			}
			continue
		}
		if hdr.Name == manifestName {
			if hdr.Size > maxManifestBytes {
				return archived{}, fmt.Errorf("%w: manifest of %d bytes", ErrCorrupt, hdr.Size)
			}
			if manifest, err = io.ReadAll(tr); err != nil {
				return archived{}, fmt.Errorf("%w: reading the manifest: %v", ErrCorrupt, err)
			}
			continue
		}
		if err := validEntryName(hdr.Name); err != nil {
			return archived{}, fmt.Errorf("%w: %v", ErrCorrupt, err)
		}
		if _, dup := got[hdr.Name]; dup || len(got) >= maxFiles {
			return archived{}, fmt.Errorf("%w: entry %q repeated or too many entries", ErrCorrupt, hdr.Name)
		}
		h := sha256.New()
		cr := &countReader{r: io.TeeReader(tr, h)}
		if err := fn(hdr.Name, hdr.Size, cr); err != nil {
			return archived{}, &sinkError{err}
		}
		if _, err := io.Copy(io.Discard, cr); err != nil { // what fn left
			if errors.Is(err, ErrTooLarge) {
				return archived{}, err
			}
			return archived{}, fmt.Errorf("%w: reading %s: %v", ErrCorrupt, hdr.Name, err)
		}
		got[hdr.Name] = File{Name: hdr.Name, Size: cr.n, SHA256: hex.EncodeToString(h.Sum(nil))}
		order = append(order, hdr.Name)
	}
	if manifest == nil {
		return archived{}, fmt.Errorf("%w: no manifest (truncated?)", ErrCorrupt)
	}
	m, err := ParseManifest(manifest)
	if err != nil {
		return archived{}, fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
	if len(m.Files) != len(got) {
		return archived{}, fmt.Errorf("%w: the manifest lists %d files, the archive holds %d", ErrCorrupt, len(m.Files), len(got))
	}
	for i, f := range m.Files {
		g, ok := got[f.Name]
		switch {
		case !ok:
			return archived{}, fmt.Errorf("%w: %s is missing", ErrCorrupt, f.Name)
		case order[i] != f.Name:
			return archived{}, fmt.Errorf("%w: %s is out of order", ErrCorrupt, f.Name)
		case g.Size != f.Size || g.SHA256 != f.SHA256:
			return archived{}, fmt.Errorf("%w: %s has SHA-256 %s, the manifest says %s", ErrCorrupt, f.Name, g.SHA256, f.SHA256)
		}
	}
	return archived{m: m, digest: sha256.Sum256(manifest), seal: seal}, nil
}

// sinkError is an error of the entryFunc (the restore target, a
// temporary file), not of the archive: it is reported as it is, never as
// ErrCorrupt.
type sinkError struct{ err error }

func (e *sinkError) Error() string { return e.err.Error() }
func (e *sinkError) Unwrap() error { return e.err }

type countReader struct {
	r io.Reader
	n int64
}

func (c *countReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}
