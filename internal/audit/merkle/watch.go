package merkle

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/phivault/phivault/internal/storage"
)

// ErrVanished means audit records this process made durable were
// removed from the database before they were integrated into the tree:
// someone with database access deleted them (ADR 0016).
var ErrVanished = errors.New("merkle: audit records vanished before integration")

// A record is protected by the tree only once it is integrated (within
// about a second); until then it is a row anyone with database access
// can delete, and the log would never show it existed. Each process
// knows the records it appended: a Watch keeps the leaf hash of each
// from before its append until it is seen in an entry bundle, and
// checks from time to time that every record it was told is durable is
// still pending or integrated. One that is neither was deleted.
//
// A write's deleted record also shows as a version no event commits to
// ("phivault verify"); a read's shows only here, and only to the
// process that appended it while it runs.

// Watch follows the audit records of one process until they are
// integrated. It is safe for concurrent use; Run is started once by its
// owner and stops when its context ends.
type Watch struct {
	src    storage.LogReader
	opener LogKey
	logger *slog.Logger
	every  time.Duration

	mu      sync.Mutex
	expect  map[tlog.Hash]*watched
	epoch   int64 // counts registrations
	scanned int64 // leaves below it were matched against expect
	lost    int64 // records found vanished, in all
	alarm   error
}

type watched struct {
	durable bool // the append committed
	checked bool // a check began after it was durable
}

// DefaultWatchInterval is how often Run checks: records are integrated
// within about a second, so a deleted one is found within a few.
const DefaultWatchInterval = 2 * time.Second

// NewWatch returns a Watch of the log in src from its current size on.
// every is the interval of Run (0: DefaultWatchInterval).
func NewWatch(ctx context.Context, src storage.LogReader, opener LogKey, logger *slog.Logger, every time.Duration) (*Watch, error) {
	size, err := src.StoredSize(ctx)
	if err != nil {
		return nil, fmt.Errorf("watching the audit log: %w", err)
	}
	if every <= 0 {
		every = DefaultWatchInterval
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Watch{src: src, opener: opener, logger: logger, every: every, expect: map[tlog.Hash]*watched{}, scanned: size}, nil
}

// Expect registers the leaf hashes of records about to be appended.
// Call it before the append, so that no check can miss their
// integration; then Settle them.
func (w *Watch) Expect(hashes ...[]byte) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, h := range hashes {
		if len(h) != tlog.HashSize {
			continue // a record without a leaf hash: not watched
		}
		w.expect[tlog.Hash(h)] = &watched{}
		w.epoch++
	}
}

// Settle says whether the append of records registered with Expect
// committed (they must then be found) or failed (they are forgotten).
func (w *Watch) Settle(ok bool, hashes ...[]byte) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, h := range hashes {
		if len(h) != tlog.HashSize {
			continue
		}
		e := w.expect[tlog.Hash(h)]
		switch {
		case e == nil: // already seen integrated
		case ok:
			e.durable = true
		default:
			delete(w.expect, tlog.Hash(h))
		}
	}
}

// Alarm returns an error wrapping ErrVanished once a check found
// records deleted before integration, or nil.
func (w *Watch) Alarm() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.alarm
}

// Run checks every interval until ctx ends, and returns ctx.Err().
func (w *Watch) Run(ctx context.Context) error {
	t := time.NewTicker(w.every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
		if err := w.Check(ctx); err != nil && ctx.Err() == nil && !errors.Is(err, ErrVanished) {
			w.logger.Warn("watching the audit log failed", slog.String("err", err.Error()))
		}
	}
}

// Check matches the records integrated since the last check with the
// expected ones, and reports (an error wrapping ErrVanished, also logged
// at error level and kept for Alarm) every record that was durable
// before the check began and is neither integrated nor pending.
func (w *Watch) Check(ctx context.Context) error {
	w.mu.Lock()
	if len(w.expect) == 0 {
		// Nothing to find: skip the leaves integrated meanwhile, unless
		// a record is registered while the size is read.
		epoch := w.epoch
		w.mu.Unlock()
		size, err := w.src.StoredSize(ctx)
		if err != nil {
			return err
		}
		w.mu.Lock()
		if w.epoch == epoch && size > w.scanned {
			w.scanned = size
		}
		w.mu.Unlock()
		return nil
	}
	for _, e := range w.expect {
		if e.durable {
			e.checked = true
		}
	}
	from := w.scanned
	w.mu.Unlock()

	// Pending first, then the bundles: a record integrated in between
	// is then in the bundles read after.
	pending := map[tlog.Hash]bool{}
	if err := w.src.ScanPending(ctx, func(l storage.LogLeaf) error {
		if len(l.LeafHash) == tlog.HashSize {
			pending[tlog.Hash(l.LeafHash)] = true
		}
		return nil
	}); err != nil {
		return err
	}
	end := from
	var seen []tlog.Hash
	err := w.src.ScanBundles(ctx, from/TileWidth, 1<<62, func(b storage.Bundle) error {
		first := b.N * TileWidth
		if first > end {
			return fmt.Errorf("watching the audit log: entry bundle %d is missing", end/TileWidth)
		}
		leaves, _, err := w.opener.OpenBundle(b.N, b.Width, b.Sealed)
		if err != nil {
			return fmt.Errorf("watching the audit log: %w", err)
		}
		for i := end - first; i < int64(len(leaves)); i++ {
			seen = append(seen, tlog.RecordHash(leaves[i]))
		}
		end = first + int64(len(leaves))
		return nil
	})
	if err != nil {
		return err
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, h := range seen {
		delete(w.expect, h)
	}
	if end > w.scanned {
		w.scanned = end
	}
	var lost int64
	for h, e := range w.expect {
		if e.checked && !pending[h] {
			lost++
			delete(w.expect, h)
		}
	}
	if lost == 0 {
		return nil
	}
	w.lost += lost
	w.alarm = fmt.Errorf("%w: %d audit records this process made durable were removed from the database before they were integrated into the tree (%d since start)", ErrVanished, lost, w.lost)
	w.logger.Error("AUDIT LOG ALARM: records deleted before integration", slog.Int64("records", lost), slog.Int64("since_start", w.lost))
	return w.alarm
}
