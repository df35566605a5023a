// Package ledger checks the stored resources against the signed audit
// log, as SQL Server Ledger and immudb check tables against their
// ledgers (ADR 0016).
//
// Every change to stored resources appends, in the same transaction, an
// audit event whose Ledger field commits to what it stored
// (audit.Commit): for a version, a keyed hash (keys.LedgerKey) of its
// row (type, id, version, owner, deletion flag, time) and plaintext; for
// a current version, a keyed hash of its index rows; for an erasure,
// the owner whose key was destroyed. [Check] replays those commitments
// in log order into the state the log says the database holds, reads
// the database (every version, current pointer, index row and key
// record), and names each difference: a missing resource or version, a
// rollback, a repointed current version, a row whose content differs
// from its commitment, index rows that differ, a delete marker or an
// erasure that no event committed to, a version no event committed to.
// Versions written before the ledger started are reported apart, as
// not committed, until a baseline commits them.
//
// # Security invariants
//
//   - The check proves the database against the log it is given; the
//     log itself is proved by merkle.Verify (against its signed
//     checkpoints and the checkpoint kept outside the database), which
//     feeds [Log.Leaf]. An attacker who holds the KEK can compute
//     commitments and sign checkpoints: only checkpoints kept outside
//     (the anchor file, witnesses, monitors) bound what they can rewrite.
//   - Commitments are keyed: a reader of the log learns nothing about a
//     resource's content from them.
//   - Nothing here writes to the database.
package ledger
