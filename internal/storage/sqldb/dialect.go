package sqldb

import (
	"context"
	"errors"
	"hash/fnv"
	"io/fs"
	"strconv"
	"strings"

	"github.com/phivault/phivault/internal/storage"
)

// Dialect is what differs between the SQL engines. Everything else (the
// statements, the transaction logic, the search compiler) is shared.
// A Dialect is a plain value built once by a driver package; its
// functions must be safe for concurrent use.
type Dialect struct {
	// Name appears in error text and logs ("sqlite", "postgres").
	Name string

	// Dollar selects $1, $2, ... placeholders (PostgreSQL) instead of ?.
	Dollar bool

	// LockRows is appended to SELECTs that read the current pointer
	// inside a write transaction, e.g. " FOR UPDATE OF r". Empty when the
	// engine has a single writer.
	LockRows string

	// LockSQL takes a transaction-scoped lock on the int64 passed as its
	// only parameter (written with ?), e.g.
	// "SELECT pg_advisory_xact_lock(?)". Empty means Lock is a no-op.
	LockSQL string

	// LockSharedSQL takes the shared form of LockSQL's lock (e.g.
	// "SELECT pg_advisory_xact_lock_shared(?)"): many holders at once,
	// excluded by a LockSQL holder. Empty means a no-op.
	LockSharedSQL string

	// CompactKeys are statements run outside any transaction after a KEK
	// epoch, so the old bytes of destroyed and re-wrapped key records
	// leave the engine's files where it can: SQLite checkpoints its WAL
	// and truncates it; PostgreSQL vacuums the keys table. Each returns
	// at most one row; see Store.CompactKeys.
	CompactKeys []string

	// IntegrityCheck is a query whose rows name the damage the engine
	// finds in the whole database, or one row "ok" (SQLite: PRAGMA
	// integrity_check, every page and every index against its table;
	// PostgreSQL: its data checksum failures). Store.CheckIntegrity runs
	// it for "phivault verify". Empty means nothing is checked.
	IntegrityCheck string

	// Corrupt reports whether a driver error means the engine found the
	// database damaged (SQLite: SQLITE_CORRUPT, SQLITE_NOTADB).
	Corrupt func(err error) bool

	// Migrations holds the forward-only schema migrations at its root,
	// named NNNN_description.sql and applied in numeric order.
	Migrations fs.FS

	// ChangesSince is the change feed's poll (storage.ChangeFeed): it
	// takes the cursor and a limit and returns (seq, owner, next) rows in
	// seq order; next is the cursor of the next poll. A row whose seq is
	// NULL carries only next (PostgreSQL answers one when nothing
	// changed). See the migrations' 0032.
	ChangesSince string

	// NowMicros is an SQL expression for the database's clock in unix
	// microseconds (the change feed's window is measured on it, so that
	// the servers of a fleet need not agree on the time).
	NowMicros string

	// GroupCommit commits concurrent Updates together (see group.go):
	// right for engines with a single writer connection.
	GroupCommit bool

	// InsertIndex begins the multi-row INSERT of blind-index rows
	// (default "INSERT INTO"). SQLite uses "INSERT OR FAIL INTO": a
	// multi-row INSERT that may abort half-way (a NOT NULL column) makes
	// SQLite open a statement journal and copy there the original image
	// of every page it changes, which for random blind-index keys is
	// nearly every page; with FAIL it needs none. The rows bound are
	// never NULL where the schema forbids it (validVersion), and any
	// error fails the Update, whose transaction or savepoint is rolled
	// back whole, so nothing of a failed statement commits either way.
	InsertIndex string

	// Classify maps a driver error to one of storage.ErrConflict or
	// storage.ErrUnavailable (or nil when it is neither) and says whether
	// rolling back and running the transaction again may succeed
	// (serialization failure, deadlock, busy).
	Classify func(err error) (kind error, retry bool)
}

// errLostRace is the cause of the ErrConflict that Put returns when the
// transaction read the resource, decided on its next version, and then
// found that another transaction had committed first. Update retries it.
var errLostRace = errors.New("a concurrent transaction wrote this resource first")

// dbError carries the storage sentinel (Kind), the cause, and whether
// Update may retry. Its text is the cause's text: driver messages name
// constraints and codes, never bound values.
type dbError struct {
	kind  error
	err   error
	retry bool
}

func (e *dbError) Error() string   { return e.err.Error() }
func (e *dbError) Unwrap() []error { return []error{e.kind, e.err} }

// isRetryable reports whether err (possibly wrapped by fn) marks a
// transaction that may succeed when run again.
func isRetryable(err error) bool {
	var de *dbError
	return errors.As(err, &de) && de.retry
}

// translate wraps a driver error with op and the storage sentinel it
// maps to. Context errors and errors already translated pass through
// with op added.
func (s *Store) translate(op string, err error) error {
	if err == nil {
		return nil
	}
	var de *dbError
	switch {
	case errors.As(err, &de), errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return wrapOp(op, err)
	case errors.Is(err, errNoRows):
		return wrapOp(op, storage.ErrNotFound)
	}
	kind, retry := s.d.Classify(err)
	if kind == nil {
		return wrapOp(op, err)
	}
	return wrapOp(op, &dbError{kind: kind, err: err, retry: retry})
}

func wrapOp(op string, err error) error {
	return &opError{op: op, err: err}
}

// opError prefixes the operation without fmt, so hot paths stay cheap.
type opError struct {
	op  string
	err error
}

func (e *opError) Error() string { return e.op + ": " + e.err.Error() }
func (e *opError) Unwrap() error { return e.err }

// lockKey maps a lock name to the 64-bit key of an advisory lock. FNV-1a
// over a namespaced name: collisions only serialise two unrelated
// creates, they never break correctness.
func lockKey(name string) int64 {
	h := fnv.New64a()
	h.Write([]byte("phivault/lock/"))
	h.Write([]byte(name))
	return int64(h.Sum64())
}

// Rebind rewrites q's ? placeholders as the dialect needs ($n for
// PostgreSQL); q must hold no ? inside a string literal. For statements
// written outside this package (migration tests).
func (d Dialect) Rebind(q string) string { return rebind(d.Dollar, q) }

// rebind rewrites ? placeholders to $n for dialects that need it. The
// statements it sees are written in this package and contain no string
// literals, so every ? is a placeholder.
func rebind(dollar bool, q string) string {
	if !dollar || !strings.Contains(q, "?") {
		return q
	}
	var b strings.Builder
	b.Grow(len(q) + 16)
	n := 0
	for i := 0; i < len(q); i++ {
		if q[i] == '?' {
			n++
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(n))
			continue
		}
		b.WriteByte(q[i])
	}
	return b.String()
}

// builder assembles a statement whose SQL text comes only from this
// package and whose values travel only as arguments.
type builder struct {
	sb     strings.Builder
	args   []any
	dollar bool
}

func (b *builder) sql(s string) *builder { b.sb.WriteString(s); return b }

// arg appends one bound value and writes its placeholder.
func (b *builder) arg(v any) *builder {
	b.args = append(b.args, v)
	if b.dollar {
		b.sb.WriteByte('$')
		b.sb.WriteString(strconv.Itoa(len(b.args)))
	} else {
		b.sb.WriteByte('?')
	}
	return b
}

// list writes "(?, ?, ...)" for vals.
func list[T any](b *builder, vals []T, conv func(T) any) *builder {
	b.sql("(")
	for i, v := range vals {
		if i > 0 {
			b.sql(", ")
		}
		b.arg(conv(v))
	}
	return b.sql(")")
}

func (b *builder) String() string { return b.sb.String() }
