package keys

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tink-crypto/tink-go/v2/aead"
	"github.com/tink-crypto/tink-go/v2/keyset"

	"github.com/phivault/phivault/internal/ident"
	"github.com/phivault/phivault/internal/storage"
)

// Cache defaults, used for zero fields of [Options].
const (
	// DefaultCacheSize is the number of unwrapped DEKs kept. Each costs a
	// few KiB (Tink primitive and AES key schedule), so 10,000 is tens of
	// MiB: enough for the patients a busy clinic touches in ten minutes,
	// so the KEK (perhaps a Vault round trip) is rarely on the hot path.
	DefaultCacheSize = 10000

	// DefaultCacheTTL bounds how long an unwrapped DEK stays in memory
	// after it was unwrapped, however often it is used: it limits what a
	// memory dump exposes, and how long a KMS-side key disable takes to
	// bite, while keeping KEK calls to one per patient per ten minutes.
	DefaultCacheTTL = 10 * time.Minute
)

// Options configures a [Keyring]. The zero value means the defaults.
type Options struct {
	// CacheSize is the most unwrapped DEKs kept; 0 means
	// DefaultCacheSize and a negative value disables the cache.
	CacheSize int
	// CacheTTL is how long an unwrapped DEK is kept; 0 means
	// DefaultCacheTTL and a negative value disables the cache.
	CacheTTL time.Duration
	// Clock returns the current time; nil means time.Now.
	Clock func() time.Time
	// Destroyed, when set, reports whether a KEK epoch destroyed every
	// one of ids (the database's record, ADR 0015). A reloaded key file
	// that lacks keys this keyring holds is adopted only if Destroyed
	// vouches for each missing one; without it, never.
	Destroyed func(ids []uint32) bool
}

// Keyring unwraps, caches and rotates data-encryption keys under a KEK,
// and holds the system keys. It is safe for concurrent use.
type Keyring struct {
	_ noCompare

	kek       atomic.Pointer[KEK] // never nil; replaced by SetKEK
	cache     *dekCache
	sys       atomic.Pointer[systemKeys] // nil until LoadSystemKeys
	now       func() time.Time
	destroyed func(ids []uint32) bool // Options.Destroyed

	reloadMu   sync.Mutex // serialises key-file reloads
	lastReload time.Time  // guarded by reloadMu
}

// kekReloadInterval rate-limits re-reading the key file when a record is
// wrapped under a KEK key this process has not loaded (another process
// rotated the KEK, online): once a second picks up a rotation at once,
// while a flood of records with a bogus KEKID cannot turn every request
// into a file read.
const kekReloadInterval = time.Second

// NewKeyring returns a keyring over kek. kek must not be nil.
func NewKeyring(kek *KEK, opts Options) *Keyring {
	if kek == nil {
		panic("keys: NewKeyring with nil KEK")
	}
	size, ttl, now := opts.CacheSize, opts.CacheTTL, opts.Clock
	if size == 0 {
		size = DefaultCacheSize
	}
	if ttl == 0 {
		ttl = DefaultCacheTTL
	}
	if size < 0 || ttl < 0 {
		size, ttl = 0, 0
	}
	if now == nil {
		now = time.Now
	}
	k := &Keyring{cache: newDEKCache(size, ttl, now), now: now, destroyed: opts.Destroyed}
	k.kek.Store(kek)
	return k
}

// KEK returns the keyring's current key-encryption key.
func (k *Keyring) KEK() *KEK { return k.kek.Load() }

// SetKEK replaces the key-encryption key, e.g. with the reopened key file
// after [RotateKeyFile], so new wraps use its primary. kek must hold every
// key that wrapped a stored record (a rotated key file does); cached DEKs
// stay valid, since rewrapping does not change them. Calls in flight
// finish with the KEK they started with. kek must not be nil.
func (k *Keyring) SetKEK(kek *KEK) {
	if kek == nil {
		panic("keys: SetKEK with nil KEK")
	}
	k.kek.Store(kek)
}

// NewDEK creates a fresh AES-256-GCM DEK for owner ("Patient/<id>" or
// "org"), wraps it under the KEK's primary key bound to owner, and returns
// the record to store. The new DEK is also cached, so the first
// [Keyring.DEK] call on the record does not unwrap.
func (k *Keyring) NewDEK(owner ident.Owner, now time.Time) (storage.KeyRecord, error) {
	if err := checkDEKOwner(owner); err != nil {
		return storage.KeyRecord{}, fmt.Errorf("creating key: %w", err)
	}
	h, err := keyset.NewHandle(aead.AES256GCMKeyTemplate())
	if err != nil {
		return storage.KeyRecord{}, fmt.Errorf("creating key of %s: %w", owner, err)
	}
	rec, err := k.record(owner, h, now)
	if err != nil {
		return storage.KeyRecord{}, err
	}
	d, err := newDEK(owner, h)
	if err != nil {
		return storage.KeyRecord{}, err
	}
	k.cache.put(makeCacheKey(owner, rec.Wrapped), d)
	return k.AddLedgerSecret(rec)
}

// DEK returns the unwrapped DEK of rec, from the cache when rec's wrapped
// bytes were unwrapped less than the TTL ago. It returns an error wrapping
// [ErrShredded] if rec is shredded (checked before the cache), and
// wrapping [ErrDecrypt] if the wrapped key does not open under the KEK for
// rec.Owner (tampered, or copied from another owner).
func (k *Keyring) DEK(rec storage.KeyRecord) (*DEK, error) {
	if err := checkLive(rec); err != nil {
		return nil, err
	}
	if err := checkDEKOwner(rec.Owner); err != nil {
		return nil, fmt.Errorf("opening key: %w", err)
	}
	ck := makeCacheKey(rec.Owner, rec.Wrapped)
	if d, ok := k.cache.get(ck); ok {
		return d, nil
	}
	h, err := k.unwrap(rec)
	if err != nil {
		return nil, err
	}
	d, err := newDEK(rec.Owner, h)
	if err != nil {
		return nil, err
	}
	k.cache.put(ck, d)
	return d, nil
}

// DEKCacheStats returns how many DEK lookups the cache answered (hits)
// and how many had to unwrap the key (misses) since the Keyring was
// made. A disabled cache counts nothing. Safe for concurrent use.
func (k *Keyring) DEKCacheStats() (hits, misses uint64) {
	return k.cache.hits.Load(), k.cache.misses.Load()
}

// Forget drops every cached DEK of owner. Call it after shredding owner
// (other processes stop using the key as soon as they read the shredded
// record, since [Keyring.DEK] checks it first; their cached copy expires
// within the TTL).
func (k *Keyring) Forget(owner ident.Owner) { k.cache.forget(owner) }

// Rewrap re-wraps rec's keyset (a DEK, a system key, or the key of any
// other owner the record layer stores) under the KEK's
// current primary key and sets KEKID to it: the step of KEK rotation.
// The keyset itself is unchanged, so no ciphertext needs re-sealing.
// It always re-wraps; resumable rotation skips records whose KEKID
// already equals [KEK.PrimaryID]. Errors wrap [ErrShredded] or [ErrDecrypt].
func (k *Keyring) Rewrap(rec storage.KeyRecord) (storage.KeyRecord, error) {
	if err := checkLive(rec); err != nil {
		return storage.KeyRecord{}, err
	}
	// Any owner string is re-wrapped as it is (a KEK epoch must move
	// every record, whatever owners the record layer invents, e.g.
	// joint owners): the owner is bound as associated data either way.
	if rec.Owner == "" || len(rec.Owner) > maxRewrapOwnerLen {
		return storage.KeyRecord{}, fmt.Errorf("rewrapping key: owner of %d bytes", len(rec.Owner))
	}
	h, err := k.unwrap(rec)
	if err != nil {
		return storage.KeyRecord{}, err
	}
	out, err := k.record(rec.Owner, h, rec.Created)
	out.Ledger = rec.Ledger // sealed under the DEK, which is unchanged
	return out, err
}

// RotateDEK adds a fresh AES-256-GCM key to rec's DEK keyset and makes it
// primary. Old keys stay, so every existing ciphertext still opens; new
// seals use the new key. Store the returned record, then re-seal every
// version not [DEK.SealedWithPrimary], then call
// [Keyring.RetireOldDEKKeys]. Errors wrap [ErrShredded] or [ErrDecrypt].
func (k *Keyring) RotateDEK(rec storage.KeyRecord) (storage.KeyRecord, error) {
	return k.editDEK(rec, "rotating", func(m *keyset.Manager) error {
		id, err := m.Add(aead.AES256GCMKeyTemplate())
		if err != nil {
			return err
		}
		return m.SetPrimary(id)
	})
}

// RetireOldDEKKeys destroys every key of rec's DEK keyset but the primary,
// after every version has been re-sealed under it: ciphertexts of the old
// keys no longer open (ErrDecrypt). It also drops owner's cached DEKs, so
// the old keys leave memory now rather than at TTL expiry.
func (k *Keyring) RetireOldDEKKeys(rec storage.KeyRecord) (storage.KeyRecord, error) {
	out, err := k.editDEK(rec, "retiring old keys of", func(m *keyset.Manager) error {
		h, err := m.Handle()
		if err != nil {
			return err
		}
		for i := range h.Len() {
			e, err := h.Entry(i)
			if err != nil {
				return err
			}
			if !e.IsPrimary() {
				if err := m.Delete(e.KeyID()); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err == nil {
		k.Forget(rec.Owner)
	}
	return out, err
}

// editDEK unwraps rec's DEK, applies edit to its keyset and wraps the
// result under the KEK's primary key.
func (k *Keyring) editDEK(rec storage.KeyRecord, op string, edit func(*keyset.Manager) error) (storage.KeyRecord, error) {
	if err := checkLive(rec); err != nil {
		return storage.KeyRecord{}, err
	}
	if err := checkDEKOwner(rec.Owner); err != nil {
		return storage.KeyRecord{}, fmt.Errorf("%s key: %w", op, err)
	}
	h, err := k.unwrap(rec)
	if err != nil {
		return storage.KeyRecord{}, err
	}
	if err := checkAES256GCM(h); err != nil {
		return storage.KeyRecord{}, fmt.Errorf("%s key of %s: %w", op, rec.Owner, err)
	}
	m := keyset.NewManagerFromHandle(h)
	if err := edit(m); err != nil {
		return storage.KeyRecord{}, fmt.Errorf("%s key of %s: %w", op, rec.Owner, err)
	}
	nh, err := m.Handle()
	if err != nil {
		return storage.KeyRecord{}, fmt.Errorf("%s key of %s: %w", op, rec.Owner, err)
	}
	// The ledger secret follows the keyset's primary key (retiring the
	// old keys would otherwise lose it).
	sealed, err := resealLedger(rec.Owner, rec.Ledger, h, nh)
	if err != nil {
		return storage.KeyRecord{}, fmt.Errorf("%s key of %s: %w", op, rec.Owner, err)
	}
	out, err := k.record(rec.Owner, nh, rec.Created)
	out.Ledger = sealed
	return out, err
}

// unwrap opens rec's wrapped keyset under the KEK. If that fails and rec
// names a KEK key that the loaded key file lacks (another process, such as
// an online "keys rotate", added it), it reloads the key file, at most
// once per kekReloadInterval, and tries again. A reloaded file must hold
// every key of the old one, except keys that Options.Destroyed vouches a
// KEK epoch destroyed; otherwise it is ignored.
func (k *Keyring) unwrap(rec storage.KeyRecord) (*keyset.Handle, error) {
	kek := k.kek.Load()
	h, err := kek.unwrap(rec.Wrapped, rec.Owner)
	if err == nil || kek.path == "" || kek.ids[rec.KEKID] {
		return h, err
	}
	if nk := k.reloadKEK(kek); nk != nil {
		return nk.unwrap(rec.Wrapped, rec.Owner)
	}
	return nil, err
}

// reloadKEK re-reads the key file of old and installs it if it is a
// superset of old, or lacks only keys an epoch destroyed. It returns the
// KEK to retry with, or nil.
func (k *Keyring) reloadKEK(old *KEK) *KEK {
	k.reloadMu.Lock()
	defer k.reloadMu.Unlock()
	if cur := k.kek.Load(); cur != old {
		return cur // reloaded (or rotated) while we waited
	}
	now := k.now()
	if !k.lastReload.IsZero() && now.Sub(k.lastReload) < kekReloadInterval {
		return nil
	}
	k.lastReload = now
	nk, err := openFileKEK(old.path)
	if err != nil {
		return nil
	}
	var missing []uint32
	for id := range old.ids {
		if !nk.ids[id] {
			missing = append(missing, id)
		}
	}
	if len(missing) > 0 && (k.destroyed == nil || !k.destroyed(missing)) {
		return nil
	}
	k.kek.Store(nk)
	return nk
}

// record wraps h for owner into a key record.
func (k *Keyring) record(owner ident.Owner, h *keyset.Handle, created time.Time) (storage.KeyRecord, error) {
	kek := k.kek.Load()
	w, err := kek.wrap(h, owner)
	if err != nil {
		return storage.KeyRecord{}, err
	}
	return storage.KeyRecord{Owner: owner, Wrapped: w, KEKID: kek.PrimaryID(), Created: created.UTC()}, nil
}

// checkLive returns an error wrapping ErrShredded for a destroyed record.
func checkLive(rec storage.KeyRecord) error {
	if rec.Shredded || rec.Wrapped == nil {
		return fmt.Errorf("opening key of %s: %w", rec.Owner, ErrShredded)
	}
	return nil
}

// maxRewrapOwnerLen bounds the owner Rewrap accepts: far above any owner
// phivault writes ("Patient/" and a 64-character id, a system key name,
// a joint owner's hash), so a corrupted row cannot make it bind megabytes.
const maxRewrapOwnerLen = 1024

// String implements [fmt.Stringer] without key material.
func (k *Keyring) String() string {
	return fmt.Sprintf("keys.Keyring{kek=%s, cached=%d}", k.kek.Load().desc, k.cache.len())
}

// GoString keeps %#v from printing fields.
func (k *Keyring) GoString() string { return k.String() }

// LogValue implements [slog.LogValuer] without key material.
func (k *Keyring) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("kek", k.kek.Load().desc),
		slog.Int("cached_deks", k.cache.len()),
		slog.Bool("system_keys", k.sys.Load() != nil),
	)
}

// RecordFingerprint names a wrapped key record's bytes (a truncated
// SHA-256, hex): an alert about a record that opens under no KEK key
// is raised once per distinct content.
func RecordFingerprint(rec storage.KeyRecord) string {
	sum := sha256.Sum256(rec.Wrapped)
	return hex.EncodeToString(sum[:12])
}
