package merkle

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/phivault/phivault/internal/storage"
)

// Integrator defaults.
const (
	// DefaultMaxBatch is the most records one integration transaction
	// takes: at ~100 bytes of tree hashes per leaf this is a few hundred
	// KiB of writes, short enough not to stall the single SQLite writer.
	DefaultMaxBatch = 8192

	// DefaultInterval is how often the integrator looks for pending
	// records without being woken (appends inside write transactions do
	// not wake it; another process's appends neither). It keeps the
	// promise "checkpoint within a second of the append".
	DefaultInterval = 500 * time.Millisecond

	// DefaultMinGap is the pause after an integration before the next
	// one, so a stream of appends is integrated in batches and signs at
	// most a few checkpoints per second.
	DefaultMinGap = 100 * time.Millisecond
)

// LeafOpener decrypts a sealed body to its leaf; *audit.Log implements
// it. The integrator uses it only for records sealed before the
// transparency log existed (no stored leaf hash); Verify for every leaf.
type LeafOpener interface {
	OpenLeaf(body []byte) (leaf []byte, legacy bool, err error)
}

// IntegratorOptions configures an Integrator. Store, Signer and Origin
// are required; zero values of the rest mean the defaults.
type IntegratorOptions struct {
	Store  storage.LogStore
	Signer note.Signer
	Origin string     // checkpoint origin; must equal Signer.Name()
	Opener LeafOpener // needed only for legacy records

	MaxBatch int
	Interval time.Duration
	MinGap   time.Duration
	Now      func() time.Time
	Logger   *slog.Logger
}

// Integrator assigns leaf indexes, stores tree hashes and signs
// checkpoints. Its methods are safe for concurrent use; Run is started
// once by its owner (package app) and stops when its context ends.
type Integrator struct {
	o    IntegratorOptions
	wake chan struct{}
}

// NewIntegrator validates o and returns an Integrator.
func NewIntegrator(o IntegratorOptions) (*Integrator, error) {
	switch {
	case o.Store == nil:
		return nil, errors.New("new integrator: IntegratorOptions.Store is nil")
	case o.Signer == nil:
		return nil, errors.New("new integrator: IntegratorOptions.Signer is nil")
	case o.Origin == "" || o.Origin != o.Signer.Name():
		return nil, fmt.Errorf("new integrator: IntegratorOptions.Origin %q must equal the signer's name %q", o.Origin, o.Signer.Name())
	case o.MaxBatch < 0 || o.Interval < 0 || o.MinGap < 0:
		return nil, errors.New("new integrator: negative IntegratorOptions.MaxBatch, Interval or MinGap")
	}
	if o.MaxBatch == 0 {
		o.MaxBatch = DefaultMaxBatch
	}
	if o.Interval == 0 {
		o.Interval = DefaultInterval
	}
	if o.MinGap == 0 {
		o.MinGap = DefaultMinGap
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return &Integrator{o: o, wake: make(chan struct{}, 1)}, nil
}

// Wake asks Run to integrate soon. It never blocks.
func (in *Integrator) Wake() {
	select {
	case in.wake <- struct{}{}:
	default:
	}
}

// Run integrates whenever woken or every Interval until ctx ends, and
// returns ctx.Err(). Errors of one round are logged (no PHI: sizes and
// sequence numbers only) and retried on the next.
func (in *Integrator) Run(ctx context.Context) error {
	t := time.NewTicker(in.o.Interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-in.wake:
		case <-t.C:
		}
		if _, err := in.IntegrateAll(ctx); err != nil && ctx.Err() == nil {
			in.o.Logger.Error("audit log integration failed", slog.String("err", err.Error()))
		}
		gap := time.NewTimer(in.o.MinGap)
		select {
		case <-ctx.Done():
			gap.Stop()
			return ctx.Err()
		case <-gap.C:
		}
	}
}

// IntegrateAll integrates every pending record, in batches, and returns
// the tree size reached.
func (in *Integrator) IntegrateAll(ctx context.Context) (int64, error) {
	for {
		n, size, err := in.Integrate(ctx)
		if err != nil || n < in.o.MaxBatch {
			return size, err
		}
	}
}

// Integrate runs one integration transaction: it takes up to MaxBatch
// pending records in sequence order, gives them the next leaf indexes,
// stores their tree hashes and a signed checkpoint of the new size. On
// an empty log it signs the checkpoint of the empty tree once. It
// returns the records integrated and the tree size. Errors wrap
// ErrInconsistent when the stored state was tampered with.
func (in *Integrator) Integrate(ctx context.Context) (added int, size int64, err error) {
	err = in.o.Store.Integrate(ctx, func(tx storage.LogTx) error {
		added, size = 0, 0
		cur, err := tx.Size(ctx)
		if err != nil {
			return err
		}
		latest, err := tx.Latest(ctx)
		switch {
		case errors.Is(err, storage.ErrNotFound):
			if cur != 0 {
				return fmt.Errorf("%w: %d leaves but no checkpoint", ErrInconsistent, cur)
			}
			latest.Size = -1
		case err != nil:
			return err
		case latest.Size != cur:
			return fmt.Errorf("%w: %d leaves but the latest checkpoint has size %d", ErrInconsistent, cur, latest.Size)
		}
		pending, err := tx.Pending(ctx, in.o.MaxBatch)
		if err != nil {
			return err
		}
		size = cur
		if len(pending) == 0 && latest.Size == cur {
			return nil
		}
		hr := newOverlay(ctx, tx)
		first := tlog.StoredHashCount(cur)
		next := first
		var hashes [][]byte
		seqs := make([]int64, len(pending))
		for i, p := range pending {
			h, err := in.leafHash(p)
			if err != nil {
				return err
			}
			hs, err := tlog.StoredHashesForRecordHash(cur+int64(i), h, hr)
			if err != nil {
				return fmt.Errorf("hashing leaf %d: %w", cur+int64(i), err)
			}
			for _, x := range hs {
				hr.known[next] = x
				next++
				hashes = append(hashes, bytes.Clone(x[:]))
			}
			seqs[i] = p.Seq
		}
		size = cur + int64(len(pending))
		root, err := tlog.TreeHash(size, hr)
		if err != nil {
			return fmt.Errorf("tree hash of size %d: %w", size, err)
		}
		msg, err := SignCheckpoint(in.o.Origin, size, root, in.o.Signer)
		if err != nil {
			return err
		}
		if err := tx.Assign(ctx, cur, seqs); err != nil {
			return err
		}
		if err := tx.PutHashes(ctx, first, hashes); err != nil {
			return err
		}
		if err := tx.PutCheckpoint(ctx, storage.Checkpoint{Size: size, Root: root[:], Note: msg, Created: in.o.Now().UTC()}); err != nil {
			return err
		}
		added = len(pending)
		return nil
	})
	if err != nil {
		return 0, 0, fmt.Errorf("integrating audit records: %w", err)
	}
	return added, size, nil
}

// leafHash is the stored leaf hash, or for a legacy record the hash of
// its decrypted leaf.
func (in *Integrator) leafHash(p storage.LogLeaf) (tlog.Hash, error) {
	var h tlog.Hash
	if p.LeafHash != nil {
		if len(p.LeafHash) != tlog.HashSize {
			return h, fmt.Errorf("%w: record %d has a %d-byte leaf hash", ErrInconsistent, p.Seq, len(p.LeafHash))
		}
		copy(h[:], p.LeafHash)
		return h, nil
	}
	if in.o.Opener == nil {
		return h, fmt.Errorf("record %d has no leaf hash and no opener is configured", p.Seq)
	}
	leaf, _, err := in.o.Opener.OpenLeaf(p.Body)
	if err != nil {
		return h, fmt.Errorf("record %d: %w", p.Seq, err)
	}
	return tlog.RecordHash(leaf), nil
}
