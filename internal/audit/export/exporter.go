package export

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/phivault/phivault/internal/audit"
)

// ErrMoved is returned by [Cursors.Advance] when the cursor is no
// longer where the caller read it (another process exported the batch).
var ErrMoved = errors.New("export: cursor moved")

// Cursors stores, per sink, its position in the log: the number of
// leaves it accepted, which is the index of the next leaf to send. The
// SQL store implements it.
type Cursors interface {
	// Cursor returns the sink's position, 0 if it has none yet.
	Cursor(ctx context.Context, sink string) (int64, error)
	// Advance moves the sink's cursor from from to to, or returns an
	// error wrapping ErrMoved if it is no longer at from.
	Advance(ctx context.Context, sink string, from, to int64) error
}

// Source reads the integrated log in leaf order, decrypted from its
// entry bundles; *merkle.Reader implements it. Exporting in leaf order,
// not sequence order, matters on PostgreSQL: a transaction can commit
// with a lower sequence number than one already committed, but a leaf
// index is assigned once, after commit, without gaps.
type Source interface {
	// Size is the number of integrated leaves (the latest checkpoint's).
	Size(ctx context.Context) (int64, error)
	// ScanLeaves calls fn with every leaf in [from, to), in order.
	ScanLeaves(ctx context.Context, from, to int64, fn func(index int64, leaf []byte, v1 bool) error) error
}

// Default pacing.
const (
	DefaultBatch      = 500
	DefaultPoll       = time.Second
	DefaultMaxBackoff = time.Minute
)

// Options configure an [Exporter]. Sink, Source and Cursors are required.
type Options struct {
	Sink       Sink
	Redact     Redaction
	Source     Source
	Cursors    Cursors
	Batch      int           // records per Send; DefaultBatch if 0
	Poll       time.Duration // wait when caught up; DefaultPoll if 0
	MaxBackoff time.Duration // longest wait after a failure; DefaultMaxBackoff if 0
	Logger     *slog.Logger
}

// Exporter moves the audit log to one sink. It is driven by one
// goroutine ([Exporter.Run] or [Exporter.Drain]).
type Exporter struct {
	o Options
}

// New validates o and returns the exporter.
func New(o Options) (*Exporter, error) {
	if o.Sink == nil || o.Source == nil || o.Cursors == nil {
		return nil, errors.New("export: sink, source and cursors are required")
	}
	if o.Batch <= 0 {
		o.Batch = DefaultBatch
	}
	if o.Poll <= 0 {
		o.Poll = DefaultPoll
	}
	if o.MaxBackoff <= 0 {
		o.MaxBackoff = DefaultMaxBackoff
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return &Exporter{o: o}, nil
}

// Sink returns the exporter's sink.
func (x *Exporter) Sink() Sink { return x.o.Sink }

// Step exports at most one batch: it reads the integrated leaves from
// the cursor on, sends them, and advances the cursor. It returns how
// many records the sink accepted (0 when caught up). On any error the
// cursor stays, so the same records are sent again by the next Step. A
// missing leaf index (a damaged log) stops the export there.
func (x *Exporter) Step(ctx context.Context) (int, error) {
	name := x.o.Sink.Name()
	from, err := x.o.Cursors.Cursor(ctx, name)
	if err != nil {
		return 0, fmt.Errorf("export %s: reading cursor: %w", name, err)
	}
	size, err := x.o.Source.Size(ctx)
	if err != nil {
		return 0, fmt.Errorf("export %s: reading the log size: %w", name, err)
	}
	to := min(size, from+int64(x.o.Batch))
	batch := make([]Record, 0, max(0, to-from))
	err = x.o.Source.ScanLeaves(ctx, from, to, func(i int64, leaf []byte, v1 bool) error {
		_, b, err := audit.LeafEvent(leaf, v1)
		if err != nil {
			return fmt.Errorf("leaf %d: %w", i, err)
		}
		var ev audit.Event
		if err := json.Unmarshal(b, &ev); err != nil {
			return fmt.Errorf("decoding leaf %d: %w", i, err)
		}
		batch = append(batch, Record{Index: i, Event: x.o.Redact.Apply(ev)})
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("export %s: reading the log after %d: %w", name, from, err)
	}
	if len(batch) == 0 {
		return 0, nil
	}
	if err := x.o.Sink.Send(ctx, batch); err != nil {
		return 0, err
	}
	to = batch[len(batch)-1].Index + 1
	if err := x.o.Cursors.Advance(ctx, name, from, to); err != nil {
		return 0, fmt.Errorf("export %s: advancing cursor to %d: %w", name, to, err)
	}
	return len(batch), nil
}

// Drain exports until the sink has caught up with the log as it was
// when Drain started, calling progress (if not nil) after each batch
// with the running total. It stops at the first error.
func (x *Exporter) Drain(ctx context.Context, progress func(total int64)) (int64, error) {
	var total int64
	for {
		n, err := x.Step(ctx)
		total += int64(n)
		if err != nil {
			return total, err
		}
		if n == 0 {
			return total, nil
		}
		if progress != nil {
			progress(total)
		}
	}
}

// Run exports until ctx ends. A failure is logged (sink name and error,
// never an event field) and retried with exponential backoff; a cursor
// that another process moved is simply re-read.
func (x *Exporter) Run(ctx context.Context) error {
	name := x.o.Sink.Name()
	backoff := time.Duration(0)
	for {
		n, err := x.Step(ctx)
		var wait time.Duration
		switch {
		case ctx.Err() != nil:
			return ctx.Err()
		case errors.Is(err, ErrMoved):
			wait = 0
		case err != nil:
			backoff = min(max(2*backoff, time.Second), x.o.MaxBackoff)
			wait = backoff
			x.o.Logger.WarnContext(ctx, "audit export failed; retrying", "sink", name, "err", err, "retry_in", wait)
		case n == 0:
			backoff, wait = 0, x.o.Poll
		default:
			backoff = 0
			x.o.Logger.DebugContext(ctx, "audit export", "sink", name, "records", n)
		}
		if wait == 0 {
			continue
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
}
