package audit

// These tests live inside the package for one reason: to know that a
// record is queued (len(b.in)) before Close is called, without sleeping.

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/phivault/phivault/internal/storage"
)

// fakeAppender records every AppendAudit call. When gate is non-nil each
// call announces itself on entered and waits for gate to be closed
// before it commits; err, when set, makes every call fail.
type fakeAppender struct {
	gate    chan struct{}
	entered chan struct{}
	err     error

	mu        sync.Mutex
	calls     [][]storage.AuditRecord
	committed map[string]int // body -> times committed
}

func newFakeAppender() *fakeAppender {
	return &fakeAppender{committed: make(map[string]int), entered: make(chan struct{}, 1024)}
}

func (f *fakeAppender) AppendAudit(ctx context.Context, recs ...storage.AuditRecord) error {
	if f.gate != nil {
		f.entered <- struct{}{}
		select {
		case <-f.gate:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, append([]storage.AuditRecord(nil), recs...))
	if f.err != nil {
		return f.err
	}
	for _, r := range recs {
		f.committed[string(r.Body)]++
	}
	return nil
}

func (f *fakeAppender) isCommitted(body string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.committed[body] > 0
}

func (f *fakeAppender) snapshot() (calls [][]storage.AuditRecord, committed map[string]int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	committed = make(map[string]int, len(f.committed))
	for k, v := range f.committed {
		committed[k] = v
	}
	return append([][]storage.AuditRecord(nil), f.calls...), committed
}

func rec(i int) storage.AuditRecord {
	return storage.AuditRecord{Time: time.Unix(1700000000, 0).UTC(), Body: fmt.Appendf(nil, "record-%d", i)}
}

// testCtx bounds a test that would otherwise hang on a bug; it is a
// safety net, not a performance assertion.
func testCtx(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func newBatcher(t *testing.T, app Appender, opt BatcherOptions) *Batcher {
	t.Helper()
	b := NewBatcher(app, opt)
	t.Cleanup(b.Close)
	return b
}

// waitQueued waits until n records sit in b's queue (the run loop is
// blocked in a gated AppendAudit, so nothing drains them meanwhile).
func waitQueued(t *testing.T, ctx context.Context, b *Batcher, n int) {
	t.Helper()
	for len(b.in) < n {
		if ctx.Err() != nil {
			t.Fatalf("only %d of %d records were queued", len(b.in), n)
		}
		runtime.Gosched()
	}
}

func TestBatcherRecordReturnsOnlyAfterCommit(t *testing.T) {
	ctx := testCtx(t)
	f := newFakeAppender()
	f.gate = make(chan struct{})
	b := newBatcher(t, f, BatcherOptions{MaxBatch: 1})

	type result struct {
		err       error
		committed bool
	}
	done := make(chan result, 1)
	go func() {
		err := b.Record(ctx, rec(1))
		done <- result{err, f.isCommitted("record-1")}
	}()
	<-f.entered
	select {
	case r := <-done:
		t.Fatalf("Record returned (err %v) while AppendAudit had not committed", r.err)
	default:
	}
	close(f.gate)
	r := <-done
	if r.err != nil {
		t.Fatalf("Record: %v", r.err)
	}
	if !r.committed {
		t.Fatal("Record returned nil but its record was not committed by the Appender")
	}
}

func TestBatcherGroupsConcurrentRecords(t *testing.T) {
	tests := []struct {
		name     string
		records  int
		maxBatch int
	}{
		{"batches of 16", 400, 16},
		{"batch larger than load", 100, 256},
		{"batch of one", 20, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := testCtx(t)
			f := newFakeAppender()
			f.gate = make(chan struct{})
			b := newBatcher(t, f, BatcherOptions{MaxBatch: tt.maxBatch, MaxDelay: time.Millisecond})

			errs := make(chan error, tt.records)
			go func() { errs <- b.Record(ctx, rec(0)) }()
			<-f.entered // the first batch is in flight; the rest must queue
			for i := 1; i < tt.records; i++ {
				go func() { errs <- b.Record(ctx, rec(i)) }()
			}
			waitQueued(t, ctx, b, tt.records-1)
			close(f.gate)
			for range tt.records {
				if err := <-errs; err != nil {
					t.Fatalf("Record: %v", err)
				}
			}

			calls, committed := f.snapshot()
			for i, c := range calls {
				if len(c) == 0 || len(c) > tt.maxBatch {
					t.Errorf("AppendAudit call %d carried %d records, want 1..%d", i, len(c), tt.maxBatch)
				}
			}
			for i := range tt.records {
				if n := committed[fmt.Sprintf("record-%d", i)]; n != 1 {
					t.Errorf("record-%d committed %d times, want once", i, n)
				}
			}
			// One in-flight call, then the queue in full batches.
			want := 1 + (tt.records-1+tt.maxBatch-1)/tt.maxBatch
			if len(calls) != want {
				t.Errorf("%d records in %d AppendAudit calls, want %d", tt.records, len(calls), want)
			}
		})
	}
}

func TestBatcherFlushes(t *testing.T) {
	tests := []struct {
		name    string
		opt     BatcherOptions
		records int
	}{
		// Nothing else arrives: only MaxDelay can end the batch.
		{"lone record after MaxDelay", BatcherOptions{MaxBatch: 1000, MaxDelay: time.Millisecond}, 1},
		// A full batch must not wait for a MaxDelay that never comes.
		{"full batch without waiting for MaxDelay", BatcherOptions{MaxBatch: 4, MaxDelay: time.Hour}, 4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := testCtx(t)
			f := newFakeAppender()
			b := newBatcher(t, f, tt.opt)
			var wg sync.WaitGroup
			errs := make(chan error, tt.records)
			for i := range tt.records {
				wg.Go(func() { errs <- b.Record(ctx, rec(i)) })
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				if err != nil {
					t.Fatalf("Record: %v (the batch was never flushed)", err)
				}
			}
		})
	}
}

func TestBatcherAppendErrorFailsEveryWaiter(t *testing.T) {
	ctx := testCtx(t)
	f := newFakeAppender()
	f.gate = make(chan struct{})
	f.err = errors.New("disk on fire")
	const n = 50
	b := newBatcher(t, f, BatcherOptions{MaxBatch: n})

	errs := make(chan error, n)
	go func() { errs <- b.Record(ctx, rec(0)) }()
	<-f.entered
	for i := 1; i < n; i++ {
		go func() { errs <- b.Record(ctx, rec(i)) }()
	}
	waitQueued(t, ctx, b, n-1)
	close(f.gate)
	for range n {
		err := <-errs
		if !errors.Is(err, ErrUnavailable) {
			t.Errorf("Record: got %v, want an error wrapping ErrUnavailable", err)
		}
	}
	if calls, _ := f.snapshot(); len(calls) != 2 {
		t.Errorf("AppendAudit calls: got %d, want 2 (the in-flight record, then the %d queued in one batch)", len(calls), n-1)
	}
}

func TestBatcherCloseDrainsThenRefuses(t *testing.T) {
	ctx := testCtx(t)
	f := newFakeAppender()
	f.gate = make(chan struct{})
	const n = 30
	b := NewBatcher(f, BatcherOptions{MaxBatch: 8, MaxDelay: time.Millisecond})

	errs := make(chan error, n)
	for i := range n {
		go func() { errs <- b.Record(ctx, rec(i)) }()
	}
	<-f.entered // first batch in flight (MaxBatch 8 fills at once or on its own)
	closed := make(chan struct{})
	go func() { b.Close(); close(closed) }()
	// Close must wait for the queued records, not drop them.
	select {
	case <-closed:
		t.Fatal("Close returned while a batch was still being committed")
	default:
	}
	close(f.gate)
	<-closed
	for range n {
		if err := <-errs; err != nil && !errors.Is(err, ErrUnavailable) {
			t.Errorf("Record during Close: %v", err)
		}
	}
	// Records accepted before Close are all durable.
	_, committed := f.snapshot()
	if len(committed) == 0 {
		t.Fatal("nothing was committed")
	}

	err := b.Record(ctx, rec(999))
	if !errors.Is(err, ErrUnavailable) {
		t.Fatalf("Record after Close: got %v, want an error wrapping ErrUnavailable", err)
	}
	if f.isCommitted("record-999") {
		t.Fatal("a record offered after Close was committed")
	}
	b.Close() // idempotent
}

func TestBatcherCloseCommitsQueuedRecords(t *testing.T) {
	ctx := testCtx(t)
	f := newFakeAppender()
	f.gate = make(chan struct{})
	const n = 25
	b := NewBatcher(f, BatcherOptions{MaxBatch: 4, MaxDelay: time.Millisecond})

	errs := make(chan error, n)
	go func() { errs <- b.Record(ctx, rec(0)) }()
	<-f.entered
	for i := 1; i < n; i++ {
		go func() { errs <- b.Record(ctx, rec(i)) }()
	}
	waitQueued(t, ctx, b, n-1)
	closed := make(chan struct{})
	go func() { b.Close(); close(closed) }()
	close(f.gate)
	<-closed
	for range n {
		if err := <-errs; err != nil {
			t.Errorf("queued Record: got %v, want nil (Close must drain it)", err)
		}
	}
	_, committed := f.snapshot()
	for i := range n {
		if committed[fmt.Sprintf("record-%d", i)] != 1 {
			t.Errorf("record-%d queued before Close was not committed exactly once", i)
		}
	}
}

// A Record racing with Close must get an answer (nil or ErrUnavailable),
// never wait for a record nobody will commit. The race is narrow: many
// rounds make it likely to be hit (it was, before the fix, within a few
// thousand rounds).
func TestBatcherRecordRacingClose(t *testing.T) {
	for i := range 3000 {
		f := newFakeAppender()
		b := NewBatcher(f, BatcherOptions{MaxBatch: 2, MaxDelay: time.Microsecond})
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
		const n = 16
		errs := make(chan error, n)
		for j := range n {
			go func() { errs <- b.Record(ctx, rec(j)) }()
		}
		go b.Close()
		for range n {
			err := <-errs
			if err != nil && !errors.Is(err, ErrUnavailable) {
				cancel()
				t.Fatalf("round %d: Record racing Close: got %v, want nil or ErrUnavailable", i, err)
			}
		}
		cancel()
		b.Close()
	}
}

func TestBatcherContextEnds(t *testing.T) {
	tests := []struct {
		name string
		ctx  func(parent context.Context) (context.Context, context.CancelFunc)
		end  func(cancel context.CancelFunc)
		want error
	}{
		{
			name: "canceled",
			ctx:  context.WithCancel,
			end:  func(cancel context.CancelFunc) { cancel() },
			want: context.Canceled,
		},
		{
			name: "deadline",
			ctx: func(p context.Context) (context.Context, context.CancelFunc) {
				return context.WithDeadline(p, time.Now().Add(time.Millisecond))
			},
			end:  func(context.CancelFunc) {},
			want: context.DeadlineExceeded,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeAppender()
			f.gate = make(chan struct{})
			b := newBatcher(t, f, BatcherOptions{MaxBatch: 1})
			t.Cleanup(func() { close(f.gate) }) // runs before b.Close

			ctx, cancel := tt.ctx(t.Context())
			defer cancel()
			errc := make(chan error, 1)
			go func() { errc <- b.Record(ctx, rec(1)) }()
			var err error
			select {
			case <-f.entered: // the record is in a batch that will not commit
				tt.end(cancel)
				err = <-errc
			case err = <-errc: // the deadline passed before the record was queued
			}
			if !errors.Is(err, tt.want) || err != ctx.Err() {
				t.Fatalf("Record: got %v, want ctx.Err() = %v", err, ctx.Err())
			}
		})
	}
}

func TestBatcherCloseLeaksNoGoroutine(t *testing.T) {
	before := runtime.NumGoroutine()
	f := newFakeAppender()
	b := NewBatcher(f, BatcherOptions{})
	for i := range 10 {
		if err := b.Record(testCtx(t), rec(i)); err != nil {
			t.Fatalf("Record: %v", err)
		}
	}
	b.Close()
	// A goroutine that has called wg.Done may not have exited yet; give
	// the scheduler a bounded number of chances.
	deadline := time.Now().Add(10 * time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if after := runtime.NumGoroutine(); after > before {
		buf := make([]byte, 1<<16)
		t.Fatalf("goroutines: %d before NewBatcher, %d after Close\n%s", before, after, buf[:runtime.Stack(buf, true)])
	}
}

// observed records what a BatchObserver is told.
type observed struct {
	mu       sync.Mutex
	sizes    []int
	failed   int
	recorded int
	errs     int
}

func (o *observed) Batched(size int, wait, commit time.Duration, failed bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.sizes = append(o.sizes, size)
	if failed {
		o.failed++
	}
}

func (o *observed) Recorded(_ context.Context, _ time.Time, err error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.recorded++
	if err != nil {
		o.errs++
	}
}

func TestBatcherObserver(t *testing.T) {
	ctx := testCtx(t)
	obs := &observed{}
	f := newFakeAppender()
	b := newBatcher(t, f, BatcherOptions{MaxBatch: 4, MaxDelay: time.Hour, Observer: obs})
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			if err := b.Record(ctx, rec(i)); err != nil {
				t.Errorf("Record: %v", err)
			}
		})
	}
	wg.Wait()
	b.Close()
	obs.mu.Lock()
	defer obs.mu.Unlock()
	total := 0
	for _, n := range obs.sizes {
		total += n
	}
	if total != 8 || obs.recorded != 8 || obs.errs != 0 || obs.failed != 0 {
		t.Errorf("observer saw batches %v (%d records), %d Record calls, %d errors, %d failed batches; want 8 records in all, 8 calls, none failed",
			obs.sizes, total, obs.recorded, obs.errs, obs.failed)
	}
}
