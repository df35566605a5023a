package sqldb

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/phivault/phivault/internal/audit/trail"
	"github.com/phivault/phivault/internal/storage"
)

// Group commit (engines with one writer connection, i.e. SQLite).
//
// Every Update waits for the single writer connection, and every commit
// is an fsync (synchronous=FULL). Under concurrent writes the committer
// goroutine therefore runs the transactions that are waiting together:
// one BEGIN, one COMMIT and one fsync for all of them. Each Update
// still returns only after its writes are durable, and each fn sees the
// writes of the fns before it, exactly as if they had run one after
// another. A failed COMMIT fails every Update of the group.
//
// A group first runs without savepoints: a SAVEPOINT makes SQLite copy
// the original image of every page the fn then changes into the
// statement journal (a temporary file), and with blind-index keys
// spread over the whole index that is nearly every page a write
// touches: a quarter of an import's CPU went there (ADR 0041). If an fn
// fails, the attempt is rolled back whole and the group runs again with
// one SAVEPOINT per Update (so a failing fn rolls back only its own
// writes), without the Updates that already failed. fn has no side
// effects outside tx (storage.Store.Update), so running it twice is
// safe; the second run sees the same database the first one did.
const (
	// maxGroup bounds the Updates committed together, so one group's
	// latency stays bounded.
	maxGroup = 64
	// groupStatementTimeout bounds the work of one fn in a group. Its
	// statements run detached from the caller's cancellation (tx.detach):
	// interrupting a statement can roll back the whole shared
	// transaction.
	groupStatementTimeout = 30 * time.Second
)

type groupReq struct {
	ctx  context.Context
	fn   func(tx storage.Tx) error
	done chan error
}

// committer owns the group-commit goroutine.
type committer struct {
	s    *Store
	in   chan groupReq
	stop chan struct{}
	wg   sync.WaitGroup
	once sync.Once
}

func newCommitter(s *Store) *committer {
	c := &committer{s: s, in: make(chan groupReq), stop: make(chan struct{})}
	c.wg.Add(1)
	go c.run()
	return c
}

// close stops the goroutine after the group in progress.
func (c *committer) close() {
	c.once.Do(func() { close(c.stop) })
	c.wg.Wait()
}

// update runs fn in the next group and returns its outcome.
func (c *committer) update(ctx context.Context, fn func(tx storage.Tx) error) error {
	r := groupReq{ctx: ctx, fn: fn, done: make(chan error, 1)}
	select {
	case c.in <- r:
	case <-ctx.Done():
		return fmt.Errorf("update: %w", ctx.Err())
	case <-c.stop:
		return fmt.Errorf("update: %w: store closed", storage.ErrUnavailable)
	}
	// Once queued the request runs to completion: waiting for it keeps
	// the caller's view consistent with what was committed.
	return <-r.done
}

func (c *committer) run() {
	defer c.wg.Done()
	for {
		var first groupReq
		select {
		case first = <-c.in:
		case <-c.stop:
			return
		}
		group := []groupReq{first}
	fill:
		for len(group) < maxGroup {
			select {
			case r := <-c.in:
				group = append(group, r)
			default:
				break fill
			}
		}
		c.commit(group)
	}
}

// drain appends to group the Updates already queued, without waiting.
func (c *committer) drain(group []groupReq) []groupReq {
	for {
		select {
		case r := <-c.in:
			group = append(group, r)
		default:
			return group
		}
	}
}

// commit runs one group in one transaction: a group of bulk loads
// (storage.WithBulk) optimistically, without savepoints, and if an fn
// fails, again with a savepoint per Update; any other group with a
// savepoint per Update. (A server's concurrent transaction Bundles,
// whose fns often leave to load authorization facts, ran at 5
// resources/s instead of 240 when every group was optimistic.)
func (c *committer) commit(group []groupReq) {
	results := make([]error, len(group))
	for _, r := range group {
		if !storage.Bulk(r.ctx) {
			c.commitSavepoints(group, results)
			return
		}
	}
	if !c.commitOptimistic(group, results) {
		return
	}
	// results holds the failures of the first attempt; the others run
	// again.
	rest := make([]groupReq, 0, len(group))
	for i, r := range group {
		if results[i] != nil {
			r.done <- results[i]
			continue
		}
		rest = append(rest, r)
	}
	if len(rest) > 0 {
		c.commitSavepoints(rest, make([]error, len(rest)))
	}
}

// begin starts the group's transaction. On failure it answers every
// Update of group (and, when the write lock was not granted, the ones
// queued behind it) and returns nil.
func (c *committer) begin(bctx context.Context, group []groupReq, results []error) *sql.Tx {
	s := c.s
	sqlTx, err := s.writer.BeginTx(bctx, nil)
	if err == nil {
		return sqlTx
	}
	err = s.translate("begin", err)
	if errors.Is(err, storage.ErrUnavailable) && !isRetryable(err) {
		// The write lock was not granted within busy_timeout (another
		// process holds it). The Updates queued meanwhile fail with
		// this group instead of each waiting busy_timeout in turn.
		// The lock is the whole database's: an audit append for
		// these requests would wait for it again, so they are marked
		// failed (package trail) and answered 503 at once.
		group = c.drain(group)
		results = make([]error, len(group))
		for _, r := range group {
			trail.Fail(r.ctx)
		}
	}
	answer(group, results, err)
	return nil
}

// answer sends each Update of group its result, or err where it has
// none.
func answer(group []groupReq, results []error, err error) {
	for i, r := range group {
		if results[i] == nil {
			r.done <- err
		} else {
			r.done <- results[i]
		}
	}
}

// commitOptimistic runs group in one transaction without savepoints and
// answers every Update, unless an fn failed (or its caller gave up
// while it ran): then it rolls the transaction back, answers nothing,
// leaves the failures in results and returns true; the others must run
// again.
func (c *committer) commitOptimistic(group []groupReq, results []error) (again bool) {
	s := c.s
	bctx, cancel := context.WithTimeout(context.Background(), groupStatementTimeout*time.Duration(len(group)))
	defer cancel()
	sqlTx := c.begin(bctx, group, results)
	if sqlTx == nil {
		return false
	}
	var unprepared []string
	audited := make([]bool, len(group))
	ran := 0
	for i, r := range group {
		if err := r.ctx.Err(); err != nil {
			results[i] = fmt.Errorf("update: %w", err)
			continue
		}
		t, ferr := s.runIn(sqlTx, r)
		if ferr != nil {
			// The fns after it have not run: they run again with
			// the others.
			results[i] = ferr
			_ = sqlTx.Rollback()
			return true
		}
		ran++
		unprepared = append(unprepared, t.unprepared...)
		audited[i] = t.audited
	}
	if ran == 0 {
		_ = sqlTx.Rollback()
		answer(group, results, nil)
		return false
	}
	if err := sqlTx.Commit(); err != nil {
		answer(group, results, s.translate("commit", err))
		return false
	}
	c.committed(bctx, group, audited, unprepared)
	answer(group, results, nil)
	return false
}

// committed notes the audited requests of a committed group and
// prepares the statements it ran unprepared.
func (c *committer) committed(ctx context.Context, group []groupReq, audited []bool, unprepared []string) {
	for i, r := range group {
		if audited[i] {
			trail.Note(r.ctx)
		}
	}
	for _, q := range unprepared {
		_, _ = c.s.ws.get(ctx, q)
	}
}

// commitSavepoints runs group in one transaction with one SAVEPOINT per
// Update, so that a failing fn rolls back only its own writes.
func (c *committer) commitSavepoints(group []groupReq, results []error) {
	s := c.s
	fail := func(err error) { answer(group, results, err) }
	bctx, cancel := context.WithTimeout(context.Background(), groupStatementTimeout*time.Duration(len(group)))
	defer cancel()
	sqlTx := c.begin(bctx, group, results)
	if sqlTx == nil {
		return
	}
	var unprepared []string
	audited := make([]bool, len(group))
	ran := 0
	for i, r := range group {
		if err := r.ctx.Err(); err != nil {
			results[i] = fmt.Errorf("update: %w", err)
			continue
		}
		if _, err := sqlTx.ExecContext(bctx, "SAVEPOINT g"); err != nil {
			_ = sqlTx.Rollback()
			fail(s.translate("savepoint", err))
			return
		}
		t, ferr := s.runIn(sqlTx, r)
		if ferr != nil {
			results[i] = ferr
			if _, err := sqlTx.ExecContext(bctx, "ROLLBACK TO g"); err != nil {
				_ = sqlTx.Rollback()
				fail(s.translate("rollback to savepoint", err))
				return
			}
		}
		if _, err := sqlTx.ExecContext(bctx, "RELEASE g"); err != nil {
			_ = sqlTx.Rollback()
			fail(s.translate("release savepoint", err))
			return
		}
		if ferr == nil {
			ran++
			unprepared = append(unprepared, t.unprepared...)
			audited[i] = t.audited
		}
	}
	if ran == 0 {
		_ = sqlTx.Rollback()
		fail(nil)
		return
	}
	if err := sqlTx.Commit(); err != nil {
		fail(s.translate("commit", err))
		return
	}
	c.committed(bctx, group, audited, unprepared)
	fail(nil)
}

// runIn runs r's fn in the group's transaction. A caller that gave up
// while it ran fails it: nothing of it may commit.
func (s *Store) runIn(sqlTx *sql.Tx, r groupReq) (*tx, error) {
	t := &tx{s: s, tx: sqlTx, detach: true}
	err := r.fn(t)
	if err == nil && r.ctx.Err() != nil {
		err = fmt.Errorf("update: %w", r.ctx.Err())
	}
	return t, err
}
