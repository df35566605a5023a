package merkle

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/phivault/phivault/internal/audit"
	"github.com/phivault/phivault/internal/storage"
)

// maxEntrySize is the largest leaf an entry bundle can carry: C2SP
// entry bundles prefix each entry with a big-endian uint16 length.
const maxEntrySize = 1<<16 - 1

// Reader serves the published log from storage: checkpoints, hash
// tiles, entry bundles and proofs. It is safe for concurrent use.
type Reader struct {
	store  storage.LogReader
	opener LeafOpener
}

// NewReader returns a Reader over store. opener decrypts leaves for
// entry bundles; with a nil opener EntryBundle fails.
func NewReader(store storage.LogReader, opener LeafOpener) *Reader {
	return &Reader{store: store, opener: opener}
}

// Checkpoint returns the latest signed checkpoint, or an error wrapping
// ErrNotFound before the first integration.
func (r *Reader) Checkpoint(ctx context.Context) (storage.Checkpoint, error) {
	c, err := r.store.LatestCheckpoint(ctx)
	if errors.Is(err, storage.ErrNotFound) {
		return c, fmt.Errorf("%w: no checkpoint yet", ErrNotFound)
	}
	return c, err
}

// Tile returns the data of hash tile t (t.L >= 0): t.W hashes of 32
// bytes. The tile must lie within the latest checkpoint; otherwise the
// error wraps ErrNotFound.
func (r *Reader) Tile(ctx context.Context, t tlog.Tile) ([]byte, error) {
	if t.H != TileHeight || t.L < 0 || t.W < 1 || t.W > TileWidth {
		return nil, fmt.Errorf("%w: not a hash tile", ErrBadRequest)
	}
	if err := r.within(ctx, t); err != nil {
		return nil, err
	}
	data, err := tlog.ReadTileData(t, storedHashes(ctx, r.store))
	if err != nil {
		return nil, fmt.Errorf("reading tile %s: %w", TilePath(t), err)
	}
	return data, nil
}

// EntryBundle returns the C2SP entry bundle of tile t (t.L == -1): each
// leaf (salt and event bytes, decrypted) prefixed by its length as a
// big-endian uint16. Bundles hold audit events: serve them to auditors
// only. Errors wrap ErrNotFound outside the latest checkpoint.
func (r *Reader) EntryBundle(ctx context.Context, t tlog.Tile) ([]byte, error) {
	if t.H != TileHeight || t.L != -1 || t.W < 1 || t.W > TileWidth {
		return nil, fmt.Errorf("%w: not an entry bundle", ErrBadRequest)
	}
	if r.opener == nil {
		return nil, errors.New("entry bundle: no leaf opener")
	}
	if err := r.within(ctx, t); err != nil {
		return nil, err
	}
	from := t.N * TileWidth
	to := from + int64(t.W)
	var out []byte
	next := from
	err := r.store.ScanLeaves(ctx, from, to, func(l storage.LogLeaf) error {
		if l.Index != next {
			return fmt.Errorf("%w: leaf %d missing from the store", ErrInconsistent, next)
		}
		leaf, _, err := r.opener.OpenLeaf(l.Body)
		if err != nil {
			return fmt.Errorf("entry bundle: leaf %d: %w", l.Index, err)
		}
		if len(leaf) > maxEntrySize {
			return fmt.Errorf("entry bundle: leaf %d has %d bytes, more than an entry bundle holds", l.Index, len(leaf))
		}
		out = binary.BigEndian.AppendUint16(out, uint16(len(leaf)))
		out = append(out, leaf...)
		next++
		return nil
	})
	if err != nil {
		return nil, err
	}
	if next != to {
		return nil, fmt.Errorf("%w: leaf %d missing from the store", ErrInconsistent, next)
	}
	return out, nil
}

// within checks that tile t is complete in the latest checkpoint.
func (r *Reader) within(ctx context.Context, t tlog.Tile) error {
	need, ok := tileLeaves(t)
	if !ok {
		return fmt.Errorf("%w: tile %s", ErrNotFound, TilePath(t))
	}
	c, err := r.Checkpoint(ctx)
	if err != nil {
		return err
	}
	if need > c.Size {
		return fmt.Errorf("%w: tile %s is beyond the tree of size %d", ErrNotFound, TilePath(t), c.Size)
	}
	return nil
}

// checkpointFor returns the checkpoint of size, or the latest for 0.
func (r *Reader) checkpointFor(ctx context.Context, size int64) (storage.Checkpoint, error) {
	if size == 0 {
		return r.Checkpoint(ctx)
	}
	c, err := r.store.CheckpointAt(ctx, size)
	if errors.Is(err, storage.ErrNotFound) {
		return c, fmt.Errorf("%w: no checkpoint of size %d", ErrNotFound, size)
	}
	return c, err
}

// InclusionProof returns a C2SP tlog-proof that leaf req.Index is in the
// tree of the checkpoint of size req.Size (0: the latest). The proof
// embeds that signed checkpoint. Errors wrap ErrNotFound when there is
// no checkpoint of that size or the leaf is not in it.
func (r *Reader) InclusionProof(ctx context.Context, req InclusionRequest) ([]byte, error) {
	c, err := r.checkpointFor(ctx, req.Size)
	if err != nil {
		return nil, err
	}
	if req.Index >= c.Size {
		return nil, fmt.Errorf("%w: leaf %d is not in the tree of size %d", ErrNotFound, req.Index, c.Size)
	}
	p, err := tlog.ProveRecord(c.Size, req.Index, storedHashes(ctx, r.store))
	if err != nil {
		return nil, fmt.Errorf("proving leaf %d in tree %d: %w", req.Index, c.Size, err)
	}
	return FormatInclusionProof(req.Index, p, c.Note), nil
}

// ConsistencyProof returns the RFC 6962 consistency proof between the
// trees of sizes req.Old and req.New, one base64 hash per line. req.New
// must not exceed the latest checkpoint (ErrNotFound).
func (r *Reader) ConsistencyProof(ctx context.Context, req ConsistencyRequest) ([]byte, error) {
	c, err := r.Checkpoint(ctx)
	if err != nil {
		return nil, err
	}
	if req.New > c.Size {
		return nil, fmt.Errorf("%w: size %d is beyond the tree of size %d", ErrNotFound, req.New, c.Size)
	}
	p, err := tlog.ProveTree(req.New, req.Old, storedHashes(ctx, r.store))
	if err != nil {
		return nil, fmt.Errorf("proving consistency %d..%d: %w", req.Old, req.New, err)
	}
	return FormatConsistencyProof(p), nil
}

// LeafIndexOf returns the leaf index of the audit record with sequence
// number seq (the patient view fetches InclusionProof with it): -1 while
// not yet integrated; an error wrapping ErrNotFound for no such record.
func (r *Reader) LeafIndexOf(ctx context.Context, seq int64) (int64, error) {
	i, err := r.store.LeafIndexOf(ctx, seq)
	if errors.Is(err, storage.ErrNotFound) {
		return 0, fmt.Errorf("%w: no audit record %d", ErrNotFound, seq)
	}
	return i, err
}

// EventProof is what a patient view shows for one audit event so the
// patient can check it is in the log: the event's canonical bytes and a
// C2SP tlog-proof whose "extra" line is the leaf's salt. The leaf hash
// is RecordHash(salt || Event); the proof embeds the signed checkpoint.
type EventProof struct {
	Index int64
	Event []byte // canonical event JSON (the caller decides what to show)
	Proof []byte // C2SP tlog-proof, extra = the 16-byte salt
}

// EventProof returns the proof for the audit record with sequence
// number seq in the checkpoint of size (0: the latest). Errors wrap
// ErrNotFound for no such record, a record not yet integrated (retry
// in a second) or not in that checkpoint. The caller must only serve it
// to someone allowed to see the event (the patient it names).
func (r *Reader) EventProof(ctx context.Context, seq, size int64) (EventProof, error) {
	if r.opener == nil {
		return EventProof{}, errors.New("event proof: no leaf opener")
	}
	idx, err := r.LeafIndexOf(ctx, seq)
	if err != nil {
		return EventProof{}, err
	}
	if idx < 0 {
		return EventProof{}, fmt.Errorf("%w: audit record %d is not integrated yet", ErrNotFound, seq)
	}
	return r.LeafProof(ctx, idx, size)
}

// LeafProof is [Reader.EventProof] for the leaf at index idx (the id of
// the event's FHIR AuditEvent). The same rule holds: serve it only to
// someone allowed to see the event.
func (r *Reader) LeafProof(ctx context.Context, idx, size int64) (EventProof, error) {
	if r.opener == nil {
		return EventProof{}, errors.New("event proof: no leaf opener")
	}
	if idx < 0 {
		return EventProof{}, fmt.Errorf("%w: leaf %d", ErrNotFound, idx)
	}
	c, err := r.checkpointFor(ctx, size)
	if err != nil {
		return EventProof{}, err
	}
	if idx >= c.Size {
		return EventProof{}, fmt.Errorf("%w: leaf %d is not in the tree of size %d", ErrNotFound, idx, c.Size)
	}
	var leaf []byte
	var legacy bool
	err = r.store.ScanLeaves(ctx, idx, idx+1, func(l storage.LogLeaf) error {
		leaf, legacy, err = r.opener.OpenLeaf(l.Body)
		return err
	})
	if err != nil {
		return EventProof{}, fmt.Errorf("event proof: leaf %d: %w", idx, err)
	}
	if leaf == nil {
		return EventProof{}, fmt.Errorf("%w: leaf %d missing from the store", ErrInconsistent, idx)
	}
	p, err := tlog.ProveRecord(c.Size, idx, storedHashes(ctx, r.store))
	if err != nil {
		return EventProof{}, fmt.Errorf("proving leaf %d in tree %d: %w", idx, c.Size, err)
	}
	if legacy {
		// No salt: the leaf is the event itself; "extra" is empty.
		return EventProof{Index: idx, Event: leaf, Proof: formatProof([]byte{}, idx, p, c.Note)}, nil
	}
	return EventProof{Index: idx, Event: leaf[audit.SaltSize:], Proof: formatProof(leaf[:audit.SaltSize], idx, p, c.Note)}, nil
}
