package lifecycle

import (
	"context"
	"fmt"
	"strings"

	"github.com/phivault/phivault/internal/ident"
	"github.com/phivault/phivault/internal/keys"
	"github.com/phivault/phivault/internal/storage"
)

// isDataOwner reports whether owner names a DEK (not a system key).
func isDataOwner(owner ident.Owner) bool {
	return !strings.HasPrefix(string(owner), ident.SystemPrefix)
}

// RotateKEK rotates the key-encryption key and re-wraps every data and
// system key under the new primary. It is online (the server keeps
// serving: records are replaced one transaction at a time and old KEK
// keys stay in the key file, so every wrap opens at every moment) and
// resumable: if records wrapped under an older KEK remain, it finishes
// those instead of rotating again.
func (m *Manager) RotateKEK(ctx context.Context, progress Progress) (rotated bool, rewrapped int64, err error) {
	if m.cfg.KeyFile == "" {
		return false, 0, ErrKMSRotation
	}
	// A KEK epoch writes the key file and fences keys: a rotation beside
	// one would change the primary under it (epoch.go).
	st, err := m.ErasureStatus(ctx)
	if err != nil {
		return false, 0, err
	}
	if e, ok := st.InProgress(); ok {
		return false, 0, fmt.Errorf("KEK epoch %d is %s: finish it first (phivault keys shred-epoch)", e.Epoch, e.State)
	}
	retired := make(map[uint32]bool, len(st.Retired))
	for _, r := range st.Retired {
		retired[r.KEKID] = true
	}
	var recs []storage.KeyRecord
	if err := m.store.ScanKeys(ctx, func(r storage.KeyRecord) error {
		if !r.Shredded {
			recs = append(recs, r)
		}
		return nil
	}); err != nil {
		return false, 0, fmt.Errorf("listing keys: %w", err)
	}
	primary := m.keys.KEK().PrimaryID()
	stale := 0
	for _, r := range recs {
		if r.KEKID != primary {
			stale++
		}
	}
	if stale == 0 {
		if _, err := keys.AddKEKKey(m.cfg.KeyFile, func(id uint32) bool { return retired[id] }); err != nil {
			return false, 0, fmt.Errorf("rotating the key file: %w", err)
		}
		kek, err := keys.OpenKEK(ctx, keys.KEKSource{KeyFile: m.cfg.KeyFile}, nil)
		if err != nil {
			return false, 0, fmt.Errorf("reopening the rotated key file: %w", err)
		}
		m.keys.SetKEK(kek)
		primary, rotated = kek.PrimaryID(), true
	}
	total := int64(len(recs))
	for i, r := range recs {
		if err := ctx.Err(); err != nil {
			return rotated, rewrapped, err
		}
		err := m.store.Update(ctx, func(tx storage.Tx) error {
			cur, err := tx.Key(ctx, r.Owner)
			if err != nil || cur.Shredded || cur.KEKID == primary {
				return err
			}
			nr, err := m.keys.Rewrap(cur)
			if err != nil {
				return err
			}
			if err := tx.ReplaceKey(ctx, nr); err != nil {
				return err
			}
			rewrapped++
			return nil
		})
		if err != nil {
			return rotated, rewrapped, fmt.Errorf("re-wrapping the key of %s: %w", r.Owner, err)
		}
		if progress != nil {
			progress("re-wrapping data keys", int64(i+1), total)
		}
	}
	err = m.auditKeyOp(ctx, "kek")
	return rotated, rewrapped, err
}

// RotateDEKs gives owner (or every owner when owner is "") a new primary
// data key, re-seals every stored version under it, then destroys the old
// keys. Writes always read the key record inside their transaction, so
// they seal with the new primary while this runs. Re-running after an
// interruption completes the work (each step is idempotent).
func (m *Manager) RotateDEKs(ctx context.Context, owner ident.Owner, progress Progress) (resealed int64, err error) {
	var owners []ident.Owner
	if err := m.store.ScanKeys(ctx, func(r storage.KeyRecord) error {
		if !r.Shredded && isDataOwner(r.Owner) && (owner == "" || r.Owner == owner) {
			owners = append(owners, r.Owner)
		}
		return nil
	}); err != nil {
		return 0, fmt.Errorf("listing keys: %w", err)
	}
	if owner != "" && len(owners) == 0 {
		return 0, fmt.Errorf("no data key for %s", owner)
	}
	want := make(map[ident.Owner]bool, len(owners))
	for i, o := range owners {
		want[o] = true
		if err := m.store.Update(ctx, func(tx storage.Tx) error {
			cur, err := tx.Key(ctx, o)
			if err != nil {
				return err
			}
			nr, err := m.keys.RotateDEK(cur)
			if err != nil {
				return err
			}
			return tx.ReplaceKey(ctx, nr)
		}); err != nil {
			return 0, fmt.Errorf("rotating the key of %s: %w", o, err)
		}
		m.keys.Forget(o)
		if progress != nil {
			progress("new data keys", int64(i+1), int64(len(owners)))
		}
	}
	// Re-seal every version not sealed with its owner's primary key, in
	// small transactions.
	const batch = 200
	var pending []storage.Version
	var scanned int64
	flush := func() error {
		if len(pending) == 0 {
			return nil
		}
		err := m.store.Update(ctx, func(tx storage.Tx) error {
			for _, v := range pending {
				rec, err := tx.Key(ctx, v.Owner)
				if err != nil {
					return err
				}
				dek, err := m.keys.DEK(rec)
				if err != nil {
					return err
				}
				if dek.SealedWithPrimary(v.Ciphertext) {
					continue
				}
				ad := keys.ResourceAD{Type: v.Type, ID: v.ID, Version: v.Version, Owner: v.Owner}
				pt, err := dek.Open(v.Ciphertext, ad)
				if err != nil {
					return fmt.Errorf("opening %s/%s/_history/%d: %w", v.Type, v.ID, v.Version, err)
				}
				ct, err := dek.Seal(pt, ad)
				if err != nil {
					return err
				}
				if err := tx.RewriteCiphertext(ctx, storage.VersionRef{Type: v.Type, ID: v.ID, Version: v.Version}, ct); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
		resealed += int64(len(pending))
		pending = pending[:0]
		return nil
	}
	err = m.store.ScanVersions(ctx, storage.VersionRef{}, func(v storage.Version) error {
		scanned++
		if progress != nil && scanned%100 == 0 {
			progress("re-sealing versions", scanned, -1)
		}
		if v.Deleted || !want[v.Owner] {
			return nil
		}
		pending = append(pending, v)
		if len(pending) >= batch {
			return flush()
		}
		return nil
	})
	if err == nil {
		err = flush()
	}
	if err != nil {
		return resealed, fmt.Errorf("re-sealing versions: %w", err)
	}
	for i, o := range owners {
		if err := m.store.Update(ctx, func(tx storage.Tx) error {
			cur, err := tx.Key(ctx, o)
			if err != nil {
				return err
			}
			nr, err := m.keys.RetireOldDEKKeys(cur)
			if err != nil {
				return err
			}
			return tx.ReplaceKey(ctx, nr)
		}); err != nil {
			return resealed, fmt.Errorf("retiring old keys of %s: %w", o, err)
		}
		m.keys.Forget(o)
		if progress != nil {
			progress("retiring old data keys", int64(i+1), int64(len(owners)))
		}
	}
	return resealed, m.auditKeyOp(ctx, "dek")
}

// RewrapAll re-wraps every live key record under the KEK as it is now:
// with a Vault transit KEK, after the operator rotated the transit key,
// every record moves to the newest Vault key version, so that the older
// versions can be destroyed in Vault (min_decryption_version, trim:
// docs/operations.md) and with them every stale copy of an erased
// patient's key. It then compacts the keys table. Re-running it is
// harmless.
func (m *Manager) RewrapAll(ctx context.Context, progress Progress) (int64, error) {
	var owners []ident.Owner
	if err := m.store.ScanKeys(ctx, func(r storage.KeyRecord) error {
		if !r.Shredded {
			owners = append(owners, r.Owner)
		}
		return nil
	}); err != nil {
		return 0, fmt.Errorf("listing keys: %w", err)
	}
	var n int64
	for i, o := range owners {
		err := m.store.Update(ctx, func(tx storage.Tx) error {
			cur, err := tx.Key(ctx, o)
			if err != nil || cur.Shredded {
				return err
			}
			nr, err := m.keys.Rewrap(cur)
			if err != nil {
				return err
			}
			return tx.ReplaceKey(ctx, nr)
		})
		if err != nil {
			return n, fmt.Errorf("re-wrapping the key of %s: %w", o, err)
		}
		n++
		if progress != nil {
			progress("re-wrapping data keys", int64(i+1), int64(len(owners)))
		}
	}
	if m.compactor != nil {
		if err := m.compactor.CompactKeys(ctx); err != nil {
			m.logger.Warn("compacting the keys table failed", "err", err)
		}
	}
	return n, m.auditKeyOp(ctx, "kms-rewrap")
}
