package ledger

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/phivault/phivault/internal/audit"
	"github.com/phivault/phivault/internal/keys"
	"github.com/phivault/phivault/internal/storage"
)

// Kind names what differs between the database and the log. The values
// are stable: operators and tests match them.
type Kind string

// Problem kinds.
const (
	// KindMissingResource: the log committed versions of a resource of
	// which nothing is stored (its rows were deleted).
	KindMissingResource Kind = "missing-resource"
	// KindMissingVersion: a committed version's row is missing, or a
	// version number is skipped.
	KindMissingVersion Kind = "missing-version"
	// KindRollback: the newest versions the log committed are missing and
	// the current pointer names an older one: the server serves the past.
	KindRollback Kind = "rollback"
	// KindRepointed: the current pointer names another version than the
	// newest one, which is stored.
	KindRepointed Kind = "repointed"
	// KindCurrentRow: the current pointer row is missing or differs from
	// the version row it names.
	KindCurrentRow Kind = "current-row"
	// KindContent: a version row (owner, deletion flag, time or body)
	// differs from what the log committed.
	KindContent Kind = "content"
	// KindCiphertext: a ciphertext fails authentication (altered, moved
	// or copied from another row), or its plaintext names another
	// resource or version.
	KindCiphertext Kind = "ciphertext"
	// KindIndex: a resource's index rows differ from the ones the log
	// committed (a blind-index row added, removed or repointed), or a
	// deleted resource still has index rows.
	KindIndex Kind = "index"
	// KindForgedMarker: a delete marker no event committed to and no
	// erasure explains.
	KindForgedMarker Kind = "forged-marker"
	// KindForgedErasure: a data key destroyed without an erasure in the
	// log.
	KindForgedErasure Kind = "forged-erasure"
	// KindErasure: an erasure in the log whose effect is not stored: the
	// key is live again, or a resource it covered has no delete marker.
	KindErasure Kind = "erasure"
	// KindUncommitted: a version written after the ledger started that
	// no event commits to: a forged row, or a write whose audit event was
	// deleted before it was integrated into the tree.
	KindUncommitted Kind = "uncommitted"
	// KindKey: a data key is missing or does not unwrap.
	KindKey Kind = "key"
	// KindLedgerKey: the ledger key is not the one the log started with
	// (its record was replaced): commitments cannot be compared.
	KindLedgerKey Kind = "ledger-key"
	// KindLog: an event's ledger data is malformed, or the ledger's
	// start event is missing.
	KindLog Kind = "log"
	// KindUnsettled: a resource that looked wrong kept changing while
	// the check reread it (written to all along): not judged.
	KindUnsettled Kind = "unsettled"
)

// Problem is one difference, named by reference (no content).
type Problem struct {
	Ref    string // "Type/id/_history/v", "Type/id", or a key owner
	Kind   Kind
	Detail string
}

func (p Problem) String() string { return fmt.Sprintf("%s: %s: %s", p.Ref, p.Kind, p.Detail) }

// Report sums up a check.
type Report struct {
	Resources int64 // resources examined (current pointers, or versions without one)
	Versions  int64 // version rows examined
	Verified  int64 // version rows equal to their commitment (sealed versions opened)
	Deleted   int64 // delete markers committed or explained by an erasure
	Erased    int64 // versions of erased owners: unreadable by design, only their metadata checked
	PreLedger int64 // versions not committed: written before ledger v1
	Commits   int64 // commitments read from the log
	Baselined int64 // baseline mode: commitments appended
	Problems  []Problem
	// More counts the problems beyond MaxProblems, which are not listed.
	More int64
}

// MaxProblems bounds the problems a Report lists.
const MaxProblems = 1000

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
	// Progress is called after each resource.
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
	c := &checker{o: o, ctx: ctx, view: o.Log.snapshot(), found: map[string][]Problem{}}
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
				c.evaluate(key, storage.ResourceState{}, &r)
				c.found[key] = r.problems
			}
		}
		c.recheck = c.recheck[:maxRechecks]
	}
	states := make([]storage.ResourceState, len(c.recheck))
	for i, key := range c.recheck {
		st, err := c.read(ctx, key)
		if err != nil {
			return rep, err
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
			return rep, err
		}
		c.view = o.Log.snapshot()
		if err := c.loadKeys(ctx); err != nil { // keys created or erased meanwhile
			return rep, err
		}
		var again []int
		for _, i := range todo {
			st, err := c.read(ctx, c.recheck[i])
			if err != nil {
				return rep, err
			}
			if !sameState(states[i], st) {
				states[i] = st
				again = append(again, i)
				continue
			}
			var r result
			c.evaluate(c.recheck[i], st, &r)
			c.found[c.recheck[i]] = r.problems
		}
		todo = again
	}
	for _, i := range todo {
		c.found[c.recheck[i]] = []Problem{{Ref: c.recheck[i], Kind: KindUnsettled,
			Detail: fmt.Sprintf("it looked wrong and changed between each of %d readings: not judged; verify again", maxRounds+1)}}
	}
	if c.keyChecks(false) {
		// An erasure that committed after the log was read: read its tail
		// once more before naming a key destroyed without one.
		if err := o.Log.ReadTail(ctx, o.Source, o.LogKey); err != nil {
			return rep, err
		}
		c.view = o.Log.snapshot()
	}
	c.keyChecks(true)
	c.rep.Commits = c.view.commits()
	for _, p := range c.view.bad() {
		c.global = append(c.global, p)
	}
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
	ctx     context.Context
	view    *view
	keyrecs map[string]storage.KeyRecord
	// startTime is when the ledger started; versions older than it and
	// not committed were written before ledger v1. strict: a complete
	// baseline was committed, or the start is unknown.
	startTime time.Time
	strict    bool
	// noMAC: the ledger key is not the log's; commitments are not compared.
	noMAC bool

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

// addBaseline queues commitments of the baseline and appends a full
// batch.
func (c *checker) addBaseline(cs []audit.Commit) {
	if len(cs) == 0 {
		return
	}
	c.bmu.Lock()
	c.baselined = append(c.baselined, cs...)
	c.bmu.Unlock()
	if err := c.flushBaseline(c.ctx, false); err != nil {
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
	c.keyrecs = map[string]storage.KeyRecord{}
	if err := c.o.Store.ScanKeys(ctx, func(k storage.KeyRecord) error {
		c.keyrecs[k.Owner] = k
		return nil
	}); err != nil {
		return fmt.Errorf("ledger check: scanning keys: %w", err)
	}
	return nil
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

// keyChecks compares the key records with the erasures of the log and,
// with report, records the differences; it says whether it found any.
func (c *checker) keyChecks(report bool) bool {
	found := false
	for owner, rec := range c.keyrecs {
		if strings.HasPrefix(owner, "system/") {
			continue
		}
		erased := len(c.view.erasures[owner]) > 0
		var p Problem
		switch {
		case rec.Shredded && !erased:
			p = Problem{Ref: owner, Kind: KindForgedErasure, Detail: "the data key was destroyed, but the log has no $erase of this owner"}
		case !rec.Shredded && erased:
			p = Problem{Ref: owner, Kind: KindErasure, Detail: "the log erased this owner, but its data key is live again (restored from a copy?)"}
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

// result is what evaluating one resource found.
type result struct {
	problems                                 []Problem
	versions, verified, deleted, erased, pre int64
	baseline                                 []audit.Commit // baseline mode
}

func (r *result) add(ref string, k Kind, detail string) {
	r.problems = append(r.problems, Problem{Ref: ref, Kind: k, Detail: detail})
}

// group is one resource as the three scans found it.
type group struct {
	key string
	st  storage.ResourceState
}

// scan merges the version, pointer and index scans by resource and
// evaluates each resource on o.Workers goroutines.
func (c *checker) scan(parent context.Context) error {
	ctx, cancel := context.WithCancel(parent)
	defer cancel()
	c.seen = map[string]bool{}
	vers := make(chan storage.Version, 1024)
	curs := make(chan storage.Current, 256)
	idxs := make(chan indexGroup, 256)
	errc := make(chan error, 3)
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
	producers.Go(func() {
		defer close(idxs)
		errc <- c.o.Current.ScanIndex(ctx, func(typ, id string, rows []storage.IndexRow) error {
			select {
			case idxs <- indexGroup{typ: typ, id: id, rows: rows}:
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
				c.evaluate(g.key, g.st, &r)
				if c.o.Baseline != nil {
					c.addBaseline(r.baseline)
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
				c.mu.Unlock()
				if c.o.Progress != nil {
					c.o.Progress()
				}
			}
		})
	}
	mergeErr := c.merge(ctx, vers, curs, idxs, work)
	close(work)
	workers.Wait()
	cancel()
	producers.Wait()
	close(errc)
	if mergeErr != nil {
		return mergeErr
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

type indexGroup struct {
	typ, id string
	rows    []storage.IndexRow
}

// merge reads the three ordered streams and sends one group per
// resource, in (type, id) order.
func (c *checker) merge(ctx context.Context, vers <-chan storage.Version, curs <-chan storage.Current, idxs <-chan indexGroup, work chan<- group) error {
	var v *storage.Version
	var cu *storage.Current
	var ix *indexGroup
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
	nextI := func() {
		if x, ok := <-idxs; ok {
			ix = &x
		} else {
			ix = nil
		}
	}
	nextV()
	nextC()
	nextI()
	for v != nil || cu != nil || ix != nil {
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
		if ix != nil {
			consider(ix.typ, ix.id)
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
		if ix != nil && ix.typ == typ && ix.id == id {
			g.st.Index = ix.rows
			nextI()
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
