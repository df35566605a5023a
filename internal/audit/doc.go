// Package audit records every access to protected health information.
//
// # Durability before the response
//
// A write commits its audit record in the same database transaction as
// the data ([Log.Seal] then storage.Tx.AppendAudit). A read is recorded
// through the [Batcher]: many requests share one transaction and one
// fsync, and each request waits until its batch has committed before any
// PHI leaves the server. If recording fails, the caller fails the request
// (fail closed): [ErrUnavailable] maps to 503.
//
// # The transparency log (ADR 0010)
//
// Every event is also a leaf of an RFC 6962 Merkle tree: the leaf is a
// random 16-byte salt followed by the canonical event bytes
// ([Event.Marshal]); [LeafSize] and [SplitLeaf] describe it. The sealed
// body holds the whole leaf, so an auditor who may open the body can
// recompute the leaf hash, while the public tree hashes reveal nothing
// guessable (without the salt, a hash cannot be matched against a
// guessed event). [Log.Seal] computes the leaf hash when the event is
// sequenced; package audit/merkle integrates sequenced records into the
// tree, signs C2SP checkpoints, serves tiles and proofs, and verifies.
//
// # Security invariants
//
//   - Events hold references and pseudonymous ids only; never resource
//     content, search values or names.
//   - Event bodies are sealed with the log key, not a patient key, so
//     crypto-shredding a patient keeps the trail.
//   - Each leaf has a fresh salt from a cryptographic random source.
//   - There is no delete path.
package audit
