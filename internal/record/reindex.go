package record

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"

	"github.com/phivault/phivault/internal/audit"
	"github.com/phivault/phivault/internal/ident"
	"github.com/phivault/phivault/internal/keys"
	"github.com/phivault/phivault/internal/storage"
)

// reindexBatch is how many resources one reindex transaction rewrites:
// its audit event carries one index commitment each, so it stays under
// audit.MaxCommitsPerEvent.
const reindexBatch = 100

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
// so far. The run is audited: each transaction's events commit to the
// index rows it wrote and the versions it moved (ledger), and a last
// event gives the counts.
func (s *Service) Reindex(ctx context.Context, c Caller, progress func(int64)) (int64, error) {
	var n, moved int64
	// Resources are rewritten reindexBatch at a time, each batch in one
	// transaction whose audit events commit to what it wrote (ADR 0016).
	type item struct {
		vs   []storage.Version // every version, the last current
		rows []storage.IndexRow
	}
	var batch []item
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		var done, m int64
		err := s.store.Update(ctx, func(tx storage.Tx) error {
			done, m = 0, 0
			ev := s.event(c, audit.ActionReindex)
			var rewrites []Rewritten
			for _, it := range batch {
				cur := it.vs[len(it.vs)-1]
				rw, err := s.reown(ctx, tx, it.vs, it.rows)
				if err != nil {
					return err
				}
				m += int64(len(rw))
				rewrites = append(rewrites, rw...)
				if cur.Deleted {
					continue
				}
				err = tx.ReplaceIndex(ctx, cur.Type, cur.ID, cur.Version, it.rows)
				if errors.Is(err, storage.ErrConflict) || errors.Is(err, storage.ErrNotFound) {
					continue // rewritten (and indexed) meanwhile
				}
				if err != nil {
					return err
				}
				done++
				if len(rw) > 0 && rw[len(rw)-1].Current {
					continue // the rewrite commits the index rows too
				}
				lc, err := s.indexCommit(cur.Type, cur.ID, cur.Version, cur.Owner, it.rows)
				if err != nil {
					return err
				}
				ev.Ledger = append(ev.Ledger, lc)
			}
			if err := s.CommitRewrites(ctx, tx, c, "re-own", rewrites); err != nil {
				return err
			}
			if len(ev.Ledger) == 0 {
				return nil
			}
			if err := s.ownerCommits(ctx, tx, ev.Ledger); err != nil {
				return err
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
		n, moved = n+done, moved+m
		batch = batch[:0]
		if progress != nil && n/500 != before/500 {
			progress(n)
		}
		return nil
	}
	one := func(vs []storage.Version) error {
		cur := vs[len(vs)-1]
		it := item{vs: slices.Clone(vs)}
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
			rows, err := s.indexRows(res)
			if err != nil {
				return fmt.Errorf("reindexing %s/%s: %w", cur.Type, cur.ID, err)
			}
			lrows, err := s.labelRows(cur.Type, body)
			if err != nil {
				return fmt.Errorf("reindexing %s/%s: %w", cur.Type, cur.ID, err)
			}
			it.rows = append(rows, lrows...)
		}
		batch = append(batch, it)
		if len(batch) >= reindexBatch {
			return flush()
		}
		return nil
	}
	var vs []storage.Version
	err := s.store.ScanVersions(ctx, storage.VersionRef{}, func(v storage.Version) error {
		// Versions come in (type, id, version) order: a resource's
		// versions are consecutive, the last its current one.
		if len(vs) > 0 && (v.Type != vs[0].Type || v.ID != vs[0].ID) {
			if err := one(vs); err != nil {
				return err
			}
			vs = vs[:0]
		}
		vs = append(vs, v)
		return nil
	})
	if err == nil && len(vs) > 0 {
		err = one(vs)
	}
	if err == nil {
		err = flush()
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
// returns the versions moved, for their ledger commitments (rows are
// the current version's index rows). Versions whose key is shredded are
// left alone (they are unreadable already).
func (s *Service) reown(ctx context.Context, tx storage.Tx, vs []storage.Version, rows []storage.IndexRow) ([]Rewritten, error) {
	var out []Rewritten
	var prevOwner ident.Owner
	for i, v := range vs {
		current := i == len(vs)-1
		ref := storage.VersionRef{Type: v.Type, ID: v.ID, Version: v.Version}
		if v.Deleted {
			if prevOwner != "" && prevOwner != v.Owner {
				if err := tx.Reown(ctx, ref, prevOwner, nil); err != nil {
					return nil, err
				}
				w := v
				w.Owner, w.Ciphertext = prevOwner, nil
				out = append(out, Rewritten{Version: w, Current: current})
			}
			continue
		}
		body, err := s.openInTx(ctx, tx, v)
		if errors.Is(err, ErrGone) {
			prevOwner = ""
			continue
		}
		if err != nil {
			return nil, err
		}
		res, err := s.Parse(body)
		if err != nil {
			return nil, fmt.Errorf("reindexing %s/%s/_history/%d: %w", v.Type, v.ID, v.Version, err)
		}
		owner, patients, err := s.ownerOf(ctx, tx, res)
		if err != nil {
			return nil, fmt.Errorf("reindexing %s/%s/_history/%d: %w", v.Type, v.ID, v.Version, err)
		}
		prevOwner = owner
		if owner == v.Owner {
			continue
		}
		dek, err := s.dekInTx(ctx, tx, owner, patients, true)
		if err != nil {
			return nil, err
		}
		ct, err := dek.Seal(body, keys.ResourceAD{Type: v.Type, ID: v.ID, Version: v.Version, Owner: owner})
		if err != nil {
			return nil, fmt.Errorf("re-sealing %s/%s/_history/%d: %w", v.Type, v.ID, v.Version, err)
		}
		if err := tx.Reown(ctx, ref, owner, ct); err != nil {
			return nil, err
		}
		w := v
		w.Owner, w.Ciphertext = owner, nil
		r := Rewritten{Version: w, Body: body, Current: current}
		if current {
			r.Index = rows
		}
		out = append(out, r)
	}
	return out, nil
}
