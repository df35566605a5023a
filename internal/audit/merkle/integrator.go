package merkle

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/phivault/phivault/internal/audit"
	"github.com/phivault/phivault/internal/storage"
)

// Integrator defaults.
const (
	// DefaultMaxBatch is the most records one integration transaction
	// takes: 32 entry bundles and their tiles, a few MiB of writes, short
	// enough not to stall the single SQLite writer for long.
	DefaultMaxBatch = 8192

	// DefaultInterval is how often the integrator looks for pending
	// records without being woken (appends inside write transactions do
	// not wake it; another process's appends neither). It keeps the
	// promise "checkpoint within a second of the append".
	DefaultInterval = 500 * time.Millisecond

	// DefaultMinGap is the pause after an integration before the next
	// one, so a stream of appends is integrated in batches and signs at
	// most four checkpoints a second (each costs a full verification an
	// Ed25519 check, about as much as 50 leaves: bench/README.md), while
	// a checkpoint still follows an append within a second.
	DefaultMinGap = 250 * time.Millisecond
)

// LogKey opens sealed records and seals and opens entry bundles with
// the log key; *audit.Log implements it. The integrator opens every
// pending record to move its leaf into a bundle; Verify and the Reader
// open bundles.
type LogKey interface {
	OpenLeaf(body []byte) (leaf []byte, legacy bool, err error)
	SealBundle(n int64, leaves [][]byte, v1 []bool) ([]byte, error)
	OpenBundle(n int64, width int, sealed []byte) (leaves [][]byte, v1 []bool, err error)
}

// IntegratorOptions configures an Integrator. Store, Signer and Origin
// are required; zero values of the rest mean the defaults.
type IntegratorOptions struct {
	Store  storage.LogStore
	Signer note.Signer
	Origin string // checkpoint origin; must equal Signer.Name()
	Opener LogKey // opens records, seals bundles
	// Verifier checks the latest stored checkpoint's signature before the
	// tree is extended from it: the stored root column alone could have
	// been changed with the tiles.
	Verifier note.Verifier

	// Anchor keeps the last checkpoint signed outside the database
	// (ADR 0016): the integrator refuses to sign a tree smaller than, or
	// inconsistent with, it, and saves each checkpoint it signs there
	// after the commit. Witnesses are more such checkpoints (a witness's
	// co-signed checkpoint), checked and never written. Both optional.
	Anchor    Anchor
	Witnesses []Anchor

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

	// alarm is the last integration's failure when it means the stored
	// log was tampered with or rolled back (nil after a success).
	alarm atomic.Pointer[error]
	// floorOK remembers the last floor check that passed (the kept
	// checkpoints and the stored tree it compared), to skip repeating it.
	floorOK atomic.Pointer[string]
}

// NewIntegrator validates o and returns an Integrator.
func NewIntegrator(o IntegratorOptions) (*Integrator, error) {
	switch {
	case o.Store == nil:
		return nil, errors.New("new integrator: IntegratorOptions.Store is nil")
	case o.Signer == nil:
		return nil, errors.New("new integrator: IntegratorOptions.Signer is nil")
	case o.Opener == nil:
		return nil, errors.New("new integrator: IntegratorOptions.Opener is nil")
	case o.Verifier == nil || o.Verifier.Name() != o.Origin:
		return nil, errors.New("new integrator: IntegratorOptions.Verifier must be the signer's verifier")
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

// repeatLog is how often Run logs a failure that persists: each round
// fails the same way until an operator acts, and one line a minute says
// so without flooding the log.
const repeatLog = time.Minute

// Run integrates whenever woken or every Interval until ctx ends, and
// returns ctx.Err(). Errors of one round are logged (no PHI: sizes and
// sequence numbers only) and retried on the next; the same error again
// is logged once a minute.
func (in *Integrator) Run(ctx context.Context) error {
	t := time.NewTicker(in.o.Interval)
	defer t.Stop()
	var lastErr string
	var lastLogged time.Time
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-in.wake:
		case <-t.C:
		}
		_, err := in.IntegrateAll(ctx)
		switch {
		case err != nil && ctx.Err() == nil:
			if now := in.o.Now(); err.Error() != lastErr || now.Sub(lastLogged) >= repeatLog {
				lastErr, lastLogged = err.Error(), now
				if a := in.Alarm(); a != nil {
					in.o.Logger.Error("AUDIT LOG ALARM: refusing to sign", slog.String("err", err.Error()))
				} else {
					in.o.Logger.Error("audit log integration failed", slog.String("err", err.Error()))
				}
			}
		case err == nil && lastErr != "":
			in.o.Logger.Info("audit log integration recovered")
			lastErr = ""
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
		n, size, converted, err := in.integrate(ctx)
		if err != nil || (n < in.o.MaxBatch && !converted) {
			return size, err
		}
	}
}

// Alarm returns why the last integration refused to extend the stored
// log because it was tampered with, rolled back or rewritten (an error
// wrapping ErrInconsistent, ErrRollback, ErrFork, ErrRewrite or
// ErrSignature), or the checkpoint kept outside the database is missing
// or cannot be read or written (ErrAnchorMissing, ErrAnchorIO), or nil
// once an integration succeeded. The server's
// readiness and status pages report it.
func (in *Integrator) Alarm() error {
	if p := in.alarm.Load(); p != nil {
		return *p
	}
	return nil
}

// isAlarm reports an error that means the stored log cannot be trusted.
func isAlarm(err error) bool {
	for _, e := range []error{ErrInconsistent, ErrRollback, ErrFork, ErrRewrite, ErrSignature, ErrAnchorMissing, ErrAnchorIO} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// Integrate runs one integration transaction: it takes up to MaxBatch
// pending records in sequence order, gives them the next leaf indexes,
// moves their leaves into the sealed entry bundles (rewriting the last,
// partial one), stores the new hash tiles and a signed checkpoint of the
// new size, and deletes the records. On an empty log it signs the
// checkpoint of the empty tree once. It returns the records integrated
// and the tree size. Errors wrap ErrInconsistent when the stored state
// was tampered with.
//
// A database written before entry bundles holds integrated records one
// row per leaf: Integrate converts them first, MaxBatch at a time and
// in leaf order, signing nothing (their checkpoints exist); the last
// conversion checks the rebuilt tree's root against the latest
// checkpoint and fails, changing nothing, if they differ.
func (in *Integrator) Integrate(ctx context.Context) (added int, size int64, err error) {
	added, size, _, err = in.integrate(ctx)
	return added, size, err
}

// integrate is Integrate; converted reports records of the previous
// layout converted (pending ones may be left even if added < MaxBatch).
func (in *Integrator) integrate(ctx context.Context) (added int, size int64, converted bool, err error) {
	var signed []byte
	var establish bool // the Anchor is created: record it as kept once saved
	err = in.o.Store.Integrate(ctx, func(tx storage.LogTx) error {
		added, size, converted, signed, establish = 0, 0, false, nil, false
		cur, err := tx.Size(ctx)
		if err != nil {
			return err
		}
		size = cur
		latest, err := tx.Latest(ctx)
		switch {
		case errors.Is(err, storage.ErrNotFound):
			latest.Size = -1
		case err != nil:
			return err
		default:
			// Extend only a tree whose root the log key signed.
			cp, err := OpenCheckpoint(latest.Note, in.o.Origin, in.o.Verifier)
			if err != nil || cp.Size != latest.Size || !bytes.Equal(cp.Root[:], latest.Root) {
				return fmt.Errorf("%w: the latest checkpoint (size %d) is not the signed one: %v", ErrInconsistent, latest.Size, err)
			}
		}
		recs, err := tx.Legacy(ctx, cur, in.o.MaxBatch)
		if err != nil {
			return err
		}
		converting := len(recs) > 0
		var old tlog.HashReader
		switch {
		case converting:
			if latest.Size < cur+int64(len(recs)) {
				return fmt.Errorf("%w: %d leaves of the previous layout beyond the latest checkpoint (size %d)", ErrInconsistent, cur+int64(len(recs)), latest.Size)
			}
			if cur > 0 {
				// The conversion's own tiles of the previous chunks; the
				// last chunk checks the root they lead to.
				old = uncheckedTiles{storedTiles{ctx: ctx, src: tx}}
			}
		case latest.Size < 0 && cur != 0:
			return fmt.Errorf("%w: %d leaves but no checkpoint", ErrInconsistent, cur)
		case latest.Size >= 0 && latest.Size != cur:
			return fmt.Errorf("%w: %d leaves but the latest checkpoint has size %d", ErrInconsistent, cur, latest.Size)
		default:
			if recs, err = tx.Pending(ctx, in.o.MaxBatch); err != nil {
				return err
			}
			if cur > 0 {
				if old, err = treeHashes(ctx, tx, cur, latest.Root); err != nil {
					return err
				}
			}
			// Never sign a tree that does not extend the checkpoints
			// kept outside the database.
			behind, err := in.checkFloors(ctx, tx, cur, latest, old, false)
			if err != nil {
				return err
			}
			if behind && latest.Size >= 0 {
				// The anchor lacks the latest checkpoint (an earlier
				// save failed, another process of a fleet signed it,
				// or a database written before it was kept): keep it,
				// as checked against the tree, before signing more.
				// A checkpoint that cannot be kept is not signed: the
				// records stay pending.
				if err := in.o.Anchor.Save(latest.Note); err != nil {
					return fmt.Errorf("refusing to sign: %w: %w", ErrAnchorIO, err)
				}
				if err := tx.SetAnchorState(ctx, storage.AnchorKept); err != nil {
					return err
				}
			} else if behind {
				establish = true
			}
			if len(recs) == 0 && latest.Size == cur {
				return nil
			}
		}
		ov := &overlay{old: old, known: make(map[int64]tlog.Hash)}
		seen := make(map[tlog.Hash]int64, len(recs)) // leaf hash -> seq
		leaves := make([][]byte, len(recs))
		v1 := make([]bool, len(recs))
		seqs := make([]int64, len(recs))
		for i, p := range recs {
			idx := cur + int64(i)
			if converting && p.Index != idx {
				return fmt.Errorf("%w: leaf %d is missing from the records of the previous layout (next is %d, seq %d)", ErrInconsistent, idx, p.Index, p.Seq)
			}
			leaf, legacy, h, err := in.open(p)
			if err != nil {
				return err
			}
			// Every leaf has its own random salt: the same leaf twice is
			// a copied record.
			if first, dup := seen[h]; dup {
				return fmt.Errorf("%w: record %d holds the same leaf as record %d (a copied record)", ErrInconsistent, p.Seq, first)
			}
			seen[h] = p.Seq
			hs, err := tlog.StoredHashesForRecordHash(idx, h, ov)
			if err != nil {
				return fmt.Errorf("hashing leaf %d: %w", idx, err)
			}
			id := tlog.StoredHashCount(idx)
			for k, x := range hs {
				ov.known[id+int64(k)] = x
			}
			leaves[i], v1[i], seqs[i] = leaf, legacy, p.Seq
		}
		size = cur + int64(len(recs))
		if err := in.putBundles(ctx, tx, cur, leaves, v1); err != nil {
			return err
		}
		var tiles []storage.Tile
		for _, t := range tlog.NewTiles(TileHeight, cur, size) {
			data, err := tlog.ReadTileData(t, ov)
			if err != nil {
				return fmt.Errorf("tile %s: %w", TilePath(t), err)
			}
			tiles = append(tiles, storage.Tile{Level: t.L, N: t.N, Width: t.W, Data: data})
		}
		if err := tx.PutTiles(ctx, tiles); err != nil {
			return err
		}
		root, err := tlog.TreeHash(size, ov)
		if err != nil {
			return fmt.Errorf("tree hash of size %d: %w", size, err)
		}
		if err := tx.Remove(ctx, seqs, converting); err != nil {
			return err
		}
		if converting {
			added, converted = len(recs), true
			more, err := tx.Legacy(ctx, size, 1)
			if err != nil {
				return err
			}
			if len(more) > 0 {
				in.o.Logger.Info("converting the audit log to entry bundles", slog.Int64("leaves", size), slog.Int64("of", latest.Size))
				return nil
			}
			if latest.Size != size || !bytes.Equal(latest.Root, root[:]) {
				return fmt.Errorf("%w: the records of the previous layout rebuild a tree of size %d whose root differs from the latest checkpoint's (size %d): run phivault audit verify on a copy made with the previous version", ErrInconsistent, size, latest.Size)
			}
			in.o.Logger.Info("audit log converted to entry bundles", slog.Int64("leaves", size))
			return tx.DropLegacyHashes(ctx)
		}
		msg, err := SignCheckpoint(in.o.Origin, size, root, in.o.Signer)
		if err != nil {
			return err
		}
		if err := tx.PutCheckpoint(ctx, storage.Checkpoint{Size: size, Root: root[:], Note: msg, Created: in.o.Now().UTC()}); err != nil {
			return err
		}
		added, signed = len(recs), msg
		return nil
	})
	if err != nil {
		err = fmt.Errorf("integrating audit records: %w", err)
		if isAlarm(err) {
			in.alarm.Store(&err)
		}
		return 0, 0, false, err
	}
	if signed != nil && in.o.Anchor != nil {
		// After the commit: a kept checkpoint the database lacks would
		// stop every later integration. If it cannot be kept, the
		// next integration tries again and signs nothing until it can.
		if err := in.o.Anchor.Save(signed); err != nil {
			err = fmt.Errorf("integrating audit records: %w: %w", ErrAnchorIO, err)
			in.alarm.Store(&err)
			return added, size, converted, err
		}
		if establish {
			if err := in.o.Store.Integrate(ctx, func(tx storage.LogTx) error { return tx.SetAnchorState(ctx, storage.AnchorKept) }); err != nil {
				return added, size, converted, fmt.Errorf("integrating audit records: %w", err)
			}
		}
	}
	in.alarm.Store(nil)
	return added, size, converted, nil
}

// checkFloors refuses a stored tree (cur leaves, the latest checkpoint
// latest, whose signature was checked; Size -1 for none; hashes reads
// its tiles, nil for an empty tree) that is smaller than a checkpoint
// kept outside the database, or does not extend it. Errors wrap
// ErrRollback, ErrFork, ErrRewrite or ErrSignature (a kept checkpoint
// that is not the log's), or are I/O errors reading a kept checkpoint:
// the integrator then signs nothing (fail closed). anchorBehind
// reports that the Anchor does not hold the latest checkpoint.
//
// A missing Anchor is an alarm (ErrAnchorMissing) once the database
// records it as kept; before (a new database, or one signed by a
// version that kept none: storage.AnchorNew, AnchorUpgrade) the
// integrator creates it, and so does accept (Accept). Once the Anchor
// exists, the database records it as kept.
func (in *Integrator) checkFloors(ctx context.Context, tx storage.LogTx, cur int64, latest storage.Checkpoint, hashes tlog.HashReader, accept bool) (anchorBehind bool, err error) {
	floors := in.o.Witnesses
	if in.o.Anchor != nil {
		floors = append([]Anchor{in.o.Anchor}, floors...)
	}
	if len(floors) == 0 {
		return false, nil
	}
	var notes [][]byte
	var names []string
	anchorBehind = in.o.Anchor != nil
	for i, a := range floors {
		raw, err := a.Load()
		if err != nil {
			return false, fmt.Errorf("refusing to sign: %w: %w", ErrAnchorIO, err)
		}
		if i == 0 && in.o.Anchor != nil {
			if err := in.anchorState(ctx, tx, raw != nil, accept, latest.Size); err != nil {
				return false, err
			}
		}
		if raw != nil {
			notes = append(notes, raw)
			names = append(names, a.Name())
			if i == 0 && in.o.Anchor != nil && bytes.Equal(raw, latest.Note) {
				anchorBehind = false
			}
		}
	}
	memo := fmt.Sprintf("%d %x %q", cur, latest.Root, notes)
	if p := in.floorOK.Load(); p != nil && *p == memo {
		return anchorBehind, nil
	}
	for i, raw := range notes {
		name := names[i]
		cp, err := OpenCheckpoint(raw, in.o.Origin, in.o.Verifier)
		if err != nil {
			return false, fmt.Errorf("refusing to sign: %w: the checkpoint kept in %s is not this log's (%v); if the data directory was replaced on purpose, move that file aside", ErrSignature, name, err)
		}
		switch {
		case cp.Size > cur:
			return false, fmt.Errorf("refusing to sign: %w: the log holds %d leaves, but a checkpoint of size %d was signed before (kept in %s): the audit log was truncated, emptied or restored from an older copy",
				ErrRollback, cur, cp.Size, name)
		case cp.Size == cur:
			root := tlog.Hash{}
			if cur > 0 {
				copy(root[:], latest.Root)
			} else if root, err = tlog.TreeHash(0, nil); err != nil {
				return false, err
			}
			if root != cp.Root {
				return false, fmt.Errorf("refusing to sign: %w: the log's tree of size %d has another root than the checkpoint kept in %s", ErrFork, cur, name)
			}
		case cp.Size > 0:
			root, err := tlog.TreeHash(cp.Size, hashes)
			if err != nil {
				return false, err
			}
			if root != cp.Root {
				return false, fmt.Errorf("refusing to sign: %w: the log does not extend the checkpoint of size %d kept in %s: its first %d leaves were rewritten",
					ErrRewrite, cp.Size, name, cp.Size)
			}
		}
	}
	in.floorOK.Store(&memo)
	return anchorBehind, nil
}

// anchorState checks the database's record of the Anchor (see
// checkFloors): exists says whether the file holds a checkpoint; latest
// is the size of the latest stored checkpoint (-1 for none).
func (in *Integrator) anchorState(ctx context.Context, tx storage.LogTx, exists, accept bool, latest int64) error {
	state, err := tx.AnchorState(ctx)
	if err != nil {
		return err
	}
	switch {
	case exists || accept:
		if state != storage.AnchorKept {
			return tx.SetAnchorState(ctx, storage.AnchorKept)
		}
	case state == storage.AnchorNew:
		in.o.Logger.Debug("creating the checkpoint kept outside the database", slog.String("anchor", in.o.Anchor.Name()))
	case state == storage.AnchorUpgrade:
		in.o.Logger.Warn("keeping the latest checkpoint outside the database for the first time (a log signed by a version that kept none)",
			slog.String("anchor", in.o.Anchor.Name()), slog.Int64("size", latest))
	default:
		return fmt.Errorf("refusing to sign: %w: %s does not exist, but this database's log was signed with a kept checkpoint (the log may have been emptied or rewritten): restore the file, or check the log (phivault audit verify) and accept it (phivault audit accept-checkpoint)",
			ErrAnchorMissing, in.o.Anchor.Name())
	}
	return nil
}

// Accept re-establishes a missing Anchor from the database ("phivault
// audit accept-checkpoint", after the operator verified the log): it
// keeps the latest stored checkpoint, whose signature and tree are
// checked, as does the witnesses' checkpoints (or, on an empty log, a
// new checkpoint of the empty tree), and records the Anchor as kept. It
// refuses when the Anchor holds a checkpoint. It returns the
// checkpoint kept.
func (in *Integrator) Accept(ctx context.Context) (storage.Checkpoint, error) {
	if in.o.Anchor == nil {
		return storage.Checkpoint{}, errors.New("accepting the log: no checkpoint is kept outside the database (audit.checkpoint_file)")
	}
	var out storage.Checkpoint
	err := in.o.Store.Integrate(ctx, func(tx storage.LogTx) error {
		raw, err := in.o.Anchor.Load()
		if err != nil {
			return fmt.Errorf("%w: %w", ErrAnchorIO, err)
		}
		if raw != nil {
			return fmt.Errorf("a checkpoint is kept in %s: nothing to accept (move it aside first only if the log was replaced on purpose)", in.o.Anchor.Name())
		}
		cur, err := tx.Size(ctx)
		if err != nil {
			return err
		}
		if more, err := tx.Legacy(ctx, cur, 1); err != nil {
			return err
		} else if len(more) > 0 {
			return errors.New("accepting the log: it is being converted to entry bundles; start the server first")
		}
		latest, err := tx.Latest(ctx)
		var hashes tlog.HashReader
		switch {
		case errors.Is(err, storage.ErrNotFound):
			if cur != 0 {
				return fmt.Errorf("%w: %d leaves but no checkpoint", ErrInconsistent, cur)
			}
			root, err := tlog.TreeHash(0, nil)
			if err != nil {
				return err
			}
			msg, err := SignCheckpoint(in.o.Origin, 0, root, in.o.Signer)
			if err != nil {
				return err
			}
			latest = storage.Checkpoint{Size: 0, Root: root[:], Note: msg, Created: in.o.Now().UTC()}
			if err := tx.PutCheckpoint(ctx, latest); err != nil {
				return err
			}
		case err != nil:
			return err
		default:
			cp, err := OpenCheckpoint(latest.Note, in.o.Origin, in.o.Verifier)
			if err != nil || cp.Size != latest.Size || !bytes.Equal(cp.Root[:], latest.Root) {
				return fmt.Errorf("%w: the latest checkpoint (size %d) is not the signed one: %v", ErrInconsistent, latest.Size, err)
			}
			if latest.Size != cur {
				return fmt.Errorf("%w: %d leaves but the latest checkpoint has size %d", ErrInconsistent, cur, latest.Size)
			}
			if cur > 0 {
				if hashes, err = treeHashes(ctx, tx, cur, latest.Root); err != nil {
					return err
				}
				// The signed root must be the stored tree's.
				root, err := tlog.TreeHash(cur, hashes)
				if err != nil {
					return fmt.Errorf("%w: %w", ErrInconsistent, err)
				}
				if !bytes.Equal(root[:], latest.Root) {
					return fmt.Errorf("%w: the stored tree of size %d has another root than its checkpoint", ErrInconsistent, cur)
				}
			}
		}
		if _, err := in.checkFloors(ctx, tx, cur, latest, hashes, true); err != nil {
			return err
		}
		if err := in.o.Anchor.Save(latest.Note); err != nil {
			return fmt.Errorf("%w: %w", ErrAnchorIO, err)
		}
		out = latest
		return nil
	})
	if err != nil {
		return storage.Checkpoint{}, fmt.Errorf("accepting the log: %w", err)
	}
	in.floorOK.Store(nil)
	in.alarm.Store(nil)
	return out, nil
}

// open returns the leaf sealed in record p and its hash, checking it
// against the leaf hash stored at sequencing.
func (in *Integrator) open(p storage.LogLeaf) ([]byte, bool, tlog.Hash, error) {
	leaf, v1, err := in.o.Opener.OpenLeaf(p.Body)
	if err != nil {
		return nil, false, tlog.Hash{}, fmt.Errorf("%w: record %d does not open with the log key: %w", ErrInconsistent, p.Seq, err)
	}
	h := tlog.RecordHash(leaf)
	if p.LeafHash != nil && !bytes.Equal(p.LeafHash, h[:]) {
		return nil, false, h, fmt.Errorf("%w: record %d: the stored leaf hash differs from the hash of its sealed leaf", ErrInconsistent, p.Seq)
	}
	return leaf, v1, h, nil
}

// putBundles appends leaves (indexes cur, cur+1, ...) to the entry
// bundles: it reopens the partial bundle they continue and seals every
// bundle they reach.
func (in *Integrator) putBundles(ctx context.Context, tx storage.LogTx, cur int64, leaves [][]byte, v1 []bool) error {
	n := cur / audit.BundleWidth
	var buf [][]byte
	var bufV1 []bool
	if k := int(cur % audit.BundleWidth); k > 0 {
		b, err := tx.Bundle(ctx, n)
		if err != nil {
			return fmt.Errorf("%w: partial entry bundle %d: %w", ErrInconsistent, n, err)
		}
		if b.Width != k {
			return fmt.Errorf("%w: partial entry bundle %d has %d leaves, the tree %d", ErrInconsistent, n, b.Width, k)
		}
		if buf, bufV1, err = in.o.Opener.OpenBundle(n, b.Width, b.Sealed); err != nil {
			return fmt.Errorf("%w: %w", ErrInconsistent, err)
		}
		if bufV1 == nil {
			bufV1 = make([]bool, len(buf))
		}
	}
	for len(leaves) > 0 {
		k := min(len(leaves), audit.BundleWidth-len(buf))
		buf = append(buf, leaves[:k]...)
		bufV1 = append(bufV1, v1[:k]...)
		leaves, v1 = leaves[k:], v1[k:]
		sealed, err := in.o.Opener.SealBundle(n, buf, bufV1)
		if err != nil {
			return err
		}
		if err := tx.PutBundle(ctx, storage.Bundle{N: n, Width: len(buf), Sealed: sealed}); err != nil {
			return err
		}
		n, buf, bufV1 = n+1, buf[:0:0], bufV1[:0:0]
	}
	return nil
}

// uncheckedTiles reads hashes from stored tiles without checking them
// against a root: only the conversion of the previous layout uses it,
// for the tiles it wrote itself, and checks the root it reaches.
type uncheckedTiles struct{ t storedTiles }

func (u uncheckedTiles) ReadHashes(ids []int64) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(ids))
	for i, id := range ids {
		t := tlog.TileForIndex(TileHeight, id)
		data, err := u.t.ReadTiles([]tlog.Tile{t})
		if err != nil {
			return nil, err
		}
		if out[i], err = tlog.HashFromTile(t, data[0], id); err != nil {
			return nil, err
		}
	}
	return out, nil
}
