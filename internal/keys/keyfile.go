package keys

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/tink-crypto/tink-go/v2/aead"
	"github.com/tink-crypto/tink-go/v2/aead/aesgcm"
	"github.com/tink-crypto/tink-go/v2/insecurecleartextkeyset"
	"github.com/tink-crypto/tink-go/v2/keyset"
)

// Key-file limits.
const (
	// keyFileMode is the only mode a key file is created with, and the
	// widest one OpenKEK accepts: the file is the root of trust, so no
	// group or other bit may be set (as OpenSSH insists for private keys).
	keyFileMode os.FileMode = 0o600

	// maxKeyFileSize caps what OpenKEK reads. A keyset of AES-256-GCM keys
	// takes about 150 bytes of JSON per key; 1 MiB allows thousands of
	// rotations and stops a wrong path (a disk image) from being slurped.
	maxKeyFileSize = 1 << 20
)

// The local key file is written and read with insecurecleartextkeyset:
// it IS the root of trust, so there is nothing to encrypt it under. It is
// protected by its mode (0600, checked on open), by O_EXCL creation, and
// by being stored apart from the database and its backups; an attacker
// needs both the file and the database. Deployments that cannot keep such
// a file use a KMS URI instead.

// CreateKeyFile creates a new key file at path holding a Tink keyset with
// one AES-256-GCM key. The file is created with O_EXCL and mode 0600: it
// refuses to overwrite an existing file, returning an error that wraps
// [fs.ErrExist], because overwriting a key file destroys every patient's
// data. The parent directory must exist.
func CreateKeyFile(path string) error {
	h, err := keyset.NewHandle(aead.AES256GCMKeyTemplate())
	if err != nil {
		return fmt.Errorf("creating key file %s: generating key: %w", path, err)
	}
	var buf bytes.Buffer
	if err := insecurecleartextkeyset.Write(h, keyset.NewJSONWriter(&buf)); err != nil {
		return fmt.Errorf("creating key file %s: encoding keyset: %w", path, err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, keyFileMode)
	if err != nil {
		return fmt.Errorf("creating key file: %w", err)
	}
	if err := writeAndSync(f, buf.Bytes()); err != nil {
		_ = os.Remove(path)
		return fmt.Errorf("creating key file %s: %w", path, err)
	}
	return syncDir(filepath.Dir(path))
}

// RotateKeyFile adds a fresh AES-256-GCM key to the key file at path and
// makes it primary. Old keys stay, so every key wrapped under them still
// opens; run [Keyring.Rewrap] over all key records afterwards. The file is
// replaced atomically (a 0600 temporary file in the same directory, fsync,
// rename, fsync of the directory). It returns the new primary key id.
//
// RotateKeyFile is an operator command: two concurrent rotations of one
// file lose one of the new keys (harmless while nothing was wrapped under
// it, since the running servers only learn of it on restart).
func RotateKeyFile(path string) (newPrimary uint32, err error) {
	return AddKEKKey(path, nil)
}

// AddKEKKey is [RotateKeyFile] with a new key id for which avoid (if not
// nil) reports false: the ids of retired KEK keys, which the database
// refuses as wrapping keys (see "KEK epochs" in the package doc), are
// never reused.
func AddKEKKey(path string, avoid func(uint32) bool) (newPrimary uint32, err error) {
	h, err := readKeyFile(path)
	if err != nil {
		return 0, fmt.Errorf("rotating key file: %w", err)
	}
	m := keyset.NewManagerFromHandle(h)
	var id uint32
	// A clash with avoid has probability n/2^32 per try; 16 tries
	// cannot all clash unless avoid is broken.
	for try := 0; ; try++ {
		if id, err = m.Add(aead.AES256GCMKeyTemplate()); err != nil {
			return 0, fmt.Errorf("rotating key file %s: adding key: %w", path, err)
		}
		if avoid == nil || !avoid(id) {
			break
		}
		if err := m.Delete(id); err != nil || try == 15 {
			return 0, fmt.Errorf("rotating key file %s: no fresh key id", path)
		}
	}
	if err := m.SetPrimary(id); err != nil {
		return 0, fmt.Errorf("rotating key file %s: %w", path, err)
	}
	if err := writeKeyFile(path, m); err != nil {
		return 0, fmt.Errorf("rotating key file %s: %w", path, err)
	}
	return id, nil
}

// writeKeyFile encodes m's keyset and replaces the file at path with it.
func writeKeyFile(path string, m *keyset.Manager) error {
	nh, err := m.Handle()
	if err != nil {
		return err
	}
	if err := checkAES256GCM(nh); err != nil {
		return err
	}
	var buf bytes.Buffer
	if err := insecurecleartextkeyset.Write(nh, keyset.NewJSONWriter(&buf)); err != nil {
		return fmt.Errorf("encoding keyset: %w", err)
	}
	return replaceFile(path, buf.Bytes())
}

// readKeyFile opens, checks and parses a key file.
func readKeyFile(path string) (*keyset.Handle, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("opening key file: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("opening key file: %w", err)
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("opening key file %s: not a regular file", path)
	}
	if perm := st.Mode().Perm(); perm&^keyFileMode != 0 {
		return nil, fmt.Errorf("opening key file %s: mode %04o is too open, want 0600 (chmod 600 %s)", path, perm, path)
	}
	data, err := io.ReadAll(io.LimitReader(f, maxKeyFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("reading key file %s: %w", path, err)
	}
	if len(data) > maxKeyFileSize {
		return nil, fmt.Errorf("reading key file %s: larger than %d bytes", path, maxKeyFileSize)
	}
	// Tink's parse errors describe the JSON structure, never key bytes.
	h, err := insecurecleartextkeyset.Read(keyset.NewJSONReader(bytes.NewReader(data)))
	if err != nil {
		return nil, fmt.Errorf("parsing key file %s: not a Tink JSON keyset", path)
	}
	if err := checkAES256GCM(h); err != nil {
		return nil, fmt.Errorf("parsing key file %s: %w", path, err)
	}
	return h, nil
}

// checkAES256GCM reports an error unless every key in h is AES-256-GCM
// with Tink's key-id prefix: a keyset of another type, or with a weaker
// key size, is refused rather than silently used.
func checkAES256GCM(h *keyset.Handle) error {
	if h.Len() == 0 {
		return errors.New("empty keyset")
	}
	for i := range h.Len() {
		e, err := h.Entry(i)
		if err != nil {
			return fmt.Errorf("reading keyset entry %d: %w", i, err)
		}
		k, ok := e.Key().(*aesgcm.Key)
		if !ok {
			return fmt.Errorf("key %d is not AES-GCM", e.KeyID())
		}
		p, ok := k.Parameters().(*aesgcm.Parameters)
		if !ok || p.KeySizeInBytes() != 32 || p.Variant() != aesgcm.VariantTink {
			return fmt.Errorf("key %d is not AES-256-GCM with a Tink prefix", e.KeyID())
		}
	}
	return nil
}

// replaceFile writes data to a 0600 temporary file beside path and renames
// it over path, so a crash leaves either the old or the new file. The
// old file's bytes are then overwritten with zeros through a descriptor
// kept open across the rename, so a retired key does not stay readable
// in an unlinked inode that a process or a backup agent still holds.
// (File systems that copy on write, and SSDs that remap blocks, may keep
// the old blocks anyway: docs/adr/0015 says what follows.) Temporary
// files left by an earlier crash are scrubbed first.
func replaceFile(path string, data []byte) error {
	dir := filepath.Dir(path)
	if err := scrubStaleTemps(path); err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, tempPrefix(path)+"*")
	if err != nil {
		return fmt.Errorf("creating temporary file: %w", err)
	}
	tmp := f.Name()
	if err := f.Chmod(keyFileMode); err != nil {
		f.Close()
		_ = os.Remove(tmp)
		return fmt.Errorf("setting mode of temporary file: %w", err)
	}
	if err := writeAndSync(f, data); err != nil {
		_ = os.Remove(tmp)
		return err
	}
	old, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		_ = os.Remove(tmp)
		return fmt.Errorf("opening the old file: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		_ = os.Remove(tmp)
		if old != nil {
			old.Close()
		}
		return fmt.Errorf("replacing file: %w", err)
	}
	if err := syncDir(dir); err != nil {
		if old != nil {
			old.Close()
		}
		return err
	}
	if old != nil {
		if err := zeroAndClose(old); err != nil {
			return fmt.Errorf("scrubbing the replaced file: %w", err)
		}
	}
	return nil
}

// tempPrefix is the name prefix of replaceFile's temporary files.
func tempPrefix(path string) string { return "." + filepath.Base(path) + ".tmp-" }

// scrubStaleTemps zeroes and removes the temporary files an interrupted
// replaceFile left beside path: each may hold keys since retired.
func scrubStaleTemps(path string) error {
	dir := filepath.Dir(path)
	matches, err := filepath.Glob(filepath.Join(dir, globEscape(tempPrefix(path))+"*"))
	if err != nil {
		return fmt.Errorf("listing stale temporary files: %w", err)
	}
	for _, m := range matches {
		f, err := os.OpenFile(m, os.O_WRONLY, 0)
		if err == nil {
			err = zeroAndClose(f)
		}
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("scrubbing stale temporary file %s: %w", filepath.Base(m), err)
		}
		if err := os.Remove(m); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("removing stale temporary file %s: %w", filepath.Base(m), err)
		}
	}
	if len(matches) > 0 {
		return syncDir(dir)
	}
	return nil
}

// globEscape escapes the glob metacharacters of a literal file name.
func globEscape(s string) string {
	var b strings.Builder
	for _, r := range s {
		if strings.ContainsRune(`*?[\`, r) {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}

// zeroAndClose overwrites f's content with zeros, fsyncs and closes it.
func zeroAndClose(f *os.File) error {
	st, err := f.Stat()
	if err == nil {
		_, err = f.WriteAt(make([]byte, st.Size()), 0)
	}
	if err == nil {
		err = f.Sync()
	}
	return errors.Join(err, f.Close())
}

// writeAndSync writes data, fsyncs and closes f.
func writeAndSync(f *os.File, data []byte) error {
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("writing: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("syncing: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("closing: %w", err)
	}
	return nil
}

// syncDir makes a create or rename in dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("syncing directory: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("syncing directory %s: %w", dir, err)
	}
	return nil
}
