package keys

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

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
	h, err := readKeyFile(path)
	if err != nil {
		return 0, fmt.Errorf("rotating key file: %w", err)
	}
	m := keyset.NewManagerFromHandle(h)
	id, err := m.Add(aead.AES256GCMKeyTemplate())
	if err != nil {
		return 0, fmt.Errorf("rotating key file %s: adding key: %w", path, err)
	}
	if err := m.SetPrimary(id); err != nil {
		return 0, fmt.Errorf("rotating key file %s: %w", path, err)
	}
	nh, err := m.Handle()
	if err != nil {
		return 0, fmt.Errorf("rotating key file %s: %w", path, err)
	}
	var buf bytes.Buffer
	if err := insecurecleartextkeyset.Write(nh, keyset.NewJSONWriter(&buf)); err != nil {
		return 0, fmt.Errorf("rotating key file %s: encoding keyset: %w", path, err)
	}
	if err := replaceFile(path, buf.Bytes()); err != nil {
		return 0, fmt.Errorf("rotating key file %s: %w", path, err)
	}
	return id, nil
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
// it over path, so a crash leaves either the old or the new file.
func replaceFile(path string, data []byte) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
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
	if err := os.Rename(tmp, path); err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("replacing file: %w", err)
	}
	return syncDir(dir)
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
