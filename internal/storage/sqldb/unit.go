package sqldb

import (
	"context"
	"fmt"
	"time"

	"github.com/phivault/phivault/internal/storage"
)

// Unit is this store's unit of work seen through the transactional
// interface T that a domain package declares for its audited changes
// (account.Tx, session.Tx...): its Update runs fn on ONE transaction of
// the store, with the semantics of [Store.Update] (retries of fn after a
// lost race, serialization, group commit, the request's audit note), and
// the rows fn writes carry their MACs (authrows.go) as every write of
// the store does. Several domains' interfaces are views of the same
// transaction type, so a change that spans domains still commits once.
//
// The zero value is not usable; obtain one with [NewUnit]. A Unit is
// safe for concurrent use.
type Unit[T any] struct{ s *Store }

// NewUnit returns s's unit of work for the domain interface T. It
// panics (a programmer error, caught by any test that builds it) if the
// store's transaction does not implement T; each domain's interface is
// also asserted at compile time beside its methods.
func NewUnit[T any](s *Store) Unit[T] {
	if _, ok := any((*tx)(nil)).(T); !ok {
		var zero *T
		panic(fmt.Sprintf("sqldb: the transaction does not implement %T", zero))
	}
	return Unit[T]{s: s}
}

// Update runs fn in one write transaction, as [Store.Update]: fn may
// run more than once and must have no side effects outside the
// transaction; an error from fn is returned unchanged after rollback.
func (u Unit[T]) Update(ctx context.Context, fn func(T) error) error {
	return u.s.Update(ctx, func(stx storage.Tx) error {
		return fn(any(stx).(T))
	})
}

// Now is the store's clock (Options.Now): the time written as a row's
// creation or update time.
func (t *tx) Now() time.Time { return t.s.now() }
