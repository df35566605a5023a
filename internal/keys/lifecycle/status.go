package lifecycle

import (
	"context"
	"fmt"
	"time"

	"github.com/phivault/phivault/internal/keys"
	"github.com/phivault/phivault/internal/storage"
)

// How final the erasures are: pending, in an epoch, final (ADR 0015).

// ErasureStatus is how final the erasures are.
type ErasureStatus struct {
	KMS bool
	// Primary is the KEK primary key id in the key file; FileKeys every
	// key id in it.
	Primary  uint32
	FileKeys []uint32
	// Pending counts shredded key records whose last wrapping KEK key is
	// still live in the key file, or retired by an epoch still in
	// progress: a copy of such a data key (a backup, a free page) still
	// opens with the key file. An epoch is owed, or running.
	Pending int64
	// Retained counts shredded records whose KEK key is retired but kept
	// until the retention ends (RetainedUntil, the latest such date).
	Retained      int64
	RetainedUntil time.Time
	// Final counts shredded records whose KEK key is destroyed.
	Final int64
	// Epochs lists every epoch, oldest first; Retired every retired key.
	Epochs  []storage.KEKEpoch
	Retired []storage.RetiredKEK
}

// InProgress returns the epoch still adding or re-wrapping, if any.
func (s ErasureStatus) InProgress() (storage.KEKEpoch, bool) {
	if n := len(s.Epochs); n > 0 && (s.Epochs[n-1].State == storage.EpochAdding || s.Epochs[n-1].State == storage.EpochRewrapping) {
		return s.Epochs[n-1], true
	}
	return storage.KEKEpoch{}, false
}

// ErasureStatus reads the erasure status from the key file and the
// database.
func (m *Manager) ErasureStatus(ctx context.Context) (ErasureStatus, error) {
	var st ErasureStatus
	var err error
	if st.Epochs, err = m.epochs.Epochs(ctx); err != nil {
		return st, err
	}
	if st.Retired, err = m.epochs.RetiredKEKs(ctx); err != nil {
		return st, err
	}
	if m.cfg.KeyFile == "" {
		st.KMS = true
		return st, nil
	}
	kek, err := keys.OpenKEK(ctx, keys.KEKSource{KeyFile: m.cfg.KeyFile}, nil)
	if err != nil {
		return st, fmt.Errorf("reading the key file: %w", err)
	}
	st.Primary, st.FileKeys = kek.PrimaryID(), kek.KeyIDs()
	retired := make(map[uint32]storage.RetiredKEK, len(st.Retired))
	for _, r := range st.Retired {
		retired[r.KEKID] = r
	}
	byNum := make(map[int64]storage.KEKEpoch, len(st.Epochs))
	for _, e := range st.Epochs {
		byNum[e.Epoch] = e
	}
	err = m.store.ScanKeys(ctx, func(r storage.KeyRecord) error {
		if !r.Shredded {
			return nil
		}
		ret, isRetired := retired[r.KEKID]
		switch {
		case !kek.Has(r.KEKID):
			st.Final++
		case isRetired && byNum[ret.Epoch].State == storage.EpochRetained:
			st.Retained++
			if u := byNum[ret.Epoch].DestroyAfter; u.After(st.RetainedUntil) {
				st.RetainedUntil = u
			}
		default:
			st.Pending++
		}
		return nil
	})
	return st, err
}
