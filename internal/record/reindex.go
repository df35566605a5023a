package record

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/phivault/phivault/internal/audit"
	"github.com/phivault/phivault/internal/storage"
)

// reindexBatch is how many resources one reindex transaction rewrites:
// its audit event carries one index commitment each, so it stays under
// audit.MaxCommitsPerEvent.
const reindexBatch = 100

// Reindex recomputes the index rows (blind indexes of every search
// parameter, and the authorization label rows) of every current
// resource, from its decrypted body. Run it after an upgrade that adds
// index rows (authorization: CareTeam and Encounter participants,
// security labels), so data written before is found like new data. It
// is resumable in effect: a resource rewritten meanwhile was indexed by
// its write and is skipped. progress (optional) is called with the
// number reindexed so far. The run is audited: each transaction's event
// commits to the index rows it wrote (ledger), and a last event gives
// the count.
func (s *Service) Reindex(ctx context.Context, c Caller, progress func(int64)) (int64, error) {
	var n int64
	// Resources are rewritten reindexBatch at a time, each batch in one
	// transaction with one audit event committing the new index rows
	// (the ledger, ADR 0016).
	type item struct {
		v    storage.Version
		rows []storage.IndexRow
	}
	var batch []item
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		var done int64
		err := s.store.Update(ctx, func(tx storage.Tx) error {
			done = 0
			ev := s.event(c, audit.ActionReindex)
			for _, it := range batch {
				err := tx.ReplaceIndex(ctx, it.v.Type, it.v.ID, it.v.Version, it.rows)
				if errors.Is(err, storage.ErrConflict) || errors.Is(err, storage.ErrNotFound) {
					continue // rewritten (and indexed) meanwhile
				}
				if err != nil {
					return err
				}
				lc, err := s.indexCommit(it.v.Type, it.v.ID, it.v.Version, it.rows)
				if err != nil {
					return err
				}
				ev.Ledger = append(ev.Ledger, lc)
				done++
			}
			if len(ev.Ledger) == 0 {
				return nil
			}
			ev.Policies = []string{"resources=" + strconv.FormatInt(done, 10)}
			rec, err := s.log.Seal(ev)
			if err != nil {
				return unavailable(err)
			}
			return appendAudit(ctx, tx, rec)
		})
		if err != nil {
			return err
		}
		before := n
		n += done
		batch = batch[:0]
		if progress != nil && n/500 != before/500 {
			progress(n)
		}
		return nil
	}
	one := func(v storage.Version) error {
		if v.Deleted {
			return nil // a delete marker has no index rows
		}
		body, err := s.open(ctx, v)
		if errors.Is(err, ErrGone) {
			return nil // erased patient
		}
		if err != nil {
			return err
		}
		res, err := s.Parse(body)
		if err != nil {
			return fmt.Errorf("reindexing %s/%s: %w", v.Type, v.ID, err)
		}
		rows, err := s.indexRows(res)
		if err != nil {
			return fmt.Errorf("reindexing %s/%s: %w", v.Type, v.ID, err)
		}
		lrows, err := s.labelRows(v.Type, body)
		if err != nil {
			return fmt.Errorf("reindexing %s/%s: %w", v.Type, v.ID, err)
		}
		v.Ciphertext = nil
		batch = append(batch, item{v: v, rows: append(rows, lrows...)})
		if len(batch) >= reindexBatch {
			return flush()
		}
		return nil
	}
	var prev storage.Version
	have := false
	err := s.store.ScanVersions(ctx, storage.VersionRef{}, func(v storage.Version) error {
		// Versions come in (type, id, version) order: the last of a
		// resource is its current one.
		if have && (v.Type != prev.Type || v.ID != prev.ID) {
			if err := one(prev); err != nil {
				return err
			}
		}
		prev, have = v, true
		return nil
	})
	if err == nil && have {
		err = one(prev)
	}
	if err == nil {
		err = flush()
	}
	if progress != nil {
		progress(n)
	}
	ev := s.event(c, audit.ActionReindex)
	ev.Policies = []string{"resources=" + strconv.FormatInt(n, 10)}
	if err != nil {
		ev.Outcome = audit.OutcomeError
	}
	if rerr := s.recordRead(ctx, ev); rerr != nil && err == nil {
		err = rerr
	}
	s.changed("CareTeam", "") // relationships may be new: drop cached facts
	s.changed("Patient", "")
	return n, err
}
