package storage

import (
	"context"
	"time"
)

// EpochState is the phase of a KEK epoch (docs/adr/0015).
type EpochState string

// The phases of a KEK epoch, in order. An epoch interrupted in any phase
// is resumed from it.
const (
	// EpochAdding: a new key is being added to the key file; KEKID is
	// not known yet (PrevPrimary tells whether the file already holds it).
	EpochAdding EpochState = "adding"
	// EpochRewrapping: KEKID is the primary in force, the other KEK keys
	// are retired (fenced: no key may be stored wrapped under them), and
	// every live key record is being re-wrapped under KEKID.
	EpochRewrapping EpochState = "rewrapping"
	// EpochRetained: every live record was re-wrapped and checked under
	// KEKID alone; the retired keys are kept in the key file until
	// DestroyAfter (a retention option, so older backups stay restorable).
	EpochRetained EpochState = "retained"
	// EpochComplete: the retired keys are destroyed. Every erasure made
	// before the epoch began is final.
	EpochComplete EpochState = "complete"
)

// KEKEpoch is one KEK epoch: the record of a rotation of the
// key-encryption key that ends with the destruction of the old keys.
type KEKEpoch struct {
	Epoch       int64 // 1, 2, 3, ...
	State       EpochState
	KEKID       uint32 // the new primary KEK key id (0 while adding, or for a KMS)
	PrevPrimary uint32 // the primary when the epoch began
	Started     time.Time
	// Rewrapped is when every live key was checked under KEKID alone.
	Rewrapped time.Time
	// DestroyAfter is when the retired keys may be destroyed.
	DestroyAfter time.Time
	Completed    time.Time
	// Erasures is how many shredded key records the epoch covers (whose
	// last wrapping KEK key it destroys).
	Erasures int64
	// Holder names the process running the epoch; Heartbeat is when it
	// last showed progress. Another process takes over an epoch whose
	// heartbeat is older than its lease.
	Holder    string
	Heartbeat time.Time
}

// Done reports whether the epoch needs no more work.
func (e KEKEpoch) Done() bool { return e.State == EpochComplete }

// RetiredKEK is a KEK key id an epoch retired. Destroyed is zero until
// the key is removed from the key file.
type RetiredKEK struct {
	KEKID     uint32
	Epoch     int64
	Destroyed time.Time
}

// EpochStore keeps the KEK epochs and the fence of retired KEK keys. It
// is a separate capability from Store: only the KEK epoch job (and the
// status commands, reading) use it.
type EpochStore interface {
	// Epochs lists every epoch, oldest first.
	Epochs(ctx context.Context) ([]KEKEpoch, error)
	// RetiredKEKs lists every retired KEK key id.
	RetiredKEKs(ctx context.Context) ([]RetiredKEK, error)
	// UpdateEpoch runs fn in one write transaction that holds the epoch
	// lock exclusively. Every transaction that stores a wrapped key
	// (Tx.PutKey, Tx.ReplaceKey) takes the same lock shared, so fn runs
	// after every such transaction in flight has ended and excludes new
	// ones until it commits: a fence written by fn is seen by every key
	// write that commits after it. It retries as Store.Update does.
	UpdateEpoch(ctx context.Context, fn func(EpochTx) error) error
}

// EpochTx is the transaction of EpochStore.UpdateEpoch.
type EpochTx interface {
	// Latest returns the newest epoch, or ErrNotFound.
	Latest(ctx context.Context) (KEKEpoch, error)
	// PutEpoch inserts e, or replaces the epoch with its number.
	PutEpoch(ctx context.Context, e KEKEpoch) error
	// Retire fences ids off for epoch: from commit on, Tx.PutKey and
	// Tx.ReplaceKey refuse a record whose KEKID is one of them (an error
	// wrapping ErrRetiredKEK). Ids already retired keep their epoch. The
	// id 0 (a KMS KEK) cannot be retired.
	Retire(ctx context.Context, epoch int64, ids []uint32) error
	// MarkDestroyed records that ids were removed from the key file.
	MarkDestroyed(ctx context.Context, ids []uint32, at time.Time) error
	// CountNotUnder counts the live (not shredded) key records whose
	// KEKID is not kekID.
	CountNotUnder(ctx context.Context, kekID uint32) (int64, error)
	// AppendAudit adds audit records in this transaction.
	AppendAudit(ctx context.Context, recs ...AuditRecord) error
}
