package ledger

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/phivault/phivault/internal/audit"
	"github.com/phivault/phivault/internal/ident"
	"github.com/phivault/phivault/internal/keys"
	"github.com/phivault/phivault/internal/storage"
)

// maxRechecks bounds the resources read again, each in one snapshot,
// after the log's tail was read: a resource written during the check
// looks inconsistent in the scans (which read versions, pointers and
// index rows at slightly different moments, after the log).
const maxRechecks = 10000

// IndexRower recomputes the index rows of a resource body: with it, an
// index mismatch names the parameters that differ. Optional.
type IndexRower func(typ string, body []byte) ([]storage.IndexRow, error)

// Options configures Check. All but Rows and Progress are required.
type Options struct {
	Store   storage.Reader       // versions and keys
	Current storage.LedgerReader // current pointers, index rows, snapshots
	Keys    *keys.Keyring        // opens versions
	Ledger  *keys.LedgerKey      // recomputes commitments
	Log     *Log                 // the integrated leaves, already fed
	Source  audit.Source         // to read the log's tail
	LogKey  LogKey               // opens the tail
	Rows    IndexRower
	// Progress is called after each resource, from one goroutine at a
	// time.
	Progress func()
	// Workers open and hash versions; default 2.
	Workers int

	// Baseline, when set, makes the check commit what was written
	// before the ledger started ("phivault verify --baseline"): every
	// version without a commitment that predates the ledger's start (or
	// that an erasure explains), and the index rows of such a current
	// version, are passed to Baseline as CommitBaseline commitments, at
	// most audit.MaxCommitsPerEvent at a time, and a last call passes
	// one CommitBaselineDone. Baseline appends them to the log; it is
	// called from one goroutine at a time. Nothing else is blessed:
	// every other difference is still reported.
	Baseline func(ctx context.Context, commits []audit.Commit) error
}

// ErrBaselineDone is returned by Check in baseline mode when the log
// already holds a complete baseline.
var ErrBaselineDone = errors.New("ledger: a baseline was already committed")

// Check compares the database with the log (see the package doc). It
// reads the log's tail first (o.Log must hold the integrated leaves),
// so that the log it compares with is at least as new as the database
// it reads. Errors are I/O; differences are in the report.
func Check(ctx context.Context, o Options) (Report, error) {
	var rep Report
	if o.Store == nil || o.Current == nil || o.Keys == nil || o.Ledger == nil || o.Log == nil || o.Source == nil || o.LogKey == nil {
		return rep, errors.New("ledger check: Store, Current, Keys, Ledger, Log, Source and LogKey are required")
	}
	if o.Workers <= 0 {
		o.Workers = 2
	}
	if err := o.Log.ReadTail(ctx, o.Source, o.LogKey); err != nil {
		return rep, err
	}
	c := &checker{o: o, view: o.Log.snapshot(), found: map[string][]Problem{}}
	if err := c.loadKeys(ctx); err != nil {
		return rep, err
	}
	c.startChecks()
	if o.Baseline != nil && c.view.baseline >= 0 {
		return rep, ErrBaselineDone
	}
	if err := c.scan(ctx); err != nil {
		return rep, err
	}
	if o.Baseline != nil {
		if err := c.flushBaseline(ctx, true); err != nil {
			return rep, err
		}
		if err := o.Baseline(ctx, []audit.Commit{{Kind: audit.CommitBaselineDone}}); err != nil {
			return rep, err
		}
	}
	if err := c.rechecks(ctx); err != nil {
		return rep, err
	}
	if err := c.keyChecks(ctx); err != nil {
		return rep, err
	}
	c.rep.Commits = c.view.commits()
	c.global = append(c.global, c.view.bad()...)
	var all []Problem
	all = append(all, c.global...)
	for _, ps := range c.found {
		all = append(all, ps...)
	}
	slices.SortStableFunc(all, func(a, b Problem) int { return cmp.Compare(a.Ref, b.Ref) })
	rep = c.rep
	if len(all) > MaxProblems {
		rep.More = int64(len(all) - MaxProblems)
		all = all[:MaxProblems]
	}
	rep.Problems = all
	return rep, nil
}

// checker is one run of Check.
type checker struct {
	o       Options
	view    *view
	keyrecs map[ident.Owner]storage.KeyRecord
	// startTime is when the ledger started; versions older than it and
	// not committed were written before ledger v1. strict: a complete
	// baseline was committed, or the start is unknown.
	startTime time.Time
	strict    bool
	// noMAC: the ledger key is not the log's; commitments are not compared.
	noMAC bool

	// ownerLedgers caches owners' ledger keys (nil: cannot be opened).
	olMu         sync.Mutex
	ownerLedgers map[ident.Owner]*keys.OwnerLedger

	mu      sync.Mutex
	rep     Report
	found   map[string][]Problem // per resource key
	global  []Problem
	recheck []string
	seen    map[string]bool

	// baseline mode: commitments waiting to be appended.
	bmu       sync.Mutex
	baselined []audit.Commit
	berr      error
}

// startChecks reads the ledger's start and baseline from the log.
func (c *checker) startChecks() {
	v := c.view
	if len(v.starts) == 0 {
		if v.commits() > 0 {
			c.global = append(c.global, Problem{Ref: "audit log", Kind: KindLog,
				Detail: "the ledger's start event is missing from the log (deleted before it was integrated?): every version without a commitment is reported"})
		}
		c.strict = true
	} else {
		first := v.starts[0]
		c.startTime = first.time
		want := c.o.Ledger.Check()
		for _, s := range v.starts {
			if !equalBytes(s.check, want) {
				c.global = append(c.global, Problem{Ref: "system/ledger", Kind: KindLedgerKey,
					Detail: "the ledger key is not the one the log's commitments were made with (its key record was replaced): no commitment can be compared"})
				c.noMAC = true
				break
			}
		}
	}
	if v.baseline >= 0 {
		c.strict = true
	}
}

// result is what evaluating one resource found.
type result struct {
	problems                                 []Problem
	versions, verified, deleted, erased, pre int64
	baseline                                 []audit.Commit // baseline mode
	index                                    *indexWant     // to judge once the index pass is done
}

func (r *result) add(ref string, k Kind, detail string) {
	r.problems = append(r.problems, Problem{Ref: ref, Kind: k, Detail: detail})
}

// group is one resource as the scans found it: its versions and
// pointer, and what the index pass found of its rows.
type group struct {
	key string
	st  storage.ResourceState
	ix  indexState
}

// indexState is a resource's stored index rows as the check knows them.
type indexState struct {
	known  bool               // the index pass has read them
	n      int                // rows
	digest []byte             // their commitment; nil when they came apart (split)
	split  bool               // the rows came in several runs: read them again
	rows   []storage.IndexRow // the rows, when known (rereadings)
}

// indexOf is the state of rows read whole.
func (c *checker) indexOf(typ, id string, rows []storage.IndexRow) indexState {
	return indexState{known: true, n: len(rows), digest: c.o.Ledger.Index(typ, id, rows), rows: rows}
}

// indexDigests reads every index row once and returns, per resource
// ("Type/id"), how many and their commitment.
func (c *checker) indexDigests(ctx context.Context) (map[string]indexState, error) {
	out := map[string]indexState{}
	err := c.o.Current.ScanIndex(ctx, func(typ, id string, rows []storage.IndexRow) error {
		key := typ + "/" + id
		if prev, ok := out[key]; ok {
			out[key] = indexState{known: true, n: prev.n + len(rows), split: true}
			return nil
		}
		out[key] = indexState{known: true, n: len(rows), digest: c.o.Ledger.Index(typ, id, rows)}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("ledger check: %w", err)
	}
	return out, nil
}

// scan merges the version, pointer and index scans by resource and
// evaluates each resource on o.Workers goroutines.
func (c *checker) scan(parent context.Context) error {
	ctx, cancel := context.WithCancel(parent)
	defer cancel()
	// The index rows in one pass, in the order the store reads fastest,
	// keeping the commitment of each resource's rows: beside the scan of
	// versions (each resource's index is judged after both), or before
	// it for a baseline, which commits them with the versions.
	var idx map[string]indexState
	var idxErr error
	idxDone := make(chan struct{})
	go func() {
		defer close(idxDone)
		idx, idxErr = c.indexDigests(ctx)
	}()
	if c.o.Baseline != nil {
		<-idxDone
		if idxErr != nil {
			return idxErr
		}
	}
	deferred := map[string]indexWant{}
	c.seen = map[string]bool{}
	vers := make(chan storage.Version, 1024)
	curs := make(chan storage.Current, 256)
	errc := make(chan error, 2)
	var producers sync.WaitGroup
	producers.Go(func() {
		defer close(vers)
		errc <- c.o.Store.ScanVersions(ctx, storage.VersionRef{}, func(v storage.Version) error {
			select {
			case vers <- v:
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		})
	})
	producers.Go(func() {
		defer close(curs)
		errc <- c.o.Current.ScanCurrent(ctx, func(cu storage.Current) error {
			select {
			case curs <- cu:
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		})
	})
	work := make(chan group, 64)
	var workers sync.WaitGroup
	for range c.o.Workers {
		workers.Go(func() {
			for g := range work {
				var r result
				if c.o.Baseline != nil {
					g.ix = idx[g.key]
					g.ix.known = true
				}
				c.evaluate(g.key, g.st, g.ix, &r)
				if c.o.Baseline != nil {
					c.addBaseline(ctx, r.baseline)
				}
				c.mu.Lock()
				c.rep.Resources++
				c.rep.Versions += r.versions
				c.rep.Verified += r.verified
				c.rep.Deleted += r.deleted
				c.rep.Erased += r.erased
				c.rep.PreLedger += r.pre
				if len(r.problems) > 0 {
					c.found[g.key] = r.problems
					c.recheck = append(c.recheck, g.key)
				}
				if r.index != nil {
					deferred[g.key] = *r.index
				}
				if c.o.Progress != nil {
					c.o.Progress()
				}
				c.mu.Unlock()
			}
		})
	}
	mergeErr := c.merge(ctx, vers, curs, work)
	close(work)
	workers.Wait()
	if mergeErr != nil {
		cancel()
	}
	<-idxDone
	cancel()
	producers.Wait()
	close(errc)
	if mergeErr != nil {
		return mergeErr
	}
	if idxErr != nil {
		return idxErr
	}
	for key, w := range deferred {
		var r result
		c.index(w, idx[key], storage.ResourceState{}, &r)
		if len(r.problems) > 0 {
			c.found[key] = append(c.found[key], r.problems...)
			c.recheck = append(c.recheck, key)
		}
	}
	// Index rows of resources with neither a version nor a pointer.
	for key := range idx {
		if !c.seen[key] {
			c.recheck = append(c.recheck, key)
		}
	}
	if c.berr != nil {
		return c.berr
	}
	for err := range errc {
		if err != nil && !errors.Is(err, context.Canceled) {
			return fmt.Errorf("ledger check: %w", err)
		}
	}
	return parent.Err()
}

// merge reads the three ordered streams and sends one group per
// resource, in (type, id) order.
func (c *checker) merge(ctx context.Context, vers <-chan storage.Version, curs <-chan storage.Current, work chan<- group) error {
	var v *storage.Version
	var cu *storage.Current
	nextV := func() {
		if x, ok := <-vers; ok {
			v = &x
		} else {
			v = nil
		}
	}
	nextC := func() {
		if x, ok := <-curs; ok {
			cu = &x
		} else {
			cu = nil
		}
	}
	nextV()
	nextC()
	for v != nil || cu != nil {
		// The smallest (type, id) of the three heads.
		var typ, id string
		have := false
		consider := func(t, i string) {
			if !have || t < typ || (t == typ && i < id) {
				typ, id, have = t, i, true
			}
		}
		if v != nil {
			consider(v.Type, v.ID)
		}
		if cu != nil {
			consider(cu.Type, cu.ID)
		}
		var g group
		g.key = typ + "/" + id
		for v != nil && v.Type == typ && v.ID == id {
			g.st.Versions = append(g.st.Versions, *v)
			nextV()
		}
		if cu != nil && cu.Type == typ && cu.ID == id {
			x := *cu
			g.st.Current = &x
			nextC()
		}
		c.seen[g.key] = true
		select {
		case work <- g:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

func equalBytes(a, b []byte) bool { return string(a) == string(b) }
