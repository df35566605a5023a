// Package sqlite opens the embedded phivault store: one SQLite file on
// modernc.org/sqlite (pure Go, no cgo), served by the shared sqldb
// implementation.
//
// # Durability and isolation
//
//   - journal_mode=WAL: readers see the last committed state and never
//     block the writer.
//   - synchronous=FULL: the WAL is fsynced at every commit, so a write
//     that Update acknowledged survives power loss. NORMAL would be
//     faster and could lose the last commits, and with them audit events
//     that were promised durable.
//   - One writer connection whose transactions begin IMMEDIATE: writes
//     are serialised in the process, so Tx.Lock is a no-op and Put never
//     loses a race. Only one process may open a database file.
//   - A pool of query_only reader connections (Options.Readers).
//
// # Security invariants
//
//   - The database file is created with mode 0600; SQLite gives its -wal
//     and -shm files the same mode.
//   - No plaintext PHI column; parameterised SQL only (see sqldb).
//   - The DSN is built from constants and the escaped path; no caller
//     string becomes a PRAGMA.
package sqlite
