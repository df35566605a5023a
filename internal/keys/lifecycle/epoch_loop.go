package lifecycle

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/phivault/phivault/internal/storage"
)

// The KEK epoch in a running server: serve runs the job after each
// erasure and on a schedule, and every process follows epochs that
// others run (ADR 0015).

// followEpoch reloads the key file when this process's KEK primary was
// retired by an epoch another process runs, so it wraps new keys under
// the key in force (the fence refuses its writes until then), and when it
// still holds a destroyed KEK key in memory. It logs once per retired
// primary when the file on this machine is still old.
func (m *Manager) followEpoch(ctx context.Context, warned map[uint32]bool) {
	kek := m.keys.KEK()
	if kek.IsKMS() {
		return
	}
	rs, err := m.epochs.RetiredKEKs(ctx)
	if err != nil {
		return
	}
	retired := make(map[uint32]bool, len(rs))
	stale := false
	for _, r := range rs {
		retired[r.KEKID] = true
		// A destroyed key still loaded in memory is a stale copy too.
		stale = stale || r.KEKID == kek.PrimaryID() || (!r.Destroyed.IsZero() && kek.Has(r.KEKID))
	}
	if !stale {
		return
	}
	changed, err := m.keys.ReloadKEK(func(p uint32) bool { return !retired[p] })
	switch {
	case err != nil && !warned[kek.PrimaryID()]:
		warned[kek.PrimaryID()] = true
		m.logger.Error("a KEK epoch retired this process's KEK key: replace this machine's key file with the new one (docs/operations.md); until then new patients cannot be created here",
			slog.String("err", err.Error()))
	case changed:
		m.logger.Info("reloaded the key file of the KEK epoch in force", slog.Any("kek", m.keys.KEK()))
	}
}

// RunKEKEpochs runs the KEK epoch job in "serve" until ctx ends: at
// start (resuming an interrupted epoch), after every erasure of this
// process, and hourly (erasures of other processes, retentions falling
// due); and every few seconds it follows epochs run elsewhere. With
// keys.shred_epoch_manual it only follows. Errors are logged.
func (m *Manager) RunKEKEpochs(ctx context.Context) {
	poll := time.NewTicker(epochPoll)
	defer poll.Stop()
	warned := map[uint32]bool{}
	next := time.Now()
	for {
		if !m.cfg.ShredManual && !time.Now().Before(next) {
			next = m.runEpochOnce(ctx)
		}
		select {
		case <-ctx.Done():
			return
		case <-m.wake:
			next = time.Now()
		case <-poll.C:
			m.followEpoch(ctx, warned)
		}
	}
}

// runEpochOnce runs the job and returns when to run it next.
func (m *Manager) runEpochOnce(ctx context.Context) time.Time {
	rep, err := m.RunKEKEpoch(ctx, EpochOptions{})
	now := time.Now()
	switch {
	case ctx.Err() != nil:
		return now.Add(epochRecheck)
	case errors.Is(err, ErrKMSRotation):
		// A Vault KEK: nothing to do here; the operator rotates it
		// (docs/operations.md). Compact what the database can.
		if m.compactor != nil {
			_ = m.compactor.CompactKeys(ctx)
		}
		return now.Add(100 * 365 * 24 * time.Hour) // woken by the next erasure
	case errors.Is(err, ErrEpochBusy):
		return now.Add(epochRetry)
	case err != nil:
		m.logger.Error("the KEK epoch job failed; erasures are not final until it succeeds", slog.String("err", err.Error()))
		return now.Add(epochRetry)
	}
	if rep.Started || rep.Rewrapped > 0 || len(rep.Destroyed) > 0 {
		m.logger.Info("KEK epoch", slog.Int64("epoch", rep.Epoch.Epoch), slog.String("state", string(rep.Epoch.State)),
			slog.Int64("rewrapped", rep.Rewrapped), slog.Int("destroyed", len(rep.Destroyed)),
			slog.Int64("erasures_pending", rep.Status.Pending), slog.Int64("erasures_retained", rep.Status.Retained))
	}
	next := now.Add(epochRecheck)
	if u := rep.Status.RetainedUntil; !u.IsZero() && u.Before(next) {
		next = u
	}
	return next
}

// Wake is the erase hook (record.Service.SetEraseHook): it wakes
// RunKEKEpochs without blocking.
func (m *Manager) Wake(string) {
	select {
	case m.wake <- struct{}{}:
	default:
	}
}

// destroyedKEKTimeout bounds the database read behind destroyedKEKs: it
// runs on a read that found a record under a KEK key this process lacks.
const destroyedKEKTimeout = 5 * time.Second

// DestroyedKEKs is the keyring's keys.Options.Destroyed: whether a KEK
// epoch destroyed every one of ids, by the record of es. It lets a
// process adopt a key file from which an epoch run by another process
// removed keys, at the first record it cannot open, without waiting for
// RunKEKEpochs to follow. It is built before the keyring, hence before
// the Manager.
func DestroyedKEKs(es storage.EpochStore) func(ids []uint32) bool {
	return func(ids []uint32) bool {
		ctx, cancel := context.WithTimeout(context.Background(), destroyedKEKTimeout)
		defer cancel()
		rs, err := es.RetiredKEKs(ctx)
		if err != nil {
			return false
		}
		gone := make(map[uint32]bool, len(rs))
		for _, r := range rs {
			gone[r.KEKID] = !r.Destroyed.IsZero()
		}
		for _, id := range ids {
			if !gone[id] {
				return false
			}
		}
		return true
	}
}
