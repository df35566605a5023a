// Package merkle makes phivault's audit trail a tamper-evident
// transparency log: an RFC 6962 Merkle tree over the audit events,
// published as C2SP signed checkpoints (c2sp.org/tlog-checkpoint),
// hash tiles and entry bundles (c2sp.org/tlog-tiles) and proofs
// (c2sp.org/tlog-proof). See ADR 0010 and docs/audit-log.md.
//
// # Sequencing, then integration
//
// Events are durable rows first (package audit, storage AppendAudit);
// each carries its leaf hash. The [Integrator] then, in one transaction
// holding the integration lock, gives pending rows leaf indexes in
// sequence order, stores the new tree hashes (golang.org/x/mod/sumdb/tlog
// stored-hash layout) and a signed checkpoint. Exactly one integrator
// runs at a time across processes (an advisory lock on PostgreSQL); the
// leaf index is assigned once and never derived from the sequence
// number, so no gap, duplicate or reordering can occur.
//
// # Reading and checking
//
// [Reader] serves checkpoints, tiles, entry bundles and proofs from the
// stored hashes. [Verify] recomputes every leaf from the decrypted
// events and checks every stored checkpoint; [Monitor] checks a remote
// log through its public endpoints only, and alarms on a fork, a
// rewrite or a rollback.
//
// # Security invariants
//
//   - Hashing is golang.org/x/mod/sumdb/tlog (RFC 6962), signatures are
//     golang.org/x/mod/sumdb/note over an Ed25519 key held by package
//     keys; nothing here hand-rolls a primitive.
//   - Public endpoints reveal hashes of salted leaves only; entry bundles
//     (the leaves themselves) are for auditors.
//   - Every parser of untrusted input (tile paths, proof parameters,
//     checkpoints and tiles read by the monitor) is bounded and fuzzed.
//   - Integration never changes an integrated leaf: it refuses to run
//     when the stored size and the latest checkpoint disagree.
package merkle

import "errors"

// Sentinel errors.
var (
	// ErrNotFound means the tile, bundle, checkpoint or proof asked for
	// is not (yet) in the log. HTTP answers 404.
	ErrNotFound = errors.New("merkle: not found")

	// ErrBadRequest means a malformed tile path or proof parameter. HTTP
	// answers 400 with the message.
	ErrBadRequest = errors.New("merkle: bad request")

	// ErrInconsistent means the stored log state contradicts itself (the
	// tree size and the latest checkpoint disagree): someone changed the
	// database. The integrator stops; run "phivault audit verify".
	ErrInconsistent = errors.New("merkle: stored log state is inconsistent")

	// ErrFork means a checkpoint has the size of an earlier one but
	// another root hash: the log shows different histories to different
	// observers.
	ErrFork = errors.New("merkle: forked log (same size, different root)")

	// ErrRewrite means a larger checkpoint is not consistent with an
	// earlier one: entries already published were changed.
	ErrRewrite = errors.New("merkle: rewritten log (new checkpoint does not extend the old one)")

	// ErrRollback means a checkpoint is smaller than one already seen.
	ErrRollback = errors.New("merkle: rolled-back log (smaller than a checkpoint already seen)")

	// ErrSignature means a checkpoint's signature does not verify with
	// the configured verifier key, or its origin is not the log's.
	ErrSignature = errors.New("merkle: checkpoint signature does not verify")

	// ErrAnchorMissing means the checkpoint kept outside the database is
	// gone while the database says it was kept: deleting it would
	// otherwise let a rewritten log be signed. The integrator signs
	// nothing until it is restored or an operator accepts the database's
	// log ("phivault audit accept-checkpoint").
	ErrAnchorMissing = errors.New("merkle: the checkpoint kept outside the database is missing")

	// ErrAnchorIO means a checkpoint kept outside the database cannot be
	// read, or the integrator cannot keep the one it signed there (read
	// only, disk full): it signs nothing more until it can.
	ErrAnchorIO = errors.New("merkle: the checkpoint kept outside the database cannot be read or written")
)
