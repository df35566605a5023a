// Package storage defines phivault's persistence contract: the Store,
// Reader and Tx interfaces, the records they move, and the sentinel
// errors every driver translates its failures into.
//
// # Security invariants
//
//   - No column holds plaintext PHI. Resource bodies are ciphertext sealed
//     with the owner's data-encryption key; search values are keyed hashes
//     (blind indexes) or date ranges; ids and owners are pseudonymous.
//   - Crypto-shredding (Tx.Shred) destroys an owner's wrapped key and the
//     owner's index rows; the remaining ciphertext is unreadable.
//   - Work driven by untrusted input is bounded: see MaxClauses, MaxConds,
//     MaxValues, MaxSorts and ErrTooComplex.
//
// # Drivers
//
// internal/storage/sqldb is the one SQL implementation; sqlite and
// postgres supply its Dialect and connection setup. Both pass the
// conformance suite in internal/storage/storagetest.
package storage
