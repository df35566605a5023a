package record

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/phivault/phivault/internal/audit"
	"github.com/phivault/phivault/internal/storage"
)

// Reindex recomputes the index rows (blind indexes of every search
// parameter, and the authorization label rows) of every current
// resource, from its decrypted body. Run it after an upgrade that adds
// index rows (authorization: CareTeam and Encounter participants,
// security labels), so data written before is found like new data. It
// is resumable in effect: a resource rewritten meanwhile was indexed by
// its write and is skipped. progress (optional) is called with the
// number reindexed so far. The run is audited (one event, the count).
func (s *Service) Reindex(ctx context.Context, c Caller, progress func(int64)) (int64, error) {
	var n int64
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
		err = s.store.Update(ctx, func(tx storage.Tx) error {
			return tx.ReplaceIndex(ctx, v.Type, v.ID, v.Version, append(rows, lrows...))
		})
		if errors.Is(err, storage.ErrConflict) || errors.Is(err, storage.ErrNotFound) {
			return nil // rewritten (and indexed) meanwhile
		}
		if err != nil {
			return err
		}
		n++
		if progress != nil && n%500 == 0 {
			progress(n)
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
