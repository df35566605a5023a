package merkle

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
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
	Opener   LogKey            // required: opens every bundle and pending record
	Verifier note.Verifier     // required: the log's checkpoint key
	Origin   string            // required: the checkpoint origin

	// Progress, if set, is called with the leaves checked and the total
	// from time to time (every progressEvery leaves) and at the end.
	Progress func(done, total int64)

	// Pinned are signed checkpoints kept outside the database: the
	// anchor the integrator keeps beside the key file, a witness's
	// co-signed checkpoint (ADR 0016). Each must verify with Verifier,
	// and the stored log must extend it: a smaller log is a rollback (a
	// log emptied and signed again from size 0 included), another root
	// at its size a rewrite.
	Pinned [][]byte

	// Leaf, if set, is called with every integrated leaf below the
	// latest checkpoint's size, once each, after its bundle opened: from
	// several goroutines at once, in no particular order. An error from
	// it stops Verify and is returned as is. The ledger check reads the
	// commitments of the events this way, from the log being verified.
	Leaf func(index int64, leaf []byte, v1 bool) error
}

// VerifyReport sums up a successful verification.
type VerifyReport struct {
	Leaves      int64     // integrated leaves recomputed
	Checkpoints int       // checkpoints whose signature and root matched
	Tiles       int64     // stored hash tiles compared
	Root        tlog.Hash // root of the latest checkpoint
	Pending     int64     // records sequenced but not yet integrated (all opened)
	Pinned      int       // checkpoints kept outside the database that the log extends
}

// ErrConverting is returned by Verify while records of the layout
// before entry bundles remain: the integrator of "phivault serve"
// converts them at its first run, and verification runs after.
var ErrConverting = errors.New("the audit log is being converted to entry bundles")

// errStopScan ends a scan early without an error.
var errStopScan = errors.New("stop scan")

// progressEvery is how many leaves pass between Progress calls.
const progressEvery = 1 << 16

// Verify recomputes the whole log from the stored events: it opens
// every sealed entry bundle with the log key, recomputes each leaf's
// hash and the tree, checks every stored hash tile against the
// recomputed hashes, every checkpoint's signature and that its root is
// the root of the recomputed tree at its size (so every two checkpoints
// are consistent), that no leaf lies beyond the latest checkpoint, and
// opens every pending record. It returns the first divergence as a
// *Divergence; other errors are I/O.
func Verify(ctx context.Context, o VerifyOptions) (VerifyReport, error) {
	var rep VerifyReport
	if o.Store == nil || o.Opener == nil || o.Verifier == nil || o.Origin == "" {
		return rep, errors.New("verify: Store, Opener, Verifier and Origin are required")
	}
	// Records of the layout before entry bundles are converted in leaf
	// order from the end of the bundles on: one below it is not waiting
	// for conversion but was put there (or left there) by hand.
	switch first, err := o.Store.FirstLegacy(ctx); {
	case errors.Is(err, storage.ErrNotFound):
	case err != nil:
		return rep, err
	default:
		size, err := o.Store.StoredSize(ctx)
		if err != nil {
			return rep, err
		}
		if first.Index < size {
			return rep, &Divergence{Index: first.Index, Seq: first.Seq, What: fmt.Sprintf("a record of the layout before entry bundles, at a leaf the entry bundles already hold (%d leaves): inserted or left behind", size)}
		}
		n, err := o.Store.CountLegacy(ctx)
		if err != nil {
			return rep, err
		}
		return rep, fmt.Errorf("%w: %d records left (phivault serve converts them at start)", ErrConverting, n)
	}
	cps, err := openCheckpoints(ctx, o)
	if err != nil {
		return rep, err
	}
	sort.Slice(cps, func(i, j int) bool { return cps[i].Size < cps[j].Size })
	var total int64
	if len(cps) > 0 {
		total = cps[len(cps)-1].Size
		rep.Root = cps[len(cps)-1].Root
	}
	stored := len(cps)
	cps, pinned, err := addPinned(o, cps, total)
	if err != nil {
		return rep, err
	}

	f := newFrontier()
	tiles := newTileChecker(ctx, o.Store)
	ci := 0
	// rootDiffers is the divergence of checkpoint ci, whose root is not
	// the recomputed one; the stored tiles, compared first, may name the
	// leaf more precisely.
	rootDiffers := func() error {
		if err := tiles.finish(); err != nil {
			return err
		}
		if pinned[cps[ci].Size] {
			return &Divergence{Index: -1, Size: cps[ci].Size, What: fmt.Sprintf(
				"the checkpoint kept outside the database (size %d) is not a prefix of the stored log: a leaf in [%d, %d) or the tree was rewritten after it was signed", cps[ci].Size, lowerBound(cps, ci), cps[ci].Size)}
		}
		return &Divergence{Index: -1, Size: cps[ci].Size, What: fmt.Sprintf(
			"its signed root differs from the root recomputed from the stored events: a leaf in [%d, %d) or the tree was rewritten", lowerBound(cps, ci), cps[ci].Size)}
	}
	// Checkpoint roots need the frontier at exactly their size; an empty
	// tree's checkpoint is checked before any leaf.
	check := func() error {
		for ci < len(cps) && cps[ci].Size == f.count {
			root, err := f.root()
			if err != nil {
				return err
			}
			if root != cps[ci].Root {
				return rootDiffers()
			}
			ci++
		}
		return nil
	}
	if err := check(); err != nil {
		return rep, err
	}
	var lastProgress int64
	progress := func() {
		if o.Progress != nil && f.count-lastProgress >= progressEvery {
			lastProgress = f.count
			o.Progress(f.count, total)
		}
	}
	// leaf appends one leaf: the general path (the last, partial bundle,
	// or a bundle the checkpoints end inside of).
	leaf := func(h tlog.Hash) error {
		hs, err := f.append(h)
		if err != nil {
			return err
		}
		for k := 0; k < len(hs); k += TileHeight {
			if err := tiles.put(k/TileHeight, hs[k]); err != nil {
				return err
			}
		}
		if ci < len(cps) && cps[ci].Size == f.count {
			return check()
		}
		return nil
	}
	visit := func(ob *openedBundle) error {
		base := f.count
		w := min(int64(len(ob.hashes)), total-base)
		if w < TileWidth || ob.nodes == nil {
			for _, h := range ob.hashes[:w] {
				if err := leaf(h); err != nil {
					return err
				}
			}
			progress()
			return nil
		}
		// A full bundle is a complete subtree of 256 leaves whose
		// hashes the workers computed: checkpoints inside it take their
		// roots from those and the frontier above; the frontier takes
		// its root at tree level 8.
		br := bundleHashes{f: f, base: base, nodes: ob.nodes}
		for ci < len(cps) && cps[ci].Size < base+TileWidth {
			root, err := tlog.TreeHash(cps[ci].Size, br)
			if err != nil {
				return err
			}
			if root != cps[ci].Root {
				for _, h := range ob.hashes[:cps[ci].Size-base] {
					if err := tiles.put(0, h); err != nil {
						return err
					}
				}
				return rootDiffers()
			}
			ci++
		}
		for _, h := range ob.hashes {
			if err := tiles.put(0, h); err != nil {
				return err
			}
		}
		hs, err := f.appendNode(TileHeight, ob.nodes[TileHeight][0])
		if err != nil {
			return err
		}
		for k := 0; k < len(hs); k += TileHeight {
			if err := tiles.put(1+k/TileHeight, hs[k]); err != nil {
				return err
			}
		}
		progress()
		return check()
	}
	if err := scanOpened(ctx, o, total, visit); err != nil {
		return rep, err
	}
	// The partial tiles first: a leaf removed from the last bundle shows
	// there, at its place, rather than as a short log.
	if err := tiles.finish(); err != nil {
		return rep, err
	}
	if f.count < total {
		return rep, &Divergence{Index: f.count, What: fmt.Sprintf("leaf missing: the entry bundles hold %d leaves, the latest checkpoint %d", f.count, total)}
	}
	if err := check(); err != nil {
		return rep, err
	}
	// Leaves past the checkpoints read above are legitimate only if an
	// integrator signed them meanwhile (it does so in the same
	// transaction, so a newer checkpoint covers them); one without a
	// checkpoint was added by hand. A running integrator can move the
	// latest checkpoint during this scan: re-read it before accusing.
	bound := total
	for attempt := 0; ; attempt++ {
		latest, err := o.Store.LatestCheckpoint(ctx)
		if err != nil && !errors.Is(err, storage.ErrNotFound) {
			return rep, err
		}
		bound = max(bound, latest.Size)
		var beyond int64 = -1
		err = o.Store.ScanBundles(ctx, bound/TileWidth, 1<<62, func(b storage.Bundle) error {
			if end := b.N*TileWidth + int64(b.Width); end > bound {
				beyond = max(bound, b.N*TileWidth)
				return errStopScan
			}
			return nil
		})
		if err != nil && !errors.Is(err, errStopScan) {
			return rep, err
		}
		if beyond < 0 {
			break
		}
		if again, err := o.Store.LatestCheckpoint(ctx); err == nil && again.Size > beyond && attempt < 8 {
			continue // signed meanwhile
		}
		return rep, &Divergence{Index: beyond, What: fmt.Sprintf("leaf is beyond the latest checkpoint (size %d): added to an entry bundle without a signed checkpoint", bound)}
	}
	// Tiles beyond the tree: a partial tile wider than the latest
	// checkpoint's tree, or a tile past it, was not written by an
	// integrator (and would block the next integration).
	for L := 0; L < 8; L++ {
		if err := tilesWithin(ctx, o, L, total, bound); err != nil {
			return rep, err
		}
	}
	seen := make(map[tlog.Hash]int64) // leaf hash -> seq of the pending records
	err = o.Store.ScanPending(ctx, func(l storage.LogLeaf) error {
		leaf, _, err := o.Opener.OpenLeaf(l.Body)
		if err != nil {
			return &Divergence{Index: -1, Seq: l.Seq, What: "record not yet integrated, and its sealed body does not open with the log key (inserted or modified)"}
		}
		h := tlog.RecordHash(leaf)
		if l.LeafHash != nil && !bytes.Equal(l.LeafHash, h[:]) {
			return &Divergence{Index: -1, Seq: l.Seq, What: "record not yet integrated, and its stored leaf hash differs from the hash of the decrypted leaf"}
		}
		if first, dup := seen[h]; dup {
			return &Divergence{Index: -1, Seq: l.Seq, What: fmt.Sprintf("record not yet integrated, and it holds the same leaf as record %d (a copied record)", first)}
		}
		seen[h] = l.Seq
		rep.Pending++
		return nil
	})
	if err != nil {
		return rep, err
	}
	rep.Leaves = f.count
	rep.Checkpoints = stored
	rep.Pinned = len(pinned)
	rep.Tiles = tiles.compared
	if o.Progress != nil {
		o.Progress(f.count, total)
	}
	return rep, nil
}

// tilesWithin checks that the stored tiles of level L from the last one
// verification compared (the tree of total leaves) on are within the
// tree of bound leaves (the latest checkpoint, re-read once more).
func tilesWithin(ctx context.Context, o VerifyOptions, L int, total, bound int64) error {
	shift := uint(L * TileHeight)
	width := func(size, n int64) int64 { // width of tile n at level L in a tree of size leaves
		return min(TileWidth, (size>>shift)-n*TileWidth)
	}
	var bad *storage.Tile
	err := o.Store.ScanTiles(ctx, L, (total>>shift)/TileWidth, 1<<50, func(t storage.Tile) error {
		if int64(t.Width) > width(bound, t.N) {
			bad = &t
			return errStopScan
		}
		return nil
	})
	if err != nil && !errors.Is(err, errStopScan) {
		return err
	}
	if bad == nil {
		return nil
	}
	if latest, err := o.Store.LatestCheckpoint(ctx); err == nil && int64(bad.Width) <= width(latest.Size, bad.N) {
		return nil // signed meanwhile
	}
	first := bad.N * TileWidth << shift
	return &Divergence{Index: first, What: fmt.Sprintf("stored hash tile %d/%d has %d hashes, more than the tree of the latest checkpoint (size %d) has: added without a signed checkpoint", L, bad.N, bad.Width, bound)}
}

// lowerBound is the size of the checkpoint before cps[ci] (0 for none).
func lowerBound(cps []Checkpoint, ci int) int64 {
	if ci == 0 {
		return 0
	}
	return cps[ci-1].Size
}

// openCheckpoints reads every stored checkpoint and checks its
// signature and that its stored size and root are the signed ones, on
// openWorkers goroutines (an Ed25519 verification costs about as much as
// 40 leaves: with a checkpoint every few events it dominates). It
// returns the first failure in size order as a *Divergence.
func openCheckpoints(ctx context.Context, o VerifyOptions) ([]Checkpoint, error) {
	var stored []storage.Checkpoint
	if err := o.Store.ScanCheckpoints(ctx, func(c storage.Checkpoint) error {
		stored = append(stored, c)
		return nil
	}); err != nil {
		return nil, err
	}
	cps := make([]Checkpoint, len(stored))
	errs := make([]error, len(stored))
	var wg sync.WaitGroup
	for w := range openWorkers {
		wg.Go(func() {
			for i := w; i < len(stored); i += openWorkers {
				c := stored[i]
				cp, err := OpenCheckpoint(c.Note, o.Origin, o.Verifier)
				switch {
				case err != nil:
					errs[i] = &Divergence{Index: -1, Size: c.Size, What: "signature does not verify with the configured key: " + err.Error()}
				case cp.Size != c.Size || !bytes.Equal(cp.Root[:], c.Root):
					errs[i] = &Divergence{Index: -1, Size: c.Size, What: "the stored size or root differs from the signed note"}
				}
				cps[i] = cp
			}
		})
	}
	wg.Wait()
	for _, err := range errs { // in size order: ScanCheckpoints' order
		if err != nil {
			return nil, err
		}
	}
	return cps, nil
}

// tileChecker compares the stored hash tiles with the hashes the
// verification recomputes: it collects, per tile level, the hashes of
// the tile being filled (tree level 8*L, from the stored hashes of
// each appended leaf), compares each tile when it is full and the last,
// partial ones at the end. Stored tiles are read ahead tileAhead at a
// time per level.
type tileChecker struct {
	ctx      context.Context
	store    storage.LogReader
	levels   []tileLevel
	compared int64
}

type tileLevel struct {
	n      int64 // tile being filled
	hashes []byte
	ahead  []storage.Tile // stored tiles read ahead, from n on
}

const tileAhead = 128

func newTileChecker(ctx context.Context, st storage.LogReader) *tileChecker {
	return &tileChecker{ctx: ctx, store: st}
}

// put appends hash h to the tile being filled at tile level L (tree
// level 8*L) and compares the tile when it is full.
func (c *tileChecker) put(L int, h tlog.Hash) error {
	for len(c.levels) <= L {
		c.levels = append(c.levels, tileLevel{hashes: make([]byte, 0, TileWidth*tlog.HashSize)})
	}
	lv := &c.levels[L]
	lv.hashes = append(lv.hashes, h[:]...)
	if len(lv.hashes) == TileWidth*tlog.HashSize {
		if err := c.compare(L, lv); err != nil {
			return err
		}
		lv.n++
		lv.hashes = lv.hashes[:0]
	}
	return nil
}

// finish compares the partial tiles.
func (c *tileChecker) finish() error {
	for L := range c.levels {
		if lv := &c.levels[L]; len(lv.hashes) > 0 {
			if err := c.compare(L, lv); err != nil {
				return err
			}
		}
	}
	return nil
}

func (c *tileChecker) compare(L int, lv *tileLevel) error {
	if len(lv.ahead) == 0 || lv.ahead[0].N > lv.n {
		lv.ahead = lv.ahead[:0]
		err := c.store.ScanTiles(c.ctx, L, lv.n, lv.n+tileAhead, func(t storage.Tile) error {
			lv.ahead = append(lv.ahead, t)
			return nil
		})
		if err != nil {
			return err
		}
	}
	w := len(lv.hashes) / tlog.HashSize
	first := lv.n << (uint(L) * TileHeight) * TileWidth // first leaf under the tile
	if len(lv.ahead) == 0 || lv.ahead[0].N != lv.n {
		return &Divergence{Index: first, What: fmt.Sprintf("stored hash tile %d/%d is missing", L, lv.n)}
	}
	t := lv.ahead[0]
	lv.ahead = lv.ahead[1:]
	if t.Width < w || len(t.Data) != t.Width*tlog.HashSize {
		return &Divergence{Index: first, What: fmt.Sprintf("stored hash tile %d/%d has %d hashes, the tree %d", L, lv.n, t.Width, w)}
	}
	if !bytes.Equal(t.Data[:len(lv.hashes)], lv.hashes) {
		k := 0
		for bytes.Equal(t.Data[k*tlog.HashSize:(k+1)*tlog.HashSize], lv.hashes[k*tlog.HashSize:(k+1)*tlog.HashSize]) {
			k++
		}
		node := lv.n*TileWidth + int64(k)
		leaf := node << (uint(L) * TileHeight)
		return &Divergence{Index: leaf, What: fmt.Sprintf("stored hash tile %d/%d differs from the hashes recomputed from the events at its hash %d (tree level %d, from leaf %d): the tile or the events were changed", L, lv.n, k, L*TileHeight, leaf)}
	}
	c.compared++
	return nil
}

// Verification pipeline: one goroutine reads entry bundles from the
// store, openWorkers open them and hash their leaves, and the caller's
// goroutine visits the leaf hashes in index order. Every goroutine
// stops when scanOpened returns.
const (
	openWorkers = 2  // the machine class phivault targets has 2 cores
	openAhead   = 32 // bundles in flight: bounds memory to ~5 MiB of bundles
)

type openedBundle struct {
	b      storage.Bundle
	hashes []tlog.Hash   // leaf hashes
	nodes  [][]tlog.Hash // full bundles: nodes[l] are the subtree's hashes at tree level l (0..8)
	err    error
	// hookErr is the error of VerifyOptions.Leaf, returned as is.
	hookErr error
	done    chan struct{}
}

// subtree computes the hashes of the complete subtree of 256 leaves
// with leaf hashes hs, level by level.
func subtree(hs []tlog.Hash) [][]tlog.Hash {
	nodes := make([][]tlog.Hash, TileHeight+1)
	nodes[0] = hs
	for l := 1; l <= TileHeight; l++ {
		prev := nodes[l-1]
		cur := make([]tlog.Hash, len(prev)/2)
		for i := range cur {
			cur[i] = tlog.NodeHash(prev[2*i], prev[2*i+1])
		}
		nodes[l] = cur
	}
	return nodes
}

// bundleHashes reads the tree of a checkpoint that ends inside a full
// bundle starting at leaf base: hashes below tree level 8 from the
// bundle's subtree, the others from the frontier before the bundle.
type bundleHashes struct {
	f     *frontier
	base  int64
	nodes [][]tlog.Hash
}

func (b bundleHashes) ReadHashes(ids []int64) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(ids))
	for i, id := range ids {
		level, n := tlog.SplitStoredHashIndex(id)
		if level >= TileHeight {
			h, err := b.f.ReadHashes(ids[i : i+1])
			if err != nil {
				return nil, err
			}
			out[i] = h[0]
			continue
		}
		k := n - b.base>>uint(level)
		if k < 0 || k >= int64(len(b.nodes[level])) {
			return nil, fmt.Errorf("tree hash at level %d index %d is not in the bundle", level, n)
		}
		out[i] = b.nodes[level][k]
	}
	return out, nil
}

// scanOpened calls visit with every stored entry bundle covering
// [0, total), in order, opened and hashed. A bundle that is missing, out
// of place or does not open is a *Divergence.
func scanOpened(ctx context.Context, o VerifyOptions, total int64, visit func(*openedBundle) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	work := make(chan *openedBundle, openAhead)
	order := make(chan *openedBundle, openAhead)
	var wg sync.WaitGroup
	defer wg.Wait() // after cancel (deferred later, runs first)
	defer cancel()
	for range openWorkers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ob := range work {
				leaves, v1, err := o.Opener.OpenBundle(ob.b.N, ob.b.Width, ob.b.Sealed)
				ob.err = err
				if err == nil && o.Leaf != nil {
					first := ob.b.N * TileWidth
					for i, l := range leaves {
						if first+int64(i) >= total {
							break
						}
						if ob.hookErr = o.Leaf(first+int64(i), l, v1 != nil && v1[i]); ob.hookErr != nil {
							break
						}
					}
				}
				if err == nil {
					ob.hashes = make([]tlog.Hash, len(leaves))
					for i, l := range leaves {
						ob.hashes[i] = tlog.RecordHash(l)
					}
					if len(leaves) == TileWidth {
						ob.nodes = subtree(ob.hashes)
					}
				}
				close(ob.done)
			}
		}()
	}
	scanErr := make(chan error, 1)
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer close(order)
		defer close(work)
		if total == 0 {
			scanErr <- nil
			return
		}
		err := o.Store.ScanBundles(ctx, 0, (total-1)/TileWidth+1, func(b storage.Bundle) error {
			ob := &openedBundle{b: b, done: make(chan struct{})}
			for _, ch := range []chan *openedBundle{order, work} {
				select {
				case ch <- ob:
				case <-ctx.Done():
					return ctx.Err()
				}
			}
			return nil
		})
		scanErr <- err
	}()
	next := int64(0)
	for ob := range order {
		select {
		case <-ob.done:
		case <-ctx.Done():
			return ctx.Err()
		}
		first := ob.b.N * TileWidth
		if first != next {
			return &Divergence{Index: next, What: fmt.Sprintf("leaf missing: entry bundle %d is missing or ends early (the next stored bundle is %d)", next/TileWidth, ob.b.N)}
		}
		if ob.hookErr != nil {
			return ob.hookErr
		}
		if ob.err != nil {
			return &Divergence{Index: first, What: fmt.Sprintf("entry bundle %d (leaves %d..%d) does not open with the log key (modified, moved, replaced or not ours)", ob.b.N, first, first+int64(ob.b.Width)-1)}
		}
		if err := visit(ob); err != nil {
			return err
		}
		next = first + int64(len(ob.hashes))
		if next >= total {
			break // leaves beyond the checkpoints are checked after
		}
	}
	return <-scanErr
}

// addPinned checks the pinned checkpoints (VerifyOptions.Pinned) and
// adds them to cps (sorted by size), where the recomputed tree is
// compared with them like with the stored ones. A pinned checkpoint
// larger than the latest stored one, or of a stored size with another
// root, is a divergence at once. pinned holds the sizes added.
func addPinned(o VerifyOptions, cps []Checkpoint, total int64) ([]Checkpoint, map[int64]bool, error) {
	pinned := map[int64]bool{}
	for _, raw := range o.Pinned {
		cp, err := OpenCheckpoint(raw, o.Origin, o.Verifier)
		if err != nil {
			return nil, nil, &Divergence{Index: -1, Size: -1, What: "a checkpoint kept outside the database does not verify with the log's key: " + err.Error()}
		}
		if cp.Size > total {
			return nil, nil, &Divergence{Index: -1, Size: cp.Size, What: fmt.Sprintf(
				"rolled back: a checkpoint kept outside the database has size %d, the stored log only %d (the log was truncated, or emptied and signed again)", cp.Size, total)}
		}
		i := sort.Search(len(cps), func(i int) bool { return cps[i].Size >= cp.Size })
		if i < len(cps) && cps[i].Size == cp.Size {
			if cps[i].Root != cp.Root {
				return nil, nil, &Divergence{Index: -1, Size: cp.Size, What: fmt.Sprintf(
					"forked: a checkpoint kept outside the database has size %d and another root than the stored one (the log was rewritten)", cp.Size)}
			}
			pinned[cp.Size] = true
			continue
		}
		cps = slices.Insert(cps, i, cp)
		pinned[cp.Size] = true
	}
	return cps, pinned, nil
}
