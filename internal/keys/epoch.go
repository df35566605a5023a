package keys

import (
	"errors"
	"fmt"
	"maps"
	"slices"

	"github.com/tink-crypto/tink-go/v2/aead"
	"github.com/tink-crypto/tink-go/v2/keyset"

	"github.com/phivault/phivault/internal/storage"
)

// ErrKEKMismatch means the key file does not hold the KEK key the
// database says is in force (a KEK epoch moved on and this process's
// copy of the key file was not replaced yet). Callers log it with the
// path and retry later; wrapping under the stale key would be refused.
var ErrKEKMismatch = errors.New("keys: key file is not at the KEK epoch in force")

// KeyIDs returns the Tink key ids of the key file's keys, sorted, or nil
// for a KMS KEK.
func (k *KEK) KeyIDs() []uint32 {
	if k.ids == nil {
		return nil
	}
	out := make([]uint32, 0, len(k.ids))
	for id := range k.ids {
		out = append(out, id)
	}
	slices.Sort(out)
	return out
}

// Has reports whether the key file holds the key id (false for a KMS).
func (k *KEK) Has(id uint32) bool { return k.ids[id] }

// IsKMS reports whether the KEK lives in a KMS rather than a key file.
func (k *KEK) IsKMS() bool { return k.path == "" }

// Path returns the key file's path, or "" for a KMS.
func (k *KEK) Path() string { return k.path }

// CheckWrappedByPrimary reports whether rec's wrapped keyset opens under
// the KEK's primary key alone: the check a KEK epoch runs on every live
// record before it destroys the other keys, so that no record is left
// that only a destroyed key opens. For a KMS it unwraps with the KMS key.
// The error wraps [ErrShredded] or [ErrDecrypt].
func (k *KEK) CheckWrappedByPrimary(rec storage.KeyRecord) error {
	if err := checkLive(rec); err != nil {
		return err
	}
	only := k
	if k.h != nil && len(k.ids) > 1 {
		var err error
		if only, err = k.primaryOnly(); err != nil {
			return err
		}
	}
	_, err := only.unwrap(rec.Wrapped, rec.Owner)
	return err
}

// primaryOnly returns a KEK holding just k's primary key.
func (k *KEK) primaryOnly() (*KEK, error) {
	m := keyset.NewManagerFromHandle(k.h)
	for id := range k.ids {
		if id != k.primary {
			if err := m.Delete(id); err != nil {
				return nil, fmt.Errorf("restricting KEK to its primary: %w", err)
			}
		}
	}
	h, err := m.Handle()
	if err != nil {
		return nil, fmt.Errorf("restricting KEK to its primary: %w", err)
	}
	a, err := aead.New(h)
	if err != nil {
		return nil, fmt.Errorf("restricting KEK to its primary: %w", err)
	}
	return &KEK{aead: a, primary: k.primary, desc: k.desc, path: k.path, ids: map[uint32]bool{k.primary: true}, h: h}, nil
}

// DestroyKEKKeys removes the keys ids from the key file at path: the last
// step of a KEK epoch, after every live record was re-wrapped under the
// primary and checked. Every copy of a data key wrapped under a removed
// key (in free pages, WAL, dead tuples, replicas, backups) becomes
// useless to whoever holds the new file. It refuses to remove the
// primary key; ids the file no longer holds are skipped, so a run
// interrupted after the write does nothing more when repeated. The file
// is replaced atomically with mode 0600, the replaced file's bytes are
// overwritten, and temporary files left by interrupted writes are
// scrubbed (see replaceFile). It returns how many keys it removed.
func DestroyKEKKeys(path string, ids []uint32) (removed int, err error) {
	h, err := readKeyFile(path)
	if err != nil {
		return 0, fmt.Errorf("destroying KEK keys: %w", err)
	}
	p, err := h.Primary()
	if err != nil {
		return 0, fmt.Errorf("destroying KEK keys of %s: %w", path, err)
	}
	present := make(map[uint32]bool, h.Len())
	for i := range h.Len() {
		e, err := h.Entry(i)
		if err != nil {
			return 0, fmt.Errorf("destroying KEK keys of %s: %w", path, err)
		}
		present[e.KeyID()] = true
	}
	m := keyset.NewManagerFromHandle(h)
	for _, id := range ids {
		if id == p.KeyID() {
			return 0, fmt.Errorf("destroying KEK keys of %s: key %d is the primary", path, id)
		}
		if !present[id] {
			continue
		}
		if err := m.Delete(id); err != nil {
			return 0, fmt.Errorf("destroying KEK key %d of %s: %w", id, path, err)
		}
		present[id] = false
		removed++
	}
	if removed == 0 {
		// Still scrub what an interrupted write may have left.
		if err := scrubStaleTemps(path); err != nil {
			return 0, fmt.Errorf("destroying KEK keys of %s: %w", path, err)
		}
		return 0, nil
	}
	if err := writeKeyFile(path, m); err != nil {
		return 0, fmt.Errorf("destroying KEK keys of %s: %w", path, err)
	}
	return removed, nil
}

// ReloadKEK re-reads the key file and installs it if accept approves its
// primary key id: the KEK epoch job's follower passes "not retired" (the
// database's fence), once this process's own primary was retired. Unlike
// the reload on an unknown KEKID, the new file need not hold every key
// of the old one: the database vouches for it, since an epoch destroys
// retired keys only after every record was re-wrapped under the primary
// in force. It reports whether it installed a new KEK; it returns an
// error wrapping [ErrKEKMismatch] if accept refuses the file's primary
// (the file was not replaced yet on this machine). A KMS KEK is left
// alone.
func (k *Keyring) ReloadKEK(accept func(primary uint32) bool) (bool, error) {
	k.reloadMu.Lock()
	defer k.reloadMu.Unlock()
	cur := k.kek.Load()
	if cur.path == "" {
		return false, nil
	}
	nk, err := openFileKEK(cur.path)
	if err != nil {
		return false, fmt.Errorf("reloading the key file: %w", err)
	}
	if nk.primary == cur.primary && maps.Equal(nk.ids, cur.ids) {
		return false, nil
	}
	if !accept(nk.primary) {
		return false, fmt.Errorf("reloading the key file %s: its primary %d is retired too: %w", cur.path, nk.primary, ErrKEKMismatch)
	}
	k.kek.Store(nk)
	return true, nil
}

// Opens reports whether rec's wrapped keyset opens under any key of the
// KEK (for a key file: every key it holds, retired ones included, not
// only the one rec.KEKID names). The error wraps [ErrShredded] or
// [ErrDecrypt]; a live record failing with ErrDecrypt protects nothing
// this KEK can open (tampered, planted, copied from another owner, or
// wrapped under a key already destroyed).
func (k *KEK) Opens(rec storage.KeyRecord) error {
	if err := checkLive(rec); err != nil {
		return err
	}
	_, err := k.unwrap(rec.Wrapped, rec.Owner)
	return err
}
