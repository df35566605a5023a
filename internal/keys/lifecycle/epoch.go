package lifecycle

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/phivault/phivault/internal/audit"
	"github.com/phivault/phivault/internal/ident"
	"github.com/phivault/phivault/internal/keys"
	"github.com/phivault/phivault/internal/storage"
)

// KEK epochs make crypto-shredding final (ADR 0015). $erase destroys a
// patient's wrapped data key in the database, but older copies of it,
// wrapped under the KEK, stay in free pages, the WAL, dead tuples,
// replicas and backups. An epoch adds a KEK key, re-wraps every live key
// record under it, checks each under the new key alone, and destroys the
// other KEK keys in the key file: every stale copy is then useless.
//
// Order, so that a crash at any point leaves every live record openable:
//
//	adding      the new key is written to the key file (primary); the
//	            epoch row remembers the previous primary, so a resumed run
//	            knows whether the file already has it
//	rewrapping  the old ids are fenced off (no key may be stored under
//	            them from now on, storage.ErrRetiredKEK), every live
//	            record is re-wrapped, then checked under the new key alone
//	retained    every live record opens under the new key; the retired
//	            keys wait for keys.shred_retention_days (default 0)
//	complete    the retired keys are gone from the key file; the database
//	            files are compacted (WAL checkpoint, VACUUM)

// Timing of the KEK epoch job.
const (
	// epochLease is how long a process's claim on the KEK epoch job
	// lasts without a heartbeat. The job beats at every batch (a few
	// hundred milliseconds); two minutes covers a long pause (GC, I/O
	// stall) without a second process writing the key file beside it.
	epochLease = 2 * time.Minute

	// epochBatch is how many key records one re-wrap transaction holds.
	epochBatch = 64

	// epochPoll is how often "serve" checks whether its KEK primary was
	// retired by an epoch run elsewhere (and reloads the key file): new
	// patients' first writes answer 503 in that window on other
	// processes of a fleet.
	epochPoll = 2 * time.Second

	// epochRecheck is how often "serve" runs the job without a wake-up
	// (a retained epoch's destruction falls due, an erasure of another
	// process); epochRetry after a failure.
	epochRecheck = time.Hour
	epochRetry   = time.Minute
)

// EpochOptions tunes one run of the KEK epoch job.
type EpochOptions struct {
	// Force starts an epoch even if no erasure is pending (an operator
	// who wants to retire every older KEK key).
	Force bool
	// AddOnly stops after the new key is in the key file and the old
	// ones are fenced off, before any record is re-wrapped: a fleet whose
	// hosts keep their own copy of the key file distributes the new file
	// then, so every host can open what the next run re-wraps.
	AddOnly bool
	// Progress reports long phases; nil for none.
	Progress Progress
}

// EpochReport says what one run did.
type EpochReport struct {
	// Epoch is the epoch this run started or resumed (zero if none).
	Epoch storage.KEKEpoch
	// Tampered counts the live key records this run skipped because
	// they open under no key of the key file (each raised an integrity
	// alarm naming its owner).
	Tampered int
	// Started is true when this run began Epoch.
	Started bool
	// Rewrapped counts key records re-wrapped by this run.
	Rewrapped int64
	// Destroyed lists the KEK key ids this run removed from the key file.
	Destroyed []uint32
	// Status is the erasure status after the run.
	Status ErasureStatus
}

// epochJob is one run of the KEK epoch job by this process.
type epochJob struct {
	m      *Manager
	es     storage.EpochStore
	path   string
	holder string
	o      EpochOptions
	rep    EpochReport
	// skipped holds the live key records of this run that open under
	// no key of the key file (owner to the KEK id they name): they
	// protect nothing the key file can open, so they block nothing.
	skipped map[ident.Owner]uint32
}

// RunKEKEpoch runs the KEK epoch job once: it resumes an interrupted
// epoch, starts one if an erasure is pending (or o.Force), and destroys
// the retired KEK keys whose retention is over. It is idempotent and safe
// to run from several processes at once (one holds the job, the others
// get [ErrEpochBusy]). With a KMS KEK it returns [ErrKMSRotation]: see
// [Manager.RewrapAll] and docs/operations.md.
func (m *Manager) RunKEKEpoch(ctx context.Context, o EpochOptions) (EpochReport, error) {
	if m.cfg.KeyFile == "" {
		return EpochReport{Status: ErasureStatus{KMS: true}}, ErrKMSRotation
	}
	j := &epochJob{m: m, es: m.epochs, path: m.cfg.KeyFile, holder: m.holder, o: o}
	err := j.run(ctx)
	if rerr := j.release(context.WithoutCancel(ctx)); err == nil && rerr != nil && !errors.Is(rerr, ErrEpochLost) {
		err = rerr
	}
	if st, serr := m.ErasureStatus(context.WithoutCancel(ctx)); serr == nil {
		j.rep.Status = st
	} else if err == nil {
		err = serr
	}
	return j.rep, err
}

func (j *epochJob) now() time.Time { return time.Now().UTC() }

func (j *epochJob) progress(phase string, done, total int64) {
	if j.o.Progress != nil {
		j.o.Progress(phase, done, total)
	}
}

func (j *epochJob) run(ctx context.Context) error {
	st, err := j.m.ErasureStatus(ctx)
	if err != nil {
		return err
	}
	need := st.Pending > 0 || j.o.Force
	e, err := j.claim(ctx, st, need)
	if err != nil {
		return err
	}
	j.rep.Epoch = e
	if e.State == storage.EpochAdding {
		if e, err = j.add(ctx, e); err != nil {
			return err
		}
	}
	if j.o.AddOnly {
		j.rep.Epoch = e
		return nil
	}
	if e.State == storage.EpochRewrapping {
		if e, err = j.rewrap(ctx, e); err != nil {
			return err
		}
	}
	j.rep.Epoch = e
	return j.destroyDue(ctx)
}

// claim takes the job's lease (the newest epoch's holder and heartbeat)
// and returns the epoch to work on: an interrupted one, a new one when
// need is set, or the newest one (possibly complete) to destroy what is
// due.
func (j *epochJob) claim(ctx context.Context, st ErasureStatus, need bool) (storage.KEKEpoch, error) {
	var e storage.KEKEpoch
	err := j.es.UpdateEpoch(ctx, func(tx storage.EpochTx) error {
		now := j.now()
		latest, err := tx.Latest(ctx)
		if errors.Is(err, storage.ErrNotFound) {
			latest, err = storage.KEKEpoch{}, nil
		}
		if err != nil {
			return err
		}
		if latest.Epoch > 0 && latest.Holder != j.holder && !latest.Heartbeat.IsZero() && now.Sub(latest.Heartbeat) < epochLease {
			return ErrEpochBusy
		}
		inProgress := latest.State == storage.EpochAdding || latest.State == storage.EpochRewrapping
		switch {
		case latest.Epoch > 0 && inProgress:
			e = latest
		case need:
			e = storage.KEKEpoch{Epoch: latest.Epoch + 1, State: storage.EpochAdding, PrevPrimary: st.Primary,
				Started: now, Erasures: st.Pending}
			j.rep.Started = true
		case latest.Epoch > 0:
			e = latest
		default:
			return nil // no epoch ever, none needed
		}
		e.Holder, e.Heartbeat = j.holder, now
		return tx.PutEpoch(ctx, e)
	})
	return e, err
}

// own checks inside tx that this process still holds epoch e's job and
// renews the heartbeat; fn may then change the epoch.
func (j *epochJob) own(ctx context.Context, tx storage.EpochTx, epoch int64) (storage.KEKEpoch, error) {
	latest, err := tx.Latest(ctx)
	if err != nil {
		return latest, err
	}
	if latest.Epoch != epoch || latest.Holder != j.holder {
		return latest, ErrEpochLost
	}
	latest.Heartbeat = j.now()
	return latest, nil
}

// beat renews the lease on epoch, or returns ErrEpochLost.
func (j *epochJob) beat(ctx context.Context, epoch int64) error {
	return j.es.UpdateEpoch(ctx, func(tx storage.EpochTx) error {
		e, err := j.own(ctx, tx, epoch)
		if err != nil {
			return err
		}
		return tx.PutEpoch(ctx, e)
	})
}

// release ends this process's lease (a zero heartbeat), so another
// process may run the job at once.
func (j *epochJob) release(ctx context.Context) error {
	if j.rep.Epoch.Epoch == 0 {
		return nil
	}
	return j.es.UpdateEpoch(ctx, func(tx storage.EpochTx) error {
		e, err := j.own(ctx, tx, j.rep.Epoch.Epoch)
		if err != nil {
			return err
		}
		e.Heartbeat = time.Time{}
		return tx.PutEpoch(ctx, e)
	})
}

// reopen reads the key file afresh.
func (j *epochJob) reopen(ctx context.Context) (*keys.KEK, error) {
	kek, err := keys.OpenKEK(ctx, keys.KEKSource{KeyFile: j.path}, nil)
	if err != nil {
		return nil, fmt.Errorf("reading the key file: %w", err)
	}
	return kek, nil
}

func (j *epochJob) retiredSet(ctx context.Context) (map[uint32]storage.RetiredKEK, error) {
	rs, err := j.es.RetiredKEKs(ctx)
	if err != nil {
		return nil, err
	}
	m := make(map[uint32]storage.RetiredKEK, len(rs))
	for _, r := range rs {
		m[r.KEKID] = r
	}
	return m, nil
}

// add writes the epoch's new key to the key file (unless a crashed run
// already did: the primary is no longer PrevPrimary), installs it in
// this process, and fences off every other key of the file.
func (j *epochJob) add(ctx context.Context, e storage.KEKEpoch) (storage.KEKEpoch, error) {
	kek, err := j.reopen(ctx)
	if err != nil {
		return e, err
	}
	retired, err := j.retiredSet(ctx)
	if err != nil {
		return e, err
	}
	if kek.PrimaryID() == e.PrevPrimary || retired[kek.PrimaryID()].KEKID != 0 {
		if err := j.beat(ctx, e.Epoch); err != nil {
			return e, err
		}
		if _, err := keys.AddKEKKey(j.path, func(id uint32) bool { return retired[id].KEKID != 0 }); err != nil {
			return e, fmt.Errorf("adding the epoch's KEK key: %w", err)
		}
		if kek, err = j.reopen(ctx); err != nil {
			return e, err
		}
	}
	j.m.keys.SetKEK(kek)
	var old []uint32
	for _, id := range kek.KeyIDs() {
		if id != kek.PrimaryID() {
			old = append(old, id)
		}
	}
	err = j.es.UpdateEpoch(ctx, func(tx storage.EpochTx) error {
		cur, err := j.own(ctx, tx, e.Epoch)
		if err != nil {
			return err
		}
		if err := tx.Retire(ctx, e.Epoch, old); err != nil {
			return err
		}
		cur.State, cur.KEKID = storage.EpochRewrapping, kek.PrimaryID()
		e = cur
		return tx.PutEpoch(ctx, cur)
	})
	return e, err
}

// rewrap re-wraps every live key record under the epoch's key, checks
// every one under that key alone, and (once a count under the epoch lock
// finds none left) marks the epoch retained.
func (j *epochJob) rewrap(ctx context.Context, e storage.KEKEpoch) (storage.KEKEpoch, error) {
	if j.m.keys.KEK().PrimaryID() != e.KEKID {
		if _, err := j.m.keys.ReloadKEK(func(p uint32) bool { return p == e.KEKID }); err != nil {
			return e, fmt.Errorf("the key file lost the epoch's key %d: %w", e.KEKID, err)
		}
	}
	kek := j.m.keys.KEK()
	// A record written between the scan and the locked count (by a
	// process that had not yet reloaded) is caught by the count and
	// handled by another round; the fence lets no new one appear.
	for round := 0; round < 8; round++ {
		if err := j.rewrapAll(ctx, e); err != nil {
			return e, err
		}
		if err := j.check(ctx, kek, e); err != nil {
			return e, err
		}
		done := false
		err := j.es.UpdateEpoch(ctx, func(tx storage.EpochTx) error {
			cur, err := j.own(ctx, tx, e.Epoch)
			if err != nil {
				return err
			}
			n, err := tx.CountNotUnder(ctx, e.KEKID)
			if err != nil {
				return err
			}
			// Skipped records open under no key: they hold nothing the
			// retired keys protect. destroyDue checks every record
			// again, against the key file, before it destroys a key.
			for _, id := range j.skipped {
				if id != e.KEKID {
					n--
				}
			}
			if n > 0 {
				return nil
			}
			now := j.now()
			cur.State, cur.Rewrapped = storage.EpochRetained, now
			cur.DestroyAfter = now.Add(time.Duration(j.m.cfg.ShredRetentionDays) * 24 * time.Hour)
			if err := tx.PutEpoch(ctx, cur); err != nil {
				return err
			}
			if err := j.audit(ctx, tx, cur, "rewrapped="+strconv.FormatInt(j.rep.Rewrapped, 10),
				"destroy_after="+cur.DestroyAfter.Format(time.RFC3339)); err != nil {
				return err
			}
			e, done = cur, true
			return nil
		})
		if err != nil {
			return e, err
		}
		if done {
			// The old wrapped bytes leave the database files now, even
			// while the retired keys are retained.
			if err := j.compact(ctx); err != nil {
				return e, err
			}
			return e, nil
		}
	}
	return e, fmt.Errorf("KEK epoch %d: key records kept appearing under retired KEK keys", e.Epoch)
}

// rewrapAll re-wraps, in batches, every live record not under e.KEKID.
func (j *epochJob) rewrapAll(ctx context.Context, e storage.KEKEpoch) error {
	var owners []ident.Owner
	if err := j.m.store.ScanKeys(ctx, func(r storage.KeyRecord) error {
		if !r.Shredded && r.KEKID != e.KEKID {
			owners = append(owners, r.Owner)
		}
		return nil
	}); err != nil {
		return fmt.Errorf("listing keys: %w", err)
	}
	total := int64(len(owners))
	for done := 0; done < len(owners); {
		if err := ctx.Err(); err != nil {
			return err
		}
		batch := owners[done:min(done+epochBatch, len(owners))]
		var n int64
		var bad []storage.KeyRecord
		err := j.m.store.Update(ctx, func(tx storage.Tx) error {
			n, bad = 0, nil
			for _, o := range batch {
				cur, err := tx.Key(ctx, o)
				if err != nil {
					return err
				}
				if cur.Shredded || cur.KEKID == e.KEKID {
					continue
				}
				nr, err := j.m.keys.Rewrap(cur)
				if err != nil && errors.Is(j.m.keys.KEK().Opens(cur), keys.ErrDecrypt) {
					// Opens under no key (or an owner no record can
					// have, which no key opens either): skip (below).
					bad = append(bad, cur)
					continue
				}
				if err != nil {
					return fmt.Errorf("re-wrapping the key of %s: %w", o, err)
				}
				if err := tx.ReplaceKey(ctx, nr); err != nil {
					return err
				}
				n++
			}
			return nil
		})
		if err != nil {
			return err
		}
		for _, r := range bad {
			if !j.skip(ctx, j.m.keys.KEK(), r) {
				return fmt.Errorf("re-wrapping the key of %s: %w", r.Owner, keys.ErrDecrypt)
			}
		}
		j.rep.Rewrapped += n
		done += len(batch)
		j.progress("re-wrapping data keys under the new KEK", int64(done), total)
		if err := j.beat(ctx, e.Epoch); err != nil {
			return err
		}
	}
	return nil
}

// check opens every live record under the epoch's key alone. A record
// that names the key but does not open under it stops the epoch: the
// retired keys are not destroyed while anything depends on them.
func (j *epochJob) check(ctx context.Context, kek *keys.KEK, e storage.KEKEpoch) error {
	var n int64
	err := j.m.store.ScanKeys(ctx, func(r storage.KeyRecord) error {
		if r.Shredded || r.KEKID != e.KEKID {
			return nil // not live, or caught by the count
		}
		if err := kek.CheckWrappedByPrimary(r); err != nil {
			if errors.Is(err, keys.ErrDecrypt) && j.skip(ctx, kek, r) {
				return nil // opens under no key of the file: tampered
			}
			return fmt.Errorf("KEK epoch %d: the key of %s does not open under the new KEK alone; nothing is destroyed: %w", e.Epoch, r.Owner, err)
		}
		n++
		if n%256 == 0 {
			j.progress("checking every key under the new KEK alone", n, -1)
		}
		return nil
	})
	return err
}

// destroyDue removes from the key file the retired keys whose retention
// is over, compacts the database, and marks their epochs complete.
func (j *epochJob) destroyDue(ctx context.Context) error {
	if j.rep.Epoch.Epoch == 0 {
		return nil
	}
	epochs, err := j.es.Epochs(ctx)
	if err != nil {
		return err
	}
	now := j.now()
	due := map[int64]bool{}
	for _, e := range epochs {
		if e.State == storage.EpochRetained && !now.Before(e.DestroyAfter) {
			due[e.Epoch] = true
		}
	}
	if len(due) == 0 {
		return nil
	}
	retired, err := j.retiredSet(ctx)
	if err != nil {
		return err
	}
	var ids []uint32
	for id, r := range retired {
		if due[r.Epoch] && r.Destroyed.IsZero() {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	// The fence keeps new records off retired keys; this scan makes sure
	// none is left from before (it would lose its data). A record that
	// opens under no key of the file, retired ones included, loses
	// nothing: it is named and skipped.
	file, err := j.reopen(ctx)
	if err != nil {
		return err
	}
	var left []storage.KeyRecord
	if err := j.m.store.ScanKeys(ctx, func(r storage.KeyRecord) error {
		if !r.Shredded && slices.Contains(ids, r.KEKID) {
			left = append(left, r)
		}
		return nil
	}); err != nil {
		return err
	}
	for _, r := range left {
		if !j.skip(ctx, file, r) {
			return fmt.Errorf("the key of %s is still wrapped under retired KEK key %d; nothing is destroyed", r.Owner, r.KEKID)
		}
	}
	if err := j.beat(ctx, j.rep.Epoch.Epoch); err != nil {
		return err
	}
	if _, err := keys.DestroyKEKKeys(j.path, ids); err != nil {
		return err
	}
	kek, err := j.reopen(ctx)
	if err != nil {
		return err
	}
	j.m.keys.SetKEK(kek)
	j.rep.Destroyed = ids
	if err := j.compact(ctx); err != nil {
		return err
	}
	return j.es.UpdateEpoch(ctx, func(tx storage.EpochTx) error {
		if _, err := j.own(ctx, tx, j.rep.Epoch.Epoch); err != nil {
			return err
		}
		if err := tx.MarkDestroyed(ctx, ids, now); err != nil {
			return err
		}
		for _, e := range epochs {
			if !due[e.Epoch] {
				continue
			}
			if e.Epoch == j.rep.Epoch.Epoch {
				e, _ = j.own(ctx, tx, e.Epoch)
			}
			e.State, e.Completed = storage.EpochComplete, now
			if err := tx.PutEpoch(ctx, e); err != nil {
				return err
			}
			if e.Epoch == j.rep.Epoch.Epoch {
				j.rep.Epoch = e
			}
			var dest []string
			for _, id := range ids {
				if retired[id].Epoch == e.Epoch {
					dest = append(dest, strconv.FormatUint(uint64(id), 10))
				}
			}
			if err := j.audit(ctx, tx, e, "destroyed="+strings.Join(dest, ",")); err != nil {
				return err
			}
		}
		return nil
	})
}

// compact asks the database to drop the old bytes of key records.
func (j *epochJob) compact(ctx context.Context) error {
	if err := j.m.compactor.CompactKeys(ctx); err != nil {
		// Not fatal: the destroyed KEK keys make the old bytes useless;
		// compaction only shortens how long they sit in the files.
		j.m.logger.Warn("compacting the keys table after a KEK epoch failed", slog.String("err", err.Error()))
	}
	return nil
}

// audit appends the epoch's audit event in tx.
func (j *epochJob) audit(ctx context.Context, tx storage.EpochTx, e storage.KEKEpoch, extra ...string) error {
	ev := audit.Event{Time: j.now(), Action: audit.ActionKeyEpoch, Outcome: audit.OutcomeSuccess,
		Agent:    audit.Agent{User: "phivault", Client: j.holder},
		Entities: []string{"key/kek-epoch/" + strconv.FormatInt(e.Epoch, 10)},
		Policies: append([]string{"state=" + string(e.State), "erasures=" + strconv.FormatInt(e.Erasures, 10)}, extra...)}
	rec, err := j.m.log.Seal(ev)
	if err != nil {
		return err
	}
	return tx.AppendAudit(ctx, rec)
}
