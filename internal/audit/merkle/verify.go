package merkle

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/phivault/phivault/internal/storage"
)

// Divergence is the first place where the stored log differs from what
// its events and checkpoints prove. Verify returns it as its error.
type Divergence struct {
	Index int64  // leaf index; -1 when the divergence is not at a leaf
	Seq   int64  // audit record sequence number; 0 when unknown
	Size  int64  // checkpoint size, when a checkpoint is at fault
	What  string // what differs, without any event content
}

func (d *Divergence) Error() string {
	switch {
	case d.Index >= 0 && d.Seq != 0:
		return fmt.Sprintf("audit log diverges at leaf %d (seq %d): %s", d.Index, d.Seq, d.What)
	case d.Index >= 0:
		return fmt.Sprintf("audit log diverges at leaf %d: %s", d.Index, d.What)
	case d.Seq != 0:
		return fmt.Sprintf("audit log diverges at record seq %d: %s", d.Seq, d.What)
	case d.Size >= 0:
		return fmt.Sprintf("audit log diverges at checkpoint of size %d: %s", d.Size, d.What)
	}
	return "audit log diverges: " + d.What
}

// VerifyOptions configures Verify.
type VerifyOptions struct {
	Store    storage.LogReader // required
	Opener   LeafOpener        // required: decrypts every leaf
	Verifier note.Verifier     // required: the log's checkpoint key
	Origin   string            // required: the checkpoint origin

	// Progress, if set, is called with the leaves checked and the total
	// from time to time (every verifyBatch leaves) and at the end.
	Progress func(done, total int64)
}

// VerifyReport sums up a successful verification.
type VerifyReport struct {
	Leaves      int64     // integrated leaves recomputed
	Checkpoints int       // checkpoints whose signature and root matched
	Root        tlog.Hash // root of the latest checkpoint
	Pending     int64     // records sequenced but not yet integrated (all opened)
}

// errStopScan ends a scan early without an error.
var errStopScan = errors.New("stop scan")

// verifyBatch is how many leaves Verify recomputes before it compares
// their stored tree hashes in one range read.
const verifyBatch = 4096

// Verify recomputes the whole log from the stored events: it opens
// every sealed body with the log key, recomputes its leaf hash and the
// tree's stored hashes, checks every checkpoint's signature and that its
// root is the root of the recomputed tree at its size (so every two
// checkpoints are consistent), and opens every pending record. It
// returns the first divergence as a *Divergence; other errors are I/O.
func Verify(ctx context.Context, o VerifyOptions) (VerifyReport, error) {
	var rep VerifyReport
	if o.Store == nil || o.Opener == nil || o.Verifier == nil || o.Origin == "" {
		return rep, errors.New("verify: Store, Opener, Verifier and Origin are required")
	}
	var cps []Checkpoint
	err := o.Store.ScanCheckpoints(ctx, func(c storage.Checkpoint) error {
		cp, err := OpenCheckpoint(c.Note, o.Origin, o.Verifier)
		if err != nil {
			return &Divergence{Index: -1, Size: c.Size, What: "signature does not verify with the configured key: " + err.Error()}
		}
		if cp.Size != c.Size || !bytes.Equal(cp.Root[:], c.Root) {
			return &Divergence{Index: -1, Size: c.Size, What: "the stored size or root differs from the signed note"}
		}
		cps = append(cps, cp)
		return nil
	})
	if err != nil {
		return rep, err
	}
	sort.Slice(cps, func(i, j int) bool { return cps[i].Size < cps[j].Size })
	var total int64
	if len(cps) > 0 {
		total = cps[len(cps)-1].Size
		rep.Root = cps[len(cps)-1].Root
	}

	f := newFrontier()
	next, ci := int64(0), 0
	// An empty tree's checkpoint is checked before any leaf.
	check := func() error {
		for ci < len(cps) && cps[ci].Size == f.count {
			root, err := f.root()
			if err != nil {
				return err
			}
			if root != cps[ci].Root {
				lo := int64(0)
				if ci > 0 {
					lo = cps[ci-1].Size
				}
				return &Divergence{Index: -1, Size: cps[ci].Size, What: fmt.Sprintf(
					"its signed root differs from the root recomputed from the stored events: a leaf in [%d, %d) or the tree was rewritten", lo, cps[ci].Size)}
			}
			ci++
		}
		return nil
	}
	if err := check(); err != nil {
		return rep, err
	}
	type computed struct {
		leaf   storage.LogLeaf
		hashes []tlog.Hash
	}
	var batch []computed
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		first := batch[0].leaf.Index
		lo := tlog.StoredHashCount(first)
		hi := tlog.StoredHashCount(batch[len(batch)-1].leaf.Index + 1)
		want := make([]tlog.Hash, 0, hi-lo)
		owner := make([]int, 0, hi-lo)
		for i, c := range batch {
			want = append(want, c.hashes...)
			for range c.hashes {
				owner = append(owner, i)
			}
		}
		id := lo
		err := o.Store.ScanHashes(ctx, lo, hi, func(gotID int64, h []byte) error {
			if gotID != id {
				l := batch[owner[id-lo]].leaf
				return &Divergence{Index: l.Index, Seq: l.Seq, What: fmt.Sprintf("stored tree hash %d is missing", id)}
			}
			if !bytes.Equal(h, want[id-lo][:]) {
				l := batch[owner[id-lo]].leaf
				return &Divergence{Index: l.Index, Seq: l.Seq, What: fmt.Sprintf("stored tree hash %d differs from the one recomputed from the event (event or tree changed, or leaves reordered)", id)}
			}
			id++
			return nil
		})
		if err != nil {
			return err
		}
		if id != hi {
			l := batch[owner[id-lo]].leaf
			return &Divergence{Index: l.Index, Seq: l.Seq, What: fmt.Sprintf("stored tree hash %d is missing", id)}
		}
		batch = batch[:0]
		if o.Progress != nil {
			o.Progress(next, total)
		}
		return nil
	}
	visit := func(l storage.LogLeaf, h tlog.Hash, opened bool) error {
		if l.Index != next {
			return &Divergence{Index: next, What: fmt.Sprintf("leaf missing: the next stored leaf is %d (seq %d); a record was deleted or its index changed", l.Index, l.Seq)}
		}
		if !opened {
			return &Divergence{Index: l.Index, Seq: l.Seq, What: "sealed body does not open with the log key (modified, replaced or not ours)"}
		}
		if l.LeafHash != nil && !bytes.Equal(l.LeafHash, h[:]) {
			return &Divergence{Index: l.Index, Seq: l.Seq, What: "stored leaf hash differs from the hash of the decrypted leaf"}
		}
		hs, err := f.append(h)
		if err != nil {
			return err
		}
		batch = append(batch, computed{leaf: l, hashes: hs})
		next++
		// Checkpoint roots need the frontier at exactly their size; the
		// stored hashes of the leaves before are compared first, so the
		// divergence named is the earliest.
		if ci < len(cps) && cps[ci].Size == f.count {
			if err := flush(); err != nil {
				return err
			}
			return check()
		}
		if len(batch) >= verifyBatch {
			return flush()
		}
		return nil
	}
	err = scanOpened(ctx, o, total, visit)
	if err != nil {
		return rep, err
	}
	if err := flush(); err != nil {
		return rep, err
	}
	if next < total {
		return rep, &Divergence{Index: next, What: fmt.Sprintf("leaf missing: the store has %d leaves, the latest checkpoint %d", next, total)}
	}
	if err := check(); err != nil {
		return rep, err
	}
	// Leaves past the checkpoints read above are legitimate only if an
	// integrator signed them meanwhile (it does so in the same
	// transaction, so a newer checkpoint covers them); one without a
	// checkpoint was indexed by hand. A running integrator can move the
	// latest checkpoint during this scan: re-read it before accusing.
	bound := total
	for attempt := 0; ; attempt++ {
		latest, err := o.Store.LatestCheckpoint(ctx)
		if err != nil && !errors.Is(err, storage.ErrNotFound) {
			return rep, err
		}
		bound = max(bound, latest.Size)
		var beyond *storage.LogLeaf
		err = o.Store.ScanLeaves(ctx, bound, 1<<62, func(l storage.LogLeaf) error {
			beyond = &l
			return errStopScan
		})
		if err != nil && !errors.Is(err, errStopScan) {
			return rep, err
		}
		if beyond == nil {
			break
		}
		if again, err := o.Store.LatestCheckpoint(ctx); err == nil && again.Size > beyond.Index && attempt < 8 {
			continue // signed meanwhile
		}
		return rep, &Divergence{Index: beyond.Index, Seq: beyond.Seq, What: fmt.Sprintf("leaf is beyond the latest checkpoint (size %d): indexed without a signed checkpoint", bound)}
	}
	err = o.Store.ScanPending(ctx, func(l storage.LogLeaf) error {
		leaf, _, err := o.Opener.OpenLeaf(l.Body)
		if err != nil {
			return &Divergence{Index: -1, Seq: l.Seq, What: "record not yet integrated, and its sealed body does not open with the log key (inserted or modified)"}
		}
		h := tlog.RecordHash(leaf)
		if l.LeafHash != nil && !bytes.Equal(l.LeafHash, h[:]) {
			return &Divergence{Index: -1, Seq: l.Seq, What: "record not yet integrated, and its stored leaf hash differs from the hash of the decrypted leaf"}
		}
		rep.Pending++
		return nil
	})
	if err != nil {
		return rep, err
	}
	rep.Leaves = next
	rep.Checkpoints = len(cps)
	if o.Progress != nil {
		o.Progress(next, total)
	}
	return rep, nil
}

// Verification pipeline: one goroutine reads leaves from the store,
// openWorkers decrypt and hash them, and the caller's goroutine visits
// them in index order. Every goroutine stops when scanOpened returns.
const (
	openBatch   = 512 // leaves per unit of work
	openWorkers = 2   // the machine class phivault targets has 2 cores
	openAhead   = 8   // batches in flight: bounds memory to ~1.5 MiB of bodies
)

type openedBatch struct {
	leaves []storage.LogLeaf
	hashes []tlog.Hash
	ok     []bool
	done   chan struct{}
}

// scanOpened calls visit for every stored leaf in [0, total) in index
// order with its leaf hash, and opened=false when its body did not
// open. It returns the first error of visit or of the scan.
func scanOpened(ctx context.Context, o VerifyOptions, total int64, visit func(l storage.LogLeaf, h tlog.Hash, opened bool) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	work := make(chan *openedBatch, openAhead)
	order := make(chan *openedBatch, openAhead)
	var wg sync.WaitGroup
	defer wg.Wait() // after cancel (deferred later, runs first)
	defer cancel()
	for range openWorkers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for b := range work {
				for i, l := range b.leaves {
					leaf, _, err := o.Opener.OpenLeaf(l.Body)
					b.ok[i] = err == nil
					if err == nil {
						b.hashes[i] = tlog.RecordHash(leaf)
					}
				}
				close(b.done)
			}
		}()
	}
	scanErr := make(chan error, 1)
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer close(order)
		defer close(work)
		var cur []storage.LogLeaf
		send := func() error {
			b := &openedBatch{leaves: cur, hashes: make([]tlog.Hash, len(cur)), ok: make([]bool, len(cur)), done: make(chan struct{})}
			cur = nil
			for _, ch := range []chan *openedBatch{order, work} {
				select {
				case ch <- b:
				case <-ctx.Done():
					return ctx.Err()
				}
			}
			return nil
		}
		err := o.Store.ScanLeaves(ctx, 0, total, func(l storage.LogLeaf) error {
			cur = append(cur, l)
			if len(cur) >= openBatch {
				return send()
			}
			return nil
		})
		if err == nil && len(cur) > 0 {
			err = send()
		}
		scanErr <- err
	}()
	for b := range order {
		select {
		case <-b.done:
		case <-ctx.Done():
			return ctx.Err()
		}
		for i, l := range b.leaves {
			if err := visit(l, b.hashes[i], b.ok[i]); err != nil {
				return err
			}
		}
	}
	return <-scanErr
}
