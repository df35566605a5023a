package ledger

import (
	"context"

	"github.com/phivault/phivault/internal/audit"
	"github.com/phivault/phivault/internal/storage"
)

// addBaseline queues commitments of the baseline and appends a full
// batch.
func (c *checker) addBaseline(ctx context.Context, cs []audit.Commit) {
	if len(cs) == 0 {
		return
	}
	c.bmu.Lock()
	c.baselined = append(c.baselined, cs...)
	c.bmu.Unlock()
	if err := c.flushBaseline(ctx, false); err != nil {
		c.bmu.Lock()
		if c.berr == nil {
			c.berr = err
		}
		c.bmu.Unlock()
	}
}

// flushBaseline appends the queued commitments: full batches, or all
// with last.
func (c *checker) flushBaseline(ctx context.Context, last bool) error {
	c.bmu.Lock()
	defer c.bmu.Unlock()
	if c.berr != nil {
		return c.berr
	}
	for len(c.baselined) >= audit.MaxCommitsPerEvent || (last && len(c.baselined) > 0) {
		n := min(len(c.baselined), audit.MaxCommitsPerEvent)
		if err := c.o.Baseline(ctx, c.baselined[:n]); err != nil {
			c.berr = err
			return err
		}
		c.mu.Lock()
		c.rep.Baselined += int64(n)
		c.mu.Unlock()
		c.baselined = c.baselined[n:]
	}
	return nil
}

// baseline, in baseline mode, commits version v (plaintext pt) as
// found, with the index rows if it is the current version.
func (c *checker) baseline(v storage.Version, pt []byte, st storage.ResourceState, ix indexState, ref string, r *result) {
	if c.o.Baseline == nil {
		return
	}
	cm := audit.Commit{Kind: audit.CommitBaseline, Ref: ref, Owner: string(v.Owner), Deleted: v.Deleted, Version: c.o.Ledger.Version(v, pt)}
	if cur := st.Current; cur != nil && cur.Version == v.Version && !v.Deleted {
		// Rows stored apart are left out: their resource's index is
		// then not checked, as before the baseline.
		cm.Index = ix.digest
	}
	r.baseline = append(r.baseline, cm)
}
