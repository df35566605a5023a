// Package postgres opens the phivault store on PostgreSQL through pgx
// (database/sql via pgx/v5/stdlib, so the SQL lives once in sqldb).
// Several phivault processes may share one database.
//
// # Concurrency
//
// Transactions run at READ COMMITTED. Tx.Current locks the resource's
// pointer row (FOR UPDATE), so a read-modify-write is serialised across
// processes; Put is a compare-and-set on the pointer; a lost create race
// is retried by Update. Tx.Lock takes pg_advisory_xact_lock on a 64-bit
// FNV hash of the name. AppendAudit holds an advisory lock until commit
// so that audit sequence numbers are assigned in commit order. The
// two-store test in this package exercises all of it.
//
// # Durability
//
// Durability is the server's: phivault requires synchronous_commit=on
// (the PostgreSQL default) and fsync=on, so a commit that returned is on
// disk.
//
// # Security invariants
//
//   - No plaintext PHI column; parameterised SQL only (see sqldb).
//   - Connection URLs carry credentials: errors from Open never quote the
//     URL, and callers must not log it.
package postgres
