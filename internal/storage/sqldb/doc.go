// Package sqldb implements storage.Store once, on database/sql, for every
// SQL engine phivault supports. A Dialect carries what differs: the
// placeholder style, row and advisory locks, error classification and
// the embedded migrations.
//
// # Invariants
//
//   - Parameterised SQL only. Statement text is assembled from constants
//     of this package (table and column names, operators, placeholders);
//     every value, including search parameter codes, travels as a bound
//     argument. A grep for fmt.Sprintf in a query finds nothing.
//   - No plaintext PHI column (see package storage). Errors carry the
//     driver's message (constraint names, codes), never bound values.
//   - Timestamps are int64 unix microseconds, UTC, in every engine.
//   - Text values are valid UTF-8 without NUL, and compare bytewise
//     (BINARY on SQLite, COLLATE "C" on PostgreSQL), so ordering and
//     keyset pagination agree across engines.
//
// # Concurrency
//
// A Store is safe for concurrent use. Update runs fn in one transaction
// on the writer handle and retries it, with a bounded backoff, when the
// attempt lost a race that a rerun can win: the dialect marks
// serialization failures, deadlocks and busy errors retryable, and Put
// marks the ErrConflict it returns when this transaction read version
// v-1 and another transaction committed v first (a concurrent create).
// A Put whose expected version was simply wrong is an ErrConflict that
// is not retried. Put moves the current pointer with a compare-and-set
// (UPDATE ... WHERE version = v-1, or INSERT ... ON CONFLICT DO NOTHING
// for v = 1), so a conflict writes nothing and leaves the transaction
// usable.
//
// Reads outside a transaction use the reader handle. ScanVersions,
// ScanKeys and ScanAudit page with keyset queries of scanBatch rows and
// call fn between queries, so no scan holds a transaction open.
//
// # Identity
//
// Users() and Sessions() implement the identity and session store
// interfaces on the same database (identity.go, sessions.go). Their
// errors wrap both the storage sentinel and the domain one
// (identity.ErrNotFound/ErrExists, session.ErrNotFound). Sessions hold
// only the SHA-256 of each token.
//
// # Units of work (ADR 0024)
//
// The audited changes of the domains (account administration, a
// sign-in's commit, an administrator's session revocation...) are
// written in their packages as ordinary Go over a transactional
// interface each declares (account.Tx, login.Tx, session.Tx). The one
// transaction type of this package implements all of them with plain
// statements, asserted at compile time beside them; NewUnit[T] runs a
// domain's fn on one transaction of the store, with Update's retries,
// group commit and row MACs. What stays here is storage: statements,
// error translation, locking reads, and the MACs of authrows.go. The
// methods that still hold rules (the SMART launch grants) are listed in
// the ADR as not yet moved.
//
// # Migrations
//
// Migrate applies the dialect's NNNN_*.sql files forward-only in one
// transaction, under the dialect's lock, and records them in
// schema_migrations. It refuses a database newer than the binary.
package sqldb
