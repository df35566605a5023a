package authz

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/phivault/phivault/internal/storage"
)

// Tx is the part of one write transaction that authorization's audited
// changes use (the store's unit of work, ADR 0024): a break-the-glass
// grant with its review entry, alert and audit record, the closing of a
// review entry, and the record of a policy version. Every method but
// AppendAudit and Lock is one
// plain statement; errors wrap the storage sentinels. It is not safe
// for concurrent use.
type Tx interface {
	// AppendAudit adds audit records in this transaction.
	AppendAudit(ctx context.Context, recs ...storage.AuditRecord) error
	// Lock takes a transaction-scoped lock on name (storage.Tx.Lock).
	Lock(ctx context.Context, name string) error

	// InsertGrant stores g with its sealed note (nil for none).
	InsertGrant(ctx context.Context, g Grant, sealedNote []byte) error
	// InsertReview stores the open review entry r of grant g.
	InsertReview(ctx context.Context, r Review, g Grant) error
	// RaiseAlert raises a for the privacy officer's desk.
	RaiseAlert(ctx context.Context, a Alert) error
	// CloseReview closes review entry id by by with outcome and the
	// reviewer's sealed note (nil for none) at at, and returns it as
	// closed; ErrNotFound-wrapped when unknown, ErrConflict-wrapped when
	// already closed.
	CloseReview(ctx context.Context, id, by, outcome string, note []byte, at time.Time) (Review, error)
	// CloseAlerts closes the open alerts of kind raised for ref (a
	// break-the-glass grant id), by by, as covered by review, at at, and
	// returns their ids (none is not an error).
	CloseAlerts(ctx context.Context, kind, ref, by, review string, at time.Time) ([]string, error)

	// LatestPolicyHash returns the hash of the policy version recorded
	// last ("" when none was).
	LatestPolicyHash(ctx context.Context) (string, error)
	// InsertPolicyVersion records a policy version.
	InsertPolicyVersion(ctx context.Context, hash, source string, at time.Time) error
}

// Updater is the unit of work of authorization's audited changes:
// Update runs fn in one transaction and commits it if fn returns nil,
// retrying fn after a lost race (fn must have no side effects outside
// tx); an error from fn is returned unchanged. sqldb.NewUnit[authz.Tx]
// implements it.
type Updater interface {
	Update(ctx context.Context, fn func(Tx) error) error
}

// Grants is the GrantWriter of the store's unit of work.
type Grants struct{ Tx Updater }

var _ GrantWriter = Grants{}

// CreateGrant implements GrantWriter: grant, review entry, alert and
// audit record in one transaction.
func (w Grants) CreateGrant(ctx context.Context, g Grant, sealedNote []byte, r Review, a Alert, audit []byte) error {
	return w.Tx.Update(ctx, func(t Tx) error {
		if err := t.InsertGrant(ctx, g, sealedNote); err != nil {
			return err
		}
		if err := t.InsertReview(ctx, r, g); err != nil {
			return err
		}
		if err := t.RaiseAlert(ctx, a); err != nil {
			return err
		}
		return t.AppendAudit(ctx, storage.AuditRecord{Time: g.Created, Body: audit})
	})
}

// policyVersionLock serialises the records of policy versions by
// processes starting at once.
const policyVersionLock = "authz-policy-version"

// RecordPolicyVersion stores a policy version (hash, source, at) with
// its audit record, in one transaction, unless the latest recorded
// version has the same hash (then it records nothing and returns
// false).
func RecordPolicyVersion(ctx context.Context, st Updater, hash, source string, at time.Time, audit []byte) (bool, error) {
	// The store refuses a source it cannot hold; checked first, as the
	// store did before the transaction, so an unchanged hash does not
	// hide it.
	switch {
	case source == "":
		return false, errors.New("record policy version: source is empty")
	case !utf8.ValidString(source) || strings.IndexByte(source, 0) >= 0:
		return false, errors.New("record policy version: source is not valid UTF-8 without NUL bytes")
	}
	recorded := false
	err := st.Update(ctx, func(t Tx) error {
		recorded = false
		if err := t.Lock(ctx, policyVersionLock); err != nil {
			return err
		}
		last, err := t.LatestPolicyHash(ctx)
		if err != nil {
			return err
		}
		if last == hash {
			return nil
		}
		if err := t.InsertPolicyVersion(ctx, hash, source, at); err != nil {
			return err
		}
		recorded = true
		return t.AppendAudit(ctx, storage.AuditRecord{Time: at, Body: audit})
	})
	if err != nil {
		return false, fmt.Errorf("recording policy version: %w", err)
	}
	return recorded, nil
}
