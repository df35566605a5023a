package ledger

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/phivault/phivault/internal/ident"
	"github.com/phivault/phivault/internal/storage"
)

// maxRounds bounds the rereadings of a resource that looked wrong and
// keeps changing (written to while the check runs).
const maxRounds = 5

// read reads one resource ("Type/id") in one snapshot.
func (c *checker) read(ctx context.Context, key string) (storage.ResourceState, error) {
	typ, id, _ := strings.Cut(key, "/")
	st, err := c.o.Current.Resource(ctx, typ, id)
	if err != nil {
		return st, fmt.Errorf("ledger check: reading %s again: %w", key, err)
	}
	return st, nil
}

// sameState reports whether two snapshots of a resource store the same
// versions (number, owner, deletion flag, time), current pointer and
// index rows. Ciphertexts are not compared: a DEK rotation re-seals
// them without changing what the check judges.
func sameState(a, b storage.ResourceState) bool {
	if len(a.Versions) != len(b.Versions) || (a.Current == nil) != (b.Current == nil) || len(a.Index) != len(b.Index) {
		return false
	}
	for i, v := range a.Versions {
		w := b.Versions[i]
		if v.Version != w.Version || v.Owner != w.Owner || v.Deleted != w.Deleted || !v.LastUpdated.Equal(w.LastUpdated) {
			return false
		}
	}
	if a.Current != nil && *a.Current != *b.Current {
		return false
	}
	return indexKey(a.Index) == indexKey(b.Index)
}

func indexKey(rows []storage.IndexRow) string {
	ks := make([]string, len(rows))
	for i, r := range rows {
		ks[i] = fmt.Sprintf("%s|%t|%x|%d|%d", r.Param, r.IsDate, r.Hash, r.Lo, r.Hi)
	}
	slices.Sort(ks)
	return strings.Join(ks, "\n")
}

// loadKeys reads every key record.
func (c *checker) loadKeys(ctx context.Context) error {
	c.olMu.Lock()
	c.ownerLedgers = nil // secrets added or keys shredded meanwhile
	c.olMu.Unlock()
	c.keyrecs = map[ident.Owner]storage.KeyRecord{}
	if err := c.o.Store.ScanKeys(ctx, func(k storage.KeyRecord) error {
		c.keyrecs[k.Owner] = k
		return nil
	}); err != nil {
		return fmt.Errorf("ledger check: scanning keys: %w", err)
	}
	return nil
}

// rechecks reads again, each in one snapshot, the resources that looked
// wrong in the scan (and those the log names that the scan did not
// meet), and judges them against the log as it is then (see below).
func (c *checker) rechecks(ctx context.Context) error {
	o := c.o
	// Every resource the log commits to and the scan did not meet.
	for key := range c.view.keys() {
		if !c.seen[key] {
			c.recheck = append(c.recheck, key)
		}
	}
	// Resources that looked wrong are read again, each in one snapshot,
	// and then the log's tail: every write visible in a snapshot
	// committed its event before the tail is read. They are judged
	// against the log as it is then.
	slices.Sort(c.recheck)
	c.recheck = slices.Compact(c.recheck)
	if len(c.recheck) > maxRechecks {
		// Beyond the bound, the scan's findings stand; a resource the
		// scan did not meet has nothing stored.
		for _, key := range c.recheck[maxRechecks:] {
			if !c.seen[key] {
				var r result
				c.evaluate(key, storage.ResourceState{}, indexState{known: true}, &r)
				c.found[key] = r.problems
			}
		}
		c.recheck = c.recheck[:maxRechecks]
	}
	states := make([]storage.ResourceState, len(c.recheck))
	for i, key := range c.recheck {
		st, err := c.read(ctx, key)
		if err != nil {
			return err
		}
		states[i] = st
	}
	// A snapshot is judged against a log read after it, if a second
	// snapshot read after that log shows the resource unchanged: then
	// every write visible in it committed its event before the log was
	// read, and no event in that log is of a later write.
	todo := make([]int, len(c.recheck))
	for i := range todo {
		todo[i] = i
	}
	for round := 0; len(todo) > 0 && round < maxRounds; round++ {
		if err := o.Log.ReadTail(ctx, o.Source, o.LogKey); err != nil {
			return err
		}
		c.view = o.Log.snapshot()
		if err := c.loadKeys(ctx); err != nil { // keys created or erased meanwhile
			return err
		}
		var again []int
		for _, i := range todo {
			st, err := c.read(ctx, c.recheck[i])
			if err != nil {
				return err
			}
			if !sameState(states[i], st) {
				states[i] = st
				again = append(again, i)
				continue
			}
			var r result
			typ, id, _ := strings.Cut(c.recheck[i], "/")
			c.evaluate(c.recheck[i], st, c.indexOf(typ, id, st.Index), &r)
			c.found[c.recheck[i]] = r.problems
		}
		todo = again
	}
	for _, i := range todo {
		c.found[c.recheck[i]] = []Problem{{Ref: c.recheck[i], Kind: KindUnsettled,
			Detail: fmt.Sprintf("it looked wrong and changed between each of %d readings: not judged; verify again", maxRounds+1)}}
	}
	return nil
}

// keyChecks compares the key records with the erasures of the log. An
// erasure that committed after the log was read would look forged: the
// log's tail is read once more before naming one.
func (c *checker) keyChecks(ctx context.Context) error {
	if c.keyDiffs(false) {
		if err := c.o.Log.ReadTail(ctx, c.o.Source, c.o.LogKey); err != nil {
			return err
		}
		c.view = c.o.Log.snapshot()
	}
	c.keyDiffs(true)
	return nil
}

// keyDiffs compares the key records with the erasures of the log and,
// with report, records the differences; it says whether it found any.
func (c *checker) keyDiffs(report bool) bool {
	found := false
	for owner, rec := range c.keyrecs {
		if strings.HasPrefix(string(owner), ident.SystemPrefix) {
			continue
		}
		erased := len(c.view.erasures[owner]) > 0
		var p Problem
		switch {
		case rec.Shredded && !erased:
			p = Problem{Ref: string(owner), Kind: KindForgedErasure, Detail: "the data key was destroyed, but the log has no $erase of this owner"}
		case !rec.Shredded && erased:
			p = Problem{Ref: string(owner), Kind: KindErasure, Detail: "the log erased this owner, but its data key is live again (restored from a copy?)"}
		default:
			continue
		}
		found = true
		if report {
			c.global = append(c.global, p)
		}
	}
	return found
}
