package audit

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/phivault/phivault/internal/audit/trail"
	"github.com/phivault/phivault/internal/storage"
)

// Batcher defaults. A batch commits as soon as it holds MaxBatch records
// or the oldest has waited MaxDelay: with one fsync per batch the read
// path pays about one commit per MaxBatch requests (DESIGN §3, §12).
const (
	DefaultMaxBatch = 256
	DefaultMaxDelay = 2 * time.Millisecond
	// DefaultQueue bounds the records waiting for a batch, so a stalled
	// database turns into back-pressure, not unbounded memory.
	DefaultQueue = 8192
)

// BatcherOptions configures a Batcher; the zero value means the defaults.
type BatcherOptions struct {
	MaxBatch int
	MaxDelay time.Duration
	Queue    int
	// Observer is told of every batch and every wait for durability
	// (package observe implements it); nil: no one, and no clock read.
	Observer BatchObserver
}

// BatchObserver watches a Batcher. Its methods must be safe for
// concurrent use and must not block: Batched runs on the batcher's
// goroutine, Recorded on each caller's.
type BatchObserver interface {
	// Batched is told of one group commit: size records, the first of
	// which waited wait for the batch before the commit began, which
	// took commit; failed says the commit failed.
	Batched(size int, wait, commit time.Duration, failed bool)
	// Recorded is told that a caller's Record, begun at start, returned
	// err.
	Recorded(ctx context.Context, start time.Time, err error)
}

type pending struct {
	rec  storage.AuditRecord
	done chan error
}

// Batcher group-commits audit records. Record blocks until the record's
// batch is durable. Batcher owns one goroutine, started by NewBatcher and
// stopped by Close, which first drains every queued record.
type Batcher struct {
	app  Appender
	opt  BatcherOptions
	in   chan pending
	stop chan struct{}
	// exited is closed when run has answered its last record; a record
	// that raced Close into the queue after the final drain gets
	// ErrUnavailable instead of waiting forever.
	exited chan struct{}
	wg     sync.WaitGroup
	close  sync.Once
	// first is when the batch being filled got its first record; read
	// and written by run's goroutine only, and only with an Observer.
	first time.Time
}

// NewBatcher starts a batcher writing through app.
func NewBatcher(app Appender, opt BatcherOptions) *Batcher {
	if opt.MaxBatch <= 0 {
		opt.MaxBatch = DefaultMaxBatch
	}
	if opt.MaxDelay <= 0 {
		opt.MaxDelay = DefaultMaxDelay
	}
	if opt.Queue <= 0 {
		opt.Queue = DefaultQueue
	}
	b := &Batcher{app: app, opt: opt, in: make(chan pending, opt.Queue), stop: make(chan struct{}), exited: make(chan struct{})}
	b.wg.Add(1)
	go b.run()
	return b
}

// Record appends rec and returns once it is durable. It returns an error
// wrapping ErrUnavailable if the batch failed or the batcher is closed,
// and ctx.Err() if ctx ends first (the record may still be written).
// Once the record is durable, ctx's request is noted (package trail).
//
// If an earlier record of ctx's request failed as unavailable (package
// trail), Record fails at once: a locked audit table costs a request
// one lock timeout, not one per event.
func (b *Batcher) Record(ctx context.Context, rec storage.AuditRecord) error {
	if trail.Failed(ctx) {
		return fmt.Errorf("%w: an earlier event of this request could not be recorded", ErrUnavailable)
	}
	var start time.Time
	if b.opt.Observer != nil {
		start = time.Now()
	}
	err := b.record(ctx, rec)
	if b.opt.Observer != nil {
		b.opt.Observer.Recorded(ctx, start, err)
	}
	switch {
	case err == nil:
		trail.Note(ctx)
	case errors.Is(err, ErrUnavailable):
		trail.Fail(ctx)
	}
	return err
}

func (b *Batcher) record(ctx context.Context, rec storage.AuditRecord) error {
	p := pending{rec: rec, done: make(chan error, 1)}
	select {
	case <-b.stop:
		return fmt.Errorf("%w: shutting down", ErrUnavailable)
	default:
	}
	select {
	case b.in <- p:
	case <-b.stop:
		return fmt.Errorf("%w: shutting down", ErrUnavailable)
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case err := <-p.done:
		return err
	case <-b.exited:
		// run answers every record it took before exited closes.
		select {
		case err := <-p.done:
			return err
		default:
			return fmt.Errorf("%w: shutting down", ErrUnavailable)
		}
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Close stops accepting records, commits those queued, and waits.
func (b *Batcher) Close() {
	b.close.Do(func() { close(b.stop) })
	b.wg.Wait()
}

func (b *Batcher) run() {
	defer b.wg.Done()
	defer close(b.exited)
	batch := make([]pending, 0, b.opt.MaxBatch)
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	for {
		select {
		case p := <-b.in:
			batch = append(batch, p)
			if len(batch) == 1 {
				timer.Reset(b.opt.MaxDelay)
				if b.opt.Observer != nil {
					b.first = time.Now()
				}
			}
			// Take whatever else is already queued without waiting.
		fill:
			for len(batch) < b.opt.MaxBatch {
				select {
				case p := <-b.in:
					batch = append(batch, p)
				default:
					break fill
				}
			}
			if len(batch) >= b.opt.MaxBatch {
				timer.Stop()
				batch = b.flush(batch)
			}
		case <-timer.C:
			batch = b.flush(batch)
		case <-b.stop:
			timer.Stop()
			for {
				select {
				case p := <-b.in:
					batch = append(batch, p)
					if len(batch) == 1 && b.opt.Observer != nil {
						b.first = time.Now()
					}
					if len(batch) >= b.opt.MaxBatch {
						batch = b.flush(batch)
					}
				default:
					b.flush(batch)
					return
				}
			}
		}
	}
}

func (b *Batcher) flush(batch []pending) []pending {
	if len(batch) == 0 {
		return batch
	}
	recs := make([]storage.AuditRecord, len(batch))
	for i, p := range batch {
		recs[i] = p.rec
	}
	// The batch is committed on its own context: a request that gave up
	// must not abort the records of the others.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	var began time.Time
	if b.opt.Observer != nil {
		began = time.Now()
	}
	err := b.app.AppendAudit(ctx, recs...)
	cancel()
	if b.opt.Observer != nil {
		b.opt.Observer.Batched(len(batch), began.Sub(b.first), time.Since(began), err != nil)
	}
	if err != nil {
		err = fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	for _, p := range batch {
		p.done <- err
	}
	return batch[:0]
}
