package session

import (
	"context"

	"github.com/phivault/phivault/internal/storage"
)

// Tx is the part of one write transaction that an audited revocation
// uses (the store's unit of work, ADR 0024). It is not safe for
// concurrent use.
type Tx interface {
	// AppendAudit adds audit records in this transaction.
	AppendAudit(ctx context.Context, recs ...storage.AuditRecord) error

	// LockLiveSession returns the account id of live (unrevoked)
	// session id, with its row locked until commit on engines with
	// several writers; an error wrapping ErrNotFound (and
	// storage.ErrNotFound) if there is none.
	LockLiveSession(ctx context.Context, op, id string) (userID string, err error)

	// RevokeLiveSession revokes live session id; an error wrapping
	// storage.ErrConflict if no live session was revoked.
	RevokeLiveSession(ctx context.Context, op, id string) error
}

// Updater is the unit of work of audited session changes: Update runs
// fn in one transaction and commits it if fn returns nil, retrying fn
// after a lost race (fn must have no side effects outside tx); an error
// from fn is returned unchanged. sqldb.NewUnit[session.Tx] implements
// it.
type Updater interface {
	Update(ctx context.Context, fn func(Tx) error) error
}

// RevokeAudited revokes live session id of any user and appends the
// audit record audit builds from the session's owner, in one
// transaction, and returns the owner's id (the security-admin surface).
// An error wrapping ErrNotFound (and storage.ErrNotFound) means there is
// no such unrevoked session. audit may run more than once (retries); it
// must have no side effects.
func RevokeAudited(ctx context.Context, st Updater, id string, audit func(userID string) (storage.AuditRecord, error)) (string, error) {
	const op = "revoke session"
	var owner string
	err := st.Update(ctx, func(t Tx) error {
		uid, err := t.LockLiveSession(ctx, op, id)
		if err != nil {
			return err
		}
		if err := t.RevokeLiveSession(ctx, op, id); err != nil {
			return err
		}
		rec, err := audit(uid)
		if err != nil {
			return err
		}
		if err := t.AppendAudit(ctx, rec); err != nil {
			return err
		}
		owner = uid
		return nil
	})
	return owner, err
}
