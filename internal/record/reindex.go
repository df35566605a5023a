package record

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/phivault/phivault/internal/audit"
	"github.com/phivault/phivault/internal/keys"
	"github.com/phivault/phivault/internal/storage"
)

// Reindex recomputes the index rows (blind indexes of every search
// parameter, and the authorization label rows) of every current
// resource, from its decrypted body, and moves every version to the key
// owner its content calls for: a resource stored before joint owners
// that names several patients leaves the organisation's key for a joint
// key (re-sealed), so erasing any of its patients destroys it too. Run
// it after an upgrade that adds index rows or changes ownership, so data
// written before is found and protected like new data. It is resumable
// in effect: a resource rewritten meanwhile was indexed by its write and
// is skipped. progress (optional) is called with the number reindexed
// so far. The run is audited (one event, the counts).
func (s *Service) Reindex(ctx context.Context, c Caller, progress func(int64)) (int64, error) {
	var n, moved int64
	one := func(vs []storage.Version) error {
		cur := vs[len(vs)-1]
		var rows []storage.IndexRow
		if !cur.Deleted {
			body, err := s.open(ctx, cur)
			if errors.Is(err, ErrGone) {
				return nil // erased patient
			}
			if err != nil {
				return err
			}
			res, err := s.Parse(body)
			if err != nil {
				return fmt.Errorf("reindexing %s/%s: %w", cur.Type, cur.ID, err)
			}
			if rows, err = s.indexRows(res); err != nil {
				return fmt.Errorf("reindexing %s/%s: %w", cur.Type, cur.ID, err)
			}
			lrows, err := s.labelRows(cur.Type, body)
			if err != nil {
				return fmt.Errorf("reindexing %s/%s: %w", cur.Type, cur.ID, err)
			}
			rows = append(rows, lrows...)
		}
		var m int64
		err := s.store.Update(ctx, func(tx storage.Tx) error {
			var err error
			if m, err = s.reown(ctx, tx, vs); err != nil {
				return err
			}
			if cur.Deleted {
				return nil
			}
			return tx.ReplaceIndex(ctx, cur.Type, cur.ID, cur.Version, rows)
		})
		if errors.Is(err, storage.ErrConflict) || errors.Is(err, storage.ErrNotFound) {
			return nil // rewritten (and indexed) meanwhile
		}
		if err != nil {
			return err
		}
		moved += m
		n++
		if progress != nil && n%500 == 0 {
			progress(n)
		}
		return nil
	}
	var batch []storage.Version
	err := s.store.ScanVersions(ctx, storage.VersionRef{}, func(v storage.Version) error {
		// Versions come in (type, id, version) order: a resource's
		// versions are consecutive, the last its current one.
		if len(batch) > 0 && (v.Type != batch[0].Type || v.ID != batch[0].ID) {
			if err := one(batch); err != nil {
				return err
			}
			batch = batch[:0]
		}
		batch = append(batch, v)
		return nil
	})
	if err == nil && len(batch) > 0 {
		err = one(batch)
	}
	if progress != nil {
		progress(n)
	}
	ev := s.event(c, audit.ActionReindex)
	ev.Policies = []string{"resources=" + strconv.FormatInt(n, 10), "reowned-versions=" + strconv.FormatInt(moved, 10)}
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

// reown moves each version of one resource (all its versions, in
// order) to the owner its own content calls for, re-sealing it with
// that owner's key; a delete marker follows the version before it. It
// returns how many versions moved. Versions whose key is shredded are
// left alone (they are unreadable already).
func (s *Service) reown(ctx context.Context, tx storage.Tx, vs []storage.Version) (int64, error) {
	var moved int64
	prevOwner := ""
	for _, v := range vs {
		if v.Deleted {
			if prevOwner != "" && prevOwner != v.Owner {
				if err := tx.Reown(ctx, storage.VersionRef{Type: v.Type, ID: v.ID, Version: v.Version}, prevOwner, nil); err != nil {
					return 0, err
				}
				moved++
			}
			continue
		}
		body, err := s.openInTx(ctx, tx, v)
		if errors.Is(err, ErrGone) {
			prevOwner = ""
			continue
		}
		if err != nil {
			return 0, err
		}
		res, err := s.Parse(body)
		if err != nil {
			return 0, fmt.Errorf("reindexing %s/%s/_history/%d: %w", v.Type, v.ID, v.Version, err)
		}
		owner, patients, err := s.ownerOf(res)
		if err != nil {
			return 0, fmt.Errorf("reindexing %s/%s/_history/%d: %w", v.Type, v.ID, v.Version, err)
		}
		prevOwner = owner
		if owner == v.Owner {
			continue
		}
		dek, err := s.dekInTx(ctx, tx, owner, patients, true)
		if err != nil {
			return 0, err
		}
		ct, err := dek.Seal(body, keys.ResourceAD{Type: v.Type, ID: v.ID, Version: v.Version, Owner: owner})
		if err != nil {
			return 0, fmt.Errorf("re-sealing %s/%s/_history/%d: %w", v.Type, v.ID, v.Version, err)
		}
		if err := tx.Reown(ctx, storage.VersionRef{Type: v.Type, ID: v.ID, Version: v.Version}, owner, ct); err != nil {
			return 0, err
		}
		moved++
	}
	return moved, nil
}
