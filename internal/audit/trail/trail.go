// Package trail tells, for one request, whether an audit event about it
// has been made durable.
//
// The HTTP layer starts a [Request] for every request it must audit
// (httpapi's request middleware) and, before the response status is
// sent, asks whether any handler recorded an event; if none did, it
// appends a generic event itself (DESIGN §6: attempts are events).
// The places that make events durable call [Note] with the request's
// context once the event is durable: the read batcher after its batch
// committed (audit.Batcher.Record), and the SQL store after the
// transaction that appended audit records committed (sqldb.Store.Update).
// An event appended in a transaction that rolled back is not noted.
//
// The same places call [Fail] when an append failed because the audit
// log's storage is unavailable (a lock or statement timeout, a lost
// connection): further appends for the request then fail at once
// instead of waiting out the same lock again, and the request is
// answered 503 (fail closed) within one lock timeout, not one per event.
//
// # Security invariants
//
//   - A Request is only ever marked, never unmarked: a noted request
//     has at least one durable event; a failed request records nothing
//     more (its answer is 503).
//   - The package holds no event content: only the fact.
//
// A Request is safe for concurrent use (the entries of a batch Bundle
// may record from several goroutines). Contexts without a Request make
// [Note] a no-op: background work (integration, exports) is audited by
// its own means.
package trail

import (
	"context"
	"sync/atomic"
)

// Request is the audit state of one request.
type Request struct {
	noted  atomic.Bool
	failed atomic.Bool
}

type key struct{}

// Start returns ctx carrying a new Request.
func Start(ctx context.Context) (context.Context, *Request) {
	r := &Request{}
	return context.WithValue(ctx, key{}, r), r
}

// Note records that an audit event about ctx's request is durable.
func Note(ctx context.Context) {
	if r, ok := ctx.Value(key{}).(*Request); ok {
		r.noted.Store(true)
	}
}

// Noted reports whether any event about the request is durable. A nil
// Request reports false.
func (r *Request) Noted() bool { return r != nil && r.noted.Load() }

// Fail records that an audit event about ctx's request could not be
// made durable because the audit log's storage is unavailable.
func Fail(ctx context.Context) {
	if r, ok := ctx.Value(key{}).(*Request); ok {
		r.failed.Store(true)
	}
}

// Failed reports whether an append for ctx's request failed as
// unavailable (see [Fail]). Contexts without a Request report false.
func Failed(ctx context.Context) bool {
	r, _ := ctx.Value(key{}).(*Request)
	return r.Failed()
}

// Failed reports whether an append for the request failed as
// unavailable. A nil Request reports false.
func (r *Request) Failed() bool { return r != nil && r.failed.Load() }
